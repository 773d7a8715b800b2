/* hashmap.h: open-addressing hash maps with int32 values: byte-string keys (the map keeps a
 * pointer to each key, which must outlive it) and uint64 keys. Linear probing, power-of-two
 * capacity, load factor at most 1/2. */
#ifndef FORGE_BASE_HASHMAP_H
#define FORGE_BASE_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *data, size_t n, uint64_t seed);
static inline uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

typedef struct strmap_slot {
    const char *key;
    uint32_t len;
    int32_t value;
    uint64_t hash;
} strmap_slot;

typedef struct strmap {
    strmap_slot *slots;
    size_t cap, count;
} strmap;

/* Sizes the map for `expected` keys; false on allocation failure. */
bool strmap_init(strmap *m, size_t expected);
void strmap_free(strmap *m);
/* Inserts or replaces; false on allocation failure. */
bool strmap_put(strmap *m, const char *key, size_t len, int32_t value);
/* The value, or -1 when absent. */
int32_t strmap_get(const strmap *m, const char *key, size_t len);

typedef struct u64map_slot {
    uint64_t key;
    int32_t value; /* -1 marks an empty slot: values must be >= 0 */
} u64map_slot;

typedef struct u64map {
    u64map_slot *slots;
    size_t cap, count;
} u64map;

bool u64map_init(u64map *m, size_t expected);
void u64map_free(u64map *m);
/* value must be >= 0 */
bool u64map_put(u64map *m, uint64_t key, int32_t value);
int32_t u64map_get(const u64map *m, uint64_t key);

#endif
