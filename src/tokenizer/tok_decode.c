/* tok_decode.c: the decoder chain (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace,
 * Sequence), run incrementally: one token in, the text that can no longer change out.
 *
 * HF decodes a list of token strings: each decoder maps the list to a new list, and the
 * result is joined. Stages before the first joining stage (ByteLevel, Fuse, or the final
 * join) act on items (token strings); ByteFallback turns runs of <0xXX> items into one
 * string item, or into one U+FFFD item per byte when the run is not valid UTF-8. After the
 * join there is one growing text, and the remaining stages (Strip, Replace of a literal,
 * Metaspace) act on it as a stream, holding back only what a later character could change.
 * One-shot decode is this same machine fed all ids, so streaming equals one-shot. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

struct forge_detok {
    const forge_tokenizer *t;
    unsigned flags;
    tok_scratch *sc; /* regex match data for Replace */
    int join;        /* index of the joining stage (t->n_decs: the implicit final join) */
    strbuf item[TOK_MAX_DEC]; /* per item stage output */
    uint32_t index[TOK_MAX_DEC]; /* items seen per stage (Metaspace's first-token rule) */
    strbuf run;       /* ByteFallback: pending bytes */
    bool run_bad;     /* ... already known invalid (U+FFFD emitted per byte) */
    size_t run_ok;    /* ... length of its prefix of complete valid characters */
    strbuf pend;      /* ByteLevel: bytes of an incomplete UTF-8 sequence */
    bool joined_any;  /* JOIN_SPACE */
    int strip_left[TOK_MAX_DEC]; /* stream Strip: leading chars still to drop, -1 done */
    int strip_held[TOK_MAX_DEC]; /* stream Strip: trailing content chars held back */
    strbuf hold[TOK_MAX_DEC];    /* stream Replace: a possible start of the pattern */
    strbuf chunk[TOK_MAX_DEC];   /* stream stage scratch */
    strbuf out;
    strbuf skip;      /* after priming: what decode(prompt) still had to emit */
    size_t skip_pos;
    bool skipping;
    forge_status st;
};

/* ---------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------- */

static forge_status one_char(const json_value *v, char out[8], int *len, const char *where,
                             forge_error *err) {
    size_t i = 0;
    if (!json_is(v, JSON_STRING) || v->n == 0 || v->n > 4 || !utf8_valid(v->u.s, v->n) ||
        (utf8_next(v->u.s, &i), i != v->n))
        return err_set(err, FORGE_E_FORMAT, "%s: expected one character", where);
    memcpy(out, v->u.s, v->n);
    *len = (int)v->n;
    return FORGE_OK;
}

static forge_status parse_one(forge_tokenizer *t, const json_value *v, const char *where,
                              forge_error *err) {
    const char *type = json_string(json_get(v, "type"));
    if (!type) return err_set(err, FORGE_E_FORMAT, "%s.type: missing", where);
    if (!strcmp(type, "Sequence")) {
        const json_value *arr = json_get(v, "decoders");
        if (!json_is(arr, JSON_ARRAY)) return err_set(err, FORGE_E_FORMAT, "%s.decoders: expected an array", where);
        for (size_t i = 0; i < arr->n; i++) {
            char w[128];
            snprintf(w, sizeof w, "%s.decoders[%zu]", where, i);
            forge_status st = parse_one(t, arr->u.items[i], w, err);
            if (st) return st;
        }
        return FORGE_OK;
    }
    if (t->n_decs == TOK_MAX_DEC) return err_set(err, FORGE_E_UNSUPPORTED, "%s: more than %d decoders", where, TOK_MAX_DEC);
    tok_dec *d = &t->decs[t->n_decs];
    memset(d, 0, sizeof *d);
    char w[160];
    if (!strcmp(type, "ByteLevel")) d->kind = DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) d->kind = DEC_BYTE_FALLBACK;
    else if (!strcmp(type, "Fuse")) d->kind = DEC_FUSE;
    else if (!strcmp(type, "Strip")) {
        d->kind = DEC_STRIP;
        snprintf(w, sizeof w, "%s.content", where);
        int cl;
        forge_status st = one_char(json_get(v, "content"), d->repl, &cl, w, err);
        if (st) return st;
        d->repl_len = cl;
        const json_value *a = json_get(v, "start"), *b = json_get(v, "stop");
        if (!json_is(a, JSON_INT) || !json_is(b, JSON_INT) || a->u.i < 0 || b->u.i < 0 || a->u.i > 1000 || b->u.i > 1000)
            return err_set(err, FORGE_E_FORMAT, "%s.start/stop: expected small non-negative integers", where);
        d->start = (int)a->u.i;
        d->stop = (int)b->u.i;
    } else if (!strcmp(type, "Replace")) {
        d->kind = DEC_REPLACE;
        const json_value *c = json_get(v, "content");
        if (!json_is(c, JSON_STRING)) return err_set(err, FORGE_E_FORMAT, "%s.content: expected a string", where);
        d->content = malloc(c->n + 1);
        if (!d->content) return err_set(err, FORGE_E_NOMEM, "out of memory");
        memcpy(d->content, c->u.s, c->n + 1);
        d->content_len = c->n;
        t->n_decs++;
        return pattern_parse(&d->pat, json_get(v, "pattern"), where, err);
    } else if (!strcmp(type, "Metaspace")) {
        d->kind = DEC_METASPACE;
        const json_value *r = json_get(v, "replacement");
        if (r) {
            snprintf(w, sizeof w, "%s.replacement", where);
            forge_status st = one_char(r, d->repl, &d->repl_len, w, err);
            if (st) return st;
        } else {
            memcpy(d->repl, "\xE2\x96\x81", 3);
            d->repl_len = 3;
        }
        const char *ps = json_string(json_get(v, "prepend_scheme"));
        const json_value *aps = json_get(v, "add_prefix_space");
        d->prepend_never = ps ? !strcmp(ps, "never") : (json_is(aps, JSON_BOOL) && !aps->u.b);
    } else {
        return err_set(err, FORGE_E_UNSUPPORTED, "%s.type: decoder \"%s\" is not supported", where, type);
    }
    t->n_decs++;
    return FORGE_OK;
}

static int join_index(const forge_tokenizer *t) {
    for (int k = 0; k < t->n_decs; k++)
        if (t->decs[k].kind == DEC_BYTELEVEL || t->decs[k].kind == DEC_FUSE ||
            t->decs[k].kind == DEC_JOIN_SPACE)
            return k;
    return t->n_decs;
}

forge_status dec_parse(forge_tokenizer *t, const json_value *v, forge_error *err) {
    if (!v || json_is(v, JSON_NULL)) {
        t->decs[0].kind = DEC_JOIN_SPACE; /* HF: tokens.join(" ") */
        t->n_decs = 1;
        return FORGE_OK;
    }
    if (!json_is(v, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "decoder: expected an object or null");
    forge_status st = parse_one(t, v, "decoder", err);
    if (st) return st;
    for (int k = join_index(t) + 1; k < t->n_decs; k++) {
        const tok_dec *d = &t->decs[k];
        if (d->kind == DEC_BYTELEVEL || d->kind == DEC_BYTE_FALLBACK || (d->kind == DEC_REPLACE && d->pat.re))
            return err_set(err, FORGE_E_UNSUPPORTED,
                           "decoder: %s after a joining decoder (ByteLevel/Fuse) is not supported",
                           d->kind == DEC_REPLACE ? "a regex Replace" : d->kind == DEC_BYTELEVEL ? "ByteLevel" : "ByteFallback");
    }
    return FORGE_OK;
}

void dec_free(forge_tokenizer *t) {
    for (int k = 0; k < t->n_decs; k++) {
        pattern_free(&t->decs[k].pat);
        free(t->decs[k].content);
    }
}

/* ---------------------------------------------------------------------------------------
 * Stream stages (after the join)
 * ------------------------------------------------------------------------------------- */

static void stream(forge_detok *d, int k, const char *s, size_t n);

static void replace_lit(strbuf *dst, const char *s, size_t n, const char *pat, size_t pn,
                        const char *rep, size_t rn, size_t *tail) {
    size_t i = 0, prev = 0;
    while (pn && i + pn <= n) {
        const char *f = memmem(s + i, n - i, pat, pn);
        if (!f) break;
        size_t at = (size_t)(f - s);
        sb_append(dst, s + prev, at - prev);
        sb_append(dst, rep, rn);
        i = prev = at + pn;
    }
    /* the longest suffix after the last replacement that could start the pattern */
    size_t keep = 0;
    if (tail) {
        for (size_t k = pn > 1 ? pn - 1 : 0; k > 0; k--)
            if (n - prev >= k && !memcmp(s + n - k, pat, k)) {
                keep = k;
                break;
            }
        *tail = keep;
    }
    sb_append(dst, s + prev, n - prev - keep);
}

static void stream_stage(forge_detok *d, int k, const char *s, size_t n, bool fin) {
    const tok_dec *dc = &d->t->decs[k];
    strbuf *c = &d->chunk[k];
    sb_reset(c);
    switch (dc->kind) {
    case DEC_STRIP: {
        size_t i = 0;
        while (i < n) {
            size_t j = i;
            utf8_next(s, &j);
            bool is_c = j - i == (size_t)dc->repl_len && !memcmp(s + i, dc->repl, j - i);
            if (d->strip_left[k] > 0 && is_c) {
                d->strip_left[k]--;
            } else {
                d->strip_left[k] = 0;
                if (is_c && dc->stop > 0) {
                    if (d->strip_held[k] == dc->stop) sb_append(c, dc->repl, (size_t)dc->repl_len);
                    else d->strip_held[k]++;
                } else {
                    for (; d->strip_held[k] > 0; d->strip_held[k]--) sb_append(c, dc->repl, (size_t)dc->repl_len);
                    sb_append(c, s + i, j - i);
                }
            }
            i = j;
        }
        if (fin) d->strip_held[k] = 0; /* trailing content chars are stripped */
        break;
    }
    case DEC_REPLACE: {
        strbuf *h = &d->hold[k];
        sb_append(h, s, n);
        size_t tail = 0;
        replace_lit(c, h->data ? h->data : "", h->len, dc->pat.lit, dc->pat.lit_len, dc->content,
                    dc->content_len, fin ? NULL : &tail);
        /* keep the held tail at the front of h */
        if (tail) memmove(h->data, h->data + h->len - tail, tail);
        h->len = tail;
        if (h->data) h->data[tail] = 0;
        break;
    }
    case DEC_METASPACE: { /* after the join the whole text is the first token */
        size_t i = 0, prev = 0;
        while (i < n) {
            size_t j = i;
            utf8_next(s, &j);
            if (j - i == (size_t)dc->repl_len && !memcmp(s + i, dc->repl, j - i)) {
                sb_append(c, s + prev, i - prev);
                if (dc->prepend_never) sb_putc(c, ' ');
                prev = j;
            }
            i = j;
        }
        sb_append(c, s + prev, n - prev);
        break;
    }
    default: /* Fuse after the join: nothing to do */
        sb_append(c, s, n);
        break;
    }
    if (sb_failed(c)) d->st = FORGE_E_NOMEM;
    if (c->len || fin) {
        if (k + 1 < d->t->n_decs) stream_stage(d, k + 1, c->data ? c->data : "", c->len, fin);
        else sb_append(&d->out, c->data, c->len);
    }
}

static void stream(forge_detok *d, int k, const char *s, size_t n) {
    if (!n) return;
    if (k < d->t->n_decs) stream_stage(d, k, s, n, false);
    else sb_append(&d->out, s, n);
}

/* ---------------------------------------------------------------------------------------
 * Item stages and the join
 * ------------------------------------------------------------------------------------- */

static void item(forge_detok *d, int k, const char *s, size_t n);

static void join(forge_detok *d, const char *s, size_t n) {
    int k = d->join;
    if (k == d->t->n_decs || d->t->decs[k].kind == DEC_FUSE) {
        stream(d, k + 1, s, n);
        return;
    }
    if (d->t->decs[k].kind == DEC_JOIN_SPACE) {
        if (d->joined_any) stream(d, k + 1, " ", 1);
        d->joined_any = true;
        stream(d, k + 1, s, n);
        return;
    }
    /* ByteLevel: chars back to bytes (the raw text when a char is outside the alphabet),
     * then from_utf8_lossy over the whole byte stream */
    strbuf *p = &d->pend;
    size_t mark = p->len;
    size_t i = 0;
    bool ok = true;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int b = c < 0x80 ? bl_char_byte(c) : -1;
        if (c < 0x80) i++;
        else b = bl_char_byte(utf8_next(s, &i));
        if (b < 0) {
            ok = false;
            break;
        }
        sb_putc(p, (char)b);
    }
    if (!ok) {
        p->len = mark;
        sb_append(p, s, n);
    }
    if (sb_failed(p)) {
        d->st = FORGE_E_NOMEM;
        return;
    }
    /* emit all but an incomplete, possibly valid tail */
    const unsigned char *u = (const unsigned char *)p->data;
    size_t done = 0;
    while (done < p->len) {
        int r = utf8_lossy_unit(u + done, p->len - done);
        if (r == 0) break;
        done += (size_t)(r > 0 ? r : -r);
    }
    if (done) {
        strbuf *tmp = &d->chunk[k];
        sb_reset(tmp);
        utf8_append_lossy(tmp, p->data, done);
        memmove(p->data, p->data + done, p->len - done);
        p->len -= done;
        stream(d, k + 1, tmp->data, tmp->len);
    }
}

static void item_next(forge_detok *d, int k, const char *s, size_t n) {
    if (k + 1 == d->join) join(d, s, n);
    else item(d, k + 1, s, n);
}

static const char FFFD[] = "\xEF\xBF\xBD";

static bool byte_token(const char *s, size_t n, unsigned char *b) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return false;
    unsigned v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        unsigned x;
        if (c >= '0' && c <= '9') x = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') x = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x = (unsigned)(c - 'A' + 10);
        else if (i == 3 && c == '+') x = 0; /* Rust's from_str_radix accepts a leading '+' */
        else return false;
        v = v * 16 + x;
    }
    *b = (unsigned char)v;
    return true;
}

/* Is the run so far a valid prefix of valid UTF-8 (complete or not)? Checks only the bytes
 * after the complete characters already seen, so a long run costs O(1) per byte. */
static bool run_valid_prefix(forge_detok *d) {
    const strbuf *r = &d->run;
    const unsigned char *u = (const unsigned char *)r->data;
    while (d->run_ok < r->len) {
        int k = utf8_lossy_unit(u + d->run_ok, r->len - d->run_ok);
        if (k < 0) return false;
        if (k == 0) return true;
        d->run_ok += (size_t)k;
    }
    return true;
}

static void run_flush(forge_detok *d, int k) {
    strbuf *r = &d->run;
    if (!r->len) return;
    if (!d->run_bad) {
        bool complete = run_valid_prefix(d) && d->run_ok == r->len;
        if (complete) {
            /* item_next may not reenter this stage, so the run can be passed directly */
            item_next(d, k, r->data, r->len);
        } else {
            for (size_t i = 0; i < r->len; i++) item_next(d, k, FFFD, 3);
        }
    }
    sb_reset(r);
    d->run_bad = false;
    d->run_ok = 0;
}

static void item(forge_detok *d, int k, const char *s, size_t n) {
    const tok_dec *dc = &d->t->decs[k];
    strbuf *o = &d->item[k];
    switch (dc->kind) {
    case DEC_BYTE_FALLBACK: {
        unsigned char b;
        if (byte_token(s, n, &b)) {
            sb_putc(&d->run, (char)b);
            if (sb_failed(&d->run)) {
                d->st = FORGE_E_NOMEM;
                return;
            }
            if (d->run_bad) {
                item_next(d, k, FFFD, 3);
            } else if (!run_valid_prefix(d)) { /* HF: one U+FFFD per byte of the run */
                d->run_bad = true;
                for (size_t i = 0; i < d->run.len; i++) item_next(d, k, FFFD, 3);
            }
            return;
        }
        run_flush(d, k);
        item_next(d, k, s, n);
        return;
    }
    case DEC_REPLACE:
        sb_reset(o);
        if (dc->pat.re) {
            size_t from = 0, prev = 0, ms, me;
            int rc;
            while (pattern_find(&dc->pat, d->sc, s, n, from, &ms, &me, &rc)) {
                if (me == ms) {
                    if (me >= n) break;
                    utf8_next(s, &me);
                    from = me;
                    continue;
                }
                sb_append(o, s + prev, ms - prev);
                sb_append(o, dc->content, dc->content_len);
                prev = from = me;
            }
            sb_append(o, s + prev, n - prev);
        } else {
            replace_lit(o, s, n, dc->pat.lit, dc->pat.lit_len, dc->content, dc->content_len, NULL);
        }
        break;
    case DEC_STRIP: {
        size_t a = 0, e = n, cl = (size_t)dc->repl_len;
        for (int i = 0; i < dc->start && e - a >= cl && !memcmp(s + a, dc->repl, cl); i++) a += cl;
        for (int i = 0; i < dc->stop && e - a >= cl && !memcmp(s + e - cl, dc->repl, cl); i++) e -= cl;
        sb_reset(o);
        sb_append(o, s + a, e - a);
        break;
    }
    case DEC_METASPACE: {
        bool first = d->index[k]++ == 0;
        sb_reset(o);
        size_t i = 0, prev = 0, cl = (size_t)dc->repl_len;
        while (i + cl <= n) {
            if (!memcmp(s + i, dc->repl, cl)) {
                sb_append(o, s + prev, i - prev);
                if (!first || dc->prepend_never) sb_putc(o, ' ');
                i += cl;
                prev = i;
            } else {
                i++;
            }
        }
        sb_append(o, s + prev, n - prev);
        break;
    }
    default:
        return;
    }
    if (sb_failed(o)) {
        d->st = FORGE_E_NOMEM;
        return;
    }
    item_next(d, k, o->data ? o->data : "", o->len);
}

static void feed(forge_detok *d, const char *s, size_t n) {
    if (d->join == 0) join(d, s, n);
    else item(d, 0, s, n);
}

/* ---------------------------------------------------------------------------------------
 * The public API
 * ------------------------------------------------------------------------------------- */

forge_detok *forge_detok_create(const forge_tokenizer *tok, unsigned flags, forge_error *err) {
    if (!tok) {
        err_set(err, FORGE_E_INVALID, "forge_detok_create: the tokenizer is NULL");
        return NULL;
    }
    forge_detok *d = calloc(1, sizeof *d);
    if (!d) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    d->t = tok;
    d->sc = scratch_get(tok);
    if (!d->sc) {
        free(d);
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    d->join = join_index(tok);
    forge_detok_reset(d, flags);
    return d;
}

void forge_detok_free(forge_detok *d) {
    if (!d) return;
    for (int k = 0; k < TOK_MAX_DEC; k++) {
        sb_free(&d->item[k]);
        sb_free(&d->hold[k]);
        sb_free(&d->chunk[k]);
    }
    sb_free(&d->run);
    sb_free(&d->pend);
    sb_free(&d->out);
    sb_free(&d->skip);
    scratch_put(d->t, d->sc);
    free(d);
}

void forge_detok_reset(forge_detok *d, unsigned flags) {
    if (!d) return;
    d->flags = flags;
    d->st = FORGE_OK;
    d->run_bad = false;
    d->run_ok = 0;
    d->joined_any = false;
    sb_reset(&d->run);
    sb_reset(&d->pend);
    sb_reset(&d->out);
    sb_reset(&d->skip);
    d->skip_pos = 0;
    d->skipping = false;
    for (int k = 0; k < TOK_MAX_DEC; k++) {
        d->index[k] = 0;
        sb_reset(&d->hold[k]);
        d->strip_left[k] = k < d->t->n_decs && d->t->decs[k].kind == DEC_STRIP ? d->t->decs[k].start : 0;
        d->strip_held[k] = 0;
    }
}

static forge_status push_one(forge_detok *d, int32_t id, forge_error *err) {
    size_t n;
    const char *s = tok_str(d->t, id, &n);
    if (!s) return FORGE_OK; /* HF skips ids it does not know */
    if ((d->flags & FORGE_DECODE_SKIP_SPECIAL) && (d->t->id_flags[id] & TOKF_SPECIAL)) return FORGE_OK;
    feed(d, s, n);
    if (d->st || sb_failed(&d->out)) return err_set(err, FORGE_E_NOMEM, "out of memory");
    return FORGE_OK;
}

static void finish(forge_detok *d);

static void sb_copy(strbuf *dst, const strbuf *src) {
    sb_reset(dst);
    sb_append(dst, src->data ? src->data : "", src->len);
}

/* What finish() would emit now, without disturbing d: run on a copy of the state. */
static forge_status pending_text(forge_detok *d, strbuf *out) {
    forge_detok *c = calloc(1, sizeof *c);
    if (!c) return FORGE_E_NOMEM;
    c->t = d->t;
    c->flags = d->flags;
    c->sc = d->sc;
    c->join = d->join;
    c->run_bad = d->run_bad;
    c->run_ok = d->run_ok;
    c->joined_any = d->joined_any;
    memcpy(c->index, d->index, sizeof c->index);
    memcpy(c->strip_left, d->strip_left, sizeof c->strip_left);
    memcpy(c->strip_held, d->strip_held, sizeof c->strip_held);
    sb_copy(&c->run, &d->run);
    sb_copy(&c->pend, &d->pend);
    for (int k = 0; k < TOK_MAX_DEC; k++) sb_copy(&c->hold[k], &d->hold[k]);
    finish(c);
    sb_copy(out, &c->out);
    forge_status st = c->st || sb_failed(out) ? FORGE_E_NOMEM : FORGE_OK;
    for (int k = 0; k < TOK_MAX_DEC; k++) {
        sb_free(&c->item[k]);
        sb_free(&c->hold[k]);
        sb_free(&c->chunk[k]);
    }
    sb_free(&c->run);
    sb_free(&c->pend);
    sb_free(&c->out);
    free(c);
    return st;
}

/* After priming, output that repeats what decode(prompt) already ended with is dropped, up
 * to the first difference (then decode(prompt) was not a prefix: emit from there). */
static void apply_skip(forge_detok *d) {
    if (!d->skipping) return;
    strbuf *o = &d->out;
    size_t rem = d->skip.len - d->skip_pos, k = 0;
    while (k < o->len && k < rem && o->data[k] == d->skip.data[d->skip_pos + k]) k++;
    if (k == o->len && k < rem) {
        d->skip_pos += k;
        o->len = 0;
        if (o->data) o->data[0] = 0;
        return;
    }
    while (k > 0 && k < o->len && ((unsigned char)o->data[k] & 0xC0) == 0x80) k--; /* whole chars */
    memmove(o->data, o->data + k, o->len - k + 1);
    o->len -= k;
    d->skipping = false;
}

forge_status forge_detok_prime(forge_detok *d, const int32_t *ids, size_t n, forge_error *err) {
    if (!d || (!ids && n)) return err_set(err, FORGE_E_INVALID, "forge_detok_prime: %s is NULL", !d ? "the detokenizer" : "ids");
    for (size_t i = 0; i < n; i++) {
        forge_status st = push_one(d, ids[i], err);
        if (st) return st;
        sb_reset(&d->out);
    }
    d->skip_pos = 0;
    if (pending_text(d, &d->skip)) return err_set(err, FORGE_E_NOMEM, "out of memory");
    d->skipping = d->skip.len > 0;
    return FORGE_OK;
}

forge_status forge_detok_push(forge_detok *d, int32_t id, const char **text, size_t *len,
                              forge_error *err) {
    if (!d || !text || !len)
        return err_set(err, FORGE_E_INVALID, "forge_detok_push: %s is NULL", !d ? "the detokenizer" : !text ? "text" : "len");
    sb_reset(&d->out);
    forge_status st = push_one(d, id, err);
    apply_skip(d);
    *text = d->out.data ? d->out.data : "";
    *len = d->out.len;
    return st;
}

static void finish(forge_detok *d) {
    /* ByteFallback's pending run, then the join's pending bytes, then held stream text */
    for (int k = 0; k < d->join; k++)
        if (d->t->decs[k].kind == DEC_BYTE_FALLBACK) run_flush(d, k);
    int j = d->join;
    if (j < d->t->n_decs && d->t->decs[j].kind == DEC_BYTELEVEL && d->pend.len) {
        strbuf *tmp = &d->chunk[j];
        sb_reset(tmp);
        utf8_append_lossy(tmp, d->pend.data, d->pend.len);
        sb_reset(&d->pend);
        if (sb_failed(tmp)) d->st = FORGE_E_NOMEM;
        else stream(d, j + 1, tmp->data, tmp->len);
    }
    if (j + 1 < d->t->n_decs) stream_stage(d, j + 1, "", 0, true);
}

forge_status forge_detok_finish(forge_detok *d, const char **text, size_t *len, forge_error *err) {
    if (!d || !text || !len)
        return err_set(err, FORGE_E_INVALID, "forge_detok_finish: %s is NULL", !d ? "the detokenizer" : !text ? "text" : "len");
    sb_reset(&d->out);
    finish(d);
    apply_skip(d);
    *text = d->out.data ? d->out.data : "";
    *len = d->out.len;
    if (d->st || sb_failed(&d->out)) return err_set(err, FORGE_E_NOMEM, "out of memory");
    return FORGE_OK;
}

/* transformers' clean_up_tokenization: these replacements, in this order */
static void clean_up(strbuf *dst, const char *s, size_t n) {
    static const char *const pairs[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    strbuf a = STRBUF_INIT, b = STRBUF_INIT;
    sb_append(&a, s, n);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        sb_reset(&b);
        replace_lit(&b, a.data ? a.data : "", a.len, pairs[i][0], strlen(pairs[i][0]), pairs[i][1],
                    strlen(pairs[i][1]), NULL);
        strbuf t = a;
        a = b;
        b = t;
    }
    sb_append(dst, a.data, a.len);
    sb_free(&a);
    sb_free(&b);
}

char *forge_tokenizer_decode(const forge_tokenizer *tok, const int32_t *ids, size_t n,
                             unsigned flags, size_t *len, forge_error *err) {
    if (!tok || (!ids && n)) {
        err_set(err, FORGE_E_INVALID, "forge_tokenizer_decode: %s is NULL", !tok ? "the tokenizer" : "ids");
        return NULL;
    }
    forge_detok *d = forge_detok_create(tok, flags, err);
    if (!d) return NULL;
    strbuf all = STRBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (push_one(d, ids[i], err)) goto fail;
        /* the pieces accumulate in d->out; moved out now and then to bound copying */
    }
    finish(d);
    if (d->st || sb_failed(&d->out)) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        goto fail;
    }
    if (flags & FORGE_DECODE_CLEAN_UP_SPACES) clean_up(&all, d->out.data ? d->out.data : "", d->out.len);
    else sb_append(&all, d->out.data ? d->out.data : "", d->out.len);
    forge_detok_free(d);
    if (sb_failed(&all)) {
        sb_free(&all);
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    return sb_take(&all, len);
fail:
    forge_detok_free(d);
    sb_free(&all);
    return NULL;
}

int forge_tokenizer_token_bytes(const forge_tokenizer *tok, int32_t id, char *buf, size_t cap) {
    if (!tok || (!buf && cap)) return -1;
    size_t n;
    const char *s = tok_str(tok, id, &n);
    if (!s) return -1;
    strbuf a = STRBUF_INIT, b = STRBUF_INIT;
    sb_append(&a, s, n);
    for (int k = 0; k < tok->n_decs; k++) {
        const tok_dec *dc = &tok->decs[k];
        const char *x = a.data ? a.data : "";
        sb_reset(&b);
        unsigned char byte;
        switch (dc->kind) {
        case DEC_REPLACE:
            if (dc->pat.re) sb_append(&b, x, a.len); /* regex replaces: left as is */
            else replace_lit(&b, x, a.len, dc->pat.lit, dc->pat.lit_len, dc->content, dc->content_len, NULL);
            break;
        case DEC_BYTE_FALLBACK:
            if (byte_token(x, a.len, &byte)) sb_putc(&b, (char)byte);
            else sb_append(&b, x, a.len);
            break;
        case DEC_BYTELEVEL: {
            size_t i = 0;
            bool ok = true;
            while (i < a.len && ok) {
                int v = bl_char_byte(utf8_next(x, &i));
                if (v < 0) ok = false;
                else sb_putc(&b, (char)v);
            }
            if (!ok) {
                sb_reset(&b);
                sb_append(&b, x, a.len);
            }
            break;
        }
        case DEC_METASPACE:
            replace_lit(&b, x, a.len, dc->repl, (size_t)dc->repl_len, " ", 1, NULL);
            break;
        default:
            sb_append(&b, x, a.len);
            break;
        }
        strbuf t = a;
        a = b;
        b = t;
    }
    int r = sb_failed(&a) ? -1 : (int)a.len;
    if (r > 0) memcpy(buf, a.data, a.len < cap ? a.len : cap);
    sb_free(&a);
    sb_free(&b);
    return r;
}
