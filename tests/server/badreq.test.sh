#!/usr/bin/env bash
# The bad-request catalogue (tests/server/badreq.py): malformed JSON, wrong types, huge
# numbers, invalid UTF-8, a 10 MB body, unknown model, missing messages, a template that
# raises, slow bodies cut by --request-timeout 1, disconnects cancelling their requests, a
# full queue. Each gets the right 4xx or a clean close; /health stays 200 and KV usage
# returns to zero; the server never crashes.
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

start_server bad --chat-template $TEMPLATE --api-key sekret --request-timeout 1 --max-seqs 4 --max-waiting 8 --max-response-mb 1
check "server ready" test $? = 0
python3 tests/server/badreq.py "$PORT" "$T_TMP/table.md" >"$T_TMP/bad.out" 2>&1
grep -v '^ok ' "$T_TMP/bad.out" | sed 's/^/  /' | head -60
sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/bad.out" | tail -1)
p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
[ -n "${BADREQ_TABLE:-}" ] && cp "$T_TMP/table.md" "$BADREQ_TABLE"
check "the server is still running" kill -0 $PID
check "no internal errors (500) logged" bash -c "! grep -E 'ERROR|Sanitizer|runtime error' '$T_TMP/bad.log'"
stop_server $PID
check_eq "SIGTERM: exit status 0" "$STOP_RC" 0
[ "$STOP_RC" = 0 ] || grep -A30 -E 'Sanitizer|ERROR' "$T_TMP/bad.log" | head -60
finish
