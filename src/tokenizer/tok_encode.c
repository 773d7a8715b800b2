/* tok_encode.c: the encode pipeline (added tokens, normalizer, normalized added tokens,
 * pre-tokenizer, BPE), the post-processors (TemplateProcessing, ByteLevel, Roberta/Bert,
 * Sequence) reduced to the ids they put before and after a single sequence, and the pool
 * of per-call scratch state. */
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "tokenizer/tok_internal.h"

/* ---------------------------------------------------------------------------------------
 * Scratch pool
 * ------------------------------------------------------------------------------------- */

tok_scratch *scratch_get(const forge_tokenizer *ct) {
    forge_tokenizer *t = (forge_tokenizer *)ct; /* the pool is the only mutable part */
    pthread_mutex_lock(&t->pool_lock);
    tok_scratch *sc = t->pool;
    if (sc) t->pool = sc->next;
    pthread_mutex_unlock(&t->pool_lock);
    if (sc) return sc;
    sc = calloc(1, sizeof *sc);
    if (!sc) return NULL;
    sc->md = pcre2_match_data_create(16, NULL);
    sc->mctx = pcre2_match_context_create(NULL);
    sc->jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!sc->md || !sc->mctx || !sc->jstack) {
        scratch_free(sc);
        return NULL;
    }
    pcre2_jit_stack_assign(sc->mctx, NULL, sc->jstack);
    return sc;
}

void scratch_put(const forge_tokenizer *ct, tok_scratch *sc) {
    if (!sc) return;
    forge_tokenizer *t = (forge_tokenizer *)ct;
    pthread_mutex_lock(&t->pool_lock);
    sc->next = t->pool;
    t->pool = sc;
    pthread_mutex_unlock(&t->pool_lock);
}

void scratch_free(tok_scratch *sc) {
    if (!sc) return;
    if (sc->md) pcre2_match_data_free(sc->md);
    if (sc->mctx) pcre2_match_context_free(sc->mctx);
    if (sc->jstack) pcre2_jit_stack_free(sc->jstack);
    sb_free(&sc->in);
    sb_free(&sc->norm);
    sb_free(&sc->tmp);
    sb_free(&sc->arena);
    free(sc->pieces);
    free(sc->pieces2);
    free(sc->segs);
    bpe_scratch_free(sc);
    free(sc);
}

/* ---------------------------------------------------------------------------------------
 * Post-processors
 * ------------------------------------------------------------------------------------- */

static bool ids_append(int32_t **arr, int *n, int32_t id) {
    int32_t *p = realloc(*arr, (size_t)(*n + 1) * sizeof *p);
    if (!p) return false;
    p[(*n)++] = id;
    *arr = p;
    return true;
}

static forge_status template_parse(tok_post *p, const json_value *v, const char *where,
                                   forge_error *err) {
    const json_value *single = json_get(v, "single"), *specials = json_get(v, "special_tokens");
    if (!json_is(single, JSON_ARRAY)) return err_set(err, FORGE_E_FORMAT, "%s.single: expected an array", where);
    bool seen_a = false;
    int32_t *pre = NULL, *suf = NULL;
    int npre = 0, nsuf = 0;
    forge_status st = FORGE_OK;
    for (size_t i = 0; i < single->n && !st; i++) {
        const json_value *piece = single->u.items[i];
        const json_value *sq = json_get(piece, "Sequence"), *sp = json_get(piece, "SpecialToken");
        if (sq) {
            const char *id = json_string(json_get(sq, "id"));
            if (!id || strcmp(id, "A") || seen_a)
                st = err_set(err, FORGE_E_UNSUPPORTED, "%s.single[%zu]: only one Sequence A is supported", where, i);
            seen_a = true;
            continue;
        }
        const char *name = json_string(json_get(sp, "id"));
        if (!name) {
            st = err_set(err, FORGE_E_FORMAT, "%s.single[%zu]: expected Sequence or SpecialToken", where, i);
            break;
        }
        const json_value *ids = json_get(json_get(specials, name), "ids");
        if (!json_is(ids, JSON_ARRAY)) {
            st = err_set(err, FORGE_E_FORMAT, "%s.special_tokens[\"%.60s\"].ids: missing", where, name);
            break;
        }
        for (size_t k = 0; k < ids->n && !st; k++) {
            const json_value *x = ids->u.items[k];
            if (!json_is(x, JSON_INT) || x->u.i < 0 || x->u.i > INT32_MAX)
                st = err_set(err, FORGE_E_FORMAT, "%s.special_tokens[\"%.60s\"].ids[%zu]: expected an id", where, name, k);
            else if (!(seen_a ? ids_append(&suf, &nsuf, (int32_t)x->u.i) : ids_append(&pre, &npre, (int32_t)x->u.i)))
                st = err_set(err, FORGE_E_NOMEM, "out of memory");
        }
    }
    if (!st && !seen_a) st = err_set(err, FORGE_E_FORMAT, "%s.single: no Sequence A", where);
    if (st) {
        free(pre);
        free(suf);
        return st;
    }
    /* wrap what earlier processors produced: pre + (old prefix + A + old suffix) + suf */
    for (int i = 0; i < p->n_prefix && !st; i++)
        if (!ids_append(&pre, &npre, p->prefix[i])) st = err_set(err, FORGE_E_NOMEM, "out of memory");
    int32_t *s2 = NULL;
    int n2 = 0;
    for (int i = 0; i < p->n_suffix && !st; i++)
        if (!ids_append(&s2, &n2, p->suffix[i])) st = err_set(err, FORGE_E_NOMEM, "out of memory");
    for (int i = 0; i < nsuf && !st; i++)
        if (!ids_append(&s2, &n2, suf[i])) st = err_set(err, FORGE_E_NOMEM, "out of memory");
    free(suf);
    if (st) {
        free(pre);
        free(s2);
        return st;
    }
    free(p->prefix);
    free(p->suffix);
    p->prefix = pre;
    p->n_prefix = npre;
    p->suffix = s2;
    p->n_suffix = n2;
    return FORGE_OK;
}

static forge_status post_one(forge_tokenizer *t, const json_value *v, const char *where, forge_error *err) {
    const char *type = json_string(json_get(v, "type"));
    if (!type) return err_set(err, FORGE_E_FORMAT, "%s.type: missing", where);
    if (!strcmp(type, "ByteLevel")) return FORGE_OK; /* offsets only */
    if (!strcmp(type, "TemplateProcessing")) return template_parse(&t->post, v, where, err);
    if (!strcmp(type, "Sequence")) {
        const json_value *arr = json_get(v, "processors");
        if (!json_is(arr, JSON_ARRAY)) return err_set(err, FORGE_E_FORMAT, "%s.processors: expected an array", where);
        for (size_t i = 0; i < arr->n; i++) {
            char w[128];
            snprintf(w, sizeof w, "%s.processors[%zu]", where, i);
            forge_status st = post_one(t, arr->u.items[i], w, err);
            if (st) return st;
        }
        return FORGE_OK;
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        const json_value *cls = json_at(json_get(v, "cls"), 1), *sep = json_at(json_get(v, "sep"), 1);
        if (!json_is(cls, JSON_INT) || !json_is(sep, JSON_INT))
            return err_set(err, FORGE_E_FORMAT, "%s.cls/sep: expected [token, id]", where);
        tok_post *p = &t->post;
        int32_t *pre = NULL;
        int npre = 0;
        if (!ids_append(&pre, &npre, (int32_t)cls->u.i)) return err_set(err, FORGE_E_NOMEM, "out of memory");
        for (int i = 0; i < p->n_prefix; i++)
            if (!ids_append(&pre, &npre, p->prefix[i])) return free(pre), err_set(err, FORGE_E_NOMEM, "out of memory");
        free(p->prefix);
        p->prefix = pre;
        p->n_prefix = npre;
        if (!ids_append(&p->suffix, &p->n_suffix, (int32_t)sep->u.i)) return err_set(err, FORGE_E_NOMEM, "out of memory");
        return FORGE_OK;
    }
    return err_set(err, FORGE_E_UNSUPPORTED, "%s.type: post-processor \"%s\" is not supported", where, type);
}

forge_status post_parse(forge_tokenizer *t, const json_value *v, forge_error *err) {
    if (!v || json_is(v, JSON_NULL)) return FORGE_OK;
    if (!json_is(v, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "post_processor: expected an object or null");
    return post_one(t, v, "post_processor", err);
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

static bool push_id(forge_tokens *out, int32_t id) {
    if (out->n == out->cap) {
        size_t nc = out->cap ? out->cap * 2 : 256;
        int32_t *p = realloc(out->ids, nc * sizeof *p);
        if (!p) return false;
        out->ids = p;
        out->cap = nc;
    }
    out->ids[out->n++] = id;
    return true;
}

/* Pre-tokenizes and tokenizes one normalized segment without added tokens. */
static forge_status encode_plain(const forge_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                                 bool first, forge_tokens *out, forge_error *err) {
    size_t np;
    forge_status st = pre_apply(t, sc, s, n, first, &np, err);
    for (size_t i = 0; i < np && !st; i++)
        st = bpe_encode(t, sc, sc->arena.data + sc->pieces[i].off, sc->pieces[i].len, out, err);
    return st;
}

/* One segment of the raw text between non-normalized added tokens: normalize it, then cut
 * out the normalized added tokens. */
static forge_status encode_segment(const forge_tokenizer *t, tok_scratch *sc, const char *s,
                                   size_t n, bool first, bool split_special, forge_tokens *out,
                                   forge_error *err) {
    forge_status st = norm_apply(t, sc, s, n, &sc->norm, err);
    if (st) return st;
    const char *ns = sc->norm.data ? sc->norm.data : "";
    size_t nn = sc->norm.len, pos = 0;
    if (t->trie_norm.empty) return encode_plain(t, sc, ns, nn, first, out, err);
    /* sc->norm stays put while encode_plain works in the arena */
    for (;;) {
        size_t ms, me;
        int a = added_next(t, &t->trie_norm, ns, nn, pos, pos, split_special, &ms, &me);
        size_t end = a >= 0 ? ms : nn;
        if (end > pos) {
            st = encode_plain(t, sc, ns + pos, end - pos, first && pos == 0, out, err);
            if (st) return st;
        }
        if (a < 0) break;
        if (!push_id(out, t->added[a].id)) return err_set(err, FORGE_E_NOMEM, "out of memory");
        pos = me;
    }
    return FORGE_OK;
}

forge_status forge_tokenizer_encode(const forge_tokenizer *t, const char *text, size_t len,
                                    unsigned flags, forge_tokens *out, forge_error *err) {
    if (!t || !out || (!text && len)) return err_set(err, FORGE_E_INVALID, "tokenizer encode: NULL argument");
    tok_scratch *sc = scratch_get(t);
    if (!sc) return err_set(err, FORGE_E_NOMEM, "out of memory");
    size_t start_n = out->n;
    forge_status st = FORGE_OK;
    const char *s = text ? text : "";
    if (!utf8_valid(s, len)) { /* as Python would have it: invalid bytes become U+FFFD */
        sb_reset(&sc->in);
        utf8_append_lossy(&sc->in, s, len);
        if (sb_failed(&sc->in)) {
            st = err_set(err, FORGE_E_NOMEM, "out of memory");
            goto done;
        }
        s = sc->in.data;
        len = sc->in.len;
    }
    bool add = flags & FORGE_ENCODE_ADD_SPECIAL, split = flags & FORGE_ENCODE_SPLIT_SPECIAL;
    for (int i = 0; add && i < t->post.n_prefix; i++)
        if (!push_id(out, t->post.prefix[i])) goto oom;
    size_t pos = 0;
    for (;;) {
        size_t ms, me;
        int a = added_next(t, &t->trie_raw, s, len, pos, pos, split, &ms, &me);
        size_t end = a >= 0 ? ms : len;
        if (end > pos) {
            st = encode_segment(t, sc, s + pos, end - pos, pos == 0, split, out, err);
            if (st) goto done;
        }
        if (a < 0) break;
        if (!push_id(out, t->added[a].id)) goto oom;
        pos = me;
    }
    for (int i = 0; add && i < t->post.n_suffix; i++)
        if (!push_id(out, t->post.suffix[i])) goto oom;
    goto done;
oom:
    st = err_set(err, FORGE_E_NOMEM, "out of memory");
done:
    if (st) out->n = start_n;
    scratch_put(t, sc);
    return st;
}

void forge_tokens_free(forge_tokens *t) {
    if (!t) return;
    free(t->ids);
    memset(t, 0, sizeof *t);
}
