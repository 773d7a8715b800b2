/* cuda_gemm.cu: y = x . W^T on the GPU, by two paths.
 *
 * GEMV (the default for every row count): x stays f32 and each weight is read once from memory as stored
 * (bf16/f16/f32), converted in registers: the same products as the CPU's kernels, and the
 * kernel is bound by memory bandwidth. One warp owns one output column; each lane
 * accumulates its strided slice of K in increasing order with one FMA chain per row of x,
 * then the warp reduces with a fixed butterfly. So a value never depends on how many rows
 * the batch has (batch invariant within this path). The decode forward fuses its neighbours
 * into it: RMSNorm as a prologue (each block computes its rows' RMS), SwiGLU as a prologue of
 * the down projection, and the residual add as an epilogue (x += x . W^T + bias, each output
 * owned by one warp), so a layer is six kernels.
 *
 * One row's values are the same bits whatever the batch (decode of 1 row, 64 sequences, a
 * 2048-token prompt): the batch-invariant default. Prompts re-read each weight once per MR
 * rows, mostly from L2 (row groups vary fastest in the grid).
 *
 * cuBLAS (opt-in, FORGE_CUDA_BLAS=1: batches over gemv_max rows): tensor cores, faster
 * prefill, but it picks kernels and split-K by shape, so a row's bits depend on its batch. cuBLAS has no bf16 x f32 product, so x is
 * rounded to the weight's 16-bit type first (by its producer, or here) and accumulated in
 * f32. F32 weights use plain SGEMM math (no TF32) unless tf32 is asked for. */
#include "backend/cuda/cuda_gemv.h"

/* 16 bytes of weights as floats, from the words' bits (no type punning through pointers) */
__device__ __forceinline__ void unpack(const uint4 &r, float *w, const __nv_bfloat16 *) { bf16x8_to_f32(r, w); }
__device__ __forceinline__ void unpack(const uint4 &r, float *w, const __half *) {
    const unsigned u[4] = {r.x, r.y, r.z, r.w};
    for (int i = 0; i < 4; i++) {
        w[2 * i] = __half2float(__ushort_as_half((unsigned short)(u[i] & 0xffffu)));
        w[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(u[i] >> 16)));
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

/* One 16-byte step of C columns' weights (raw) at k: the MR rows' x values and their
 * prologue computed once, then each (row, column) chain advanced in element order. */
template <typename WT, int MODE, int C, int MR>
__device__ __forceinline__ void gemv_step(const uint4 *raw, const float *const *xr, int k, const float *inv, int mc,
                                          const gemv_args &a, float (*acc)[C]) {
    constexpr int E = 16 / sizeof(WT);
    float w[C][E];
#pragma unroll
    for (int c = 0; c < C; c++) unpack(raw[c], w[c], (const WT *)nullptr);
#pragma unroll
    for (int m = 0; m < MR; m++) {
        if (m < mc) {
            float xv[E];
            xvec<MODE, E>(xr[m], k, inv[m], a, xv);
#pragma unroll
            for (int c = 0; c < C; c++)
#pragma unroll
                for (int e = 0; e < E; e++) acc[m][c] = fmaf(xv[e], w[c][e], acc[m][c]);
        }
    }
}

/* One warp computes C output columns for MR rows of x (blockIdx.x picks the row group and the warp block), GEMV_WARPS
 * warps a block. Each lane walks its slice of K in increasing order, 16 bytes of each
 * column's weights at a time, with U such steps' loads issued before their FMAs (U * C loads
 * in flight per lane: decode is bound by memory latency as much as by bandwidth); the x
 * values and their prologue are computed once per step and used for all C columns, so the
 * fused RMSNorm and SwiGLU cost per row, not per output. Per (row, column) the FMA chain and
 * the warp's butterfly are the same for every C, MR and U: a value never depends on the
 * batch. */
template <typename WT, int MODE, bool VEC, int C, int MR, int U>
__global__ void __launch_bounds__(32 * GEMV_WARPS) gemv_k(gemv_args a) {
    /* row groups vary fastest: consecutive blocks read the same weights (from L2, once a
     * prompt has more than MR rows) */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, groups = (a.M + MR - 1) / MR;
    const int n0 = ((int)(blockIdx.x / groups) * GEMV_WARPS + warp) * C, K = a.K;
    const int m0 = (int)(blockIdx.x % groups) * MR, mc = min(MR, a.M - m0);
    const float *xr[MR];
    float inv[MR];
    gemv_rows<MODE, MR>(a, m0, mc, xr, inv);
    if (n0 >= a.N) return;
    const WT *wr[C]; /* columns past N read the last one and are not stored */
#pragma unroll
    for (int c = 0; c < C; c++) wr[c] = (const WT *)a.W + (size_t)min(n0 + c, a.N - 1) * K;
    float acc[MR][C];
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int c = 0; c < C; c++) acc[m][c] = 0.f;
    if (VEC) {
        constexpr int E = 16 / sizeof(WT), STEP = 32 * E;
        int kb = 0;
        for (; kb + U * STEP <= K; kb += U * STEP) { /* U whole steps for every lane */
            uint4 raw[U][C];
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int c = 0; c < C; c++) raw[u][c] = __ldcs((const uint4 *)(wr[c] + kb + u * STEP + lane * E));
#pragma unroll
            for (int u = 0; u < U; u++)
                gemv_step<WT, MODE, C, MR>(raw[u], xr, kb + u * STEP + lane * E, inv, mc, a, acc);
        }
#pragma unroll 2
        for (int k = kb + lane * E; k < K; k += STEP) { /* the rest, a step at a time */
            uint4 raw[C];
#pragma unroll
            for (int c = 0; c < C; c++) raw[c] = __ldcs((const uint4 *)(wr[c] + k));
            gemv_step<WT, MODE, C, MR>(raw, xr, k, inv, mc, a, acc);
        }
    } else {
        for (int k = lane; k < K; k += 32) {
            float w[C];
#pragma unroll
            for (int c = 0; c < C; c++) w[c] = wload(wr[c] + k);
#pragma unroll
            for (int m = 0; m < MR; m++)
                if (m < mc) {
                    float xv = xval<MODE>(xr[m], k, inv[m], a);
#pragma unroll
                    for (int c = 0; c < C; c++) acc[m][c] = fmaf(xv, w[c], acc[m][c]);
                }
        }
    }
    gemv_store<MODE, C, MR>(a, acc, n0, m0, mc, lane);
}

template <typename WT, int MODE, int C, int MR, int U>
static void gemv_shape(cudaStream_t s, const gemv_args &a, bool vec) {
    dim3 grid((unsigned)((a.N + GEMV_WARPS * C - 1) / (GEMV_WARPS * C)) * (unsigned)((a.M + MR - 1) / MR));
    auto kernel = vec ? gemv_k<WT, MODE, true, C, MR, U> : gemv_k<WT, MODE, false, C, MR, U>;
    LAUNCH(kernel, grid, 32 * GEMV_WARPS, 0, s, a);
}

/* Rows per block and columns per warp by the row count: one row streams 8 steps ahead on one
 * column; more rows share each x value among 2 or 4 columns (x is re-read per column
 * otherwise, and with 8 rows that, not the weights, would bound the kernel). */
template <typename WT, int MODE>
static void gemv_launch(cudaStream_t s, const gemv_args &a) {
    const int E = 16 / (int)sizeof(WT);
    bool vec = a.K % E == 0 && a.ldx % 4 == 0 && ((uintptr_t)a.x & 15) == 0 && ((uintptr_t)a.W & 15) == 0 &&
               (MODE != GEMV_SWIGLU_RESID || a.I % 4 == 0) && (MODE != GEMV_NORM || ((uintptr_t)a.norm_w & 15) == 0);
    if (a.M <= 1)
        gemv_shape<WT, MODE, 1, 1, 8>(s, a, vec);
    else if (a.M <= 2)
        gemv_shape<WT, MODE, 2, 2, 2>(s, a, vec);
    else if (a.M <= 4)
        gemv_shape<WT, MODE, 4, 4, 1>(s, a, vec);
    else
        gemv_shape<WT, MODE, 4, 8, 1>(s, a, vec);
}

template <int MODE>
static void gemv_dtype(cudaStream_t s, int dtype, const gemv_args &a) {
    if (dtype == FORGE_DTYPE_BF16)
        gemv_launch<__nv_bfloat16, MODE>(s, a);
    else if (dtype == FORGE_DTYPE_F16)
        gemv_launch<__half, MODE>(s, a);
    else
        gemv_launch<float, MODE>(s, a);
}

void gemv_run(cudaStream_t s, int mode, const float *x, int ldx, int M, const dmat &w, float *y, int ldy,
              const gemv_extra &e) {
    gemv_args a = {x, ldx, M, w.data, w.rows, w.cols, y, ldy, e.xrows, e.norm_w, e.eps, e.bg, e.bu, w.cols, e.bias};
    if (w.qtype) {
        gemvq_run(s, mode, a, w.qtype);
        return;
    }
    switch (mode) {
    case GEMV_PLAIN: gemv_dtype<GEMV_PLAIN>(s, w.dtype, a); break;
    case GEMV_NORM: gemv_dtype<GEMV_NORM>(s, w.dtype, a); break;
    case GEMV_RESID: gemv_dtype<GEMV_RESID>(s, w.dtype, a); break;
    default: gemv_dtype<GEMV_SWIGLU_RESID>(s, w.dtype, a); break;
    }
}

static int resolve_path(const gemm_ctx &g, const dmat &w, int M, int path) {
    if (w.qtype) return GEMM_GEMV; /* cuBLAS has no ggml blocks */
    if (path != GEMM_AUTO) return path;
    return M <= g.gemv_max ? GEMM_GEMV : GEMM_BLAS;
}

int gemm_input_dtype(const gemm_ctx &g, const dmat &w, int M, int path) {
    if (resolve_path(g, w, M, path) == GEMM_GEMV) return FORGE_DTYPE_F32;
    return w.dtype;
}

static cudaDataType_t cuda_type(int dt) {
    return dt == FORGE_DTYPE_BF16 ? CUDA_R_16BF : dt == FORGE_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

forge_status gemm_run(const gemm_ctx &g, const void *x, int xdt, int ldx, int M, const dmat &w, float *y, int ldy,
                      int path, forge_error *err) {
    path = resolve_path(g, w, M, path);
    if (path == GEMM_GEMV) {
        if (xdt != FORGE_DTYPE_F32) return set_err(err, FORGE_E_INTERNAL, "GEMV input must be f32");
        gemv_run(g.stream, GEMV_PLAIN, (const float *)x, ldx, M, w, y, ldy, gemv_extra());
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
