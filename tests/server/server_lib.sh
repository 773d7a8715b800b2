# server_lib.sh: starting and stopping `forge serve` for the server tests (source after
# tests/lib.sh). Servers listen on a free 127.0.0.1 port; readiness is polled on /health
# with a bounded retry loop; every server started is stopped at exit.
M=tests/fixtures/stories260K
TEMPLATE=tests/fixtures/server/chat_template.jinja
SERVER_PIDS=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server NAME ARGS...: starts forge serve on a free port; sets PORT, PID, URL; the
# log is $T_TMP/NAME.log. Returns 1 when /health does not answer 200 within the bound.
start_server() {
  local name=$1; shift
  PORT=$(free_port)
  "$FORGE" serve --model $M --port "$PORT" "$@" >"$T_TMP/$name.log" 2>&1 &
  PID=$!
  SERVER_PIDS+=("$PID")
  URL=http://127.0.0.1:$PORT
  local i code
  for i in $(seq 1 600); do   # up to ~60 s (sanitizer builds load slowly)
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/health")
    [ "$code" = 200 ] && return 0
    kill -0 "$PID" 2>/dev/null || { echo "server $name exited early:"; tail -5 "$T_TMP/$name.log"; return 1; }
    sleep 0.1
  done
  echo "server $name not ready"; return 1
}

# stop_server PID: SIGTERM, then waits (bounded) for the exit; STOP_RC gets the exit status
# ("killed" when it had to be killed after 30 s).
stop_server() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; STOP_RC=killed; return; fi
  wait "$pid"; STOP_RC=$?
}

stop_all_servers() {
  local p
  for p in "${SERVER_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T_TMP"
}
trap stop_all_servers EXIT

# metric NAME: the value of an unlabelled metric from /metrics
metric() { curl -s "$URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

# wait_idle: polls /metrics (bounded) until no sequence runs or waits and no KV block is held
wait_idle() {
  local i
  for i in $(seq 1 300); do
    local busy
    busy=$(curl -s "$URL/metrics" | awk '$1 == "forge_num_requests_running" || $1 == "forge_num_requests_waiting" ||
      $1 == "forge_kv_cache_blocks_used" || $1 == "forge_server_requests_in_flight" { n++; s += $2 }
      END { print (n == 4 ? s : -1) }')
    [ "$busy" = 0 ] && return 0
    sleep 0.05
  done
  return 1
}

# npm_ready: installs the pinned openai client from the lockfile (once per checkout)
npm_ready() {
  local d=tests/server/js
  if [ ! -d $d/node_modules/openai ] || [ $d/package-lock.json -nt $d/node_modules/.package-lock.json ]; then
    (cd $d && npm ci --no-audit --no-fund --loglevel=error) || return 1
  fi
}
