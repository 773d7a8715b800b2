#!/usr/bin/env bash
# Tool calls and reasoning end to end (docs/tools.md): `forge serve` with a copy of the
# built-in model whose tokenizer spells whole answers in single tokens
# (scripts/server/make_tool_model.py), forced with logit_bias, so the parsers see known text;
# the real openai npm client reads the answers (tests/server/js/openai_tools.mjs), and curl
# checks the overrides (--tool-call-parser, --reasoning-parser).
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

TM=$T_TMP/toolmodel
info=$(python3 scripts/server/make_tool_model.py "$TM")
check "the tool-answer model is made" test -n "$info"
M=$TM
TT=tests/fixtures/server/tools_template.jinja
check "npm ci installs the pinned openai client" npm_ready

start_server tools --chat-template $TT --served-model-name tools
check "server ready" test $? = 0
check "the formats are guessed from the template" grep -q "tool calls: hermes (from the template); reasoning: <think> (from the template)" "$T_TMP/tools.log"
BASE_URL=$URL MODEL=tools TOOL_MODEL=$info node tests/server/js/openai_tools.mjs >"$T_TMP/node.out" 2>&1
sed 's/^/  /' "$T_TMP/node.out" | grep -v '^  ok ' | head -60
sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/node.out" | tail -1)
p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
check "no errors in the server log" bash -c "! grep -E 'ERROR|error:|Sanitizer' '$T_TMP/tools.log'"
stop_server $PID
check_eq "SIGTERM: the server exits 0" "$STOP_RC" 0

# the overrides: no parsing at all
id=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['ids']['think_call'])" "$info")
body='{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"get_weather"}}],"logit_bias":{"'$id'":100},"stop":["@@"],"max_tokens":4}'
start_server off --chat-template $TT --tool-call-parser none --reasoning-parser none
check "server with parsers off ready" test $? = 0
got=$(curl -s "$URL/v1/chat/completions" -d "$body" | python3 -c "import json,sys; m=json.load(sys.stdin)['choices'][0]; print(json.dumps([m['message'].get('content'), 'tool_calls' in m['message'], 'reasoning_content' in m['message'], m['finish_reason']]))")
want=$(python3 -c "import json,sys; print(json.dumps([json.loads(sys.argv[1])['answers']['think_call'], False, False, 'stop']))" "$info")
check_eq "--tool-call-parser none --reasoning-parser none: the text as content" "$got" "$want"
stop_server $PID

# a named format on a template that has none, and a bad name
start_server forced --chat-template $TEMPLATE --tool-call-parser hermes --reasoning-parser qwen3
check "server with forced parsers ready" test $? = 0
got=$(curl -s "$URL/v1/chat/completions" -d "$body" | python3 -c "import json,sys; m=json.load(sys.stdin)['choices'][0]; print(json.dumps([m['message'].get('content'), len(m['message'].get('tool_calls', [])), m['message'].get('reasoning_content') is not None, m['finish_reason']]))")
check_eq "--tool-call-parser hermes on a plain template parses calls" "$got" '[null, 1, true, "tool_calls"]'
stop_server $PID
out=$("$FORGE" serve --model $M --port 0 --tool-call-parser bogus 2>&1); rc=$?
check_eq "an unknown --tool-call-parser: exit 1" "$rc" 1
check "an unknown --tool-call-parser: says which" grep -q "unknown tool-call parser 'bogus'" <<<"$out"
out=$("$FORGE" serve --model $M --port 0 --reasoning-parser think 2>&1); rc=$?
check "an unknown --reasoning-parser is refused" test "$rc" != 0 -a -n "$(grep "unknown reasoning parser 'think'" <<<"$out")"
finish
