/* tok_normalize.c: normalizers: NFC/NFD/NFKC/NFKD (utf8proc), Lowercase, Prepend, Replace,
 * Strip, Sequence. Each maps a whole segment (text between added tokens) to a new string. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

static forge_status parse_one(forge_tokenizer *t, const json_value *v, const char *where,
                              forge_error *err) {
    const char *type = json_string(json_get(v, "type"));
    if (!type) return err_set(err, FORGE_E_FORMAT, "%s.type: missing", where);
    if (!strcmp(type, "Sequence")) {
        const json_value *arr = json_get(v, "normalizers");
        if (!json_is(arr, JSON_ARRAY))
            return err_set(err, FORGE_E_FORMAT, "%s.normalizers: expected an array", where);
        for (size_t i = 0; i < arr->n; i++) {
            char w[128];
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, i);
            forge_status st = parse_one(t, arr->u.items[i], w, err);
            if (st) return st;
        }
        return FORGE_OK;
    }
    if (t->n_norms == TOK_MAX_NORM)
        return err_set(err, FORGE_E_UNSUPPORTED, "%s: more than %d normalizers", where, TOK_MAX_NORM);
    tok_norm *n = &t->norms[t->n_norms];
    memset(n, 0, sizeof *n);
    if (!strcmp(type, "NFC")) n->kind = NORM_NFC;
    else if (!strcmp(type, "NFD")) n->kind = NORM_NFD;
    else if (!strcmp(type, "NFKC")) n->kind = NORM_NFKC;
    else if (!strcmp(type, "NFKD")) n->kind = NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) n->kind = NORM_LOWERCASE;
    else if (!strcmp(type, "Strip")) {
        n->kind = NORM_STRIP;
        const json_value *l = json_get(v, "strip_left"), *r = json_get(v, "strip_right");
        n->left = json_is(l, JSON_BOOL) ? l->u.b : true;
        n->right = json_is(r, JSON_BOOL) ? r->u.b : true;
    } else if (!strcmp(type, "Prepend") || !strcmp(type, "Replace")) {
        bool prepend = type[1] == 'r' && type[2] == 'e' && type[3] == 'p';
        n->kind = prepend ? NORM_PREPEND : NORM_REPLACE;
        const json_value *c = json_get(v, prepend ? "prepend" : "content");
        if (!json_is(c, JSON_STRING))
            return err_set(err, FORGE_E_FORMAT, "%s.%s: expected a string", where,
                           prepend ? "prepend" : "content");
        n->content = malloc(c->n + 1);
        if (!n->content) return err_set(err, FORGE_E_NOMEM, "out of memory");
        memcpy(n->content, c->u.s, c->n + 1);
        n->content_len = c->n;
        t->n_norms++; /* owned from here on, freed with the tokenizer */
        if (!prepend) return pattern_parse(&n->pat, json_get(v, "pattern"), where, err);
        return FORGE_OK;
    } else {
        return err_set(err, FORGE_E_UNSUPPORTED, "%s.type: normalizer \"%s\" is not supported",
                       where, type);
    }
    t->n_norms++;
    return FORGE_OK;
}

forge_status norm_parse(forge_tokenizer *t, const json_value *v, forge_error *err) {
    if (!v || json_is(v, JSON_NULL)) return FORGE_OK;
    if (!json_is(v, JSON_OBJECT))
        return err_set(err, FORGE_E_FORMAT, "normalizer: expected an object or null");
    return parse_one(t, v, "normalizer", err);
}

static bool is_jamo(uint32_t c) {
    return (c >= 0x1100 && c <= 0x11FF) || (c >= 0xA960 && c <= 0xA97F) || (c >= 0xD7B0 && c <= 0xD7FF);
}

/* A normalization boundary lies before c: c is a starter that takes part in no canonical
 * composition and has no decomposition (which could start with a mark, as U+0F73 does).
 * Below U+0300 nothing is a second part or decomposes to a leading mark; jamo compose
 * algorithmically. */
static bool boundary_before(uint32_t c) {
    if (c < 0x300) return true;
    if (is_jamo(c)) return false;
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    return p->combining_class == 0 && p->comb_index == UINT16_MAX && p->decomp_seqindex == UINT16_MAX;
}

/* Could the form change c standing alone? (Conservative: true sends it to utf8proc.) */
static bool may_change(uint32_t c, bool compose, bool compat) {
    if (c < 0x80) return false;
    if (c >= 0xAC00 && c <= 0xD7A3) return !compose; /* Hangul syllables decompose in NFD/NFKD */
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    if (p->decomp_seqindex == UINT16_MAX) return false;
    if (p->decomp_type != 0) return compat; /* a compatibility decomposition */
    /* canonical: below U+0300 these recompose to themselves under NFC/NFKC */
    return !(compose && c < 0x300);
}

static forge_status map_span(const char *s, size_t n, int opt, strbuf *out, forge_error *err) {
    utf8proc_uint8_t *res = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &res,
                                      (utf8proc_option_t)opt);
    if (r < 0) {
        free(res);
        return err_set(err, r == UTF8PROC_ERROR_NOMEM ? FORGE_E_NOMEM : FORGE_E_INTERNAL,
                       "normalizer: utf8proc: %s", utf8proc_errmsg(r));
    }
    sb_append(out, res, (size_t)r);
    free(res);
    return FORGE_OK;
}

static bool all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

static forge_status apply_one(const tok_norm *nm, tok_scratch *sc, const char *s, size_t n,
                              strbuf *out, forge_error *err) {
    switch (nm->kind) {
    case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD: {
        if (all_ascii(s, n)) { /* ASCII is invariant under every normalization form */
            sb_append(out, s, n);
            break;
        }
        int opt = UTF8PROC_STABLE;
        if (nm->kind == NORM_NFC || nm->kind == NORM_NFKC) opt |= UTF8PROC_COMPOSE;
        else opt |= UTF8PROC_DECOMPOSE;
        if (nm->kind == NORM_NFKC || nm->kind == NORM_NFKD) opt |= UTF8PROC_COMPAT;
        bool compose = nm->kind == NORM_NFC || nm->kind == NORM_NFKC;
        bool compat = nm->kind == NORM_NFKC || nm->kind == NORM_NFKD;
        /* Text splits at normalization boundaries into pieces that normalize on their
         * own; a one-character piece the form cannot change is copied, the others go
         * through utf8proc (most text never reaches it). */
        size_t i = 0;
        while (i < n) {
            size_t j = i;
            uint32_t c = utf8_next(s, &j);
            size_t first_end = j;
            while (j < n) {
                size_t k = j;
                if (boundary_before(utf8_next(s, &k))) break;
                j = k;
            }
            if (j == first_end && !may_change(c, compose, compat)) {
                sb_append(out, s + i, j - i);
            } else {
                forge_status st = map_span(s + i, j - i, opt, out, err);
                if (st) return st;
            }
            i = j;
        }
        break;
    }
    case NORM_LOWERCASE: {
        size_t i = 0;
        while (i < n) {
            uint32_t cp = utf8_next(s, &i);
            char b[4];
            int k = utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), b);
            sb_append(out, b, (size_t)k);
        }
        break;
    }
    case NORM_STRIP: {
        size_t a = 0, b = n;
        if (nm->left)
            while (a < b) {
                size_t j = a;
                if (!uni_is_space(utf8_next(s, &j))) break;
                a = j;
            }
        if (nm->right)
            while (b > a) {
                size_t j = utf8_prev(s, b), k = j;
                if (!uni_is_space(utf8_next(s, &k))) break;
                b = j;
            }
        sb_append(out, s + a, b - a);
        break;
    }
    case NORM_PREPEND:
        if (n) sb_append(out, nm->content, nm->content_len);
        sb_append(out, s, n);
        break;
    case NORM_REPLACE: {
        size_t from = 0, prev = 0, ms, me;
        int rc;
        while (pattern_find(&nm->pat, sc, s, n, from, &ms, &me, &rc)) {
            if (me == ms) { /* empty match: nothing to replace, step over a character */
                if (me >= n) break;
                utf8_next(s, &me);
                from = me;
                continue;
            }
            sb_append(out, s + prev, ms - prev);
            sb_append(out, nm->content, nm->content_len);
            prev = from = me;
        }
        if (rc < 0) return err_set(err, FORGE_E_INTERNAL, "normalizer regex failed (PCRE2 error %d)", rc);
        sb_append(out, s + prev, n - prev);
        break;
    }
    }
    return sb_failed(out) ? err_set(err, FORGE_E_NOMEM, "out of memory") : FORGE_OK;
}

forge_status norm_apply(const forge_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                        strbuf *out, forge_error *err) {
    sb_reset(out);
    if (t->n_norms == 0) {
        sb_append(out, s, n);
        return sb_failed(out) ? err_set(err, FORGE_E_NOMEM, "out of memory") : FORGE_OK;
    }
    /* ping-pong between out and sc->tmp; the last step writes into out */
    strbuf *bufs[2] = {&sc->tmp, out};
    const char *cur = s;
    size_t cur_n = n;
    for (int k = 0; k < t->n_norms; k++) {
        strbuf *dst = bufs[(t->n_norms - 1 - k) % 2 == 0 ? 1 : 0];
        sb_reset(dst);
        forge_status st = apply_one(&t->norms[k], sc, cur, cur_n, dst, err);
        if (st) return st;
        cur = dst->data ? dst->data : "";
        cur_n = dst->len;
    }
    return FORGE_OK;
}
