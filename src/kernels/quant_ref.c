/* quant_ref.c: the scalar reference of quant.h: block geometry, dequantization (the order
 * of f32 operations of gguf-py's quants.py, one rounding per numpy operation), activation
 * quantization (llama.cpp's Q8_0 / Q8_K) and block dot products. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/error.h"
#include "kernels/quant.h"

_Static_assert(sizeof(blk_q4_0) == 18 && sizeof(blk_q4_1) == 20 && sizeof(blk_q5_0) == 22 &&
                   sizeof(blk_q5_1) == 24 && sizeof(blk_q8_0) == 34 && sizeof(blk_q4_k) == 144 &&
                   sizeof(blk_q5_k) == 176 && sizeof(blk_q6_k) == 210 && sizeof(blk_q8_k) == 292,
               "ggml block layouts");

bool quant_supported(int t) {
    switch (t) {
    case QT_Q4_0: case QT_Q4_1: case QT_Q5_0: case QT_Q5_1: case QT_Q8_0: case QT_Q4_K: case QT_Q5_K: case QT_Q6_K:
        return true;
    default: return false;
    }
}

int quant_block_elems(int t) { return t == QT_Q4_K || t == QT_Q5_K || t == QT_Q6_K || t == QT_Q8_K ? QKK : QK; }

int quant_block_bytes(int t) {
    switch (t) {
    case QT_Q4_0: return 18;
    case QT_Q4_1: return 20;
    case QT_Q5_0: return 22;
    case QT_Q5_1: return 24;
    case QT_Q8_0: return 34;
    case QT_Q4_K: return 144;
    case QT_Q5_K: return 176;
    case QT_Q6_K: return 210;
    case QT_Q8_K: return 292;
    default: return 0;
    }
}

size_t quant_row_bytes(int t, int cols) { return (size_t)(cols / quant_block_elems(t)) * (size_t)quant_block_bytes(t); }

int quant_act_type(int t) { return t == QT_Q4_K || t == QT_Q5_K || t == QT_Q6_K ? QT_Q8_K : QT_Q8_0; }

size_t weight_row_bytes(const mm_weight *w) {
    return w->qtype ? quant_row_bytes(w->qtype, w->cols) : (size_t)w->cols * dtype_size(w->dtype);
}

static inline float h2f(uint16_t h) { return f16_to_f32(h); }

/* 16-bit little-endian field of a block (blocks may be unaligned in a mapping) */
static inline uint16_t ld16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Q4_K / Q5_K 6-bit scale and min of sub-block j */
static inline void scale_min_k4(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* ---- dequantization ------------------------------------------------------------------ */

/* Values i and i + 16 of a Q4/Q5 block from their codes: d * (q - zero) for the _0 types,
 * d * q + m for the _1 types (the order of operations gguf-py uses). */
static inline void put_pair(float *out, int i, int lo, int hi, float d, float m, int zero) {
    if (zero) {
        out[i] = d * (float)(lo - zero);
        out[i + 16] = d * (float)(hi - zero);
    } else {
        float a = d * (float)lo, c = d * (float)hi;
        out[i] = a + m;
        out[i + 16] = c + m;
    }
}

void quant_dequant_row(int t, const void *row, float *out, int n) {
    const uint8_t *p = row;
    int bs = quant_block_bytes(t), nb = n / quant_block_elems(t);
    for (int b = 0; b < nb; b++, p += bs) {
        switch (t) {
        case QT_Q8_0: {
            float d = h2f(ld16(p));
            for (int i = 0; i < 32; i++) out[i] = (float)(int8_t)p[2 + i] * d;
            out += 32;
            break;
        }
        case QT_Q4_0: case QT_Q4_1: {
            int off = t == QT_Q4_1 ? 4 : 2;
            float d = h2f(ld16(p)), m = t == QT_Q4_1 ? h2f(ld16(p + 2)) : 0;
            for (int i = 0; i < 16; i++)
                put_pair(out, i, p[off + i] & 15, p[off + i] >> 4, d, m, t == QT_Q4_0 ? 8 : 0);
            out += 32;
            break;
        }
        case QT_Q5_0: case QT_Q5_1: {
            int off = t == QT_Q5_1 ? 4 : 2;
            float d = h2f(ld16(p)), m = t == QT_Q5_1 ? h2f(ld16(p + 2)) : 0;
            uint32_t qh = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
            const uint8_t *qs = p + off + 4;
            for (int i = 0; i < 16; i++)
                put_pair(out, i, (qs[i] & 15) | (int)((qh >> i) & 1) << 4,
                         (qs[i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4, d, m, t == QT_Q5_0 ? 16 : 0);
            out += 32;
            break;
        }
        case QT_Q4_K: case QT_Q5_K: {
            float d = h2f(ld16(p)), dmin = h2f(ld16(p + 2));
            const uint8_t *sc = p + 4, *qh = p + 16, *qs = p + (t == QT_Q5_K ? 48 : 16);
            for (int j = 0; j < 8; j++) {
                int s, mn;
                scale_min_k4(sc, j, &s, &mn);
                float ds = d * (float)s, dm = dmin * (float)mn;
                const uint8_t *q = qs + (j / 2) * 32;
                for (int l = 0; l < 32; l++) {
                    int v = j % 2 ? q[l] >> 4 : q[l] & 15;
                    if (t == QT_Q5_K) v |= ((qh[l] >> j) & 1) << 4;
                    float a = ds * (float)v;
                    out[j * 32 + l] = a - dm;
                }
            }
            out += 256;
            break;
        }
        case QT_Q6_K: {
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *sc = (const int8_t *)(p + 192);
            float d = h2f(ld16(p + 208));
            for (int e = 0; e < 256; e++) {
                int h = e / 128, r = e % 128;
                int lo = (ql[h * 64 + r % 64] >> (4 * (r / 64))) & 15;
                int hi = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
                float ds = d * (float)sc[e / 16];
                out[e] = ds * (float)((lo | hi << 4) - 32);
            }
            out += 256;
            break;
        }
        default: memset(out, 0, (size_t)quant_block_elems(t) * sizeof(float)); out += quant_block_elems(t);
        }
    }
}

/* ---- activations ---------------------------------------------------------------------- */

static void ref_quantize_act(int act, const float *x, void *out, int n) {
    uint8_t *o = out;
    if (act == QT_Q8_0) {
        for (int b = 0; b < n / 32; b++, x += 32, o += 34) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
            float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
            uint16_t dh = f32_to_f16(d);
            memcpy(o, &dh, 2);
            for (int i = 0; i < 32; i++) o[2 + i] = (uint8_t)(int8_t)nearbyintf(x[i] * id); /* ties to even, as ggml's SIMD paths */
        }
        return;
    }
    for (int b = 0; b < n / 256; b++, x += 256, o += 292) {
        blk_q8_k k;
        float max = 0, amax = 0;
        for (int i = 0; i < 256; i++)
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        if (amax == 0) {
            memset(&k, 0, sizeof k);
        } else {
            float iscale = -127.f / max;
            for (int i = 0; i < 256; i++) {
                float v = nearbyintf(iscale * x[i]);
                k.qs[i] = (int8_t)(v > 127 ? 127 : v);
            }
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int i = 0; i < 16; i++) s += k.qs[j * 16 + i];
                k.bsums[j] = (int16_t)s;
            }
            k.d = 1 / iscale;
        }
        memcpy(o, &k, sizeof k);
    }
}

/* ---- dot products --------------------------------------------------------------------- */

static float ref_dot(int t, const void *wv, const void *av, int n) {
    const uint8_t *w = wv, *a = av;
    float sum = 0;
    if (quant_act_type(t) == QT_Q8_0) {
        int bs = quant_block_bytes(t);
        for (int b = 0; b < n / 32; b++, w += bs, a += 34) {
            const int8_t *y = (const int8_t *)(a + 2);
            float dy = h2f(ld16(a)), dx = h2f(ld16(w));
            int sumi = 0, sumy = 0;
            switch (t) {
            case QT_Q8_0:
                for (int i = 0; i < 32; i++) sumi += (int8_t)w[2 + i] * y[i];
                sum += dx * dy * (float)sumi;
                break;
            case QT_Q4_0:
                for (int i = 0; i < 16; i++) sumi += ((w[2 + i] & 15) - 8) * y[i] + ((w[2 + i] >> 4) - 8) * y[i + 16];
                sum += dx * dy * (float)sumi;
                break;
            case QT_Q5_0: {
                uint32_t qh;
                memcpy(&qh, w + 2, 4);
                for (int i = 0; i < 16; i++) {
                    int lo = ((w[6 + i] & 15) | (int)((qh >> i) & 1) << 4) - 16;
                    int hi = ((w[6 + i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4) - 16;
                    sumi += lo * y[i] + hi * y[i + 16];
                }
                sum += dx * dy * (float)sumi;
                break;
            }
            case QT_Q4_1: case QT_Q5_1: {
                uint32_t qh = 0;
                if (t == QT_Q5_1) memcpy(&qh, w + 4, 4);
                const uint8_t *qs = w + (t == QT_Q5_1 ? 8 : 4);
                for (int i = 0; i < 16; i++) {
                    int lo = (qs[i] & 15) | (int)((qh >> i) & 1) << 4;
                    int hi = (qs[i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
                    sumi += lo * y[i] + hi * y[i + 16];
                    sumy += y[i] + y[i + 16];
                }
                float m = h2f(ld16(w + 2));
                sum += dx * dy * (float)sumi + m * dy * (float)sumy;
                break;
            }
            }
        }
        return sum;
    }
    for (int b = 0; b < n / 256; b++, a += 292) {
        blk_q8_k y;
        memcpy(&y, a, sizeof y);
        if (t == QT_Q6_K) {
            const uint8_t *ql = w, *qh = w + 128;
            const int8_t *sc = (const int8_t *)(w + 192);
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int i = 0; i < 16; i++) {
                    int e = j * 16 + i, h = e / 128, r = e % 128;
                    int lo = (ql[h * 64 + r % 64] >> (4 * (r / 64))) & 15;
                    int hi = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
                    s += ((lo | hi << 4) - 32) * y.qs[e];
                }
                sumi += sc[j] * s;
            }
            sum += h2f(ld16(w + 208)) * y.d * (float)sumi;
            w += 210;
            continue;
        }
        const uint8_t *scales = w + 4, *qh = w + 16, *qs = w + (t == QT_Q5_K ? 48 : 16);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            int s, mn;
            scale_min_k4(scales, j, &s, &mn);
            const uint8_t *q = qs + (j / 2) * 32;
            int si = 0;
            for (int l = 0; l < 32; l++) {
                int v = j % 2 ? q[l] >> 4 : q[l] & 15;
                if (t == QT_Q5_K) v |= ((qh[l] >> j) & 1) << 4;
                si += v * y.qs[j * 32 + l];
            }
            sumi += s * si;
            summ += mn * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
        }
        float d = h2f(ld16(w)) * y.d, dmin = h2f(ld16(w + 2)) * y.d;
        sum += d * (float)sumi - dmin * (float)summ;
        w += quant_block_bytes(t);
    }
    return sum;
}

static void ref_dot4(int t, const void *w, const void *a, size_t as, int n, float *out) {
    for (int r = 0; r < 4; r++) out[r] = ref_dot(t, w, (const uint8_t *)a + (size_t)r * as, n);
}

static const quant_kernels g_qref = {"scalar", ref_quantize_act, ref_dot, ref_dot4, NULL, 0, NULL, 0, NULL};

const quant_kernels *quant_ref(void) { return &g_qref; }

#if !defined(__x86_64__)
const quant_kernels *quant_avx2(void) { return NULL; }
const quant_kernels *quant_avx512(void) { return NULL; }
#endif
#if !defined(__aarch64__)
const quant_kernels *quant_neon(void) { return NULL; }
const quant_kernels *quant_neon_dotprod(void) { return NULL; }
const quant_kernels *quant_neon_i8mm(void) { return NULL; }
#endif

/* The best set the CPU has, as cpu_get() sees it (FORGE_CPU=scalar|avx2|avx512|neon|
 * neon-dotprod|neon-i8mm forces one). */
const quant_kernels *quant_get(void) {
    const cpu_features *f = cpu_get();
    if (f->neon_i8mm && quant_neon_i8mm()) return quant_neon_i8mm();
    if (f->neon_dotprod && quant_neon_dotprod()) return quant_neon_dotprod();
    if (f->neon && quant_neon()) return quant_neon();
    if (f->avx512vnni && quant_avx512()) return quant_avx512();
    if (f->avx2 && quant_avx2()) return quant_avx2();
    return &g_qref;
}

/* ---- matrix product ------------------------------------------------------------------- */

enum { QM_GROUP = 16 };

void quant_matmul(const quant_kernels *qk, const float *x, int ldx, int m, const mm_weight *w, int j0, int j1,
                  float *y, int ldy, void *scratch) {
    int act = quant_act_type(w->qtype);
    size_t arb = quant_row_bytes(act, w->cols), rb = weight_row_bytes(w);
    size_t cap = mm_pack_floats(w) * sizeof(float) / arb;
    int group = cap < QM_GROUP ? (int)cap : QM_GROUP;
    FORGE_ASSERT(group >= 1);
    uint8_t *qa = scratch;
    const uint8_t *wd = w->data;
    for (int i0 = 0; i0 < m; i0 += group) {
        int g = m - i0 < group ? m - i0 : group;
        for (int r = 0; r < g; r++) qk->quantize_act(act, x + (size_t)(i0 + r) * ldx, qa + (size_t)r * arb, w->cols);
        int j = j0;
        if (qk->dot2x4) /* weight rows in pairs, activation rows in fours: 8 outputs a call */
            for (; j + 2 <= j1; j += 2) {
                const uint8_t *wr = wd + (size_t)j * rb;
                int r = 0;
                for (; r + 4 <= g; r += 4) {
                    float v[8];
                    qk->dot2x4(w->qtype, wr, rb, qa + (size_t)r * arb, arb, w->cols, v);
                    for (int c = 0; c < 2; c++)
                        for (int k = 0; k < 4; k++)
                            y[(size_t)(i0 + r + k) * ldy + j + c] = w->bias ? v[c * 4 + k] + w->bias[j + c] : v[c * 4 + k];
                }
                for (; r < g; r++)
                    for (int c = 0; c < 2; c++) {
                        float v = qk->dot(w->qtype, wr + (size_t)c * rb, qa + (size_t)r * arb, w->cols);
                        y[(size_t)(i0 + r) * ldy + j + c] = w->bias ? v + w->bias[j + c] : v;
                    }
            }
        for (; j < j1; j++) {
            const uint8_t *wr = wd + (size_t)j * rb;
            float bias = w->bias ? w->bias[j] : 0.0f;
            int r = 0;
            for (; r + 4 <= g; r += 4) {
                float v[4];
                qk->dot4(w->qtype, wr, qa + (size_t)r * arb, arb, w->cols, v);
                for (int k = 0; k < 4; k++) y[(size_t)(i0 + r + k) * ldy + j] = w->bias ? v[k] + bias : v[k];
            }
            for (; r < g; r++) {
                float v = qk->dot(w->qtype, wr, qa + (size_t)r * arb, w->cols);
                y[(size_t)(i0 + r) * ldy + j] = w->bias ? v + bias : v;
            }
        }
    }
}

bool quant_uses_f32(const kernels *k, const quant_kernels *qk, int qtype) {
    return qk->dequant && qtype > 0 && qtype < 32 && (qk->dequant_types >> qtype & 1u) && (k->quant_direct >> qtype & 1u);
}

void quant_matmul_f32(const kernels *k, const quant_kernels *qk, const float *x, int ldx, int m, const mm_weight *w,
                      int j0, int j1, float *y, int ldy, float *scratch) {
    if (m < 4) { /* decode: the set's tiles take the blocks as stored */
        k->matmul(x, ldx, m, w, j0, j1, y, ldy, NULL);
        return;
    }
    int K = w->cols, np = mm_panel_rows(K);
    size_t rb = weight_row_bytes(w);
    const uint8_t *wd = w->data;
    for (int jp = j0; jp < j1; jp += np) {
        int n = j1 - jp < np ? j1 - jp : np;
        for (int j = 0; j < n; j++) qk->dequant(w->qtype, wd + (size_t)(jp + j) * rb, scratch + (size_t)j * K, K);
        mm_weight f = {.data = scratch, .dtype = FORGE_DTYPE_F32, .rows = n, .cols = K,
                       .bias = w->bias ? w->bias + jp : NULL};
        k->matmul(x, ldx, m, &f, 0, n, y + jp, ldy, NULL);
    }
}
