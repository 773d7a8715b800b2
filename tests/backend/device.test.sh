#!/usr/bin/env bash
# Device selection as a user sees it (stderr and exit status), without a GPU: auto falls
# back to the CPU with exactly one log line per process, FORGE_DEVICE=cuda is an error
# that says why, bad libraries are named. With the real libforge-cuda.so when it is built
# (make CUDA=1) and no GPU is usable here: "no CUDA device found".
source "$(dirname "$0")/../lib.sh"
BIN=$FORGE_BUILD/tests/backend/test_device
run() { # env assignments..., then runs 2 contexts; stdout+stderr to $T_TMP/run
  env "$@" "$BIN" 2 >"$T_TMP/run" 2>&1; echo $? >"$T_TMP/rc"
}
lines() { grep -c "$1" "$T_TMP/run"; }

unset FORGE_DEVICE FORGE_CUDA_LIB FORGE_GPU_MEMORY_UTILIZATION

run FORGE_CUDA_LIB=/nonexistent/libforge-cuda.so
check_eq "auto without the library: CPU" "$(grep -c '^device=cpu$' "$T_TMP/run")" 2
check_eq "auto without the library: one fallback line" "$(lines 'CUDA not used')" 1
check_eq "the line names the missing file" \
  "$(grep 'CUDA not used' "$T_TMP/run")" \
  "forge: device: CPU (CUDA not used: FORGE_CUDA_LIB=/nonexistent/libforge-cuda.so: no such file)"

run FORGE_CUDA_LIB=/nonexistent/libforge-cuda.so FORGE_DEVICE=cuda
check_eq "cuda without the library fails" "$(cat "$T_TMP/rc")" 1
check_eq "cuda without the library: the error says why" "$(grep -c '^error: FORGE_CUDA_LIB=/nonexistent/libforge-cuda.so: no such file$' "$T_TMP/run")" 1
check_eq "cuda without the library: no fallback line" "$(lines 'CUDA not used')" 0

run FORGE_DEVICE=cpu FORGE_CUDA_LIB=/nonexistent/libforge-cuda.so
check_eq "cpu: no line about CUDA" "$(lines 'CUDA')" 0
check_eq "cpu: CPU" "$(grep -c '^device=cpu$' "$T_TMP/run")" 2

run FORGE_DEVICE=gpu
check_eq "invalid FORGE_DEVICE fails" "$(cat "$T_TMP/rc")" 1
check_eq "invalid FORGE_DEVICE is named" "$(grep -c 'FORGE_DEVICE "gpu" is not a device: use auto, cpu or cuda' "$T_TMP/run")" 1

echo "not a shared object" >"$T_TMP/libforge-cuda.so"
run FORGE_CUDA_LIB="$T_TMP/libforge-cuda.so"
check_eq "a broken library: CPU" "$(grep -c '^device=cpu$' "$T_TMP/run")" 2
check "a broken library is named" grep -q "CUDA not used: $T_TMP/libforge-cuda.so cannot be loaded: " "$T_TMP/run"

libm=$(ldconfig -p 2>/dev/null | awk '/libm\.so\.6 .*x86-64|libm\.so\.6 .*AArch64/ {print $NF; exit}')
if [ -n "$libm" ]; then
  run FORGE_CUDA_LIB="$libm" FORGE_DEVICE=cuda
  check "a library without the entry point is refused" grep -q "does not match this libforge" "$T_TMP/run"
fi

# the real library, when built, on a machine without a usable GPU
if [ -f "$FORGE_BUILD/libforge-cuda.so" ] && ! nvidia-smi -L >/dev/null 2>&1; then
  run FORGE_CUDA_LIB="$PWD/$FORGE_BUILD/libforge-cuda.so"
  check_eq "libforge-cuda.so, no GPU: CPU" "$(grep -c '^device=cpu$' "$T_TMP/run")" 2
  check_eq "libforge-cuda.so, no GPU: one line" "$(lines 'CUDA not used: no CUDA device found')" 1
  run FORGE_CUDA_LIB="$PWD/$FORGE_BUILD/libforge-cuda.so" FORGE_DEVICE=cuda
  check_eq "libforge-cuda.so, no GPU, cuda: fails" "$(cat "$T_TMP/rc")" 1
  check "libforge-cuda.so, no GPU, cuda: no CUDA device found" grep -q '^error: no CUDA device found' "$T_TMP/run"
  # found next to the executable without FORGE_CUDA_LIB
  mkdir -p "$T_TMP/bin" && cp "$BIN" "$FORGE_BUILD/libforge-cuda.so" "$T_TMP/bin/"
  env FORGE_DEVICE=cuda "$T_TMP/bin/test_device" 1 >"$T_TMP/run" 2>&1
  check "found beside the executable" grep -q '^error: no CUDA device found' "$T_TMP/run"
else
  echo "skip: no $FORGE_BUILD/libforge-cuda.so (make CUDA=1) or a GPU is present"
fi
finish
