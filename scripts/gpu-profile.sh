#!/usr/bin/env bash
# Where the decode time goes on a GPU: Nsight Compute (ncu) times every kernel of a few
# decode steps (eager, CUDA graphs off, so each kernel is its own launch) of random-weight
# SmolLM2-135M and Llama-3.2-1B shapes, and a table sums them by kernel. Needs the bundle
# (bash scripts/gpu-bundle.sh) and ncu on the GPU machine; logs to $OUT (or ./gpu-profile-out).
#   bash scripts/gpu-profile.sh [BATCHES]      BATCHES: decode batch sizes, default 1,8
set -u
cd "$(dirname "$0")/.."
BUNDLE=$(cd "${GPU_BUNDLE:-gpu-bundle}" && pwd) || exit 1
LOG=${OUT:-$PWD/gpu-profile-out}
mkdir -p "$LOG"
MODELS=${MODELS:-/dev/shm/forge-gpu-models}
mkdir -p "$MODELS"
BATCHES=${1:-1,8}
export LD_LIBRARY_PATH="$BUNDLE/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FORGE_CUDA_LIB=$BUNDLE/lib/libforge-cuda.so
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -d "$MODELS/smollm2-135m-bf16" ] ||
  "$BUNDLE/bin/make_model" --like tests/fixtures/configs/HuggingFaceTB--SmolLM2-135M/config.json --dtype bf16 \
    --out "$MODELS/smollm2-135m-bf16" >/dev/null
[ -d "$MODELS/llama-3.2-1b-bf16" ] ||
  "$BUNDLE/bin/make_model" --like tests/fixtures/configs/meta-llama--Llama-3.2-1B/config.json --dtype bf16 \
    --out "$MODELS/llama-3.2-1b-bf16" >/dev/null
for m in smollm2-135m-bf16 llama-3.2-1b-bf16; do
  echo "== $m: kernels of decode steps ($BATCHES rows), ncu gpu__time_duration"
  FORGE_CUDA_GRAPHS=0 timeout 150 "$NCU" --clock-control none --metrics gpu__time_duration.sum --print-units base --csv --page raw \
    "$BUNDLE/bin/cuda_bench" --model "$MODELS/$m" --ctx 128 --steps 4 --batches "$BATCHES" --prompt 16 \
    >"$LOG/ncu-$m.csv" 2>"$LOG/ncu-$m.err"
  echo "ncu exit $?"
  python3 scripts/ncu_table.py "$LOG/ncu-$m.csv" | tee "$LOG/profile-$m.txt"
done
echo "== decode wall time, CUDA graphs off and on"
for g in 0 128; do
  FORGE_CUDA_GRAPHS=$g "$BUNDLE/bin/cuda_bench" --model "$MODELS/smollm2-135m-bf16" --ctx 128 --steps 64 \
    --batches "$BATCHES" --prompt 16 | grep -E '^(decode|backend)' | sed "s/^/graphs $g: /"
done
