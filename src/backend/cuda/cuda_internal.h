/* cuda_internal.h: what the .cu files of the CUDA backend share: device matrices, the
 * kernel launchers, the GEMM dispatch and error helpers. C++ (nvcc) only. */
#ifndef FORGE_CUDA_INTERNAL_H
#define FORGE_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backend/cuda/cuda_abi.h"

/* Kernel launches and dynamic shared memory go through these two macros so the same sources
 * also build for the CPU emulator (tests/cuda/emu/, FORGE_CUDA_EMU), which runs kernels
 * block by block with one fiber per thread. Template kernels are launched through a local
 * function pointer (macro arguments cannot hold their commas). */
#ifdef FORGE_CUDA_EMU
#define LAUNCH(kernel, grid, block, smem, stream, ...) \
    emu_launch(dim3(grid), dim3(block), (smem), (stream), [=]() { kernel(__VA_ARGS__); })
#define DYNAMIC_SMEM(type, name) type *name = (type *)emu_dynamic_smem()
#else
#define LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define DYNAMIC_SMEM(type, name) extern __shared__ type name[]
#endif

/* ---- device helpers the kernels share ---- */

/* Sum over the warp by a fixed xor butterfly: every lane gets the same bits. */
template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Eight bf16 values in 16 bytes as floats, from the words' bits (bf16 is the top half of an
 * f32; no type punning through pointers, which the emulator's -O2 breaks). */
__device__ __forceinline__ void bf16x8_to_f32(const uint4 &r, float *w) {
    const unsigned u[4] = {r.x, r.y, r.z, r.w};
    for (int i = 0; i < 4; i++) {
        w[2 * i] = __uint_as_float(u[i] << 16);
        w[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
}

enum {
    KV_BLOCK = FORGE_KV_BLOCK_TOKENS,
    GEMV_WARPS = 4,       /* warps per GEMV block, each with 1 to 4 output columns */
    ATTN_SPLITS = 16,     /* key-range splits per (token, KV head): flash-decoding */
    ATTN_TILE = 64,       /* keys per shared-memory tile */
    ATTN_THREADS = 256,
    /* Every batch takes Forge's own GEMV/GEMM (one fixed reduction order per output: batch
     * invariant); FORGE_CUDA_BLAS=1 (or FORGE_CUDA_GEMV_MAX) sends larger batches to cuBLAS. */
    DEFAULT_GEMV_MAX = 0x7fffffff,
    DEFAULT_GRAPH_MAX = 128,
};

/* A matrix in device memory, rows x cols row-major, dtype (or ggml blocks of qtype) as stored. */
struct dmat {
    const void *data;
    int dtype;
    int rows, cols;
    int qtype; /* 0, or FCUDA_Q*: always the GEMV path (cuBLAS has no such type) */
};

/* How the GEMM for a weight and a row count runs. */
enum gemm_path { GEMM_AUTO = 0, GEMM_GEMV = 1, GEMM_BLAS = 2 };

struct gemm_ctx {
    cudaStream_t stream;
    cublasHandle_t blas;
    int gemv_max; /* rows up to which GEMV is used */
    bool tf32;    /* F32 weights through TF32 tensor cores (off: exact f32) */
    void *conv;   /* scratch for x converted to the weight's dtype */
    size_t conv_bytes;
};

/* The dtype the GEMM for w with M rows wants its input in: F32 for GEMV and F32 weights,
 * the weight's 16-bit type for cuBLAS (which has no bf16 x f32 product). */
int gemm_input_dtype(const gemm_ctx &g, const dmat &w, int M, int path);
/* y[M][w.rows] (row stride ldy) = x[M][w.cols] . w^T. x is in dtype xdt with row stride
 * ldx; converted first when the path needs another dtype. */
forge_status gemm_run(const gemm_ctx &g, const void *x, int xdt, int ldx, int M, const dmat &w, float *y, int ldy,
                      int path, forge_error *err);
/* The GEMV kernel with fused neighbours (cuda_gemm.cu), f32 x of row stride ldx:
 *  GEMV_PLAIN        y[m] = x[m] . W^T
 *  GEMV_NORM         y[m] = (rmsnorm(x[r]) * norm_w) . W^T, r = xrows[m] (xrows NULL: m)
 *  GEMV_RESID        y[m] = y[m] + (x[m] . W^T + bias)
 *  GEMV_SWIGLU_RESID y[m] = y[m] + (swiglu(x[m]) . W^T + bias), x[m] = [gate | up] of
 *                    W.cols each, gate += bg, up += bu */
enum gemv_mode { GEMV_PLAIN, GEMV_NORM, GEMV_RESID, GEMV_SWIGLU_RESID };
struct gemv_extra {
    const int32_t *xrows = nullptr;
    const float *norm_w = nullptr;
    float eps = 0;
    const float *bg = nullptr, *bu = nullptr, *bias = nullptr;
};
struct gemv_args {
    const float *x;
    int ldx, M;
    const void *W;
    int N, K;
    float *y;
    int ldy;
    const int32_t *xrows;
    const float *norm_w;
    float eps;
    const float *bg, *bu;
    int I;
    const float *bias;
};
void gemv_run(cudaStream_t s, int mode, const float *x, int ldx, int M, const dmat &w, float *y, int ldy,
              const gemv_extra &e);

/* ---- quantized weights (cuda_quant.cu) ---- */
bool quant_gpu_supported(int qtype);
/* A weight the kernels can take: F32/BF16/F16, or a supported quantized type whose blocks
 * fill the rows; else false with FORGE_E_UNSUPPORTED naming it. */
bool weight_ok(const fcuda_weight &w, forge_error *err);
/* bytes of one row of cols values of dtype, or of qtype blocks when qtype is set */
size_t dmat_row_bytes(int dtype, int qtype, int cols);
/* gemv_run for a quantized weight (a.W its blocks) */
void gemvq_run(cudaStream_t s, int mode, const gemv_args &a, int qtype);
void launch_embedq(cudaStream_t s, const dmat &embed, const int32_t *tokens, int T, float *x);

/* ---- element-wise and row kernels (cuda_kernels.cu) ---- */
void launch_embed(cudaStream_t s, const dmat &embed, const int32_t *tokens, int T, float *x);
/* Row r (source row idx[r] when idx is not NULL): v = x + (add + add_bias) (written back to x
 * when write_back), out[r] = rmsnorm(v) * w in out_dtype. */
void launch_add_rmsnorm(cudaStream_t s, float *x, const float *add, const float *add_bias, const int32_t *idx,
                        bool write_back, const float *w, int rows, int n, float eps, void *out, int out_dtype);
struct rope_store_args {
    float *qkv;
    int ld, n_heads, n_kv_heads, head_dim;
    const float *bq, *bk, *bv, *q_norm, *k_norm;
    float eps;
    const double *inv_freq;
    const int32_t *positions, *table_off, *tables;
    void *k_cache, *v_cache;
    int kv_dtype;
};
void launch_qk_rope_store(cudaStream_t s, const rope_store_args &a, int T);
void launch_swiglu(cudaStream_t s, const float *gu, int ldgu, const float *bg, const float *bu, int T, int inter,
                   void *out, int out_dtype);
void launch_convert(cudaStream_t s, const float *x, int ldx, int T, int n, void *out, int out_dtype);
/* ids[r] = the token of logits row r (rows x n, float *: DRAW rows are overwritten with their
 * probabilities): for GREEDY and LOGITS rows (and all rows when rs is NULL) the first index of
 * the largest value, NaNs skipped unless at index 0 (the host's sequential scan with >,
 * exactly); for DRAW rows sampler_draw_plain's draw (src/sampling/sampler.c: logits / t,
 * exp(l - max), the min-p cut in order, sums per block of 64 in double, the block holding
 * u x total scanned). cand: rows x n ints, bsum: rows x sample_bsum_per_row(n) doubles. */
void launch_sample(cudaStream_t s, float *logits, int rows, int n, const fcuda_row_sample *rs, int32_t *ids,
                   int32_t *cand, double *bsum);
enum { SAMPLE_DRAW_BLOCK = 64 }; /* the sampler's DRAW_BLOCK (src/sampling/sampler.c) */
__host__ __device__ inline size_t sample_bsum_per_row(int n) { return (size_t)n / SAMPLE_DRAW_BLOCK + 1; }
/* Sums n floats into *out many times over (the bandwidth probe). */
void launch_read_sum(cudaStream_t s, const float4 *x, size_t n4, float *out);

/* ---- attention (cuda_attention.cu) ---- */
struct attn_args {
    const float *q;
    int ldq, n_heads, n_kv_heads, head_dim;
    const void *k_cache, *v_cache;
    int kv_dtype;
    const int32_t *positions, *table_off, *tables;
    int window; /* 0: none */
    float scale;
    float *part;   /* attn_part_floats(T, ...) */
    int *counters; /* T * n_kv_heads, zero, left zero */
    void *out;
    int out_dtype, ldo;
};
size_t attn_part_floats(int T, int n_heads, int head_dim);
/* Allows the dynamic shared memory the attention kernel needs for this shape. */
cudaError_t attn_prepare(int n_heads, int n_kv_heads, int head_dim);
/* Splits (gridDim.z) enough for every token with positions up to max_pos (-1: unknown, all). */
int attn_splits_for(int max_pos);
void launch_attention(cudaStream_t s, const attn_args &a, int T, int splits);

/* ---- the op test's entry points and the bandwidth probe (cuda_ops.cu); see cuda_abi.h ---- */
double op_measure_bandwidth(size_t bytes, forge_error *err);
forge_status op_matmul(const float *x, int M, const fcuda_weight *w, float *y, int path, forge_error *err);
forge_status op_gemv(int mode, const float *x, int M, const fcuda_weight *w, const int32_t *xrows, int x_rows,
                     const float *norm_w, float eps, const float *bg, const float *bu, const float *bias, float *y,
                     forge_error *err);
forge_status op_add_rmsnorm(float *x, const float *add, const float *add_bias, const float *w, int rows, int n,
                            float eps, float *out, forge_error *err);
forge_status op_swiglu(const float *gu, const float *bg, const float *bu, int rows, int inter, float *out,
                       forge_error *err);
forge_status op_embed(const fcuda_weight *embed, const int32_t *tokens, int rows, float *x, forge_error *err);
forge_status op_qk_rope_store(float *qkv, int rows, int n_heads, const float *bq, const float *bk, const float *bv,
                              const float *q_norm, const float *k_norm, float eps, const double *inv_freq,
                              fcuda_op_cache *cache, forge_error *err);
forge_status op_sample(const float *x, int rows, int n, const fcuda_row_sample *rs, int32_t *ids, forge_error *err);
forge_status op_attention(const float *q, int ldq, int rows, int n_heads, int window, const fcuda_op_cache *cache,
                          float *out, forge_error *err);

/* ---- errors ---- */
forge_status cuda_err(forge_error *err, cudaError_t e, const char *what);
forge_status blas_err(forge_error *err, cublasStatus_t st, const char *what);
forge_status set_err(forge_error *err, forge_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t dtype_bytes(int dtype);
double wall_seconds(void);

#endif
