/* The KV block manager against a simple model of it: thousands of random operations
 * (allocate, share, release, commit, look up), checking refcounts, the free count, LRU
 * eviction order and that a lookup only ever finds a block holding exactly the wanted
 * (parent, tokens) content. */
#include "engine/kv_blocks.h"
#include "test.h"

enum { N = 24, BT = FORGE_KV_BLOCK_TOKENS };

typedef struct {
    int ref;
    bool cached;
    int parent;       /* content key: parent block and its content id, tokens */
    long parent_content;
    int32_t tokens[BT];
    long content;     /* bumps on every reuse: the model's generation */
} model_block;

static model_block mb[N];
static int lru[N], n_lru; /* free blocks, least recently freed first */

static void lru_remove(int b) {
    for (int i = 0; i < n_lru; i++)
        if (lru[i] == b) {
            memmove(lru + i, lru + i + 1, (size_t)(n_lru - i - 1) * sizeof *lru);
            n_lru--;
            return;
        }
}

static void pattern(int32_t *toks) {
    int p = (int)(t_rand64() % 3);
    for (int i = 0; i < BT; i++) toks[i] = p * 100 + (i == BT - 1 ? p : 0);
}

TEST(random_operations_match_model) {
    kv_blocks *m = kvb_create(N);
    for (int i = 0; i < N; i++) lru[n_lru++] = i;
    long next_content = 1;
    int held[4 * N], n_held = 0, lookups_hit = 0;
    for (int op = 0; op < 20000; op++) {
        int r = (int)(t_rand64() % 100);
        if (r < 35) { /* allocate */
            int b = kvb_alloc(m);
            if (n_lru == 0) {
                CHECK(b == -1);
                continue;
            }
            CHECKF(b == lru[0], "op %d: allocated %d, LRU head is %d", op, b, lru[0]);
            lru_remove(b);
            mb[b].ref = 1;
            mb[b].cached = false;
            mb[b].content = next_content++;
            held[n_held++] = b;
        } else if (r < 50 && n_held) { /* share (a prefix hit) */
            int b = held[t_rand64() % (uint64_t)n_held];
            kvb_ref(m, b);
            mb[b].ref++;
            held[n_held++] = b;
        } else if (r < 75 && n_held) { /* release */
            int k = (int)(t_rand64() % (uint64_t)n_held), b = held[k];
            held[k] = held[--n_held];
            kvb_unref(m, b);
            if (--mb[b].ref == 0) lru[n_lru++] = b;
        } else if (r < 87 && n_held) { /* commit with a parent among held blocks or none */
            int b = held[t_rand64() % (uint64_t)n_held];
            int parent = t_rand64() % 3 == 0 ? -1 : held[t_rand64() % (uint64_t)n_held];
            if (parent == b) parent = -1;
            int32_t toks[BT];
            pattern(toks); /* few patterns: repeated keys on purpose */
            bool dup = false;
            for (int i = 0; i < N; i++)
                if (mb[i].cached && mb[i].parent == parent &&
                    mb[i].parent_content == (parent >= 0 ? mb[parent].content : 0) && !memcmp(mb[i].tokens, toks, sizeof toks))
                    dup = true;
            kvb_commit(m, b, parent, toks);
            if (!mb[b].cached && !dup) {
                mb[b].cached = true;
                mb[b].parent = parent;
                mb[b].parent_content = parent >= 0 ? mb[parent].content : 0;
                memcpy(mb[b].tokens, toks, sizeof toks);
            }
        } else { /* look up a random key: must find exactly a block with that content */
            int parent = t_rand64() % 3 == 0 ? -1 : (int)(t_rand64() % N);
            int32_t toks[BT];
            pattern(toks);
            int want = -1;
            for (int i = 0; i < N; i++)
                if (mb[i].cached && mb[i].parent == parent &&
                    mb[i].parent_content == (parent >= 0 ? mb[parent].content : 0) && !memcmp(mb[i].tokens, toks, sizeof toks))
                    want = i;
            int got = kvb_lookup(m, parent, toks);
            CHECKF(got == want, "op %d: lookup found %d, model says %d", op, got, want);
            lookups_hit += got >= 0;
        }
        /* invariants after every operation */
        CHECK(kvb_free_count(m) == n_lru);
        int cached_free = 0;
        for (int i = 0; i < n_lru; i++) cached_free += mb[lru[i]].cached;
        CHECK(kvb_cached_free_count(m) == cached_free);
        if (op % 997 == 0)
            for (int i = 0; i < N; i++) CHECK(kvb_refcount(m, i) == mb[i].ref && kvb_is_cached(m, i) == mb[i].cached);
        /* an evicted block stops being cached: mirror the model on allocation */
        for (int i = 0; i < N; i++)
            if (mb[i].ref > 0 && !kvb_is_cached(m, i)) mb[i].cached = false;
    }
    CHECKF(lookups_hit > 10, "only %d lookups hit: the test does not exercise hits", lookups_hit);
    while (n_held) kvb_unref(m, held[--n_held]);
    CHECK(kvb_free_count(m) == N);
    kvb_free(m);
}

TEST(reuse_invalidates_children) {
    kv_blocks *m = kvb_create(2);
    int32_t t1[BT] = {1}, t2[BT] = {2};
    int a = kvb_alloc(m), b = kvb_alloc(m);
    kvb_commit(m, a, -1, t1);
    kvb_commit(m, b, a, t2);
    CHECK(kvb_lookup(m, -1, t1) == a && kvb_lookup(m, a, t2) == b);
    kvb_unref(m, a); /* a freed first: evicted first */
    kvb_unref(m, b);
    int c = kvb_alloc(m);
    CHECK(c == a && kvb_lookup(m, -1, t1) == -1);
    /* the child keyed on a's old content must not be found under the new a */
    CHECK(kvb_lookup(m, a, t2) == -1);
    kvb_commit(m, c, -1, t2);
    CHECK(kvb_lookup(m, -1, t2) == c);
    kvb_unref(m, c);
    kvb_free(m);
}

/* The prefix index (partial matches) against brute force over a model of every block's
 * content: after random allocations (evictions), partial tails, full commits and releases,
 * a query gets the longest common prefix any indexed block under that parent offers, and
 * the block returned really holds it. Tokens are a common stem of random length, then a
 * 2-letter alphabet, so prefixes collide often and long matches happen; 24 blocks stay below the scan cap, so the answer must be the best. */
typedef struct {
    int valid; /* 0: not indexed */
    int parent;
    long parent_content;
    int32_t tokens[BT];
} pmodel;

static int common(const int32_t *a, const int32_t *b, int n) {
    int k = 0;
    while (k < n && a[k] == b[k]) k++;
    return k;
}

static int best_in_model(const pmodel *pm, const long *content, int parent, const int32_t *q, int n, int *who) {
    int best = 0;
    *who = -1;
    for (int i = 0; i < N; i++) {
        if (!pm[i].valid || pm[i].parent != parent || pm[i].parent_content != (parent >= 0 ? content[parent] : 0)) continue;
        int k = common(pm[i].tokens, q, pm[i].valid < n ? pm[i].valid : n);
        if (k > best) best = k, *who = i;
    }
    return best;
}

TEST(partial_matches_are_the_longest_held) {
    kv_blocks *m = kvb_create(N);
    static pmodel pm[N];
    static long content[N];
    memset(pm, 0, sizeof pm);
    long next = 1;
    int held[N], n_held = 0, hits = 0, long_hits = 0;
    for (int op = 0; op < 30000; op++) {
        int r = (int)(t_rand64() % 100);
        int32_t toks[BT];
        int shared = (int)(t_rand64() % (BT + 1)); /* a common stem, then random: long matches too */
        for (int i = 0; i < BT; i++) toks[i] = i < shared ? 1 + (i * 5 + 1) % 3 % 2 : 1 + (int32_t)(t_rand64() % 2);
        int parent = t_rand64() % 2 ? -1 : (int)(t_rand64() % N);
        if (r < 30 && n_held < N) { /* allocate: evicts what the block held */
            int b = kvb_alloc(m);
            if (b < 0) continue;
            pm[b].valid = 0;
            content[b] = next++;
            held[n_held++] = b;
        } else if (r < 60 && n_held) { /* release, leaving a partial tail or a full block */
            int k = (int)(t_rand64() % (uint64_t)n_held), b = held[k];
            held[k] = held[--n_held];
            if (parent == b) parent = -1;
            long pc = parent >= 0 ? content[parent] : 0;
            if (t_rand64() % 4 == 0) {
                bool dup = false;
                for (int i = 0; i < N; i++)
                    if (pm[i].valid == BT && pm[i].parent == parent && pm[i].parent_content == pc && !memcmp(pm[i].tokens, toks, sizeof toks))
                        dup = true;
                kvb_commit(m, b, parent, toks);
                if (!dup) pm[b] = (pmodel){.valid = BT, .parent = parent, .parent_content = pc};
                if (!dup) memcpy(pm[b].tokens, toks, sizeof toks);
            } else {
                int n = 1 + (int)(t_rand64() % (BT - 1)), who;
                bool covered = best_in_model(pm, content, parent, toks, n, &who) == n;
                kvb_commit_partial(m, b, parent, toks, n);
                if (!covered) {
                    pm[b] = (pmodel){.valid = n, .parent = parent, .parent_content = pc};
                    memcpy(pm[b].tokens, toks, sizeof(int32_t) * (size_t)n);
                }
            }
            kvb_unref(m, b);
        } else { /* query */
            int n = 1 + (int)(t_rand64() % BT), who, got = -1;
            int want = best_in_model(pm, content, parent, toks, n, &who);
            int b = kvb_match_partial(m, parent, toks, n, &got);
            CHECKF(got == want, "op %d: match of %d tokens, the model's best is %d", op, got, want);
            if (b >= 0) {
                CHECKF(pm[b].valid >= got && common(pm[b].tokens, toks, got) == got && pm[b].parent == parent,
                       "op %d: block %d does not hold the %d tokens it matched", op, b, got);
                hits++;
                long_hits += got >= 8;
            } else {
                CHECK(want == 0);
            }
        }
    }
    CHECKF(hits > 1000 && long_hits > 100, "%d hits, %d of 8+ tokens: the test does not exercise matches", hits, long_hits);
    while (n_held) kvb_unref(m, held[--n_held]);
    kvb_free(m);
}

int main(void) {
    RUN(random_operations_match_model);
    RUN(reuse_invalidates_children);
    RUN(partial_matches_are_the_longest_held);
    return t_summary();
}
