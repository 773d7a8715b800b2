/* Kernels: every SIMD set this machine can run (AVX2, AVX-512, NEON) against the scalar reference
 * on random data with edge shapes, and the batch invariance of matmul per set (a row's result
 * does not depend on the rows or columns computed beside it). */
#include <stdint.h>

#include "base/cpu.h"
#include "kernels/kernels.h"
#include "test.h"

/* the SIMD sets this build and CPU have, whatever FORGE_CPU says */
static const kernels *g_sets[4];
static int g_n_sets;

static void find_sets(void) {
    cpu_features f = cpu_detect();
    if (f.avx2 && kernels_avx2()) g_sets[g_n_sets++] = kernels_avx2();
    if (f.avx512 && kernels_avx512()) g_sets[g_n_sets++] = kernels_avx512();
    if (f.neon && kernels_neon()) g_sets[g_n_sets++] = kernels_neon();
    printf("    sets: scalar");
    for (int i = 0; i < g_n_sets; i++) printf(" %s", g_sets[i]->name);
    printf("\n");
}

static int all_finite(const float *y, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return 0;
    return 1;
}

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = t_randf() * scale;
}

/* random weights stored as dt */
static void *make_weights(forge_dtype dt, int rows, int cols, float *as_f32) {
    size_t n = (size_t)rows * cols;
    void *w = malloc(n * dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        float f = t_randf() * 0.5f;
        if (dt == FORGE_DTYPE_F32) ((float *)w)[i] = f;
        else if (dt == FORGE_DTYPE_BF16) ((uint16_t *)w)[i] = f32_to_bf16(f);
        else ((uint16_t *)w)[i] = f32_to_f16(f);
    }
    kernels_ref()->to_f32(as_f32, w, dt, (int)n);
    return w;
}

static void check_matmul(const kernels *k) {
    const forge_dtype dts[] = {FORGE_DTYPE_F32, FORGE_DTYPE_BF16, FORGE_DTYPE_F16};
    /* K: below, at and around the 8/16/32-element steps and odd; N: odd, 1 */
    const int Ks[] = {1, 8, 13, 15, 16, 17, 31, 33, 64, 172, 576, 1000, 4100}; /* 4100: K blocks (AVX-512) */
    const int Ms[] = {1, 2, 3, 4, 5, 7, 9, 17, 33};
    for (size_t di = 0; di < 3; di++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
            for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
                int K = Ks[ki], M = Ms[mi], N = (ki + mi) % 4 == 3 ? 1 : 37;
                float *wf = malloc((size_t)N * K * 4), *x = malloc((size_t)M * K * 4), bias[37];
                void *w = make_weights(dts[di], N, K, wf);
                fill(x, (size_t)M * K, 1.0f);
                fill(bias, 37, 1.0f);
                mm_weight mw = {.data = w, .dtype = dts[di], .rows = N, .cols = K, .bias = mi % 2 ? bias : NULL};
                float *y0 = malloc((size_t)M * N * 4), *y1 = malloc((size_t)M * N * 4);
                float *pack = malloc(mm_pack_floats(&mw) * 4);
                kernels_ref()->matmul(x, K, M, &mw, 0, N, y0, N, pack);
                k->matmul(x, K, M, &mw, 0, N, y1, N, pack);
                double worst = 0;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double mag = 1e-3; /* sum of |x w| bounds the rounding error */
                        for (int kk = 0; kk < K; kk++) mag += fabs((double)x[i * K + kk] * wf[j * K + kk]);
                        double e = fabs((double)y0[i * N + j] - y1[i * N + j]) / mag;
                        if (e > worst) worst = e;
                    }
                CHECKF(worst < 1e-6, "%s dtype %s K=%d M=%d N=%d: relative error %g", k->name, dtype_name(dts[di]), K, M, N, worst);
                CHECKF(all_finite(y1, (size_t)M * N), "%s dtype %s K=%d M=%d: not finite", k->name, dtype_name(dts[di]), K, M);
                /* without pack scratch (16-bit weights then go unpacked): the same bits */
                float *y2 = malloc((size_t)M * N * 4);
                k->matmul(x, K, M, &mw, 0, N, y2, N, NULL);
                CHECKF(!memcmp(y1, y2, (size_t)M * N * 4), "%s dtype %s K=%d M=%d: packed and direct differ", k->name,
                       dtype_name(dts[di]), K, M);
                free(wf), free(x), free(w), free(y0), free(y1), free(y2), free(pack);
            }
}

TEST(matmul_simd_matches_reference) {
    for (int i = 0; i < g_n_sets; i++) check_matmul(g_sets[i]);
}

/* big finite inputs (|x w| sums near 1e30) stay finite; no overflow from the order */
TEST(matmul_finite_from_finite) {
    int K = 77, M = 5, N = 9;
    float *x = malloc((size_t)M * K * 4), *wf = malloc((size_t)N * K * 4), y[45];
    for (int i = 0; i < M * K; i++) x[i] = t_randf() * 1e14f;
    for (int i = 0; i < N * K; i++) wf[i] = t_randf() * 1e14f;
    mm_weight mw = {.data = wf, .dtype = FORGE_DTYPE_F32, .rows = N, .cols = K};
    float *pack = malloc(mm_pack_floats(&mw) * 4);
    for (int i = -1; i < g_n_sets; i++) {
        const kernels *k = i < 0 ? kernels_ref() : g_sets[i];
        k->matmul(x, K, M, &mw, 0, N, y, N, pack);
        CHECKF(all_finite(y, (size_t)M * N), "%s: not finite", k->name);
    }
    free(x), free(wf), free(pack);
}

static void check_invariance(const kernels *k, forge_dtype dt, int K) {
    int N = 45, M = 21;
    float *wf = malloc((size_t)N * K * 4), *x = malloc((size_t)M * K * 4);
    void *w = make_weights(dt, N, K, wf);
    fill(x, (size_t)M * K, 2.0f);
    mm_weight mw = {.data = w, .dtype = dt, .rows = N, .cols = K};
    float *full = malloc((size_t)M * N * 4), *part = malloc((size_t)M * N * 4), *pack = malloc(mm_pack_floats(&mw) * 4);
    k->matmul(x, K, M, &mw, 0, N, full, N, pack);
    int diff = 0;
    /* every row alone, and rows in uneven groups, with uneven column ranges */
    for (int i = 0; i < M; i++) {
        k->matmul(x + (size_t)i * K, K, 1, &mw, 0, N, part + (size_t)i * N, N, pack);
        diff += memcmp(part + (size_t)i * N, full + (size_t)i * N, (size_t)N * 4) != 0;
    }
    memset(part, 0, (size_t)M * N * 4);
    for (int i0 = 0, step = 1; i0 < M; i0 += step, step = step % 6 + 1) {
        int m = M - i0 < step ? M - i0 : step;
        for (int j0 = 0, cs = 5; j0 < N; j0 += cs, cs = cs % 13 + 2) {
            int j1 = j0 + cs > N ? N : j0 + cs;
            k->matmul(x + (size_t)i0 * K, K, m, &mw, j0, j1, part + (size_t)i0 * N, N, pack);
        }
    }
    diff += memcmp(part, full, (size_t)M * N * 4) != 0;
    CHECKF(diff == 0, "%s %s K=%d: results depend on the batch shape", k->name, dtype_name(dt), K);
    free(wf), free(x), free(w), free(full), free(part), free(pack);
}

TEST(matmul_batch_invariance) {
    const forge_dtype dts[] = {FORGE_DTYPE_F32, FORGE_DTYPE_BF16, FORGE_DTYPE_F16};
    for (int d = 0; d < 3; d++) {
        check_invariance(kernels_ref(), dts[d], 200);
        for (int i = 0; i < g_n_sets; i++) {
            check_invariance(g_sets[i], dts[d], 200);
            check_invariance(g_sets[i], dts[d], 4100); /* several K blocks in the packed path */
        }
    }
}

/* k: a SIMD set, or NULL for the reference alone */
static void conversions_for(const kernels *k) {
    /* every f16 value: the reference decoder equals F16C's */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t v = (uint16_t)h;
        float a = f16_to_f32(v), b;
        if (k) k->to_f32(&b, &v, FORGE_DTYPE_F16, 1);
        else b = a;
        if (memcmp(&a, &b, 4) && !(a != a && b != b)) bad++;
        /* round trip */
        if (a == a && f32_to_f16(a) != v && !(v == 0x8000 || v == 0)) bad++;
    }
    CHECKF(bad == 0, "%d f16 values convert differently", bad);
    /* bf16 rounding: to nearest, ties to even */
    CHECK(f32_to_bf16(1.0f) == 0x3f80);
    union { uint32_t u; float f; } t = {.u = 0x3f808000}; /* exactly halfway, even below */
    CHECK(f32_to_bf16(t.f) == 0x3f80);
    t.u = 0x3f818000; /* halfway, odd below: rounds up */
    CHECK(f32_to_bf16(t.f) == 0x3f82);
    t.u = 0x3f808001;
    CHECK(f32_to_bf16(t.f) == 0x3f81);
    CHECK(f32_to_f16(65504.0f) == 0x7bff && f32_to_f16(1e6f) == 0x7c00 && f32_to_f16(5.96e-8f) == 0x0001);
    if (k) {
        float in[37];
        uint16_t a[37], b[37];
        fill(in, 37, 100.0f);
        kernels_ref()->from_f32(a, FORGE_DTYPE_BF16, in, 37);
        k->from_f32(b, FORGE_DTYPE_BF16, in, 37);
        CHECK(!memcmp(a, b, sizeof a));
        kernels_ref()->from_f32(a, FORGE_DTYPE_F16, in, 37);
        k->from_f32(b, FORGE_DTYPE_F16, in, 37);
        CHECK(!memcmp(a, b, sizeof a));
    }
}

TEST(conversions) {
    if (!g_n_sets) conversions_for(NULL);
    for (int i = 0; i < g_n_sets; i++) conversions_for(g_sets[i]);
}

static void elementwise_for(const kernels *k) {
    for (int n = 1; n < 100; n += 7) {
        float x[100], w[100], a[100], b[100], u[100];
        fill(x, (size_t)n, 3.0f);
        fill(w, (size_t)n, 1.0f);
        fill(u, (size_t)n, 1.0f);
        kernels_ref()->rmsnorm(a, x, w, n, 1e-5f);
        k->rmsnorm(b, x, w, n, 1e-5f);
        for (int i = 0; i < n; i++) CHECKF(fabsf(a[i] - b[i]) <= 1e-5f * (fabsf(a[i]) + 1e-3f), "rmsnorm n=%d i=%d", n, i);
        for (int i = 0; i < n; i++) x[i] *= 10; /* silu over [-30, 30] */
        kernels_ref()->swiglu(a, x, u, n);
        k->swiglu(b, x, u, n);
        for (int i = 0; i < n; i++) CHECKF(fabsf(a[i] - b[i]) <= 2e-6f * (fabsf(a[i]) + 1e-6f), "swiglu n=%d i=%d: %g vs %g", n, i, a[i], b[i]);
        CHECK(kernels_ref()->max(x, n) == k->max(x, n));
        float m = k->max(x, n);
        float s0 = kernels_ref()->sum_exp(x, n, m), s1 = k->sum_exp(x, n, m);
        CHECKF(fabsf(s0 - s1) <= 1e-5f * s0, "sum_exp n=%d: %g vs %g", n, s0, s1);
        kernels_ref()->exp_shift(a, x, n, m);
        k->exp_shift(b, x, n, m);
        for (int i = 0; i < n; i++) CHECKF(fabsf(a[i] - b[i]) <= 3e-7f * a[i] + 1e-38f, "exp_shift n=%d i=%d", n, i);
    }
    /* exp over its whole range */
    float xs[8] = {-100.f, -87.f, -10.5f, -1e-3f, 0.f, 1.f, 30.f, 88.f}, ones[8];
    for (int i = 0; i < 8; i++) ones[i] = 1;
    for (int i = 0; i < 8; i++) {
        float e0 = kernels_ref()->sum_exp(xs + i, 1, 0), e1 = k->sum_exp(xs + i, 1, 0);
        CHECKF(fabsf(e0 - e1) <= 3e-7f * e0 || (xs[i] < -87.5f && e1 < 1e-37f), "exp(%g): %g vs %g", xs[i], e0, e1);
    }
    (void)ones;
    /* finite in, finite out: silu of large |g|, exp of very negative shifts */
    float g[40], u[40], o[40];
    for (int i = 0; i < 40; i++) {
        g[i] = (i % 2 ? -1 : 1) * powf(10.0f, (float)(i % 20) - 2);
        u[i] = 1;
    }
    k->swiglu(o, g, u, 40);
    CHECKF(all_finite(o, 40), "%s swiglu: not finite", k->name);
    k->exp_shift(o, g, 40, 1e19f);
    CHECKF(all_finite(o, 40), "%s exp_shift: not finite", k->name);
    CHECKF(isfinite(k->sum_exp(g, 40, 1e19f)), "%s sum_exp: not finite", k->name);
    float r[40];
    k->rmsnorm(r, g, u, 40, 1e-5f);
    CHECKF(all_finite(r, 40), "%s rmsnorm: not finite", k->name);
}

TEST(elementwise_simd_matches_reference) {
    for (int i = 0; i < g_n_sets; i++) elementwise_for(g_sets[i]);
}

static void check_attention_cap(const kernels *k, forge_dtype kvdt, int hd, int rep, int n_kv, int first, int last, float cap) {
    const int B = FORGE_KV_BLOCK_TOKENS, n_blocks = last / B + 1, pool_blocks = n_blocks + 3;
    size_t block_elems = (size_t)n_kv * B * hd, esz = dtype_size(kvdt);
    float *kf = malloc(pool_blocks * block_elems * 4), *vf = malloc(pool_blocks * block_elems * 4);
    fill(kf, pool_blocks * block_elems, 2.0f);
    fill(vf, pool_blocks * block_elems, 1.0f);
    void *kc = malloc(pool_blocks * block_elems * esz), *vc = malloc(pool_blocks * block_elems * esz);
    kernels_ref()->from_f32(kc, kvdt, kf, (int)(pool_blocks * block_elems));
    kernels_ref()->from_f32(vc, kvdt, vf, (int)(pool_blocks * block_elems));
    int32_t table[64];
    for (int i = 0; i < n_blocks; i++) table[i] = (i * 7 + 2) % pool_blocks; /* scattered blocks */
    float q[32 * 128], o0[32 * 128], o1[32 * 128];
    fill(q, (size_t)rep * hd, 1.0f);
    for (int g = 0; g < n_kv; g++) {
        attn_args a = {.q = q, .n_rep = rep, .head_dim = hd, .k_cache = kc, .v_cache = vc, .kv_dtype = kvdt,
                       .n_kv_heads = n_kv, .kv_head = g, .blocks = table, .first = first, .last = last,
                       .scale = 1.0f / sqrtf((float)hd), .softcap = cap, .out = o0};
        kernels_ref()->attention(&a);
        a.out = o1;
        k->attention(&a);
        double worst = 0;
        for (int i = 0; i < rep * hd; i++) {
            double e = fabs((double)o0[i] - o1[i]);
            if (e > worst) worst = e;
        }
        CHECKF(worst < 2e-5 && all_finite(o1, (size_t)rep * hd), "%s attention %s hd=%d rep=%d [%d,%d] cap %g: max diff %g", k->name, dtype_name(kvdt), hd, rep, first, last, cap, worst);
    }
    free(kf), free(vf), free(kc), free(vc);
}

static void check_attention(const kernels *k, forge_dtype kvdt, int hd, int rep, int n_kv, int first, int last) {
    check_attention_cap(k, kvdt, hd, rep, n_kv, first, last, 0);
}

TEST(attention_simd_matches_reference) {
    for (int i = 0; i < g_n_sets; i++) {
        const kernels *k = g_sets[i];
        check_attention(k, FORGE_DTYPE_F32, 64, 3, 3, 0, 0);
        check_attention(k, FORGE_DTYPE_F32, 64, 3, 3, 0, 100);
        check_attention(k, FORGE_DTYPE_F32, 8, 2, 4, 5, 37);   /* window start mid-block */
        check_attention(k, FORGE_DTYPE_BF16, 128, 8, 2, 0, 300);
        check_attention(k, FORGE_DTYPE_BF16, 12, 1, 1, 17, 17); /* head_dim not a multiple of 8 */
        check_attention(k, FORGE_DTYPE_F32, 16, 32, 1, 250, 511);
        check_attention(k, FORGE_DTYPE_BF16, 64, 3, 3, 0, 1023); /* decode at context 1024 */
        /* Gemma 2's soft-capped scores (a small cap, so it bites on these scores) */
        check_attention_cap(k, FORGE_DTYPE_F32, 64, 3, 3, 0, 100, 0.5f);
        check_attention_cap(k, FORGE_DTYPE_BF16, 12, 2, 1, 7, 40, 1.0f);
        check_attention_cap(k, FORGE_DTYPE_F32, 256, 2, 2, 0, 33, 50.0f);
    }
}

TEST(rope_rotates_halves) {
    /* rotate-half: (a, b) -> (a cos - b sin, b cos + a sin) pairs i and i + d/2 */
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, c[4] = {1, 0, 0.5f, -1}, s[4] = {0, 1, 0.5f, 0};
    rope_apply(x, 1, 8, c, s);
    float want[8] = {1, 2 * 0 - 6 * 1, 3 * 0.5f - 7 * 0.5f, -4, 5, 6 * 0 + 2 * 1, 7 * 0.5f + 3 * 0.5f, -8};
    for (int i = 0; i < 8; i++) CHECKF(x[i] == want[i], "x[%d] = %g, want %g", i, x[i], want[i]);
}

int main(void) {
    find_sets();
    RUN(matmul_simd_matches_reference);
    RUN(matmul_finite_from_finite);
    RUN(matmul_batch_invariance);
    RUN(conversions);
    RUN(elementwise_simd_matches_reference);
    RUN(attention_simd_matches_reference);
    RUN(rope_rotates_halves);
    return t_summary();
}
