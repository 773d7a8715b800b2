/* matcher.h: a compiled grammar against a vocabulary, and per-sequence matching state.
 *
 * gvocab: the byte strings of a tokenizer's tokens, sorted, as a trie laid out in preorder
 * (a subtree is a contiguous run of nodes and of sorted tokens). Built once per tokenizer;
 * read-only afterwards. Special tokens have no bytes and are never allowed by a grammar.
 *
 * The matching state is a set of stacks of grammar positions (a pushdown automaton over
 * bytes, run as a set because grammars may be ambiguous). A stack's top is the element to
 * match next; rule references are expanded only along alternatives whose first bytes hold
 * the byte being matched, so a state stays small.
 *
 * The mask: for the top GM_CTX entries of a stack (the "context key"), a walk of the token
 * trie from that partial stack, done once per key and cached in the gconstraint, splits the
 * vocabulary into tokens accepted whatever lies below, tokens rejected whatever lies below,
 * and the uncertain ones that complete the partial stack with bytes left over (XGrammar's
 * context-independent / context-dependent tokens). A step's mask is then the OR of the
 * cached bitmaps of its stacks' keys plus an exact check of each uncertain token from the
 * full state. The cache is filled lazily and is not thread-safe: one thread at a time per
 * gconstraint (the engine's thread).
 *
 * Limits (a state beyond them is an error, never silent): GM_MAX_STACKS stacks per state,
 * GM_MAX_DEPTH entries per stack (JSON nesting of about GM_MAX_DEPTH / 2). */
#ifndef FORGE_GRAMMAR_MATCHER_H
#define FORGE_GRAMMAR_MATCHER_H

#include "grammar/grammar.h"

enum { GM_CTX = 3, GM_MAX_STACKS = 2048, GM_MAX_DEPTH = 1024 };

typedef struct gvocab gvocab;
typedef struct gconstraint gconstraint;
typedef struct gmatcher gmatcher;
typedef struct gws gws;

/* From a tokenizer: mask bits for ids 0..n_vocab-1 (n_vocab may exceed the tokenizer's
 * size: the rest are never allowed). */
gvocab *gvocab_create(const forge_tokenizer *tok, int n_vocab, forge_error *err);
/* From explicit byte strings (tests): lens[i] < 0 marks a token with no bytes. */
gvocab *gvocab_create_bytes(int n_vocab, const char *const *bytes, const int *lens, forge_error *err);
void gvocab_free(gvocab *v);
int gvocab_size(const gvocab *v);
/* The bytes of token id (NULL and 0 for a token with none). */
const uint8_t *gvocab_bytes(const gvocab *v, int32_t id, int *len);

/* Takes ownership of g (freed with the constraint, also on failure); v must outlive it. */
gconstraint *gconstraint_create(grammar *g, const gvocab *v, forge_error *err);
void gconstraint_free(gconstraint *c);
const grammar *gconstraint_grammar(const gconstraint *c);
/* Cache statistics: context keys computed so far. */
int gconstraint_n_keys(const gconstraint *c);
/* Bytes held by the cache. */
size_t gconstraint_cache_bytes(const gconstraint *c);

/* A scratch workspace for one thread (the walk's states, dedup tables). */
gws *gws_create(forge_error *err);
void gws_free(gws *w);

/* A sequence's state at the start of the grammar. c must outlive it. */
gmatcher *gmatcher_create(const gconstraint *c, gws *w, forge_error *err);
void gmatcher_free(gmatcher *m);
/* Back to the start (buffers kept). */
forge_status gmatcher_reset(gmatcher *m, gws *w, forge_error *err);
/* Copies src's state into dst (same constraint); FORGE_E_NOMEM on failure. */
forge_status gmatcher_copy(gmatcher *dst, const gmatcher *src);
/* Advances by a token's bytes. FORGE_E_INVALID when the grammar rejects it (state kept),
 * FORGE_E_RANGE when a limit was hit. */
forge_status gmatcher_accept_token(gmatcher *m, gws *w, int32_t id, forge_error *err);
/* Advances by raw bytes (tests, forced text); same results. */
forge_status gmatcher_accept_bytes(gmatcher *m, gws *w, const uint8_t *s, size_t n, forge_error *err);
/* True when the text so far is a complete sentence of the grammar (EOS may follow). */
bool gmatcher_can_end(const gmatcher *m);
/* True when nothing but the end may follow. */
bool gmatcher_must_end(const gmatcher *m);
/* Writes the bitmask of tokens that may come next (bit id of word id/32), EOS excluded
 * (the caller adds it when gmatcher_can_end). mask has (n_vocab + 31) / 32 words. The
 * cache of c is filled as needed: c must not be used by another thread meanwhile.
 * FORGE_E_RANGE when a limit was hit. */
forge_status gmatcher_fill_mask(gmatcher *m, gconstraint *c, gws *w, uint32_t *mask, forge_error *err);

#endif
