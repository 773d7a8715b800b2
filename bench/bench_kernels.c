/* bench_kernels: speed of the matmul kernel alone, for tuning: GEMV (decode) in GB/s of
 * weights read and GEMM (prefill) in GFLOP/s, with 1 and N threads split by outputs as the
 * CPU backend splits them. Usage: build/bench/bench_kernels [threads] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "base/timing.h"
#include "kernels/kernels.h"

typedef struct {
    const kernels *k;
    const float *x;
    int m, K, chunk;
    mm_weight w;
    float *y, *pack;
    size_t pack_floats;
} job;

static void run_chunk(void *ctx, int c, int thread) {
    job *j = ctx;
    int j0 = c * j->chunk, j1 = j0 + j->chunk > j->w.rows ? j->w.rows : j0 + j->chunk;
    j->k->matmul(j->x, j->K, j->m, &j->w, j0, j1, j->y, j->w.rows, j->pack + (size_t)thread * j->pack_floats);
}

static double run(tpool *p, job *j, int reps) {
    int chunks = (j->w.rows + j->chunk - 1) / j->chunk;
    tpool_run(p, chunks, run_chunk, j); /* warm */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = time_ns();
        tpool_run(p, chunks, run_chunk, j);
        double s = (time_ns() - t0) * 1e-9;
        best = s < best ? s : best;
    }
    return best;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : cpu_default_threads();
    const kernels *k = kernels_get();
    printf("kernels %s, %d threads\n", k->name, nt);
    int N = 49152, K = 576;
    uint16_t *w = malloc((size_t)N * K * 2);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = f32_to_bf16((float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f);
    int M = 512;
    float *x = malloc((size_t)M * K * 4), *y = malloc((size_t)M * N * 4);
    for (int i = 0; i < M * K; i++) x[i] = (float)(i % 17) / 17.0f;
    for (int threads = 1; threads <= nt; threads += nt > 1 ? nt - 1 : 1) {
        tpool *p = tpool_create(threads);
        job j = {.k = k, .x = x, .m = 1, .K = K, .w = {.data = w, .dtype = FORGE_DTYPE_BF16, .rows = N, .cols = K}, .y = y};
        j.pack_floats = mm_pack_floats(&j.w);
        j.pack = malloc(j.pack_floats * 4 * (size_t)threads);
        j.chunk = 40;
        double s = run(p, &j, 10);
        printf("gemv bf16 %dx%d, %d thr: %.2f ms, %.1f GB/s\n", N, K, threads, s * 1e3, (double)N * K * 2 / s / 1e9);
        j.w.rows = 1536;
        j.m = M;
        j.chunk = mm_panel_rows(K);
        s = run(p, &j, 3);
        printf("gemm bf16 M=%d N=%d K=%d, %d thr: %.2f ms, %.1f GFLOP/s\n", M, j.w.rows, K, threads, s * 1e3,
               2.0 * M * j.w.rows * K / s / 1e9);
        free(j.pack);
        tpool_free(p);
    }
    free(w), free(x), free(y);
    return 0;
}
