#!/usr/bin/env bash
# Structured output end to end: a live `forge serve` with stories260K answers JSON-schema,
# json_object, regex, GBNF and choice constraints over many seeds and sampler settings, on
# completions and chat, streaming and not, n > 1 (tests/grammar/structured_check.py).
# Every JSON answer is validated by ajv (pinned in tests/grammar/js, `npm ci` here); regexes
# and grammars are checked with Python's re; malformed constraints get 400s naming them.
# Then `forge generate --json-schema` and `forge batch` lines, also validated by ajv.
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

ajv_ready() {
  local d=tests/grammar/js
  if [ ! -d $d/node_modules/ajv ] || [ $d/package-lock.json -nt $d/node_modules/.package-lock.json ]; then
    (cd $d && npm ci --no-audit --no-fund --loglevel=error) || return 1
  fi
}
check "npm ci installs the pinned ajv" ajv_ready

start_server structured --chat-template $TEMPLATE
check "server ready" test $? = 0
python3 tests/grammar/structured_check.py "$URL" "$T_TMP/json.jsonl" >"$T_TMP/py.out" 2>&1
grep -v '^ok ' "$T_TMP/py.out" | head -40 | sed 's/^/  /'
sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/py.out" | tail -1)
p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
n_json=$(wc -l <"$T_TMP/json.jsonl")
check "at least 200 JSON answers to validate (got $n_json)" test "$n_json" -ge 200
node tests/grammar/js/validate.mjs <"$T_TMP/json.jsonl" >"$T_TMP/ajv.out" 2>&1
check "ajv: every JSON answer is valid against its schema" grep -qE '^[0-9]+ passed, 0 failed$' "$T_TMP/ajv.out"
grep '^FAIL' "$T_TMP/ajv.out" | head -10 | sed 's/^/  /'
check "no errors in the server log" bash -c "! grep -E 'ERROR|Sanitizer' '$T_TMP/structured.log'"
stop_server $PID
check_eq "the server exits 0" "$STOP_RC" 0

# forge generate and forge batch with the same kind of schema
SCHEMA='{"type":"object","properties":{"who":{"type":"string","maxLength":8},"n":{"type":"integer"},"ok":{"type":"boolean"}},"required":["who","n"]}'
echo "$SCHEMA" >"$T_TMP/schema.json"
: >"$T_TMP/cli.jsonl"
for seed in 1 2 3 4 5 6; do
  out=$("$FORGE" generate --model $M --prompt "Once upon a time" --json-schema "$T_TMP/schema.json" --seed $seed \
        --max-tokens 300 2>/dev/null)
  python3 -c 'import json,sys; print(json.dumps({"id": "generate-'$seed'", "schema": json.loads(sys.argv[1]), "text": sys.argv[2]}))' \
    "$SCHEMA" "$out" >>"$T_TMP/cli.jsonl"
done
for seed in 1 2 3 4; do
  echo "{\"prompt\":\"Once\",\"seed\":$seed,\"max_tokens\":300,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s\",\"schema\":$SCHEMA}}}"
  echo "{\"prompt\":\"Once\",\"seed\":$seed,\"max_tokens\":300,\"json_schema\":$SCHEMA}"
done >"$T_TMP/batch.jsonl"
echo '{"prompt":"Once","guided_json":{"type":"integer","multipleOf":3}}' >>"$T_TMP/batch.jsonl"
"$FORGE" batch --model $M --prompts "$T_TMP/batch.jsonl" --output "$T_TMP/batch.out" 2>/dev/null
# OpenAI Batch lines go through the server's body path
for seed in 1 2; do
  echo "{\"custom_id\":\"c$seed\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"seed\":$seed,\"max_tokens\":300,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s\",\"schema\":$SCHEMA}}}}"
done >"$T_TMP/openai.jsonl"
echo '{"custom_id":"bad","method":"POST","url":"/v1/completions","body":{"prompt":"x","guided_regex":"(?<=a)b"}}' >>"$T_TMP/openai.jsonl"
"$FORGE" batch --model $M --chat-template $TEMPLATE --prompts "$T_TMP/openai.jsonl" --output "$T_TMP/openai.out" 2>/dev/null
python3 - "$SCHEMA" "$T_TMP/openai.out" >>"$T_TMP/cli.jsonl" <<'PY'
import json, sys
schema = json.loads(sys.argv[1])
for line in open(sys.argv[2]):
    o = json.loads(line)
    if o["custom_id"].startswith("c"):
        c = o["response"]["body"]["choices"][0]
        if c["finish_reason"] == "stop":
            print(json.dumps({"id": "openai-" + o["custom_id"], "schema": schema, "text": c["message"]["content"]}))
PY
check "batch: an OpenAI line's bad regex is a 400 naming lookbehind" \
  python3 -c "import json,sys; o=[json.loads(l) for l in open('$T_TMP/openai.out')][2]; sys.exit(not (o['response']['status_code']==400 and 'lookbehind' in o['response']['body']['error']['message']))"
python3 - "$SCHEMA" "$T_TMP/batch.out" >>"$T_TMP/cli.jsonl" <<'PY'
import json, sys
schema = json.loads(sys.argv[1])
for line in open(sys.argv[2]):
    o = json.loads(line)
    if "completion" in o and o["finish_reason"] == "stop":
        print(json.dumps({"id": "batch-%d" % o["index"], "schema": schema, "text": o["completion"]}))
PY
check_eq "batch: 8 lines answered with stop" "$(grep -c '"finish_reason":"stop"' "$T_TMP/batch.out")" 8
check "batch: the unsupported keyword is the line's error" grep -q '"index":8,"error":"JSON schema: unsupported keyword .multipleOf.' "$T_TMP/batch.out"
node tests/grammar/js/validate.mjs <"$T_TMP/cli.jsonl" >"$T_TMP/ajv2.out" 2>&1
check_eq "ajv: forge generate and forge batch answers are valid" "$(tail -1 "$T_TMP/ajv2.out")" "16 passed, 0 failed"
grep '^FAIL' "$T_TMP/ajv2.out" | head -5 | sed 's/^/  /'
check "generate: a bad regex is refused with its name (exit 2)" \
  bash -c "'$FORGE' generate --model $M --prompt x --regex '(?=a)' 2>&1 >/dev/null | grep -q lookahead; test \${PIPESTATUS[0]} = 2"
finish
