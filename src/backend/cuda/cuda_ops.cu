/* cuda_ops.cu: single kernels on host arrays, for the cross-backend op test (tests/cuda/
 * cuda_ops.c compares each with the CPU's scalar reference), and the bandwidth probe.
 * Each call uploads its inputs, runs the same launcher the forward uses on the default
 * stream, and copies the outputs back. Slow by design; never used by the forward. */
#include <stdio.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

namespace {

/* The device buffers of one op call, freed together. */
struct scratch {
    void *p[24];
    int n = 0;
    cudaError_t e = cudaSuccess;
    ~scratch() {
        for (int i = 0; i < n; i++) cudaFree(p[i]);
    }
    /* A device copy of host[0..bytes) (zeroed when host is NULL); NULL after an error. */
    void *get(const void *host, size_t bytes) {
        if (e != cudaSuccess || n == 24) return nullptr;
        void *d = nullptr;
        if ((e = cudaMalloc(&d, bytes ? bytes : 1)) != cudaSuccess) return nullptr;
        p[n++] = d;
        e = host ? cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice) : cudaMemset(d, 0, bytes);
        return e == cudaSuccess ? d : nullptr;
    }
    template <typename T> T *vec(const T *host, size_t n_elems) {
        return host ? (T *)get(host, n_elems * sizeof(T)) : nullptr;
    }
};

cublasHandle_t g_blas; /* made on first use, kept for the process (test programs only) */

forge_status finish(scratch &s, forge_error *err, const char *what) {
    if (s.e == cudaSuccess) s.e = cudaGetLastError();
    if (s.e == cudaSuccess) s.e = cudaDeviceSynchronize();
    return s.e ? cuda_err(err, s.e, what) : FORGE_OK;
}

forge_status back(scratch &s, void *host, const void *dev, size_t bytes, forge_error *err) {
    if (s.e == cudaSuccess) s.e = cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost);
    return s.e ? cuda_err(err, s.e, "copying results back") : FORGE_OK;
}

dmat upload_weight(scratch &s, const fcuda_weight *w) {
    dmat d = {s.get(w->data, (size_t)w->rows * dmat_row_bytes(w->dtype, w->qtype, w->cols)), w->dtype, w->rows, w->cols,
              w->qtype};
    return d;
}

forge_status blas_ctx(gemm_ctx &g, scratch &s, size_t conv_bytes, forge_error *err) {
    if (!g_blas) {
        cublasStatus_t st = cublasCreate(&g_blas);
        if (st != CUBLAS_STATUS_SUCCESS) return blas_err(err, st, "cublasCreate");
    }
    cublasSetStream(g_blas, 0);
    g.stream = 0;
    g.blas = g_blas;
    g.gemv_max = DEFAULT_GEMV_MAX;
    g.tf32 = false;
    g.conv = s.get(nullptr, conv_bytes);
    g.conv_bytes = conv_bytes;
    return s.e ? cuda_err(err, s.e, "allocating") : FORGE_OK;
}

} // namespace

forge_status op_matmul(const float *x, int M, const fcuda_weight *w, float *y, int path, forge_error *err) {
    if (!weight_ok(*w, err)) return FORGE_E_UNSUPPORTED;
    scratch s;
    gemm_ctx g;
    forge_status st = blas_ctx(g, s, (size_t)M * w->cols * 2, err);
    if (st) return st;
    dmat dw = upload_weight(s, w);
    const float *dx = s.vec(x, (size_t)M * w->cols);
    float *dy = (float *)s.get(nullptr, (size_t)M * w->rows * 4);
    if (s.e) return cuda_err(err, s.e, "allocating");
    if ((st = gemm_run(g, dx, FORGE_DTYPE_F32, w->cols, M, dw, dy, w->rows, path, err))) return st;
    if ((st = finish(s, err, "matmul"))) return st;
    return back(s, y, dy, (size_t)M * w->rows * 4, err);
}

forge_status op_gemv(int mode, const float *x, int M, const fcuda_weight *w, const int32_t *xrows, int x_rows,
                     const float *norm_w, float eps, const float *bg, const float *bu, const float *bias, float *y,
                     forge_error *err) {
    if (!weight_ok(*w, err)) return FORGE_E_UNSUPPORTED;
    scratch s;
    int K = w->cols, ldx = mode == GEMV_SWIGLU_RESID ? 2 * K : K;
    if (!xrows) x_rows = M;
    dmat dw = upload_weight(s, w);
    gemv_extra e;
    const float *dx = s.vec(x, (size_t)x_rows * ldx);
    e.xrows = s.vec(xrows, (size_t)M);
    e.norm_w = s.vec(norm_w, K);
    e.eps = eps;
    e.bg = s.vec(bg, K);
    e.bu = s.vec(bu, K);
    e.bias = s.vec(bias, w->rows);
    float *dy = s.vec(y, (size_t)M * w->rows);
    if (s.e) return cuda_err(err, s.e, "allocating");
    gemv_run(0, mode, dx, ldx, M, dw, dy, w->rows, e);
    forge_status st = finish(s, err, "gemv");
    return st ? st : back(s, y, dy, (size_t)M * w->rows * 4, err);
}

forge_status op_add_rmsnorm(float *x, const float *add, const float *add_bias, const float *w, int rows, int n,
                            float eps, float *out, forge_error *err) {
    scratch s;
    size_t bytes = (size_t)rows * n * 4;
    float *dx = s.vec(x, (size_t)rows * n), *dout = (float *)s.get(nullptr, bytes);
    const float *dadd = s.vec(add, (size_t)rows * n), *db = s.vec(add_bias, n), *dw = s.vec(w, n);
    if (s.e) return cuda_err(err, s.e, "allocating");
    launch_add_rmsnorm(0, dx, dadd, db, nullptr, true, dw, rows, n, eps, dout, FORGE_DTYPE_F32);
    forge_status st = finish(s, err, "add_rmsnorm");
    if (!st) st = back(s, x, dx, bytes, err);
    if (!st) st = back(s, out, dout, bytes, err);
    return st;
}

forge_status op_swiglu(const float *gu, const float *bg, const float *bu, int rows, int inter, float *out,
                       forge_error *err) {
    scratch s;
    const float *dgu = s.vec(gu, (size_t)rows * 2 * inter), *dbg = s.vec(bg, inter), *dbu = s.vec(bu, inter);
    float *dout = (float *)s.get(nullptr, (size_t)rows * inter * 4);
    if (s.e) return cuda_err(err, s.e, "allocating");
    launch_swiglu(0, dgu, 2 * inter, dbg, dbu, rows, inter, dout, FORGE_DTYPE_F32);
    forge_status st = finish(s, err, "swiglu");
    return st ? st : back(s, out, dout, (size_t)rows * inter * 4, err);
}

forge_status op_embed(const fcuda_weight *embed, const int32_t *tokens, int rows, float *x, forge_error *err) {
    if (!weight_ok(*embed, err)) return FORGE_E_UNSUPPORTED;
    scratch s;
    dmat de = upload_weight(s, embed);
    const int32_t *dt = s.vec(tokens, rows);
    float *dx = (float *)s.get(nullptr, (size_t)rows * embed->cols * 4);
    if (s.e) return cuda_err(err, s.e, "allocating");
    launch_embed(0, de, dt, rows, dx);
    forge_status st = finish(s, err, "embed");
    return st ? st : back(s, x, dx, (size_t)rows * embed->cols * 4, err);
}

forge_status op_sample(const float *x, int rows, int n, const fcuda_row_sample *rs, int32_t *ids, forge_error *err) {
    scratch s;
    float *dx = s.vec(x, (size_t)rows * n);
    int32_t *di = (int32_t *)s.get(nullptr, (size_t)rows * 4);
    int32_t *cand = (int32_t *)s.get(nullptr, (size_t)rows * n * 4);
    if (cand) s.e = cudaMemset(cand, 0xff, (size_t)rows * n * 4); /* as the forward's scratch: never zeroed */
    double *bsum = (double *)s.get(nullptr, (size_t)rows * sample_bsum_per_row(n) * 8);
    const fcuda_row_sample *drs = s.vec(rs, (size_t)rows);
    if (s.e) return cuda_err(err, s.e, "allocating");
    launch_sample(0, dx, rows, n, drs, di, cand, bsum);
    forge_status st = finish(s, err, "sample");
    return st ? st : back(s, ids, di, (size_t)rows * 4, err);
}

static size_t cache_bytes(const fcuda_op_cache *c) {
    return (size_t)c->n_blocks * c->n_kv_heads * KV_BLOCK * c->head_dim * dtype_bytes(c->kv_dtype);
}

forge_status op_qk_rope_store(float *qkv, int rows, int n_heads, const float *bq, const float *bk, const float *bv,
                              const float *q_norm, const float *k_norm, float eps, const double *inv_freq,
                              fcuda_op_cache *c, forge_error *err) {
    scratch s;
    int hd = c->head_dim, nkv = c->n_kv_heads, ld = (n_heads + 2 * nkv) * hd;
    size_t cb = cache_bytes(c);
    rope_store_args a;
    a.qkv = s.vec(qkv, (size_t)rows * ld);
    a.ld = ld;
    a.n_heads = n_heads;
    a.n_kv_heads = nkv;
    a.head_dim = hd;
    a.bq = s.vec(bq, (size_t)n_heads * hd);
    a.bk = s.vec(bk, (size_t)nkv * hd);
    a.bv = s.vec(bv, (size_t)nkv * hd);
    a.q_norm = s.vec(q_norm, hd);
    a.k_norm = s.vec(k_norm, hd);
    a.eps = eps;
    a.inv_freq = s.vec(inv_freq, hd / 2);
    a.positions = s.vec(c->positions, rows);
    a.table_off = s.vec(c->table_off, rows);
    a.tables = s.vec(c->tables, c->n_table);
    a.k_cache = s.get(c->k, cb);
    a.v_cache = s.get(c->v, cb);
    a.kv_dtype = c->kv_dtype;
    if (s.e) return cuda_err(err, s.e, "allocating");
    launch_qk_rope_store(0, a, rows);
    forge_status st = finish(s, err, "qk_rope_store");
    if (!st) st = back(s, qkv, a.qkv, (size_t)rows * ld * 4, err);
    if (!st) st = back(s, c->k, a.k_cache, cb, err);
    if (!st) st = back(s, c->v, a.v_cache, cb, err);
    return st;
}

forge_status op_attention(const float *q, int ldq, int rows, int n_heads, int window, const fcuda_op_cache *c,
                          float *out, forge_error *err) {
    scratch s;
    int hd = c->head_dim, nkv = c->n_kv_heads;
    size_t cb = cache_bytes(c), ob = (size_t)rows * n_heads * hd * 4;
    cudaError_t e = attn_prepare(n_heads, nkv, hd);
    if (e) return cuda_err(err, e, "attention setup");
    attn_args a;
    a.q = s.vec(q, (size_t)rows * ldq);
    a.ldq = ldq;
    a.n_heads = n_heads;
    a.n_kv_heads = nkv;
    a.head_dim = hd;
    a.k_cache = s.get(c->k, cb);
    a.v_cache = s.get(c->v, cb);
    a.kv_dtype = c->kv_dtype;
    a.positions = s.vec(c->positions, rows);
    a.table_off = s.vec(c->table_off, rows);
    a.tables = s.vec(c->tables, c->n_table);
    a.window = window;
    a.scale = (float)(1.0 / sqrt((double)hd));
    a.part = (float *)s.get(nullptr, attn_part_floats(rows, n_heads, hd) * 4);
    a.counters = (int *)s.get(nullptr, (size_t)rows * nkv * 4);
    a.out = s.get(nullptr, ob);
    a.out_dtype = FORGE_DTYPE_F32;
    a.ldo = n_heads * hd;
    if (s.e) return cuda_err(err, s.e, "allocating");
    launch_attention(0, a, rows, attn_splits_for(-1));
    forge_status st = finish(s, err, "attention");
    return st ? st : back(s, out, a.out, ob, err);
}

double op_measure_bandwidth(size_t bytes, forge_error *err) {
    scratch s;
    bytes &= ~(size_t)15;
    const float4 *buf = (const float4 *)s.get(nullptr, bytes);
    float *sink = (float *)s.get(nullptr, 4);
    cudaEvent_t e0, e1;
    if (s.e || cudaEventCreate(&e0) || cudaEventCreate(&e1)) {
        cuda_err(err, s.e ? s.e : cudaGetLastError(), "bandwidth probe");
        return 0;
    }
    float best = 1e30f;
    for (int rep = 0; rep < 12; rep++) {
        cudaEventRecord(e0, 0);
        launch_read_sum(0, buf, bytes / 16, sink);
        cudaEventRecord(e1, 0);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (rep >= 2 && ms < best) best = ms; /* the first two warm up clocks and caches */
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaError_t e = cudaDeviceSynchronize();
    if (e) {
        cuda_err(err, e, "bandwidth probe");
        return 0;
    }
    return (double)bytes / (best * 1e-3);
}
