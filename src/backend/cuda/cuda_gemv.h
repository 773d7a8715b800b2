/* cuda_gemv.h: what the GEMV kernels share (cuda_gemm.cu for bf16/f16/f32 weights,
 * cuda_quant.cu for ggml's quantized blocks): the x values after the mode's prologue, the
 * rows' RMS for the fused RMSNorm, and the warp's reduction and store. One order of
 * operations for every kernel and row count: a value never depends on the batch. */
#ifndef FORGE_CUDA_GEMV_H
#define FORGE_CUDA_GEMV_H

#include "backend/cuda/cuda_internal.h"

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

/* E consecutive x values of row xr from k (k a multiple of 4, rows 16-byte aligned), after
 * the mode's prologue: RMSNorm as (x * inv) * w, or SwiGLU of the gate/up halves. */
template <int MODE, int E>
__device__ __forceinline__ void xvec(const float *xr, int k, float inv, const gemv_args &a, float *out) {
    for (int j = 0; j < E; j += 4) {
        float4 v4 = *(const float4 *)(xr + k + j);
        float v[4] = {v4.x, v4.y, v4.z, v4.w};
        if (MODE == GEMV_NORM) {
            float4 w4 = *(const float4 *)(a.norm_w + k + j);
            float w[4] = {w4.x, w4.y, w4.z, w4.w};
            for (int i = 0; i < 4; i++) v[i] = (v[i] * inv) * w[i];
        } else if (MODE == GEMV_SWIGLU_RESID) {
            float4 u4 = *(const float4 *)(xr + a.I + k + j);
            float u[4] = {u4.x, u4.y, u4.z, u4.w};
            for (int i = 0; i < 4; i++) {
                float g = v[i], uu = u[i];
                if (a.bg) g += a.bg[k + j + i];
                if (a.bu) uu += a.bu[k + j + i];
                v[i] = silu_mul(g, uu);
            }
        }
        for (int i = 0; i < 4; i++) out[j + i] = v[i];
    }
}

template <int MODE>
__device__ __forceinline__ float xval(const float *xr, int k, float inv, const gemv_args &a) {
    if (MODE == GEMV_NORM) return (xr[k] * inv) * a.norm_w[k];
    if (MODE != GEMV_SWIGLU_RESID) return xr[k];
    float g = xr[k], u = xr[a.I + k];
    if (a.bg) g += a.bg[k];
    if (a.bu) u += a.bu[k];
    return silu_mul(g, u);
}

/* The MR rows' x pointers (row m0 + m, through xrows when given; rows past mc repeat the
 * first) and, for GEMV_NORM, each row's 1 / RMS summed in double over the block in a fixed
 * order (every thread of the block must call this: it has a barrier). */
template <int MODE, int MR>
__device__ __forceinline__ void gemv_rows(const gemv_args &a, int m0, int mc, const float **xr, float *inv) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, K = a.K;
#pragma unroll
    for (int m = 0; m < MR; m++) {
        int r = m0 + (m < mc ? m : 0);
        xr[m] = a.x + (size_t)(a.xrows ? a.xrows[r] : r) * a.ldx;
    }
    if (MODE == GEMV_NORM) {
        __shared__ double part[GEMV_WARPS][MR];
#pragma unroll
        for (int m = 0; m < MR; m++) {
            if (m < mc) {
                double ss = 0;
                for (int k = threadIdx.x; k < K; k += blockDim.x) ss += (double)xr[m][k] * xr[m][k];
                ss = warp_sum(ss);
                if (lane == 0) part[warp][m] = ss;
            }
        }
        __syncthreads();
#pragma unroll
        for (int m = 0; m < MR; m++) {
            double ss = 0;
            for (int w = 0; w < GEMV_WARPS; w++) ss += m < mc ? part[w][m] : 0.0;
            inv[m] = (float)(1.0 / sqrt(ss / K + (double)a.eps));
        }
    } else {
#pragma unroll
        for (int m = 0; m < MR; m++) inv[m] = 1.f;
    }
}

/* The warp's butterfly over each (row, column) sum, then lane c stores column n0 + c: y =
 * sum, or for the residual modes the CPU's y += (sum + bias). */
template <int MODE, int C, int MR>
__device__ __forceinline__ void gemv_store(const gemv_args &a, float (*acc)[C], int n0, int m0, int mc, int lane) {
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int c = 0; c < C; c++)
            if (m < mc) acc[m][c] = warp_sum(acc[m][c]); /* mc is the same across the warp */
#pragma unroll
    for (int c = 0; c < C; c++) {
        const int n = n0 + c;
        if (lane != c || n >= a.N) continue;
        for (int m = 0; m < mc; m++) {
            float *y = a.y + (size_t)(m0 + m) * a.ldy + n;
            if (MODE == GEMV_RESID || MODE == GEMV_SWIGLU_RESID)
                *y = *y + (a.bias ? acc[m][c] + a.bias[n] : acc[m][c]);
            else
                *y = acc[m][c];
        }
    }
}

#endif
