/* tok_pretok.c: patterns (String / Regex through PCRE2) and the pre-tokenizers: Split
 * (every SplitDelimiterBehavior and invert), ByteLevel, Digits, Metaspace, WhitespaceSplit,
 * Punctuation, Sequence. Pieces are (offset, length) slices of the scratch arena; stages
 * that change text (a prefix space, Metaspace's replacement) append the new text to it. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* GPT-2's pre-tokenizer regex (HF ByteLevel with use_regex). */
static const char GPT2_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---------------------------------------------------------------------------------------
 * Patterns
 * ------------------------------------------------------------------------------------- */

/* HF compiles Split/Replace regexes with Oniguruma, whose \s is exactly Unicode's
 * White_Space property. PCRE2's \s with PCRE2_UCP differs (it lacks U+0085 and, in 10.42,
 * still has U+180E), so \s and \S are rewritten into explicit White_Space classes. */
#define WS_ITEMS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static char *rewrite_spaces(const char *re, size_t len, size_t *out_len) {
    char *out = malloc(len * 100 + 1);
    if (!out) return NULL;
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < len) {
            char d = re[i + 1];
            if (d == 's' || d == 'S') {
                const char *rep = d == 's' ? (in_class ? WS_ITEMS : "[" WS_ITEMS "]")
                                           : (in_class ? NULL : "[^" WS_ITEMS "]");
                if (rep) {
                    size_t k = strlen(rep);
                    memcpy(out + o, rep, k);
                    o += k;
                    i++;
                    continue;
                }
            }
            out[o++] = c;
            out[o++] = d;
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            out[o++] = c;
            if (i + 1 < len && re[i + 1] == '^') out[o++] = re[++i];
            if (i + 1 < len && re[i + 1] == ']') out[o++] = re[++i]; /* literal ] first */
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        out[o++] = c;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

forge_status pattern_compile_regex(tok_pattern *p, const char *re, size_t len, const char *where,
                                   forge_error *err) {
    size_t rlen;
    char *rw = rewrite_spaces(re, len, &rlen);
    if (!rw) return err_set(err, FORGE_E_NOMEM, "out of memory");
    int ec;
    PCRE2_SIZE eo;
    p->re = pcre2_compile((PCRE2_SPTR)rw, rlen, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    free(rw);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return err_set(err, FORGE_E_UNSUPPORTED, "%s: regex does not compile with PCRE2: %s",
                       where, (const char *)msg);
    }
    p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0;
    return FORGE_OK;
}

forge_status pattern_parse(tok_pattern *p, const json_value *v, const char *where, forge_error *err) {
    memset(p, 0, sizeof *p);
    const json_value *s = json_get(v, "String"), *r = json_get(v, "Regex");
    if (json_is(s, JSON_STRING)) {
        p->lit = malloc(s->n + 1);
        if (!p->lit) return err_set(err, FORGE_E_NOMEM, "out of memory");
        memcpy(p->lit, s->u.s, s->n + 1);
        p->lit_len = s->n;
        return FORGE_OK;
    }
    if (json_is(r, JSON_STRING)) return pattern_compile_regex(p, r->u.s, r->n, where, err);
    return err_set(err, FORGE_E_FORMAT, "%s.pattern: expected {\"String\": ...} or {\"Regex\": ...}",
                   where);
}

void pattern_free(tok_pattern *p) {
    free(p->lit);
    if (p->re) pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

bool pattern_find(const tok_pattern *p, tok_scratch *sc, const char *s, size_t n, size_t from,
                  size_t *ms, size_t *me, int *rc) {
    *rc = 0;
    if (!p->re) {
        if (p->lit_len == 0 || from >= n) return false;
        const char *f = memmem(s + from, n - from, p->lit, p->lit_len);
        if (!f) return false;
        *ms = (size_t)(f - s);
        *me = *ms + p->lit_len;
        return true;
    }
    if (from > n) return false;
    int r;
    if (p->jit)
        r = pcre2_jit_match(p->re, (PCRE2_SPTR)s, n, from, 0, sc->md, sc->mctx);
    else
        r = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, sc->md, sc->mctx);
    if (r == PCRE2_ERROR_JIT_STACKLIMIT)
        r = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, sc->md,
                        sc->mctx);
    if (r == PCRE2_ERROR_NOMATCH) return false;
    if (r < 0) {
        *rc = r;
        return false;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
    *ms = ov[0];
    *me = ov[1];
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------- */

static bool jbool(const json_value *o, const char *key, bool dflt) {
    const json_value *v = json_get(o, key);
    return json_is(v, JSON_BOOL) ? v->u.b : dflt;
}

static forge_status parse_repl(const json_value *o, char repl[8], int *repl_len, const char *where,
                               forge_error *err) {
    const json_value *r = json_get(o, "replacement");
    if (!r) {
        memcpy(repl, "\xE2\x96\x81", 3); /* U+2581 */
        *repl_len = 3;
        return FORGE_OK;
    }
    uint32_t cp;
    size_t i = 0;
    if (!json_is(r, JSON_STRING) || r->n == 0 || r->n > 4 || (utf8_next(r->u.s, &i), i != r->n) ||
        !utf8_valid(r->u.s, r->n))
        return err_set(err, FORGE_E_FORMAT, "%s.replacement: expected one character", where);
    (void)cp;
    memcpy(repl, r->u.s, r->n);
    *repl_len = (int)r->n;
    return FORGE_OK;
}

static forge_status parse_one(forge_tokenizer *t, const json_value *v, const char *where,
                              forge_error *err) {
    const char *type = json_string(json_get(v, "type"));
    if (!type) return err_set(err, FORGE_E_FORMAT, "%s.type: missing", where);
    if (!strcmp(type, "Sequence")) {
        const json_value *arr = json_get(v, "pretokenizers");
        if (!json_is(arr, JSON_ARRAY))
            return err_set(err, FORGE_E_FORMAT, "%s.pretokenizers: expected an array", where);
        for (size_t i = 0; i < arr->n; i++) {
            char w[128];
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
            forge_status st = parse_one(t, arr->u.items[i], w, err);
            if (st) return st;
        }
        return FORGE_OK;
    }
    if (t->n_pres == TOK_MAX_PRE)
        return err_set(err, FORGE_E_UNSUPPORTED, "%s: more than %d pre-tokenizers", where, TOK_MAX_PRE);
    if (t->byte_level)
        return err_set(err, FORGE_E_UNSUPPORTED, "%s: a pre-tokenizer after ByteLevel", where);
    tok_pre *p = &t->pres[t->n_pres];
    memset(p, 0, sizeof *p);
    if (!strcmp(type, "Split")) {
        p->kind = PRE_SPLIT;
        const char *b = json_string(json_get(v, "behavior"));
        if (!b) return err_set(err, FORGE_E_FORMAT, "%s.behavior: missing", where);
        if (!strcmp(b, "Removed")) p->behavior = SPLIT_REMOVED;
        else if (!strcmp(b, "Isolated")) p->behavior = SPLIT_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p->behavior = SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p->behavior = SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p->behavior = SPLIT_CONTIGUOUS;
        else return err_set(err, FORGE_E_FORMAT, "%s.behavior: unknown \"%s\"", where, b);
        p->invert = jbool(v, "invert", false);
        forge_status st = pattern_parse(&p->pat, json_get(v, "pattern"), where, err);
        if (st) return st;
    } else if (!strcmp(type, "ByteLevel")) {
        p->kind = PRE_BYTELEVEL;
        p->add_prefix_space = jbool(v, "add_prefix_space", true);
        p->use_regex = jbool(v, "use_regex", true);
        if (p->use_regex) {
            forge_status st = pattern_compile_regex(&p->pat, GPT2_RE, sizeof GPT2_RE - 1, where, err);
            if (st) return st;
        }
        t->byte_level = true;
    } else if (!strcmp(type, "Digits")) {
        p->kind = PRE_DIGITS;
        p->individual = jbool(v, "individual_digits", false);
    } else if (!strcmp(type, "Metaspace")) {
        p->kind = PRE_METASPACE;
        forge_status st = parse_repl(v, p->repl, &p->repl_len, where, err);
        if (st) return st;
        const char *ps = json_string(json_get(v, "prepend_scheme"));
        if (ps) {
            if (!strcmp(ps, "always")) p->scheme = PREPEND_ALWAYS;
            else if (!strcmp(ps, "first")) p->scheme = PREPEND_FIRST;
            else if (!strcmp(ps, "never")) p->scheme = PREPEND_NEVER;
            else return err_set(err, FORGE_E_FORMAT, "%s.prepend_scheme: unknown \"%s\"", where, ps);
        } else {
            p->scheme = jbool(v, "add_prefix_space", true) ? PREPEND_ALWAYS : PREPEND_NEVER;
        }
        p->split = jbool(v, "split", true);
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p->kind = PRE_WHITESPACE_SPLIT;
    } else if (!strcmp(type, "Punctuation")) {
        p->kind = PRE_PUNCTUATION;
        p->behavior = SPLIT_ISOLATED;
        const char *b = json_string(json_get(v, "behavior"));
        if (b && !strcmp(b, "Removed")) p->behavior = SPLIT_REMOVED;
        else if (b && !strcmp(b, "MergedWithPrevious")) p->behavior = SPLIT_MERGED_PREV;
        else if (b && !strcmp(b, "MergedWithNext")) p->behavior = SPLIT_MERGED_NEXT;
        else if (b && !strcmp(b, "Contiguous")) p->behavior = SPLIT_CONTIGUOUS;
    } else {
        return err_set(err, FORGE_E_UNSUPPORTED, "%s.type: pre-tokenizer \"%s\" is not supported",
                       where, type);
    }
    t->n_pres++;
    return FORGE_OK;
}

forge_status pre_parse(forge_tokenizer *t, const json_value *v, forge_error *err) {
    if (!v || json_is(v, JSON_NULL)) return FORGE_OK;
    if (!json_is(v, JSON_OBJECT))
        return err_set(err, FORGE_E_FORMAT, "pre_tokenizer: expected an object or null");
    return parse_one(t, v, "pre_tokenizer", err);
}

/* ---------------------------------------------------------------------------------------
 * Applying
 * ------------------------------------------------------------------------------------- */

static bool push(tok_piece **arr, size_t *n, size_t *cap, size_t off, size_t len, bool flag) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        tok_piece *p = realloc(*arr, nc * sizeof *p);
        if (!p) return false;
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = (tok_piece){(uint32_t)off, (uint32_t)len, flag};
    return true;
}

typedef bool (*char_pred)(uint32_t cp, const tok_pre *p);

static bool pred_numeric(uint32_t cp, const tok_pre *p) { (void)p; return uni_is_numeric(cp); }
static bool pred_punct(uint32_t cp, const tok_pre *p) { (void)p; return uni_is_punct(cp); }
static bool pred_space(uint32_t cp, const tok_pre *p) { (void)p; return uni_is_space(cp); }
static bool pred_repl(uint32_t cp, const tok_pre *p) {
    size_t i = 0;
    return cp == utf8_next(p->repl, &i);
}

/* Segments of piece [off, off+len) of the arena: matches of the pattern (or of single
 * chars satisfying pred), and the text between them, with .first = is_match. */
static forge_status segments(const tok_pre *p, tok_scratch *sc, char_pred pred, size_t off,
                             size_t len, size_t *n_segs, forge_error *err) {
    const char *s = sc->arena.data + off;
    size_t n = 0, prev = 0;
    if (pred) {
        size_t i = 0;
        while (i < len) {
            size_t b = i;
            uint32_t cp = utf8_next(s, &i);
            if (!pred(cp, p)) continue;
            if (prev < b && !push(&sc->segs, &n, &sc->n_segs_cap, off + prev, b - prev, false)) goto oom;
            if (!push(&sc->segs, &n, &sc->n_segs_cap, off + b, i - b, true)) goto oom;
            prev = i;
        }
    } else {
        size_t from = 0, ms, me;
        int rc;
        while (pattern_find(&p->pat, sc, s, len, from, &ms, &me, &rc)) {
            if (prev != ms && !push(&sc->segs, &n, &sc->n_segs_cap, off + prev, ms - prev, false)) goto oom;
            if (!push(&sc->segs, &n, &sc->n_segs_cap, off + ms, me - ms, true)) goto oom;
            prev = me;
            if (me == ms) { /* empty match: step over one character */
                if (me >= len) break;
                utf8_next(s, &me);
            }
            from = me;
        }
        if (rc < 0) return err_set(err, FORGE_E_INTERNAL, "pre-tokenizer regex failed (PCRE2 error %d)", rc);
    }
    if (prev != len && !push(&sc->segs, &n, &sc->n_segs_cap, off + prev, len - prev, false)) goto oom;
    *n_segs = n;
    return FORGE_OK;
oom:
    return err_set(err, FORGE_E_NOMEM, "out of memory");
}

/* HF NormalizedString::split: turns segments into pieces by behavior. */
static forge_status split_by(tok_scratch *sc, size_t n_segs, split_behavior b, bool invert,
                             bool first, size_t *n_out, forge_error *err) {
    tok_piece *sg = sc->segs;
    size_t n = *n_out;
    size_t start_n = n;
    if (invert)
        for (size_t i = 0; i < n_segs; i++) sg[i].first = !sg[i].first;
    bool prev_match = false;
    for (size_t i = 0; i < n_segs; i++) {
        bool m = sg[i].first;
        switch (b) {
        case SPLIT_ISOLATED:
            if (!push(&sc->pieces2, &n, &sc->n_pieces2_cap, sg[i].off, sg[i].len, false)) goto oom;
            break;
        case SPLIT_REMOVED:
            if (!m && !push(&sc->pieces2, &n, &sc->n_pieces2_cap, sg[i].off, sg[i].len, false)) goto oom;
            break;
        case SPLIT_CONTIGUOUS:
            if (i > 0 && m == prev_match && n > start_n) sc->pieces2[n - 1].len += sg[i].len;
            else if (!push(&sc->pieces2, &n, &sc->n_pieces2_cap, sg[i].off, sg[i].len, false)) goto oom;
            break;
        case SPLIT_MERGED_PREV:
            if (m && !prev_match && n > start_n) sc->pieces2[n - 1].len += sg[i].len;
            else if (!push(&sc->pieces2, &n, &sc->n_pieces2_cap, sg[i].off, sg[i].len, false)) goto oom;
            break;
        case SPLIT_MERGED_NEXT:
            if (m && i + 1 < n_segs && !sg[i + 1].first) { /* glued to the next segment */
                if (!push(&sc->pieces2, &n, &sc->n_pieces2_cap, sg[i].off, sg[i].len + sg[i + 1].len, false)) goto oom;
                i++;
                m = false;
            } else if (!push(&sc->pieces2, &n, &sc->n_pieces2_cap, sg[i].off, sg[i].len, false)) goto oom;
            break;
        }
        prev_match = m;
    }
    /* empty pieces are dropped; the first piece keeps the "starts the input" mark */
    size_t w = start_n;
    for (size_t i = start_n; i < n; i++)
        if (sc->pieces2[i].len) sc->pieces2[w++] = sc->pieces2[i];
    if (w > start_n && first && n_segs && sc->pieces2[start_n].off == sg[0].off) sc->pieces2[start_n].first = true;
    *n_out = w;
    return FORGE_OK;
oom:
    return err_set(err, FORGE_E_NOMEM, "out of memory");
}

/* Appends a space and the arena's own bytes [src, src + n) to the arena and returns the new
 * text's offset; (size_t)-1 on allocation failure. The room is made before copying: the
 * source lives in the arena, which may move when it grows. */
static size_t arena_add_space(tok_scratch *sc, size_t src, size_t n) {
    size_t off = sc->arena.len;
    if (!sb_reserve(&sc->arena, 1 + n)) return (size_t)-1;
    sb_putc(&sc->arena, ' ');
    sb_append(&sc->arena, sc->arena.data + src, n);
    return sb_failed(&sc->arena) ? (size_t)-1 : off;
}

static forge_status apply_one(const tok_pre *p, tok_scratch *sc, tok_piece pc, size_t *n_out,
                              forge_error *err) {
    size_t n_segs;
    forge_status st;
    switch (p->kind) {
    case PRE_SPLIT:
        st = segments(p, sc, NULL, pc.off, pc.len, &n_segs, err);
        if (st) return st;
        return split_by(sc, n_segs, p->behavior, p->invert, pc.first, n_out, err);
    case PRE_DIGITS:
        st = segments(p, sc, pred_numeric, pc.off, pc.len, &n_segs, err);
        if (st) return st;
        return split_by(sc, n_segs, p->individual ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, false, pc.first, n_out, err);
    case PRE_PUNCTUATION:
        st = segments(p, sc, pred_punct, pc.off, pc.len, &n_segs, err);
        if (st) return st;
        return split_by(sc, n_segs, p->behavior, false, pc.first, n_out, err);
    case PRE_WHITESPACE_SPLIT:
        st = segments(p, sc, pred_space, pc.off, pc.len, &n_segs, err);
        if (st) return st;
        return split_by(sc, n_segs, SPLIT_REMOVED, false, pc.first, n_out, err);
    case PRE_BYTELEVEL:
        if (p->add_prefix_space && sc->arena.data[pc.off] != ' ') {
            size_t off = arena_add_space(sc, pc.off, pc.len);
            if (off == (size_t)-1) return err_set(err, FORGE_E_NOMEM, "out of memory");
            pc.off = (uint32_t)off;
            pc.len++;
        }
        if (!p->use_regex) {
            if (!push(&sc->pieces2, n_out, &sc->n_pieces2_cap, pc.off, pc.len, pc.first))
                return err_set(err, FORGE_E_NOMEM, "out of memory");
            return FORGE_OK;
        }
        st = segments(p, sc, NULL, pc.off, pc.len, &n_segs, err);
        if (st) return st;
        return split_by(sc, n_segs, SPLIT_ISOLATED, false, pc.first, n_out, err);
    case PRE_METASPACE: {
        /* replace ' ' by the replacement, then prepend it per prepend_scheme */
        size_t off = sc->arena.len;
        const char *s = sc->arena.data + pc.off;
        bool starts = pc.len >= (size_t)p->repl_len && !memcmp(s, p->repl, (size_t)p->repl_len);
        bool starts_space = pc.len && s[0] == ' ';
        bool prepend = !(starts || starts_space) &&
                       (p->scheme == PREPEND_ALWAYS || (p->scheme == PREPEND_FIRST && pc.first));
        if (prepend) sb_append(&sc->arena, p->repl, (size_t)p->repl_len);
        for (size_t i = 0; i < pc.len; i++) {
            s = sc->arena.data + pc.off; /* the arena may move while growing */
            if (s[i] == ' ') sb_append(&sc->arena, p->repl, (size_t)p->repl_len);
            else sb_putc(&sc->arena, s[i]);
        }
        if (sb_failed(&sc->arena)) return err_set(err, FORGE_E_NOMEM, "out of memory");
        tok_piece np = {(uint32_t)off, (uint32_t)(sc->arena.len - off), pc.first};
        if (!p->split) {
            if (!push(&sc->pieces2, n_out, &sc->n_pieces2_cap, np.off, np.len, np.first))
                return err_set(err, FORGE_E_NOMEM, "out of memory");
            return FORGE_OK;
        }
        st = segments(p, sc, pred_repl, np.off, np.len, &n_segs, err);
        if (st) return st;
        return split_by(sc, n_segs, SPLIT_MERGED_NEXT, false, np.first, n_out, err);
    }
    }
    return FORGE_OK;
}

forge_status pre_apply(const forge_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                       bool first, size_t *n_pieces, forge_error *err) {
    sb_reset(&sc->arena);
    sb_append(&sc->arena, s, n);
    if (sb_failed(&sc->arena)) return err_set(err, FORGE_E_NOMEM, "out of memory");
    size_t np = 0;
    if (n && !push(&sc->pieces, &np, &sc->n_pieces_cap, 0, n, first))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (int k = 0; k < t->n_pres && np; k++) {
        size_t n2 = 0;
        for (size_t i = 0; i < np; i++) {
            forge_status st = apply_one(&t->pres[k], sc, sc->pieces[i], &n2, err);
            if (st) return st;
        }
        tok_piece *tp = sc->pieces;
        sc->pieces = sc->pieces2;
        sc->pieces2 = tp;
        size_t tc = sc->n_pieces_cap;
        sc->n_pieces_cap = sc->n_pieces2_cap;
        sc->n_pieces2_cap = tc;
        np = n2;
    }
    *n_pieces = np;
    return FORGE_OK;
}
