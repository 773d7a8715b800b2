#!/usr/bin/env bash
# The library as an embedder gets it: `make install` into a scratch prefix, then programs
# built with only the installed forge.h and pkg-config, once against libforge.so and once
# statically against libforge.a, run from the prefix. Also the ABI hygiene: only forge_*
# exported (every FORGE_API function of the header among them), a SONAME, versioned file
# names, and pkg-config output fit for static linking.
source "$(dirname "$0")/../lib.sh"
P=$T_TMP/prefix
make -s install PREFIX="$P" BUILD="$FORGE_BUILD" >"$T_TMP/install.log" 2>&1
check "make install succeeds" test $? = 0
export PKG_CONFIG_PATH=$P/lib/pkgconfig
V=$(sed -n 's/^#define FORGE_VERSION "\(.*\)"/\1/p' include/forge.h)

# ---- the shared library's ABI -------------------------------------------------------------
so=$P/lib/libforge.so.$V
check "libforge.so.$V is installed with its links" test -f "$so" -a -L "$P/lib/libforge.so"
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
check "libforge.so has a SONAME ($soname)" test -n "$soname" -a -L "$P/lib/$soname"
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort)
check_eq "nm -D: only forge_* symbols are exported" "$(echo "$exported" | grep -v '^forge_' | head -5)" ""
declared=$(sed -n 's/^FORGE_API[^(]*[ *]\(forge_[a-z0-9_]*\)(.*/\1/p' include/forge.h | sort -u)
check "the header declares FORGE_API functions" test "$(echo "$declared" | wc -l)" -gt 60
check_eq "every FORGE_API function is exported" "$(comm -23 <(echo "$declared") <(echo "$exported"))" ""
check_eq "every exported function is declared FORGE_API" "$(comm -13 <(echo "$declared") <(echo "$exported"))" ""
undeclared=$(grep -E '^[a-z][a-z_0-9 *]*\bforge_[a-z0-9_]+\(' include/forge.h | grep -v '^typedef' | head -3)
check_eq "no function in forge.h lacks FORGE_API" "$undeclared" ""

# ---- pkg-config ----------------------------------------------------------------------------
check_eq "pkg-config --cflags has no private -D flags" "$(pkg-config --cflags forge | tr ' ' '\n' | grep -c '^-D')" "0"
check "pkg-config --static --libs forge works" pkg-config --static --libs forge
check "pkg-config --static --libs forge-server works" pkg-config --static --libs forge-server
check_eq "an inference-only static link needs no libcurl, libevent or libcrypto" \
  "$(pkg-config --static --libs forge | tr ' ' '\n' | grep -cE '^-l(curl|event|crypto|ssl)')" "0"

# ---- programs --------------------------------------------------------------------------------
san=""  # the sanitizer build installs an instrumented library: the embedder needs the runtime too
[ -n "${FORGE_SANITIZE:-}" ] && san="-fsanitize=address,undefined -fno-omit-frame-pointer"
vg=""
if [ -z "$san" ] && command -v valgrind >/dev/null; then
  vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
fi
build() { # name, source, mode (shared|static), pkg-config module: the binary goes to $P/bin (near share/forge)
  local out=$P/bin/$1-$3 libs pc=${4:-forge}
  if [ "$3" = shared ]; then libs="$(pkg-config --libs $pc) -Wl,-rpath,$P/lib"
  else libs="$P/lib/libforge.a $(pkg-config --static --libs-only-l $pc | sed 's/-lforge//')"; fi
  cc -std=c11 -Wall -Wextra -Werror -pedantic $san $(pkg-config --cflags forge) -o "$out" "$2" $libs -pthread \
    >"$T_TMP/cc-$1-$3.log" 2>&1 || { cat "$T_TMP/cc-$1-$3.log"; return 1; }
}
for mode in shared static; do
  for t in lifecycle:forge null_args:forge-server; do
    pc=${t#*:}; t=${t%:*}
    check "$t builds against the installed header ($mode, $pc)" build "$t" tests/embed/$t.c $mode $pc
    check "$t runs ($mode${vg:+, valgrind})" $vg "$P/bin/$t-$mode"
  done
done
# the static inference-only program really has no network libraries
check_eq "the static program links no libcurl/libevent" \
  "$(ldd "$P/bin/lifecycle-static" | grep -cE 'libcurl|libevent|libforge')" "0"
check "the shared program links libforge by its SONAME" sh -c "ldd '$P/bin/lifecycle-shared' | grep -q '$soname'"

# ---- docs/embedding.md: its example program compiles and runs both ways --------------------------
sed -n '/^```c example/,/^```$/p' docs/embedding.md | sed '1d;$d' >"$T_TMP/example.c"
check "docs/embedding.md has an example program" test -s "$T_TMP/example.c"
for mode in shared static; do
  check "the documented example builds ($mode)" build example "$T_TMP/example.c" $mode
  out=$(cd "$T_TMP" && "$P/bin/example-$mode" "Once upon a time" 2>"$T_TMP/ex.err")
  check "the documented example runs ($mode)" test $? = 0 -a -n "$out"
done
finish
