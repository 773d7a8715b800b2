/* matcher.c: the token trie, the stack-set automaton over bytes, the per-context-key cache
 * of token bitmaps and the per-sequence matcher (contracts in matcher.h).
 *
 * A state is a run of stacks in a uint32 buffer, each stored as [len, e0 .. e(len-1)] with
 * the top last. Stepping a state by a byte writes the next state after it in the
 * workspace's arena; the trie walk keeps one state per depth there, so going back up the
 * trie only moves the arena's top. Nothing is allocated per step once the buffers have
 * grown (the arena and the dedup table have fixed sizes; sequence buffers grow rarely). */
#include "grammar/matcher.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/hashmap.h"

/* ---- vocabulary ----------------------------------------------------------------------- */

struct gvocab {
    int n_vocab, n_tok;
    uint32_t *off; /* n_vocab + 1: bytes of id i are data[off[i] .. off[i+1]) */
    uint8_t *data;
    int32_t *sorted; /* ids with bytes, sorted by their bytes */
    /* trie in preorder: node i stands for a prefix of length depth[i] ending in byte[i];
     * its tokens are sorted[lo[i] .. hi[i]), those equal to the prefix first (up to end[i]);
     * its subtree ends before node skip[i] */
    int n_nodes, max_depth;
    uint8_t *nbyte;
    int32_t *ndepth, *nskip, *nlo, *nend, *nhi;
};

static const gvocab *sort_v;
static int cmp_tok(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const gvocab *v = sort_v;
    uint32_t lx = v->off[x + 1] - v->off[x], ly = v->off[y + 1] - v->off[y];
    int c = memcmp(v->data + v->off[x], v->data + v->off[y], lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : 1;
}

static int node_add(gvocab *v, int *cap) {
    if (v->n_nodes == *cap) {
        int c = *cap ? *cap * 2 : 1024;
        uint8_t *b = realloc(v->nbyte, (size_t)c);
        if (b) v->nbyte = b;
        int32_t **arr[] = {&v->ndepth, &v->nskip, &v->nlo, &v->nend, &v->nhi};
        bool ok = b != NULL;
        for (int k = 0; k < 5 && ok; k++) {
            int32_t *p = realloc(*arr[k], sizeof(int32_t) * (size_t)c);
            if (!p) ok = false;
            else *arr[k] = p;
        }
        if (!ok) return -1;
        *cap = c;
    }
    return v->n_nodes++;
}

/* Builds the trie of sorted[lo..hi) (all sharing a prefix of length d) below depth d. */
static bool trie_build(gvocab *v, int lo, int hi, int d, int *cap) {
    /* tokens of length d come first; then groups by byte d */
    int i = lo;
    while (i < hi) {
        int32_t id = v->sorted[i];
        uint32_t len = v->off[id + 1] - v->off[id];
        if ((int)len <= d) {
            i++;
            continue;
        }
        uint8_t b = v->data[v->off[id] + (uint32_t)d];
        int j = i + 1;
        while (j < hi) {
            int32_t y = v->sorted[j];
            if (v->off[y + 1] - v->off[y] <= (uint32_t)d || v->data[v->off[y] + (uint32_t)d] != b) break;
            j++;
        }
        int n = node_add(v, cap);
        if (n < 0) return false;
        v->nbyte[n] = b;
        v->ndepth[n] = d + 1;
        v->nlo[n] = i;
        v->nhi[n] = j;
        int e = i;
        while (e < j && v->off[v->sorted[e] + 1] - v->off[v->sorted[e]] == (uint32_t)(d + 1)) e++;
        v->nend[n] = e;
        if (d + 1 > v->max_depth) v->max_depth = d + 1;
        if (!trie_build(v, e, j, d + 1, cap)) return false;
        v->nskip[n] = v->n_nodes;
        i = j;
    }
    return true;
}

static gvocab *vocab_finish(gvocab *v, forge_error *err) {
    v->sorted = malloc(sizeof(int32_t) * (size_t)(v->n_vocab + 1));
    if (!v->sorted) goto nomem;
    for (int i = 0; i < v->n_vocab; i++)
        if (v->off[i + 1] > v->off[i]) v->sorted[v->n_tok++] = i;
    sort_v = v; /* qsort has no context argument in C11; built under a lock below */
    qsort(v->sorted, (size_t)v->n_tok, sizeof(int32_t), cmp_tok);
    int cap = 0;
    if (!trie_build(v, 0, v->n_tok, 0, &cap)) goto nomem;
    return v;
nomem:
    gvocab_free(v);
    err_set(err, FORGE_E_NOMEM, "out of memory");
    return NULL;
}

#include <pthread.h>
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

gvocab *gvocab_create_bytes(int n_vocab, const char *const *bytes, const int *lens, forge_error *err) {
    if (n_vocab <= 0 || !lens) {
        err_set(err, FORGE_E_INVALID, "vocabulary size %d", n_vocab);
        return NULL;
    }
    gvocab *v = calloc(1, sizeof *v);
    if (!v) goto nomem;
    v->n_vocab = n_vocab;
    v->off = malloc(sizeof(uint32_t) * (size_t)(n_vocab + 1));
    size_t total = 0;
    for (int i = 0; i < n_vocab; i++) total += lens[i] > 0 ? (size_t)lens[i] : 0;
    v->data = malloc(total + 1);
    if (!v->off || !v->data) goto nomem;
    size_t at = 0;
    for (int i = 0; i < n_vocab; i++) {
        v->off[i] = (uint32_t)at;
        if (lens[i] > 0) {
            memcpy(v->data + at, bytes[i], (size_t)lens[i]);
            at += (size_t)lens[i];
        }
    }
    v->off[n_vocab] = (uint32_t)at;
    pthread_mutex_lock(&sort_lock);
    gvocab *r = vocab_finish(v, err);
    pthread_mutex_unlock(&sort_lock);
    return r;
nomem:
    gvocab_free(v);
    err_set(err, FORGE_E_NOMEM, "out of memory");
    return NULL;
}

gvocab *gvocab_create(const forge_tokenizer *tok, int n_vocab, forge_error *err) {
    const forge_tokenizer_info *ti = forge_tokenizer_get_info(tok);
    if (!ti) {
        err_set(err, FORGE_E_INVALID, "gvocab_create: no tokenizer");
        return NULL;
    }
    if (n_vocab <= 0) {
        err_set(err, FORGE_E_INVALID, "vocabulary size %d", n_vocab);
        return NULL;
    }
    char **bytes = calloc((size_t)n_vocab, sizeof(char *));
    int *lens = malloc(sizeof(int) * (size_t)n_vocab);
    gvocab *v = NULL;
    if (!bytes || !lens) goto nomem;
    char buf[1024];
    for (int i = 0; i < n_vocab; i++) {
        lens[i] = -1;
        if (i >= ti->vocab_size || forge_tokenizer_is_special(tok, i)) continue;
        int n = forge_tokenizer_token_bytes(tok, i, buf, sizeof buf);
        if (n <= 0 || n > (int)sizeof buf) continue;
        bytes[i] = malloc((size_t)n);
        if (!bytes[i]) goto nomem;
        memcpy(bytes[i], buf, (size_t)n);
        lens[i] = n;
    }
    v = gvocab_create_bytes(n_vocab, (const char *const *)bytes, lens, err);
    goto out;
nomem:
    err_set(err, FORGE_E_NOMEM, "out of memory");
out:
    if (bytes)
        for (int i = 0; i < n_vocab; i++) free(bytes[i]);
    free(bytes);
    free(lens);
    return v;
}

void gvocab_free(gvocab *v) {
    if (!v) return;
    free(v->off), free(v->data), free(v->sorted);
    free(v->nbyte), free(v->ndepth), free(v->nskip), free(v->nlo), free(v->nend), free(v->nhi);
    free(v);
}

int gvocab_size(const gvocab *v) { return v ? v->n_vocab : 0; }

const uint8_t *gvocab_bytes(const gvocab *v, int32_t id, int *len) {
    if (!v || id < 0 || id >= v->n_vocab || v->off[id + 1] == v->off[id]) {
        *len = 0;
        return NULL;
    }
    *len = (int)(v->off[id + 1] - v->off[id]);
    return v->data + v->off[id];
}

/* ---- workspace and stepping ----------------------------------------------------------- */

enum { WS_ARENA = 1 << 21, WS_HT = 4096, MEMO_STATES = 2048, MEMO_HT = 8192, MEMO_WORDS = 1 << 18 };
enum { T_UNKNOWN = -2, T_DEAD = -1 };

/* The trie walk's memo (one walk at a time): the distinct states met, interned, and their
 * transitions by byte, so that a state met again (a string's loop comes back to the same
 * stacks after each character) costs a table lookup instead of a step. */
typedef struct gmemo {
    int n;
    uint32_t off[MEMO_STATES], len[MEMO_STATES];
    int32_t nst[MEMO_STATES]; /* stacks */
    bool can_end[MEMO_STATES];
    uint64_t hash[MEMO_STATES];
    int32_t ht[MEMO_HT];
    int32_t *trans; /* MEMO_STATES x 256 */
    uint32_t *words;
    size_t used;
} gmemo;

struct gws {
    uint32_t *a; /* arena */
    size_t top, cap;
    int32_t ht[WS_HT]; /* dedup table: arena offsets of the stacks of the state being built */
    uint32_t ht_gen[WS_HT], gen;
    uint32_t stk[GM_MAX_DEPTH + 2]; /* the stack being expanded */
    bool overflow;
    const char *why;
    gmemo memo;
};

gws *gws_create(forge_error *err) {
    gws *w = calloc(1, sizeof *w);
    if (w) {
        w->a = malloc(sizeof(uint32_t) * WS_ARENA);
        w->memo.trans = malloc(sizeof(int32_t) * MEMO_STATES * 256);
        w->memo.words = malloc(sizeof(uint32_t) * MEMO_WORDS);
    }
    if (!w || !w->a || !w->memo.trans || !w->memo.words) {
        if (w) free(w->a), free(w->memo.trans), free(w->memo.words);
        free(w);
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    w->cap = WS_ARENA;
    return w;
}

void gws_free(gws *w) {
    if (!w) return;
    free(w->a);
    free(w->memo.trans);
    free(w->memo.words);
    free(w);
}

/* A state under construction: stacks appended at the arena's top. */
typedef struct sbuild {
    size_t start;
    int n;
} sbuild;

static void sb_begin(gws *w, sbuild *b) {
    b->start = w->top;
    b->n = 0;
    w->gen++;
    if (w->gen == 0) { /* wrapped: clear the stamps */
        memset(w->ht_gen, 0, sizeof w->ht_gen);
        w->gen = 1;
    }
}

static void emit(gws *w, sbuild *b, const uint32_t *stk, int len) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)len;
    for (int i = 0; i < len; i++) h = (h ^ stk[i]) * 1099511628211ull;
    size_t j = (size_t)(h ^ (h >> 29)) & (WS_HT - 1);
    for (int probe = 0; probe < WS_HT; probe++, j = (j + 1) & (WS_HT - 1)) {
        if (w->ht_gen[j] != w->gen) break;
        const uint32_t *o = w->a + w->ht[j];
        if (o[0] == (uint32_t)len && !memcmp(o + 1, stk, sizeof(uint32_t) * (size_t)len)) return;
    }
    if (b->n >= GM_MAX_STACKS || b->n >= WS_HT / 2 || w->top + (size_t)len + 1 > w->cap) {
        w->overflow = true;
        w->why = "the grammar is too ambiguous here (too many parse stacks)";
        return;
    }
    w->ht_gen[j] = w->gen;
    w->ht[j] = (int32_t)w->top;
    w->a[w->top] = (uint32_t)len;
    memcpy(w->a + w->top + 1, stk, sizeof(uint32_t) * (size_t)len);
    w->top += (size_t)len + 1;
    b->n++;
}

/* Matches byte b at the top of w->stk[0..len), expanding references along the alternatives
 * that can start with b (or match ""); emits the stacks that consumed it. w->stk is left as
 * it was found. */
static void step_stack(const grammar *g, gws *w, sbuild *b, int len, unsigned byte, int depth) {
    uint32_t *stk = w->stk;
    int t = len - 1;
    uint32_t top = stk[t];
    gelem x = g->elems[top];
    if (x.kind == G_SET) {
        if (!gset_has(&g->sets[x.arg], byte)) return;
        if (g->elems[top + 1].kind == G_END) emit(w, b, stk, t);
        else {
            stk[t] = top + 1;
            emit(w, b, stk, len);
            stk[t] = top;
        }
        return;
    }
    if (depth > 4 * GM_MAX_DEPTH) {
        w->overflow = true;
        w->why = "the grammar expands too deeply";
        return;
    }
    /* G_REF */
    uint32_t save_next = stk[t + 1];
    bool cont = g->elems[top + 1].kind != G_END;
    for (int a = g->rule_alt0[x.arg]; a < g->rule_alt0[x.arg + 1]; a++) {
        int32_t s = g->alt_pos[a];
        if (!gset_has(&g->first_from[s], byte) && !g->null_from[s]) continue;
        int L = t;
        if (cont) stk[L++] = top + 1;
        if (g->elems[s].kind != G_END) {
            if (L >= GM_MAX_DEPTH) {
                w->overflow = true;
                w->why = "the text nests deeper than the matcher's stack allows";
                continue;
            }
            stk[L++] = (uint32_t)s;
        }
        if (L > 0) step_stack(g, w, b, L, byte, depth + 1);
        stk[t] = top;
        stk[t + 1] = save_next;
    }
}

/* Steps the state at [from, from_end) of the arena by byte, building the next state at the
 * arena's top. Returns the number of stacks. */
static int step_state(const grammar *g, gws *w, size_t from, size_t from_end, unsigned byte, sbuild *b) {
    sb_begin(w, b);
    for (size_t o = from; o < from_end;) {
        int len = (int)w->a[o];
        if (len > 0) {
            memcpy(w->stk, w->a + o + 1, sizeof(uint32_t) * (size_t)len);
            step_stack(g, w, b, len, byte, 0);
        }
        o += (size_t)len + 1;
    }
    return b->n;
}

static bool stack_can_end(const grammar *g, const uint32_t *s, int len) {
    for (int i = 0; i < len; i++)
        if (!g->null_from[s[i]]) return false;
    return true;
}

static bool state_can_end(const grammar *g, const uint32_t *st, size_t n) {
    for (size_t o = 0; o < n;) {
        int len = (int)st[o];
        if (stack_can_end(g, st + o + 1, len)) return true;
        o += (size_t)len + 1;
    }
    return false;
}

/* ---- the constraint and its cache ----------------------------------------------------- */

typedef struct ckey {
    uint32_t n; /* entries (<= GM_CTX); high bit: the key is the whole stack */
    uint32_t e[GM_CTX];
} ckey;

typedef struct centry {
    ckey key;
    uint32_t *acc;  /* accepted whatever lies below: a bitmap, or NULL when acc_ids holds them */
    int32_t *acc_ids; /* ... the same as a list of ids when that is smaller */
    int n_acc;
    int32_t *unc;   /* uncertain ids */
    int n_unc;
} centry;

struct gconstraint {
    grammar *g;
    const gvocab *v;
    int words;
    centry *ents;
    int n_ents, cap_ents;
    int32_t *tab; /* open addressing over ents, -1 empty */
    int tab_cap;
    int32_t *mark; /* scratch: uncertain marks per sorted index (difference array) */
    size_t *dstart; /* scratch: arena start of each depth's state */
    size_t *dend;
    int32_t *sid; /* scratch: the memo id of each depth's state */
};

gconstraint *gconstraint_create(grammar *g, const gvocab *v, forge_error *err) {
    gconstraint *c = calloc(1, sizeof *c);
    if (!c) {
        grammar_free(g);
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    c->g = g;
    c->v = v;
    c->words = (v->n_vocab + 31) / 32;
    c->tab_cap = 64;
    c->tab = malloc(sizeof(int32_t) * (size_t)c->tab_cap);
    c->mark = calloc((size_t)v->n_tok + 1, sizeof(int32_t));
    c->dstart = malloc(sizeof(size_t) * (size_t)(v->max_depth + 2));
    c->dend = malloc(sizeof(size_t) * (size_t)(v->max_depth + 2));
    c->sid = malloc(sizeof(int32_t) * (size_t)(v->max_depth + 2));
    if (!c->tab || !c->mark || !c->dstart || !c->dend || !c->sid) {
        gconstraint_free(c);
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < c->tab_cap; i++) c->tab[i] = -1;
    return c;
}

void gconstraint_free(gconstraint *c) {
    if (!c) return;
    for (int i = 0; i < c->n_ents; i++) free(c->ents[i].acc), free(c->ents[i].acc_ids), free(c->ents[i].unc);
    free(c->ents);
    free(c->tab);
    free(c->mark);
    free(c->dstart);
    free(c->dend);
    free(c->sid);
    grammar_free(c->g);
    free(c);
}

const grammar *gconstraint_grammar(const gconstraint *c) { return c->g; }
int gconstraint_n_keys(const gconstraint *c) { return c ? c->n_ents : 0; }

size_t gconstraint_cache_bytes(const gconstraint *c) {
    size_t n = 0;
    for (int i = 0; c && i < c->n_ents; i++)
        n += (c->ents[i].acc ? sizeof(uint32_t) * (size_t)c->words : 0) +
             sizeof(int32_t) * ((size_t)c->ents[i].n_acc + (size_t)c->ents[i].n_unc) + sizeof(centry);
    return n;
}

static uint64_t key_hash(const ckey *k) {
    uint64_t h = hash_u64(k->n);
    for (uint32_t i = 0; i < (k->n & 0xFF); i++) h = hash_u64(h ^ k->e[i]);
    return h;
}

static bool key_eq(const ckey *a, const ckey *b) {
    return a->n == b->n && !memcmp(a->e, b->e, sizeof(uint32_t) * (a->n & 0xFF));
}

static ckey make_key(const uint32_t *s, int len) {
    ckey k = {0};
    int n = len < GM_CTX ? len : GM_CTX;
    memcpy(k.e, s + len - n, sizeof(uint32_t) * (size_t)n);
    k.n = (uint32_t)n | (len <= GM_CTX ? 0x80000000u : 0);
    return k;
}

static uint64_t state_hash(const uint32_t *s, size_t n) {
    uint64_t h = 1469598103934665603ull ^ n;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 31);
}

/* The id of state s[0..n) in the memo, interning it; -1 when the memo is full. */
static int memo_intern(const grammar *g, gmemo *m, const uint32_t *s, size_t n, int n_stacks) {
    uint64_t h = state_hash(s, n);
    size_t j = (size_t)h & (MEMO_HT - 1);
    for (; m->ht[j] >= 0; j = (j + 1) & (MEMO_HT - 1)) {
        int id = m->ht[j];
        if (m->hash[id] == h && m->len[id] == n && !memcmp(m->words + m->off[id], s, sizeof(uint32_t) * n)) return id;
    }
    if (m->n >= MEMO_STATES || m->used + n > MEMO_WORDS || 2 * (m->n + 1) > MEMO_HT) return -1;
    int id = m->n++;
    m->off[id] = (uint32_t)m->used;
    m->len[id] = (uint32_t)n;
    memcpy(m->words + m->used, s, sizeof(uint32_t) * n);
    m->used += n;
    m->nst[id] = n_stacks;
    m->can_end[id] = state_can_end(g, s, n);
    m->hash[id] = h;
    for (int b = 0; b < 256; b++) m->trans[(size_t)id * 256 + (size_t)b] = T_UNKNOWN;
    m->ht[j] = id;
    return id;
}

/* Walks the trie from the partial stack of key k (see matcher.h). */
static forge_status compute_entry(gconstraint *c, gws *w, const ckey *k, centry *out, forge_error *err) {
    const gvocab *v = c->v;
    const grammar *g = c->g;
    bool whole = (k->n & 0x80000000u) != 0;
    int kn = (int)(k->n & 0xFF);
    out->acc = calloc((size_t)c->words, sizeof(uint32_t));
    if (!out->acc) return err_set(err, FORGE_E_NOMEM, "out of memory");
    memset(c->mark, 0, sizeof(int32_t) * ((size_t)v->n_tok + 1));
    size_t base = w->top;
    w->a[w->top] = (uint32_t)kn;
    memcpy(w->a + w->top + 1, k->e, sizeof(uint32_t) * (size_t)kn);
    w->top += (size_t)kn + 1;
    c->dstart[0] = base;
    c->dend[0] = w->top;
    w->overflow = false;
    if (!whole && kn > 0 && stack_can_end(g, k->e, kn)) {
        c->mark[0]++;
        c->mark[v->n_tok]--;
    }
    gmemo *mm = &w->memo;
    mm->n = 0;
    mm->used = 0;
    memset(mm->ht, -1, sizeof mm->ht);
    int32_t *sid = c->sid;
    sid[0] = memo_intern(g, mm, w->a + base, (size_t)kn + 1, 1);
    for (int i = 0; i < v->n_nodes;) {
        int d = v->ndepth[i];
        unsigned byte = v->nbyte[i];
        w->top = c->dend[d - 1];
        int p = sid[d - 1], n;
        bool can_end;
        int32_t t = p >= 0 ? mm->trans[(size_t)p * 256 + byte] : T_UNKNOWN;
        if (t == T_DEAD) {
            i = v->nskip[i];
            continue;
        }
        if (t >= 0 && w->top + mm->len[t] > w->cap) t = T_UNKNOWN; /* no room: step (and overflow) instead */
        if (t >= 0) { /* met before: copy the interned state */
            memcpy(w->a + w->top, mm->words + mm->off[t], sizeof(uint32_t) * mm->len[t]);
            c->dstart[d] = w->top;
            w->top += mm->len[t];
            c->dend[d] = w->top;
            sid[d] = t;
            n = mm->nst[t];
            can_end = mm->can_end[t];
        } else {
            sbuild b;
            n = step_state(g, w, c->dstart[d - 1], c->dend[d - 1], byte, &b);
            c->dstart[d] = b.start;
            c->dend[d] = w->top;
            if (w->overflow) {
                /* too many stacks from a partial stack: leave its tokens to the exact check */
                w->overflow = false;
                c->mark[v->nlo[i]]++;
                c->mark[v->nhi[i]]--;
                i = v->nskip[i];
                continue;
            }
            if (n == 0) {
                if (p >= 0) mm->trans[(size_t)p * 256 + byte] = T_DEAD;
                i = v->nskip[i];
                continue;
            }
            sid[d] = memo_intern(g, mm, w->a + b.start, w->top - b.start, n);
            if (p >= 0 && sid[d] >= 0) mm->trans[(size_t)p * 256 + byte] = sid[d];
            can_end = sid[d] >= 0 ? mm->can_end[sid[d]] : state_can_end(g, w->a + b.start, w->top - b.start);
        }
        for (int t2 = v->nlo[i]; t2 < v->nend[i]; t2++) {
            int32_t id = v->sorted[t2];
            out->acc[id >> 5] |= 1u << (id & 31);
        }
        if (!whole && v->nend[i] < v->nhi[i] && can_end) {
            c->mark[v->nend[i]]++;
            c->mark[v->nhi[i]]--;
        }
        i++;
    }
    w->top = base;
    int cnt = 0, run = 0;
    for (int t = 0; t < v->n_tok; t++) {
        run += c->mark[t];
        int32_t id = v->sorted[t];
        if (run > 0 && !((out->acc[id >> 5] >> (id & 31)) & 1)) cnt++;
    }
    out->unc = malloc(sizeof(int32_t) * (size_t)(cnt + 1));
    if (!out->unc) return err_set(err, FORGE_E_NOMEM, "out of memory");
    run = 0;
    for (int t = 0; t < v->n_tok; t++) {
        run += c->mark[t];
        int32_t id = v->sorted[t];
        if (run > 0 && !((out->acc[id >> 5] >> (id & 31)) & 1)) out->unc[out->n_unc++] = id;
    }
    /* a short list instead of the bitmap when fewer than one id in 64 is accepted */
    int n_acc = 0;
    for (int i = 0; i < c->words; i++) n_acc += __builtin_popcount(out->acc[i]);
    if (n_acc < c->words / 2) {
        out->acc_ids = malloc(sizeof(int32_t) * (size_t)(n_acc + 1));
        if (!out->acc_ids) return err_set(err, FORGE_E_NOMEM, "out of memory");
        for (int i = 0; i < c->words; i++)
            for (uint32_t b = out->acc[i]; b; b &= b - 1) out->acc_ids[out->n_acc++] = i * 32 + __builtin_ctz(b);
        free(out->acc);
        out->acc = NULL;
    }
    return FORGE_OK;
}

static centry *get_entry(gconstraint *c, gws *w, const ckey *k, forge_error *err) {
    uint64_t h = key_hash(k);
    int j = (int)(h & (uint64_t)(c->tab_cap - 1));
    while (c->tab[j] >= 0) {
        if (key_eq(&c->ents[c->tab[j]].key, k)) return &c->ents[c->tab[j]];
        j = (j + 1) & (c->tab_cap - 1);
    }
    if (c->n_ents == c->cap_ents) {
        int cap = c->cap_ents ? c->cap_ents * 2 : 16;
        centry *e = realloc(c->ents, sizeof *e * (size_t)cap);
        if (!e) {
            err_set(err, FORGE_E_NOMEM, "out of memory");
            return NULL;
        }
        c->ents = e, c->cap_ents = cap;
    }
    centry *e = &c->ents[c->n_ents];
    memset(e, 0, sizeof *e);
    e->key = *k;
    if (compute_entry(c, w, k, e, err)) {
        free(e->acc), free(e->acc_ids), free(e->unc);
        return NULL;
    }
    if (2 * (c->n_ents + 1) > c->tab_cap) {
        int cap = c->tab_cap * 2;
        int32_t *t = malloc(sizeof(int32_t) * (size_t)cap);
        if (!t) {
            free(e->acc), free(e->acc_ids), free(e->unc);
            err_set(err, FORGE_E_NOMEM, "out of memory");
            return NULL;
        }
        for (int i = 0; i < cap; i++) t[i] = -1;
        for (int i = 0; i < c->n_ents; i++) {
            int q = (int)(key_hash(&c->ents[i].key) & (uint64_t)(cap - 1));
            while (t[q] >= 0) q = (q + 1) & (cap - 1);
            t[q] = i;
        }
        free(c->tab);
        c->tab = t, c->tab_cap = cap;
    }
    j = (int)(h & (uint64_t)(c->tab_cap - 1));
    while (c->tab[j] >= 0) j = (j + 1) & (c->tab_cap - 1);
    c->tab[j] = c->n_ents;
    return &c->ents[c->n_ents++];
}

/* ---- the per-sequence matcher --------------------------------------------------------- */

struct gmatcher {
    const gconstraint *c;
    uint32_t *st; /* the state: stacks as in the arena */
    size_t n, cap;
    int32_t *seen; /* scratch for fill_mask: distinct entries (indices: the array may move) */
    int cap_seen;
};

static forge_status set_state(gmatcher *m, const uint32_t *s, size_t n) {
    if (n > m->cap) {
        size_t cap = n * 2 + 16;
        uint32_t *p = realloc(m->st, sizeof(uint32_t) * cap);
        if (!p) return FORGE_E_NOMEM;
        m->st = p, m->cap = cap;
    }
    if (n) memcpy(m->st, s, sizeof(uint32_t) * n);
    m->n = n;
    return FORGE_OK;
}

forge_status gmatcher_reset(gmatcher *m, gws *w, forge_error *err) {
    (void)w;
    const grammar *g = m->c->g;
    /* the start: one stack per alternative of the root rule */
    int R = g->root;
    size_t need = 0;
    for (int a = g->rule_alt0[R]; a < g->rule_alt0[R + 1]; a++) need += 2;
    uint32_t *tmp = malloc(sizeof(uint32_t) * (need + 1));
    if (!tmp) return err_set(err, FORGE_E_NOMEM, "out of memory");
    size_t n = 0;
    for (int a = g->rule_alt0[R]; a < g->rule_alt0[R + 1]; a++) {
        int32_t s = g->alt_pos[a];
        if (g->elems[s].kind == G_END) tmp[n++] = 0; /* the empty stack: already complete */
        else tmp[n++] = 1, tmp[n++] = (uint32_t)s;
    }
    forge_status st = set_state(m, tmp, n);
    free(tmp);
    return st ? err_set(err, st, "out of memory") : FORGE_OK;
}

gmatcher *gmatcher_create(const gconstraint *c, gws *w, forge_error *err) {
    gmatcher *m = calloc(1, sizeof *m);
    if (!m) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    m->c = c;
    if (gmatcher_reset(m, w, err)) {
        gmatcher_free(m);
        return NULL;
    }
    return m;
}

void gmatcher_free(gmatcher *m) {
    if (!m) return;
    free(m->st);
    free(m->seen);
    free(m);
}

forge_status gmatcher_copy(gmatcher *dst, const gmatcher *src) { return set_state(dst, src->st, src->n); }

/* Runs bytes from the matcher's state in the arena; returns the arena range of the result
 * in *from, *to (empty when rejected). */
static int run_bytes(const gmatcher *m, gws *w, const uint8_t *s, size_t n, size_t *from, size_t *to) {
    const grammar *g = m->c->g;
    size_t base = w->top;
    if (base + m->n + 1 > w->cap) {
        w->overflow = true;
        w->why = "the matcher's state is too large";
        return 0;
    }
    if (m->n) memcpy(w->a + base, m->st, sizeof(uint32_t) * m->n);
    size_t f = base, t = base + m->n;
    w->top = t;
    int cnt = 1;
    for (size_t i = 0; i < n; i++) {
        sbuild b;
        cnt = step_state(g, w, f, t, s[i], &b);
        if (cnt == 0 || w->overflow) {
            cnt = 0;
            break;
        }
        /* move the new state down to f (it lies after [f, t)) so the arena stays small */
        size_t len = w->top - b.start;
        memmove(w->a + f, w->a + b.start, sizeof(uint32_t) * len);
        t = f + len;
        w->top = t;
    }
    *from = f, *to = cnt ? t : f;
    return cnt;
}

forge_status gmatcher_accept_bytes(gmatcher *m, gws *w, const uint8_t *s, size_t n, forge_error *err) {
    size_t top = w->top, f, t;
    w->overflow = false;
    int cnt = run_bytes(m, w, s, n, &f, &t);
    forge_status st = FORGE_OK;
    if (w->overflow) st = err_set(err, FORGE_E_RANGE, "constraint: %s", w->why);
    else if (!cnt) st = err_set(err, FORGE_E_INVALID, "constraint: the text does not match the grammar");
    else if (set_state(m, w->a + f, t - f)) st = err_set(err, FORGE_E_NOMEM, "out of memory");
    w->top = top;
    return st;
}

forge_status gmatcher_accept_token(gmatcher *m, gws *w, int32_t id, forge_error *err) {
    int len;
    const uint8_t *b = gvocab_bytes(m->c->v, id, &len);
    if (!b) return err_set(err, FORGE_E_INVALID, "constraint: token %d has no text the grammar can match", id);
    return gmatcher_accept_bytes(m, w, b, (size_t)len, err);
}

bool gmatcher_can_end(const gmatcher *m) { return state_can_end(m->c->g, m->st, m->n); }

bool gmatcher_must_end(const gmatcher *m) {
    for (size_t o = 0; o < m->n;) {
        if (m->st[o] > 0) return false;
        o += m->st[o] + 1;
    }
    return true;
}

forge_status gmatcher_fill_mask(gmatcher *m, gconstraint *c, gws *w, uint32_t *mask, forge_error *err) {
    memset(mask, 0, sizeof(uint32_t) * (size_t)c->words);
    int n_seen = 0;
    size_t top0 = w->top;
    for (size_t o = 0; o < m->n;) {
        int len = (int)m->st[o];
        if (len > 0) {
            ckey k = make_key(m->st + o + 1, len);
            centry *e = get_entry(c, w, &k, err);
            if (!e) return err ? err->code : FORGE_E_NOMEM;
            int32_t ei = (int32_t)(e - c->ents);
            bool dup = false;
            for (int i = 0; i < n_seen && !dup; i++) dup = m->seen[i] == ei;
            if (!dup) {
                if (n_seen == m->cap_seen) {
                    int cap = m->cap_seen ? m->cap_seen * 2 : 8;
                    int32_t *p = realloc(m->seen, sizeof *p * (size_t)cap);
                    if (!p) return err_set(err, FORGE_E_NOMEM, "out of memory");
                    m->seen = p, m->cap_seen = cap;
                }
                m->seen[n_seen++] = ei;
                if (e->acc)
                    for (int i = 0; i < c->words; i++) mask[i] |= e->acc[i];
                else
                    for (int i = 0; i < e->n_acc; i++) mask[e->acc_ids[i] >> 5] |= 1u << (e->acc_ids[i] & 31);
            }
        }
        o += (size_t)len + 1;
    }
    w->overflow = false;
    for (int s = 0; s < n_seen; s++) {
        const centry *e = &c->ents[m->seen[s]];
        for (int i = 0; i < e->n_unc; i++) {
            int32_t id = e->unc[i];
            if ((mask[id >> 5] >> (id & 31)) & 1) continue;
            int len;
            const uint8_t *b = gvocab_bytes(c->v, id, &len);
            size_t f, t;
            /* a token that would pass a limit (w->overflow) is left out */
            if (run_bytes(m, w, b, (size_t)len, &f, &t) && !w->overflow) mask[id >> 5] |= 1u << (id & 31);
            w->top = top0;
            w->overflow = false;
        }
    }
    return FORGE_OK;
}
