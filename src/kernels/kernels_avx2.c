/* kernels_avx2.c: AVX2 + FMA + F16C kernels (this file alone is compiled with those ISA
 * flags; kernels_get() picks it only when cpu_get() reports them). Each kernel matches the
 * scalar reference in kernels_ref.c within rounding; matmul keeps the canonical reduction
 * order described in kernels.h in every tile shape. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "kernels/kernels.h"

/* ---- loads and reductions ------------------------------------------------------------- */

static inline __attribute__((always_inline)) __m256 ld_w(const void *row, int k, forge_dtype dt) {
    if (dt == FORGE_DTYPE_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + k));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dt == FORGE_DTYPE_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
    return _mm256_loadu_ps((const float *)row + k);
}

static inline float ld_w1(const void *row, int k, forge_dtype dt) {
    uint16_t h;
    if (dt == FORGE_DTYPE_F32) {
        float f;
        memcpy(&f, (const char *)row + 4 * (size_t)k, 4);
        return f;
    }
    memcpy(&h, (const char *)row + 2 * (size_t)k, 2);
    return dt == FORGE_DTYPE_BF16 ? bf16_to_f32(h) : _cvtsh_ss(h);
}

/* ((a0+a1)+(a2+a3)) + ((a4+a5)+(a6+a7)) for a, b, c, d at once */
static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static inline float hsum1(__m256 a) {
    __m256 h = _mm256_hadd_ps(a, a);
    h = _mm256_hadd_ps(h, h);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

/* e^x for 8 lanes: range reduction by ln 2 and a degree-5 polynomial (Cephes' expf),
 * about 1 ulp; inputs above 88.38 are clamped, below -88.38 (and -inf) give 0. */
static inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-88.3762626647949f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ); /* e^x underflows: 0, as for -inf */
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    /* 2^n: n in [-127, 128]; split in two factors so n = 128 and n = -127 stay finite/normal */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
    __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, _mm256_set1_epi32(127)), 23));
    __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(under, _mm256_mul_ps(_mm256_mul_ps(y, p1), p2));
}

static inline float exp1(float x) {
    float in[8] = {x}, out[8];
    _mm256_storeu_ps(out, exp8(_mm256_loadu_ps(in)));
    return out[0];
}

#ifndef PREFETCH_TILES
#define PREFETCH_TILES 4
#endif

/* ---- matmul --------------------------------------------------------------------------- */

/* One RM x RN tile: rows x[0..RM) against weight rows w[0..RN) (wstride bytes apart). */
static inline __attribute__((always_inline)) void tile(const float *x, int ldx, const char *w,
                                                       size_t wstride, int K, forge_dtype dt,
                                                       int RM, int RN, float *y, int ldy,
                                                       const float *bias) {
    __m256 acc[4][4];
    for (int r = 0; r < RM; r++)
        for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
    int K8 = K & ~7;
    /* Decode streams the weights from memory in short rows (a tile reads RN rows of K side by
     * side), too short for the hardware prefetcher to follow. So each step prefetches the
     * tile PREFETCH_TILES ahead, in memory order: RN * 8 elements per step cover it exactly. */
    const size_t esz = dtype_size(dt), step_bytes = (size_t)RN * 8 * esz;
    const char *pf = w + (size_t)PREFETCH_TILES * RN * wstride;
    for (int k = 0; k < K8; k += 8) {
        __m256 wv[4];
        if (RM < 4)
            for (size_t b = 0; b < step_bytes; b += 64) _mm_prefetch(pf + (size_t)k / 8 * step_bytes + b, _MM_HINT_T1);
        for (int c = 0; c < RN; c++) wv[c] = ld_w(w + c * wstride, k, dt);
        for (int r = 0; r < RM; r++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)r * ldx + k);
            for (int c = 0; c < RN; c++) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < RM; r++) {
        float s[4];
        __m256 z = _mm256_setzero_ps();
        _mm_storeu_ps(s, hsum4(acc[r][0], RN > 1 ? acc[r][1] : z, RN > 2 ? acc[r][2] : z,
                               RN > 3 ? acc[r][3] : z));
        for (int c = 0; c < RN; c++) {
            float v = s[c];
            for (int k = K8; k < K; k++) v = fmaf(x[(size_t)r * ldx + k], ld_w1(w + c * wstride, k, dt), v);
            if (bias) v += bias[c];
            y[(size_t)r * ldy + c] = v;
        }
    }
}

typedef void (*tile_fn)(const float *x, int ldx, const char *w, size_t wstride, int K, float *y,
                        int ldy, const float *bias);

#define DEF_TILE(DT, DTN, RM, RN)                                                            \
    static void tile_##DTN##_##RM##x##RN(const float *x, int ldx, const char *w, size_t ws, int K, \
                                         float *y, int ldy, const float *bias) {              \
        tile(x, ldx, w, ws, K, DT, RM, RN, y, ldy, bias);                                     \
    }
#define DEF_TILES_RM(DT, DTN, RM)                                                            \
    DEF_TILE(DT, DTN, RM, 1) DEF_TILE(DT, DTN, RM, 2) DEF_TILE(DT, DTN, RM, 3) DEF_TILE(DT, DTN, RM, 4)
#define DEF_TILES(DT, DTN)                                                                   \
    DEF_TILES_RM(DT, DTN, 1) DEF_TILES_RM(DT, DTN, 2) DEF_TILES_RM(DT, DTN, 3) DEF_TILES_RM(DT, DTN, 4)
DEF_TILES(FORGE_DTYPE_F32, f32)
DEF_TILES(FORGE_DTYPE_BF16, bf16)
DEF_TILES(FORGE_DTYPE_F16, f16)

#define ROW_TILES(DTN, RM) {tile_##DTN##_##RM##x1, tile_##DTN##_##RM##x2, tile_##DTN##_##RM##x3, tile_##DTN##_##RM##x4}
#define DT_TILES(DTN) {ROW_TILES(DTN, 1), ROW_TILES(DTN, 2), ROW_TILES(DTN, 3), ROW_TILES(DTN, 4)}
static const tile_fn g_tiles[3][4][4] = {DT_TILES(f32), DT_TILES(f16), DT_TILES(bf16)};

/* Rows [0, m) of x against weight rows [j0, j1) of w (a panel or the whole matrix). */
/* pf/pf_bytes: memory to prefetch into L2 while the tiles compute (the next weight panel),
 * spread evenly over the tiles. */
static void run_tiles(const float *x, int ldx, int m, const char *w, size_t wstride, forge_dtype dt,
                      int K, int j0, int j1, float *y, int ldy, const float *bias, const char *pf, size_t pf_bytes) {
    /* 4x3 tiles keep 12 accumulators + 3 weights + 1 input in the 16 YMM registers; with
     * fewer rows, 4 weight rows per tile give the FMA chains enough independence. */
    int rn = m >= 4 ? 3 : 4;
    size_t n_tiles = (size_t)((m + 3) / 4) * (size_t)((j1 - j0 + rn - 1) / rn);
    size_t pf_share = pf_bytes ? ((pf_bytes + n_tiles - 1) / n_tiles + 63) & ~(size_t)63 : 0, pf_at = 0;
    for (int i = 0; i < m; i += 4) {
        int rm = m - i < 4 ? m - i : 4;
        for (int j = j0; j < j1; j += rn) {
            int cn = j1 - j < rn ? j1 - j : rn;
            for (size_t e = pf_at + pf_share; pf_at < e && pf_at < pf_bytes; pf_at += 64) _mm_prefetch(pf + pf_at, _MM_HINT_T1);
            g_tiles[dt][rm - 1][cn - 1](x + (size_t)i * ldx, ldx, w + (size_t)(j - j0) * wstride, wstride, K,
                                        y + (size_t)i * ldy + j, ldy, bias ? bias + j : NULL);
        }
    }
}

static void avx2_to_f32(float *out, const void *in, forge_dtype dt, int n);

static void avx2_matmul(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y,
                        int ldy, float *pack) {
    int K = w->cols;
    size_t row_bytes = (size_t)K * dtype_size(w->dtype);
    const char *base = (const char *)w->data;
    if (m < 4 || (w->dtype != FORGE_DTYPE_F32 && !pack)) {
        run_tiles(x, ldx, m, base + (size_t)j0 * row_bytes, row_bytes, w->dtype, K, j0, j1, y, ldy, w->bias, NULL, 0);
        return;
    }
    /* Blocked for the caches: a panel of weight rows (16-bit ones converted to f32 once,
     * exactly) stays in L2 while blocks of input rows that also fit beside it sweep it; an
     * unblocked x of hundreds of rows would evict the panel for every row group. */
    int np = mm_panel_rows(K);
    int mb = (64 * 1024) / K;
    mb = mb < 16 ? 16 : mb > 128 ? 128 : mb & ~3;
    for (int jp = j0; jp < j1; jp += np) {
        int n = j1 - jp < np ? j1 - jp : np;
        const char *panel = base + (size_t)jp * row_bytes;
        size_t stride = row_bytes;
        forge_dtype pdt = w->dtype;
        if (w->dtype != FORGE_DTYPE_F32) {
            for (int j = 0; j < n; j++) avx2_to_f32(pack + (size_t)j * K, base + (size_t)(jp + j) * row_bytes, w->dtype, K);
            panel = (const char *)pack;
            stride = (size_t)K * 4;
            pdt = FORGE_DTYPE_F32;
        }
        /* the next panel's weights stream in from memory while this one computes */
        int next = j1 - (jp + n) < np ? j1 - (jp + n) : np;
        const char *pf = base + (size_t)(jp + n) * row_bytes;
        for (int i0 = 0; i0 < m; i0 += mb) {
            int mi = m - i0 < mb ? m - i0 : mb;
            run_tiles(x + (size_t)i0 * ldx, ldx, mi, panel, stride, pdt, K, jp, jp + n, y + (size_t)i0 * ldy, ldy, w->bias,
                      pf, i0 == 0 && next > 0 ? (size_t)next * row_bytes : 0);
        }
    }
}

/* ---- element-wise --------------------------------------------------------------------- */

static void avx2_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    double ss = hsum1(acc);
    for (; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) out[i] = (x[i] * inv) * w[i];
}

static void avx2_swiglu(float *out, const float *g, const float *u, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = exp8(_mm256_xor_ps(gv, neg));
        __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + exp1(-g[i])) * u[i];
}

static void avx2_to_f32(float *out, const void *in, forge_dtype dt, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, ld_w(in, i, dt));
    for (; i < n; i++) out[i] = ld_w1(in, i, dt);
}

static void avx2_from_f32(void *out, forge_dtype dt, const float *in, int n) {
    if (dt == FORGE_DTYPE_F32) {
        memcpy(out, in, (size_t)n * 4);
        return;
    }
    uint16_t *o = out;
    int i = 0;
    if (dt == FORGE_DTYPE_F16) {
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(o + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
        for (; i < n; i++) o[i] = f32_to_f16(in[i]);
        return;
    }
    for (; i < n; i++) o[i] = f32_to_bf16(in[i]);
}

static float avx2_max(const float *x, int n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float t[8], r = -INFINITY;
    _mm256_storeu_ps(t, m);
    for (int l = 0; l < 8; l++) r = t[l] > r ? t[l] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

static float avx2_sum_exp(const float *x, int n, float shift) {
    __m256 acc = _mm256_setzero_ps(), sh = _mm256_set1_ps(shift);
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh)));
    float s = hsum1(acc);
    for (; i < n; i++) s += exp1(x[i] - shift);
    return s;
}

static void avx2_exp_shift(float *out, const float *x, int n, float shift) {
    __m256 sh = _mm256_set1_ps(shift);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh)));
    for (; i < n; i++) out[i] = exp1(x[i] - shift);
}

/* ---- attention ------------------------------------------------------------------------ */

enum { MAX_REP = 32, MAX_HD = 256 }; /* CONFIG_MAX_GQA, CONFIG_MAX_HEAD_DIM */

static inline float dot_hd(const float *q, const void *k, forge_dtype dt, int hd) {
    __m256 acc = _mm256_setzero_ps();
    int d = 0;
    for (; d + 8 <= hd; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), ld_w(k, d, dt), acc);
    float s = hsum1(acc);
    for (; d < hd; d++) s = fmaf(q[d], ld_w1(k, d, dt), s);
    return s;
}

/* Scores of four keys for HG (1 or 2) query heads: each key row is loaded and converted once
 * for the heads; lanes are reduced as dot_hd does (hsum4 gives the same bits as hsum1). */
static inline __attribute__((always_inline)) void qk_four(const float *q, int HG, const char *k0, size_t kstride,
                                                          int hd, forge_dtype dt, float scale, float *out0, float *out1) {
    __m256 c[2][4];
    for (int h = 0; h < HG; h++)
        for (int j = 0; j < 4; j++) c[h][j] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d += 8) {
        __m256 kv[4];
        for (int j = 0; j < 4; j++) kv[j] = ld_w(k0 + j * kstride, d, dt);
        for (int h = 0; h < HG; h++) {
            __m256 qv = _mm256_loadu_ps(q + (size_t)h * hd + d);
            for (int j = 0; j < 4; j++) c[h][j] = _mm256_fmadd_ps(qv, kv[j], c[h][j]);
        }
    }
    _mm_storeu_ps(out0, _mm_mul_ps(hsum4(c[0][0], c[0][1], c[0][2], c[0][3]), _mm_set1_ps(scale)));
    if (HG > 1) _mm_storeu_ps(out1, _mm_mul_ps(hsum4(c[1][0], c[1][1], c[1][2], c[1][3]), _mm_set1_ps(scale)));
}

/* acc[h] = acc[h] * corr[h] + sum_t p[h][t] v_t for G (1-4) heads over 8*DC dimensions at [d]:
 * the G x DC accumulators stay in registers across the keys, so each probability is
 * broadcast once per key and each V row loaded once; per element the order is fixed. */
static inline __attribute__((always_inline)) void pv_block(int G, int DC, float (*acc)[MAX_HD], const float *corr,
                                                           float (*p)[16], const char *v0, size_t vstride, int nt,
                                                           int d, forge_dtype dt) {
    __m256 o[4][4];
    for (int h = 0; h < G; h++)
        for (int c = 0; c < DC; c++) o[h][c] = _mm256_mul_ps(_mm256_load_ps(acc[h] + d + 8 * c), _mm256_set1_ps(corr[h]));
    for (int t = 0; t < nt; t++) {
        __m256 pb[4];
        for (int h = 0; h < G; h++) pb[h] = _mm256_set1_ps(p[h][t]);
        for (int c = 0; c < DC; c++) {
            __m256 v = ld_w(v0 + (size_t)t * vstride, d + 8 * c, dt);
            for (int h = 0; h < G; h++) o[h][c] = _mm256_fmadd_ps(pb[h], v, o[h][c]);
        }
    }
    for (int h = 0; h < G; h++)
        for (int c = 0; c < DC; c++) _mm256_store_ps(acc[h] + d + 8 * c, o[h][c]);
}

/* Online softmax over the visible keys, one KV block (16 positions, aligned to absolute
 * positions) at a time, so the result depends only on the cache and [first, last]. */
static inline __attribute__((always_inline)) void attention_impl(const attn_args *a, forge_dtype dt) {
    const int B = FORGE_KV_BLOCK_TOKENS, hd = a->head_dim, nr = a->n_rep;
    FORGE_ASSERT(nr <= MAX_REP && hd <= MAX_HD && a->first <= a->last);
    const size_t esz = dtype_size(dt), row = (size_t)hd * esz;
    const size_t block_elems = (size_t)a->n_kv_heads * B * hd;
    float m[MAX_REP], l[MAX_REP], s[MAX_REP][16], p[MAX_REP][16], corr[MAX_REP];
    _Alignas(32) float acc[MAX_REP][MAX_HD];
    for (int r = 0; r < nr; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
        memset(acc[r], 0, (size_t)hd * sizeof(float));
    }
    for (int b = a->first / B; b <= a->last / B; b++) {
        int p0 = b * B > a->first ? b * B : a->first;
        int p1 = b * B + B - 1 < a->last ? b * B + B - 1 : a->last;
        size_t base = (size_t)a->blocks[b] * block_elems + (size_t)a->kv_head * B * hd;
        const char *kb = (const char *)a->k_cache + base * esz + (size_t)(p0 - b * B) * row;
        const char *vb = (const char *)a->v_cache + base * esz + (size_t)(p0 - b * B) * row;
        int nt = p1 - p0 + 1;
        if (b < a->last / B) { /* the next block's K and V rows: cache misses on decode, fetch ahead */
            size_t next = ((size_t)a->blocks[b + 1] * block_elems + (size_t)a->kv_head * B * hd) * esz, bytes = (size_t)B * row;
            for (size_t off = 0; off < bytes; off += 64) {
                _mm_prefetch((const char *)a->k_cache + next + off, _MM_HINT_T0);
                _mm_prefetch((const char *)a->v_cache + next + off, _MM_HINT_T0);
            }
        }
        int t = 0;
        if ((hd & 7) == 0)
            for (; t + 4 <= nt; t += 4) {
                int r = 0;
                for (; r + 2 <= nr; r += 2) qk_four(a->q + (size_t)r * hd, 2, kb + (size_t)t * row, row, hd, dt, a->scale, &s[r][t], &s[r + 1][t]);
                if (r < nr) qk_four(a->q + (size_t)r * hd, 1, kb + (size_t)t * row, row, hd, dt, a->scale, &s[r][t], NULL);
            }
        for (; t < nt; t++)
            for (int r = 0; r < nr; r++) s[r][t] = dot_hd(a->q + (size_t)r * hd, kb + (size_t)t * row, dt, hd) * a->scale;
        if (a->softcap > 0) /* Gemma 2: tanh(s / cap) * cap, per score (libm's tanhf) */
            for (int r = 0; r < nr; r++)
                for (int k = 0; k < nt; k++) s[r][k] = tanhf(s[r][k] / a->softcap) * a->softcap;
        /* softmax bookkeeping per query head: block max, rescale factor, probabilities */
        for (int r = 0; r < nr; r++) {
            float mb = s[r][0];
            for (int k = 1; k < nt; k++) mb = s[r][k] > mb ? s[r][k] : mb;
            float mn = mb > m[r] ? mb : m[r];
            corr[r] = m[r] == -INFINITY ? 0.0f : exp1(m[r] - mn);
            _Alignas(32) float tmp[16] = {0};
            for (int k = 0; k < nt; k++) tmp[k] = s[r][k] - mn;
            _mm256_storeu_ps(p[r], exp8(_mm256_loadu_ps(tmp)));
            if (nt > 8) _mm256_storeu_ps(p[r] + 8, exp8(_mm256_loadu_ps(tmp + 8)));
            float ls = 0;
            for (int k = 0; k < nt; k++) ls += p[r][k];
            l[r] = l[r] * corr[r] + ls;
            m[r] = mn;
        }
        for (int r0 = 0; r0 < nr; r0 += 4) {
            int g = nr - r0 < 4 ? nr - r0 : 4, d = 0;
            /* 32 dimensions at a time for up to 3 heads (12 accumulators), 16 for 4 heads */
            for (; g < 4 && d + 32 <= hd; d += 32) switch (g) {
                case 1: pv_block(1, 4, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;
                case 2: pv_block(2, 4, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;
                default: pv_block(3, 4, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;
                }
            for (; g == 4 && d + 16 <= hd; d += 16) pv_block(4, 2, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt);
            for (; d + 8 <= hd; d += 8) switch (g) {
                case 1: pv_block(1, 1, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;
                case 2: pv_block(2, 1, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;
                case 3: pv_block(3, 1, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;
                default: pv_block(4, 1, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;
                }
            for (; d < hd; d++)
                for (int r = r0; r < r0 + g; r++) {
                    float o = acc[r][d] * corr[r];
                    for (int k = 0; k < nt; k++) o = fmaf(p[r][k], ld_w1(vb + (size_t)k * row, d, dt), o);
                    acc[r][d] = o;
                }
        }
    }
    for (int r = 0; r < nr; r++) {
        float inv = 1.0f / l[r];
        for (int d = 0; d < hd; d++) a->out[(size_t)r * hd + d] = acc[r][d] * inv;
    }
}

static void avx2_attention(const attn_args *a) {
    if (a->kv_dtype == FORGE_DTYPE_BF16) attention_impl(a, FORGE_DTYPE_BF16);
    else attention_impl(a, FORGE_DTYPE_F32);
}

/* 10 independent FMA chains of 8 lanes: enough to cover the FMA latency on 2 ports */
static double avx2_fma_loop(long iters) {
    __m256 a[10], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 10; i++) s = _mm256_add_ps(s, a[i]);
    volatile float sink = hsum1(s);
    (void)sink;
    return (double)iters * 10 * 8 * 2;
}

static const kernels g_avx2 = {
    .name = "avx2",
    .matmul = avx2_matmul,
    .rmsnorm = avx2_rmsnorm,
    .swiglu = avx2_swiglu,
    .to_f32 = avx2_to_f32,
    .from_f32 = avx2_from_f32,
    .attention = avx2_attention,
    .max = avx2_max,
    .sum_exp = avx2_sum_exp,
    .exp_shift = avx2_exp_shift,
    .fma_loop = avx2_fma_loop,
};

const kernels *kernels_avx2(void) { return &g_avx2; }
