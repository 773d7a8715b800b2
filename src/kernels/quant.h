/* quant.h: ggml's quantized blocks, used in place from a GGUF mapping.
 *
 * Weight types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32) and Q4_K, Q5_K, Q6_K (super-
 * blocks of 256), with the byte layouts llama.cpp writes. Dequantization follows gguf-py's
 * quants.py (the tests compare with goldens it made). Two ways to multiply, fixed per weight
 * type and kernel set (never per batch): the f32 path (quant_matmul_f32; the AVX-512 set,
 * for the types in its quant_direct) keeps activations in f32 against the exact weight
 * values; the integer path (quant_matmul, everything else) quantizes each activation row
 * per block as llama.cpp does: Q8_0 (32 values, one f16 scale) for the
 * 32-blocks, Q8_K (256 values, one f32 scale, 16 partial sums) for the K types; the integer
 * dot product of a block is exact, its scale product is added to one f32 sum per output in
 * block order.
 *
 * Batch invariance: an output y[i][j] is quant_dot(w row j, quantized x row i), computed by
 * the same code whatever the number of rows or the chunk it falls in; quantizing a row
 * depends on that row only. Variants (scalar reference, AVX2, AVX-512 VNNI) differ from one
 * another only in the order of the f32 block sums; the tests bound that difference. The
 * NEON variants (plain and dotprod) keep the reference's f32 order (quant_neon.inc). */
#ifndef FORGE_KERNELS_QUANT_H
#define FORGE_KERNELS_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

enum {
    QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7, QT_Q8_0 = 8,
    QT_Q4_K = 12, QT_Q5_K = 13, QT_Q6_K = 14, QT_Q8_K = 15,
};
enum { QK = 32, QKK = 256 };

/* block layouts (bytes, little-endian, no padding) */
typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;               /* 18 */
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;            /* 20 */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0; /* 22 */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1; /* 24 */
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;                /* 34 */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_k;              /* 144 */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_k; /* 176 */
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_k;      /* 210 */
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } blk_q8_k;                          /* 292 */

/* Q4_K / Q5_K: a super-block's eight 6-bit scales and mins from its 12 packed bytes, unpacked
 * with word operations as llama.cpp does (scalar; shared by the integer and f32 kernels) */
static inline void quant_k4_scales_mins(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t u[3], o[4];
    memcpy(u, s, 12);
    const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
    o[0] = u[0] & lo6;                                       /* scales 0..3 */
    o[1] = (u[2] & lo4) | (((u[0] >> 6) & lo2) << 4);        /* scales 4..7 */
    o[2] = u[1] & lo6;                                       /* mins 0..3 */
    o[3] = ((u[2] >> 4) & lo4) | (((u[1] >> 6) & lo2) << 4); /* mins 4..7 */
    memcpy(sc, o, 8);
    memcpy(mn, o + 2, 8);
}

/* true for the weight types above */
bool quant_supported(int qtype);
/* elements per block and bytes per block of a weight or activation type */
int quant_block_elems(int qtype);
int quant_block_bytes(int qtype);
/* bytes of one row of cols values (cols a multiple of the block) */
size_t quant_row_bytes(int qtype, int cols);
/* the activation type a weight type's dot product takes: QT_Q8_0 or QT_Q8_K */
int quant_act_type(int qtype);
/* bytes of a weight's row, dtype or quantized */
size_t weight_row_bytes(const mm_weight *w);

typedef struct quant_kernels {
    const char *name;
    /* quantizes n values (a multiple of the activation block) to act_type blocks */
    void (*quantize_act)(int act_type, const float *x, void *out, int n);
    /* dot product of one weight row (n values of qtype) with one quantized activation row */
    float (*dot)(int qtype, const void *w, const void *a, int n);
    /* out[r] = dot(qtype, w, a + r * a_stride, n) for r < 4, with dot's bits exactly (the
     * weight row decoded once for four activation rows) */
    void (*dot4)(int qtype, const void *w, const void *a, size_t a_stride, int n, float *out);
    /* out[0..n) = one weight row's values with quant_dequant_row's bits (the same IEEE
     * operations), for the types whose bit is set in dequant_types; NULL where the variant
     * has none. quant_matmul_f32 multiplies such weights through the f32 kernels. */
    void (*dequant)(int qtype, const void *row, float *out, int n);
    unsigned dequant_types;
    /* out[c * 4 + r] = dot(qtype, w + c * w_stride, a + r * a_stride, n) for c < 2, r < 4,
     * with dot's bits: two weight rows against four activation rows, the shape of i8mm's 2x2
     * matrix tiles. NULL where the variant has none (quant_matmul then uses dot4). */
    void (*dot2x4)(int qtype, const void *w, size_t w_stride, const void *a, size_t a_stride, int n, float *out);
    /* The types (bit qtype) this set multiplies from the r16 copy (w->r16, quant_r16_pack),
     * and that product: quant_matmul's contract, with each output the reference's dot bits
     * exactly (ref_dot's expressions, lane by lane), for decode and batches alike. */
    unsigned r16_types;
    void (*matmul_r16)(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y, int ldy,
                       void *scratch);
} quant_kernels;

const quant_kernels *quant_ref(void);
const quant_kernels *quant_avx2(void);   /* NULL when the CPU or build has none */
const quant_kernels *quant_avx512(void); /* AVX-512 F/BW/VL + VNNI; NULL when absent */
const quant_kernels *quant_neon(void);   /* AArch64 Advanced SIMD; NULL elsewhere */
const quant_kernels *quant_neon_dotprod(void); /* AArch64 with FEAT_DotProd (SDOT); NULL when absent */
const quant_kernels *quant_neon_i8mm(void); /* AArch64 with FEAT_DotProd and FEAT_I8MM (SMMLA); NULL when absent */
/* the best variant for this CPU (honours FORGE_SIMD=off like kernels_get) */
const quant_kernels *quant_get(void);

/* out[0..n) = the values of one row (reference dequantization, exact to quants.py) */
void quant_dequant_row(int qtype, const void *row, float *out, int n);

/* Quantizes n values of one weight row to qtype (Q8_0, Q4_0 or Q4_K; see quant_make.c);
 * false for other types or n not a multiple of the block. */
bool quant_make_row(int qtype, const float *x, void *out, int n);

/* Row-interleaved copies ("r16"): groups of 16 weight rows stored block by block, each block's
 * scales for the 16 rows together and its codes in 64-byte slices holding 4 bytes of every row,
 * so that one 512-bit integer dot product serves 16 outputs and a block's 16 scales are one
 * load (the layouts: quant_r16.c). Made at load (the model owns the copy; rows past the end are
 * zero). Q8_0, Q4_0, Q4_K and Q6_K. */
enum { QR16 = 16, QR16_Q4_0_BLOCK = 32 + 256, QR16_Q8_0_BLOCK = 32 + 512, QR16_Q4_K_BLOCK = 64 + 128 + 128 + 2048, QR16_Q6_K_BLOCK = 32 + 256 + 3072 };
/* bytes of the r16 copy of a rows x cols matrix; 0 when qtype or cols has no r16 layout */
size_t quant_r16_bytes(int qtype, int rows, int cols);
/* writes the groups [g0, g1) of src's r16 copy into dst (quant_r16_bytes(qtype, rows, cols)
 * bytes); false when the type has no r16 layout */
bool quant_r16_pack(int qtype, const void *src, int rows, int cols, int g0, int g1, void *dst);
/* true when qk multiplies w from its r16 copy */
static inline bool quant_uses_r16(const quant_kernels *qk, const mm_weight *w) {
    return w->r16 && qk->matmul_r16 && w->qtype > 0 && w->qtype < 32 && (qk->r16_types >> w->qtype & 1u);
}

/* true when weights of qtype go through quant_matmul_f32: qk dequantizes the type and the
 * kernel set k takes it as stored for decode (k->quant_direct) */
bool quant_uses_f32(const kernels *k, const quant_kernels *qk, int qtype);

/* y[i*ldy + j] = w row j . x row i (+ bias[j]) for i < m, j0 <= j < j1, the f32 way: panels
 * of mm_panel_rows(cols) weight rows dequantized exactly (qk->dequant) into scratch (at least
 * mm_pack_floats(w) floats) and multiplied by k->matmul as F32 weights, x kept in f32; for
 * m < 4 k->matmul takes the blocks as stored (k->quant_direct) with the same values. Every
 * weight value is the reference's, so k's contract (kernels.h) carries over: the same bits
 * for a row whatever m, the chunk or the thread. More accurate than the Q8 activations of
 * quant_matmul (llama.cpp's scheme), and it takes the f32 kernels' speed: the blocked GEMM
 * for prefill and batches, the streaming tiles for decode. */
void quant_matmul_f32(const kernels *k, const quant_kernels *qk, const float *x, int ldx, int m, const mm_weight *w,
                      int j0, int j1, float *y, int ldy, float *scratch);

/* y[i*ldy + j] = w row j . x row i (+ bias[j]) for i < m, j0 <= j < j1, with x rows quantized
 * to the activation type in scratch (at least mm_pack_floats(w) floats). */
void quant_matmul(const quant_kernels *qk, const float *x, int ldx, int m, const mm_weight *w, int j0, int j1,
                  float *y, int ldy, void *scratch);

#endif
