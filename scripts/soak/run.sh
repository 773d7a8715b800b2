#!/usr/bin/env bash
# The soak of docs/soak.md: starts `forge serve` (the built-in model, a chat template,
# --max-seqs 64), runs scripts/soak/soak.py with CLIENTS clients for SECONDS, stops the
# server with SIGTERM, and checks its exit status and log.
#   CLIENTS=256 SECONDS=600 scripts/soak/run.sh [extra serve flags]
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-build/soak}
mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
build/forge serve --port "$PORT" --chat-template tests/fixtures/server/chat_template.jinja --max-seqs 64 "$@" \
  >"$OUT/server.log" 2>&1 &
PID=$!
for i in $(seq 1 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ] && break; sleep 0.1
done
python3 scripts/soak/soak.py --port "$PORT" --pid "$PID" --clients "${CLIENTS:-256}" --seconds "${SECONDS_SOAK:-600}" \
  --csv "$OUT/rss.csv" | tee "$OUT/soak.out"
rc=${PIPESTATUS[0]}
curl -s "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.txt"
kill -TERM "$PID"; wait "$PID"; src=$?
errors=$(grep -cE 'ERROR|Sanitizer|runtime error' "$OUT/server.log")
echo "soak exit $rc; server exit $src; errors in the log: $errors"
[ "$rc" = 0 ] && [ "$src" = 0 ] && [ "$errors" = 0 ]
