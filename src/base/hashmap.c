#include "base/hashmap.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t rd64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint64_t hash_bytes(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        h = hash_u64(h ^ rd64(p));
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t |= (uint64_t)p[i] << (8 * i);
    return hash_u64(h ^ t ^ 0x5bd1e995u);
}

static size_t cap_for(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 2) cap *= 2;
    return cap;
}

bool strmap_init(strmap *m, size_t expected) {
    m->cap = cap_for(expected);
    m->count = 0;
    m->slots = calloc(m->cap, sizeof *m->slots);
    return m->slots != NULL;
}

void strmap_free(strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static bool strmap_grow(strmap *m) {
    strmap old = *m;
    if (!strmap_init(m, old.cap)) {
        *m = old;
        return false;
    }
    for (size_t i = 0; i < old.cap; i++) {
        strmap_slot *s = &old.slots[i];
        if (!s->key) continue;
        size_t j = s->hash & (m->cap - 1);
        while (m->slots[j].key) j = (j + 1) & (m->cap - 1);
        m->slots[j] = *s;
        m->count++;
    }
    free(old.slots);
    return true;
}

bool strmap_put(strmap *m, const char *key, size_t len, int32_t value) {
    if ((m->count + 1) * 2 > m->cap && !strmap_grow(m)) return false;
    uint64_t h = hash_bytes(key, len, 0);
    size_t j = h & (m->cap - 1);
    for (;;) {
        strmap_slot *s = &m->slots[j];
        if (!s->key) {
            s->key = key;
            s->len = (uint32_t)len;
            s->hash = h;
            s->value = value;
            m->count++;
            return true;
        }
        if (s->hash == h && s->len == len && !memcmp(s->key, key, len)) {
            s->value = value;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
}

int32_t strmap_get(const strmap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint64_t h = hash_bytes(key, len, 0);
    size_t j = h & (m->cap - 1);
    for (;;) {
        const strmap_slot *s = &m->slots[j];
        if (!s->key) return -1;
        if (s->hash == h && s->len == len && !memcmp(s->key, key, len)) return s->value;
        j = (j + 1) & (m->cap - 1);
    }
}

bool u64map_init(u64map *m, size_t expected) {
    m->cap = cap_for(expected);
    m->count = 0;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return false;
    for (size_t i = 0; i < m->cap; i++) m->slots[i].value = -1;
    return true;
}

void u64map_free(u64map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static bool u64map_grow(u64map *m) {
    u64map old = *m;
    if (!u64map_init(m, old.cap)) {
        *m = old;
        return false;
    }
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].value >= 0) u64map_put(m, old.slots[i].key, old.slots[i].value);
    free(old.slots);
    return true;
}

bool u64map_put(u64map *m, uint64_t key, int32_t value) {
    if ((m->count + 1) * 2 > m->cap && !u64map_grow(m)) return false;
    size_t j = hash_u64(key) & (m->cap - 1);
    for (;;) {
        u64map_slot *s = &m->slots[j];
        if (s->value < 0) {
            s->key = key;
            s->value = value;
            m->count++;
            return true;
        }
        if (s->key == key) {
            s->value = value;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
}

int32_t u64map_get(const u64map *m, uint64_t key) {
    if (!m->cap) return -1;
    size_t j = hash_u64(key) & (m->cap - 1);
    for (;;) {
        const u64map_slot *s = &m->slots[j];
        if (s->value < 0) return -1;
        if (s->key == key) return s->value;
        j = (j + 1) & (m->cap - 1);
    }
}
