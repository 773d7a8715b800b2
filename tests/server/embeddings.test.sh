#!/usr/bin/env bash
# POST /v1/embeddings and `forge embed` with the built-in stories260K: vectors against the
# float64 reference forward (tests/fixtures/embeddings.json, scripts/ref/make_embed_goldens.py),
# token-id and text inputs, float and base64, the CLI and the server agreeing bit for bit,
# the openai npm client, every refusal as OpenAI JSON, embeddings in OpenAI Batch lines,
# and the server healthy after all of it.
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

start_server embed --api-key k --served-model-name stories260K
check "server ready" test $? = 0
post() { curl -s -H 'Authorization: Bearer k' "$URL/v1/embeddings" -d "$1"; }

# the reference's prompts for stories260K, as token ids: cosine against float64
python3 - "$URL" >"$T_TMP/ref.out" 2>&1 <<'PY'
import json, math, sys, urllib.request
url = sys.argv[1]
ref = [m for m in json.load(open("tests/fixtures/embeddings.json"))["models"] if m["model"].endswith("stories260K")][0]
req = urllib.request.Request(url + "/v1/embeddings", json.dumps({"input": ref["prompts"]}).encode(),
                             {"Authorization": "Bearer k", "Content-Type": "application/json"})
d = json.load(urllib.request.urlopen(req))
ok = len(d["data"]) == len(ref["prompts"])
for i, (got, want) in enumerate(zip(d["data"], ref["embeddings"])):
    v = got["embedding"]
    cos = sum(a * b for a, b in zip(v, want)) / math.sqrt(sum(a * a for a in v) * sum(b * b for b in want))
    print(f"prompt {i}: cosine {cos:.9f}")
    ok = ok and got["index"] == i and cos > 0.99999
ok = ok and d["usage"]["prompt_tokens"] == sum(len(p) for p in ref["prompts"])
print("OK" if ok else "MISMATCH")
PY
check "token-id inputs equal the float64 reference (cosine > 0.99999), usage counts them" grep -qx OK "$T_TMP/ref.out"

# text inputs: server float == server base64 == forge embed, bit for bit
"$FORGE" embed --model $M --input "Once upon a time" --input "The cat sat on the mat." >"$T_TMP/cli.jsonl" 2>"$T_TMP/cli.err"
check "forge embed prints one line per input" test "$(wc -l <"$T_TMP/cli.jsonl")" = 2
post '{"input":["Once upon a time","The cat sat on the mat."]}' >"$T_TMP/float.json"
post '{"input":["Once upon a time","The cat sat on the mat."],"encoding_format":"base64"}' >"$T_TMP/b64.json"
python3 - "$T_TMP" >"$T_TMP/same.out" 2>&1 <<'PY'
import base64, json, struct, sys
t = sys.argv[1]
f = json.load(open(t + "/float.json"))["data"]
b = json.load(open(t + "/b64.json"))["data"]
cli = [json.loads(l) for l in open(t + "/cli.jsonl")]
f32 = lambda xs: [struct.unpack("<f", struct.pack("<f", x))[0] for x in xs]
ok = True
for i in range(2):
    dec = list(struct.unpack("<%df" % 64, base64.b64decode(b[i]["embedding"])))
    ok = ok and f32(f[i]["embedding"]) == dec == f32(cli[i])
print("OK" if ok else "DIFFER")
PY
check "float, base64 and forge embed give the same bits" grep -qx OK "$T_TMP/same.out"

# the openai npm client (base64 by default)
if npm_ready; then
  BASE_URL=$URL API_KEY=k MODEL=stories260K FORGE_EMBED="$(cat "$T_TMP/cli.jsonl")" \
    node tests/server/js/openai_embed.mjs >"$T_TMP/node.out" 2>&1
  sed 's/^/  /' "$T_TMP/node.out" | grep -v '^  ok ' | head -20
  sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/node.out" | tail -1)
  p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
  T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
else
  check "npm ci installs the pinned openai client" false
fi

# refusals: OpenAI JSON, status and param
err() { # name, status, param, body
  local out code
  out=$(curl -s -w '\n%{http_code}' -H 'Authorization: Bearer k' "$URL/v1/embeddings" -d "$4")
  code=${out##*$'\n'}; out=${out%$'\n'*}
  check_eq "$1: status" "$code" "$2"
  check_eq "$1: param" "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["error"]["param"])')" "$3"
}
err "missing input" 400 input '{}'
err "empty string" 400 input '{"input":""}'
err "empty string in a list" 400 'input[1]' '{"input":["a",""]}'
err "empty list" 400 input '{"input":[]}'
err "wrong type" 400 input '{"input":{"a":1}}'
err "mixed list" 400 'input[1]' '{"input":["a",[1,2]]}'
err "id outside the vocabulary" 400 'input[1][0]' '{"input":[[1,2],[512]]}'
err "dimensions other than 64" 400 dimensions '{"input":"a","dimensions":32}'
err "encoding_format" 400 encoding_format '{"input":"a","encoding_format":"int8"}'
err "too long for the context" 400 input "{\"input\":[$(python3 -c 'print(",".join(["5"]*600))')]}"
err "another model" 404 model '{"input":"a","model":"gpt-4"}'
check_eq "dimensions 64 is accepted" "$(post '{"input":"a","dimensions":64}' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"][0]["embedding"]))')" 64
check_eq "GET is 405" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer k' "$URL/v1/embeddings")" 405
check_eq "no key is 401" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/embeddings" -d '{"input":"a"}')" 401
check "requests are counted under their route" bash -c "curl -s $URL/metrics | grep -q 'route=\"/v1/embeddings\",code=\"200\"'"
check_eq "still healthy" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" 200
stop_server $PID
check_eq "SIGTERM: the server exits 0" "$STOP_RC" 0

# OpenAI Batch API lines with url /v1/embeddings
cat >"$T_TMP/batch.jsonl" <<'JL'
{"custom_id":"e1","method":"POST","url":"/v1/embeddings","body":{"input":"Once upon a time"}}
{"custom_id":"e2","method":"POST","url":"/v1/embeddings","body":{"input":""}}
JL
"$FORGE" batch --model $M --prompts "$T_TMP/batch.jsonl" --output "$T_TMP/batch.out" >/dev/null 2>"$T_TMP/batch.err"
python3 - "$T_TMP" >"$T_TMP/batch.chk" 2>&1 <<'PY'
import json, struct, sys
t = sys.argv[1]
lines = [json.loads(l) for l in open(t + "/batch.out")]
cli = json.loads(open(t + "/cli.jsonl").readline())
f32 = lambda xs: [struct.unpack("<f", struct.pack("<f", x))[0] for x in xs]
a = lines[0]["response"]
b = lines[1]["response"]
ok = a["status_code"] == 200 and f32(a["body"]["data"][0]["embedding"]) == f32(cli) and b["status_code"] == 400
print("OK" if ok else "BAD " + json.dumps(lines)[:300])
PY
check "forge batch answers /v1/embeddings lines as the server does" grep -qx OK "$T_TMP/batch.chk"
finish
