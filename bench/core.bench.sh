#!/usr/bin/env bash
# Core forward speed (issue 2) and engine throughput (issue 7) on random-weight models of the
# SmolLM2-135M shape, BF16 and F32, next to llama.cpp built from source on GGUF files of the
# same weights, same thread count, in the same run.
#   MODELS=dir (default /work/models, else /tmp/forge-bench-models): where the models live;
#     made here when missing (scripts/make_random_model.py + scripts/ref/write_gguf.py).
#   LLAMA_CPP=dir (default /work/llama.cpp/build/bin): llama-bench, llama-batched-bench.
#   THREADS=n (default 2).
set -u
cd "$(dirname "$0")/.."
MODELS=${MODELS:-/work/models}
[ -d "$MODELS" ] || MODELS=/tmp/forge-bench-models
LLAMA_CPP=${LLAMA_CPP:-/work/llama.cpp/build/bin}
THREADS=${THREADS:-2}
LIKE=tests/fixtures/configs/HuggingFaceTB--SmolLM2-135M-Instruct/config.json
mkdir -p "$MODELS"
for dt in bf16 f32; do
  d=$MODELS/smollm2-135m-$dt
  [ -f "$d/model.safetensors" ] || /usr/bin/python3 scripts/make_random_model.py --like $LIKE --dtype $dt --out "$d" --seed 1 \
      --tokenizer tests/fixtures/tokenizers/smollm2 || exit 1
done
for dt in bf16 f16 f32; do
  g=$MODELS/smollm2-135m-$dt.gguf
  [ -f "$g" ] || /usr/bin/python3 scripts/ref/write_gguf.py "$MODELS/smollm2-135m-f32" "$g" --outtype $dt || exit 1
done
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for dt in bf16 f32; do
  echo "== forge bench, $dt"
  build/forge bench --model "$MODELS/smollm2-135m-$dt" --threads "$THREADS" 2>/dev/null
done
echo "== forge bench --concurrency, bf16"
build/forge bench --model "$MODELS/smollm2-135m-bf16" --threads "$THREADS" --concurrency 1,4,16,64 2>/dev/null
if [ -x "$LLAMA_CPP/llama-bench" ]; then
  for dt in bf16 f16 f32; do
    echo "== llama-bench, $dt"
    "$LLAMA_CPP/llama-bench" -m "$MODELS/smollm2-135m-$dt.gguf" -p 512 -n 128 -t "$THREADS" 2>/dev/null | grep -E "model|pp|tg"
    "$LLAMA_CPP/llama-bench" -m "$MODELS/smollm2-135m-$dt.gguf" -p 0 -n 128 -d 1024 -t "$THREADS" 2>/dev/null | grep -E "tg"
  done
  echo "== llama-batched-bench, bf16 (-npp 128 -ntg 128)"
  "$LLAMA_CPP/llama-batched-bench" -m "$MODELS/smollm2-135m-bf16.gguf" -c 20000 -b 2048 -ub 512 -npp 128 -ntg 128 \
      -npl 1,4,16,64 -t "$THREADS" 2>/dev/null | grep -E "^\|"
else
  echo "(llama.cpp not found at $LLAMA_CPP: set LLAMA_CPP to compare)"
fi
