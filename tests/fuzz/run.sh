#!/usr/bin/env bash
# Runs every libFuzzer target in $BUILD/fuzz for FUZZ_SECONDS, seeded from
# tests/fuzz/corpus/<target>/ and given the dictionary tests/fuzz/<target>.dict, when present.
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-fuzz}
passed=0; failed=0
for bin in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work=$(mktemp -d)
  seeds=tests/fuzz/corpus/$name
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  if "$bin" ${dict[@]+"${dict[@]}"} -max_total_time="${FUZZ_SECONDS:-15}" -rss_limit_mb=2048 -timeout=10 \
       -max_len=65536 -print_final_stats=1 -artifact_prefix="$work.crash-" "$work" >"$work.log" 2>&1; then
    echo "ok   $name ($(grep -oE 'stat::number_of_executed_units: [0-9]+' "$work.log" | awk '{print $2}') runs)"
    passed=$((passed + 1))
  else
    echo "FAIL $name"; tail -n 40 "$work.log" | sed 's/^/    /'
    mkdir -p "$BUILD/fuzz-crashes" && cp "$work".crash-* "$BUILD/fuzz-crashes/" 2>/dev/null
    failed=$((failed + 1))
  fi
  rm -rf "$work" "$work.log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
