#!/usr/bin/env bash
# Runs every test program (build/tests/*/test_*) and every shell test (tests/*/*.test.sh)
# from the repository root, and ends with one line: "N passed, N failed".
# BUILD selects the build directory (build, build-asan). FILTER=substring runs a subset
# (several words: any of them).
# TEST_EXEC prefixes each test program (scripts/ci-aarch64.sh: "qemu-aarch64" for a cross
# build); NO_SHELL_TESTS=1 runs the test programs only; EXCLUDE="substring ..." skips matches.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export FORGE_BUILD=$BUILD
[ "$BUILD" = build-asan ] && export FORGE_SANITIZE=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0; failed=0; broken=()
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

run_one() { # name, command...
  local name=$1; shift
  local out="$log/$(echo "$name" | tr '/' '_').log"
  local t0=$(date +%s)
  timeout "${TEST_TIMEOUT:-900}" "$@" >"$out" 2>&1
  local rc=$? t1=$(date +%s)
  local sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  local p=0 f=0
  if [ -n "$sum" ]; then p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}; fi
  if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi   # crashed or timed out without a verdict
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-44s %4d passed %3d failed %4ds\n' "$name" "$p" "$f" $((t1 - t0))
  if [ "$f" != 0 ]; then
    broken+=("$name")
    grep -E '^(FAIL|    )|ERROR|Sanitizer|runtime error|not ok' "$out" | head -40 | sed 's/^/    | /'
    [ $rc -ne 0 ] && tail -n 15 "$out" | sed 's/^/    > /'
  fi
}

has_word() { # path, words: true when the path contains one of the words
  local x
  for x in $2; do [[ "$1" == *"$x"* ]] && return 0; done
  return 1
}
excluded() { [ -n "${EXCLUDE:-}" ] && has_word "$1" "$EXCLUDE"; }

for bin in $(ls "$BUILD"/tests/*/test_* 2>/dev/null | sort); do
  case "$bin" in *.d|*.o) continue;; esac
  [ -n "${FILTER:-}" ] && ! has_word "$bin" "$FILTER" && continue
  excluded "$bin" && continue
  run_one "${bin#$BUILD/}" ${TEST_EXEC:-} "$bin"
done
for sh in $( [ "${NO_SHELL_TESTS:-0}" = 1 ] || ls tests/*/*.test.sh 2>/dev/null | sort); do
  [ -n "${FILTER:-}" ] && ! has_word "$sh" "$FILTER" && continue
  excluded "$sh" && continue
  run_one "$sh" bash "$sh"
done
[ ${#broken[@]} -gt 0 ] && echo "failing: ${broken[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
