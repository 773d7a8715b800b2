#!/usr/bin/env bash
# 64 concurrent streaming clients (tests/server/js/load.mjs, bounded in time): each of 64
# distinct prompts is run alone, then all at once; every concurrent stream must equal its
# solo greedy text, and the solo texts equal `forge generate`'s for the same prompts.
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

start_server load
check "server ready" test $? = 0
timeout 300 node tests/server/js/load.mjs check --url "$URL" --clients 64 --max-tokens 48 >"$T_TMP/load.out" 2>&1
rc=$?
sed 's/^/    /' "$T_TMP/load.out" | head -20
check_eq "64 concurrent streams each equal their solo greedy text" "$rc" 0
for p in "Once upon a time, there was a cat named Tim." "Once upon a time, there was a duck named Mia."; do
  want=$("$FORGE" generate --model $M --prompt "$p" --max-tokens 48 --temperature 0 2>/dev/null)
  got=$(curl -s "$URL/v1/completions" -d "{\"prompt\": \"$p\", \"max_tokens\": 48, \"temperature\": 0}" |
    python3 -c "import json,sys; sys.stdout.write(json.load(sys.stdin)['choices'][0]['text'])")
  check_eq "solo text equals forge generate: $p" "$got" "$want"
done
check "KV usage back to zero" wait_idle
stop_server $PID
check_eq "SIGTERM: exit 0" "$STOP_RC" 0
finish
