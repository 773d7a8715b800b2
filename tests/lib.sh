# tests/lib.sh: helpers for shell tests (tests/*/*.test.sh). Source it, call `check NAME
# CMD...` or `check_eq NAME GOT WANT`, and end with `finish`, which prints the
# "N passed, N failed" line that tests/run.sh adds up.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FORGE_BUILD=${FORGE_BUILD:-build}
FORGE=${FORGE:-$PWD/$FORGE_BUILD/forge}
T_PASSED=0
T_FAILED=0
T_TMP=$(mktemp -d)
trap 'rm -rf "$T_TMP"' EXIT

check() { # name, command...: passes when the command exits 0
  local name=$1; shift
  if "$@" >"$T_TMP/out" 2>&1; then echo "ok   $name"; T_PASSED=$((T_PASSED + 1))
  else echo "FAIL $name"; sed 's/^/    /' "$T_TMP/out" | head -20; T_FAILED=$((T_FAILED + 1)); fi
}

check_eq() { # name, got, want
  if [ "$2" == "$3" ]; then echo "ok   $1"; T_PASSED=$((T_PASSED + 1))
  else echo "FAIL $1"; printf '    got:  %q\n    want: %q\n' "$2" "$3" | head -c 2000; T_FAILED=$((T_FAILED + 1)); fi
}

finish() { echo "$T_PASSED passed, $T_FAILED failed"; [ "$T_FAILED" -eq 0 ]; }
