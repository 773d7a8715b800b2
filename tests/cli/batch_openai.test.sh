#!/usr/bin/env bash
# forge batch with OpenAI Batch API lines: each answer body equals what `forge serve` answers
# for the same body over HTTP (ids and timestamps aside), invalid lines get error lines,
# and --resume after a kill completes the output exactly as an uninterrupted run.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../server/server_lib.sh"

python3 - >"$T_TMP/oa.jsonl" <<'PY'
import json
bodies = [
    ("/v1/chat/completions", {"model": "stories260K", "messages": [{"role": "user", "content": "Tell me a story"}],
                              "max_tokens": 24, "seed": 5, "temperature": 0.8}),
    ("/v1/chat/completions", {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                              "max_tokens": 12, "temperature": 0, "logprobs": True, "top_logprobs": 2}),
    ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 10, "temperature": 0, "logprobs": 2, "echo": True}),
    ("/v1/completions", {"prompt": ["Lily", "Tom"], "n": 3, "max_tokens": 8, "seed": 7, "temperature": 1.0}),
    ("/v1/completions", {"prompt": [1, 403, 407], "max_tokens": 30, "temperature": 0, "stop": ["girl", "dog"]}),
    ("/v1/completions", {"prompt": "The cat", "max_tokens": 6, "seed": 1, "logit_bias": {"261": 100}}),
    ("/v1/completions", {"prompt": "x", "max_tokens": -5}),
    ("/v1/completions", {"model": "gpt-4o-mini", "prompt": "x"}),
    ("/v1/chat/completions", {"max_tokens": 3}),
    ("/v1/completions", {"prompt": "Once upon a time " * 200, "max_tokens": 4}),
    ("/v1/embeddings", {"input": "hi"}),
]
for i, (url, body) in enumerate(bodies):
    print(json.dumps({"custom_id": "req-%d" % i, "method": "POST", "url": url, "body": body}))
print(json.dumps({"custom_id": "bad-method", "method": "GET", "url": "/v1/completions", "body": {}}))
print(json.dumps({"custom_id": "bad-url", "method": "POST", "url": "/v1/files", "body": {}}))
print(json.dumps({"custom_id": 5, "method": "POST", "url": "/v1/completions", "body": {}}))
print(json.dumps({"custom_id": "no-body", "method": "POST", "url": "/v1/completions"}))
print(json.dumps({"custom_id": "stream", "method": "POST", "url": "/v1/completions", "body": {"prompt": "a", "stream": True}}))
print("{not json")
PY
"$FORGE" batch --model $M --served-model-name stories260K --chat-template $TEMPLATE --prompts "$T_TMP/oa.jsonl" >"$T_TMP/oa.out" 2>"$T_TMP/oa.err"
check "exit status 1 (some lines failed)" test $? = 1
check_eq "one output line per input line" "$(wc -l <"$T_TMP/oa.out")" "$(wc -l <"$T_TMP/oa.jsonl")"

start_server oa --chat-template $TEMPLATE --served-model-name stories260K || { finish; exit 1; }
check "answers equal the server's (status and body; ids and created aside)" python3 - "$T_TMP/oa.jsonl" "$T_TMP/oa.out" "$URL" <<'PY'
import json, sys, urllib.request, urllib.error
ins = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{\"custom_id\": \"req-")]
outs = [json.loads(l) for l in open(sys.argv[2])]
def norm(b):  # ids, timestamps and cache hits (which depend on what ran before) aside
    b = dict(b); b.pop("id", None); b.pop("created", None)
    if isinstance(b.get("usage"), dict): b["usage"] = dict(b["usage"]); b["usage"].pop("prompt_tokens_details", None)
    return b
bad = 0
for i, line in enumerate(ins):
    o = outs[i]
    assert o["custom_id"] == line["custom_id"] and o["error"] is None and o["id"].startswith("batch_req_"), o
    req = urllib.request.Request(sys.argv[3] + line["url"], data=json.dumps(line["body"]).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            status, body = r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        status, body = e.code, json.loads(e.read())
    got = o["response"]
    if got["status_code"] != status or norm(got["body"]) != norm(body):
        bad += 1
        print("MISMATCH", line["custom_id"], status, got["status_code"], json.dumps(body)[:300], json.dumps(got["body"])[:300])
print(len(ins), "lines compared;", [o["response"]["status_code"] for o in outs[:len(ins)]])
sys.exit(1 if bad else 0)
PY
stop_server $PID

field() { python3 -c 'import json, sys; o = [json.loads(l) for l in open(sys.argv[3])][int(sys.argv[1])]; print(eval(sys.argv[2]))' "$1" "$2" "$T_TMP/oa.out"; }
check_eq "a 200 answer is an OpenAI chat completion" "$(field 0 "o['response']['body']['object'], o['response']['status_code']")" "('chat.completion', 200)"
check_eq "n x prompts: 6 choices" "$(field 3 "len(o['response']['body']['choices'])")" 6
check_eq "the server's 400 for a bad field" "$(field 6 "o['response']['status_code'], o['response']['body']['error']['param']")" "(400, 'max_tokens')"
check_eq "the server's 404 for another model" "$(field 7 "o['response']['status_code'], o['response']['body']['error']['code']")" "(404, 'model_not_found')"
check_eq "an over-long prompt: 400" "$(field 9 "o['response']['status_code'], o['response']['body']['error']['code']")" "(400, 'context_length_exceeded')"
check_eq "/v1/embeddings: the server's answer, a 64-dimension vector" "$(field 10 "o['response']['status_code'], len(o['response']['body']['data'][0]['embedding'])")" "(200, 64)"
check_eq "method other than POST: error line" "$(field 11 "o['response'], o['error']['code'], o['custom_id']")" "(None, 'invalid_request', 'bad-method')"
check "unknown url: error line naming url" test -n "$(field 12 "'url' in o['error']['message'] or ''")"
check_eq "custom_id not a string: error line" "$(field 13 "o['custom_id'], 'custom_id' in o['error']['message']")" "(None, True)"
check_eq "no body: error line" "$(field 14 "o['error']['message']")" '"body" must be a JSON object'
check_eq "stream: 400 param stream" "$(field 15 "o['response']['status_code'], o['response']['body']['error']['param']")" "(400, 'stream')"
check_eq "not JSON after OpenAI lines: an OpenAI error line" "$(field 16 "o['response'], o['error']['code']")" "(None, 'invalid_json')"

# resume after a kill: the input arrives through a FIFO; once the first 40 answers are in
# the output file, the batch is killed (SIGKILL) and a torn line is appended, as a crash in
# mid-write leaves it. --resume then finishes the file: equal, line for line, to an
# uninterrupted run (timings, random ids and prefix-cache hit counts aside).
python3 - >"$T_TMP/mix.jsonl" <<'PY'
import json
for i in range(90):
    if i % 3 == 0:
        print(json.dumps({"prompt": "Once upon a time", "max_tokens": 6, "seed": i, "temperature": 0.9}))
    else:
        print(json.dumps({"custom_id": "c%d" % i, "method": "POST", "url": "/v1/completions",
                          "body": {"prompt": "Lily", "max_tokens": 5, "seed": i}}))
PY
"$FORGE" batch --model $M --prompts "$T_TMP/mix.jsonl" --output "$T_TMP/ref.out" 2>/dev/null
check "uninterrupted run: exit 0" test $? = 0
mkfifo "$T_TMP/fifo"
"$FORGE" batch --model $M --prompts "$T_TMP/fifo" --output "$T_TMP/part.out" 2>/dev/null &
BPID=$!
exec 3>"$T_TMP/fifo"
head -n 40 "$T_TMP/mix.jsonl" >&3
for i in $(seq 1 600); do   # bounded wait for the 40 answers (~60 s)
  [ "$(wc -l <"$T_TMP/part.out" 2>/dev/null || echo 0)" -ge 40 ] && break
  sleep 0.1
done
kill -KILL $BPID; wait $BPID 2>/dev/null
exec 3>&-
check_eq "killed after 40 answers" "$(wc -l <"$T_TMP/part.out")" 40
printf '{"id":"batch_req_x","custom_id":"c41","resp' >>"$T_TMP/part.out"
"$FORGE" batch --model $M --prompts "$T_TMP/mix.jsonl" --output "$T_TMP/part.out" --resume 2>"$T_TMP/resume.err"
check "resume: exit 0" test $? = 0
check "resume: says how many were done" grep -q "40 lines of .* done already" "$T_TMP/resume.err"
check "resumed output equals the uninterrupted run" python3 - "$T_TMP/ref.out" "$T_TMP/part.out" <<'PY'
import json, sys
def norm(l):
    o = json.loads(l)
    for k in ("ttft_ms", "total_ms", "id", "cached_tokens"): o.pop(k, None)
    if o.get("response"):
        o["response"].pop("request_id"); o["response"]["body"].pop("id"); o["response"]["body"].pop("created")
        o["response"]["body"].get("usage", {}).pop("prompt_tokens_details", None)  # cache hits: history-dependent
    return o
a = [norm(l) for l in open(sys.argv[1])]; b = [norm(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 90, (len(a), len(b))
for x, y in zip(a, b):
    assert x == y, (x, y)
PY
check "resume on a complete file: nothing to do, nothing appended" bash -c \
  "'$FORGE' batch --model $M --prompts '$T_TMP/mix.jsonl' --output '$T_TMP/part.out' --resume 2>/dev/null && test \$(wc -l <'$T_TMP/part.out') = 90"
finish
