/* libFuzzer: constraint compilation (GBNF, JSON schema, regex, choice list; the first byte
 * picks which) never crashes, and a compiled grammar runs: masks are filled over a small
 * vocabulary (every byte plus multi-byte and UTF-8 pieces), allowed tokens are accepted
 * (never refused), and the mask agrees with trying each token on a copy of the state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/constraint.h"
#include "grammar/matcher.h"

static gvocab *vocab(void) {
    static gvocab *v;
    static char bytes[256];
    static const char *extra[] = {"\"", "{\"", "\":", "\",", "}", "true", "null", "12", "ab", "\xc3\xa9", "\xc3", "\xa9",
                                  "\xe2\x82\xac", " ", "\n", "a\"", "[]", "\\u00"};
    if (!v) {
        enum { NE = sizeof extra / sizeof *extra, V = 256 + NE + 1 };
        const char *b[V];
        int lens[V];
        for (int i = 0; i < 256; i++) bytes[i] = (char)i, b[i] = &bytes[i], lens[i] = 1;
        for (int i = 0; i < NE; i++) b[256 + i] = extra[i], lens[256 + i] = (int)strlen(extra[i]);
        b[V - 1] = NULL, lens[V - 1] = -1;
        v = gvocab_create_bytes(V, b, lens, NULL);
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int kinds[] = {FORGE_CONSTRAINT_GBNF, FORGE_CONSTRAINT_JSON_SCHEMA, FORGE_CONSTRAINT_REGEX,
                                FORGE_CONSTRAINT_CHOICE};
    forge_constraint c = {.kind = kinds[data[0] & 3], .text = (const char *)data + 1, .len = size - 1};
    forge_error err;
    grammar *g = constraint_compile(&c, &err);
    if (!g) return 0;
    static gws *w;
    if (!w) w = gws_create(NULL);
    gvocab *v = vocab();
    gconstraint *gc = gconstraint_create(g, v, &err);
    gmatcher *m = gc ? gmatcher_create(gc, w, &err) : NULL;
    gmatcher *tmp = gc ? gmatcher_create(gc, w, &err) : NULL;
    int V = gvocab_size(v);
    uint32_t mask[(300 + 31) / 32];
    uint32_t pick = (uint32_t)size * 2654435761u;
    for (int step = 0; m && tmp && step < 16; step++) {
        if (gmatcher_fill_mask(m, gc, w, mask, &err)) break;
        int n = 0, chosen = -1;
        for (int id = 0; id < V; id++) {
            bool fast = (mask[id >> 5] >> (id & 31)) & 1;
            gmatcher_copy(tmp, m);
            int len;
            bool ok = gvocab_bytes(v, id, &len) && gmatcher_accept_token(tmp, w, id, NULL) == FORGE_OK;
            if (ok != fast) abort(); /* the mask disagrees with trying the token */
            if (fast && (n++ == 0 || (pick >> 7) % (uint32_t)n == 0)) chosen = id;
            pick = pick * 1103515245u + 12345u;
        }
        if (chosen < 0) break;
        if (gmatcher_accept_token(m, w, chosen, &err) != FORGE_OK) abort();
        if (gmatcher_must_end(m)) break;
    }
    gmatcher_free(m);
    gmatcher_free(tmp);
    gconstraint_free(gc);
    return 0;
}
