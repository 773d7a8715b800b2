/* quant_r16.c: the row-interleaved ("r16") copies of quantized weights (quant.h), made once
 * at load for kernel sets whose r16_types name the type. Plain byte moves: the values and
 * scales are the stored ones, so a kernel on the copy can give the reference's bits. */
#include "kernels/quant.h"

/* bytes of one r16 block (16 rows of one stored block); 0 for types without a layout */
static int r16_block_bytes(int qtype) {
    switch (qtype) {
    case QT_Q8_0: return QR16_Q8_0_BLOCK;
    case QT_Q4_0: return QR16_Q4_0_BLOCK;
    case QT_Q4_K: return QR16_Q4_K_BLOCK;
    case QT_Q6_K: return QR16_Q6_K_BLOCK;
    default: return 0;
    }
}

size_t quant_r16_bytes(int qtype, int rows, int cols) {
    int bb = r16_block_bytes(qtype);
    if (!bb || rows <= 0 || cols <= 0 || cols % quant_block_elems(qtype)) return 0;
    return ((size_t)rows + QR16 - 1) / QR16 * (size_t)(cols / quant_block_elems(qtype)) * (size_t)bb;
}

/* Each pack_* writes row r (of 16) of one stored block blk into its r16 block o. */

/* Q4_0: the 16 rows' f16 scales, then 4 slices of 64 bytes, slice k holding bytes 4k..4k+3 of
 * each row's 16 nibble bytes (row r at 4r) */
static void pack_q4_0(const uint8_t *blk, int r, uint8_t *o) {
    memcpy(o + 2 * r, blk, 2);
    for (int k = 0; k < 4; k++) memcpy(o + 32 + 64 * k + 4 * r, blk + 2 + 4 * k, 4);
}

/* Q8_0: the 16 rows' f16 scales, then 8 slices of 64 bytes, slice k holding codes 4k..4k+3 of
 * each row (row r at 4r) plus 128 (xor 0x80: the unsigned operand vpdpbusd takes; the
 * activation record's offset takes the 128 back out exactly) */
static void pack_q8_0(const uint8_t *blk, int r, uint8_t *o) {
    memcpy(o + 2 * r, blk, 2);
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < 4; i++) o[32 + 64 * k + 4 * r + i] = blk[2 + 4 * k + i] ^ 0x80;
}

/* Q4_K: d[16] and dmin[16] (f16), the eight 6-bit scales as bytes [sub-block][row] (128), the
 * mins as byte pairs [pair p][row][2] (128), then for each pair of sub-blocks P (the 32 nibble
 * bytes 32P..32P+31 of a row: low nibbles sub-block 2P, high 2P+1) 8 slices of 64 bytes, slice
 * k holding bytes 32P+4k..+3 of each row (row r at 4r) */
static void pack_q4_k(const uint8_t *blk, int r, uint8_t *o) {
    memcpy(o + 2 * r, blk, 2);
    memcpy(o + 32 + 2 * r, blk + 2, 2);
    uint8_t sc[8], mn[8];
    quant_k4_scales_mins(blk + 4, sc, mn);
    for (int j = 0; j < 8; j++) o[64 + 16 * j + r] = sc[j];
    for (int p = 0; p < 4; p++) {
        o[192 + 32 * p + 2 * r] = mn[2 * p];
        o[192 + 32 * p + 2 * r + 1] = mn[2 * p + 1];
    }
    for (int P = 0; P < 4; P++)
        for (int k = 0; k < 8; k++) memcpy(o + 320 + 512 * P + 64 * k + 4 * r, blk + 16 + 32 * P + 4 * k, 4);
}

/* Q6_K: d[16] (f16), the sixteen int8 scales as bytes [sub-block][row] (256), then for each
 * half h (values 128h..128h+127) and each i (0..7) three slices of 64 bytes holding 4 bytes of
 * every row (row r at 4r): ql[64h + 4i..], ql[64h + 32 + 4i..] and qh[32h + 4i..]. Together
 * they hold values 128h + 4i + {0..3} + {0, 32, 64, 96}: low nibbles of the first and second
 * slice, then their high nibbles, with the qh slice's bit pairs 0, 1, 2, 3 on top. */
static void pack_q6_k(const uint8_t *blk, int r, uint8_t *o) {
    const uint8_t *ql = blk, *qh = blk + 128, *sc = blk + 192;
    memcpy(o + 2 * r, blk + 208, 2);
    for (int j = 0; j < 16; j++) o[32 + 16 * j + r] = sc[j];
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 8; i++) {
            uint8_t *sl = o + 288 + 192 * (8 * h + i) + 4 * r;
            memcpy(sl, ql + 64 * h + 4 * i, 4);
            memcpy(sl + 64, ql + 64 * h + 32 + 4 * i, 4);
            memcpy(sl + 128, qh + 32 * h + 4 * i, 4);
        }
}

bool quant_r16_pack(int qtype, const void *src, int rows, int cols, int g0, int g1, void *dst) {
    size_t gb = quant_r16_bytes(qtype, QR16, cols);
    if (!gb) return false;
    void (*pack)(const uint8_t *, int, uint8_t *) = qtype == QT_Q8_0 ? pack_q8_0 : qtype == QT_Q4_0 ? pack_q4_0
                                                    : qtype == QT_Q4_K ? pack_q4_k : pack_q6_k;
    size_t rb = quant_row_bytes(qtype, cols), sb = (size_t)quant_block_bytes(qtype), bb = (size_t)r16_block_bytes(qtype);
    int nb = cols / quant_block_elems(qtype);
    uint8_t *o = (uint8_t *)dst + (size_t)g0 * gb;
    for (int g = g0; g < g1; g++, o += gb) {
        memset(o, 0, gb); /* rows past the end stay zero */
        for (int b = 0; b < nb; b++)
            for (int r = 0; r < QR16 && g * QR16 + r < rows; r++)
                pack((const uint8_t *)src + (size_t)(g * QR16 + r) * rb + (size_t)b * sb, r, o + (size_t)b * bb);
    }
    return true;
}
