#!/usr/bin/env bash
# The AArch64 stage of CI (make test-aarch64): cross-builds Forge for AArch64 into
# build-aarch64/ and runs its C test programs under qemu-user, which emulates a CPU with
# NEON, FEAT_DotProd and FEAT_I8MM, so the three NEON quantized variants and the NEON kernel
# set run against the scalar references. Needs scripts/install-cross-deps.sh (Debian 12 x86-64).
# FORGE_EMULATED makes the few heavy tests shrink (docs/arm.md says which and how the rest is
# covered); the shell tests (CLI, server, deploy) are not run here: they test
# architecture-independent code that the x86-64 stages cover, through the same binaries.
# The thread pool's waiting threads spin before they sleep, and under qemu-user a spin is
# slow: a forward pass whose threads share oversubscribed CPUs can take minutes. So the
# forward-pass programs are pinned to one CPU each (taskset; their default thread count
# becomes 1), in parallel: test_engine (the slowest) on one CPU, the other programs that
# create a forward context ($forward below) on the other. The rest (no thread pool) runs
# unpinned after them.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v $tool >/dev/null || { echo "ci-aarch64: $tool missing: run scripts/install-cross-deps.sh" >&2; exit 1; }
done
BUILD=build-aarch64
tests=$(ls tests/*/test_*.c | sed "s|^tests/\(.*\)\.c$|$BUILD/tests/\1|")
t0=$(date +%s)
make -j"${JOBS:-2}" CROSS=aarch64 BUILD=$BUILD all $tests
echo "ci-aarch64: build $(( $(date +%s) - t0 ))s"
file $BUILD/forge | grep -q 'ARM aarch64' || { echo "ci-aarch64: $BUILD/forge is not an AArch64 binary" >&2; exit 1; }
# the arm64 loader and libc of the cross toolchain; the arm64 -dev packages' libraries are
# found through the multiarch paths
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
export FORGE_EMULATED=1
# each quantized set forced in turn: the FORGE_CPU test checks the choice
for cpu in neon-dotprod neon scalar; do
  echo "== FORGE_CPU=$cpu"
  FORGE_CPU=$cpu qemu-aarch64 $BUILD/tests/kernels/test_quant | grep -E 'FORGE_CPU=|passed'
done
# qemu-aarch64 running a build whose kernels the host cannot run: a crash or a wrong set
# would show here first
out=$(qemu-aarch64 $BUILD/forge --version 2>&1) || { echo "$out"; exit 1; }
echo "ci-aarch64: $out"
cpus=($(python3 -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))' 2>/dev/null || echo 0))
c0=${cpus[0]}; c1=${cpus[1]:-${cpus[0]}}
export NO_SHELL_TESTS=1 BUILD TEST_TIMEOUT=${TEST_TIMEOUT:-600}
log=$(mktemp -d); trap 'rm -rf "$log"' EXIT
# not under emulation (no architecture-specific code; tested on x86-64): test_hub forks while
# other threads exist and the children can spin forever under qemu-user 7.2; test_server_api
# runs the engine's thread and the server's threads waiting on each other, minutes either way;
# the tokenizer and template programs are long integer/string workloads (minutes emulated)
skipped="hub/test_hub server/test_server_api tests/tokenizer/ tests/template/"
forward="tests/backend/ model/test_gguf model/test_load fault/test_fault_alloc engine/test_embed"
echo "ci-aarch64: not run under emulation: $skipped"
TEST_EXEC="taskset -c $c0 qemu-aarch64" FILTER=engine/test_engine bash tests/run.sh >"$log/a" 2>&1 &
pa=$!
TEST_EXEC="taskset -c $c1 qemu-aarch64" FILTER="$forward" bash tests/run.sh >"$log/b" 2>&1 &
pb=$!
ra=0; rb=0; rc=0
wait $pa || ra=$?
wait $pb || rb=$?
TEST_EXEC=qemu-aarch64 EXCLUDE="engine/test_engine $forward $skipped" bash tests/run.sh >"$log/c" 2>&1 || rc=$?
for s in b a c; do grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$log/$s" || true; done
p=0; f=0
for s in a b c; do
  sums=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/$s" || true)
  [ -n "$sums" ] || { f=$((f + 1)); continue; }
  while read -r sum; do p=$((p + ${sum%% passed*})); x=${sum#*, }; f=$((f + ${x%% failed})); done <<<"$sums"
done
echo "ci-aarch64: total $(( $(date +%s) - t0 ))s"
echo "$p passed, $f failed"
[ $ra -eq 0 ] && [ $rb -eq 0 ] && [ $rc -eq 0 ] && [ $f -eq 0 ]
