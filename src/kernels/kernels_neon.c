/* kernels_neon.c: AArch64 Advanced SIMD (NEON) kernels. NEON is part of every ARMv8-A CPU
 * Linux and macOS run on, so this file needs no extra ISA flags beyond the baseline; it is
 * compiled only for aarch64 (the Makefile filters *_neon.c elsewhere) and kernels_get()
 * picks it when cpu_get()->neon is set.
 *
 * matmul keeps the canonical order of kernels.h with two 4-lane vectors standing for the 8
 * lanes: lane l (0..7) accumulates k = 8i + l in increasing i with one FMA chain, the lanes
 * are summed ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) (two pairwise adds), the K % 8 tail is
 * added in order with fmaf, then the bias. That is the AVX2 set's order and operations, so
 * the two sets give the same bits; within this set the order never depends on M, the tile,
 * the column range or packing (bf16/f16 -> f32 packing is exact). */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "kernels/kernels.h"

/* ---- loads and reductions ------------------------------------------------------------- */

/* 8 weights from k as f32: lo = k..k+3, hi = k+4..k+7 */
static inline __attribute__((always_inline)) void ld_w8(const void *row, int k, forge_dtype dt, float32x4_t *lo,
                                                        float32x4_t *hi) {
    if (dt == FORGE_DTYPE_BF16) {
        uint16x8_t h = vld1q_u16((const uint16_t *)row + k);
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        *hi = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(h), 16));
    } else if (dt == FORGE_DTYPE_F16) {
        uint16x8_t h = vld1q_u16((const uint16_t *)row + k);
        *lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
        *hi = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h)));
    } else {
        *lo = vld1q_f32((const float *)row + k);
        *hi = vld1q_f32((const float *)row + k + 4);
    }
}

/* 4 weights from k as f32 */
static inline __attribute__((always_inline)) float32x4_t ld_w4(const void *row, int k, forge_dtype dt) {
    if (dt == FORGE_DTYPE_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)row + k), 16));
    if (dt == FORGE_DTYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)row + k)));
    return vld1q_f32((const float *)row + k);
}

static inline float ld_w1(const void *row, int k, forge_dtype dt) {
    uint16_t h;
    if (dt == FORGE_DTYPE_F32) {
        float f;
        memcpy(&f, (const char *)row + 4 * (size_t)k, 4);
        return f;
    }
    memcpy(&h, (const char *)row + 2 * (size_t)k, 2);
    if (dt == FORGE_DTYPE_BF16) return bf16_to_f32(h);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)) of the 8 lanes lo = l0..l3, hi = l4..l7 */
static inline float hsum8(float32x4_t lo, float32x4_t hi) {
    float32x4_t p = vpaddq_f32(lo, hi); /* l0+l1, l2+l3, l4+l5, l6+l7 */
    p = vpaddq_f32(p, p);               /* (l0+l1)+(l2+l3), (l4+l5)+(l6+l7), ... */
    return vgetq_lane_f32(p, 0) + vgetq_lane_f32(p, 1);
}

/* ((l0+l1)+(l2+l3)) of 4 lanes */
static inline float hsum4(float32x4_t v) {
    float32x4_t p = vpaddq_f32(v, v);
    return vgetq_lane_f32(p, 0) + vgetq_lane_f32(p, 1);
}

/* e^x for 4 lanes: the AVX2 set's exp8 (Cephes' expf, about 1 ulp) with the same
 * operations; inputs above 88.38 are clamped, below -88.38 (and -inf) give 0. */
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t hi = vdupq_n_f32(88.3762626647949f), lo = vdupq_n_f32(-88.3762626647949f);
    uint32x4_t under = vcltq_f32(x, lo);
    x = vmaxq_f32(vminq_f32(x, hi), lo);
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    x = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    x = vfmsq_f32(x, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vdupq_n_f32(1.9875691500E-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507E-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073E-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894E-2f), y, x);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459E-1f), y, x);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201E-1f), y, x);
    y = vfmaq_f32(vaddq_f32(x, vdupq_n_f32(1.0f)), y, vmulq_f32(x, x));
    /* 2^n in two factors so n = 128 and n = -127 stay finite/normal */
    int32x4_t ni = vcvtq_s32_f32(n);
    int32x4_t h1 = vshrq_n_s32(ni, 1), h2 = vsubq_s32(ni, h1);
    float32x4_t p1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h1, vdupq_n_s32(127)), 23));
    float32x4_t p2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h2, vdupq_n_s32(127)), 23));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(vmulq_f32(vmulq_f32(y, p1), p2)), under));
}

static inline float exp1(float x) { return vgetq_lane_f32(exp4(vdupq_n_f32(x)), 0); }

/* ---- matmul --------------------------------------------------------------------------- */

/* One RM x RN tile: rows x[0..RM) against weight rows w[0..RN) (wstride bytes apart). */
static inline __attribute__((always_inline)) void tile(const float *x, int ldx, const char *w, size_t wstride, int K,
                                                       forge_dtype dt, int RM, int RN, float *y, int ldy,
                                                       const float *bias) {
    float32x4_t lo[4][4], hi[4][4];
    for (int r = 0; r < RM; r++)
        for (int c = 0; c < RN; c++) lo[r][c] = hi[r][c] = vdupq_n_f32(0);
    int K8 = K & ~7;
    for (int k = 0; k < K8; k += 8) {
        float32x4_t wl[4], wh[4];
        for (int c = 0; c < RN; c++) ld_w8(w + c * wstride, k, dt, &wl[c], &wh[c]);
        for (int r = 0; r < RM; r++) {
            float32x4_t xl = vld1q_f32(x + (size_t)r * ldx + k), xh = vld1q_f32(x + (size_t)r * ldx + k + 4);
            for (int c = 0; c < RN; c++) {
                lo[r][c] = vfmaq_f32(lo[r][c], xl, wl[c]);
                hi[r][c] = vfmaq_f32(hi[r][c], xh, wh[c]);
            }
        }
    }
    for (int r = 0; r < RM; r++)
        for (int c = 0; c < RN; c++) {
            float v = hsum8(lo[r][c], hi[r][c]);
            for (int k = K8; k < K; k++) v = fmaf(x[(size_t)r * ldx + k], ld_w1(w + c * wstride, k, dt), v);
            if (bias) v += bias[c];
            y[(size_t)r * ldy + c] = v;
        }
}

typedef void (*tile_fn)(const float *x, int ldx, const char *w, size_t wstride, int K, float *y, int ldy,
                        const float *bias);

#define DEF_TILE(DT, DTN, RM, RN)                                                                          \
    static void tile_##DTN##_##RM##x##RN(const float *x, int ldx, const char *w, size_t ws, int K, float *y, \
                                         int ldy, const float *bias) {                                      \
        tile(x, ldx, w, ws, K, DT, RM, RN, y, ldy, bias);                                                   \
    }
#define DEF_TILES_RM(DT, DTN, RM) \
    DEF_TILE(DT, DTN, RM, 1) DEF_TILE(DT, DTN, RM, 2) DEF_TILE(DT, DTN, RM, 3) DEF_TILE(DT, DTN, RM, 4)
#define DEF_TILES(DT, DTN) \
    DEF_TILES_RM(DT, DTN, 1) DEF_TILES_RM(DT, DTN, 2) DEF_TILES_RM(DT, DTN, 3) DEF_TILES_RM(DT, DTN, 4)
DEF_TILES(FORGE_DTYPE_F32, f32)
DEF_TILES(FORGE_DTYPE_BF16, bf16)
DEF_TILES(FORGE_DTYPE_F16, f16)
#define ROW_TILES(DTN, RM) {tile_##DTN##_##RM##x1, tile_##DTN##_##RM##x2, tile_##DTN##_##RM##x3, tile_##DTN##_##RM##x4}
#define DT_TILES(DTN) {ROW_TILES(DTN, 1), ROW_TILES(DTN, 2), ROW_TILES(DTN, 3), ROW_TILES(DTN, 4)}
/* indexed by forge_dtype (F32 = 0, F16 = 1, BF16 = 2), rows - 1, columns - 1 */
static const tile_fn g_tiles[3][4][4] = {[FORGE_DTYPE_F32] = DT_TILES(f32), [FORGE_DTYPE_F16] = DT_TILES(f16),
                                         [FORGE_DTYPE_BF16] = DT_TILES(bf16)};

static void run_tiles(const float *x, int ldx, int m, const char *w, size_t wstride, forge_dtype dt, int K, int j0,
                      int j1, float *y, int ldy, const float *bias) {
    /* 32 vector registers: 4 rows x 3 columns hold 24 accumulators beside 6 weight and 2
     * input vectors; with fewer rows, 4 columns give the FMA chains enough independence. */
    int rn = m >= 4 ? 3 : 4;
    for (int i = 0; i < m; i += 4) {
        int rm = m - i < 4 ? m - i : 4;
        for (int j = j0; j < j1; j += rn) {
            int cn = j1 - j < rn ? j1 - j : rn;
            g_tiles[dt][rm - 1][cn - 1](x + (size_t)i * ldx, ldx, w + (size_t)(j - j0) * wstride, wstride, K,
                                        y + (size_t)i * ldy + j, ldy, bias ? bias + j : NULL);
        }
    }
}

static void neon_to_f32(float *out, const void *in, forge_dtype dt, int n);

static void neon_matmul(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y, int ldy,
                        float *pack) {
    FORGE_ASSERT(w->dtype == FORGE_DTYPE_F32 || w->dtype == FORGE_DTYPE_F16 || w->dtype == FORGE_DTYPE_BF16);
    int K = w->cols;
    size_t row_bytes = (size_t)K * dtype_size(w->dtype);
    const char *base = (const char *)w->data;
    if (m < 4 || (w->dtype != FORGE_DTYPE_F32 && !pack)) {
        run_tiles(x, ldx, m, base + (size_t)j0 * row_bytes, row_bytes, w->dtype, K, j0, j1, y, ldy, w->bias);
        return;
    }
    /* a panel of weight rows (16-bit ones widened to f32 once, exactly) stays in L2 while
     * blocks of input rows sweep it */
    int np = mm_panel_rows(K);
    int mb = (64 * 1024) / K;
    mb = mb < 16 ? 16 : mb > 128 ? 128 : mb & ~3;
    for (int jp = j0; jp < j1; jp += np) {
        int n = j1 - jp < np ? j1 - jp : np;
        const char *panel = base + (size_t)jp * row_bytes;
        size_t stride = row_bytes;
        forge_dtype pdt = w->dtype;
        if (w->dtype != FORGE_DTYPE_F32) {
            for (int j = 0; j < n; j++)
                neon_to_f32(pack + (size_t)j * K, base + (size_t)(jp + j) * row_bytes, w->dtype, K);
            panel = (const char *)pack;
            stride = (size_t)K * 4;
            pdt = FORGE_DTYPE_F32;
        }
        for (int i0 = 0; i0 < m; i0 += mb) {
            int mi = m - i0 < mb ? m - i0 : mb;
            run_tiles(x + (size_t)i0 * ldx, ldx, mi, panel, stride, pdt, K, jp, jp + n, y + (size_t)i0 * ldy, ldy,
                      w->bias);
        }
    }
}

/* ---- element-wise --------------------------------------------------------------------- */

static void neon_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    float32x4_t lo = vdupq_n_f32(0), hi = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
        lo = vfmaq_f32(lo, a, a);
        hi = vfmaq_f32(hi, b, b);
    }
    double ss = hsum8(lo, hi);
    for (; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    float32x4_t vi = vdupq_n_f32(inv);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(out + i, vmulq_f32(vmulq_f32(vld1q_f32(x + i), vi), vld1q_f32(w + i)));
    for (; i < n; i++) out[i] = (x[i] * inv) * w[i];
}

static void neon_swiglu(float *out, const float *g, const float *u, int n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t gv = vld1q_f32(g + i);
        float32x4_t s = vdivq_f32(gv, vaddq_f32(one, exp4(vnegq_f32(gv))));
        vst1q_f32(out + i, vmulq_f32(s, vld1q_f32(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + exp1(-g[i])) * u[i];
}

static void neon_to_f32(float *out, const void *in, forge_dtype dt, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, ld_w4(in, i, dt));
    for (; i < n; i++) out[i] = ld_w1(in, i, dt);
}

static void neon_from_f32(void *out, forge_dtype dt, const float *in, int n) {
    if (dt == FORGE_DTYPE_F32) {
        memcpy(out, in, (size_t)n * 4);
        return;
    }
    uint16_t *o = out;
    int i = 0;
    if (dt == FORGE_DTYPE_F16) /* FCVTN rounds to nearest even, as f32_to_f16 */
        for (; i + 4 <= n; i += 4) vst1_u16(o + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
    for (; i < n; i++) o[i] = dt == FORGE_DTYPE_F16 ? f32_to_f16(in[i]) : f32_to_bf16(in[i]);
}

static float neon_max(const float *x, int n) {
    float r = -INFINITY;
    int i = 0;
    if (n >= 4) {
        float32x4_t m = vdupq_n_f32(-INFINITY);
        for (; i + 4 <= n; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
        r = vmaxvq_f32(m);
    }
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

static float neon_sum_exp(const float *x, int n, float shift) {
    float32x4_t acc = vdupq_n_f32(0), sh = vdupq_n_f32(shift);
    int i = 0;
    for (; i + 4 <= n; i += 4) acc = vaddq_f32(acc, exp4(vsubq_f32(vld1q_f32(x + i), sh)));
    float s = hsum4(acc);
    for (; i < n; i++) s += exp1(x[i] - shift);
    return s;
}

static void neon_exp_shift(float *out, const float *x, int n, float shift) {
    float32x4_t sh = vdupq_n_f32(shift);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, exp4(vsubq_f32(vld1q_f32(x + i), sh)));
    for (; i < n; i++) out[i] = exp1(x[i] - shift);
}

/* ---- attention ------------------------------------------------------------------------ */

enum { MAX_REP = 32, MAX_HD = 256 }; /* CONFIG_MAX_GQA, CONFIG_MAX_HEAD_DIM */
_Static_assert(FORGE_KV_BLOCK_TOKENS <= 16, "a block's scores fit p[16]");

/* q . k over hd dimensions: 4-lane FMA chains, a fixed lane sum, then the tail in order */
static inline float dot_hd(const float *q, const void *k, forge_dtype dt, int hd) {
    float32x4_t acc = vdupq_n_f32(0);
    int d = 0;
    for (; d + 4 <= hd; d += 4) acc = vfmaq_f32(acc, vld1q_f32(q + d), ld_w4(k, d, dt));
    float s = hsum4(acc);
    for (; d < hd; d++) s = fmaf(q[d], ld_w1(k, d, dt), s);
    return s;
}

/* Online softmax over the visible keys, one KV block (FORGE_KV_BLOCK_TOKENS positions,
 * aligned to absolute positions) at a time, so the result depends only on the cache and
 * [first, last]; per output element the operations are the same whatever the batch. */
static inline __attribute__((always_inline)) void attention_impl(const attn_args *a, forge_dtype dt) {
    const int B = FORGE_KV_BLOCK_TOKENS, hd = a->head_dim, nr = a->n_rep;
    FORGE_ASSERT(nr <= MAX_REP && hd <= MAX_HD && a->first <= a->last);
    const size_t esz = dtype_size(dt), row = (size_t)hd * esz;
    const size_t block_elems = (size_t)a->n_kv_heads * B * hd;
    float m[MAX_REP], l[MAX_REP];
    _Alignas(16) float p[16];
    _Alignas(16) float acc[MAX_REP][MAX_HD];
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
        for (int r = 0; r < nr; r++) {
            const float *q = a->q + (size_t)r * hd;
            float s[16], mb = -INFINITY;
            for (int t = 0; t < nt; t++) {
                s[t] = dot_hd(q, kb + (size_t)t * row, dt, hd) * a->scale;
                if (a->softcap > 0) s[t] = tanhf(s[t] / a->softcap) * a->softcap; /* Gemma 2, as the x86 sets */
                mb = s[t] > mb ? s[t] : mb;
            }
            float mn = mb > m[r] ? mb : m[r];
            float corr = m[r] == -INFINITY ? 0.0f : exp1(m[r] - mn);
            /* the probabilities four at a time (lanes past nt are exp(-inf) = 0, unused) */
            _Alignas(16) float sd[16];
            for (int t = 0; t < 16; t++) sd[t] = t < nt ? s[t] - mn : -INFINITY;
            for (int t = 0; t < nt; t += 4) vst1q_f32(p + t, exp4(vld1q_f32(sd + t)));
            float ls = 0;
            for (int t = 0; t < nt; t++) ls += p[t];
            l[r] = l[r] * corr + ls;
            m[r] = mn;
            float *o = acc[r];
            int d = 0;
            for (; d + 4 <= hd; d += 4) {
                float32x4_t v = vmulq_f32(vld1q_f32(o + d), vdupq_n_f32(corr));
                for (int t = 0; t < nt; t++) v = vfmaq_f32(v, vdupq_n_f32(p[t]), ld_w4(vb + (size_t)t * row, d, dt));
                vst1q_f32(o + d, v);
            }
            for (; d < hd; d++) {
                float v = o[d] * corr;
                for (int t = 0; t < nt; t++) v = fmaf(p[t], ld_w1(vb + (size_t)t * row, d, dt), v);
                o[d] = v;
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        float inv = 1.0f / l[r];
        for (int d = 0; d < hd; d++) a->out[(size_t)r * hd + d] = acc[r][d] * inv;
    }
}

static void neon_attention(const attn_args *a) {
    if (a->kv_dtype == FORGE_DTYPE_BF16) attention_impl(a, FORGE_DTYPE_BF16);
    else attention_impl(a, FORGE_DTYPE_F32);
}

/* 16 independent FMA chains of 4 lanes: enough to cover 4 FMA pipes of 4 cycles latency */
static double neon_fma_loop(long iters) {
    float32x4_t a[16], mv = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
    for (int i = 0; i < 16; i++) a[i] = vdupq_n_f32((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 16; i++) a[i] = vfmaq_f32(c, a[i], mv);
    float32x4_t s = a[0];
    for (int i = 1; i < 16; i++) s = vaddq_f32(s, a[i]);
    volatile float sink = hsum4(s);
    (void)sink;
    return (double)iters * 16 * 4 * 2;
}

static const kernels g_neon = {
    .name = "neon",
    .matmul = neon_matmul,
    .rmsnorm = neon_rmsnorm,
    .swiglu = neon_swiglu,
    .to_f32 = neon_to_f32,
    .from_f32 = neon_from_f32,
    .attention = neon_attention,
    .max = neon_max,
    .sum_exp = neon_sum_exp,
    .exp_shift = neon_exp_shift,
    .fma_loop = neon_fma_loop,
};

const kernels *kernels_neon(void) { return &g_neon; }
