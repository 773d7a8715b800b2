#!/usr/bin/env bash
# Where the decode time goes on a GPU: Nsight Compute (ncu) times the kernels of a few eager
# decode steps (CUDA graphs off, so each kernel is its own launch) of a random-weight model,
# and scripts/ncu_table.py sums them by kernel. ncu replays every kernel it profiles, so it
# profiles COUNT kernels after skipping SKIP (the bandwidth probe, the 128-token prefill and
# the first steps). Needs the bundle (scripts/gpu-bundle.sh) and ncu on the GPU machine.
#   bash scripts/gpu-profile.sh [smollm2-135m|llama-3.2-1b] [BATCHES] [SKIP] [COUNT]
# Logs to $OUT (or ./gpu-profile-out): ncu-NAME.csv and profile-NAME.txt.
set -u
cd "$(dirname "$0")/.."
BUNDLE=$(cd "${GPU_BUNDLE:-gpu-bundle}" && pwd) || exit 1
LOG=${OUT:-$PWD/gpu-profile-out}
MODELS=${MODELS:-/dev/shm/forge-gpu-models}
mkdir -p "$LOG" "$MODELS"
NAME=${1:-llama-3.2-1b}
BATCHES=${2:-1}
SKIP=${3:-400}
COUNT=${4:-200}
case $NAME in
  smollm2-135m) LIKE=HuggingFaceTB--SmolLM2-135M ;;
  llama-3.2-1b) LIKE=meta-llama--Llama-3.2-1B ;;
  *) echo "gpu-profile: unknown model $NAME"; exit 2 ;;
esac
export LD_LIBRARY_PATH="$BUNDLE/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FORGE_CUDA_LIB=$BUNDLE/lib/libforge-cuda.so
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
M=$MODELS/$NAME-bf16
[ -d "$M" ] || "$BUNDLE/bin/make_model" --like "tests/fixtures/configs/$LIKE/config.json" --dtype bf16 --out "$M" >/dev/null
echo "== $NAME: kernels $SKIP to $((SKIP + COUNT)) (decode of $BATCHES rows), ncu gpu__time_duration"
FORGE_CUDA_GRAPHS=0 timeout 150 "$NCU" --clock-control none --metrics gpu__time_duration.sum --print-units base \
  --csv --page raw --launch-skip "$SKIP" --launch-count "$COUNT" \
  "$BUNDLE/bin/cuda_bench" --model "$M" --ctx 128 --steps 4 --batches "$BATCHES" --prompt 16 \
  >"$LOG/ncu-$NAME.csv" 2>&1
echo "ncu exit $?"
python3 scripts/ncu_table.py "$LOG/ncu-$NAME.csv" | tee "$LOG/profile-$NAME.txt"
