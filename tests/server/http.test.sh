#!/usr/bin/env bash
# The HTTP layer of a live server (issue 12): strict framing answered with OpenAI JSON,
# the API key checked before any body byte (memory stays flat under unauthenticated
# uploads), pipelining, half-close, Expect, streaming disconnects counted, the connection
# cap, file descriptor exhaustion without a busy loop or a log flood, /health answering 503
# during the shutdown drain. Cases: tests/server/http_live.py.
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

run_py() { # args...: runs http_live.py, adds its counts
  python3 tests/server/http_live.py "$@" >"$T_TMP/py.out" 2>&1
  grep -v '^ok ' "$T_TMP/py.out" | sed 's/^/  /' | head -40
  grep '^ok ' "$T_TMP/py.out"
  local sum p f
  sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/py.out" | tail -1)
  p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
  T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
}

# under ASan, freed memory waits in a quarantine (256 MB by default) that RSS would show
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=16"
start_server h --api-key sekret --max-seqs 1 --shutdown-timeout 300
check "server ready" test $? = 0
run_py framing "$PORT"
run_py memory "$PORT" "$PID"
check "no internal errors logged" bash -c "! grep -E 'ERROR|Sanitizer|runtime error' '$T_TMP/h.log'"
check "the server is still running" kill -0 $PID

# the shutdown drain: /health and new requests get 503 while a request finishes (128 x 450
# tokens one sequence at a time, --max-seqs 1: many seconds, so the drain is still on)
body='{"prompt": "Once upon a time", "max_tokens": 450, "n": 128, "ignore_eos": true}'
curl -s -o "$T_TMP/long.json" -H 'Authorization: Bearer sekret' -H 'Content-Type: application/json' \
  -d "$body" "$URL/v1/completions" &
CURL=$!
for i in $(seq 1 200); do   # bounded: until the request runs
  [ "$(metric forge_server_requests_in_flight)" = 1 ] && break; sleep 0.02
done
kill -TERM $PID
for i in $(seq 1 100); do   # bounded: until the drain began (the log says so)
  grep -q 'server: stopping' "$T_TMP/h.log" && break; sleep 0.02
done
health=$(curl -s -w ' %{http_code}' "$URL/health")
check_eq "draining: /health answers 503 shutting_down" "$(echo "$health" | python3 -c 'import json,sys; b,c=sys.stdin.read().rsplit(" ",1); print(c.strip(), json.loads(b)["error"]["code"])')" "503 shutting_down"
new=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sekret' -H 'Content-Type: application/json' \
  -d '{"prompt": "x", "max_tokens": 1}' "$URL/v1/completions")
check_eq "draining: a new request gets 503" "$new" 503
wait $CURL
check "draining: the running request finishes with its 128 x 450 tokens" python3 -c "
import json; d = json.load(open('$T_TMP/long.json')); assert d['usage']['completion_tokens'] == 128 * 450, d"
stop_server $PID
check_eq "drained: exit status 0" "$STOP_RC" 0

# the connection cap
start_server cap --max-connections 6
check "server with --max-connections 6 ready" test $? = 0
run_py cap "$PORT" 6
stop_server $PID

# file descriptors: the default cap under ulimit -n 200 (the issue's case), and no cap
# under ulimit -n 64 (accept fails with EMFILE: back-off, not a busy loop)
( ulimit -n 200; start_server fd1 >/dev/null; echo "$PORT $PID" > "$T_TMP/fd1"; wait $PID ) &
for i in $(seq 1 600); do [ -s "$T_TMP/fd1" ] && break; sleep 0.1; done
read PORT PID < "$T_TMP/fd1"; URL=http://127.0.0.1:$PORT
run_py fdlimit "$PORT" "$PID" "$T_TMP/fd1.log" capped
kill -TERM "$PID"; wait

( ulimit -n 64; start_server fd2 --max-connections 1000 >/dev/null; echo "$PORT $PID" > "$T_TMP/fd2"; wait $PID ) &
for i in $(seq 1 600); do [ -s "$T_TMP/fd2" ] && break; sleep 0.1; done
read PORT PID < "$T_TMP/fd2"; URL=http://127.0.0.1:$PORT
run_py fdlimit "$PORT" "$PID" "$T_TMP/fd2.log" uncapped
check "EMFILE is logged, rate-limited" grep -q 'out of file descriptors' "$T_TMP/fd2.log"
kill -TERM "$PID"; wait
finish
