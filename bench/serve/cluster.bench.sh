#!/usr/bin/env bash
# Throughput through deploy/cluster.sh with 1 and with 2 replicas (one thread each), 64
# streaming clients, alternated for ROUNDS rounds (best of each kept): the scale-out table
# of docs/benchmarks.md.   ROUNDS=2 SECONDS=30 bench/serve/cluster.bench.sh
set -u
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-2}; SECS=${SECONDS_RUN:-30}; CLIENTS=${CLIENTS:-64}
run() { # replicas -> one result line
  deploy/cluster.sh --replicas "$1" --port 0 -- --threads 1 --max-seqs 64 >/tmp/cluster.bench.$$ 2>&1 &
  local cl=$!
  for _ in $(seq 1 600); do grep -q '^ready$' /tmp/cluster.bench.$$ && break; sleep 0.1; done
  local url; url=$(sed -n 's/^balancer //p' /tmp/cluster.bench.$$)
  echo "$1 replica(s): $(python3 bench/serve/stream_load.py "$url" "$CLIENTS" "$SECS" 64)"
  kill -TERM $cl; wait $cl 2>/dev/null
  rm -f /tmp/cluster.bench.$$
}
for r in $(seq 1 "$ROUNDS"); do run 1; run 2; done
