#!/usr/bin/env bash
# deploy/cluster.sh: N `forge serve` replicas on loopback ports behind HAProxy (Debian's
# haproxy package; we write no balancer), with prefix affinity, health checks and retries
# (deploy/haproxy.cfg.in, docs/scale-out.md).
#
#   deploy/cluster.sh --replicas N --port P [--host H] [-- forge serve options...]
#
# Prints `replica HOST:PORT pid PID` per replica, `balancer http://HOST:PORT`, then `ready`.
# SIGTERM or Ctrl-C: the balancer stops, every replica drains (running requests finish) and
# exits; then the script exits. --port 0 picks a free port. FORGE names the binary
# (default: build/forge next to this script's repository).
set -u
here=$(cd "$(dirname "$0")" && pwd)
FORGE=${FORGE:-$here/../build/forge}
N=2 PORT=8080 HOST=127.0.0.1
serve=()
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) N=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --host) HOST=$2; shift 2 ;;
    --) shift; serve=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deploy/cluster.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$N" in ''|*[!0-9]*) echo "deploy/cluster.sh: --replicas must be a number" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] || { echo "deploy/cluster.sh: --replicas must be at least 1" >&2; exit 2; }
for tool in haproxy:haproxy curl:curl python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 ||
    { echo "deploy/cluster.sh: ${tool%%:*} is missing: apt-get install ${tool#*:} (scripts/install-deps.sh installs it)" >&2; exit 2; }
done
[ -x "$FORGE" ] || { echo "deploy/cluster.sh: $FORGE not found (run make, or set FORGE)" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/forge-cluster.XXXXXX")
pids=() hp=""
stop() {
  trap '' TERM INT
  [ -n "$hp" ] && kill -TERM "$hp" 2>/dev/null && wait "$hp" 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done   # each drains, then exits
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
  exit "${1:-0}"
}
trap 'stop 0' TERM INT

free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$HOST"; }

ports=()
for i in $(seq 1 "$N"); do
  "$FORGE" serve --host 127.0.0.1 --port 0 "${serve[@]}" >"$dir/replica$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$N"); do   # each says its port, then loads its model (bounded waits)
  port=""
  for _ in $(seq 1 600); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/replica$i.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "deploy/cluster.sh: replica $i did not start:" >&2; tail -5 "$dir/replica$i.log" >&2; stop 1; }
  for _ in $(seq 1 1200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && break
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "deploy/cluster.sh: replica $i exited:" >&2; tail -5 "$dir/replica$i.log" >&2; stop 1; }
    sleep 0.1
  done
  ports+=("$port")
  echo "replica 127.0.0.1:$port pid ${pids[$((i - 1))]}"
done

[ "$PORT" = 0 ] && PORT=$(free_port)
servers=""
for i in $(seq 1 "$N"); do servers+="    server r$i 127.0.0.1:${ports[$((i - 1))]} check"$'\n'; done
python3 - "$here/haproxy.cfg.in" "$dir/haproxy.cfg" "$HOST:$PORT" "$servers" <<'EOF'
import sys
src, dst, bind, servers = sys.argv[1:5]
open(dst, "w").write(open(src).read().replace("@BIND@", bind).replace("@SERVERS@", servers.rstrip("\n")))
EOF
haproxy -c -q -f "$dir/haproxy.cfg" || { echo "deploy/cluster.sh: the HAProxy configuration is invalid" >&2; stop 1; }
haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
hp=$!
for _ in $(seq 1 100); do   # bounded: until the balancer answers
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$PORT/health")" = 200 ] && break
  kill -0 "$hp" 2>/dev/null || { echo "deploy/cluster.sh: haproxy exited:" >&2; tail -5 "$dir/haproxy.log" >&2; stop 1; }
  sleep 0.1
done
echo "balancer http://$HOST:$PORT"
echo "ready"
while :; do   # until a signal; a replica that dies is left to the health checks
  wait "$hp"
  kill -0 "$hp" 2>/dev/null || { echo "deploy/cluster.sh: haproxy exited" >&2; stop 1; }
done
