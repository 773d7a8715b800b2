/* tok_added.c: added tokens. As HF's AddedVocabulary: non-normalized tokens are cut out of
 * the raw text, normalized ones out of the normalized segments, each set matched
 * leftmost-longest (HF uses an Aho-Corasick automaton; a byte trie walked from each
 * candidate start is equivalent and enough for a few hundred tokens), with the
 * single_word / lstrip / rstrip rules of find_matches. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static bool jb(const json_value *o, const char *k, bool d) {
    const json_value *v = json_get(o, k);
    return json_is(v, JSON_BOOL) ? v->u.b : d;
}

forge_status added_parse(forge_tokenizer *t, const json_value *arr, forge_error *err) {
    if (!arr || json_is(arr, JSON_NULL)) return FORGE_OK;
    if (!json_is(arr, JSON_ARRAY)) return err_set(err, FORGE_E_FORMAT, "added_tokens: expected an array");
    t->added = calloc(arr->n ? arr->n : 1, sizeof *t->added);
    if (!t->added) return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (size_t i = 0; i < arr->n; i++) {
        const json_value *a = arr->u.items[i];
        const json_value *id = json_get(a, "id"), *c = json_get(a, "content");
        if (!json_is(id, JSON_INT) || id->u.i < 0 || id->u.i > 0x7FFFFFF)
            return err_set(err, FORGE_E_FORMAT, "added_tokens[%zu].id: expected a non-negative integer", i);
        if (!json_is(c, JSON_STRING))
            return err_set(err, FORGE_E_FORMAT, "added_tokens[%zu].content: expected a string", i);
        if (c->n == 0) continue; /* HF ignores empty tokens */
        tok_added *x = &t->added[t->n_added];
        x->content = malloc(c->n + 1);
        if (!x->content) return err_set(err, FORGE_E_NOMEM, "out of memory");
        memcpy(x->content, c->u.s, c->n + 1);
        t->n_added++;
        x->len = c->n;
        x->id = (int32_t)id->u.i;
        x->special = jb(a, "special", false);
        x->lstrip = jb(a, "lstrip", false);
        x->rstrip = jb(a, "rstrip", false);
        x->single_word = jb(a, "single_word", false);
        x->normalized = jb(a, "normalized", !x->special);
    }
    return FORGE_OK;
}

static int32_t trie_node_new(tok_trie *tr, unsigned char byte) {
    if (tr->n == tr->cap) {
        int32_t nc = tr->cap ? tr->cap * 2 : 256;
        trie_node *p = realloc(tr->nodes, (size_t)nc * sizeof *p);
        if (!p) return -1;
        tr->nodes = p;
        tr->cap = nc;
    }
    tr->nodes[tr->n] = (trie_node){-1, -1, -1, byte};
    return tr->n++;
}

static int32_t trie_child(const tok_trie *tr, int32_t node, unsigned char byte) {
    for (int32_t c = tr->nodes[node].child; c >= 0; c = tr->nodes[c].sibling)
        if (tr->nodes[c].byte == byte) return c;
    return -1;
}

static bool trie_add(tok_trie *tr, const char *s, size_t n, int32_t token) {
    if (!tr->n && trie_node_new(tr, 0) < 0) return false;
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        int32_t c = trie_child(tr, node, b);
        if (c < 0) {
            c = trie_node_new(tr, b);
            if (c < 0) return false;
            tr->nodes[c].sibling = tr->nodes[node].child;
            tr->nodes[node].child = c;
        }
        node = c;
    }
    tr->first[(unsigned char)s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
    /* HF builds its map by id, so for a repeated content the last token wins */
    tr->nodes[node].token = token;
    tr->empty = false;
    return true;
}

forge_status added_build(forge_tokenizer *t, forge_error *err) {
    t->trie_raw.empty = t->trie_norm.empty = true;
    if (!strmap_init(&t->added_map, (size_t)t->n_added + 1)) return err_set(err, FORGE_E_NOMEM, "out of memory");
    tok_scratch *sc = scratch_get(t);
    if (!sc) return err_set(err, FORGE_E_NOMEM, "out of memory");
    strbuf nb = STRBUF_INIT;
    forge_status st = FORGE_OK;
    for (int i = 0; i < t->n_added && !st; i++) {
        tok_added *a = &t->added[i];
        if (!strmap_put(&t->added_map, a->content, a->len, i)) st = err_set(err, FORGE_E_NOMEM, "out of memory");
        if (st) break;
        if (a->normalized && t->n_norms) {
            st = norm_apply(t, sc, a->content, a->len, &nb, err);
            if (st) break;
            if (nb.len != a->len || memcmp(nb.data, a->content, a->len)) {
                a->norm = malloc(nb.len + 1);
                if (!a->norm) {
                    st = err_set(err, FORGE_E_NOMEM, "out of memory");
                    break;
                }
                memcpy(a->norm, nb.data ? nb.data : "", nb.len);
                a->norm[nb.len] = 0;
                a->norm_len = nb.len;
            }
        }
        const char *pat = a->norm ? a->norm : a->content;
        size_t pn = a->norm ? a->norm_len : a->len;
        if (pn && !trie_add(a->normalized ? &t->trie_norm : &t->trie_raw, pat, pn, i))
            st = err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    sb_free(&nb);
    scratch_put(t, sc);
    return st;
}

void added_free(forge_tokenizer *t) {
    for (int i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].norm);
    }
    free(t->added);
    strmap_free(&t->added_map);
    free(t->trie_raw.nodes);
    free(t->trie_norm.nodes);
}

/* Rust regex \w$ on s[0..i), ^\w on s[i..n) */
static bool ends_with_word(const char *s, size_t i) {
    if (i == 0) return false;
    size_t j = utf8_prev(s, i);
    return uni_is_word(utf8_next(s, &j));
}
static bool starts_with_word(const char *s, size_t i, size_t n) {
    if (i >= n) return false;
    return uni_is_word(utf8_next(s, &i));
}

int added_next(const forge_tokenizer *t, const tok_trie *tr, const char *s, size_t n, size_t from,
               size_t floor, bool split_special, size_t *ms, size_t *me) {
    if (tr->empty) return -1;
    const trie_node *nodes = tr->nodes;
    size_t i = from;
    while (i < n) {
        unsigned char c0 = (unsigned char)s[i];
        if (!(tr->first[c0 >> 3] & (1u << (c0 & 7)))) {
            i++;
            continue;
        }
        /* longest match starting at i */
        int32_t node = 0, best = -1;
        size_t best_end = 0;
        for (size_t j = i; j < n; j++) {
            node = trie_child(tr, node, (unsigned char)s[j]);
            if (node < 0) break;
            if (nodes[node].token >= 0) {
                best = nodes[node].token;
                best_end = j + 1;
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        const tok_added *a = &t->added[best];
        size_t start = i, stop = best_end;
        /* a skipped match is still consumed, as HF's find_iter does */
        bool skip = split_special && a->special;
        if (!skip && a->single_word) {
            bool start_space = start == 0 || !ends_with_word(s, start);
            bool stop_space = stop == n || !starts_with_word(s, stop, n);
            skip = !start_space || !stop_space;
        }
        if (skip) {
            i = best_end;
            continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t p = utf8_prev(s, ns), q = p;
                if (!uni_is_space(utf8_next(s, &q))) break;
                ns = p;
            }
            start = ns > floor ? ns : floor;
        }
        if (a->rstrip) {
            while (stop < n) {
                size_t q = stop;
                if (!uni_is_space(utf8_next(s, &q))) break;
                stop = q;
            }
        }
        *ms = start;
        *me = stop;
        return best;
    }
    return -1;
}
