/* kv_blocks.h: the paged KV block manager: a pool of blocks of FORGE_KV_BLOCK_TOKENS
 * tokens with reference counts, and prefix caching of full blocks.
 *
 * A cached block is keyed by (parent block, parent's generation, its 16 token ids) and a
 * hit compares all of them, so no hash collision can hand out wrong KV (vLLM's predictable
 * prefix-hash collisions were a CVE). A block's generation changes whenever it is reused
 * for other content, which makes every key naming it as parent unreachable. Freed blocks
 * keep their cached content and sit in an LRU list until a new allocation takes them.
 *
 * Partial matches (token-granular reuse, as llama-server's slots and SGLang's radix cache
 * give): a prefix index also holds every full cached block and the partial tail block that a
 * finished or preempted sequence leaves, so a prompt that shares only some tokens of a
 * block with earlier content (a repeated short prompt, the next turn of a chat ending
 * mid-block) finds the block with the longest common prefix under the same parent. The
 * engine then copies that many tokens' K/V into a block of its own (the source stays as it
 * is, shared or cached). Lookups scan at most 32 candidates per level, so their cost is
 * bounded; a miss only costs recomputation. */
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

/* The block under `parent` (-1 for the first block) whose content shares the longest prefix
 * with tokens[0, n) (n capped at 16); *match gets its length (>= 1), or 0 and -1 is returned
 * when none shares even the first token. Takes no reference: pin the block (kvb_ref) before
 * allocating anything, or the allocation may evict it. */
int kvb_match_partial(const kv_blocks *m, int parent, const int32_t *tokens, int n, int *match);
/* Registers block `block` (after `parent`) as holding the K/V of tokens[0, n), 0 < n < 16:
 * a partial tail about to be freed. Nothing is done when the block is cached or another
 * indexed block already covers those n tokens. */
void kvb_commit_partial(kv_blocks *m, int block, int parent, const int32_t *tokens, int n);

#endif
