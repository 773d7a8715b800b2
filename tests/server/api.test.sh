#!/usr/bin/env bash
# forge serve over raw HTTP: the README's curl examples, /health while loading (a Hub model
# held back by the stand-in Hub), shapes of /v1/models, /tokenize, /detokenize, SSE framing,
# X-Request-Id, CORS, /metrics through promtool, unknown-field warnings, keep-alive
# comments, HTTP/1.0 and pipelining, the environment and flags, SIGTERM (in-flight requests
# finish; a second signal cancels them), and CLI errors.
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh
source tests/hub/hub_lib.sh
trap 'hub_stop; stop_all_servers' EXIT

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# ---- the model loads while /health says 503 (a Hub id, its weights held by the stand-in) ----
hub_start
hub_fault '[{"kind": "hold", "server": "cdn", "match": "/lfs/", "at": 1000}]'
PORT=$(free_port); URL=http://127.0.0.1:$PORT
"$FORGE" serve --model forge-test/stories260K --port $PORT >"$T_TMP/hub.log" 2>&1 &
PID=$!; SERVER_PIDS+=($PID)
for i in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" != 000 ] && break; sleep 0.05; done
hub_wait /lfs/ 1
check_eq "/health is 503 while the model loads" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" 503
check_eq "the API is 503 while the model loads" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/models")" 503
check "/metrics answers while loading (ready 0)" bash -c "curl -s $URL/metrics | grep -qx 'forge_server_ready 0.0'"
hub_release
ok=no; for i in $(seq 1 600); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && { ok=yes; break; }; sleep 0.05; done
check_eq "/health is 200 once loaded" "$ok" yes
check_eq "the served name defaults to the model argument" "$(curl -s $URL/v1/models | json 'd["data"][0]["id"]')" \
  forge-test/stories260K
stop_server $PID
hub_stop

# ---- one server for the rest --------------------------------------------------------------
start_server main --chat-template $TEMPLATE --served-model-name stories260K
check "server ready" test $? = 0

# the README's examples, run as written (port aside)
awk '/<!-- serve-examples/ {on=1; next} on && /^```sh/ {inblk=1; next} inblk && /^```/ {exit} inblk {print}' README.md |
  sed "s/localhost:8080/127.0.0.1:$PORT/g" >"$T_TMP/examples.sh"
check "README: the serve examples are there" test "$(grep -c '^curl' "$T_TMP/examples.sh")" -ge 5
bash -e "$T_TMP/examples.sh" >"$T_TMP/examples.out" 2>&1
check "README: every example runs" test $? = 0
check "README: completion" grep -q '"text_completion"' "$T_TMP/examples.out"
check "README: chat" grep -q '"chat.completion"' "$T_TMP/examples.out"
check "README: streaming ends with [DONE]" grep -qx 'data: \[DONE\]' "$T_TMP/examples.out"
check "README: metrics" grep -q '^forge_generation_tokens_total' "$T_TMP/examples.out"
sed 's/^/    /' "$T_TMP/examples.out" | head -c 1500 >"$T_TMP/exchange.txt"

# models, tokenize, detokenize (ids from expected-greedy.json, made by llama2.c's tokenizer)
models=$(curl -s $URL/v1/models)
check_eq "/v1/models: list with the served model and max_model_len" \
  "$(echo "$models" | json '(d["object"], d["data"][0]["id"], d["data"][0]["object"], d["data"][0]["max_model_len"])')" \
  "('list', 'stories260K', 'model', 512)"
check_eq "/v1/models/{name}" "$(curl -s $URL/v1/models/stories260K | json 'd["id"]')" stories260K
want_ids=$(python3 -c "import json; print(json.load(open('$M/expected-greedy.json'))['prompt_ids'])")
tok=$(curl -s $URL/tokenize -d '{"prompt": "Once upon a time", "return_token_strs": true}')
check_eq "/tokenize: ids equal the reference tokenizer's" "$(echo "$tok" | json 'd["tokens"]')" "$want_ids"
check_eq "/tokenize: count, max_model_len, token_strs" "$(echo "$tok" | json '(d["count"], d["max_model_len"], d["token_strs"][1])')" \
  "(5, 512, '▁Once')"
check_eq "/tokenize: add_special_tokens false drops BOS" \
  "$(curl -s $URL/tokenize -d '{"prompt": "Once upon a time", "add_special_tokens": false}' | json 'd["count"]')" 4
chat_ids=$(curl -s $URL/tokenize -d '{"messages": [{"role": "user", "content": "Hi"}]}' | json 'd["tokens"]')
check_eq "/tokenize messages: the rendered template, without BOS" \
  "$(curl -s $URL/detokenize -d "{\"tokens\": $chat_ids}" | json 'd["prompt"]')" "$(printf 'user: Hi\nassistant:')"
check_eq "/detokenize" "$(curl -s $URL/detokenize -d '{"tokens": [403, 407, 261, 378]}' | json 'd["prompt"]')" \
  "Once upon a time"

# SSE framing: "data: {json}" events separated by blank lines, the last one [DONE]
curl -sN -D "$T_TMP/sse.h" $URL/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 12, "stream": true}' \
  >"$T_TMP/sse"
check "SSE: text/event-stream" grep -qi '^content-type: text/event-stream' "$T_TMP/sse.h"
check "SSE: every event is data + blank line, JSON or [DONE] last" python3 -c "
import json, sys
t = open('$T_TMP/sse').read()
assert t.endswith('data: [DONE]\n\n'), t[-40:]
events = t.split('\n\n')[:-1]
assert all(e.startswith('data: ') and '\n' not in e for e in events), events
for e in events[:-1]: json.loads(e[6:])
assert len(events) >= 13"

# X-Request-Id and CORS
check "X-Request-Id is echoed" bash -c "curl -s -D - -o /dev/null -H 'X-Request-Id: abc-123' $URL/health | grep -qi '^x-request-id: abc-123'"
check "X-Request-Id is generated when absent" bash -c "curl -s -D - -o /dev/null $URL/health | grep -Eqi '^x-request-id: [0-9a-f]{32}'"
check "CORS: Access-Control-Allow-Origin on answers" bash -c "curl -s -D - -o /dev/null $URL/v1/models | grep -qi '^access-control-allow-origin: \*'"
pre=$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: http://x' -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization, content-type' $URL/v1/chat/completions)
check "CORS: preflight 204 allowing POST and the asked headers" bash -c "echo '$pre' | grep -q ' 204' &&
  echo '$pre' | grep -qi 'access-control-allow-methods:.*POST' && echo '$pre' | grep -qi 'access-control-allow-headers: authorization, content-type'"

# unknown fields are ignored, with a warning naming them
code=$(curl -s -o /dev/null -w '%{http_code}' $URL/v1/completions -d '{"prompt": "Hi", "max_tokens": 2, "frobnicate": 1}')
check_eq "an unknown field is ignored" "$code" 200
check "... and named in a log warning" grep -q "ignoring the unknown field 'frobnicate'" "$T_TMP/main.log"

# metrics: Prometheus text that promtool accepts
if ! command -v promtool >/dev/null; then
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || sudo -n apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1
fi
curl -s $URL/metrics >"$T_TMP/metrics.txt"
check "promtool check metrics accepts /metrics" bash -c "promtool check metrics <'$T_TMP/metrics.txt'"
for m in forge_http_requests_total forge_prompt_tokens_total forge_generation_tokens_total \
  forge_time_to_first_token_seconds_bucket forge_inter_token_latency_seconds_bucket forge_num_requests_running \
  forge_num_requests_waiting forge_kv_cache_usage_ratio forge_prefix_cache_hit_ratio; do
  check "metrics: $m" grep -q "^$m" "$T_TMP/metrics.txt"
done
check "metrics: tokens counted" test "$(metric forge_generation_tokens_total | cut -d. -f1)" -gt 20

# HTTP/1.0 (no chunking: the answer ends with the connection) and two pipelined requests
check "HTTP/1.0 non-streaming answer is whole" bash -c "curl -s --http1.0 $URL/v1/completions -d '{\"prompt\": \"Hi\", \"max_tokens\": 4}' | python3 -c 'import json,sys; json.load(sys.stdin)'"
check "HTTP/1.0 stream ends with [DONE]" bash -c "curl -sN --http1.0 $URL/v1/completions -d '{\"prompt\": \"Hi\", \"max_tokens\": 4, \"stream\": true}' | tail -c 14 | grep -q 'data: \[DONE\]'"
check "two pipelined requests get two answers" python3 -c "
import socket
b = b'{\"prompt\": \"Hi\", \"max_tokens\": 3}'
r = b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % len(b) + b
s = socket.create_connection(('127.0.0.1', $PORT)); s.settimeout(20)
s.sendall(r + r.replace(b'HTTP/1.1\r\n', b'HTTP/1.1\r\nConnection: close\r\n'))
got = b''
while True:
    d = s.recv(65536)
    if not d: break
    got += d
assert got.count(b'HTTP/1.1 200') == 2, got"
stop_server $PID
check_eq "SIGTERM on an idle server: exit 0" "$STOP_RC" 0
check "... after stopping cleanly" grep -q "server: stopped" "$T_TMP/main.log"

# ---- keep-alive comments while a request waits (max-seqs 1, an 8x500-token request ahead) ----
start_server ka --max-seqs 1 --sse-keepalive 0.01
curl -s $URL/v1/completions -d '{"prompt": "Once", "max_tokens": 500, "ignore_eos": true, "n": 8}' >/dev/null &
busy=$!
for i in $(seq 1 200); do [ "$(metric forge_num_requests_running | cut -d. -f1)" = 1 ] && break; sleep 0.01; done
curl -sN $URL/v1/completions -d '{"prompt": "Once", "max_tokens": 4, "stream": true}' >"$T_TMP/ka"
wait $busy
check "SSE keep-alive comments while queued" grep -q '^: keep-alive$' "$T_TMP/ka"
check "... and the stream still completes" grep -qx 'data: \[DONE\]' "$T_TMP/ka"

# ---- SIGTERM: an in-flight stream finishes, new requests get 503 (still listening, so a
# balancer's health check sees it), exit 0 -----------------------------------------------
python3 - "$PORT" "$PID" >"$T_TMP/term.out" 2>&1 <<'EOF'
import json, os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
body = json.dumps({"prompt": "Once", "max_tokens": 400, "ignore_eos": True, "n": 4, "stream": True}).encode()
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(60)
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
got = b""
while b"data: {" not in got:
    d = s.recv(65536)
    if not d:
        sys.exit("closed before the first event: " + got.decode())
    got += d
os.kill(pid, signal.SIGTERM)
refused = False
for _ in range(200):   # bounded: until the drain has begun
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = c.recv(65536)
    c.close()
    if answer.startswith(b"HTTP/1.1 503 ") and b'"shutting_down"' in answer and b"Connection: close" in answer:
        refused = True
        break
    time.sleep(0.01)
while not got.endswith(b"0\r\n\r\n"):
    d = s.recv(65536)
    if not d: break
    got += d
text = got.decode()
print("refused" if refused else "accepted")
print("done" if "data: [DONE]" in text else "no DONE")
print("finish", text.count('"finish_reason":"length"'))
EOF
check_eq "SIGTERM: /health answers 503 shutting_down while draining" "$(sed -n 1p "$T_TMP/term.out")" refused
check_eq "SIGTERM: the in-flight stream completes" "$(sed -n 2,3p "$T_TMP/term.out" | tr '\n' ' ')" "done finish 4 "
for i in $(seq 1 300); do kill -0 $PID 2>/dev/null || break; sleep 0.05; done
wait $PID; rc=$?
check_eq "SIGTERM: exit status 0 after the stream" "$rc" 0

# ---- a second signal cancels: the stream ends with an error event, a pending answer 503 ----
start_server cancel --max-seqs 1 --chat-template $TEMPLATE
curl -s -o "$T_TMP/c503" -w '%{http_code}' $URL/v1/completions \
  -d '{"prompt": "Once", "max_tokens": 500, "ignore_eos": true, "n": 64}' >"$T_TMP/c503.code" &
other=$!
for i in $(seq 1 200); do [ "$(metric forge_server_requests_in_flight | cut -d. -f1)" = 1 ] && break; sleep 0.01; done
python3 - "$PORT" "$PID" >"$T_TMP/cancel.out" 2>&1 <<'EOF'
import json, os, signal, socket, sys
port, pid = int(sys.argv[1]), int(sys.argv[2])
# a chat stream sends its role chunk at once, even while it waits behind the other request
body = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 400, "ignore_eos": True, "n": 8,
                   "stream": True}).encode()
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(60)
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
got = b""
while b"data: {" not in got:
    d = s.recv(65536)
    if not d:
        sys.exit("closed before the first event: " + got.decode())
    got += d
os.kill(pid, signal.SIGTERM)
os.kill(pid, signal.SIGINT)
while True:
    d = s.recv(65536)
    if not d or d.endswith(b"0\r\n\r\n"):
        got += d
        break
    got += d
events = [e for e in got.decode().split("\n\n") if "data: " in e]
err = [e for e in events if '"error"' in e]
print("error event" if err and "shutting_down" in err[0] else "no error event")
print("then [DONE]" if events[-1].strip().endswith("data: [DONE]") else "no DONE")
EOF
wait $other
check_eq "second signal: the stream gets an error event" "$(sed -n 1p "$T_TMP/cancel.out")" "error event"
check_eq "... followed by [DONE]" "$(sed -n 2p "$T_TMP/cancel.out")" "then [DONE]"
check_eq "second signal: a pending non-streaming request gets 503" "$(cat "$T_TMP/c503.code")" 503
for i in $(seq 1 300); do kill -0 $PID 2>/dev/null || break; sleep 0.05; done
wait $PID; rc=$?
check_eq "second signal: exit status 0" "$rc" 0

# ---- environment and flags ------------------------------------------------------------------
P2=$(free_port)
FORGE_PORT=$P2 FORGE_HOST=127.0.0.1 FORGE_API_KEY=envkey FORGE_MODEL=$M "$FORGE" serve --api-key flagkey \
  >"$T_TMP/env.log" 2>&1 &
PID=$!; SERVER_PIDS+=($PID); URL=http://127.0.0.1:$P2
for i in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && break; sleep 0.05; done
check_eq "FORGE_PORT, FORGE_MODEL: serving" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" 200
check_eq "--api-key overrides FORGE_API_KEY (flag key works)" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer flagkey' $URL/v1/models)" 200
check_eq "... (environment key refused)" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer envkey' $URL/v1/models)" 401
check_eq "/health and /metrics need no key" "$(curl -s -o /dev/null -w '%{http_code}' $URL/metrics)" 200
stop_server $PID

# ---- CLI errors: a message and a non-zero exit, never a crash -----------------------------
expect_fail() { # name, pattern, args...
  local name=$1 pat=$2; shift 2
  "$FORGE" serve "$@" >/dev/null 2>"$T_TMP/e" </dev/null; local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q -- "$pat" "$T_TMP/e"; then echo "ok   $name"; T_PASSED=$((T_PASSED + 1))
  else echo "FAIL $name (rc $rc)"; sed 's/^/    /' "$T_TMP/e" | head -5; T_FAILED=$((T_FAILED + 1)); fi
}
expect_fail "port out of range" "port" --model $M --port 70000
FORGE_PORT=abc expect_fail "FORGE_PORT not a number" "FORGE_PORT" --model $M
FORGE_DEVICE=tpu expect_fail "unknown FORGE_DEVICE" "tpu" --model $M --port 0
expect_fail "unknown --device" "tpu" --model $M --port 0 --device tpu
expect_fail "a model folder that does not exist" "does-not-exist" --model /tmp/does-not-exist-forge --port 0
expect_fail "a chat template that does not exist" "nope.jinja" --model $M --port 0 --chat-template /tmp/nope.jinja
expect_fail "an address that cannot be bound" "cannot listen" --model $M --host 203.0.113.1 --port 0
finish
