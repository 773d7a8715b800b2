#!/usr/bin/env bash
# The chat page (GET /): its HTTP answers (headers, ETag, --no-webui, --api-key), then Debian's
# chromium driven headless by puppeteer-core (tests/server/webui, pinned by its lockfile; it
# downloads no browser) against live servers on stories260K: the page loads with no console
# error and no request to another host, answers stream, Stop cancels (the server's metrics
# count the abort), a reload keeps the conversation, and markup from the user or the model is
# shown as text and never runs. WEBUI_SHOTS=DIR also writes the screenshots there
# (WEBUI_SHOTS=docs makes docs/webui-*.png).
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

# ---- HTTP ---------------------------------------------------------------------------------------
start_server page --chat-template $TEMPLATE --served-model-name stories
check "server ready" test $? = 0
curl -s -D "$T_TMP/h" -o "$T_TMP/page.html" "$URL/"
check "GET / is 200 text/html" grep -qi '^HTTP/1.1 200' "$T_TMP/h"
check "the page is the compiled-in index.html" cmp "$T_TMP/page.html" src/server/webui/index.html
check "Content-Security-Policy: default-src 'self', no inline script" \
  bash -c "grep -i '^Content-Security-Policy:' '$T_TMP/h' | grep \"default-src 'self'\" | grep \"script-src 'self'\" | grep -qv unsafe"
check "X-Content-Type-Options: nosniff" grep -qi '^X-Content-Type-Options: nosniff' "$T_TMP/h"
check "X-Frame-Options: DENY" grep -qi '^X-Frame-Options: DENY' "$T_TMP/h"
for f in app.js app.css icon.svg; do
  code=$(curl -s -o "$T_TMP/$f" -w '%{http_code} %{content_type}' "$URL/webui/$f")
  check "GET /webui/$f is the file ($code)" cmp "$T_TMP/$f" src/server/webui/$f
done
check_eq "app.js is JavaScript" "$(curl -s -o /dev/null -w '%{content_type}' "$URL/webui/app.js")" "text/javascript; charset=utf-8"
etag=$(awk 'tolower($1) == "etag:" { print $2 }' "$T_TMP/h" | tr -d '\r')
check "an ETag" test -n "$etag"
check_eq "If-None-Match with the ETag: 304" "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/")" 304
check_eq "HEAD / is 200 without a body" "$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' "$URL/")" "200 0"
check_eq "POST / is 405" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$URL/")" 405
check_eq "an unknown file under /webui/ is 404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/webui/nope.js")" 404
check "the page's answers are counted under route=\"webui\"" \
  bash -c "curl -s '$URL/metrics' | grep -q 'forge_http_requests_total{route=\"webui\",code=\"200\"}'"
check "the page and its files name no other host" \
  bash -c "! grep -hoE '(src|href)=\"[a-z]+:' src/server/webui/*.html src/server/webui/*.css"
page_url=$URL; page_pid=$PID

start_server key --chat-template $TEMPLATE --served-model-name stories --api-key sekret
check "server with --api-key ready" test $? = 0
check_eq "--api-key: the page itself needs no key" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" 200
check_eq "--api-key: the API still does" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/models")" 401
key_url=$URL; key_pid=$PID

start_server off --no-webui
check "server with --no-webui ready" test $? = 0
check_eq "--no-webui: GET / is 404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" 404
check_eq "--no-webui: /webui/app.js is 404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/webui/app.js")" 404
stop_server $PID

# ---- the browser --------------------------------------------------------------------------------
CHROME=${CHROME:-$(command -v chromium || command -v chromium-browser || true)}
webui_npm_ready() {
  local d=tests/server/webui
  if [ ! -d $d/node_modules/puppeteer-core ] || [ $d/package-lock.json -nt $d/node_modules/.package-lock.json ]; then
    (cd $d && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) || return 1
  fi
}
check "chromium is installed (scripts/install-deps.sh)" test -n "$CHROME"
check "npm ci installs the pinned puppeteer-core" webui_npm_ready
shots=${WEBUI_SHOTS:-$T_TMP/shots}
BASE_URL=$page_url KEY_URL=$key_url MODEL=stories API_KEY=sekret SHOT_DIR=$shots CHROME=$CHROME \
  timeout 600 node tests/server/webui/webui.mjs >"$T_TMP/node.out" 2>&1
sed 's/^/  /' "$T_TMP/node.out" | grep -v '^  ok ' | head -60
sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/node.out" | tail -1)
p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
for s in light dark phone; do check "screenshot webui-$s.png" test -s "$shots/webui-$s.png"; done
check "no errors in the server logs" bash -c "! grep -E 'ERROR|error:|Sanitizer' '$T_TMP/page.log' '$T_TMP/key.log'"
stop_server $page_pid
check_eq "SIGTERM: the server exits 0" "$STOP_RC" 0
stop_server $key_pid
check_eq "SIGTERM: the --api-key server exits 0" "$STOP_RC" 0
finish
