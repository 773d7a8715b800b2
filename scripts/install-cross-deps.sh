#!/usr/bin/env bash
# Installs what the AArch64 cross build and its emulated tests need on Debian 12 (x86-64):
# the cross compiler, qemu-user, and the arm64 -dev packages of Forge's libraries (Debian
# multiarch). Separate from install-deps.sh so a user's machine never gets cross tools it
# did not ask for; .ci/run calls it. Idempotent; uses sudo when not root.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user pkg-config
      libpcre2-dev:arm64 libutf8proc-dev:arm64 libyajl-dev:arm64 libcurl4-openssl-dev:arm64
      libevent-dev:arm64 libssl-dev:arm64"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
