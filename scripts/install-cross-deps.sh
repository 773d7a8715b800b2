#!/usr/bin/env bash
# Installs what the AArch64 cross build and its emulated tests need on Debian 12 (x86-64):
# the cross compiler, qemu-user, and the arm64 libraries of Forge's dependencies (Debian
# multiarch). Separate from install-deps.sh so a user's machine never gets cross tools it
# did not ask for; .ci/run calls it. Idempotent; uses sudo when not root.
#
# libevent-dev is not Multi-Arch: same, so installing libevent-dev:arm64 would REMOVE
# libevent-dev:amd64 and break the native build. Its arm64 package (and the runtime library
# its symlinks point at) is unpacked into a private sysroot instead,
# $FORGE_CROSS_SYSROOT (default /opt/forge-cross/aarch64), whose libevent.pc the Makefile's
# CROSS=aarch64 finds first. The other -dev packages are Multi-Arch: same and install side by
# side with their amd64 versions.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
SYSROOT=${FORGE_CROSS_SYSROOT:-/opt/forge-cross/aarch64}
pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user pkg-config
      libpcre2-dev:arm64 libutf8proc-dev:arm64 libyajl-dev:arm64 libcurl4-openssl-dev:arm64
      libssl-dev:arm64 libevent-2.1-7:arm64"
export DEBIAN_FRONTEND=noninteractive
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
if [ ! -f "$SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig/libevent.pc" ]; then
  tmp=$(mktemp -d); chmod 755 "$tmp" # apt-get download fetches as _apt
  (cd "$tmp" && apt-get download libevent-dev:arm64 libevent-2.1-7:arm64 >/dev/null)
  $SUDO mkdir -p "$SYSROOT"
  for deb in "$tmp"/*.deb; do $SUDO dpkg -x "$deb" "$SYSROOT"; done
  rm -rf "$tmp"
  # the .pc files name /usr: point them into the sysroot
  for pc in "$SYSROOT"/usr/lib/aarch64-linux-gnu/pkgconfig/libevent*.pc; do
    $SUDO sed -i "s|^prefix=/usr\$|prefix=$SYSROOT/usr|" "$pc"
  done
fi
# the native build must still find its own libevent
pkg-config --exists libevent || { echo "install-cross-deps: native libevent-dev missing" >&2; exit 1; }
