/* quant_make.c: f32 rows -> quantized weight blocks, for --quantize on load.
 *   Q8_0, Q4_0: ggml's reference quantizers (quantize_row_q8_0_ref / q4_0_ref, which
 *               gguf-py's quants.py reproduces bit for bit; the tests compare with it).
 *   Q4_K: a min/max fit per 32-value sub-block (scale (max - min) / 15, offset -min when
 *         min < 0), scales and offsets then coded in 6 bits against the super-block's
 *         largest, values rounded against the coded scale and offset. Simpler than
 *         llama.cpp's iterative search (make_qkx2_quants): a little more error. */
#include <math.h>
#include <string.h>

#include "kernels/quant.h"

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void make_q8_0(const float *x, uint8_t *o, int n) {
    for (int b = 0; b < n / 32; b++, x += 32, o += 34) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        put16(o, f32_to_f16(d));
        for (int i = 0; i < 32; i++) o[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

static void make_q4_0(const float *x, uint8_t *o, int n) {
    for (int b = 0; b < n / 32; b++, x += 32, o += 18) {
        float amax = 0, max = 0;
        for (int i = 0; i < 32; i++)
            if (amax < fabsf(x[i])) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        float d = max / -8, id = d ? 1.0f / d : 0.0f;
        put16(o, f32_to_f16(d));
        for (int i = 0; i < 16; i++) {
            int a = (int8_t)(x[i] * id + 8.5f), c = (int8_t)(x[i + 16] * id + 8.5f);
            a = a > 15 ? 15 : a;
            c = c > 15 ? 15 : c;
            o[2 + i] = (uint8_t)(a | c << 4);
        }
    }
}

static void make_q4_k(const float *x, uint8_t *o, int n) {
    for (int b = 0; b < n / 256; b++, x += 256, o += 144) {
        float scale[8], off[8], max_scale = 0, max_off = 0;
        for (int j = 0; j < 8; j++) {
            float mn = x[32 * j], mx = x[32 * j];
            for (int l = 1; l < 32; l++) {
                mn = fminf(mn, x[32 * j + l]);
                mx = fmaxf(mx, x[32 * j + l]);
            }
            if (mn > 0) mn = 0;
            scale[j] = (mx - mn) / 15;
            off[j] = -mn;
            max_scale = fmaxf(max_scale, scale[j]);
            max_off = fmaxf(max_off, off[j]);
        }
        float d = max_scale / 63, dmin = max_off / 63;
        uint16_t dh = f32_to_f16(d), mh = f32_to_f16(dmin);
        float dq = f16_to_f32(dh), mq = f16_to_f32(mh);
        uint8_t sc[8], mm[8];
        for (int j = 0; j < 8; j++) {
            int s = dq > 0 ? (int)nearbyintf(scale[j] / dq) : 0, m = mq > 0 ? (int)nearbyintf(off[j] / mq) : 0;
            sc[j] = (uint8_t)(s < 0 ? 0 : s > 63 ? 63 : s);
            mm[j] = (uint8_t)(m < 0 ? 0 : m > 63 ? 63 : m);
        }
        put16(o, dh);
        put16(o + 2, mh);
        uint8_t *s = o + 4;
        for (int j = 0; j < 4; j++) {
            s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
            s[j + 4] = (uint8_t)(mm[j] | (mm[j + 4] >> 4) << 6);
            s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mm[j + 4] & 15) << 4);
        }
        uint8_t q[256];
        for (int j = 0; j < 8; j++) {
            float se = dq * sc[j], me = mq * mm[j];
            for (int l = 0; l < 32; l++) {
                int v = se > 0 ? (int)nearbyintf((x[32 * j + l] + me) / se) : 0;
                q[32 * j + l] = (uint8_t)(v < 0 ? 0 : v > 15 ? 15 : v);
            }
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) o[16 + 32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
    }
}

bool quant_make_row(int qtype, const float *x, void *out, int n) {
    if (n % quant_block_elems(qtype)) return false;
    switch (qtype) {
    case QT_Q8_0: make_q8_0(x, out, n); return true;
    case QT_Q4_0: make_q4_0(x, out, n); return true;
    case QT_Q4_K: make_q4_k(x, out, n); return true;
    default: return false;
    }
}
