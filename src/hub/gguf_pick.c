/* gguf_pick.c: see gguf_pick.h. */
#include "hub/gguf_pick.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"

static const char *base_name(const char *s) {
    const char *b = strrchr(s, '/');
    return b ? b + 1 : s;
}

static bool ends_with_ci(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

static bool contains_ci(const char *s, const char *w) {
    size_t n = strlen(w);
    for (; *s; s++)
        if (!strncasecmp(s, w, n)) return true;
    return false;
}

bool hub_is_model_gguf(const char *name) {
    return ends_with_ci(name, ".gguf") && !contains_ci(base_name(name), "mmproj");
}

/* The tag as a word of the file's stem: after the start or one of "-._", before "-" or ".". */
static bool has_tag(const char *name, const char *tag) {
    const char *b = base_name(name);
    size_t n = strlen(b), t = strlen(tag);
    if (n < 5) return false;
    size_t stem = n - 5; /* ".gguf" */
    for (size_t i = 0; i + t <= stem; i++) {
        if (strncasecmp(b + i, tag, t)) continue;
        bool before = i == 0 || strchr("-._", b[i - 1]);
        bool after = i + t == stem || b[i + t] == '-' || b[i + t] == '.';
        if (before && after) return true;
    }
    return false;
}

/* A shard's number and count from "...-00002-of-00005.gguf"; false when not a shard name. */
static bool shard_of(const char *name, int *k, int *total) {
    size_t n = strlen(name);
    if (n < 20) return false;
    const char *t = name + n - 20;
    if (t[0] != '-' || strncmp(t + 6, "-of-", 4) || strcasecmp(t + 15, ".gguf")) return false;
    for (int i = 1; i <= 5; i++)
        if (!isdigit((unsigned char)t[i]) || !isdigit((unsigned char)t[9 + i])) return false;
    *k = atoi(t + 1) ;
    *total = atoi(t + 10);
    return *k >= 1 && *total >= 1 && *k <= *total;
}

/* Index of names[i]'s unit: the file itself, or its split's first shard (-1 when absent). */
static int unit_of(const char *const *names, int n, int i) {
    int k, total;
    if (!shard_of(names[i], &k, &total)) return i;
    size_t len = strlen(names[i]);
    for (int j = 0; j < n; j++) {
        int k2, t2;
        if (strlen(names[j]) == len && !strncmp(names[j], names[i], len - 20) && shard_of(names[j], &k2, &t2) &&
            k2 == 1 && t2 == total)
            return j;
    }
    return -1;
}

static void list_ggufs(const char *const *names, int n, strbuf *sb) {
    int shown = 0;
    for (int i = 0; i < n; i++)
        if (hub_is_model_gguf(names[i])) {
            int k, t;
            if (shard_of(names[i], &k, &t) && k != 1) continue;
            if (shown++ == 24) {
                sb_puts(sb, ", ...");
                break;
            }
            sb_printf(sb, "%s%s", shown > 1 ? ", " : "", names[i]);
        }
    if (!shown) sb_puts(sb, "none");
}

/* The units (single files or first shards) matching tag (NULL: every model GGUF). */
static int units(const char *const *names, int n, const char *tag, int *out) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!hub_is_model_gguf(names[i]) || (tag && !has_tag(names[i], tag))) continue;
        int u = unit_of(names, n, i);
        if (u < 0) u = i; /* a split without its first shard: reported when expanded */
        bool seen = false;
        for (int j = 0; j < m && !seen; j++) seen = out[j] == u;
        if (!seen) out[m++] = u;
    }
    return m;
}

forge_status hub_gguf_pick(const char *const *names, int n, const char *tag, int *picked, int *n_picked,
                           const char *repo, forge_error *err) {
    *n_picked = 0;
    int *u = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!u) return err_set(err, FORGE_E_NOMEM, "out of memory");
    strbuf sb = STRBUF_INIT;
    forge_status st = FORGE_OK;
    bool dflt = !tag || !*tag;
    int m = units(names, n, dflt ? HUB_GGUF_DEFAULT_TAG : tag, u);
    if (m == 0 && dflt) {
        m = units(names, n, NULL, u);
        if (m > 1) {
            list_ggufs(names, n, &sb);
            st = err_set(err, FORGE_E_INVALID,
                         "%s holds several GGUF models and none is %s: add a quantization tag, %s:TAG (files: %s)", repo,
                         HUB_GGUF_DEFAULT_TAG, repo, sb_failed(&sb) ? "?" : sb_str(&sb));
            goto out;
        }
    }
    if (m == 0) {
        list_ggufs(names, n, &sb);
        st = err_set(err, FORGE_E_NOT_FOUND, "%s has no GGUF file %s%s (files: %s)", repo, dflt ? "" : "for the tag ",
                     dflt ? "" : tag, sb_failed(&sb) ? "?" : sb_str(&sb));
        goto out;
    }
    /* several: the shortest name (model-Q4_K_M.gguf before model-Q4_K_M-imat.gguf) */
    int best = u[0];
    for (int j = 1; j < m; j++)
        if (strlen(names[u[j]]) < strlen(names[best]) ||
            (strlen(names[u[j]]) == strlen(names[best]) && strcmp(names[u[j]], names[best]) < 0))
            best = u[j];
    int k, total;
    if (!shard_of(names[best], &k, &total)) {
        picked[(*n_picked)++] = best;
        goto out;
    }
    if (k != 1) {
        st = err_set(err, FORGE_E_NOT_FOUND, "%s: the first shard of %s is missing", repo, names[best]);
        goto out;
    }
    size_t len = strlen(names[best]);
    for (int want = 1; want <= total; want++) {
        int found = -1;
        for (int j = 0; j < n && found < 0; j++) {
            int k2, t2;
            if (strlen(names[j]) == len && !strncmp(names[j], names[best], len - 20) && shard_of(names[j], &k2, &t2) &&
                k2 == want && t2 == total)
                found = j;
        }
        if (found < 0) {
            st = err_set(err, FORGE_E_NOT_FOUND, "%s: shard %d of %d of %.*s is missing", repo, want, total,
                         (int)(len - 20), names[best]);
            *n_picked = 0;
            goto out;
        }
        picked[(*n_picked)++] = found;
    }
out:
    sb_free(&sb);
    free(u);
    return st;
}
