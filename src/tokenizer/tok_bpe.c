/* tok_bpe.c: the BPE model: vocab and merges from tokenizer.json, and word encoding by
 * merge rank with a binary heap over a linked list of symbols (HF's Word::merge_all, same
 * tie-breaks: lowest rank, then leftmost), so long words cost O(n log n), never O(n^2).
 *
 * Byte-level models (a ByteLevel pre-tokenizer) see raw bytes here: vocab keys are
 * converted from GPT-2's byte alphabet to bytes once at load, so encoding never builds
 * the "Ġ"-strings. SentencePiece-style models see UTF-8 text with "▁" and fall back to
 * <0xXX> byte tokens for characters outside the vocab. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct bpe_sym {
    int32_t id;
    int32_t prev, next;
    int32_t alive;
} bpe_sym;

typedef struct cache_slot {
    uint64_t hash;
    uint32_t key_off, key_len; /* key_len 0: empty */
    uint32_t ids_off, n_ids;
} cache_slot;

#define CACHE_SLOTS 16384
#define CACHE_MAX_WORD 4096         /* long words repeat too (code, runs of one letter) */
#define CACHE_MAX_KEYS (8u << 20) /* bytes of cached words before the cache starts over */

/* ---------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------- */

/* Converts a byte-level token string to raw bytes (out has room for n bytes); false when a
 * character is outside the byte alphabet. */
static bool bl_to_raw(const char *s, size_t n, char *out, size_t *out_n) {
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (c < '!' || c > '~') return false;
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (utf8_lossy_unit((const unsigned char *)s + i, n - i) <= 0) return false;
        int b = bl_char_byte(utf8_next(s, &i));
        if (b < 0) return false;
        out[o++] = (char)b;
    }
    *out_n = o;
    return true;
}

static char *dup_opt(const json_value *v, size_t *len) {
    if (!json_is(v, JSON_STRING) || v->n == 0) return NULL;
    char *s = malloc(v->n + 1);
    if (s) memcpy(s, v->u.s, v->n + 1);
    *len = v->n;
    return s;
}

/* The model id of a merge part; -2 when it exists but cannot occur (unmappable chars). */
static int32_t part_id(const tok_bpe *b, bool byte_level, const char *s, size_t n, char *tmp) {
    if (!byte_level) return strmap_get(&b->vocab, s, n);
    size_t rn;
    if (bl_to_raw(s, n, tmp, &rn)) return strmap_get(&b->vocab, tmp, rn);
    return strmap_get(&b->extra, s, n) >= 0 ? -2 : -1;
}

/* The two parts of merge r, as "a b" or ["a", "b"]; false when malformed. */
static bool merge_parts(const json_value *m, const char **a, size_t *an, const char **c, size_t *cn) {
    if (json_is(m, JSON_STRING)) {
        const char *sp = memchr(m->u.s, ' ', m->n);
        if (!sp) return false;
        *a = m->u.s;
        *an = (size_t)(sp - *a);
        *c = sp + 1;
        *cn = m->n - *an - 1;
        return true;
    }
    if (json_is(m, JSON_ARRAY) && m->n == 2 && json_is(m->u.items[0], JSON_STRING) &&
        json_is(m->u.items[1], JSON_STRING)) {
        *a = m->u.items[0]->u.s;
        *an = m->u.items[0]->n;
        *c = m->u.items[1]->u.s;
        *cn = m->u.items[1]->n;
        return true;
    }
    return false;
}

/* One merge of a batch: the model keys of its left part, right part and merged token. */
typedef struct merge_item {
    const char *a, *c;
    size_t an, cn;
    const char *key[3];
    size_t klen[3];
    uint64_t hash[3];
    bool slow; /* byte-level parts with characters outside the alphabet: resolved one by one */
} merge_item;

#define MERGE_BATCH 64

/* Merges are resolved in batches: hashing every key of a batch and prefetching its slot
 * (then the slot's key) before probing turns ~3 cache misses per merge, paid one after the
 * other, into overlapping ones. Loading Llama 3's 280k merges is most of its load time. */
static forge_status load_merges(forge_tokenizer *t, const json_value *merges, forge_error *err) {
    tok_bpe *b = &t->bpe;
    b->n_merges = (int32_t)merges->n;
    b->merge_new = malloc((merges->n ? merges->n : 1) * sizeof *b->merge_new);
    if (!b->merge_new || !u64map_init(&b->merges, merges->n))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    merge_item it[MERGE_BATCH];
    int32_t ids[MERGE_BATCH][3];
    size_t buf_cap = 1 << 16;
    char *buf = malloc(buf_cap), *tmp = NULL;
    size_t tmp_cap = 0;
    if (!buf) return err_set(err, FORGE_E_NOMEM, "out of memory");
    const strmap *vm = &b->vocab;
    size_t mask = vm->cap - 1;
    forge_status st = FORGE_OK;
    for (size_t r0 = 0; r0 < merges->n && !st; r0 += MERGE_BATCH) {
        size_t nb = merges->n - r0 < MERGE_BATCH ? merges->n - r0 : MERGE_BATCH;
        /* pass 1: parts, keys (raw bytes for byte-level), hashes, prefetch the slots */
        size_t need = 0;
        for (size_t i = 0; i < nb; i++) {
            merge_item *m = &it[i];
            if (!merge_parts(merges->u.items[r0 + i], &m->a, &m->an, &m->c, &m->cn)) {
                const json_value *v = merges->u.items[r0 + i];
                if (json_is(v, JSON_STRING))
                    st = err_set(err, FORGE_E_FORMAT, "model.merges[%zu]: \"%.60s\" is not \"a b\"", r0 + i, v->u.s);
                else
                    st = err_set(err, FORGE_E_FORMAT, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", r0 + i);
                break;
            }
            need += 2 * (m->an + m->cn);
        }
        if (st) break;
        if (need > buf_cap) {
            free(buf);
            buf_cap = need;
            if (!(buf = malloc(buf_cap))) return err_set(err, FORGE_E_NOMEM, "out of memory");
        }
        size_t o = 0;
        for (size_t i = 0; i < nb; i++) {
            merge_item *m = &it[i];
            m->slow = false;
            const char *c2 = m->c;
            size_t cn2 = m->cn;
            if (b->prefix && cn2 >= b->prefix_len && !memcmp(c2, b->prefix, b->prefix_len)) {
                c2 += b->prefix_len;
                cn2 -= b->prefix_len;
            }
            if (t->byte_level) {
                size_t ra, rc;
                char *pa = buf + o;
                if (!bl_to_raw(m->a, m->an, pa, &ra) || !bl_to_raw(m->c, m->cn, pa + ra, &rc)) {
                    m->slow = true;
                    continue;
                }
                /* raw(a) + raw(c) is the merged token's raw key; the parts are slices of it */
                m->key[0] = pa, m->klen[0] = ra;
                m->key[1] = pa + ra, m->klen[1] = rc;
                m->key[2] = pa, m->klen[2] = ra + rc;
                o += ra + rc;
            } else {
                m->key[0] = m->a, m->klen[0] = m->an;
                m->key[1] = m->c, m->klen[1] = m->cn;
                memcpy(buf + o, m->a, m->an);
                memcpy(buf + o + m->an, c2, cn2);
                m->key[2] = buf + o, m->klen[2] = m->an + cn2;
                o += m->an + cn2;
            }
            for (int k = 0; k < 3; k++) {
                m->hash[k] = hash_bytes(m->key[k], m->klen[k], 0);
                __builtin_prefetch(&vm->slots[m->hash[k] & mask]);
            }
        }
        /* pass 2: prefetch the key bytes of the first slot probed */
        for (size_t i = 0; i < nb; i++)
            for (int k = 0; k < 3 && !it[i].slow; k++) {
                const strmap_slot *sl = &vm->slots[it[i].hash[k] & mask];
                if (sl->key) __builtin_prefetch(sl->key);
            }
        /* pass 3: the ids; prefetch the pair's slot in the merge map */
        for (size_t i = 0; i < nb && !st; i++) {
            merge_item *m = &it[i];
            if (m->slow) {
                size_t need2 = 3 * (m->an + m->cn) + 3;
                if (need2 > tmp_cap) {
                    free(tmp);
                    tmp_cap = need2;
                    if (!(tmp = malloc(tmp_cap))) {
                        st = err_set(err, FORGE_E_NOMEM, "out of memory");
                        break;
                    }
                }
                ids[i][0] = part_id(b, true, m->a, m->an, tmp);
                ids[i][1] = part_id(b, true, m->c, m->cn, tmp);
                memcpy(tmp, m->a, m->an);
                memcpy(tmp + m->an, m->c, m->cn);
                ids[i][2] = part_id(b, true, tmp, m->an + m->cn, tmp + m->an + m->cn);
            } else {
                for (int k = 0; k < 3; k++) ids[i][k] = strmap_get(vm, m->key[k], m->klen[k]);
            }
            if (ids[i][0] == -1 || ids[i][1] == -1) {
                st = err_set(err, FORGE_E_FORMAT, "model.merges[%zu]: \"%.40s\" is not in the vocab", r0 + i,
                             ids[i][0] == -1 ? m->a : m->c);
                break;
            }
            if (ids[i][2] == -1) {
                st = err_set(err, FORGE_E_FORMAT, "model.merges[%zu]: the merged token \"%.40s%.40s\" is not in the vocab",
                             r0 + i, m->a, m->c);
                break;
            }
            b->merge_new[r0 + i] = ids[i][2];
            if (ids[i][0] >= 0 && ids[i][1] >= 0)
                __builtin_prefetch(&b->merges.slots[hash_u64((uint64_t)ids[i][0] << 32 | (uint32_t)ids[i][1]) &
                                                    (b->merges.cap - 1)]);
        }
        /* pass 4: (left, right) -> rank, later duplicates winning as in HF's map */
        for (size_t i = 0; i < nb && !st; i++) {
            if (ids[i][0] < 0 || ids[i][1] < 0) continue; /* parts that never occur in byte-level words */
            if (!u64map_put(&b->merges, (uint64_t)ids[i][0] << 32 | (uint32_t)ids[i][1], (int32_t)(r0 + i)))
                st = err_set(err, FORGE_E_NOMEM, "out of memory");
        }
    }
    free(buf);
    free(tmp);
    return st;
}

forge_status bpe_load(forge_tokenizer *t, const json_value *model, forge_error *err) {
    tok_bpe *b = &t->bpe;
    const char *type = json_string(json_get(model, "type"));
    if (type && strcmp(type, "BPE"))
        return err_set(err, FORGE_E_UNSUPPORTED, "model.type: \"%s\" is not supported (only BPE)", type);
    const json_value *vocab = json_get(model, "vocab"), *merges = json_get(model, "merges");
    if (!json_is(vocab, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "model.vocab: expected an object");
    if (!json_is(merges, JSON_ARRAY)) return err_set(err, FORGE_E_FORMAT, "model.merges: expected an array");
    const json_value *dropout = json_get(model, "dropout");
    if (json_is_number(dropout) && json_number(dropout) != 0.0)
        return err_set(err, FORGE_E_UNSUPPORTED, "model.dropout: BPE dropout is not supported");
    const json_value *v;
    b->byte_fallback = json_is(v = json_get(model, "byte_fallback"), JSON_BOOL) && v->u.b;
    b->fuse_unk = json_is(v = json_get(model, "fuse_unk"), JSON_BOOL) && v->u.b;
    b->ignore_merges = json_is(v = json_get(model, "ignore_merges"), JSON_BOOL) && v->u.b;
    b->prefix = dup_opt(json_get(model, "continuing_subword_prefix"), &b->prefix_len);
    b->suffix = dup_opt(json_get(model, "end_of_word_suffix"), &b->suffix_len);
    if (t->byte_level && (b->prefix || b->suffix))
        return err_set(err, FORGE_E_UNSUPPORTED,
                       "model: continuing_subword_prefix / end_of_word_suffix with ByteLevel");
    b->unk_id = -1;
    for (int i = 0; i < 256; i++) b->byte_id[i] = -1;

    /* vocab: keys copied into one pool (raw bytes for byte-level models) */
    size_t pool = 0;
    for (size_t i = 0; i < vocab->n; i++) pool += vocab->u.members[i].key_len + 1;
    b->keys = malloc(pool ? pool : 1);
    if (!b->keys || !strmap_init(&b->vocab, vocab->n) || !strmap_init(&b->extra, 16))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    /* pass 1: keys into the pool; pass 2: insert, prefetching the slot 16 keys ahead */
    typedef struct { uint32_t off, len; int32_t id; bool extra; uint64_t hash; } vkey;
    vkey *vk = malloc((vocab->n ? vocab->n : 1) * sizeof *vk);
    if (!vk) return err_set(err, FORGE_E_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < vocab->n; i++) {
        const json_member *m = &vocab->u.members[i];
        if (!json_is(m->value, JSON_INT) || m->value->u.i < 0 || m->value->u.i >= t->n_ids) {
            free(vk);
            return err_set(err, FORGE_E_FORMAT, "model.vocab[\"%.60s\"]: expected an id in [0, %d)",
                           m->key, t->n_ids);
        }
        char *k = b->keys + o;
        size_t kn = m->key_len;
        bool extra = false;
        if (t->byte_level && !bl_to_raw(m->key, m->key_len, k, &kn)) {
            memcpy(k, m->key, m->key_len);
            kn = m->key_len;
            extra = true;
        } else if (!t->byte_level) {
            memcpy(k, m->key, kn);
        }
        vk[i] = (vkey){(uint32_t)o, (uint32_t)kn, (int32_t)m->value->u.i, extra, hash_bytes(k, kn, 0)};
        o += kn + 1;
    }
    for (size_t i = 0; i < vocab->n; i++) {
        if (i + 16 < vocab->n) __builtin_prefetch(&b->vocab.slots[vk[i + 16].hash & (b->vocab.cap - 1)], 1);
        const char *k = b->keys + vk[i].off;
        bool ok = strmap_put(vk[i].extra ? &b->extra : &b->vocab, k, vk[i].len, vk[i].id);
        if (!vk[i].extra && t->byte_level && vk[i].len == 1) b->byte_id[(unsigned char)k[0]] = vk[i].id;
        if (!ok) {
            free(vk);
            return err_set(err, FORGE_E_NOMEM, "out of memory");
        }
    }
    free(vk);
    if (!t->byte_level) {
        for (int i = 0; i < 256; i++) {
            char code[8];
            snprintf(code, sizeof code, "<0x%02X>", i);
            b->byte_id[i] = strmap_get(&b->vocab, code, 6);
        }
    }
    const char *unk = json_string(json_get(model, "unk_token"));
    if (unk) {
        b->unk_id = bpe_token_to_id(t, unk, strlen(unk));
        if (b->unk_id < 0) b->unk_id = -2; /* HF errors when an unknown char meets it */
    }

    return load_merges(t, merges, err);
}

void bpe_free(tok_bpe *b) {
    strmap_free(&b->vocab);
    strmap_free(&b->extra);
    u64map_free(&b->merges);
    free(b->keys);
    free(b->merge_new);
    free(b->prefix);
    free(b->suffix);
}

int32_t bpe_token_to_id(const forge_tokenizer *t, const char *s, size_t n) {
    const tok_bpe *b = &t->bpe;
    if (!t->byte_level) return strmap_get(&b->vocab, s, n);
    char buf[256];
    char *raw = n <= sizeof buf ? buf : malloc(n);
    if (!raw) return -1;
    size_t rn;
    int32_t id = bl_to_raw(s, n, raw, &rn) ? strmap_get(&b->vocab, raw, rn) : strmap_get(&b->extra, s, n);
    if (raw != buf) free(raw);
    return id;
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

static bool ids_push(forge_tokens *out, int32_t id) {
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

static bool sym_push(tok_scratch *sc, size_t *n, int32_t id) {
    if (*n == sc->syms_cap) {
        size_t nc = sc->syms_cap ? sc->syms_cap * 2 : 256;
        bpe_sym *p = realloc(sc->syms, nc * sizeof *p);
        if (!p) return false;
        sc->syms = p;
        sc->syms_cap = nc;
    }
    sc->syms[*n] = (bpe_sym){id, (int32_t)*n - 1, (int32_t)*n + 1, 1};
    (*n)++;
    return true;
}

/* min-heap of (rank << 32 | position) */
static void heap_up(uint64_t *h, size_t i) {
    uint64_t x = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= x) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static void heap_down(uint64_t *h, size_t n, size_t i) {
    uint64_t x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int32_t merge_rank(const tok_bpe *b, int32_t l, int32_t r) {
    return u64map_get(&b->merges, (uint64_t)l << 32 | (uint32_t)r);
}

/* HF Word::merge_all over sc->syms[0..n). Returns false on allocation failure. */
static bool merge_all(const tok_bpe *b, tok_scratch *sc, size_t n) {
    if (n < 2) return true;
    if (sc->heap_cap < 2 * n) {
        free(sc->heap);
        sc->heap_cap = 2 * n;
        sc->heap = malloc(sc->heap_cap * sizeof *sc->heap);
        if (!sc->heap) {
            sc->heap_cap = 0;
            return false;
        }
    }
    bpe_sym *s = sc->syms;
    uint64_t *h = sc->heap;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t r = merge_rank(b, s[i].id, s[i + 1].id);
        if (r >= 0) h[hn++] = (uint64_t)r << 32 | i;
    }
    for (size_t i = hn / 2; i-- > 0;) heap_down(h, hn, i);
    while (hn) {
        uint64_t top = h[0];
        h[0] = h[--hn];
        if (hn) heap_down(h, hn, 0);
        int32_t rank = (int32_t)(top >> 32);
        size_t pos = (uint32_t)top;
        if (!s[pos].alive || s[pos].next >= (int32_t)n) continue;
        size_t nx = (size_t)s[pos].next;
        int32_t cur = merge_rank(b, s[pos].id, s[nx].id);
        if (cur < 0 || b->merge_new[cur] != b->merge_new[rank]) continue; /* stale entry */
        s[pos].id = b->merge_new[rank];
        s[nx].alive = 0;
        s[pos].next = s[nx].next;
        if (s[nx].next < (int32_t)n) s[s[nx].next].prev = (int32_t)pos;
        /* room: each merge pushes at most two entries and pops one */
        if (hn + 2 > sc->heap_cap) {
            size_t nc = sc->heap_cap * 2;
            uint64_t *p = realloc(sc->heap, nc * sizeof *p);
            if (!p) return false;
            sc->heap = h = p;
            sc->heap_cap = nc;
        }
        if (s[pos].prev >= 0) {
            size_t pv = (size_t)s[pos].prev;
            int32_t r = merge_rank(b, s[pv].id, s[pos].id);
            if (r >= 0) {
                h[hn] = (uint64_t)r << 32 | pv;
                heap_up(h, hn++);
            }
        }
        if (s[pos].next < (int32_t)n) {
            int32_t r = merge_rank(b, s[pos].id, s[s[pos].next].id);
            if (r >= 0) {
                h[hn] = (uint64_t)r << 32 | pos;
                heap_up(h, hn++);
            }
        }
    }
    return true;
}

/* Initial symbols of a SentencePiece-style word: one per character, byte fallback, unk. */
static forge_status sp_symbols(const forge_tokenizer *t, tok_scratch *sc, const char *w, size_t n,
                               size_t *ns, forge_error *err) {
    const tok_bpe *b = &t->bpe;
    size_t i = 0, k = 0;
    int32_t unk = -1; /* pending unk symbol (fuse_unk grows it) */
    char buf[64];
    while (i < n) {
        size_t c0 = i;
        utf8_next(w, &i);
        const char *s = w + c0;
        size_t sn = i - c0;
        if ((b->prefix && c0 > 0) || (b->suffix && i == n)) {
            size_t o = 0;
            if (b->prefix && c0 > 0 && b->prefix_len < 32) memcpy(buf, b->prefix, o = b->prefix_len);
            memcpy(buf + o, s, sn);
            o += sn;
            if (b->suffix && i == n && b->suffix_len < 24) memcpy(buf + o, b->suffix, b->suffix_len), o += b->suffix_len;
            s = buf;
            sn = o;
        }
        int32_t id = strmap_get(&b->vocab, s, sn);
        if (id >= 0) {
            if (unk >= 0 && !sym_push(sc, &k, unk)) goto oom;
            unk = -1;
            if (!sym_push(sc, &k, id)) goto oom;
            continue;
        }
        if (b->byte_fallback) {
            bool all = true;
            for (size_t j = 0; j < sn; j++) all = all && b->byte_id[(unsigned char)s[j]] >= 0;
            if (all) { /* as HF: a pending unk is not flushed before these */
                for (size_t j = 0; j < sn; j++)
                    if (!sym_push(sc, &k, b->byte_id[(unsigned char)s[j]])) goto oom;
                continue;
            }
        }
        if (b->unk_id == -1) continue; /* no unk_token: HF drops the character */
        if (b->unk_id == -2)
            return err_set(err, FORGE_E_FORMAT, "model.unk_token: not in the vocab");
        if (unk >= 0 && !b->fuse_unk && !sym_push(sc, &k, unk)) goto oom;
        unk = b->unk_id;
    }
    if (unk >= 0 && !sym_push(sc, &k, unk)) goto oom;
    *ns = k;
    return FORGE_OK;
oom:
    return err_set(err, FORGE_E_NOMEM, "out of memory");
}

static uint64_t word_hash(const char *s, size_t n) { return hash_bytes(s, n, 0x7A11); }

static void cache_clear(tok_scratch *sc) {
    memset(sc->cache, 0, sc->cache_cap * sizeof *sc->cache);
    sc->cache_count = 0;
    sb_reset(&sc->cache_keys);
    sc->cache_ids_len = 0;
}

forge_status bpe_encode(const forge_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                        forge_tokens *out, forge_error *err) {
    const tok_bpe *b = &t->bpe;
    if (n == 0) return FORGE_OK;
    if (b->ignore_merges) {
        int32_t id = strmap_get(&b->vocab, s, n);
        if (id >= 0) return ids_push(out, id) ? FORGE_OK : err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    /* the word cache */
    uint64_t h = 0;
    cache_slot *slot = NULL;
    if (n <= CACHE_MAX_WORD) {
        if (!sc->cache) {
            sc->cache = calloc(CACHE_SLOTS, sizeof *sc->cache);
            if (!sc->cache) return err_set(err, FORGE_E_NOMEM, "out of memory");
            sc->cache_cap = CACHE_SLOTS;
        }
        h = word_hash(s, n);
        size_t j = h & (sc->cache_cap - 1);
        for (;;) {
            cache_slot *c = &sc->cache[j];
            if (!c->key_len) {
                slot = c;
                break;
            }
            if (c->hash == h && c->key_len == n && !memcmp(sc->cache_keys.data + c->key_off, s, n)) {
                for (uint32_t i = 0; i < c->n_ids; i++)
                    if (!ids_push(out, sc->cache_ids[c->ids_off + i])) return err_set(err, FORGE_E_NOMEM, "out of memory");
                return FORGE_OK;
            }
            j = (j + 1) & (sc->cache_cap - 1);
        }
    }
    size_t ns = 0;
    if (t->byte_level) {
        int32_t unk = -1;
        for (size_t i = 0; i < n; i++) {
            int32_t id = b->byte_id[(unsigned char)s[i]];
            if (id >= 0) {
                if (unk >= 0 && !sym_push(sc, &ns, unk)) goto oom;
                unk = -1;
                if (!sym_push(sc, &ns, id)) goto oom;
            } else if (b->unk_id == -2) {
                return err_set(err, FORGE_E_FORMAT, "model.unk_token: not in the vocab");
            } else if (b->unk_id >= 0) {
                if (unk >= 0 && !b->fuse_unk && !sym_push(sc, &ns, unk)) goto oom;
                unk = b->unk_id;
            }
        }
        if (unk >= 0 && !sym_push(sc, &ns, unk)) goto oom;
    } else {
        forge_status st = sp_symbols(t, sc, s, n, &ns, err);
        if (st) return st;
    }
    if (!merge_all(b, sc, ns)) goto oom;
    size_t first = out->n;
    for (int32_t i = 0; ns && i < (int32_t)ns; i = sc->syms[i].next)
        if (!ids_push(out, sc->syms[i].id)) goto oom;
    if (slot) {
        if (sc->cache_count * 2 >= sc->cache_cap || sc->cache_keys.len + n > CACHE_MAX_KEYS) {
            cache_clear(sc);
            return FORGE_OK; /* the slot is gone; the next call fills the cache again */
        }
        size_t k = out->n - first;
        if (sc->cache_ids_len + k > sc->cache_ids_cap) {
            size_t nc = sc->cache_ids_cap ? sc->cache_ids_cap * 2 : 4096;
            while (nc < sc->cache_ids_len + k) nc *= 2;
            int32_t *p = realloc(sc->cache_ids, nc * sizeof *p);
            if (!p) return FORGE_OK; /* caching is optional */
            sc->cache_ids = p;
            sc->cache_ids_cap = nc;
        }
        size_t koff = sc->cache_keys.len;
        sb_append(&sc->cache_keys, s, n);
        if (sb_failed(&sc->cache_keys)) {
            sb_free(&sc->cache_keys);
            cache_clear(sc);
            return FORGE_OK;
        }
        if (k) memcpy(sc->cache_ids + sc->cache_ids_len, out->ids + first, k * sizeof(int32_t));
        *slot = (cache_slot){h, (uint32_t)koff, (uint32_t)n, (uint32_t)sc->cache_ids_len, (uint32_t)k};
        sc->cache_ids_len += k;
        sc->cache_count++;
    }
    return FORGE_OK;
oom:
    return err_set(err, FORGE_E_NOMEM, "out of memory");
}

void bpe_scratch_free(tok_scratch *sc) {
    free(sc->syms);
    free(sc->heap);
    free(sc->cache);
    sb_free(&sc->cache_keys);
    free(sc->cache_ids);
}
