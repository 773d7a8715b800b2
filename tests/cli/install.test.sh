#!/usr/bin/env bash
# make install: the binary, libraries, forge.h and forge.pc land under PREFIX, and a small
# embedding program builds with pkg-config against the installed library and runs a model.
source "$(dirname "$0")/../lib.sh"
P=$T_TMP/prefix
make -s install PREFIX="$P" BUILD="$FORGE_BUILD" >"$T_TMP/install.log" 2>&1
check "make install succeeds" test $? = 0
for f in bin/forge lib/libforge.a lib/libforge.so include/forge.h lib/pkgconfig/forge.pc share/forge/models/stories260K/model.safetensors; do
  check "installed $f" test -e "$P/$f"
done
cat >"$T_TMP/embed.c" <<'C'
#include <forge.h>
#include <stdio.h>
int main(int argc, char **argv) {
    forge_error err;
    forge_model *m = forge_model_open(argv[1], NULL, &err);
    if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }
    printf("%s %d\n", forge_model_get_info(m)->model_type, forge_model_get_info(m)->vocab_size);
    forge_model_close(m);
    return argc > 2;
}
C
export PKG_CONFIG_PATH=$P/lib/pkgconfig
san=""  # the sanitizer build installs an instrumented library: the embedder needs the runtime too
[ -n "${FORGE_SANITIZE:-}" ] && san="-fsanitize=address,undefined"
cc -std=c11 $san -o "$T_TMP/embed" "$T_TMP/embed.c" $(pkg-config --cflags --libs forge) -Wl,-rpath,"$P/lib" >"$T_TMP/cc.log" 2>&1
check "an embedder builds with pkg-config (libforge.so)" test $? = 0
check_eq "and runs a model" "$("$T_TMP/embed" tests/fixtures/stories260K 2>&1)" "llama 512"
out=$(cd /tmp && "$P/bin/forge" generate --prompt "Once upon a time" --max-tokens 20 --temperature 0 2>/dev/null)
check "the installed forge finds its built-in model" test -n "$out"
finish
