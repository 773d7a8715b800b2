#!/usr/bin/env bash
# The single run on a GPU machine that verifies the CUDA backend (issues 9 and 20), in about
# nine minutes: environment (nvidia-smi, ldd of what runs), random-weight models made there
# (SmolLM2-135M and Llama-3.2-1B shapes in BF16), the cross-backend op test (every quantized
# type included), the parity models, batch invariance of the default path among 64
# sequences, graphs and quantized GGUF files against the CPU (cuda_model), the benchmark next
# to the measured bandwidth roofline (BF16 on the batch-invariant default, BF16 on the cuBLAS
# opt-in: the invariance's cost, Q8_0 and Q4_K quantized at load, greedy ids chosen on the
# device), and the op test once more
# under compute-sanitizer.
#
# Build the programs here first: bash scripts/gpu-bundle.sh (makes gpu-bundle/, which a
# device run must `carry`). Then, from the repository root on the GPU machine:
#   bash scripts/gpu-check.sh              logs to $OUT (or ./gpu-check-out): eight files
#   bash scripts/gpu-check.sh --dry-run    without a GPU: the same steps on the CPU emulator
#                                          (gpu-bundle/emu) with tiny sizes
# Environment: GPU_BUNDLE (default ./gpu-bundle), MODELS (where models are made; default
# /dev/shm or /tmp), BUDGET (seconds for the whole run, default 560).
set -u
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = --dry-run ] && DRY=1
BUNDLE=$(cd "${GPU_BUNDLE:-gpu-bundle}" 2>/dev/null && pwd) || { echo "gpu-check: no ${GPU_BUNDLE:-gpu-bundle}/: run scripts/gpu-bundle.sh first"; exit 1; }
LOG=${OUT:-$PWD/gpu-check-out}
mkdir -p "$LOG"
(cd "$LOG" && rm -f summary.txt env.log models.log ops.log model.log bench.log results.json sanitizer.log)
if [ -z "${MODELS:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then MODELS=/dev/shm/forge-gpu-models; else MODELS=/tmp/forge-gpu-models; fi
fi
mkdir -p "$MODELS"
BUDGET=${BUDGET:-560}
T_START=$(date +%s)
SUMMARY=$LOG/summary.txt
: >"$SUMMARY"
BIN=$BUNDLE/bin

# cuBLAS 13: the CUDA toolkit's, or a pip wheel's (nvidia-cublas), wherever it is
CUBLAS_DIR=""
for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
  [ -e "$d/libcublas.so.13" ] && { CUBLAS_DIR=$d; break; }
done
if [ -z "$CUBLAS_DIR" ]; then
  for root in /opt /usr/local /usr/lib /; do
    f=$(timeout 20 find "$root" -xdev -name libcublas.so.13 -not -path '/proc/*' 2>/dev/null | head -1)
    [ -n "$f" ] && { CUBLAS_DIR=$(dirname "$f"); break; }
  done
fi
export LD_LIBRARY_PATH="$BUNDLE/lib${CUBLAS_DIR:+:$CUBLAS_DIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ $DRY = 1 ]; then
  export FORGE_CUDA_LIB=$BUNDLE/emu/libforge-cuda.so
else
  export FORGE_CUDA_LIB=$BUNDLE/lib/libforge-cuda.so
fi
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)

left() { echo $((BUDGET - ($(date +%s) - T_START))); }

# step NAME LOGFILE MAX_SECONDS CMD...: runs CMD with the smaller of MAX_SECONDS and the
# budget left, appending to LOGFILE; one line per step in summary.txt
step() {
  local name=$1 log=$LOG/$2 max=$3
  shift 3
  local t=$(left)
  [ "$t" -gt "$max" ] && t=$max
  if [ "$t" -lt 5 ]; then
    printf '%-28s skipped: out of time\n' "$name" | tee -a "$SUMMARY"
    return
  fi
  local from=$(($(wc -l <"$log" 2>/dev/null || echo 0) + 1))
  echo "== $name (limit ${t}s): $*" | tee -a "$log"
  local t0=$(date +%s%N)
  timeout --kill-after=5 "$t" "$@" >>"$log" 2>&1
  local rc=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  tail -n +"$from" "$log" | grep -E '^(FAIL|ok|[0-9]+ passed)|    |RESULT|warm-up|decode|prefill|device |backend|ERROR|error' | tail -n 40
  local verdict=ok
  [ $rc -ne 0 ] && verdict="FAILED (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))"
  printf '%-28s %-28s %6.1f s\n' "$name" "$verdict" "$(echo "$ms" | awk '{print $1 / 1000}')" | tee -a "$SUMMARY"
}

# ---- 1. the machine and what runs ----------------------------------------------------------
{
  echo "== date: $(date -u +%Y-%m-%dT%H:%M:%SZ), dry run: $DRY"
  echo "== nvidia-smi"; nvidia-smi 2>&1 || echo "(no nvidia-smi)"
  echo "== nvcc: $(nvcc --version 2>/dev/null | tail -1)"
  echo "== uname: $(uname -a)"
  echo "== cuBLAS from: ${CUBLAS_DIR:-(not found: left to the dynamic linker)}"
  echo "== compute-sanitizer: ${SANITIZER:-(not found)}"
  echo "== FORGE_CUDA_LIB=$FORGE_CUDA_LIB"
  echo "== LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "== bundle"; cat "$BUNDLE/MANIFEST" 2>/dev/null
  for f in "$BIN"/* "$FORGE_CUDA_LIB"; do echo "== ldd $f"; ldd "$f" 2>&1; done
} >"$LOG/env.log" 2>&1
head -n 30 "$LOG/env.log"

# ---- 2. random-weight models, made here --------------------------------------------------
SMOL=$MODELS/smollm2-135m-bf16
LLAMA=$MODELS/llama-3.2-1b-bf16
step "make models" models.log 120 bash -c "
  '$BIN/make_model' --like tests/fixtures/configs/HuggingFaceTB--SmolLM2-135M/config.json --dtype bf16 --out '$SMOL' &&
  '$BIN/make_model' --like tests/fixtures/configs/meta-llama--Llama-3.2-1B/config.json --dtype bf16 --out '$LLAMA'"

# ---- 3. correctness --------------------------------------------------------------------------
if [ $DRY = 1 ]; then
  step "op test (quick, emulator)" ops.log 120 "$BIN/cuda_ops" --quick
  step "parity (emulator, 1 model)" model.log 150 "$BIN/cuda_model" --only qwen3_qknorm --skip stories_greedy,batch_invariance
else
  step "op test" ops.log 90 "$BIN/cuda_ops"
  step "parity, invariance, graphs" model.log 120 "$BIN/cuda_model"
fi

# ---- 4. speed --------------------------------------------------------------------------------
if [ $DRY = 1 ]; then
  step "bench stories260K (emulator)" bench.log 120 "$BIN/cuda_bench" --model tests/fixtures/stories260K --ctx 16 --steps 2 --batches 1,2 --prompt 16
  step "bench SmolLM2 shape (cpu)" bench.log 60 "$BIN/cuda_bench" --device cpu --model "$SMOL" --ctx 16 --steps 2 --batches 1,2 --prompt 16
  step "bench Llama-1B shape (cpu)" bench.log 60 "$BIN/cuda_bench" --device cpu --model "$LLAMA" --ctx 4 --steps 1 --batches 1 --prompt 4
  step "bench stories cuBLAS (emu)" bench.log 60 env FORGE_CUDA_BLAS=1 "$BIN/cuda_bench" --model tests/fixtures/stories260K --ctx 16 --steps 2 --batches 1,2 --prompt 16
  step "bench stories Q8_0 (emu)" bench.log 60 "$BIN/cuda_bench" --model tests/fixtures/stories260K --ctx 16 --steps 2 --batches 1,2 --prompt 16 --quantize q8_0
  step "bench stories greedy (emu)" bench.log 60 "$BIN/cuda_bench" --model tests/fixtures/stories260K --ctx 16 --steps 2 --batches 1,2 --prompt 16 --device-greedy 1
else
  # the batch-invariant default (Forge's GEMV/GEMM for every row count)
  step "bench SmolLM2-135M bf16" bench.log 90 "$BIN/cuda_bench" --model "$SMOL" --ctx 128 --steps 128 --batches 1,8,64 --prompt 512
  step "bench Llama-3.2-1B bf16" bench.log 120 "$BIN/cuda_bench" --model "$LLAMA" --ctx 128 --steps 64 --batches 1,8,64 --prompt 512
  # what invariance costs: the same with cuBLAS for every batch over one row
  step "bench SmolLM2 bf16 cuBLAS" bench.log 60 env FORGE_CUDA_BLAS=1 "$BIN/cuda_bench" --model "$SMOL" --ctx 128 --steps 64 --batches 1,64 --prompt 512
  step "bench Llama-1B bf16 cuBLAS" bench.log 75 env FORGE_CUDA_BLAS=1 "$BIN/cuda_bench" --model "$LLAMA" --ctx 128 --steps 32 --batches 1,64 --prompt 512
  # quantized weights on the GPU (the matrices quantized at load, as a GGUF file holds them)
  step "bench SmolLM2 Q8_0" bench.log 60 "$BIN/cuda_bench" --model "$SMOL" --ctx 128 --steps 64 --batches 1,64 --prompt 512 --quantize q8_0
  step "bench Llama-1B Q8_0" bench.log 75 "$BIN/cuda_bench" --model "$LLAMA" --ctx 128 --steps 32 --batches 1,64 --prompt 512 --quantize q8_0
  step "bench Llama-1B Q4_K" bench.log 75 "$BIN/cuda_bench" --model "$LLAMA" --ctx 128 --steps 32 --batches 1,64 --prompt 512 --quantize q4_k
  # tokens chosen on the device: 64 greedy ids back a step instead of 64 x 128K logits
  step "bench Llama-1B greedy ids" bench.log 60 "$BIN/cuda_bench" --model "$LLAMA" --ctx 128 --steps 32 --batches 1,64 --prompt 64 --device-greedy 1
fi
grep -h '^RESULT ' "$LOG/bench.log" | sed 's/^RESULT //' >"$LOG/results.json"

# ---- 5. the op test under compute-sanitizer ---------------------------------------------------
if [ -n "$SANITIZER" ] && [ $DRY = 0 ]; then
  step "memcheck op test" sanitizer.log 120 "$SANITIZER" --tool memcheck --error-exitcode 3 "$BIN/cuda_ops" --quick
  step "racecheck op test" sanitizer.log 90 "$SANITIZER" --tool racecheck --error-exitcode 3 "$BIN/cuda_ops" --quick
  step "memcheck forward" sanitizer.log 90 "$SANITIZER" --tool memcheck --error-exitcode 3 "$BIN/cuda_model" \
    --only qwen2_bias --skip stories_greedy,batch_invariance
else
  echo "compute-sanitizer not run (dry run: $DRY, found: ${SANITIZER:-no})" | tee -a "$LOG/sanitizer.log" "$SUMMARY"
fi

echo "== summary ($(( $(date +%s) - T_START )) s; logs in $LOG)"
cat "$SUMMARY"
[ -s "$LOG/results.json" ] && cat "$LOG/results.json"
rm -rf "$SMOL" "$LLAMA"
! grep -q FAILED "$SUMMARY"
