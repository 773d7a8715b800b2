/* bench_kernels: speed of the matmul kernel alone, for tuning: GEMV (decode) in GB/s of
 * weights read and GEMM (prefill) in GFLOP/s, split by outputs as the CPU backend splits
 * them, for the SmolLM2-135M and Llama-3.2-1B shapes; each SIMD set this CPU has, alternated
 * round by round (best of the rounds), so their ratio is fair on a shared machine.
 * Usage: build/bench/bench_kernels [threads] [rounds] [dtype: bf16|f16|f32] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
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

typedef struct {
    const char *name;
    int N, K, M;
} shape;

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : cpu_default_threads(), rounds = argc > 2 ? atoi(argv[2]) : 3;
    forge_dtype dt = argc > 3 && !strcmp(argv[3], "f32") ? FORGE_DTYPE_F32 : argc > 3 && !strcmp(argv[3], "f16") ? FORGE_DTYPE_F16 : FORGE_DTYPE_BF16;
    const kernels *sets[2];
    int ns = 0;
    if (cpu_detect().avx2 && kernels_avx2()) sets[ns++] = kernels_avx2();
    if (cpu_detect().avx512 && kernels_avx512()) sets[ns++] = kernels_avx512();
    if (!ns) sets[ns++] = kernels_ref();
    const shape shapes[] = {
        {"135M gate/up gemv", 1536, 576, 1},  {"135M lm_head gemv", 49152, 576, 1}, {"1B gate/up gemv", 8192, 2048, 1},
        {"1B down gemv", 2048, 8192, 1},      {"135M gate/up M=512", 1536, 576, 512}, {"135M down M=512", 576, 1536, 512},
        {"135M gate/up M=64", 1536, 576, 64}, {"1B gate/up M=512", 8192, 2048, 512}, {"1B down M=512", 2048, 8192, 512},
    };
    int nshape = sizeof shapes / sizeof shapes[0];
    size_t maxw = 0, maxx = 0, maxy = 0;
    for (int s = 0; s < nshape; s++) {
        size_t a = (size_t)shapes[s].N * shapes[s].K, b = (size_t)shapes[s].M * shapes[s].K, c = (size_t)shapes[s].M * shapes[s].N;
        maxw = a > maxw ? a : maxw, maxx = b > maxx ? b : maxx, maxy = c > maxy ? c : maxy;
    }
    size_t esz = dtype_size(dt);
    char *w = malloc(maxw * esz);
    float *tmp = malloc(4096 * 4);
    for (size_t i = 0; i < maxw; i += 4096) {
        size_t n = maxw - i < 4096 ? maxw - i : 4096;
        for (size_t k = 0; k < n; k++) tmp[k] = (float)(((i + k) * 2654435761u) % 1000) / 1000.0f - 0.5f;
        kernels_ref()->from_f32(w + i * esz, dt, tmp, (int)n);
    }
    float *x = malloc(maxx * 4), *y = malloc(maxy * 4);
    for (size_t i = 0; i < maxx; i++) x[i] = (float)(i % 17) / 17.0f;
    tpool *p = tpool_create(nt);
    printf("%d threads, %s weights, best of %d rounds (sets alternated)\n", nt, dtype_name(dt), rounds);
    double best[16][2];
    for (int s = 0; s < nshape; s++) best[s][0] = best[s][1] = 1e30;
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < nshape; s++)
            for (int si = 0; si < ns; si++) {
                const shape *sh = &shapes[s];
                job j = {.k = sets[si], .x = x, .m = sh->M, .K = sh->K, .w = {.data = w, .dtype = dt, .rows = sh->N, .cols = sh->K}, .y = y};
                j.pack_floats = mm_pack_floats(&j.w);
                j.pack = malloc(j.pack_floats * 4 * (size_t)nt);
                if (sh->M < 4) {
                    int cs = (sh->N + nt - 1) / nt;
                    j.chunk = cs < 16 ? 16 : (cs + 3) & ~3;
                } else {
                    j.chunk = mm_panel_rows(sh->K);
                }
                double t = run(p, &j, sh->M < 4 ? 10 : 2);
                if (t < best[s][si]) best[s][si] = t;
                free(j.pack);
            }
    for (int s = 0; s < nshape; s++) {
        const shape *sh = &shapes[s];
        printf("%-22s", sh->name);
        for (int si = 0; si < ns; si++) {
            double t = best[s][si];
            if (sh->M < 4) printf("  %s %7.3f ms %6.1f GB/s", sets[si]->name, t * 1e3, (double)sh->N * sh->K * esz / t / 1e9);
            else printf("  %s %7.3f ms %6.1f GFLOP/s", sets[si]->name, t * 1e3, 2.0 * sh->M * sh->N * sh->K / t / 1e9);
        }
        if (ns == 2) printf("  ratio %.2fx", best[s][0] / best[s][1]);
        printf("\n");
    }
    tpool_free(p);
    free(w), free(x), free(y), free(tmp);
    return 0;
}
