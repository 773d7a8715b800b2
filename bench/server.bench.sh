#!/usr/bin/env bash
# Server load (issue 8): requests/s and output tok/s with 1, 16 and 64 concurrent streaming
# clients (tests/server/js/load.mjs: greedy, ignore_eos, MAX_TOKENS each) against
# `forge serve`, then against llama.cpp's `llama-server --parallel 64` on a GGUF of the same
# weights, same thread count, in the same run; and forge's server overhead: the CPU time of
# its HTTP loop thread plus the engine-thread time handing events over, against the engine's
# step time (from /metrics before and after each run). llama-server runs twice per cell: as it
# comes, and with "cache_prompt": false. The load repeats a few short prompts (13 tokens):
# llama-server reuses a slot's earlier prompt token by token, and Forge's prefix cache reuses
# partial blocks (docs/engine.md), so from the second run on both skip most of the prefill;
# the second row shows llama-server doing the whole prefill every time.
#   MODELS=dir (default /work/models, else /tmp/forge-bench-models): smollm2-135m-bf16/ and
#     smollm2-135m-bf16.gguf, made here when missing (as bench/core.bench.sh does);
#     STORIES_GGUF: stories260K as GGUF (default the shared fixture).
#   LLAMA_CPP=dir (default /work/llama.cpp/build/bin). FORGE (default build/forge).
#   THREADS (default 2). MAX_TOKENS (64). RUN_TIMEOUT: seconds one load run may take (300).
#   BENCH_MODELS (default "stories260K smollm2-135m-bf16"). REPS: runs per cell, best kept (3). The load generator is tests/server/js/load.mjs, or
#   bench/server_load.py (the same measurement) where there is no Node.
set -u
cd "$(dirname "$0")/.."
MODELS=${MODELS:-/work/models}
[ -d "$MODELS" ] || MODELS=/tmp/forge-bench-models
LLAMA_CPP=${LLAMA_CPP:-/work/llama.cpp/build/bin}
STORIES_GGUF=${STORIES_GGUF:-/work/shared/fixtures/gguf/stories260K.f32.gguf}
FORGE=${FORGE:-build/forge}
THREADS=${THREADS:-2}
MAX_TOKENS=${MAX_TOKENS:-64}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
REPS=${REPS:-3}
BENCH_MODELS=${BENCH_MODELS:-stories260K smollm2-135m-bf16}
PY=${PY:-python3}
if [ "${LOADGEN:-py}" = node ]; then LOAD="node tests/server/js/load.mjs bench"; LOADGEN="tests/server/js/load.mjs (Node)"
else LOAD="$PY bench/server_load.py"; LOADGEN="bench/server_load.py (asyncio)"; fi
if [[ "$BENCH_MODELS" == *smollm2* ]] && { [ ! -f "$MODELS/smollm2-135m-bf16/model.safetensors" ] ||
   [ ! -f "$MODELS/smollm2-135m-bf16.gguf" ]; }; then
  mkdir -p "$MODELS"
  $PY scripts/make_random_model.py --like tests/fixtures/configs/HuggingFaceTB--SmolLM2-135M-Instruct/config.json \
    --dtype bf16 --out "$MODELS/smollm2-135m-bf16" --seed 1 --tokenizer tests/fixtures/tokenizers/smollm2 >/dev/null &&
  $PY scripts/ref/write_gguf.py "$MODELS/smollm2-135m-bf16" "$MODELS/smollm2-135m-bf16.gguf" --outtype keep >/dev/null
fi
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() { # URL PID
  for i in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/health")" = 200 ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
msum() { # URL NAME...: sum of the named metrics
  curl -s "$1/metrics" | awk -v names="${*:2}" 'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    ($1 in want) { s += $2 } END { printf "%.6f", s }'
}
run_load() { # URL CLIENTS [forge|nocache]: one JSON line, with the overhead for forge
  local url=$1 c=$2 n=$(( $2 * 2 > 8 ? $2 * 2 : 8 )) extra=
  [ "${3:-}" = nocache ] && extra=--no-cache-prompt
  local io0 st0
  if [ "${3:-}" = forge ]; then
    io0=$(msum "$url" forge_server_loop_cpu_seconds_total forge_server_callback_seconds_total)
    st0=$(msum "$url" forge_engine_step_seconds_total)
  fi
  local out; out=$(timeout "$RUN_TIMEOUT" $LOAD --url "$url" --clients "$c" --requests "$n" --max-tokens "$MAX_TOKENS" $extra \
    2>>"$tmp/load.err" | grep '^{')
  if [ -z "$out" ]; then
    echo "{\"clients\": $c, \"requests\": 0, \"requests_per_s\": \"failed or over ${RUN_TIMEOUT} s\", \"tokens_per_s\": \"-\", \"mean_ttft_ms\": \"\", \"p50_ttft_ms\": \"\", \"p99_ttft_ms\": \"\", \"mean_itl_ms\": \"\"}"
    return
  fi
  if [ "${3:-}" = forge ]; then
    local io1 st1; io1=$(msum "$url" forge_server_loop_cpu_seconds_total forge_server_callback_seconds_total)
    st1=$(msum "$url" forge_engine_step_seconds_total)
    out=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); io=$io1-$io0; st=$st1-$st0
d['server_cpu_s']=round(io,3); d['engine_step_s']=round(st,3); d['overhead_pct']=round(100*io/st,2) if st else None
print(json.dumps(d))" "$out")
  fi
  echo "$out"
}
row() { # ENGINE MODEL JSON
  python3 -c "import json,sys; d=json.loads(sys.argv[3])
o=d.get('overhead_pct'); print(f\"| {sys.argv[1]} | {sys.argv[2]} | {d['clients']} | {d['requests']} | {d['requests_per_s']} | {d['tokens_per_s']} | {d['mean_ttft_ms']} | {d.get('p50_ttft_ms', '-')} | {d.get('p99_ttft_ms', '-')} | {d['mean_itl_ms']} | \" + (f\"{o}% ({d['server_cpu_s']} s / {d['engine_step_s']} s)\" if o is not None else '') + ' |')" "$@"
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ), machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS, $MAX_TOKENS tokens per request, load from $LOADGEN"
echo
echo "| server | model | clients | requests | requests/s | output tok/s | mean TTFT ms | TTFT p50 ms | TTFT p99 ms | mean ITL ms | forge server overhead (loop CPU / engine step) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
best() { # JSON lines on stdin -> the one with the highest tok/s (timeouts last)
  python3 -c "import json,sys
rows=[json.loads(l) for l in sys.stdin if l.strip()]
key=lambda d: d['tokens_per_s'] if isinstance(d['tokens_per_s'], (int, float)) else -1
print(json.dumps(max(rows, key=key)))"
}
# Both servers run side by side (idle while the other is measured); each cell is the best of
# REPS runs, forge and llama-server alternating, as this machine is shared and noisy.
bench_pair() { # NAME FORGE_DIR GGUF CTX
  local name=$1 dir=$2 gguf=$3 ctx=$4 fp lp fpid lpid have_llama=no
  fp=$(port)
  $FORGE serve --model "$dir" --port "$fp" --threads "$THREADS" --max-seqs 64 --max-model-len "$ctx" \
    >"$tmp/forge.log" 2>&1 &
  fpid=$!; pids+=($fpid)
  if ! wait_ready "http://127.0.0.1:$fp" $fpid; then echo "forge serve did not start: $(tail -2 "$tmp/forge.log")"; return; fi
  if [ -x "$LLAMA_CPP/llama-server" ] && [ -f "$gguf" ]; then
    lp=$(port)
    # --threads-http: one HTTP thread per client (its default serves a few connections at once)
    LD_LIBRARY_PATH=$LLAMA_CPP "$LLAMA_CPP/llama-server" -m "$gguf" --host 127.0.0.1 --port "$lp" -t "$THREADS" \
      --parallel 64 -c $((64 * ctx)) --threads-http 72 --no-webui >"$tmp/llama.log" 2>&1 &
    lpid=$!; pids+=($lpid)
    if wait_ready "http://127.0.0.1:$lp" $lpid; then have_llama=yes
    else echo "llama-server did not start: $(tail -2 "$tmp/llama.log")"; fi
  fi
  for c in 1 16 64; do
    : >"$tmp/f.$c"; : >"$tmp/l.$c"; : >"$tmp/n.$c"
    for r in $(seq 1 "$REPS"); do
      run_load "http://127.0.0.1:$fp" $c forge >>"$tmp/f.$c"
      [ $have_llama = yes ] && run_load "http://127.0.0.1:$lp" $c >>"$tmp/l.$c"
      [ $have_llama = yes ] && run_load "http://127.0.0.1:$lp" $c nocache >>"$tmp/n.$c"
    done
  done
  for c in 1 16 64; do row "forge serve" "$name" "$(best <"$tmp/f.$c")"; done
  if [ $have_llama = yes ]; then for c in 1 16 64; do row "llama-server" "$name" "$(best <"$tmp/l.$c")"; done
    for c in 1 16 64; do row "llama-server, cache_prompt false" "$name" "$(best <"$tmp/n.$c")"; done
  else echo "| llama-server | $name | (not run: $LLAMA_CPP/llama-server or $gguf missing) |"; fi
  kill -TERM $fpid; wait $fpid 2>/dev/null
  [ $have_llama = yes ] && { kill -TERM $lpid; wait $lpid 2>/dev/null; }
}
[[ "$BENCH_MODELS" == *stories260K* ]] && bench_pair stories260K tests/fixtures/stories260K "$STORIES_GGUF" 256
[[ "$BENCH_MODELS" == *smollm2* ]] && bench_pair smollm2-135m-bf16 "$MODELS/smollm2-135m-bf16" "$MODELS/smollm2-135m-bf16.gguf" 256
if [ -s "$tmp/load.err" ]; then echo; echo "load generator errors:"; sort "$tmp/load.err" | uniq -c | head -5; fi
true
