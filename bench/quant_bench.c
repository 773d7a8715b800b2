/* quant_bench: the quantized matmul kernels alone (kernels/quant.h), per type and variant:
 * a 1536 x 576 weight (SmolLM2-135M's gate/up shape) times 1 row (decode) and 64 rows
 * (prefill / batched decode), one thread, best of 7 rounds with the variants alternating.
 * Prints weight GB/s for 1 row and effective GMAC/s for 64 rows; for the types the best
 * kernel set takes as stored (the f32 path's decode tiles, kernels.h quant_direct), also its
 * 1-row GB/s and G weights/s.
 *   build/bench/quant_bench [rows cols] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int rows = argc > 2 ? atoi(argv[1]) : 1536, cols = argc > 2 ? atoi(argv[2]) : 576;
    const int types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q4_K, QT_Q5_K, QT_Q6_K};
    const char *names[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"};
    const quant_kernels *vs[3] = {quant_ref(), quant_avx2(), quant_avx512()};
    int M = 64;
    float *x = malloc((size_t)M * cols * 4), *y = malloc((size_t)M * rows * 4);
    for (int i = 0; i < M * cols; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    printf("%-5s %-11s %12s %14s\n", "type", "variant", "1 row GB/s", "64 rows GMAC/s");
    for (int t = 0; t < 8; t++) {
        if (cols % quant_block_elems(types[t])) continue;
        size_t rb = quant_row_bytes(types[t], cols);
        unsigned char *wd = malloc(rb * rows);
        for (size_t i = 0; i < rb * rows; i++) wd[i] = (unsigned char)rand();
        for (size_t b = 0; b < rb * rows; b += (size_t)quant_block_bytes(types[t])) { /* sane f16 scales */
            uint16_t h = f32_to_f16(0.01f);
            memcpy(wd + b + (types[t] == QT_Q6_K ? 208 : 0), &h, 2);
        }
        mm_weight w = {.data = wd, .dtype = FORGE_DTYPE_BF16, .qtype = types[t], .rows = rows, .cols = cols};
        void *scratch = malloc(mm_pack_floats(&w) * 4);
        double best1[3] = {1e9, 1e9, 1e9}, best64[3] = {1e9, 1e9, 1e9}, bestd = 1e9, bestf64 = 1e9;
        double bestr1 = 1e9, bestr64 = 1e9;
        const kernels *kd = kernels_get();
        const quant_kernels *qb = quant_get();
        int direct = kd->quant_direct >> types[t] & 1u;
        size_t pb = quant_r16_bytes(types[t], rows, cols);
        void *pk = NULL;
        if (pb && qb->matmul_r16 && (qb->r16_types >> types[t] & 1u)) {
            pk = malloc(pb);
            quant_r16_pack(types[t], wd, rows, cols, 0, (rows + QR16 - 1) / QR16, pk);
        }
        mm_weight wp = w;
        wp.r16 = pk;
        for (int round = 0; round < 7; round++) {
            for (int v = 0; v < 3; v++) {
                if (!vs[v]) continue;
                double t0 = now();
                for (int k = 0; k < 20; k++) quant_matmul(vs[v], x, cols, 1, &w, 0, rows, y, rows, scratch);
                double t1 = now();
                quant_matmul(vs[v], x, cols, M, &w, 0, rows, y, rows, scratch);
                double t2 = now();
                if ((t1 - t0) / 20 < best1[v]) best1[v] = (t1 - t0) / 20;
                if (t2 - t1 < best64[v]) best64[v] = t2 - t1;
            }
            if (direct) {
                double t3 = now();
                for (int k = 0; k < 20; k++) kd->matmul(x, cols, 1, &w, 0, rows, y, rows, NULL);
                double t4 = (now() - t3) / 20;
                if (t4 < bestd) bestd = t4;
                t3 = now();
                quant_matmul_f32(kd, qb, x, cols, M, &w, 0, rows, y, rows, scratch);
                t4 = now() - t3;
                if (t4 < bestf64) bestf64 = t4;
            }
            if (pk) {
                double t5 = now();
                for (int k = 0; k < 20; k++) qb->matmul_r16(x, cols, 1, &wp, 0, rows, y, rows, scratch);
                double t6 = now();
                qb->matmul_r16(x, cols, M, &wp, 0, rows, y, rows, scratch);
                double t7 = now();
                if ((t6 - t5) / 20 < bestr1) bestr1 = (t6 - t5) / 20;
                if (t7 - t6 < bestr64) bestr64 = t7 - t6;
            }
        }
        for (int v = 0; v < 3; v++)
            if (vs[v])
                printf("%-5s %-11s %12.2f %14.2f\n", names[t], vs[v]->name, (double)rb * rows / best1[v] * 1e-9,
                       (double)M * rows * cols / best64[v] * 1e-9);
        if (direct)
            printf("%-5s %-11s %12.2f   (%.2f G weights/s, f32-path decode tile)\n", names[t], kd->name,
                   (double)rb * rows / bestd * 1e-9, (double)rows * cols / bestd * 1e-9);
        if (direct)
            printf("%-5s %-11s %12s %14.2f   (f32 path: panels dequantized, f32 GEMM)\n", names[t], kd->name, "",
                   (double)M * rows * cols / bestf64 * 1e-9);
        if (pk)
            printf("%-5s %-11s %12.2f %14.2f   (r16 copy, %.2f G weights/s)\n", names[t], "r16", (double)rb * rows / bestr1 * 1e-9,
                   (double)M * rows * cols / bestr64 * 1e-9, (double)rows * cols / bestr1 * 1e-9);
        free(pk);
        free(wd);
        free(scratch);
    }
    free(x);
    free(y);
    return 0;
}
