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
} block;

struct kv_blocks {
    int n;
    block *b;
    int32_t free_head, free_tail; /* head: least recently freed */
    int n_free, n_cached_free;
    /* open-addressing table of cached block ids (-1 empty, -2 deleted) keyed by hash */
    int32_t *table;
    size_t table_cap, n_used_slots; /* cached entries + tombstones */
};

static uint64_t key_hash(int parent, uint32_t parent_gen, const int32_t *tokens) {
    uint64_t h = hash_u64(((uint64_t)(uint32_t)parent << 32) ^ parent_gen ^ 0x5ca1ab1eull);
    return hash_bytes(tokens, sizeof(int32_t) * B, h);
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
    if (!m->b || !m->table) {
        kvb_free(m);
        return NULL;
    }
    for (size_t i = 0; i < m->table_cap; i++) m->table[i] = -1;
    m->free_head = m->free_tail = -1;
    for (int i = 0; i < n; i++) free_push_tail(m, i);
    return m;
}

void kvb_free(kv_blocks *m) {
    if (!m) return;
    free(m->b);
    free(m->table);
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

int kvb_alloc(kv_blocks *m) {
    int i = m->free_head;
    if (i < 0) return -1;
    free_remove(m, i);
    block *x = &m->b[i];
    if (x->cached) {
        table_remove(m, i);
        x->cached = false;
    }
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
}
