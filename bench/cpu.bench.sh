#!/usr/bin/env bash
# Forge's CPU kernels against llama.cpp (issue 13): random-weight models of the SmolLM2-135M
# (BF16, F16, F32) and Llama-3.2-1B (BF16) shapes and their Q8_0/Q4_0/Q4_K_M quantizations (issue 14), the same weights as GGUF for llama.cpp, the
# same threads, programs alternated, best of ROUNDS (bench/cpu_vs_llamacpp.py prints the
# markdown table for docs/benchmarks.md).
#   MODELS=dir (default /work/models, else /tmp/forge-bench-models): made here when missing.
#   LLAMA_CPP=dir (default /work/llama.cpp/build/bin; on a CPU with AMX that the VM does not
#   grant, build llama.cpp with -DGGML_NATIVE=OFF and the AVX-512 flags: docs/benchmarks.md),
#   THREADS (2), ROUNDS (2),
#   SETS=avx2 (also run Forge with these forced kernel sets), ONLY=name,name.
set -u
cd "$(dirname "$0")/.."
MODELS=${MODELS:-/work/models}
[ -d "$MODELS" ] || MODELS=/tmp/forge-bench-models
LLAMA_CPP=${LLAMA_CPP:-/work/llama.cpp/build/bin}
mkdir -p "$MODELS"
S=tests/fixtures/configs/HuggingFaceTB--SmolLM2-135M-Instruct/config.json
L=tests/fixtures/configs/meta-llama--Llama-3.2-1B-Instruct/config.json
for dt in bf16 f16 f32; do
  d=$MODELS/smollm2-135m-$dt
  [ -f "$d/model.safetensors" ] || /usr/bin/python3 scripts/make_random_model.py --like $S --dtype $dt --out "$d" --seed 1 \
      --tokenizer tests/fixtures/tokenizers/smollm2 || exit 1
done
for dt in bf16 f16 f32; do
  g=$MODELS/smollm2-135m-$dt.gguf
  [ -f "$g" ] || /usr/bin/python3 scripts/ref/write_gguf.py "$MODELS/smollm2-135m-f32" "$g" --outtype $dt || exit 1
done
[ -f "$MODELS/llama1b-bf16/model.safetensors" ] || /usr/bin/python3 scripts/make_random_model.py --like $L --dtype bf16 \
    --out "$MODELS/llama1b-bf16" --seed 1 --tokenizer tests/fixtures/tokenizers/llama3 || exit 1
[ -f "$MODELS/llama1b-bf16.gguf" ] || /usr/bin/python3 scripts/ref/write_gguf.py "$MODELS/llama1b-bf16" "$MODELS/llama1b-bf16.gguf" \
    --outtype keep || exit 1
for q in Q8_0 Q4_0 Q4_K_M; do
  for m in smollm2-135m:smollm2-135m-f32 llama1b:llama1b-bf16; do
    out=$MODELS/${m%%:*}-$q.gguf
    [ -f "$out" ] || [ ! -x "$LLAMA_CPP/llama-quantize" ] || "$LLAMA_CPP/llama-quantize" "$MODELS/${m#*:}.gguf" "$out" $q 2 >/dev/null 2>&1 || exit 1
  done
done
if [ ! -x "$LLAMA_CPP/llama-bench" ]; then
  echo "(llama.cpp not found at $LLAMA_CPP: set LLAMA_CPP to compare)"; exit 0
fi
/usr/bin/python3 bench/cpu_vs_llamacpp.py --models "$MODELS" --llama-cpp "$LLAMA_CPP" --threads "${THREADS:-2}" \
    --rounds "${ROUNDS:-2}" --sets "${SETS:-}" --only "${ONLY:-}"
