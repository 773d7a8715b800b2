#!/usr/bin/env bash
# deploy/cluster.sh with 2 replicas of the built-in model behind HAProxy (issue 17): it
# prints its replicas, balancer and "ready"; conversations keep their replica (second turns
# hit the prefix cache), both replicas take load, X-Session-Id pins a client, 503s of a full
# queue are retried on the other replica, a replica
# killed with -9 costs no request, and SIGTERM leaves no process behind.
source "$(dirname "$0")/../lib.sh"
if ! command -v haproxy >/dev/null; then
  echo "FAIL haproxy is not installed (scripts/install-deps.sh installs it)"; echo "0 passed, 1 failed"; exit 1
fi
FORGE="$FORGE" deploy/cluster.sh --replicas 2 --port 0 -- --chat-template tests/fixtures/server/chat_template.jinja \
  --threads 1 --max-seqs 2 --max-waiting 2 >"$T_TMP/cluster.out" 2>&1 &
CL=$!
for i in $(seq 1 1200); do grep -q '^ready$' "$T_TMP/cluster.out" && break; kill -0 $CL 2>/dev/null || break; sleep 0.1; done
check "cluster.sh prints two replicas, the balancer, then ready" bash -c "
  [ \$(grep -c '^replica 127.0.0.1:[0-9]* pid [0-9]*$' '$T_TMP/cluster.out') = 2 ] &&
  grep -q '^balancer http://127.0.0.1:[0-9]*$' '$T_TMP/cluster.out' && grep -q '^ready$' '$T_TMP/cluster.out'"
BAL=$(sed -n 's/^balancer //p' "$T_TMP/cluster.out")
R=($(sed -n 's/^replica \([^ ]*\) pid.*/http:\/\/\1/p' "$T_TMP/cluster.out"))
P=($(sed -n 's/^replica .* pid \([0-9]*\)$/\1/p' "$T_TMP/cluster.out"))
python3 tests/deploy/cluster_check.py "$BAL" "${R[@]}" --kill "${P[1]}" >"$T_TMP/py.out" 2>&1
cat "$T_TMP/py.out"
sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/py.out" | tail -1)
p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
kill -TERM $CL
for i in $(seq 1 300); do kill -0 $CL 2>/dev/null || break; sleep 0.1; done
check "SIGTERM: the script exits" bash -c "! kill -0 $CL 2>/dev/null"
check "SIGTERM: no replica or balancer left" bash -c "! kill -0 ${P[0]} 2>/dev/null && ! pgrep -f '$T_TMP\|forge-cluster' >/dev/null"
finish
