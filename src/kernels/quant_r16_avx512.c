/* quant_r16_avx512.c: quantized products from the r16 copies (quant.h, quant_r16.c) with
 * 512-bit vpdpbusd: one instruction multiplies 4 codes of each of 16 weight rows by the same
 * 4 activation bytes (broadcast), so every lane is one output and nothing is summed across
 * lanes. Needs AVX-512 F/BW/VL + VNNI (the quant_avx512 set that points here checks).
 *
 * Each lane evaluates ref_dot's expressions (quant_ref.c) for its row: the block's integer
 * sum exactly, then its f32 scale products and the running sum in the reference's order, with
 * separate multiplies and adds (no fused multiply-add). So every output equals the scalar
 * reference's bits, for one activation row (decode) or many (prefill), whichever tile or
 * chunk it falls in: batch invariance by construction. Activations are quantized by the
 * caller's set (the same bytes as the reference) into a per-row record: the codes, then the
 * blocks' f32 scales, then the blocks' integer offsets (Q4_0: -8 times the block's code sum)
 * or sub-block sums in int16 pairs (Q4_K) and -32 times the 16-value sums (Q6_K). */
#include <immintrin.h>
#include <string.h>

#include "base/error.h"
#include "kernels/quant.h"

/* Decode (one activation row) streams the weights once: each block's lines are prefetched
 * this many bytes ahead into L1, which keeps more misses in flight than the hardware
 * prefetchers alone (1B Q4_K_M decode 24.9 -> 27.2 tok/s; 1-3 KB measured alike) */
#ifndef R16_PF
#define R16_PF 2048
#endif

static inline __m512i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* ---- activation records --------------------------------------------------------------- */

static size_t act_stride(int qtype, int K) {
    size_t s = quant_act_type(qtype) == QT_Q8_0 ? (size_t)K + (size_t)(K / QK) * 8 : (size_t)K + (size_t)(K / QKK) * 84;
    return (s + 63) & ~(size_t)63;
}

/* one row's record from its quantized blocks (tmp: the set's Q8_0 or Q8_K bytes) */
static void act_record(int qtype, const uint8_t *tmp, int K, uint8_t *rec) {
    if (quant_act_type(qtype) == QT_Q8_0) { /* Q4_0, Q8_0 */
        int nb = K / QK, bias = qtype == QT_Q4_0 ? -8 : -128;
        float *d = (float *)(rec + K);
        int32_t *off = (int32_t *)(d + nb);
        for (int b = 0; b < nb; b++, tmp += sizeof(blk_q8_0)) {
            uint16_t h;
            memcpy(&h, tmp, 2);
            d[b] = _cvtsh_ss(h);
            memcpy(rec + (size_t)b * QK, tmp + 2, QK);
            int s = 0;
            for (int i = 0; i < QK; i++) s += (int8_t)tmp[2 + i];
            off[b] = bias * s;
        }
        return;
    }
    int nb = K / QKK;
    float *d = (float *)(rec + K);
    int32_t *pairs = (int32_t *)(d + nb), *off6 = pairs + 4 * nb;
    for (int b = 0; b < nb; b++, tmp += sizeof(blk_q8_k)) {
        blk_q8_k y;
        memcpy(&y, tmp, sizeof y);
        d[b] = y.d;
        memcpy(rec + (size_t)b * QKK, y.qs, QKK);
        for (int p = 0; p < 4; p++) {
            int16_t s2[2] = {(int16_t)(y.bsums[4 * p] + y.bsums[4 * p + 1]), (int16_t)(y.bsums[4 * p + 2] + y.bsums[4 * p + 3])};
            memcpy(&pairs[4 * b + p], s2, 4);
        }
        for (int j = 0; j < 16; j++) off6[16 * b + j] = -32 * y.bsums[j];
    }
}

/* ---- tiles: R activation rows x one group of 16 weight rows --------------------------- */

static inline void store_rows(const __m512 *acc, int R, float *y, int ldy, __mmask16 lanes, const float *bias) {
    __m512 bv = bias ? _mm512_maskz_loadu_ps(lanes, bias) : _mm512_setzero_ps();
    for (int r = 0; r < R; r++) {
        __m512 v = bias ? _mm512_add_ps(acc[r], bv) : acc[r];
        _mm512_mask_storeu_ps(y + (size_t)r * ldy, lanes, v);
    }
}

/* Decode (one activation row) reads each block once: its lines are prefetched R16_PF ahead */
static inline void prefetch_block(const uint8_t *gw, int bytes) {
    for (int l = 0; l < bytes; l += 64) _mm_prefetch((const char *)gw + R16_PF + l, _MM_HINT_T0);
}

/* ref_dot Q4_0 and Q8_0 per lane: sumi = sum(w * y), with w = q - 8 for Q4_0's nibbles and
 * w = code - 128 for Q8_0's codes stored + 128 (the offset is the record's, -8 or -128 times
 * sum(y)); sum += dx * dy * (float)sumi */
static inline __attribute__((always_inline)) void tile_32(const uint8_t *gw, int nb, const uint8_t *act, size_t as,
                                                          int K, const int R, float *y, int ldy, __mmask16 lanes,
                                                          const float *bias, const bool q8) {
    const int bytes = q8 ? QR16_Q8_0_BLOCK : QR16_Q4_0_BLOCK;
    __m512 acc[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int b = 0; b < nb; b++, gw += bytes) {
        if (R == 1 && R16_PF > 0) prefetch_block(gw, bytes);
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gw));
        __m512i lo[4], hi[4]; /* codes 4k..4k+3 and 16+4k..16+4k+3 of each row */
        for (int k = 0; k < 4; k++) {
            if (q8) {
                lo[k] = _mm512_loadu_si512(gw + 32 + 64 * k);
                hi[k] = _mm512_loadu_si512(gw + 32 + 64 * (4 + k));
            } else {
                __m512i v = _mm512_loadu_si512(gw + 32 + 64 * k);
                lo[k] = _mm512_and_si512(v, m4);
                hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
        }
        for (int r = 0; r < R; r++) {
            const uint8_t *rec = act + (size_t)r * as;
            const int8_t *q = (const int8_t *)rec + (size_t)b * QK;
            const float *d = (const float *)(rec + K);
            const int32_t *off = (const int32_t *)(d + nb);
            __m512i s0 = _mm512_set1_epi32(off[b]), s1 = _mm512_setzero_si512();
            for (int k = 0; k < 4; k++) {
                s0 = _mm512_dpbusd_epi32(s0, lo[k], bcast32(q + 4 * k));
                s1 = _mm512_dpbusd_epi32(s1, hi[k], bcast32(q + 16 + 4 * k));
            }
            __m512 t = _mm512_mul_ps(dw, _mm512_set1_ps(d[b]));
            acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(t, _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1))));
        }
    }
    store_rows(acc, R, y, ldy, lanes, bias);
}

/* ref_dot Q4_K per lane: sumi = sum_j sc_j * sum(q * y), summ = sum_j m_j * (y's sub-block
 * sum); sum += (dw * yd) * (float)sumi - (dminw * yd) * (float)summ */
static inline __attribute__((always_inline)) void tile_q4_k(const uint8_t *gw, int nb, const uint8_t *act,
                                                            size_t as, int K, const int R, float *y, int ldy,
                                                            __mmask16 lanes, const float *bias) {
    __m512 acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int b = 0; b < nb; b++, gw += QR16_Q4_K_BLOCK) {
        if (R == 1 && R16_PF > 0) prefetch_block(gw, QR16_Q4_K_BLOCK);
        __m512i isum[4], msum[4];
        for (int r = 0; r < R; r++) isum[r] = msum[r] = _mm512_setzero_si512();
        for (int p = 0; p < 4; p++) {
            __m512i mp = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(gw + 192 + 32 * p)));
            for (int r = 0; r < R; r++) {
                const int32_t *pairs = (const int32_t *)(act + (size_t)r * as + K + (size_t)nb * 4);
                msum[r] = _mm512_dpwssd_epi32(msum[r], mp, _mm512_set1_epi32(pairs[4 * b + p]));
            }
        }
        for (int P = 0; P < 4; P++) {
            const uint8_t *qs = gw + 320 + 512 * P;
            __m512i slo[4], shi[4];
            for (int r = 0; r < R; r++) slo[r] = shi[r] = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                __m512i lo[4], hi[4];
                for (int k = 0; k < 4; k++) {
                    __m512i v = _mm512_loadu_si512(qs + 64 * (4 * h + k));
                    lo[k] = _mm512_and_si512(v, m4);
                    hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                }
                for (int r = 0; r < R; r++) {
                    const int8_t *q = (const int8_t *)act + (size_t)r * as + (size_t)b * QKK + 64 * P + 16 * h;
                    for (int k = 0; k < 4; k++) {
                        slo[r] = _mm512_dpbusd_epi32(slo[r], lo[k], bcast32(q + 4 * k));
                        shi[r] = _mm512_dpbusd_epi32(shi[r], hi[k], bcast32(q + 32 + 4 * k));
                    }
                }
            }
            __m512i sc0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(gw + 64 + 16 * (2 * P))));
            __m512i sc1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(gw + 64 + 16 * (2 * P + 1))));
            for (int r = 0; r < R; r++)
                isum[r] = _mm512_add_epi32(isum[r], _mm512_add_epi32(_mm512_mullo_epi32(slo[r], sc0),
                                                                     _mm512_mullo_epi32(shi[r], sc1)));
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gw));
        __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(gw + 32)));
        for (int r = 0; r < R; r++) {
            float yd = ((const float *)(act + (size_t)r * as + K))[b];
            __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(yd)), dm = _mm512_mul_ps(dmw, _mm512_set1_ps(yd));
            __m512 t = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[r])),
                                     _mm512_mul_ps(dm, _mm512_cvtepi32_ps(msum[r])));
            acc[r] = _mm512_add_ps(acc[r], t);
        }
    }
    store_rows(acc, R, y, ldy, lanes, bias);
}


/* ref_dot Q6_K per lane: sumi = sum_j sc_j * sum((q - 32) * y) over 16-value sub-blocks (the
 * -32 as the record's offsets), sum += (dw * yd) * (float)sumi */
static inline __attribute__((always_inline)) void tile_q6_k(const uint8_t *gw, int nb, const uint8_t *act,
                                                            size_t as, int K, const int R, float *y, int ldy,
                                                            __mmask16 lanes, const float *bias) {
    __m512 acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    for (int b = 0; b < nb; b++, gw += QR16_Q6_K_BLOCK) {
        if (R == 1 && R16_PF > 0) prefetch_block(gw, QR16_Q6_K_BLOCK);
        __m512i isum[4];
        for (int r = 0; r < R; r++) isum[r] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++)
            for (int half = 0; half < 2; half++) {
                __m512i s[4][4];
                for (int r = 0; r < R; r++) {
                    const int32_t *off6 = (const int32_t *)(act + (size_t)r * as + K + (size_t)nb * 20) + 16 * b;
                    for (int c = 0; c < 4; c++) s[r][c] = _mm512_set1_epi32(off6[8 * h + 2 * c + half]);
                }
                for (int i = 4 * half; i < 4 * half + 4; i++) {
                    const uint8_t *sl = gw + 288 + 192 * (8 * h + i);
                    __m512i qa = _mm512_loadu_si512(sl), qb = _mm512_loadu_si512(sl + 64),
                            qh = _mm512_loadu_si512(sl + 128);
                    __m512i v[4];
                    v[0] = _mm512_or_si512(_mm512_and_si512(qa, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30));
                    v[1] = _mm512_or_si512(_mm512_and_si512(qb, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30));
                    v[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qa, 4), m4), _mm512_and_si512(qh, m30));
                    v[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qb, 4), m4),
                                           _mm512_and_si512(_mm512_srli_epi16(qh, 2), m30));
                    for (int r = 0; r < R; r++) {
                        const int8_t *q = (const int8_t *)act + (size_t)r * as + (size_t)b * QKK + 128 * h + 4 * i;
                        for (int c = 0; c < 4; c++) s[r][c] = _mm512_dpbusd_epi32(s[r][c], v[c], bcast32(q + 32 * c));
                    }
                }
                for (int c = 0; c < 4; c++) {
                    __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(gw + 32 + 16 * (8 * h + 2 * c + half))));
                    for (int r = 0; r < R; r++) isum[r] = _mm512_add_epi32(isum[r], _mm512_mullo_epi32(s[r][c], sc));
                }
            }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gw));
        for (int r = 0; r < R; r++) {
            float yd = ((const float *)(act + (size_t)r * as + K))[b];
            acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(yd)), _mm512_cvtepi32_ps(isum[r])));
        }
    }
    store_rows(acc, R, y, ldy, lanes, bias);
}

/* ---- the product ---------------------------------------------------------------------- */

/* m activation rows against one group: tiles of `big` rows, then `mid`, then single rows (each
 * row's operations are the same in every tile size) */
#define TILES(big, mid, TILE)                                                                      \
    do {                                                                                           \
        int r = 0;                                                                                 \
        for (; r + (big) <= m; r += (big)) TILE(big);                                              \
        for (; r + (mid) <= m; r += (mid)) TILE(mid);                                              \
        for (; r < m; r++) TILE(1);                                                                \
    } while (0)
#define ARGS(R) act + (size_t)r * as, as, K, R, y + (size_t)r * ldy, ldy, lanes, bias

static void group_rows(int qtype, const uint8_t *gw, int K, const uint8_t *act, size_t as, int m, float *y, int ldy,
                       __mmask16 lanes, const float *bias) {
    int nb = K / quant_block_elems(qtype);
#define T8(R) tile_32(gw, nb, ARGS(R), true)
#define T4(R) tile_32(gw, nb, ARGS(R), false)
#define TK4(R) tile_q4_k(gw, nb, ARGS(R))
#define TK6(R) tile_q6_k(gw, nb, ARGS(R))
    switch (qtype) {
    case QT_Q8_0: TILES(8, 4, T8); break;
    case QT_Q4_0: TILES(8, 4, T4); break;
    case QT_Q4_K: TILES(4, 2, TK4); break;
    default: TILES(4, 2, TK6); break; /* Q6_K */
    }
#undef T8
#undef T4
#undef TK4
#undef TK6
}
#undef TILES
#undef ARGS

void quant_r16_avx512_matmul(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y, int ldy,
                             void *scratch);
void quant_r16_avx512_matmul(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y, int ldy,
                             void *scratch) {
    const quant_kernels *qk = quant_avx512();
    int K = w->cols, qt = w->qtype, act = quant_act_type(qt);
    size_t as = act_stride(qt, K), tb = (quant_row_bytes(act, K) + 63) & ~(size_t)63;
    size_t cap = mm_pack_floats(w) * sizeof(float);
    FORGE_ASSERT(qk && cap >= tb + as);
    int G = (int)((cap - tb) / as);
    if (G > 64) G = 64;
    uint8_t *recs = scratch, *tmp = recs + (size_t)G * as;
    size_t gb = quant_r16_bytes(qt, QR16, K);
    const uint8_t *r16 = w->r16;
    for (int i0 = 0; i0 < m; i0 += G) {
        int g = m - i0 < G ? m - i0 : G;
        for (int r = 0; r < g; r++) {
            qk->quantize_act(act, x + (size_t)(i0 + r) * ldx, tmp, K);
            act_record(qt, tmp, K, recs + (size_t)r * as);
        }
        for (int j = j0 & ~(QR16 - 1); j < j1; j += QR16) {
            int lo = j < j0 ? j0 - j : 0, hi = j1 - j < QR16 ? j1 - j : QR16;
            __mmask16 lanes = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            group_rows(qt, r16 + (size_t)(j / QR16) * gb, K, recs, as, g, y + (size_t)i0 * ldy + j, ldy, lanes,
                       w->bias ? w->bias + j : NULL);
        }
    }
}
