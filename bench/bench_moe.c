/* bench_moe: a mixture-of-experts model's forward with experts grouped per step (each active
 * expert's weights read once for all its tokens) against one token at a time
 * (FORGE_MOE_UNGROUPED=1), in one process, step by step interleaved (one context each) so a
 * shared, noisy machine disturbs both alike: a decode step of N sequences and a prefill of P
 * tokens. Prints the median time of each and the ratio. The two give the same bits
 * (tests/backend/test_family_batch.c).
 * Usage: build/bench/bench_moe MODEL_DIR [threads] [sequences] [prefill] [steps] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timing.h"
#include "forge.h"

enum { MAXSEQ = 256, BLOCKS = 3 }; /* 48 positions per sequence */

static int32_t g_tables[MAXSEQ][BLOCKS];
static const int32_t *g_tp[MAXSEQ];
static int32_t g_nb[MAXSEQ];

static int run(forge_context *ctx, int n, const int32_t *tok, const int32_t *pos, const int32_t *seq, int nseq) {
    int32_t row = n - 1;
    forge_batch b = {.n_tokens = n, .tokens = tok, .positions = pos, .seq = seq, .n_seqs = nseq, .block_tables = g_tp,
                     .n_blocks = g_nb, .n_logits = 1, .logit_rows = &row};
    forge_error err;
    if (forge_context_decode(ctx, &b, &err) != FORGE_OK) {
        fprintf(stderr, "bench_moe: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_moe MODEL_DIR [threads] [sequences] [prefill] [steps]\n");
        return 2;
    }
    int nt = argc > 2 ? atoi(argv[2]) : 2, nseq = argc > 3 ? atoi(argv[3]) : 16, pre = argc > 4 ? atoi(argv[4]) : 32,
        steps = argc > 5 ? atoi(argv[5]) : 5;
    if (nseq < 1 || nseq > MAXSEQ || pre < 1 || pre > 16 * BLOCKS || steps < 1) {
        fprintf(stderr, "bench_moe: sequences 1..%d, prefill 1..%d, steps >= 1\n", MAXSEQ, 16 * BLOCKS);
        return 2;
    }
    forge_error err;
    forge_model_params mp = forge_model_default_params();
    mp.n_threads = nt;
    forge_model *m = forge_model_open(argv[1], &mp, &err);
    if (!m) {
        fprintf(stderr, "bench_moe: %s\n", err.msg);
        return 1;
    }
    for (int s = 0; s < MAXSEQ; s++) {
        for (int i = 0; i < BLOCKS; i++) g_tables[s][i] = s * BLOCKS + i;
        g_tp[s] = g_tables[s];
        g_nb[s] = BLOCKS;
    }
    forge_context_params cp = {.n_kv_blocks = MAXSEQ * BLOCKS, .max_batch_tokens = nseq > pre ? nseq : pre,
                               .max_logit_rows = 1, .kv_dtype = FORGE_DTYPE_F32, .n_threads = nt};
    forge_context *ctx[2];
    const char *names[2] = {"grouped", "ungrouped"};
    for (int u = 0; u < 2; u++) {
        setenv("FORGE_MOE_UNGROUPED", u ? "1" : "0", 1);
        ctx[u] = forge_context_create(m, &cp, &err);
        if (!ctx[u]) {
            fprintf(stderr, "bench_moe: %s\n", err.msg);
            return 1;
        }
    }
    int V = forge_model_get_info(m)->vocab_size;
    static int32_t tok[MAXSEQ], pos[MAXSEQ], seq[MAXSEQ], ptok[16 * BLOCKS], ppos[16 * BLOCKS], pseq[16 * BLOCKS];
    for (int i = 0; i < pre; i++) {
        ptok[i] = (int32_t)(1 + (i * 7919) % (V - 1));
        ppos[i] = i;
        pseq[i] = 0;
    }
    double *dt[2][2];
    for (int u = 0; u < 2; u++)
        for (int k = 0; k < 2; k++) dt[u][k] = calloc((size_t)steps, sizeof(double));
    for (int st = 0; st < steps; st++)
        for (int u = 0; u < 2; u++) {
            /* decode: every sequence one token at position st (its own earlier steps are its context) */
            for (int s = 0; s < nseq; s++) {
                tok[s] = (int32_t)(1 + (s * 131 + st * 17) % (V - 1));
                pos[s] = st;
                seq[s] = s;
            }
            uint64_t t0 = time_ns();
            if (run(ctx[u], nseq, tok, pos, seq, nseq)) return 1;
            uint64_t t1 = time_ns();
            if (run(ctx[u], pre, ptok, ppos, pseq, 1)) return 1;
            uint64_t t2 = time_ns();
            dt[u][0][st] = (double)(t1 - t0) * 1e-9;
            dt[u][1][st] = (double)(t2 - t1) * 1e-9;
        }
    double med[2][2];
    for (int u = 0; u < 2; u++)
        for (int k = 0; k < 2; k++) {
            qsort(dt[u][k], (size_t)steps, sizeof(double), cmp_d);
            med[u][k] = dt[u][k][steps / 2];
        }
    printf("bench_moe: %s, %d threads, %d steps (median; a shared machine: noisy)\n", argv[1], nt, steps);
    for (int u = 0; u < 2; u++)
        printf("  %-9s decode of %d sequences %8.1f ms (%6.1f tok/s)   prefill %d tokens %8.1f ms (%6.1f tok/s)\n",
               names[u], nseq, med[u][0] * 1e3, nseq / med[u][0], pre, med[u][1] * 1e3, pre / med[u][1]);
    printf("  grouped / ungrouped speed: decode %.2fx, prefill %.2fx\n", med[1][0] / med[0][0], med[1][1] / med[0][1]);
    for (int u = 0; u < 2; u++) {
        forge_context_free(ctx[u]);
        for (int k = 0; k < 2; k++) free(dt[u][k]);
    }
    forge_model_close(m);
    return 0;
}
