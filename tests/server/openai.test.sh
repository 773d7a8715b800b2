#!/usr/bin/env bash
# The real openai npm client (tests/server/js, pinned by its lockfile; `npm ci` here) against a
# live `forge serve` with stories260K and a simple chat template: completions and chat,
# streaming and not, n=2, include_usage, logprobs, stop, echo, errors, an auth failure.
# Greedy texts must equal `forge generate`'s and the llama2.c reference (expected-greedy.json).
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

check "npm ci installs the pinned openai client" npm_ready
greedy64=$("$FORGE" generate --model $M --prompt "Once upon a time" --max-tokens 64 --temperature 0 2>/dev/null)
greedy200=$(python3 -c "import json,sys; sys.stdout.write(json.load(open('$M/expected-greedy.json'))['completion'])")
check "forge generate gives a greedy reference" test -n "$greedy64"

start_server openai --chat-template $TEMPLATE --api-key sekret --served-model-name stories
check "server ready" test $? = 0
BASE_URL=$URL API_KEY=sekret MODEL=stories GREEDY_64=$greedy64 GREEDY_200=$greedy200 \
  node tests/server/js/openai_client.mjs >"$T_TMP/node.out" 2>&1
sed 's/^/  /' "$T_TMP/node.out" | grep -v '^  ok ' | head -60
sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/node.out" | tail -1)
p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
check "no warnings or errors besides the expected ones in the server log" \
  bash -c "! grep -E 'ERROR|error:|Sanitizer' '$T_TMP/openai.log'"
stop_server $PID
check_eq "SIGTERM: the server exits 0" "$STOP_RC" 0
finish
