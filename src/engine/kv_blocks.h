/* kv_blocks.h: the paged KV block manager: a pool of blocks of FORGE_KV_BLOCK_TOKENS
 * tokens with reference counts, and prefix caching of full blocks.
 *
 * A cached block is keyed by (parent block, parent's generation, its 16 token ids) and a
 * hit compares all of them, so no hash collision can hand out wrong KV (vLLM's predictable
 * prefix-hash collisions were a CVE). A block's generation changes whenever it is reused
 * for other content, which makes every key naming it as parent unreachable. Freed blocks
 * keep their cached content and sit in an LRU list until a new allocation takes them. */
#ifndef FORGE_ENGINE_KV_BLOCKS_H
#define FORGE_ENGINE_KV_BLOCKS_H

#include <stdbool.h>
#include <stdint.h>

#include "forge.h"

typedef struct kv_blocks kv_blocks;

kv_blocks *kvb_create(int n_blocks);
void kvb_free(kv_blocks *m);

int kvb_total(const kv_blocks *m);
/* Blocks with no reference (cached or empty): what allocation can take. */
int kvb_free_count(const kv_blocks *m);
/* Blocks in the free list that still hold cached content. */
int kvb_cached_free_count(const kv_blocks *m);

/* Takes the least recently freed block (evicting its cached content); -1 when none. */
int kvb_alloc(kv_blocks *m);
/* Adds a reference to a block (a cache hit); takes it off the free list if needed. */
void kvb_ref(kv_blocks *m, int block);
/* Drops a reference; at zero the block joins the free list (most recently used end). */
void kvb_unref(kv_blocks *m, int block);
int kvb_refcount(const kv_blocks *m, int block);

/* Looks up the full block that follows `parent` (-1 for the first block) and holds tokens
 * [0, 16). Returns the block or -1; does not take a reference. */
int kvb_lookup(const kv_blocks *m, int parent, const int32_t *tokens);
/* Registers a just-filled block under (parent, tokens); if an identical entry exists the
 * block is simply not cached. */
void kvb_commit(kv_blocks *m, int block, int parent, const int32_t *tokens);
bool kvb_is_cached(const kv_blocks *m, int block);

#endif
