#include "engine/kv_blocks.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/hashmap.h"

enum { B = FORGE_KV_BLOCK_TOKENS };

typedef struct block {
    int32_t ref;
    uint32_t gen;        /* bumped when the block is reused for other content */
    int32_t prev, next;  /* free list links (LRU), -1 at the ends */
    bool in_free;
    bool cached;         /* registered in the table below */
    int32_t parent;      /* key: parent block (-1: first block), its generation, tokens */
    uint32_t parent_gen;
    int32_t tokens[B];
    uint64_t hash;
    int32_t n_valid;     /* tokens whose K/V the prefix index vouches for (0: not indexed) */
} block;

/* The prefix index (partial matches): every block with known content (a full cached block, or
 * the partial tail a finished sequence left) is entered once per level L in LEVELS with
 * L <= n_valid, keyed by (parent, parent's generation, its first L tokens). A block that
 * matches a query in m >= L tokens is in the level-L bucket of the query's first L tokens, so
 * the longest match is found in the highest level whose bucket has a candidate. */
static const int LEVELS[] = {1, 4, 8, 12};
enum { N_LEVELS = 4, SCAN_CAP = 32 };

struct kv_blocks {
    int n;
    block *b;
    int32_t free_head, free_tail; /* head: least recently freed */
    int n_free, n_cached_free;
    /* open-addressing table of cached block ids (-1 empty, -2 deleted) keyed by hash */
    int32_t *table;
    size_t table_cap, n_used_slots; /* cached entries + tombstones */
    /* the prefix index: entries block * N_LEVELS + level (-1 empty, -2 deleted) */
    int32_t *ptable;
    size_t ptable_cap, p_used_slots;
};

static uint64_t key_hash(int parent, uint32_t parent_gen, const int32_t *tokens) {
    uint64_t h = hash_u64(((uint64_t)(uint32_t)parent << 32) ^ parent_gen ^ 0x5ca1ab1eull);
    return hash_bytes(tokens, sizeof(int32_t) * B, h);
}

static uint64_t prefix_hash(int parent, uint32_t parent_gen, const int32_t *tokens, int len) {
    uint64_t h = hash_u64(((uint64_t)(uint32_t)parent << 32) ^ parent_gen ^ ((uint64_t)len << 20) ^ 0x9e3779b9ull);
    return hash_bytes(tokens, sizeof(int32_t) * (size_t)len, h);
}

static void free_push_tail(kv_blocks *m, int i) {
    block *x = &m->b[i];
    x->prev = m->free_tail;
    x->next = -1;
    if (m->free_tail >= 0) m->b[m->free_tail].next = i;
    else m->free_head = i;
    m->free_tail = i;
    x->in_free = true;
    m->n_free++;
    if (x->cached) m->n_cached_free++;
}

static void free_remove(kv_blocks *m, int i) {
    block *x = &m->b[i];
    if (x->prev >= 0) m->b[x->prev].next = x->next;
    else m->free_head = x->next;
    if (x->next >= 0) m->b[x->next].prev = x->prev;
    else m->free_tail = x->prev;
    x->in_free = false;
    m->n_free--;
    if (x->cached) m->n_cached_free--;
}

kv_blocks *kvb_create(int n) {
    kv_blocks *m = calloc(1, sizeof *m);
    if (!m || n <= 0) {
        free(m);
        return NULL;
    }
    m->n = n;
    m->b = calloc((size_t)n, sizeof *m->b);
    m->table_cap = 16;
    while (m->table_cap < (size_t)n * 2) m->table_cap *= 2;
    m->table = malloc(m->table_cap * sizeof *m->table);
    m->ptable_cap = 16;
    while (m->ptable_cap < (size_t)n * N_LEVELS * 2) m->ptable_cap *= 2;
    m->ptable = malloc(m->ptable_cap * sizeof *m->ptable);
    if (!m->b || !m->table || !m->ptable) {
        kvb_free(m);
        return NULL;
    }
    for (size_t i = 0; i < m->table_cap; i++) m->table[i] = -1;
    for (size_t i = 0; i < m->ptable_cap; i++) m->ptable[i] = -1;
    m->free_head = m->free_tail = -1;
    for (int i = 0; i < n; i++) free_push_tail(m, i);
    return m;
}

void kvb_free(kv_blocks *m) {
    if (!m) return;
    free(m->b);
    free(m->table);
    free(m->ptable);
    free(m);
}

int kvb_total(const kv_blocks *m) { return m->n; }
int kvb_free_count(const kv_blocks *m) { return m->n_free; }
int kvb_cached_free_count(const kv_blocks *m) { return m->n_cached_free; }
int kvb_refcount(const kv_blocks *m, int i) { return m->b[i].ref; }
bool kvb_is_cached(const kv_blocks *m, int i) { return m->b[i].cached; }

static bool key_equal(const block *x, int parent, uint32_t parent_gen, const int32_t *tokens) {
    return x->parent == parent && x->parent_gen == parent_gen && !memcmp(x->tokens, tokens, sizeof x->tokens);
}

static void table_remove(kv_blocks *m, int i) {
    size_t j = m->b[i].hash & (m->table_cap - 1);
    while (m->table[j] != i) {
        FORGE_ASSERT(m->table[j] != -1);
        j = (j + 1) & (m->table_cap - 1);
    }
    m->table[j] = -2;
}

/* Drops the tombstones by re-inserting every cached block. */
static void table_rebuild(kv_blocks *m) {
    for (size_t j = 0; j < m->table_cap; j++) m->table[j] = -1;
    m->n_used_slots = 0;
    for (int i = 0; i < m->n; i++) {
        if (!m->b[i].cached) continue;
        size_t j = m->b[i].hash & (m->table_cap - 1);
        while (m->table[j] != -1) j = (j + 1) & (m->table_cap - 1);
        m->table[j] = i;
        m->n_used_slots++;
    }
}

/* ---- the prefix index ---------------------------------------------------------------- */

static uint64_t entry_hash(const block *x, int level) {
    return prefix_hash(x->parent, x->parent_gen, x->tokens, LEVELS[level]);
}

static void index_remove(kv_blocks *m, int i) {
    block *x = &m->b[i];
    for (int l = 0; l < N_LEVELS && LEVELS[l] <= x->n_valid; l++) {
        size_t mask = m->ptable_cap - 1, j = entry_hash(x, l) & mask;
        while (m->ptable[j] != i * N_LEVELS + l) {
            FORGE_ASSERT(m->ptable[j] != -1);
            j = (j + 1) & mask;
        }
        m->ptable[j] = -2;
    }
    x->n_valid = 0;
}

static void index_rebuild(kv_blocks *m) {
    size_t mask = m->ptable_cap - 1;
    for (size_t j = 0; j < m->ptable_cap; j++) m->ptable[j] = -1;
    m->p_used_slots = 0;
    for (int i = 0; i < m->n; i++)
        for (int l = 0; l < N_LEVELS && LEVELS[l] <= m->b[i].n_valid; l++) {
            size_t j = entry_hash(&m->b[i], l) & mask;
            while (m->ptable[j] != -1) j = (j + 1) & mask;
            m->ptable[j] = i * N_LEVELS + l;
            m->p_used_slots++;
        }
}

/* Enters block i (parent, parent_gen and tokens set) with n valid tokens. */
static void index_add(kv_blocks *m, int i, int n) {
    block *x = &m->b[i];
    FORGE_ASSERT(x->n_valid == 0 && n > 0 && n <= B);
    /* at most n * N_LEVELS entries <= cap / 2; tombstones are cleared before they fill it
     * (before n_valid is set: the rebuild must not enter this block too) */
    if (m->p_used_slots + N_LEVELS > m->ptable_cap * 3 / 4) index_rebuild(m);
    x->n_valid = n;
    size_t mask = m->ptable_cap - 1;
    for (int l = 0; l < N_LEVELS && LEVELS[l] <= n; l++) {
        size_t j = entry_hash(x, l) & mask;
        while (m->ptable[j] >= 0) j = (j + 1) & mask;
        if (m->ptable[j] == -1) m->p_used_slots++;
        m->ptable[j] = i * N_LEVELS + l;
    }
}

int kvb_match_partial(const kv_blocks *m, int parent, const int32_t *tokens, int n, int *match) {
    *match = 0;
    if (n <= 0) return -1;
    if (n > B) n = B;
    uint32_t pg = parent >= 0 ? m->b[parent].gen : 0;
    size_t mask = m->ptable_cap - 1;
    for (int l = N_LEVELS - 1; l >= 0; l--) {
        int len = LEVELS[l];
        if (len > n) continue;
        int best = -1, best_m = 0, seen = 0;
        for (size_t j = prefix_hash(parent, pg, tokens, len) & mask; m->ptable[j] != -1 && seen < SCAN_CAP;
             j = (j + 1) & mask) {
            int32_t e = m->ptable[j];
            if (e < 0 || e % N_LEVELS != l) continue;
            const block *x = &m->b[e / N_LEVELS];
            if (x->parent != parent || x->parent_gen != pg || memcmp(x->tokens, tokens, sizeof(int32_t) * (size_t)len))
                continue;
            seen++;
            int k = len, lim = x->n_valid < n ? x->n_valid : n;
            while (k < lim && x->tokens[k] == tokens[k]) k++;
            if (k > best_m) {
                best_m = k;
                best = e / N_LEVELS;
            }
        }
        if (best >= 0) {
            *match = best_m;
            return best;
        }
    }
    return -1;
}

void kvb_commit_partial(kv_blocks *m, int i, int parent, const int32_t *tokens, int n) {
    block *x = &m->b[i];
    if (n <= 0 || n >= B || x->cached || x->n_valid) return;
    int have = 0;
    if (kvb_match_partial(m, parent, tokens, n, &have) >= 0 && have == n) return; /* nothing new */
    x->parent = parent;
    x->parent_gen = parent >= 0 ? m->b[parent].gen : 0;
    memcpy(x->tokens, tokens, sizeof(int32_t) * (size_t)n);
    index_add(m, i, n);
}

int kvb_alloc(kv_blocks *m) {
    int i = m->free_head;
    if (i < 0) return -1;
    free_remove(m, i);
    block *x = &m->b[i];
    if (x->cached) {
        table_remove(m, i);
        x->cached = false;
    }
    if (x->n_valid) index_remove(m, i);
    x->gen++; /* children keyed on the old content can no longer be found */
    x->ref = 1;
    return i;
}

void kvb_ref(kv_blocks *m, int i) {
    block *x = &m->b[i];
    if (x->in_free) free_remove(m, i);
    x->ref++;
}

void kvb_unref(kv_blocks *m, int i) {
    block *x = &m->b[i];
    FORGE_ASSERT(x->ref > 0);
    if (--x->ref == 0) free_push_tail(m, i);
}

int kvb_lookup(const kv_blocks *m, int parent, const int32_t *tokens) {
    uint32_t pg = parent >= 0 ? m->b[parent].gen : 0;
    uint64_t h = key_hash(parent, pg, tokens);
    for (size_t j = h & (m->table_cap - 1);; j = (j + 1) & (m->table_cap - 1)) {
        int32_t i = m->table[j];
        if (i == -1) return -1;
        if (i >= 0 && m->b[i].hash == h && key_equal(&m->b[i], parent, pg, tokens)) return i;
    }
}

void kvb_commit(kv_blocks *m, int i, int parent, const int32_t *tokens) {
    block *x = &m->b[i];
    if (x->cached || kvb_lookup(m, parent, tokens) >= 0) return;
    x->parent = parent;
    x->parent_gen = parent >= 0 ? m->b[parent].gen : 0;
    memcpy(x->tokens, tokens, sizeof x->tokens);
    x->hash = key_hash(parent, x->parent_gen, tokens);
    /* cached blocks <= n <= cap / 2; tombstones are cleared before they fill the table */
    if (m->n_used_slots + 1 > m->table_cap * 3 / 4) table_rebuild(m);
    size_t j = x->hash & (m->table_cap - 1);
    while (m->table[j] >= 0) j = (j + 1) & (m->table_cap - 1);
    if (m->table[j] == -1) m->n_used_slots++;
    m->table[j] = i;
    x->cached = true;
    if (x->in_free) m->n_cached_free++;
    index_add(m, i, B);
}
