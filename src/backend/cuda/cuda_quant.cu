/* cuda_quant.cu: ggml's quantized weights (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K,
 * the block layouts of src/kernels/quant.h) on the GPU, as stored in the GGUF file: the
 * GEMV with its fused neighbours, and the embedding gather.
 *
 * Each weight is dequantized in registers by the CPU reference's expressions
 * (quant_dequant_row in src/kernels/quant_ref.c, which follows gguf-py: d * (q - 8),
 * (d * q) + m with the product rounded first, never an FMA) and multiplied with f32
 * activations: the f32 products the CPU's quant_matmul_f32 path takes (not llama.cpp's
 * Q8 activations). The unit of work is a group of 32 values (a 32-block, or one sub-block
 * of a 256-value super-block). Lane l of a warp takes groups l, l + 32, ... of each of its
 * C columns in increasing order, 32 FMAs per group in element order, then the warp's fixed
 * butterfly: per (row, column) the same chain for every row count, C and MR, so the
 * quantized path is batch invariant like the rest of the default path. Loads are bytes
 * (blocks of 18, 34 or 210 bytes are not aligned); the kernel's speed is for a GPU run to
 * measure (scripts/gpu-check.sh). */
#include "backend/cuda/cuda_gemv.h"

namespace {

template <int QT> struct qgeom;
template <> struct qgeom<FCUDA_Q4_0> { enum { E = 32, B = 18 }; };
template <> struct qgeom<FCUDA_Q4_1> { enum { E = 32, B = 20 }; };
template <> struct qgeom<FCUDA_Q5_0> { enum { E = 32, B = 22 }; };
template <> struct qgeom<FCUDA_Q5_1> { enum { E = 32, B = 24 }; };
template <> struct qgeom<FCUDA_Q8_0> { enum { E = 32, B = 34 }; };
template <> struct qgeom<FCUDA_Q4_K> { enum { E = 256, B = 144 }; };
template <> struct qgeom<FCUDA_Q5_K> { enum { E = 256, B = 176 }; };
template <> struct qgeom<FCUDA_Q6_K> { enum { E = 256, B = 210 }; };

__device__ __forceinline__ float ld_f16(const uint8_t *p) {
    return __half2float(__ushort_as_half((unsigned short)(p[0] | p[1] << 8)));
}

/* values i and i + 16 of a Q4/Q5 block: d * (q - zero), or (d * q) + m */
template <int ZERO>
__device__ __forceinline__ void pair(float *w, int i, int lo, int hi, float d, float m) {
    if (ZERO) {
        w[i] = d * (float)(lo - ZERO);
        w[i + 16] = d * (float)(hi - ZERO);
    } else {
        w[i] = __fadd_rn(__fmul_rn(d, (float)lo), m);
        w[i + 16] = __fadd_rn(__fmul_rn(d, (float)hi), m);
    }
}

/* The 32 values of group g of a row (quant_dequant_row's, bit for bit). */
template <int QT> __device__ __forceinline__ void deq32(const uint8_t *row, int g, float *w) {
    if (QT == FCUDA_Q8_0) {
        const uint8_t *p = row + (size_t)g * 34;
        float d = ld_f16(p);
#pragma unroll
        for (int i = 0; i < 32; i++) w[i] = (float)(int8_t)p[2 + i] * d;
    } else if (QT == FCUDA_Q4_0 || QT == FCUDA_Q4_1) {
        const int off = QT == FCUDA_Q4_1 ? 4 : 2;
        const uint8_t *p = row + (size_t)g * qgeom<QT>::B;
        float d = ld_f16(p), m = QT == FCUDA_Q4_1 ? ld_f16(p + 2) : 0.f;
#pragma unroll
        for (int i = 0; i < 16; i++) pair<QT == FCUDA_Q4_0 ? 8 : 0>(w, i, p[off + i] & 15, p[off + i] >> 4, d, m);
    } else if (QT == FCUDA_Q5_0 || QT == FCUDA_Q5_1) {
        const int off = QT == FCUDA_Q5_1 ? 4 : 2;
        const uint8_t *p = row + (size_t)g * qgeom<QT>::B;
        float d = ld_f16(p), m = QT == FCUDA_Q5_1 ? ld_f16(p + 2) : 0.f;
        uint32_t qh = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                      (uint32_t)p[off + 3] << 24;
        const uint8_t *qs = p + off + 4;
#pragma unroll
        for (int i = 0; i < 16; i++)
            pair<QT == FCUDA_Q5_0 ? 16 : 0>(w, i, (qs[i] & 15) | (int)((qh >> i) & 1) << 4,
                                         (qs[i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4, d, m);
    } else if (QT == FCUDA_Q4_K || QT == FCUDA_Q5_K) {
        const uint8_t *p = row + (size_t)(g >> 3) * qgeom<QT>::B, *sc = p + 4;
        const int j = g & 7;
        float d = ld_f16(p), dmin = ld_f16(p + 2);
        int s, mn; /* the 6-bit scale and min of sub-block j */
        if (j < 4) {
            s = sc[j] & 63;
            mn = sc[j + 4] & 63;
        } else {
            s = (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4);
            mn = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
        }
        float ds = d * (float)s, dm = dmin * (float)mn;
        const uint8_t *q = p + (QT == FCUDA_Q5_K ? 48 : 16) + (j / 2) * 32, *qh = p + 16;
#pragma unroll
        for (int l = 0; l < 32; l++) {
            int v = j % 2 ? q[l] >> 4 : q[l] & 15;
            if (QT == FCUDA_Q5_K) v |= ((qh[l] >> j) & 1) << 4;
            w[l] = __fsub_rn(__fmul_rn(ds, (float)v), dm);
        }
    } else { /* Q6_K */
        const uint8_t *p = row + (size_t)(g >> 3) * 210, *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        const int j = g & 7, h = j / 4, r0 = (j % 4) * 32;
        float d = ld_f16(p + 208);
#pragma unroll
        for (int l = 0; l < 32; l++) {
            int r = r0 + l;
            int lo = (ql[h * 64 + r % 64] >> (4 * (r / 64))) & 15;
            int hi = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
            float ds = d * (float)sc[(j * 32 + l) / 16];
            w[l] = ds * (float)((lo | hi << 4) - 32);
        }
    }
}

/* One warp computes C output columns for MR rows (as gemv_k in cuda_gemm.cu). */
template <int QT, int MODE, bool VEC, int C, int MR>
__global__ void __launch_bounds__(32 * GEMV_WARPS) gemvq_k(gemv_args a) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, groups = (a.M + MR - 1) / MR;
    const int n0 = ((int)(blockIdx.x / groups) * GEMV_WARPS + warp) * C;
    const int m0 = (int)(blockIdx.x % groups) * MR, mc = min(MR, a.M - m0);
    const float *xr[MR];
    float inv[MR];
    gemv_rows<MODE, MR>(a, m0, mc, xr, inv);
    if (n0 >= a.N) return;
    const size_t row_bytes = (size_t)(a.K / qgeom<QT>::E) * qgeom<QT>::B;
    const uint8_t *wr[C]; /* columns past N read the last one and are not stored */
#pragma unroll
    for (int c = 0; c < C; c++) wr[c] = (const uint8_t *)a.W + (size_t)min(n0 + c, a.N - 1) * row_bytes;
    float acc[MR][C];
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int c = 0; c < C; c++) acc[m][c] = 0.f;
    for (int g = lane; g < a.K / 32; g += 32) {
#pragma unroll
        for (int c = 0; c < C; c++) {
            float w[32];
            deq32<QT>(wr[c], g, w);
#pragma unroll
            for (int m = 0; m < MR; m++) {
                if (m < mc) {
                    float xv[32];
                    if (VEC)
                        xvec<MODE, 32>(xr[m], g * 32, inv[m], a, xv);
                    else
                        for (int e = 0; e < 32; e++) xv[e] = xval<MODE>(xr[m], g * 32 + e, inv[m], a);
#pragma unroll
                    for (int e = 0; e < 32; e++) acc[m][c] = fmaf(xv[e], w[e], acc[m][c]);
                }
            }
        }
    }
    gemv_store<MODE, C, MR>(a, acc, n0, m0, mc, lane);
}

template <int QT, int MODE, int C, int MR>
void gemvq_shape(cudaStream_t s, const gemv_args &a, bool vec) {
    dim3 grid((unsigned)((a.N + GEMV_WARPS * C - 1) / (GEMV_WARPS * C)) * (unsigned)((a.M + MR - 1) / MR));
    auto kernel = vec ? gemvq_k<QT, MODE, true, C, MR> : gemvq_k<QT, MODE, false, C, MR>;
    LAUNCH(kernel, grid, 32 * GEMV_WARPS, 0, s, a);
}

template <int QT, int MODE> void gemvq_launch(cudaStream_t s, const gemv_args &a) {
    bool vec = a.ldx % 4 == 0 && ((uintptr_t)a.x & 15) == 0 && (MODE != GEMV_SWIGLU_RESID || a.I % 4 == 0) &&
               (MODE != GEMV_NORM || ((uintptr_t)a.norm_w & 15) == 0);
    if (a.M <= 1)
        gemvq_shape<QT, MODE, 1, 1>(s, a, vec);
    else if (a.M <= 4)
        gemvq_shape<QT, MODE, 2, 4>(s, a, vec);
    else
        gemvq_shape<QT, MODE, 2, 8>(s, a, vec);
}

template <int MODE> void gemvq_type(cudaStream_t s, int qt, const gemv_args &a) {
    switch (qt) {
    case FCUDA_Q4_0: gemvq_launch<FCUDA_Q4_0, MODE>(s, a); break;
    case FCUDA_Q4_1: gemvq_launch<FCUDA_Q4_1, MODE>(s, a); break;
    case FCUDA_Q5_0: gemvq_launch<FCUDA_Q5_0, MODE>(s, a); break;
    case FCUDA_Q5_1: gemvq_launch<FCUDA_Q5_1, MODE>(s, a); break;
    case FCUDA_Q8_0: gemvq_launch<FCUDA_Q8_0, MODE>(s, a); break;
    case FCUDA_Q4_K: gemvq_launch<FCUDA_Q4_K, MODE>(s, a); break;
    case FCUDA_Q5_K: gemvq_launch<FCUDA_Q5_K, MODE>(s, a); break;
    default: gemvq_launch<FCUDA_Q6_K, MODE>(s, a); break;
    }
}

template <int QT> __global__ void embedq_k(const uint8_t *table, int H, const int32_t *tokens, float *x) {
    const uint8_t *row = table + (size_t)tokens[blockIdx.x] * (size_t)(H / qgeom<QT>::E) * qgeom<QT>::B;
    float *out = x + (size_t)blockIdx.x * H;
    for (int g = threadIdx.x; g < H / 32; g += blockDim.x) {
        float w[32];
        deq32<QT>(row, g, w);
        for (int i = 0; i < 32; i++) out[g * 32 + i] = w[i];
    }
}

} // namespace

bool quant_gpu_supported(int qtype) {
    switch (qtype) {
    case FCUDA_Q4_0: case FCUDA_Q4_1: case FCUDA_Q5_0: case FCUDA_Q5_1: case FCUDA_Q8_0: case FCUDA_Q4_K: case FCUDA_Q5_K: case FCUDA_Q6_K:
        return true;
    default: return false;
    }
}

bool weight_ok(const fcuda_weight &w, forge_error *err) {
    if (!w.qtype) {
        if (w.dtype == FORGE_DTYPE_F32 || w.dtype == FORGE_DTYPE_BF16 || w.dtype == FORGE_DTYPE_F16) return true;
        set_err(err, FORGE_E_UNSUPPORTED, "CUDA backend: weight dtype %d is not supported", w.dtype);
        return false;
    }
    int blk = w.qtype >= FCUDA_Q4_K ? 256 : 32;
    if (quant_gpu_supported(w.qtype) && w.cols % blk == 0) return true;
    set_err(err, FORGE_E_UNSUPPORTED, "CUDA backend: quantized type %d with %d columns is not supported", w.qtype, w.cols);
    return false;
}

size_t dmat_row_bytes(int dtype, int qtype, int cols) {
    switch (qtype) {
    case 0: return (size_t)cols * dtype_bytes(dtype);
    case FCUDA_Q4_0: return (size_t)cols / 32 * 18;
    case FCUDA_Q4_1: return (size_t)cols / 32 * 20;
    case FCUDA_Q5_0: return (size_t)cols / 32 * 22;
    case FCUDA_Q5_1: return (size_t)cols / 32 * 24;
    case FCUDA_Q8_0: return (size_t)cols / 32 * 34;
    case FCUDA_Q4_K: return (size_t)cols / 256 * 144;
    case FCUDA_Q5_K: return (size_t)cols / 256 * 176;
    default: return (size_t)cols / 256 * 210;
    }
}

void gemvq_run(cudaStream_t s, int mode, const gemv_args &a, int qtype) {
    switch (mode) {
    case GEMV_PLAIN: gemvq_type<GEMV_PLAIN>(s, qtype, a); break;
    case GEMV_NORM: gemvq_type<GEMV_NORM>(s, qtype, a); break;
    case GEMV_RESID: gemvq_type<GEMV_RESID>(s, qtype, a); break;
    default: gemvq_type<GEMV_SWIGLU_RESID>(s, qtype, a); break;
    }
}

void launch_embedq(cudaStream_t s, const dmat &e, const int32_t *tokens, int T, float *x) {
    const uint8_t *t = (const uint8_t *)e.data;
    switch (e.qtype) {
    case FCUDA_Q4_0: LAUNCH(embedq_k<FCUDA_Q4_0>, T, 128, 0, s, t, e.cols, tokens, x); break;
    case FCUDA_Q4_1: LAUNCH(embedq_k<FCUDA_Q4_1>, T, 128, 0, s, t, e.cols, tokens, x); break;
    case FCUDA_Q5_0: LAUNCH(embedq_k<FCUDA_Q5_0>, T, 128, 0, s, t, e.cols, tokens, x); break;
    case FCUDA_Q5_1: LAUNCH(embedq_k<FCUDA_Q5_1>, T, 128, 0, s, t, e.cols, tokens, x); break;
    case FCUDA_Q8_0: LAUNCH(embedq_k<FCUDA_Q8_0>, T, 128, 0, s, t, e.cols, tokens, x); break;
    case FCUDA_Q4_K: LAUNCH(embedq_k<FCUDA_Q4_K>, T, 128, 0, s, t, e.cols, tokens, x); break;
    case FCUDA_Q5_K: LAUNCH(embedq_k<FCUDA_Q5_K>, T, 128, 0, s, t, e.cols, tokens, x); break;
    default: LAUNCH(embedq_k<FCUDA_Q6_K>, T, 128, 0, s, t, e.cols, tokens, x); break;
    }
}
