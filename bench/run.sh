#!/usr/bin/env bash
# Runs every benchmark script bench/*.bench.sh from the repository root.
set -u
cd "$(dirname "$0")/.."
for b in bench/*.bench.sh; do echo "== $b"; bash "$b"; done
