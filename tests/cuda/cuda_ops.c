/* cuda_ops: the cross-backend op test (as ggml's test-backend-ops). Every kernel of the
 * CUDA forward runs on random data and is compared with the CPU's scalar reference
 * (kernels_ref(), rope_apply, and the row steps of cpu_backend.c written out here), with
 * tolerances scaled to what each op may legitimately differ by (summation order, the bf16
 * rounding of cuBLAS inputs). Shapes include odd sizes (K % 8 != 0), head dims 8..256, GQA
 * 1..32, sliding windows, f32/bf16 KV caches, shuffled block tables and padding rows.
 *
 *   cuda_ops [--quick]     (--quick: fewer and smaller shapes, for compute-sanitizer)
 * Exit status 0 when all pass, 1 on a failure, 77 when no GPU can be used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "kernels/kernels.h"
#include "sampling/sampler.h"
#include "test.h"

static const fcuda_api *A;
static bool g_quick;

static float rnd(void) { return (float)((double)(t_rand64() >> 11) / 9007199254740992.0 * 2 - 1); }
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = rnd() * scale;
}

/* A weight of dtype dt with random values; data malloc'd. */
static mm_weight rand_weight(int rows, int cols, forge_dtype dt, float scale) {
    size_t n = (size_t)rows * cols;
    float *f = malloc(n * 4);
    fill(f, n, scale);
    void *data = malloc(n * dtype_size(dt));
    kernels_ref()->from_f32(data, dt, f, (int)n);
    free(f);
    return (mm_weight){.data = data, .dtype = dt, .rows = rows, .cols = cols};
}

static fcuda_weight fw(const mm_weight *w) {
    return (fcuda_weight){.data = w->data, .dtype = w->dtype, .rows = w->rows, .cols = w->cols, .bias = NULL,
                          .qtype = w->qtype};
}

/* |x| . |w| per output: the scale a dot product's rounding error is measured against */
static void abs_dot(const float *x, int M, const mm_weight *w, float *out) {
    size_t n = (size_t)w->rows * w->cols;
    float *wf = malloc(n * 4), *xa = malloc((size_t)M * w->cols * 4);
    kernels_ref()->to_f32(wf, w->data, w->dtype, (int)n);
    for (size_t i = 0; i < n; i++) wf[i] = fabsf(wf[i]);
    for (size_t i = 0; i < (size_t)M * w->cols; i++) xa[i] = fabsf(x[i]);
    for (int m = 0; m < M; m++)
        for (int j = 0; j < w->rows; j++) {
            double s = 0;
            for (int k = 0; k < w->cols; k++) s += (double)xa[(size_t)m * w->cols + k] * wf[(size_t)j * w->cols + k];
            out[(size_t)m * w->rows + j] = (float)s;
        }
    free(wf);
    free(xa);
}

/* Checks |got - want| <= atol + rtol * scale[i] (scale NULL: |want|); reports the worst. */
static void close_enough(const char *what, const float *got, const float *want, const float *scale, size_t n,
                         double atol, double rtol) {
    double worst = 0, worst_err = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double s = scale ? scale[i] : fabs(want[i]);
        double e = fabs((double)got[i] - want[i]), lim = atol + rtol * s;
        if (!(e <= lim) && (worst == 0 || e / lim > worst)) {
            worst = isfinite(e / lim) ? e / lim : 1e300;
            at = i;
        }
        if (e > worst_err || e != e) worst_err = e;
    }
    CHECKF(worst == 0, "%s: element %zu: got %.9g want %.9g (%.1fx the tolerance; max abs err %.3g)", what, at,
           got[at], want[at], worst, worst_err);
    if (worst == 0) printf("    %-48s max abs err %.3g\n", what, worst_err);
}

static float round_to(float v, forge_dtype dt) {
    if (dt == FORGE_DTYPE_BF16) return bf16_to_f32(f32_to_bf16(v));
    if (dt == FORGE_DTYPE_F16) return f16_to_f32(f32_to_f16(v));
    return v;
}

/* ---- matmul ----------------------------------------------------------------------------- */

static void one_matmul(int M, int N, int K, forge_dtype dt) {
    forge_error err;
    mm_weight w = rand_weight(N, K, dt, 1.0f / sqrtf((float)K));
    float *x = malloc((size_t)M * K * 4), *xr = malloc((size_t)M * K * 4), *want = malloc((size_t)M * N * 4);
    float *want_r = malloc((size_t)M * N * 4), *got = malloc((size_t)M * N * 4), *sc = malloc((size_t)M * N * 4);
    fill(x, (size_t)M * K, 1);
    for (size_t i = 0; i < (size_t)M * K; i++) xr[i] = round_to(x[i], dt);
    kernels_ref()->matmul(x, K, M, &w, 0, N, want, N, NULL);
    kernels_ref()->matmul(xr, K, M, &w, 0, N, want_r, N, NULL);
    abs_dot(x, M, &w, sc);
    fcuda_weight cw = fw(&w);
    char name[96];
    /* GEMV: f32 x, the weights as stored: only the summation order differs */
    snprintf(name, sizeof name, "matmul gemv %s M%d N%d K%d", dtype_name(dt), M, N, K);
    CHECKF(!A->op_matmul(x, M, &cw, got, 1, &err), "%s: %s", name, err.msg);
    close_enough(name, got, want, sc, (size_t)M * N, 1e-6, 2e-6);
    /* cuBLAS: x rounded to the weight's type, then exact products, f32 sums */
    snprintf(name, sizeof name, "matmul cublas %s M%d N%d K%d", dtype_name(dt), M, N, K);
    CHECKF(!A->op_matmul(x, M, &cw, got, 2, &err), "%s: %s", name, err.msg);
    close_enough(name, got, want_r, sc, (size_t)M * N, 1e-6, 2e-6);
    snprintf(name, sizeof name, "matmul cublas %s vs f32 x", dtype_name(dt));
    close_enough(name, got, want, sc, (size_t)M * N, 1e-6, dt == FORGE_DTYPE_BF16 ? 1.0 / 256 : 1.0 / 1024);
    free((void *)w.data);
    free(x), free(xr), free(want), free(want_r), free(got), free(sc);
}

TEST(matmul) {
    static const int shapes[][3] = {{1, 64, 64}, {1, 100, 172}, {3, 96, 200}, {8, 256, 576}, {2, 49, 8},
                                    {9, 64, 64}, {16, 130, 256}, {33, 128, 172}, {64, 512, 2048}};
    int n = g_quick ? 5 : (int)(sizeof shapes / sizeof shapes[0]);
    forge_dtype dts[] = {FORGE_DTYPE_F32, FORGE_DTYPE_BF16, FORGE_DTYPE_F16};
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < n; i++) one_matmul(shapes[i][0], shapes[i][1], shapes[i][2], dts[d]);
}

static void ref_swiglu_rows(const float *gu, const float *bg, const float *bu, int M, int I, float *act) {
    float *g = malloc((size_t)I * 4), *u = malloc((size_t)I * 4);
    for (int m = 0; m < M; m++) {
        for (int i = 0; i < I; i++) {
            g[i] = gu[(size_t)m * 2 * I + i] + (bg ? bg[i] : 0);
            u[i] = gu[(size_t)m * 2 * I + I + i] + (bu ? bu[i] : 0);
        }
        kernels_ref()->swiglu(act + (size_t)m * I, g, u, I);
    }
    free(g), free(u);
}

/* One call of the GEMV kernel in mode (0 plain, 1 RMSNorm prologue over gathered rows, 2
 * residual epilogue, 3 SwiGLU prologue + residual epilogue) on cw, against the reference
 * steps done one by one with ref_w (the same values as f32 or as stored). */
static void check_gemv(int mode, int M, const mm_weight *ref_w, const fcuda_weight *cw, bool with_bias,
                       const char *wname, double rtol) {
    forge_error err;
    int N = ref_w->rows, K = ref_w->cols, XR = M + 3;
    int ldx = mode == 3 ? 2 * K : K;
    float *x = malloc((size_t)XR * ldx * 4), *nw = malloc((size_t)K * 4), *bg = malloc((size_t)K * 4);
    float *bu = malloc((size_t)K * 4), *bias = malloc((size_t)N * 4), *y0 = malloc((size_t)M * N * 4);
    float *xin = malloc((size_t)M * K * 4), *want = malloc((size_t)M * N * 4);
    float *got = malloc((size_t)M * N * 4), *sc = malloc((size_t)M * N * 4);
    int32_t *rows = malloc((size_t)M * 4);
    fill(x, (size_t)XR * ldx, 3), fill(nw, K, 1), fill(bg, K, 0.5f), fill(bu, K, 0.5f);
    fill(bias, N, 1), fill(y0, (size_t)M * N, 4);
    for (int m = 0; m < M; m++) rows[m] = (int32_t)(t_rand64() % (uint64_t)XR);
    /* the reference input rows */
    if (mode == 1)
        for (int m = 0; m < M; m++) kernels_ref()->rmsnorm(xin + (size_t)m * K, x + (size_t)rows[m] * K, nw, K, 1e-5f);
    else if (mode == 3)
        ref_swiglu_rows(x, with_bias ? bg : NULL, with_bias ? bu : NULL, M, K, xin);
    else
        memcpy(xin, x, (size_t)M * K * 4);
    kernels_ref()->matmul(xin, K, M, ref_w, 0, N, want, N, NULL);
    abs_dot(xin, M, ref_w, sc);
    for (size_t i = 0; i < (size_t)M * N; i++) {
        if (mode >= 2) {
            float b = with_bias ? bias[i % N] : 0;
            want[i] = y0[i] + (with_bias ? want[i] + b : want[i]);
            sc[i] += fabsf(y0[i]) + fabsf(b);
        }
        got[i] = y0[i];
    }
    CHECKF(!A->op_gemv(mode, x, M, cw, mode == 1 ? rows : NULL, XR, nw, 1e-5f, with_bias ? bg : NULL,
                       with_bias ? bu : NULL, with_bias ? bias : NULL, got, &err),
           "%s", err.msg);
    char name[96];
    snprintf(name, sizeof name, "gemv %s %s M%d N%d K%d%s", mode == 0 ? "plain" : mode == 1 ? "norm" : mode == 2 ? "resid" : "swiglu",
             wname, M, N, K, with_bias ? " bias" : "");
    close_enough(name, got, want, sc, (size_t)M * N, 1e-6, rtol);
    /* batch invariance: each row alone gives the batch's bits */
    if (mode != 1 && M > 1) {
        float *one = malloc((size_t)N * 4);
        int bad = 0;
        for (int m = 0; m < M; m++) {
            memcpy(one, y0 + (size_t)m * N, (size_t)N * 4);
            CHECKF(!A->op_gemv(mode, x + (size_t)m * ldx, 1, cw, NULL, 1, nw, 1e-5f, with_bias ? bg : NULL,
                               with_bias ? bu : NULL, with_bias ? bias : NULL, one, &err),
                   "%s", err.msg);
            bad += memcmp(one, got + (size_t)m * N, (size_t)N * 4) != 0;
        }
        CHECKF(bad == 0, "%s: %d of %d rows alone differ from the batch's", name, bad, M);
        free(one);
    }
    free(x), free(nw), free(bg), free(bu), free(bias), free(y0), free(xin), free(want), free(got), free(sc), free(rows);
}

/* The GEMV kernel's fused modes, against the reference steps done one by one. */
TEST(gemv_fused) {
    static const int shapes[][3] = {{1, 64, 192}, {3, 40, 172}, {8, 96, 512}, {5, 576, 1536}, {12, 33, 64}};
    for (int sh = 0; sh < (g_quick ? 3 : 5); sh++)
        for (int d = 0; d < 3; d++)
            for (int mode = 1; mode <= 3; mode++) {
                int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
                forge_dtype dt = d == 0 ? FORGE_DTYPE_F32 : d == 1 ? FORGE_DTYPE_BF16 : FORGE_DTYPE_F16;
                mm_weight w = rand_weight(N, K, dt, 1.0f / sqrtf((float)K));
                fcuda_weight cw = fw(&w);
                check_gemv(mode, M, &w, &cw, sh % 2 == 0, dtype_name(dt), 4e-6);
                free((void *)w.data);
            }
}

/* ---- quantized weights ------------------------------------------------------------------- */

/* ggml's types with blocks gguf-py made and its f32 values of them (tests/fixtures/quant) */
static const struct {
    const char *name;
    int qtype, elems, bytes;
} QTYPES[] = {{"Q4_0", FCUDA_Q4_0, 32, 18}, {"Q4_1", FCUDA_Q4_1, 32, 20}, {"Q5_0", FCUDA_Q5_0, 32, 22},
              {"Q5_1", FCUDA_Q5_1, 32, 24}, {"Q8_0", FCUDA_Q8_0, 32, 34}, {"Q4_K", FCUDA_Q4_K, 256, 144},
              {"Q5_K", FCUDA_Q5_K, 256, 176}, {"Q6_K", FCUDA_Q6_K, 256, 210}};

typedef struct qpool {
    uint8_t *blocks;
    float *values;
    int n; /* blocks */
} qpool;

static bool qpool_load(int t, qpool *p) {
    char path[128];
    size_t nb = 0, nf = 0;
    snprintf(path, sizeof path, "tests/fixtures/quant/%s.blocks", QTYPES[t].name);
    p->blocks = t_read_file(path, &nb);
    snprintf(path, sizeof path, "tests/fixtures/quant/%s.f32", QTYPES[t].name);
    p->values = t_read_file(path, &nf);
    p->n = (int)(nb / (size_t)QTYPES[t].bytes);
    bool ok = p->blocks && p->values && p->n > 0 && nf == (size_t)p->n * QTYPES[t].elems * 4;
    CHECKF(ok, "missing or inconsistent tests/fixtures/quant/%s.*", QTYPES[t].name);
    return ok;
}

/* An N x K weight of type t made of the pool's blocks in random order: the blocks (qw) and
 * gguf-py's values of them (fw32, an F32 weight). */
static void qweight(int t, const qpool *p, int N, int K, mm_weight *qw, mm_weight *fw32) {
    int per_row = K / QTYPES[t].elems, E = QTYPES[t].elems, B = QTYPES[t].bytes;
    uint8_t *q = malloc((size_t)N * per_row * B);
    float *f = malloc((size_t)N * K * 4);
    for (int n = 0; n < N; n++)
        for (int b = 0; b < per_row; b++) {
            int k = (int)(t_rand64() % (uint64_t)p->n);
            memcpy(q + ((size_t)n * per_row + b) * B, p->blocks + (size_t)k * B, (size_t)B);
            memcpy(f + (size_t)n * K + (size_t)b * E, p->values + (size_t)k * E, (size_t)E * 4);
        }
    *qw = (mm_weight){.data = q, .dtype = FORGE_DTYPE_BF16, .qtype = QTYPES[t].qtype, .rows = N, .cols = K};
    *fw32 = (mm_weight){.data = f, .dtype = FORGE_DTYPE_F32, .rows = N, .cols = K};
}

/* Every quantized type: the embedding gather gives gguf-py's values bit for bit; the GEMV in
 * every mode is within f32 rounding of x . (gguf-py's values)^T, and a row alone gives the
 * batch's bits. */
TEST(quantized) {
    static const int shapes[][3] = {{1, 64, 256}, {3, 40, 512}, {9, 96, 768}, {2, 33, 1536}, {17, 130, 256}};
    forge_error err;
    for (int t = 0; t < (int)(sizeof QTYPES / sizeof QTYPES[0]); t++) {
        qpool p;
        if (!qpool_load(t, &p)) continue;
        /* embedding: rows of 512 values, tokens repeated and out of order */
        mm_weight qe, fe;
        qweight(t, &p, 12, 512, &qe, &fe);
        int32_t tok[7] = {3, 0, 11, 3, 7, 1, 10};
        float *got = malloc(7 * 512 * 4);
        fcuda_weight ce = fw(&qe);
        CHECKF(!A->op_embed(&ce, tok, 7, got, &err), "%s", err.msg);
        int bad = 0;
        for (int r = 0; r < 7; r++) bad += memcmp(got + r * 512, (const float *)fe.data + (size_t)tok[r] * 512, 512 * 4) != 0;
        CHECKF(bad == 0, "embed %s: %d of 7 rows differ from gguf-py's values", QTYPES[t].name, bad);
        if (!bad) printf("    %-48s identical to gguf-py\n", QTYPES[t].name);
        free(got), free((void *)qe.data), free((void *)fe.data);
        for (int sh = 0; sh < (g_quick ? 2 : 5); sh++)
            for (int mode = 0; mode <= 3; mode++) {
                if (g_quick && mode != (sh + t) % 4) continue;
                mm_weight qw, f32w;
                qweight(t, &p, shapes[sh][1], shapes[sh][2], &qw, &f32w);
                fcuda_weight cw = fw(&qw);
                check_gemv(mode, shapes[sh][0], &f32w, &cw, (sh + mode) % 2 == 0, QTYPES[t].name, 4e-6);
                free((void *)qw.data), free((void *)f32w.data);
            }
        free(p.blocks), free(p.values);
    }
    /* a type the kernels do not know, or blocks that do not fill the rows: refused */
    uint8_t blk[64] = {0};
    fcuda_weight bad[2] = {{.data = blk, .dtype = FORGE_DTYPE_BF16, .rows = 1, .cols = 32, .qtype = 9},
                           {.data = blk, .dtype = FORGE_DTYPE_BF16, .rows = 1, .cols = 32, .qtype = FCUDA_Q4_K}};
    float x[32] = {0}, y[1];
    for (int i = 0; i < 2; i++)
        CHECKF(A->op_matmul(x, 1, &bad[i], y, 0, &err) == FORGE_E_UNSUPPORTED && strstr(err.msg, "not supported"),
               "bad weight %d: %s", i, err.msg);
}

/* ---- row ops ---------------------------------------------------------------------------- */

TEST(add_rmsnorm) {
    static const int ns[] = {8, 64, 100, 576, 2048, 4096};
    forge_error err;
    for (int i = 0; i < (g_quick ? 3 : 6); i++)
        for (int variant = 0; variant < 3; variant++) { /* no add; add; add + bias */
            int n = ns[i], rows = 5;
            float *x = malloc((size_t)rows * n * 4), *add = malloc((size_t)rows * n * 4), *bias = malloc((size_t)n * 4);
            float *w = malloc((size_t)n * 4), *xw = malloc((size_t)rows * n * 4), *want = malloc((size_t)rows * n * 4);
            float *got = malloc((size_t)rows * n * 4);
            fill(x, (size_t)rows * n, 4), fill(add, (size_t)rows * n, 2), fill(bias, n, 1), fill(w, n, 1);
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < n; k++) {
                    size_t e = (size_t)r * n + k;
                    xw[e] = variant ? x[e] + (add[e] + (variant == 2 ? bias[k] : 0)) : x[e];
                }
            for (int r = 0; r < rows; r++) kernels_ref()->rmsnorm(want + (size_t)r * n, xw + (size_t)r * n, w, n, 1e-5f);
            CHECKF(!A->op_add_rmsnorm(x, variant ? add : NULL, variant == 2 ? bias : NULL, w, rows, n, 1e-5f, got, &err),
                   "%s", err.msg);
            char name[96];
            snprintf(name, sizeof name, "add_rmsnorm n%d %s", n, variant == 0 ? "" : variant == 1 ? "+add" : "+add+bias");
            CHECKF(!memcmp(x, xw, (size_t)rows * n * 4), "%s: the residual differs", name);
            close_enough(name, got, want, NULL, (size_t)rows * n, 1e-7, 1e-6);
            free(x), free(add), free(bias), free(w), free(xw), free(want), free(got);
        }
}

TEST(swiglu) {
    forge_error err;
    int rows = 7, I = 300;
    float *gu = malloc((size_t)rows * 2 * I * 4), *bg = malloc(I * 4), *bu = malloc(I * 4);
    float *want = malloc((size_t)rows * I * 4), *got = malloc((size_t)rows * I * 4);
    fill(gu, (size_t)rows * 2 * I, 8), fill(bg, I, 1), fill(bu, I, 1);
    for (int b = 0; b < 2; b++) {
        ref_swiglu_rows(gu, b ? bg : NULL, b ? bu : NULL, rows, I, want);
        CHECKF(!A->op_swiglu(gu, b ? bg : NULL, b ? bu : NULL, rows, I, got, &err), "%s", err.msg);
        close_enough(b ? "swiglu +bias" : "swiglu", got, want, NULL, (size_t)rows * I, 1e-7, 2e-6);
    }
    free(gu), free(bg), free(bu), free(want), free(got);
}

TEST(embed) {
    forge_error err;
    forge_dtype dts[] = {FORGE_DTYPE_F32, FORGE_DTYPE_BF16, FORGE_DTYPE_F16};
    int32_t tok[6] = {0, 5, 99, 5, 42, 17};
    for (int d = 0; d < 3; d++) {
        mm_weight e = rand_weight(100, 72, dts[d], 1);
        float *want = malloc(6 * 72 * 4), *got = malloc(6 * 72 * 4);
        for (int r = 0; r < 6; r++)
            kernels_ref()->to_f32(want + r * 72, (const char *)e.data + (size_t)tok[r] * 72 * dtype_size(dts[d]), dts[d], 72);
        fcuda_weight ce = fw(&e);
        CHECKF(!A->op_embed(&ce, tok, 6, got, &err), "%s", err.msg);
        CHECKF(!memcmp(got, want, 6 * 72 * 4), "embed %s differs", dtype_name(dts[d]));
        free((void *)e.data), free(want), free(got);
    }
}

/* The greedy token of each row equals a sequential scan with > (the host's and the
 * sampler's): ties go to the first index, NaNs are skipped unless at index 0, infinities. */
TEST(greedy) {
    enum { R = 12, N = 5000 };
    float *x = malloc((size_t)R * N * 4);
    int32_t got[R];
    fill(x, (size_t)R * N, 10);
    float *r;
    r = x + 1 * N, r[4321] = 50, r[17] = 50, r[4999] = 50;    /* ties: the first */
    r = x + 2 * N, r[0] = NAN, r[9] = 100;                     /* NaN at 0: 0 */
    r = x + 3 * N, r[5] = NAN, r[6] = 100, r[7] = NAN;         /* NaN elsewhere: skipped */
    r = x + 4 * N;
    for (int i = 0; i < N; i++) r[i] = -INFINITY;              /* all -inf: 0 */
    r = x + 5 * N;
    for (int i = 0; i < N; i++) r[i] = NAN;                    /* all NaN: 0 */
    r = x + 6 * N, r[2500] = INFINITY, r[2501] = INFINITY;     /* +inf */
    r = x + 7 * N;
    for (int i = 0; i < N; i++) r[i] = 1;                      /* all equal: 0 */
    r = x + 8 * N, r[N - 1] = 99;                              /* the last */
    r = x + 9 * N;
    for (int i = 1; i < N; i++) r[i] = i % 3 ? NAN : -1;       /* mostly NaN */
    forge_error err;
    for (int n = 1; n <= N; n = n < 64 ? n + 21 : n * 4) { /* short rows too (fewer values than threads) */
        float *y = malloc((size_t)R * n * 4);
        for (int k = 0; k < R; k++) memcpy(y + (size_t)k * n, x + (size_t)k * N + (N - n), (size_t)n * 4);
        CHECKF(!A->op_sample(y, R, n, NULL, got, &err), "%s", err.msg);
        for (int k = 0; k < R; k++) {
            const float *v = y + (size_t)k * n;
            int best = 0;
            for (int i = 1; i < n; i++)
                if (v[i] > v[best]) best = i;
            CHECKF(got[k] == best, "argmax row %d of %d values: %d, the scan finds %d", k, n, got[k], best);
        }
        free(y);
    }
    free(x);
}

/* A plain draw (temperature, min-p, the caller's uniform) equals the CPU sampler's
 * (sampler_draw_plain) on rows of logits like a model's, for temperatures below, at and above
 * 1, with and without min-p, uniforms anywhere in [0, 1) including the ends; rows of one
 * candidate; greedy rows beside them. Only exp differs between the two (an ulp), so a draw
 * could differ only with u that close to a boundary: none of these does. */
TEST(draw) {
    enum { R = 40 };
    static const int ns[] = {1, 70, 2000, 49152};
    forge_error err;
    int total = 0, same = 0;
    for (int k = 0; k < (g_quick ? 3 : 4); k++) {
        int n = ns[k];
        float *x = malloc((size_t)R * n * 4);
        fcuda_row_sample rs[R];
        int32_t got[R], want[R];
        for (int r = 0; r < R; r++) {
            float spread = r % 4 == 0 ? 1 : r % 4 == 1 ? 4 : 12; /* flat to peaked */
            fill(x + (size_t)r * n, n, spread);
            if (r % 7 == 3 && n > 1) x[(size_t)r * n + 1] += 30; /* one dominant token */
            float *row = x + (size_t)r * n;
            if (r == 4) row[0] = NAN; /* the max skips it */
            if (r == 6 && n > 9) row[9] = INFINITY; /* exp(inf - inf): nothing kept with min-p */
            if (r == 8)
                for (int i = 0; i < n; i++) row[i] = NAN;
            if (r == 10 && n > 9) row[9] = INFINITY;
            if (r == 12)
                for (int i = 0; i < n; i++) row[i] = -INFINITY;
            rs[r] = (fcuda_row_sample){.kind = r % 10 == 9 ? FCUDA_ROW_GREEDY : FCUDA_ROW_DRAW,
                                       .temperature = r % 3 == 0 ? 0.7f : r % 3 == 1 ? 1.0f : 1.6f,
                                       .min_p = r % 2 ? 0.f : r % 4 == 0 ? 0.05f : 0.3f, /* rows 4, 6, 8, 10, 12: min-p */
                                       .u = r == 0 ? 0.0 : r == 1 ? 0.9999999999 : (double)(t_rand64() >> 11) * 0x1.0p-53};
        }
        sampler_ws *ws = sampler_ws_create(n);
        for (int r = 0; r < R; r++) {
            const float *row = x + (size_t)r * n;
            if (rs[r].kind == FCUDA_ROW_DRAW) {
                want[r] = sampler_draw_plain(ws, row, rs[r].temperature, rs[r].min_p, rs[r].u);
            } else {
                int best = 0;
                for (int i = 1; i < n; i++)
                    if (row[i] > row[best]) best = i;
                want[r] = best;
            }
        }
        sampler_ws_free(ws);
        CHECKF(!A->op_sample(x, R, n, rs, got, &err), "%s", err.msg);
        for (int r = 0; r < R; r++) {
            bool finite = true;
            for (int i = 0; i < n; i++) finite = finite && isfinite(x[(size_t)r * n + i]);
            if (!finite && rs[r].kind == FCUDA_ROW_DRAW) {
                /* NaN or inf logits (a broken model): the CPU's SIMD exp and max make what they
                 * make of them; the device must still give a token of the vocabulary */
                CHECKF(got[r] >= 0 && got[r] < n, "draw row %d (non-finite logits): token %d of %d", r, got[r], n);
                continue;
            }
            total++;
            same += got[r] == want[r];
            CHECKF(got[r] == want[r], "draw row %d of %d values (t %g, min_p %g, u %.17g): %d, the CPU draws %d", r, n,
                   rs[r].temperature, rs[r].min_p, rs[r].u, got[r], want[r]);
        }
        free(x);
    }
    printf("    %d of %d rows: the CPU sampler's token\n", same, total);
}

/* ---- q/k norm + RoPE + KV store, and attention, over a paged cache -------------------- */

enum { NSEQ = 3, SEQ_BLOCKS = 24, NBLK = NSEQ * SEQ_BLOCKS + 5 };

typedef struct paged {
    int nkv, hd;
    forge_dtype kv;
    int32_t tables[NSEQ * SEQ_BLOCKS]; /* sequence s: tables[s * SEQ_BLOCKS ...], shuffled */
    void *k, *v;
    size_t block_elems;
} paged;

static void paged_init(paged *p, int nkv, int hd, forge_dtype kv) {
    p->nkv = nkv, p->hd = hd, p->kv = kv;
    p->block_elems = (size_t)nkv * FORGE_KV_BLOCK_TOKENS * hd;
    int perm[NBLK];
    for (int i = 0; i < NBLK; i++) perm[i] = i;
    for (int i = NBLK - 1; i > 0; i--) {
        int j = (int)(t_rand64() % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int i = 0; i < NSEQ * SEQ_BLOCKS; i++) p->tables[i] = perm[i];
    size_t n = NBLK * p->block_elems;
    float *f = malloc(n * 4);
    p->k = malloc(n * dtype_size(kv));
    p->v = malloc(n * dtype_size(kv));
    fill(f, n, 1);
    kernels_ref()->from_f32(p->k, kv, f, (int)n);
    fill(f, n, 1);
    kernels_ref()->from_f32(p->v, kv, f, (int)n);
    free(f);
}

static void paged_free(paged *p) { free(p->k), free(p->v); }

static fcuda_op_cache op_cache(paged *p, const int32_t *toff, const int32_t *pos) {
    return (fcuda_op_cache){.n_blocks = NBLK, .n_kv_heads = p->nkv, .head_dim = p->hd, .kv_dtype = p->kv,
                            .k = p->k, .v = p->v, .tables = p->tables, .n_table = NSEQ * SEQ_BLOCKS,
                            .table_off = toff, .positions = pos};
}

/* rows: distinct (sequence, position) pairs, the last one padding when pad */
static void make_rows(int T, bool pad, int32_t *toff, int32_t *pos) {
    for (int r = 0; r < T; r++) {
        int s = r % NSEQ;
        toff[r] = pad && r == T - 1 ? -1 : s * SEQ_BLOCKS;
        /* distinct per row: two rows writing one cache slot would race on the GPU */
        bool dup;
        do {
            pos[r] = (int)(t_rand64() % (SEQ_BLOCKS * FORGE_KV_BLOCK_TOKENS / NSEQ)) * NSEQ + s;
            dup = false;
            for (int i = 0; i < r; i++) dup |= toff[i] == toff[r] && pos[i] == pos[r];
        } while (dup);
    }
}

TEST(qk_rope_store) {
    static const int cfg[][3] = {{4, 2, 8}, {6, 2, 32}, {8, 8, 64}, {32, 8, 64}, {16, 2, 128}, {8, 1, 256}};
    forge_error err;
    for (int c = 0; c < (g_quick ? 3 : 6); c++)
        for (int variant = 0; variant < 4; variant++) { /* bit 0: biases, bit 1: q/k norm; kv dtype alternates */
            int nh = cfg[c][0], nkv = cfg[c][1], hd = cfg[c][2], T = 9, ld = (nh + 2 * nkv) * hd;
            forge_dtype kv = (c + variant) % 2 ? FORGE_DTYPE_BF16 : FORGE_DTYPE_F32;
            paged p;
            paged_init(&p, nkv, hd, kv);
            int32_t toff[9], pos[9];
            make_rows(T, true, toff, pos);
            float *qkv = malloc((size_t)T * ld * 4), *want = malloc((size_t)T * ld * 4);
            float *bq = malloc((size_t)nh * hd * 4), *bk = malloc((size_t)nkv * hd * 4), *bv = malloc((size_t)nkv * hd * 4);
            float *qn = malloc(hd * 4), *kn = malloc(hd * 4);
            double *inv = malloc(hd / 2 * sizeof(double));
            fill(qkv, (size_t)T * ld, 2), fill(bq, (size_t)nh * hd, 0.5f), fill(bk, (size_t)nkv * hd, 0.5f);
            fill(bv, (size_t)nkv * hd, 0.5f), fill(qn, hd, 1), fill(kn, hd, 1);
            for (int i = 0; i < hd / 2; i++) inv[i] = pow(10000.0, -2.0 * i / hd);
            bool bias = variant & 1, norm = variant & 2;
            size_t cb = NBLK * p.block_elems * dtype_size(kv);
            void *k_want = malloc(cb), *v_want = malloc(cb);
            memcpy(k_want, p.k, cb), memcpy(v_want, p.v, cb), memcpy(want, qkv, (size_t)T * ld * 4);
            /* the reference: cpu_backend.c's ROWS_QK_ROPE_STORE */
            float *cs = malloc(hd / 2 * 4), *sn = malloc(hd / 2 * 4);
            for (int t = 0; t < T; t++) {
                float *q = want + (size_t)t * ld, *k = q + nh * hd, *v = k + nkv * hd;
                if (bias) {
                    for (int i = 0; i < nh * hd; i++) q[i] += bq[i];
                    for (int i = 0; i < nkv * hd; i++) k[i] += bk[i], v[i] += bv[i];
                }
                if (norm) {
                    for (int h = 0; h < nh; h++) kernels_ref()->rmsnorm(q + h * hd, q + h * hd, qn, hd, 1e-6f);
                    for (int h = 0; h < nkv; h++) kernels_ref()->rmsnorm(k + h * hd, k + h * hd, kn, hd, 1e-6f);
                }
                for (int i = 0; i < hd / 2; i++) {
                    double ang = (double)pos[t] * inv[i];
                    cs[i] = (float)cos(ang), sn[i] = (float)sin(ang);
                }
                rope_apply(q, nh, hd, cs, sn);
                rope_apply(k, nkv, hd, cs, sn);
                if (toff[t] < 0) continue;
                int blk = p.tables[toff[t] + pos[t] / FORGE_KV_BLOCK_TOKENS];
                size_t slot = (size_t)blk * p.block_elems + (size_t)(pos[t] % FORGE_KV_BLOCK_TOKENS) * hd;
                for (int g = 0; g < nkv; g++) {
                    size_t off = (slot + (size_t)g * FORGE_KV_BLOCK_TOKENS * hd) * dtype_size(kv);
                    kernels_ref()->from_f32((char *)k_want + off, kv, k + g * hd, hd);
                    kernels_ref()->from_f32((char *)v_want + off, kv, v + g * hd, hd);
                }
            }
            fcuda_op_cache oc = op_cache(&p, toff, pos);
            CHECKF(!A->op_qk_rope_store(qkv, T, nh, bias ? bq : NULL, bias ? bk : NULL, bias ? bv : NULL,
                                        norm ? qn : NULL, norm ? kn : NULL, 1e-6f, inv, &oc, &err),
                   "%s", err.msg);
            char name[96];
            snprintf(name, sizeof name, "rope q  h%d/%d d%d%s%s", nh, nkv, hd, bias ? " bias" : "", norm ? " norm" : "");
            for (int t = 0; t < T; t++) /* only q is written back */
                close_enough(name, qkv + (size_t)t * ld, want + (size_t)t * ld, NULL, (size_t)nh * hd, 1e-6, 1e-6);
            size_t n = NBLK * p.block_elems;
            float *kg = malloc(n * 4), *kw = malloc(n * 4);
            kernels_ref()->to_f32(kg, p.k, kv, (int)n), kernels_ref()->to_f32(kw, k_want, kv, (int)n);
            snprintf(name, sizeof name, "rope k cache %s h%d d%d", dtype_name(kv), nkv, hd);
            /* one bf16 step (2^-8 relative) where the f32 values straddle a rounding boundary */
            close_enough(name, kg, kw, NULL, n, 1e-6, kv == FORGE_DTYPE_BF16 ? 1.0 / 128 : 1e-6);
            CHECKF(!memcmp(p.v, v_want, cb), "%s: the V cache differs", name);
            free(kg), free(kw), free(cs), free(sn);
            free(qkv), free(want), free(bq), free(bk), free(bv), free(qn), free(kn), free(inv), free(k_want), free(v_want);
            paged_free(&p);
        }
}

TEST(attention) {
    /* heads, kv heads, head_dim, window */
    static const int cfg[][4] = {{4, 2, 8, 0},   {6, 2, 32, 0}, {8, 8, 64, 0},  {32, 8, 64, 0},
                                 {9, 3, 64, 6},  {16, 2, 128, 0}, {8, 1, 256, 40}, {64, 2, 64, 0}};
    forge_error err;
    for (int c = 0; c < (g_quick ? 4 : 8); c++)
        for (int d = 0; d < 2; d++) {
            int nh = cfg[c][0], nkv = cfg[c][1], hd = cfg[c][2], window = cfg[c][3], T = 11;
            if (nh / nkv > FCUDA_MAX_GQA) continue;
            forge_dtype kv = d ? FORGE_DTYPE_BF16 : FORGE_DTYPE_F32;
            paged p;
            paged_init(&p, nkv, hd, kv);
            int32_t toff[11], pos[11];
            make_rows(T, true, toff, pos);
            pos[0] = 0;                                   /* a single key */
            pos[3] = SEQ_BLOCKS * FORGE_KV_BLOCK_TOKENS - 1; /* the longest: every split used */
            int ldq = nh * hd + 40;                       /* q inside a wider row, as in the qkv buffer */
            float *q = malloc((size_t)T * ldq * 4), *want = calloc((size_t)T * nh * hd, 4);
            float *got = malloc((size_t)T * nh * hd * 4);
            fill(q, (size_t)T * ldq, 1.5f);
            int rep = nh / nkv;
            for (int t = 0; t < T; t++) {
                if (toff[t] < 0) continue;
                int first = window > 0 && pos[t] - window + 1 > 0 ? pos[t] - window + 1 : 0;
                for (int g = 0; g < nkv; g++) {
                    attn_args a = {.q = q + (size_t)t * ldq + (size_t)g * rep * hd, .n_rep = rep, .head_dim = hd,
                                   .k_cache = p.k, .v_cache = p.v, .kv_dtype = kv, .n_kv_heads = nkv, .kv_head = g,
                                   .blocks = p.tables + toff[t], .first = first, .last = pos[t],
                                   .scale = (float)(1.0 / sqrt((double)hd)),
                                   .out = want + (size_t)t * nh * hd + (size_t)g * rep * hd};
                    kernels_ref()->attention(&a);
                }
            }
            fcuda_op_cache oc = op_cache(&p, toff, pos);
            CHECKF(!A->op_attention(q, ldq, T, nh, window, &oc, got, &err), "%s", err.msg);
            char name[96];
            snprintf(name, sizeof name, "attention h%d/%d d%d window %d %s", nh, nkv, hd, window, dtype_name(kv));
            close_enough(name, got, want, NULL, (size_t)T * nh * hd, 2e-6, 2e-5);
            free(q), free(want), free(got);
            paged_free(&p);
        }
}

int main(int argc, char **argv) {
    g_quick = argc > 1 && !strcmp(argv[1], "--quick");
    forge_error err;
    A = cuda_api_get(&err);
    fcuda_device_info info;
    if (!A || A->probe(&info, &err)) {
        printf("cuda_ops: no GPU can be used: %s\n", err.msg);
        return 77;
    }
    printf("cuda_ops: %s (sm_%d%d, %d SMs), driver %d, runtime %d, %s\n", info.name, info.cc_major, info.cc_minor,
           info.n_sm, info.driver_version, info.runtime_version, cuda_lib_path());
    RUN(matmul);
    RUN(gemv_fused);
    RUN(quantized);
    RUN(add_rmsnorm);
    RUN(swiglu);
    RUN(embed);
    RUN(greedy);
    RUN(draw);
    RUN(qk_rope_store);
    RUN(attention);
    return t_summary();
}
