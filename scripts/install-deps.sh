#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Forge builds and tests with. Idempotent; uses sudo
# when not root. Set FORGE_DEPS_MIN=1 to install only what building needs.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
build_pkgs="build-essential pkg-config libpcre2-dev libutf8proc-dev libyajl-dev libcurl4-openssl-dev libssl-dev libevent-dev"
# haproxy: deploy/cluster.sh's balancer; python3-yaml: the k8s manifest check (tests/deploy);
# chromium: the chat page's browser test (tests/server/webui.test.sh, driven by puppeteer-core)
test_pkgs="clang python3 tmux curl prometheus valgrind binutils pkg-config haproxy python3-yaml chromium"
# the server tests run the openai npm client (Node 20+): Debian's nodejs only when none is installed
command -v node >/dev/null 2>&1 || test_pkgs="$test_pkgs nodejs npm"
pkgs=$build_pkgs
[ "${FORGE_DEPS_MIN:-0}" = 1 ] || pkgs="$pkgs $test_pkgs"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
