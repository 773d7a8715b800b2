/* bench_sets: the whole CPU forward with the AVX-512 and the AVX2 kernel sets side by side in
 * one process, step by step interleaved (one context per set), so that a shared, noisy
 * machine disturbs both alike: decode steps at a context, a 512-token prefill, a decode step
 * of 64 sequences. Prints the median time of each and the ratio.
 * Usage: build/bench/bench_sets MODEL_DIR [threads] [ctx] [steps] [decode: decode only] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/timing.h"
#include "forge.h"
#include "kernels/kernels.h"

enum { NSEQ = 64, PROMPT = 512 };

typedef struct {
    forge_context *ctx;
    const char *name;
} side;

static int32_t g_tables[NSEQ][80];
static const int32_t *g_tp[NSEQ];
static int32_t g_nb[NSEQ];

static int run(forge_context *ctx, int n, const int32_t *tok, const int32_t *pos, const int32_t *seq, int n_logits,
               const int32_t *rows) {
    forge_batch b = {.n_tokens = n, .tokens = tok, .positions = pos, .seq = seq, .n_seqs = NSEQ, .block_tables = g_tp,
                     .n_blocks = g_nb, .n_logits = n_logits, .logit_rows = rows};
    forge_error err;
    if (forge_context_decode(ctx, &b, &err) != FORGE_OK) {
        fprintf(stderr, "bench_sets: %s\n", err.msg);
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
        fprintf(stderr, "usage: bench_sets MODEL_DIR [threads] [ctx] [steps]\n");
        return 2;
    }
    int nt = argc > 2 ? atoi(argv[2]) : 2, ctx_len = argc > 3 ? atoi(argv[3]) : 128, steps = argc > 4 ? atoi(argv[4]) : 32;
    if (!cpu_detect().avx512) {
        fprintf(stderr, "bench_sets: this CPU has no AVX-512\n");
        return 0;
    }
    forge_error err;
    forge_model *m = forge_model_open(argv[1], &(forge_model_params){.n_threads = nt}, &err);
    if (!m) {
        fprintf(stderr, "bench_sets: %s\n", err.msg);
        return 1;
    }
    int V = forge_model_get_info(m)->vocab_size;
    int bps = (ctx_len + steps + PROMPT) / FORGE_KV_BLOCK_TOKENS + 2;
    if (bps > 80) bps = 80;
    for (int s = 0; s < NSEQ; s++) {
        for (int i = 0; i < bps; i++) g_tables[s][i] = s * bps + i;
        g_tp[s] = g_tables[s];
        g_nb[s] = bps;
    }
    side sd[2] = {{.name = "avx512"}, {.name = "avx2"}};
    cpu_features real = cpu_detect();
    for (int i = 0; i < 2; i++) {
        cpu_set(i == 0 ? real : (cpu_features){.avx2 = true});
        sd[i].ctx = forge_context_create(m, &(forge_context_params){.n_kv_blocks = NSEQ * bps, .max_batch_tokens = PROMPT > NSEQ ? PROMPT : NSEQ,
                                                                     .max_logit_rows = NSEQ, .kv_dtype = FORGE_DTYPE_AUTO, .n_threads = nt}, &err);
        if (!sd[i].ctx) {
            fprintf(stderr, "bench_sets: %s\n", err.msg);
            return 1;
        }
    }
    cpu_set(real);
    static int32_t tok[PROMPT], pos[PROMPT], seq[PROMPT], rows[NSEQ];
    for (int i = 0; i < PROMPT; i++) tok[i] = (int32_t)((i * 7919 + 13) % V);
    /* decode of sequence 0 at ctx_len: prefill, then steps interleaved */
    double *t[2];
    t[0] = malloc(sizeof(double) * (size_t)steps * 4), t[1] = malloc(sizeof(double) * (size_t)steps * 4);
    for (int i = 0; i < 2; i++) {
        for (int at = 0; at < ctx_len; at += PROMPT) {
            int n = ctx_len - at < PROMPT ? ctx_len - at : PROMPT;
            for (int k = 0; k < n; k++) pos[k] = at + k, seq[k] = 0;
            rows[0] = n - 1;
            if (run(sd[i].ctx, n, tok, pos, seq, 1, rows)) return 1;
        }
    }
    for (int s = 0; s < steps; s++)
        for (int i = 0; i < 2; i++) {
            pos[0] = ctx_len + s, seq[0] = 0, rows[0] = 0;
            uint64_t t0 = time_ns();
            if (run(sd[i].ctx, 1, tok + s, pos, seq, 1, rows)) return 1;
            t[i][s] = (time_ns() - t0) * 1e-9;
        }
    double med[2];
    for (int i = 0; i < 2; i++) qsort(t[i], (size_t)steps, sizeof(double), cmp_d), med[i] = t[i][steps / 2];
    printf("decode 1 seq, ctx %d:   avx512 %7.1f tok/s  avx2 %7.1f tok/s  avx512/avx2 %.2fx (median of %d steps)\n", ctx_len,
           1 / med[0], 1 / med[1], med[1] / med[0], steps);
    if (argc > 5 && !strcmp(argv[5], "decode")) goto done;
    /* prefill 512 (sequence 1), 3 times each, interleaved; best */
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < PROMPT; k++) pos[k] = k, seq[k] = 1;
            rows[0] = PROMPT - 1;
            uint64_t t0 = time_ns();
            if (run(sd[i].ctx, PROMPT, tok, pos, seq, 1, rows)) return 1;
            double d = (time_ns() - t0) * 1e-9;
            best[i] = d < best[i] ? d : best[i];
        }
    printf("prefill %d:            avx512 %7.1f tok/s  avx2 %7.1f tok/s  avx512/avx2 %.2fx (best of 3)\n", PROMPT,
           PROMPT / best[0], PROMPT / best[1], best[1] / best[0]);
    /* 64 sequences at 128: prefill each, then decode steps of 64 rows interleaved */
    for (int i = 0; i < 2; i++)
        for (int s = 0; s < NSEQ; s++) {
            for (int k = 0; k < 128; k++) pos[k] = k, seq[k] = s;
            rows[0] = 127;
            if (run(sd[i].ctx, 128, tok, pos, seq, 1, rows)) return 1;
        }
    int bsteps = steps / 4 > 4 ? steps / 4 : 4;
    for (int st = 0; st < bsteps; st++)
        for (int i = 0; i < 2; i++) {
            for (int s = 0; s < NSEQ; s++) pos[s] = 128 + st, seq[s] = s, rows[s] = s;
            uint64_t t0 = time_ns();
            if (run(sd[i].ctx, NSEQ, tok, pos, seq, NSEQ, rows)) return 1;
            t[i][st] = (time_ns() - t0) * 1e-9;
        }
    for (int i = 0; i < 2; i++) qsort(t[i], (size_t)bsteps, sizeof(double), cmp_d), med[i] = t[i][bsteps / 2];
    printf("decode %d seqs, ctx 128: avx512 %7.1f tok/s  avx2 %7.1f tok/s  avx512/avx2 %.2fx (median of %d steps)\n", NSEQ,
           NSEQ / med[0], NSEQ / med[1], med[1] / med[0], bsteps);
done:
    for (int i = 0; i < 2; i++) forge_context_free(sd[i].ctx);
    forge_model_close(m);
    free(t[0]), free(t[1]);
    return 0;
}
