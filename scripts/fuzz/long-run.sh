#!/usr/bin/env bash
# Long libFuzzer runs for docs/fuzzing.md: each named target (default: all in $BUILD/fuzz)
# for SECONDS, seeded from tests/fuzz/corpus/<target>/ and its dictionary; JOBS targets at a
# time. Writes $LOGDIR/<target>.log and prints one table row per target: runs, execs/s,
# coverage at start and end, features, corpus size, crashes.
#   make fuzz FUZZ_SECONDS=1 && SECONDS_EACH=1800 JOBS=2 scripts/fuzz/long-run.sh [targets...]
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-fuzz}
SECONDS_EACH=${SECONDS_EACH:-1800}
JOBS=${JOBS:-1}
LOGDIR=${LOGDIR:-$BUILD/long-runs}
mkdir -p "$LOGDIR"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && for b in "$BUILD"/fuzz/fuzz_*; do targets+=("$(basename "$b")"); done
run_one() {
  local name=$1 work="$LOGDIR/$1.corpus"
  rm -rf "$work" && mkdir -p "$work"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name"/. "$work"/
  local seeds; seeds=$(ls "$work" | wc -l)
  local dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  local t0; t0=$(date +%s)
  "$BUILD/fuzz/$name" ${dict[@]+"${dict[@]}"} -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$LOGDIR/$name.crash-" "$work" >"$LOGDIR/$name.log" 2>&1
  local rc=$? t1; t1=$(date +%s)
  local runs cov0 cov1 ft corp size crashes
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$LOGDIR/$name.log" | awk '{print $2}')
  cov0=$(grep -m1 -oE 'INITED cov: [0-9]+' "$LOGDIR/$name.log" | awk '{print $3}')
  cov1=$(grep -oE 'cov: [0-9]+' "$LOGDIR/$name.log" | tail -1 | awk '{print $2}')
  ft=$(grep -oE 'ft: [0-9]+' "$LOGDIR/$name.log" | tail -1 | awk '{print $2}')
  corp=$(ls "$work" | wc -l); size=$(du -sh "$work" | cut -f1)
  crashes=$(ls "$LOGDIR/$name".crash-* 2>/dev/null | wc -l)
  echo "| $(date -u +%F) | $name | $((t1 - t0)) s | ${runs:-?} | $(( ${runs:-0} / (t1 - t0 + 1) )) | ${cov0:-?} -> ${cov1:-?} | ${ft:-?} | $seeds -> $corp ($size) | $crashes (rc $rc) |"
}
i=0
for t in "${targets[@]}"; do
  run_one "$t" >>"$LOGDIR/table.md" &
  i=$((i + 1))
  if [ $((i % JOBS)) -eq 0 ]; then wait; fi
done
wait
cat "$LOGDIR/table.md"
