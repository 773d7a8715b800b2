/* cuda_gemm.cu: y = x . W^T on the GPU, by two paths.
 *
 * GEMV (decode, few rows): x stays f32 and each weight is read once from memory as stored
 * (bf16/f16/f32), converted in registers: the same products as the CPU's kernels, and the
 * kernel is bound by memory bandwidth. One warp owns one output column; each lane
 * accumulates its strided slice of K in increasing order with one FMA chain per row of x,
 * then the warp reduces with a fixed butterfly. So a value never depends on how many rows
 * the batch has (batch invariant within this path).
 *
 * cuBLAS (prefill, large batches): tensor cores. cuBLAS has no bf16 x f32 product, so x is
 * rounded to the weight's 16-bit type first (by its producer, or here) and accumulated in
 * f32. F32 weights use plain SGEMM math (no TF32) unless tf32 is asked for. */
#include "backend/cuda/cuda_internal.h"

__device__ __forceinline__ float warp_sum_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* 16 bytes of weights as floats */
__device__ __forceinline__ void unpack(const uint4 &r, float *w, const __nv_bfloat16 *) {
    const __nv_bfloat162 *h = (const __nv_bfloat162 *)&r;
    for (int i = 0; i < 4; i++) {
        float2 f = __bfloat1622float2(h[i]);
        w[2 * i] = f.x;
        w[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ void unpack(const uint4 &r, float *w, const __half *) {
    const __half2 *h = (const __half2 *)&r;
    for (int i = 0; i < 4; i++) {
        float2 f = __half22float2(h[i]);
        w[2 * i] = f.x;
        w[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ void unpack(const uint4 &r, float *w, const float *) {
    w[0] = __uint_as_float(r.x);
    w[1] = __uint_as_float(r.y);
    w[2] = __uint_as_float(r.z);
    w[3] = __uint_as_float(r.w);
}

__device__ __forceinline__ float wload(const float *p) { return *p; }
__device__ __forceinline__ float wload(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ float wload(const __half *p) { return __half2float(*p); }

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

/* x element k of row m: plain, or SwiGLU of the gate/up buffer */
template <bool SWI>
__device__ __forceinline__ float xval(const float *x, int ldx, int m, int k, const float *bg, const float *bu,
                                      int I) {
    const float *xr = x + (size_t)m * ldx;
    if (!SWI) return xr[k];
    float g = xr[k], u = xr[I + k];
    if (bg) g += bg[k];
    if (bu) u += bu[k];
    return silu_mul(g, u);
}

/* E consecutive x values of row m from k (k a multiple of 4, rows 16-byte aligned) */
template <bool SWI, int E>
__device__ __forceinline__ void xvec(const float *x, int ldx, int m, int k, const float *bg, const float *bu, int I,
                                     float *out) {
    const float *xr = x + (size_t)m * ldx;
    for (int j = 0; j < E; j += 4) {
        float4 a = *(const float4 *)(xr + k + j);
        float v[4] = {a.x, a.y, a.z, a.w};
        if (SWI) {
            float4 b = *(const float4 *)(xr + I + k + j);
            float u[4] = {b.x, b.y, b.z, b.w};
            for (int i = 0; i < 4; i++) {
                float g = v[i], uu = u[i];
                if (bg) g += bg[k + j + i];
                if (bu) uu += bu[k + j + i];
                v[i] = silu_mul(g, uu);
            }
        }
        for (int i = 0; i < 4; i++) out[j + i] = v[i];
    }
}

template <typename WT, bool SWI, bool VEC>
__global__ void __launch_bounds__(32 * GEMV_WARPS)
    gemv_k(const float *x, int ldx, int M, const WT *W, int N, int K, float *y, int ldy, const float *bg,
           const float *bu, int I) {
    const int lane = threadIdx.x & 31, n = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (n >= N) return;
    const int m0 = blockIdx.y * GEMV_ROWS, mc = min(GEMV_ROWS, M - m0);
    const WT *wr = W + (size_t)n * K;
    float acc[GEMV_ROWS];
#pragma unroll
    for (int m = 0; m < GEMV_ROWS; m++) acc[m] = 0.f;
    if (VEC) {
        constexpr int E = 16 / sizeof(WT);
#pragma unroll 4
        for (int k = lane * E; k < K; k += 32 * E) {
            uint4 raw = __ldcs((const uint4 *)(wr + k)); /* streamed: read once per forward */
            float w[E];
            unpack(raw, w, (const WT *)nullptr);
#pragma unroll
            for (int m = 0; m < GEMV_ROWS; m++) {
                if (m < mc) {
                    float xv[E];
                    xvec<SWI, E>(x, ldx, m0 + m, k, bg, bu, I, xv);
#pragma unroll
                    for (int e = 0; e < E; e++) acc[m] = fmaf(xv[e], w[e], acc[m]);
                }
            }
        }
    } else {
        for (int k = lane; k < K; k += 32) {
            float w = wload(wr + k);
#pragma unroll
            for (int m = 0; m < GEMV_ROWS; m++)
                if (m < mc) acc[m] = fmaf(xval<SWI>(x, ldx, m0 + m, k, bg, bu, I), w, acc[m]);
        }
    }
#pragma unroll
    for (int m = 0; m < GEMV_ROWS; m++)
        if (m < mc) acc[m] = warp_sum_f(acc[m]); /* mc is the same across the warp */
    if (lane == 0)
        for (int m = 0; m < mc; m++) y[(size_t)(m0 + m) * ldy + n] = acc[m];
}

template <typename WT, bool SWI>
static void gemv_launch(cudaStream_t s, const float *x, int ldx, int M, const dmat &w, float *y, int ldy,
                        const float *bg, const float *bu, int I) {
    const int E = 16 / (int)sizeof(WT);
    bool vec = w.cols % E == 0 && ldx % 4 == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)w.data & 15) == 0 &&
               (!SWI || I % 4 == 0);
    dim3 grid((w.rows + GEMV_WARPS - 1) / GEMV_WARPS, (M + GEMV_ROWS - 1) / GEMV_ROWS);
    auto kernel = vec ? gemv_k<WT, SWI, true> : gemv_k<WT, SWI, false>;
    LAUNCH(kernel, grid, 32 * GEMV_WARPS, 0, s, x, ldx, M, (const WT *)w.data, w.rows, w.cols, y, ldy, bg, bu, I);
}

template <bool SWI>
static void gemv_any(cudaStream_t s, const float *x, int ldx, int M, const dmat &w, float *y, int ldy,
                     const float *bg, const float *bu, int I) {
    if (w.dtype == FORGE_DTYPE_BF16)
        gemv_launch<__nv_bfloat16, SWI>(s, x, ldx, M, w, y, ldy, bg, bu, I);
    else if (w.dtype == FORGE_DTYPE_F16)
        gemv_launch<__half, SWI>(s, x, ldx, M, w, y, ldy, bg, bu, I);
    else
        gemv_launch<float, SWI>(s, x, ldx, M, w, y, ldy, bg, bu, I);
}

static int resolve_path(const gemm_ctx &g, int M, int path) {
    if (path != GEMM_AUTO) return path;
    return M <= g.gemv_max ? GEMM_GEMV : GEMM_BLAS;
}

int gemm_input_dtype(const gemm_ctx &g, const dmat &w, int M, int path) {
    if (resolve_path(g, M, path) == GEMM_GEMV) return FORGE_DTYPE_F32;
    return w.dtype;
}

static cudaDataType_t cuda_type(int dt) {
    return dt == FORGE_DTYPE_BF16 ? CUDA_R_16BF : dt == FORGE_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

forge_status gemm_run(const gemm_ctx &g, const void *x, int xdt, int ldx, int M, const dmat &w, float *y, int ldy,
                      int path, forge_error *err) {
    path = resolve_path(g, M, path);
    if (path == GEMM_GEMV) {
        if (xdt != FORGE_DTYPE_F32) return set_err(err, FORGE_E_INTERNAL, "GEMV input must be f32");
        gemv_any<false>(g.stream, (const float *)x, ldx, M, w, y, ldy, nullptr, nullptr, 0);
        return FORGE_OK;
    }
    const void *xin = x;
    int ld = ldx;
    if (xdt != w.dtype) {
        if (xdt != FORGE_DTYPE_F32) return set_err(err, FORGE_E_INTERNAL, "GEMM input dtype mismatch");
        if ((size_t)M * w.cols * dtype_bytes(w.dtype) > g.conv_bytes)
            return set_err(err, FORGE_E_INTERNAL, "GEMM conversion scratch too small");
        launch_convert(g.stream, (const float *)x, ldx, M, w.cols, g.conv, w.dtype);
        xin = g.conv;
        ld = w.cols;
    }
    const float alpha = 1.f, beta = 0.f;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    if (w.dtype == FORGE_DTYPE_F32 && g.tf32) ct = CUBLAS_COMPUTE_32F_FAST_TF32;
    /* column-major view: Y^T[N][M] = W[N][K] . X^T[K][M] */
    cublasStatus_t st = cublasGemmEx(g.blas, CUBLAS_OP_T, CUBLAS_OP_N, w.rows, M, w.cols, &alpha, w.data,
                                     cuda_type(w.dtype), w.cols, xin, cuda_type(w.dtype), ld, &beta, y, CUDA_R_32F,
                                     ldy, ct, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) return blas_err(err, st, "cublasGemmEx");
    return FORGE_OK;
}

void gemv_swiglu(const gemm_ctx &g, const float *gu, int ldgu, const float *bg, const float *bu, int M,
                 const dmat &w, float *y, int ldy) {
    gemv_any<true>(g.stream, gu, ldgu, M, w, y, ldy, bg, bu, w.cols);
}
