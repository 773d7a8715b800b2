/* kernels_avx512.c: AVX-512 (F/BW/VL/DQ) kernels; this file alone is compiled with those ISA
 * flags (plus AVX512-BF16 for the dot-product peak loop, run only where cpu_get() reports
 * it), and kernels_get() picks it only when cpu_get() reports AVX-512. matmul keeps the
 * set's reduction order (kernels.h) in every tile shape; attention is the AVX2 set's
 * algorithm on 16 lanes; the element-wise kernels are the AVX2 set's (a few percent of a
 * forward, not ported). */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "base/cpu.h"
#include "base/error.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

/* ---- loads and reductions ------------------------------------------------------------- */

static inline __attribute__((always_inline)) __m512 ld16(const void *row, int k, forge_dtype dt) {
    if (dt == FORGE_DTYPE_BF16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (dt == FORGE_DTYPE_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k)));
    return _mm512_loadu_ps((const float *)row + k);
}

/* lanes outside m read as 0 (and are not touched in memory) */
static inline __attribute__((always_inline)) __m512 ld16m(const void *row, int k, forge_dtype dt, __mmask16 m) {
    if (dt == FORGE_DTYPE_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (dt == FORGE_DTYPE_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k));
    return _mm512_maskz_loadu_ps(m, (const float *)row + k);
}

/* The set's lane sum: fold (l, l+8), then (l, l+4), (l, l+2), (l, l+1). */
static inline float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

/* hsum16 of a, b, c, d at once (the same additions, so the same bits) */
static inline __m128 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 u = _mm512_add_ps(t, _mm512_shuffle_ps(t, t, _MM_SHUFFLE(1, 0, 3, 2)));
    __m512 v = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), v));
}

/* Decode tiles (1-2 input rows) and their software prefetch, by weight row length. Rows of
 * up to SHORT_ROW bytes (SmolLM2-135M's 576 and 1536 columns): 6 weight rows a tile, the
 * tile 4 ahead prefetched. Longer rows (Llama-3.2-1B's 2048 and 8192): 8 weight rows a
 * tile, the next tile prefetched. Measured on the Intel Xeon VM, whole decode steps,
 * interleaved with the AVX2 set (bench_sets, 2 threads): the 1B went from 0.85-0.90x of the
 * AVX2 set with 6 rows and 4 tiles ahead to 1.03-1.06x (the weights stream from memory:
 * 8 rows of 32 bytes a step fill four whole cache lines, and a nearer prefetch leaves the
 * hardware prefetcher's stream alone); without the software prefetch it fell to 0.86x.
 * SmolLM2-135M (weights resident in this VM's large L3) prefers the old shape. */
enum { SHORT_ROW = 3072 };
static inline int decode_rn(size_t row_bytes) { return row_bytes <= SHORT_ROW ? 6 : 8; }
static inline size_t prefetch_tiles(size_t row_bytes) { return row_bytes <= SHORT_ROW ? 4 : 1; }

/* ---- matmul --------------------------------------------------------------------------- */

/* One RM x RN tile over k in [k0, k1): rows x[0..RM) against weight rows w[0..RN) (wstride
 * bytes apart). The K % 16 tail is one more step with masked loads (zeros beyond K), so lane
 * l holds the sum of k = l (mod 16) in increasing k whatever K. The lane sums carry over
 * between k ranges through accs (RM x RN x 16 floats, stored exactly): `first` starts them
 * at 0, otherwise they are loaded; `last` folds them into y, otherwise they are stored. PF:
 * prefetch the tile prefetch_tiles() ahead (decode streams weights from memory in rows too
 * short for the hardware prefetcher to ramp up alone). */
static inline __attribute__((always_inline)) void tile(const float *x, int ldx, const char *w, size_t wstride, int k0,
                                                       int k1, int K, forge_dtype dt, int RM, int RN, int PF, float *y,
                                                       int ldy, const float *bias, float *accs, int first, int last) {
    __m512 acc[8][8];
    for (int r = 0; r < RM; r++)
        for (int c = 0; c < RN; c++) acc[r][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(accs + (r * RN + c) * 16);
    const int kf = k1 < (K & ~15) ? k1 : (K & ~15); /* full steps end */
    const size_t step_bytes = (size_t)RN * 16 * dtype_size(dt);
    const char *pf = w + prefetch_tiles(wstride) * RN * wstride;
    for (int k = k0; k < kf; k += 16) {
        __m512 wv[8];
        if (PF)
            for (size_t b = 0; b < step_bytes; b += 64) _mm_prefetch(pf + (size_t)k / 16 * step_bytes + b, _MM_HINT_T1);
        for (int c = 0; c < RN; c++) wv[c] = ld16(w + c * wstride, k, dt);
        for (int r = 0; r < RM; r++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)r * ldx + k);
            for (int c = 0; c < RN; c++) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (k1 >= K && kf < K) {
        __mmask16 m = (__mmask16)((1u << (K - kf)) - 1);
        __m512 wv[8];
        for (int c = 0; c < RN; c++) wv[c] = ld16m(w + c * wstride, kf, dt, m);
        for (int r = 0; r < RM; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + (size_t)r * ldx + kf);
            for (int c = 0; c < RN; c++) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (!last) {
        for (int r = 0; r < RM; r++)
            for (int c = 0; c < RN; c++) _mm512_storeu_ps(accs + (r * RN + c) * 16, acc[r][c]);
        return;
    }
    const __m512 z = _mm512_setzero_ps();
    for (int r = 0; r < RM; r++) {
        float s[8];
        for (int c0 = 0; c0 < RN; c0 += 4)
            _mm_storeu_ps(s + c0, hsum16x4(acc[r][c0], c0 + 1 < RN ? acc[r][c0 + 1] : z, c0 + 2 < RN ? acc[r][c0 + 2] : z,
                                           c0 + 3 < RN ? acc[r][c0 + 3] : z));
        for (int c = 0; c < RN; c++) y[(size_t)r * ldy + c] = bias ? s[c] + bias[c] : s[c];
    }
}

/* direct tiles (weights as stored, any dtype, whole K): up to 3 rows (decode) x up to 8
 * weight rows */
typedef void (*tile_fn)(const float *x, int ldx, const char *w, size_t wstride, int K, float *y, int ldy,
                        const float *bias);
#define DEF_TILE(DT, DTN, RM, RN)                                                                           \
    static void tile_##DTN##_##RM##x##RN(const float *x, int ldx, const char *w, size_t ws, int K, float *y, \
                                         int ldy, const float *bias) {                                      \
        tile(x, ldx, w, ws, 0, K, K, DT, RM, RN, 1, y, ldy, bias, NULL, 1, 1);                              \
    }
#define DEF_TILES_RM(DT, DTN, RM)                                                                           \
    DEF_TILE(DT, DTN, RM, 1) DEF_TILE(DT, DTN, RM, 2) DEF_TILE(DT, DTN, RM, 3) DEF_TILE(DT, DTN, RM, 4)     \
    DEF_TILE(DT, DTN, RM, 5) DEF_TILE(DT, DTN, RM, 6) DEF_TILE(DT, DTN, RM, 7) DEF_TILE(DT, DTN, RM, 8)
#define DEF_TILES(DT, DTN) DEF_TILES_RM(DT, DTN, 1) DEF_TILES_RM(DT, DTN, 2) DEF_TILES_RM(DT, DTN, 3)
DEF_TILES(FORGE_DTYPE_F32, f32)
DEF_TILES(FORGE_DTYPE_BF16, bf16)
DEF_TILES(FORGE_DTYPE_F16, f16)

#define ROW_TILES(DTN, RM)                                                                                  \
    {tile_##DTN##_##RM##x1, tile_##DTN##_##RM##x2, tile_##DTN##_##RM##x3, tile_##DTN##_##RM##x4,            \
     tile_##DTN##_##RM##x5, tile_##DTN##_##RM##x6, tile_##DTN##_##RM##x7, tile_##DTN##_##RM##x8}
#define DT_TILES(DTN) {ROW_TILES(DTN, 1), ROW_TILES(DTN, 2), ROW_TILES(DTN, 3)}
static const tile_fn g_tiles[3][3][8] = {DT_TILES(f32), DT_TILES(f16), DT_TILES(bf16)};

/* packed tiles (f32 panels in L2, no prefetch, k ranges): PM rows x PN weight rows */
#ifndef PACK_TILE_M
#define PACK_TILE_M 4
#define PACK_TILE_N 6
#endif
#ifndef PACK_KB
#define PACK_KB 2048
#endif
enum { PM = PACK_TILE_M, PN = PACK_TILE_N, KB = PACK_KB };
typedef void (*ptile_fn)(const float *x, int ldx, const float *w, int k0, int k1, int K, float *y, int ldy,
                         const float *bias, float *accs, int first, int last);
#define DEF_PTILE(RM, RN)                                                                                    \
    static void ptile_##RM##x##RN(const float *x, int ldx, const float *w, int k0, int k1, int K, float *y,   \
                                  int ldy, const float *bias, float *accs, int first, int last) {            \
        tile(x, ldx, (const char *)w, (size_t)K * 4, k0, k1, K, FORGE_DTYPE_F32, RM, RN, 0, y, ldy, bias, accs, \
             first, last);                                                                                   \
    }
#define DEF_PTILES_RM(RM) DEF_PTILE(RM, 1) DEF_PTILE(RM, 2) DEF_PTILE(RM, 3) DEF_PTILE(RM, 4) DEF_PTILE(RM, 5) DEF_PTILE(RM, 6)
DEF_PTILES_RM(1) DEF_PTILES_RM(2) DEF_PTILES_RM(3) DEF_PTILES_RM(4) DEF_PTILES_RM(5) DEF_PTILES_RM(6) DEF_PTILES_RM(7) DEF_PTILES_RM(8)
#define PROW(RM) {ptile_##RM##x1, ptile_##RM##x2, ptile_##RM##x3, ptile_##RM##x4, ptile_##RM##x5, ptile_##RM##x6}
static const ptile_fn g_ptiles[8][6] = {PROW(1), PROW(2), PROW(3), PROW(4), PROW(5), PROW(6), PROW(7), PROW(8)};
_Static_assert(PM <= 8 && PN <= 6 && KB % 16 == 0, "packed tile shape");

/* Rows [0, m) of x against weight rows [j0, j1) of w as stored: tiles of up to 3 rows. */
static void run_direct(const float *x, int ldx, int m, const char *w, size_t wstride, forge_dtype dt, int K, int j0,
                       int j1, float *y, int ldy, const float *bias) {
    for (int i = 0; i < m; i += 3) {
        int rm = m - i < 3 ? m - i : 3, rn = rm == 3 ? 6 : decode_rn(wstride);
        for (int j = j0; j < j1; j += rn) {
            int cn = j1 - j < rn ? j1 - j : rn;
            g_tiles[dt][rm - 1][cn - 1](x + (size_t)i * ldx, ldx, w + (size_t)(j - j0) * wstride, wstride, K,
                                        y + (size_t)i * ldy + j, ldy, bias ? bias + j : NULL);
        }
    }
}

/* Rows [0, m) of x against a packed f32 panel of rows [j0, j1) (at most mm_panel_rows(K)).
 * For each group of PM input rows, K is walked in blocks of KB so that the group's slice of
 * x stays in L1 while the panel's slice streams from L2; the lane sums of every tile wait
 * in accs between blocks. pf/pf_bytes: memory to prefetch into L2 meanwhile (the next
 * panel), spread evenly over the tiles. */
static void run_packed(const float *x, int ldx, int m, const float *panel, int K, int j0, int j1, float *y, int ldy,
                       const float *bias, const char *pf, size_t pf_bytes, float *accs) {
    int nkb = (K + KB - 1) / KB;
    size_t n_tiles = (size_t)((m + PM - 1) / PM) * (size_t)((j1 - j0 + PN - 1) / PN) * (size_t)nkb;
    size_t pf_share = pf_bytes ? ((pf_bytes + n_tiles - 1) / n_tiles + 63) & ~(size_t)63 : 0, pf_at = 0;
    for (int i = 0; i < m; i += PM) {
        int rm = m - i < PM ? m - i : PM;
        for (int k0 = 0; k0 < K; k0 += KB) {
            int k1 = K - k0 < KB ? K : k0 + KB;
            for (int j = j0; j < j1; j += PN) {
                int cn = j1 - j < PN ? j1 - j : PN;
                for (size_t e = pf_at + pf_share; pf_at < e && pf_at < pf_bytes; pf_at += 64) _mm_prefetch(pf + pf_at, _MM_HINT_T1);
                g_ptiles[rm - 1][cn - 1](x + (size_t)i * ldx, ldx, panel + (size_t)(j - j0) * K, k0, k1, K,
                                         y + (size_t)i * ldy + j, ldy, bias ? bias + j : NULL,
                                         accs + (size_t)(j - j0) * PM * 16, k0 == 0, k1 == K);
            }
        }
    }
}

/* ---- quantized weights as stored, decode (m < 4) -------------------------------------
 * The tiles above with each weight value made in registers from its block, equal to what
 * quant_dequant_row (quant_ref.c) gives: Q8_0 q * d, Q4_0 d * (q - 8), Q5_0 d * (q - 16),
 * Q4_K (d * sc) * q - dmin * m, Q6_K (d * sc) * (q - 32) (where an FMA replaces two of its
 * operations, the comment there shows the value is the same). The values are those
 * quant_matmul_f32's dequantized panels hold, and the lanes sum in the set's order, so a row
 * gets the same bits here as through the packed path of m >= 4 (test_quant checks both). */

#define QDIRECT_TYPES ((1u << QT_Q8_0) | (1u << QT_Q4_0) | (1u << QT_Q5_0) | (1u << QT_Q4_K) | (1u << QT_Q6_K))

enum { QCH = 64 }; /* 32-value blocks whose scales a Q4_0/Q5_0 tile makes ahead */

static inline float q_h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* the 128-bit quarter j (0..3) of v; j a constant once inlined (clang wants it literal) */
static inline __attribute__((always_inline)) __m128i quarter(__m512i v, int j) {
    switch (j) {
    case 0: return _mm512_castsi512_si128(v);
    case 1: return _mm512_extracti32x4_epi32(v, 1);
    case 2: return _mm512_extracti32x4_epi32(v, 2);
    default: return _mm512_extracti32x4_epi32(v, 3);
    }
}

/* 16 signed bytes -> 16 floats */
static inline __m512 q_i8x16(__m128i b) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)); }

static inline __attribute__((always_inline)) void qtile(const float *x, int ldx, const uint8_t *w, size_t wstride,
                                                        int K, int qt, int RM, int RN, float *y, int ldy,
                                                        const float *bias) {
    const int be = qt == QT_Q4_K || qt == QT_Q6_K ? 256 : 32;
    const int bb = qt == QT_Q8_0 ? 34 : qt == QT_Q4_0 ? 18 : qt == QT_Q5_0 ? 22 : qt == QT_Q4_K ? 144 : 210;
    __m512 acc[3][8];
    for (int r = 0; r < RM; r++)
        for (int c = 0; c < RN; c++) acc[r][c] = _mm512_setzero_ps();
    const uint8_t *pf = w + prefetch_tiles(wstride) * RN * wstride;
    const size_t blk_span = (size_t)RN * bb; /* bytes of RN rows' blocks: what one block step covers */
    if (qt == QT_Q8_0) {
        for (int b = 0; b < K / be; b++) {
            for (size_t o = 0; o < blk_span; o += 64) _mm_prefetch((const char *)pf + (size_t)b * blk_span + o, _MM_HINT_T1);
            for (int c = 0; c < RN; c++) {
                const uint8_t *blk = w + c * wstride + (size_t)b * bb;
                __m512 dv = _mm512_set1_ps(q_h2f(blk));
                __m512 v0 = _mm512_mul_ps(q_i8x16(_mm_loadu_si128((const __m128i *)(blk + 2))), dv);
                __m512 v1 = _mm512_mul_ps(q_i8x16(_mm_loadu_si128((const __m128i *)(blk + 18))), dv);
                for (int r = 0; r < RM; r++) {
                    const float *xr = x + (size_t)r * ldx + (size_t)b * be;
                    acc[r][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xr), v0, acc[r][c]);
                    acc[r][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + 16), v1, acc[r][c]);
                }
            }
        }
    } else if (qt == QT_Q4_0 || qt == QT_Q5_0) {
        /* Two steps from each load: the 16 code bytes of a block widened once to 32-bit lanes
         * give the low nibbles (values 0..15) and the high ones (16..31). Each value is one
         * FMA of its code with the block's scale and offset, q * d - 8d (Q4_0) or q * d - 16d
         * (Q5_0): q * d and the offset are exact in f32, so the one rounding gives
         * quant_dequant_row's d * (q - 8) exactly (itself exact). The scales of QCH blocks
         * are made ahead for the tile's rows with vector conversions and wait in memory, so
         * that the loop broadcasts them by its loads instead of on the shuffle port. */
        const __m512i m15 = _mm512_set1_epi32(15);
        const __m512 offv = _mm512_set1_ps(qt == QT_Q4_0 ? -8.0f : -16.0f);
        const int nb = K / be;
        float sd[8][QCH], sn[8][QCH];
        uint16_t hh[QCH];
        for (int b0 = 0; b0 < nb; b0 += QCH) {
            const int n = nb - b0 < QCH ? nb - b0 : QCH;
            for (int c = 0; c < RN; c++) {
                const uint8_t *p = w + c * wstride + (size_t)b0 * bb;
                for (int i = 0; i < n; i++) memcpy(&hh[i], p + (size_t)i * bb, 2);
                for (int i = 0; i < n; i += 16) {
                    __mmask16 mk = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
                    __m512 d = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, hh + i));
                    _mm512_storeu_ps(sd[c] + i, d);
                    _mm512_storeu_ps(sn[c] + i, _mm512_mul_ps(d, offv));
                }
            }
            for (int b = b0; b < b0 + n; b++) {
                for (size_t o = 0; o < blk_span; o += 64)
                    _mm_prefetch((const char *)pf + (size_t)b * blk_span + o, _MM_HINT_T1);
                const float *xb[3];
                for (int r = 0; r < RM; r++) xb[r] = x + (size_t)r * ldx + (size_t)b * be;
                for (int c = 0; c < RN; c++) {
                    const uint8_t *blk = w + c * wstride + (size_t)b * bb;
                    __m512 dv = _mm512_set1_ps(sd[c][b - b0]), ndv = _mm512_set1_ps(sn[c][b - b0]);
                    __m512i z = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + (qt == QT_Q4_0 ? 2 : 6))));
                    __m512i lo = _mm512_and_si512(z, m15), hi = _mm512_srli_epi32(z, 4);
                    if (qt == QT_Q5_0) {
                        uint32_t qh;
                        memcpy(&qh, blk + 2, 4);
                        lo = _mm512_mask_or_epi32(lo, (__mmask16)qh, lo, _mm512_set1_epi32(16));
                        hi = _mm512_mask_or_epi32(hi, (__mmask16)(qh >> 16), hi, _mm512_set1_epi32(16));
                    }
                    __m512 v0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), dv, ndv);
                    __m512 v1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), dv, ndv);
                    for (int r = 0; r < RM; r++) {
                        acc[r][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xb[r]), v0, acc[r][c]);
                        acc[r][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xb[r] + 16), v1, acc[r][c]);
                    }
                }
            }
        }
    } else if (qt == QT_Q4_K) {
        /* Per super-block and row, its eight d * sc and -(dmin * m) made first with one
         * vector conversion and multiply (the 6-bit fields unpacked with word operations,
         * as llama.cpp does) and kept in memory; then sub-blocks 2g (low nibbles) and 2g + 1
         * (high) from one widening of 32 bytes, each value q * (d sc) - dmin m in one FMA
         * (exact product, one rounding: quant_dequant_row's value). */
        const __m512i m15 = _mm512_set1_epi32(15);
        float sm[8][16];
        for (int b = 0; b < K / be; b++) {
            for (size_t o = 0; o < blk_span; o += 64) _mm_prefetch((const char *)pf + (size_t)b * blk_span + o, _MM_HINT_T1);
            for (int c = 0; c < RN; c++) {
                const uint8_t *blk = w + c * wstride + (size_t)b * bb;
                uint8_t u[16]; /* scales 0..7, mins 0..7 */
                quant_k4_scales_mins(blk + 4, u, u + 8);
                __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)u)));
                __m128i dd = _mm_loadu_si32(blk); /* d, dmin */
                __m512 dv = _mm512_cvtph_ps(_mm256_permutexvar_epi16(
                    _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm256_castsi128_si256(dd)));
                dv = _mm512_mask_sub_ps(dv, 0xFF00, _mm512_setzero_ps(), dv); /* d x 8, -dmin x 8 */
                _mm512_storeu_ps(sm[c], _mm512_mul_ps(f, dv));
            }
            const float *xb[3];
            for (int r = 0; r < RM; r++) xb[r] = x + (size_t)r * ldx + (size_t)b * be;
            for (int c = 0; c < RN; c++) {
                const uint8_t *blk = w + c * wstride + (size_t)b * bb;
                for (int g = 0; g < 4; g++) {
                    __m512 ds0 = _mm512_set1_ps(sm[c][2 * g]), dm0 = _mm512_set1_ps(sm[c][8 + 2 * g]);
                    __m512 ds1 = _mm512_set1_ps(sm[c][2 * g + 1]), dm1 = _mm512_set1_ps(sm[c][9 + 2 * g]);
                    const uint8_t *qs = blk + 16 + 32 * g;
                    __m512i z0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
                    __m512i z1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)));
                    __m512 v[4] = {_mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(z0, m15)), ds0, dm0),
                                   _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(z1, m15)), ds0, dm0),
                                   _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(z0, 4)), ds1, dm1),
                                   _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(z1, 4)), ds1, dm1)};
                    for (int r = 0; r < RM; r++)
                        for (int k = 0; k < 4; k++)
                            acc[r][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xb[r] + 64 * g + 16 * k), v[k], acc[r][c]);
                }
            }
        }
    } else if (qt == QT_Q6_K) {
        /* A half (128 values) at a time in two 512-bit vectors of codes, in value order: the
         * 64 bytes of low bits give values 0..63 (low nibbles) and 64..127 (high nibbles); the
         * 32 bytes of high bits, broadcast to both halves, are shifted per half so that each
         * value's two bits land at bits 4-5 of its byte, masked and merged by one ternary
         * logic op; minus 32 as signed bytes. The group scales d * sc of the super-block are
         * made first with one vector conversion and multiply (the reference's product) and
         * broadcast from memory; each value is (d sc) * (q - 32), as the reference. */
        const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30), o32 = _mm512_set1_epi8(32);
        const __m512i cnt_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i cnt_b = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        float sf[8][16];
        for (int b = 0; b < K / be; b++) {
            for (size_t o = 0; o < blk_span; o += 64) _mm_prefetch((const char *)pf + (size_t)b * blk_span + o, _MM_HINT_T1);
            for (int c = 0; c < RN; c++) {
                const uint8_t *blk = w + c * wstride + (size_t)b * bb;
                __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192))));
                _mm512_storeu_ps(sf[c], _mm512_mul_ps(_mm512_set1_ps(q_h2f(blk + 208)), f));
            }
            for (int h = 0; h < 2; h++) {
                const float *xb[3];
                for (int r = 0; r < RM; r++) xb[r] = x + (size_t)r * ldx + (size_t)b * be + 128 * h;
                for (int c = 0; c < RN; c++) {
                    const uint8_t *blk = w + c * wstride + (size_t)b * bb;
                    __m512i l = _mm512_loadu_si512(blk + 64 * h);
                    __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h)));
                    __m512i ha = _mm512_and_si512(_mm512_sllv_epi16(hb, cnt_a), m30);
                    __m512i hbb = _mm512_and_si512(_mm512_srlv_epi16(hb, cnt_b), m30);
                    __m512i qv[2] = {_mm512_sub_epi8(_mm512_ternarylogic_epi32(l, ha, m4, 0xEC), o32),
                                     _mm512_sub_epi8(_mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), hbb, m4, 0xEC), o32)};
                    for (int k = 0; k < 8; k++) { /* values 16k .. 16k + 16 of the half: group 8h + k */
                        __m128i q16 = quarter(qv[k >> 2], k & 3);
                        __m512 wv = _mm512_mul_ps(_mm512_set1_ps(sf[c][8 * h + k]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q16)));
                        for (int r = 0; r < RM; r++) acc[r][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xb[r] + 16 * k), wv, acc[r][c]);
                    }
                }
            }
        }
    }
    const __m512 z = _mm512_setzero_ps();
    for (int r = 0; r < RM; r++) {
        float s[8];
        for (int c0 = 0; c0 < RN; c0 += 4)
            _mm_storeu_ps(s + c0, hsum16x4(acc[r][c0], c0 + 1 < RN ? acc[r][c0 + 1] : z, c0 + 2 < RN ? acc[r][c0 + 2] : z,
                                           c0 + 3 < RN ? acc[r][c0 + 3] : z));
        for (int c = 0; c < RN; c++) y[(size_t)r * ldy + c] = bias ? s[c] + bias[c] : s[c];
    }
}

typedef void (*qtile_fn)(const float *x, int ldx, const uint8_t *w, size_t ws, int K, float *y, int ldy,
                         const float *bias);
#define DEF_QTILE(QT, QN, RM, RN)                                                                               \
    static void qtile_##QN##_##RM##x##RN(const float *x, int ldx, const uint8_t *w, size_t ws, int K, float *y, \
                                         int ldy, const float *bias) {                                          \
        qtile(x, ldx, w, ws, K, QT, RM, RN, y, ldy, bias);                                                      \
    }
#define DEF_QTILES_RM(QT, QN, RM) DEF_QTILE(QT, QN, RM, 1) DEF_QTILE(QT, QN, RM, 4) DEF_QTILE(QT, QN, RM, 8)
#define DEF_QTILES(QT, QN) DEF_QTILES_RM(QT, QN, 1) DEF_QTILES_RM(QT, QN, 2) DEF_QTILES_RM(QT, QN, 3)
DEF_QTILES(QT_Q8_0, q8_0)
DEF_QTILES(QT_Q4_0, q4_0)
DEF_QTILES(QT_Q5_0, q5_0)
DEF_QTILES(QT_Q4_K, q4_k)
DEF_QTILES(QT_Q6_K, q6_k)
#define QROW(QN, RM) {qtile_##QN##_##RM##x1, qtile_##QN##_##RM##x4, qtile_##QN##_##RM##x8}
#define QTYPE_TILES(QN) {QROW(QN, 1), QROW(QN, 2), QROW(QN, 3)}
static const qtile_fn g_qtiles[5][3][3] = {QTYPE_TILES(q8_0), QTYPE_TILES(q4_0), QTYPE_TILES(q5_0), QTYPE_TILES(q4_k),
                                           QTYPE_TILES(q6_k)};

/* rows [0, m < 4) of x against quantized weight rows [j0, j1): tiles of 8, then 4, then 1 rows */
static void run_qdirect(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y, int ldy) {
    int ti = w->qtype == QT_Q8_0 ? 0 : w->qtype == QT_Q4_0 ? 1 : w->qtype == QT_Q5_0 ? 2 : w->qtype == QT_Q4_K ? 3 : 4;
    size_t rb = quant_row_bytes(w->qtype, w->cols);
    const uint8_t *base = w->data;
    for (int j = j0; j < j1;) {
        int left = j1 - j, cn = left >= 8 ? 8 : left >= 4 ? 4 : 1, si = cn == 8 ? 2 : cn == 4 ? 1 : 0;
        g_qtiles[ti][m - 1][si](x, ldx, base + (size_t)j * rb, rb, w->cols, y + j, ldy, w->bias ? w->bias + j : NULL);
        j += cn;
    }
}

static void avx512_to_f32(float *out, const void *in, forge_dtype dt, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, ld16(in, i, dt));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, ld16m(in, i, dt, m));
    }
}

static void avx512_matmul(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y, int ldy,
                          float *pack) {
    if (w->qtype) {
        FORGE_ASSERT(m < 4 && (QDIRECT_TYPES >> w->qtype & 1u));
        run_qdirect(x, ldx, m, w, j0, j1, y, ldy);
        return;
    }
    int K = w->cols;
    size_t row_bytes = (size_t)K * dtype_size(w->dtype);
    const char *base = (const char *)w->data;
    if (m < 4 || (w->dtype != FORGE_DTYPE_F32 && !pack)) {
        run_direct(x, ldx, m, base + (size_t)j0 * row_bytes, row_bytes, w->dtype, K, j0, j1, y, ldy, w->bias);
        return;
    }
    /* Blocked for the caches as in the AVX2 set: a panel of weight rows, converted to f32 once
     * (exactly), stays in L2 while blocks of input rows sweep it. */
    int np = mm_panel_rows(K);
    int mb = (64 * 1024) / K;
    mb = mb < 16 ? 16 : mb > 128 ? 128 : mb & ~3;
    /* the lane sums of one row group against a whole panel, between K blocks (52 KB) */
    _Alignas(64) float accs[(96 + PN) * PM * 16];
    FORGE_ASSERT(np <= 96);
    for (int jp = j0; jp < j1; jp += np) {
        int n = j1 - jp < np ? j1 - jp : np;
        const float *panel = (const float *)(base + (size_t)jp * row_bytes);
        if (w->dtype != FORGE_DTYPE_F32) {
            for (int j = 0; j < n; j++) avx512_to_f32(pack + (size_t)j * K, base + (size_t)(jp + j) * row_bytes, w->dtype, K);
            panel = pack;
        }
        int next = j1 - (jp + n) < np ? j1 - (jp + n) : np;
        const char *pf = base + (size_t)(jp + n) * row_bytes;
        for (int i0 = 0; i0 < m; i0 += mb) {
            int mi = m - i0 < mb ? m - i0 : mb;
            run_packed(x + (size_t)i0 * ldx, ldx, mi, panel, K, jp, jp + n, y + (size_t)i0 * ldy, ldy, w->bias, pf,
                       i0 == 0 && next > 0 ? (size_t)next * row_bytes : 0, accs);
        }
    }
}

/* ---- attention ------------------------------------------------------------------------ */

enum { MAX_REP = 32, MAX_HD = 256 }; /* CONFIG_MAX_GQA, CONFIG_MAX_HEAD_DIM */

/* e^x for 16 lanes: the AVX2 set's exp8 (Cephes' expf, about 1 ulp) on 16 lanes; above
 * 88.38 clamped, below -88.38 (and -inf) 0. */
static inline __m512 exp16(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.3762626647949f), lo = _mm512_set1_ps(-88.3762626647949f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i ni = _mm512_cvtps_epi32(n);
    __m512i h1 = _mm512_srai_epi32(ni, 1), h2 = _mm512_sub_epi32(ni, h1);
    __m512 p1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(h1, _mm512_set1_epi32(127)), 23));
    __m512 p2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(h2, _mm512_set1_epi32(127)), 23));
    return _mm512_maskz_mov_ps((__mmask16)~under, _mm512_mul_ps(_mm512_mul_ps(y, p1), p2));
}

static inline float exp1(float x) { return _mm512_cvtss_f32(exp16(_mm512_set1_ps(x))); }

/* q . k over hd dimensions: 16 lanes (masked tail), folded as hsum16 */
static inline float dot_hd(const float *q, const void *k, forge_dtype dt, int hd) {
    __m512 acc = _mm512_setzero_ps();
    int d = 0;
    for (; d + 16 <= hd; d += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), ld16(k, d, dt), acc);
    if (d < hd) {
        __mmask16 m = (__mmask16)((1u << (hd - d)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), ld16m(k, d, dt, m), acc);
    }
    return hsum16(acc);
}

/* Scores of four keys for HG (1 or 2) query heads, each key row loaded once for the heads;
 * the same additions as dot_hd (hsum16x4 gives hsum16's bits). */
static inline __attribute__((always_inline)) void qk_four(const float *q, int HG, const char *k0, size_t kstride, int hd,
                                                          forge_dtype dt, float scale, float *out0, float *out1) {
    __m512 c[2][4];
    for (int h = 0; h < HG; h++)
        for (int j = 0; j < 4; j++) c[h][j] = _mm512_setzero_ps();
    int d = 0;
    for (; d + 16 <= hd; d += 16) {
        __m512 kv[4];
        for (int j = 0; j < 4; j++) kv[j] = ld16(k0 + j * kstride, d, dt);
        for (int h = 0; h < HG; h++) {
            __m512 qv = _mm512_loadu_ps(q + (size_t)h * hd + d);
            for (int j = 0; j < 4; j++) c[h][j] = _mm512_fmadd_ps(qv, kv[j], c[h][j]);
        }
    }
    if (d < hd) {
        __mmask16 m = (__mmask16)((1u << (hd - d)) - 1);
        __m512 kv[4];
        for (int j = 0; j < 4; j++) kv[j] = ld16m(k0 + j * kstride, d, dt, m);
        for (int h = 0; h < HG; h++) {
            __m512 qv = _mm512_maskz_loadu_ps(m, q + (size_t)h * hd + d);
            for (int j = 0; j < 4; j++) c[h][j] = _mm512_fmadd_ps(qv, kv[j], c[h][j]);
        }
    }
    _mm_storeu_ps(out0, _mm_mul_ps(hsum16x4(c[0][0], c[0][1], c[0][2], c[0][3]), _mm_set1_ps(scale)));
    if (HG > 1) _mm_storeu_ps(out1, _mm_mul_ps(hsum16x4(c[1][0], c[1][1], c[1][2], c[1][3]), _mm_set1_ps(scale)));
}

/* acc[h] = acc[h] * corr[h] + sum_t p[h][t] v_t for G (1-4) heads over 16*DC dimensions at
 * [d]; the G x DC accumulators stay in registers across the keys; per element the order is
 * fixed (keys in increasing position). */
static inline __attribute__((always_inline)) void pv_block(int G, int DC, float (*acc)[MAX_HD], const float *corr,
                                                           float (*p)[16], const char *v0, size_t vstride, int nt, int d,
                                                           forge_dtype dt) {
    __m512 o[4][4];
    for (int h = 0; h < G; h++)
        for (int c = 0; c < DC; c++) o[h][c] = _mm512_mul_ps(_mm512_load_ps(acc[h] + d + 16 * c), _mm512_set1_ps(corr[h]));
    for (int t = 0; t < nt; t++) {
        __m512 pb[4];
        for (int h = 0; h < G; h++) pb[h] = _mm512_set1_ps(p[h][t]);
        for (int c = 0; c < DC; c++) {
            __m512 v = ld16(v0 + (size_t)t * vstride, d + 16 * c, dt);
            for (int h = 0; h < G; h++) o[h][c] = _mm512_fmadd_ps(pb[h], v, o[h][c]);
        }
    }
    for (int h = 0; h < G; h++)
        for (int c = 0; c < DC; c++) _mm512_store_ps(acc[h] + d + 16 * c, o[h][c]);
}

#define PV_G(DC)                                                                                     \
    switch (g) {                                                                                     \
    case 1: pv_block(1, DC, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;                 \
    case 2: pv_block(2, DC, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;                 \
    case 3: pv_block(3, DC, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;                 \
    default: pv_block(4, DC, acc + r0, corr + r0, p + r0, vb, row, nt, d, dt); break;                \
    }

/* Online softmax over the visible keys, one KV block (16 positions, aligned to absolute
 * positions) at a time, so the result depends only on the cache and [first, last]: the
 * AVX2 set's algorithm on 16 lanes (a block's 16 scores are one vector). */
static inline __attribute__((always_inline)) void attention_impl(const attn_args *a, forge_dtype dt) {
    const int B = FORGE_KV_BLOCK_TOKENS, hd = a->head_dim, nr = a->n_rep;
    FORGE_ASSERT(nr <= MAX_REP && hd <= MAX_HD && a->first <= a->last && B == 16);
    const size_t esz = dtype_size(dt), row = (size_t)hd * esz;
    const size_t block_elems = (size_t)a->n_kv_heads * B * hd;
    float m[MAX_REP], l[MAX_REP], corr[MAX_REP];
    _Alignas(64) float s[MAX_REP][16], p[MAX_REP][16];
    _Alignas(64) float acc[MAX_REP][MAX_HD];
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
        /* softmax bookkeeping per query head: block max, rescale factor, probabilities; the
         * block's probabilities are summed as hsum16 (absent keys are 0) */
        const __mmask16 live = (__mmask16)((1u << nt) - 1);
        for (int r = 0; r < nr; r++) {
            __m512 sv = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), live, s[r]);
            float mb = _mm512_reduce_max_ps(sv);
            float mn = mb > m[r] ? mb : m[r];
            corr[r] = m[r] == -INFINITY ? 0.0f : exp1(m[r] - mn);
            __m512 pv = exp16(_mm512_sub_ps(sv, _mm512_set1_ps(mn)));
            _mm512_store_ps(p[r], pv);
            l[r] = l[r] * corr[r] + hsum16(pv);
            m[r] = mn;
        }
        for (int r0 = 0; r0 < nr; r0 += 4) {
            int g = nr - r0 < 4 ? nr - r0 : 4, d = 0;
            for (; d + 64 <= hd; d += 64) PV_G(4)
            for (; d + 16 <= hd; d += 16) PV_G(1)
            for (; d < hd; d++)
                for (int r = r0; r < r0 + g; r++) {
                    float o = acc[r][d] * corr[r];
                    for (int k = 0; k < nt; k++) {
                        float v;
                        if (dt == FORGE_DTYPE_BF16) {
                            uint16_t h;
                            memcpy(&h, vb + (size_t)k * row + 2 * (size_t)d, 2);
                            v = bf16_to_f32(h);
                        } else {
                            memcpy(&v, vb + (size_t)k * row + 4 * (size_t)d, 4);
                        }
                        o = fmaf(p[r][k], v, o);
                    }
                    acc[r][d] = o;
                }
        }
    }
    for (int r = 0; r < nr; r++) {
        float inv = 1.0f / l[r];
        for (int d = 0; d < hd; d++) a->out[(size_t)r * hd + d] = acc[r][d] * inv;
    }
}

static void avx512_attention(const attn_args *a) {
    if (a->kv_dtype == FORGE_DTYPE_BF16) attention_impl(a, FORGE_DTYPE_BF16);
    else attention_impl(a, FORGE_DTYPE_F32);
}

/* ---- peaks ---------------------------------------------------------------------------- */

/* 12 independent FMA chains of 16 lanes: enough to cover the latency on 2 FMA ports */
static double avx512_fma_loop(long iters) {
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    volatile float sink = hsum16(s);
    (void)sink;
    return (double)iters * 12 * 16 * 2;
}

/* vdpbf16ps: 16 lanes x 2 products each; counted as 64 FLOPs per instruction */
__attribute__((target("avx512bf16"))) static double avx512_bf16_dot_loop(long iters) {
    __m512 a[12];
    __m512bh p = (__m512bh)_mm512_set1_epi16(0x3f80), q = (__m512bh)_mm512_set1_epi16(0x3400);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], p, q);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    volatile float sink = hsum16(s);
    (void)sink;
    return (double)iters * 12 * 16 * 4;
}

/* ---- the table ------------------------------------------------------------------------ */

static kernels g_avx512;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_table(void) {
    g_avx512 = *kernels_avx2(); /* element-wise ops and attention: the AVX2 kernels */
    g_avx512.name = "avx512";
    g_avx512.matmul = avx512_matmul;
    g_avx512.to_f32 = avx512_to_f32;
    g_avx512.attention = avx512_attention;
    g_avx512.fma_loop = avx512_fma_loop;
    g_avx512.bf16_dot_loop = cpu_detect().avx512bf16 ? avx512_bf16_dot_loop : NULL;
    g_avx512.quant_direct = QDIRECT_TYPES;
}

const kernels *kernels_avx512(void) {
    pthread_once(&g_once, init_table);
    return &g_avx512;
}
