/* measure.c: the machine's read bandwidth and FMA peak, for benchmark rooflines. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "base/timing.h"
#include "kernels/kernels.h"

typedef struct {
    const uint64_t *buf;
    size_t words_per_chunk;
    atomic_ullong sink;
    const kernels *k;
    long iters;
    bool bf16;
    double flops[256];
} measure_job;

static void read_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    measure_job *j = ctx;
    const uint64_t *p = j->buf + (size_t)chunk * j->words_per_chunk;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i < j->words_per_chunk; i += 4) {
        a += p[i];
        b ^= p[i + 1];
        c += p[i + 2];
        d ^= p[i + 3];
    }
    atomic_fetch_add(&j->sink, a + b + c + d);
}

double forge_measure_read_bandwidth(int n_threads) {
    if (n_threads <= 0) n_threads = cpu_default_threads();
    size_t bytes = (size_t)512 << 20;
    uint64_t *buf = malloc(bytes);
    tpool *pool = tpool_create(n_threads);
    if (!buf || !pool) {
        free(buf);
        tpool_free(pool);
        return 0;
    }
    memset(buf, 1, bytes);
    measure_job j = {.buf = buf, .words_per_chunk = (1 << 20) / 8};
    int chunks = (int)(bytes >> 20);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = time_ns();
        tpool_run(pool, chunks, read_chunk, &j);
        double bw = (double)bytes / ((double)(time_ns() - t0) * 1e-9);
        if (bw > best) best = bw;
    }
    tpool_free(pool);
    free(buf);
    return best;
}

static void fma_chunk(void *ctx, int chunk, int thread) {
    measure_job *j = ctx;
    j->flops[chunk] = j->bf16 ? j->k->bf16_dot_loop(j->iters) : j->k->fma_loop(j->iters);
    (void)thread;
}

static double peak(int n_threads, bool bf16) {
    if (n_threads <= 0) n_threads = cpu_default_threads();
    if (n_threads > 256) n_threads = 256;
    measure_job j = {.k = kernels_get(), .iters = 20000000, .bf16 = bf16};
    if (bf16 && !j.k->bf16_dot_loop) return 0;
    tpool *pool = tpool_create(n_threads);
    if (!pool) return 0;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        uint64_t t0 = time_ns();
        tpool_run(pool, n_threads, fma_chunk, &j);
        double s = (double)(time_ns() - t0) * 1e-9, f = 0;
        for (int i = 0; i < n_threads; i++) f += j.flops[i];
        if (f / s > best) best = f / s;
    }
    tpool_free(pool);
    return best;
}

double forge_measure_fma_peak(int n_threads) { return peak(n_threads, false); }
double forge_measure_bf16_dot_peak(int n_threads) { return peak(n_threads, true); }

const char *forge_kernels_name(void) { return kernels_get()->name; }
