/* kernels.h: math on plain arrays. Each kernel has a scalar reference (kernels_ref.c) and,
 * where it pays, SIMD sets: AVX2/FMA/F16C (kernels_avx2.c) and AVX-512 F/BW/VL/DQ
 * (kernels_avx512.c) on x86-64, NEON (kernels_neon.c) on AArch64, each file compiled with
 * its own ISA flags, one chosen at run time by kernels_get() (FORGE_CPU=scalar|avx2|avx512|
 * neon forces one). Tests compare every set with the reference on random data.
 *
 * Arithmetic, in every set: matmul multiplies in f32. bf16 and f16 weights are widened to
 * f32 exactly, activations stay f32 (never rounded to bf16), products and sums are f32
 * FMAs. The sets differ only in the order of the K reduction, which each fixes:
 *  - scalar, AVX2 and NEON (two 4-lane vectors): 8 lanes, lane l accumulates k = 8i + l
 *    in increasing i with one FMA chain (scalar: multiply then add), the lanes are summed as
 *    ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), then the K % 8 tail is added in order, then the bias.
 *  - AVX-512: 16 lanes, lane l accumulates every k = l (mod 16) in increasing k with one FMA
 *    chain (the K % 16 tail is a last, masked step: absent k count as 0 * 0), the lanes are
 *    folded (l, l+8), (l, l+4), (l, l+2), (l, l+1), then the bias.
 * Batch invariance holds within a set by construction: that order is the same whatever M
 * (rows), the tile an output lands in, the column range, packing or threads. Packing
 * bf16/f16 weights to f32 first is exact, so packed and direct paths give the same bits.
 * Attention walks keys in KV-block tiles aligned to absolute positions, whatever the batch
 * (the AVX-512 set runs the same attention algorithm on 16 lanes and the AVX2 element-wise
 * kernels). Switching sets changes
 * the last bits of results, never within one set. */
#ifndef FORGE_KERNELS_H
#define FORGE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "forge.h"

/* A weight matrix of `rows` x `cols` in row-major order (HF Linear: [out, in]). */
typedef struct mm_weight {
    const void *data;
    forge_dtype dtype; /* F32, F16 or BF16 */
    int qtype;         /* 0, or the ggml type of quantized rows (kernels/quant.h) */
    int rows, cols;
    const float *bias; /* rows floats or NULL */
    const void *r16;   /* NULL, or the rows' row-interleaved copy (kernels/quant.h) */
} mm_weight;

/* One tile of attention work: n_rep query heads that share one KV head, for one query. */
typedef struct attn_args {
    const float *q;      /* [n_rep][head_dim], RoPE applied */
    int n_rep, head_dim;
    const void *k_cache; /* this layer's K pool: [block][kv_head][FORGE_KV_BLOCK_TOKENS][head_dim] */
    const void *v_cache;
    forge_dtype kv_dtype; /* F32 or BF16 */
    int n_kv_heads, kv_head;
    const int32_t *blocks; /* the sequence's block table */
    int first, last;       /* visible key positions [first, last] */
    float scale;
    float softcap; /* > 0: scores become tanh(s / softcap) * softcap (Gemma 2), after the scale */
    float *out; /* [n_rep][head_dim] */
} attn_args;

typedef struct kernels {
    const char *name;
    /* y[i*ldy + j] = x[i*ldx : +cols] . w[j] (+ bias[j]) for i < m, j0 <= j < j1.
     * pack: scratch of at least mm_pack_floats(w) floats (used for m >= 4 with 16-bit weights). */
    void (*matmul)(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y,
                   int ldy, float *pack);
    /* out[i] = x[i] / rms(x) * w[i] (HF: normalize in f32, then scale) */
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
    /* out[i] = silu(g[i]) * u[i] */
    void (*swiglu)(float *out, const float *g, const float *u, int n);
    /* out[0..n) = float(in[0..n)) for a row of dtype dt */
    void (*to_f32)(float *out, const void *in, forge_dtype dt, int n);
    /* out[0..n) = in rounded to dt (F32 copy or BF16 round-to-nearest-even) */
    void (*from_f32)(void *out, forge_dtype dt, const float *in, int n);
    /* causal attention of one query tile over the paged cache (online softmax) */
    void (*attention)(const attn_args *a);
    /* max of x[0..n) */
    float (*max)(const float *x, int n);
    /* sum of exp(x[i] - shift) */
    float (*sum_exp)(const float *x, int n, float shift);
    /* out[i] = exp(x[i] - shift) */
    void (*exp_shift)(float *out, const float *x, int n, float shift);
    /* runs a register-resident FMA loop; returns the FLOPs done (peak measurement) */
    double (*fma_loop)(long iters);
    /* the same with BF16 dot products (vdpbf16ps); NULL where the set or the CPU has none */
    double (*bf16_dot_loop)(long iters);
    /* bit i set: matmul also takes weights of quantized type i (kernels/quant.h) as stored
     * when m < 4, each weight value dequantized exactly as quant_dequant_row does (0: none) */
    unsigned quant_direct;
} kernels;

/* The variant for this CPU (cpu_get()); the reference when SIMD is off. */
const kernels *kernels_get(void);
const kernels *kernels_ref(void);
/* The AVX2 variant, or NULL when this build or CPU has none. */
const kernels *kernels_avx2(void);
/* The AVX-512 variant, or NULL when this build has none (callers check cpu_get()). */
const kernels *kernels_avx512(void);
/* The AArch64 NEON variant (kernels_neon.c), or NULL on other architectures. */
const kernels *kernels_neon(void);

/* Floats of pack scratch matmul needs for w, and the panel width it packs. */
size_t mm_pack_floats(const mm_weight *w);
int mm_panel_rows(int cols);

/* out[i] = gelu_tanh(g[i]) * u[i] (GeGLU with transformers' gelu_pytorch_tanh), in f32 */
void gelu_tanh_mul(float *out, const float *g, const float *u, int n);

/* RoPE (HF rotate-half): x[i], x[i + d/2] rotated by (cos[i], sin[i]) for i < d/2,
 * for n_heads heads of head_dim d laid out one after another. */
void rope_apply(float *x, int n_heads, int head_dim, const float *cos, const float *sin);
/* The same on the first rot_dim dimensions of each head only (partial rotary: the rest pass). */
void rope_apply_partial(float *x, int n_heads, int head_dim, int rot_dim, const float *cos, const float *sin);

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
    return v.f;
}
static inline uint16_t f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {.f = f};
    if ((v.u & 0x7fffffff) > 0x7f800000) return (uint16_t)((v.u >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((v.u + 0x7fff + ((v.u >> 16) & 1)) >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
size_t dtype_size(forge_dtype dt);
const char *dtype_name(forge_dtype dt);

#endif
