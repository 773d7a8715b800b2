/* cuda_backend.cu: the CUDA backend: weights uploaded once as stored, the paged KV cache in
 * device memory, the batched forward (the same computation as cpu_backend.c), and CUDA
 * graphs for small batches.
 *
 * Per forward, the host packs the batch (tokens, positions, each row's block-table offset,
 * logit rows, the block tables actually needed) into one pinned buffer and copies it to one
 * device buffer at fixed addresses, so a graph captured once per batch-size bucket reads any
 * later batch of that bucket. Batches up to graph_max rows are padded to a power-of-two
 * bucket; padding rows carry table offset -1, so they store no K/V and attend to nothing.
 * A bucket's first batch runs eagerly (loading kernels, choosing cuBLAS algorithms), then
 * the bucket is captured; later batches replay the graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#ifndef FORGE_CUDA_ARCH
#define FORGE_CUDA_ARCH "unknown"
#endif

enum { MAX_GRAPHS = 24 };
static const size_t BLAS_WS_BYTES = 32u << 20, STAGE_BYTES = 32u << 20;

struct dlayer {
    const float *attn_norm, *ffn_norm, *q_norm, *k_norm;
    const float *bq, *bk, *bv, *bo, *bg, *bu, *bd;
    dmat qkv[3];
    int n_qkv, qkv_col[3];
    dmat wo, wdown;
    dmat gu[2];
    int n_gu, gu_col[2];
    int sliding;
    void *k_cache, *v_cache;
};

struct graph_slot {
    int rows;
    cudaGraphExec_t exec;
};

struct fcuda_backend {
    int V, H, I, L, nh, nkv, hd, window, qd, kvd, QKV;
    float eps;
    fcuda_params p;
    int Tcap, Rcap, graph_cap;
    int attn_splits; /* gridDim.z of the attention launches being enqueued */
    size_t fuse_max;  /* GEMVs over fewer weight elements fuse their norm / SwiGLU */
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;
    gemm_ctx gc;
    char *warena, *kv, *sarena;
    size_t wbytes, kv_bytes, sbytes;
    dlayer *layers;
    dmat embed, lm_head;
    const float *final_norm;
    const double *inv_freq;
    float *x, *tmp, *qkv, *gu, *logits, *part;
    int32_t *ids, *h_ids; /* the logit rows' tokens: device scratch, pinned host copy */
    int32_t *cand;        /* the sampling kernel's kept ids (Rcap x V) */
    double *bsum;         /* and its block sums */
    fcuda_row_sample *rs, *h_rs; /* what each logit row wants: device (read by graphs), pinned host */
    void *xn, *att, *act, *xf;
    int *counters;
    int32_t *d_meta, *h_meta;
    size_t meta_cap; /* ints */
    int32_t *seq_need, *seq_off;
    int seq_cap;
    float *host_logits, *h_stage;
    bool pinned;
    graph_slot graphs[MAX_GRAPHS];
    int n_graphs;
    fcuda_stats st;
};

static int env_int(const char *name, int dflt) {
    const char *s = getenv(name);
    return s && *s ? atoi(s) : dflt;
}

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* ---- probe ------------------------------------------------------------------------------ */

__global__ void probe_k(int *x) {
    if (x) *x = 1;
}

static forge_status cuda_probe(fcuda_device_info *info, forge_error *err) {
    memset(info, 0, sizeof *info);
    cudaDriverGetVersion(&info->driver_version);
    cudaRuntimeGetVersion(&info->runtime_version);
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        if (info->driver_version == 0)
            return set_err(err, FORGE_E_UNSUPPORTED, "no CUDA device found (no NVIDIA driver: libcuda.so.1 is not loadable)");
        if (e != cudaSuccess)
            return set_err(err, FORGE_E_UNSUPPORTED, "no CUDA device found (cudaGetDeviceCount: %s)",
                           cudaGetErrorString(e));
        return set_err(err, FORGE_E_UNSUPPORTED, "no CUDA device found (the driver reports none)");
    }
    info->count = n;
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) return cuda_err(err, e, "cudaGetDeviceProperties");
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    info->n_sm = prop.multiProcessorCount;
    if ((e = cudaSetDevice(0)) != cudaSuccess) return cuda_err(err, e, "cudaSetDevice");
    if ((e = cudaMemGetInfo(&info->free_bytes, &info->total_bytes)) != cudaSuccess) return cuda_err(err, e, "cudaMemGetInfo");
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, reinterpret_cast<const void *>(&probe_k)) != cudaSuccess) {
        cudaGetLastError();
        return set_err(err, FORGE_E_UNSUPPORTED,
                       "libforge-cuda.so was built for %s, which cannot run on %s (sm_%d%d): rebuild with "
                       "make CUDA=1 CUDA_ARCH=sm_%d%d",
                       FORGE_CUDA_ARCH, info->name, prop.major, prop.minor, prop.major, prop.minor);
    }
    return FORGE_OK;
}

/* ---- sizes ------------------------------------------------------------------------------ */

static size_t kv_pool_bytes(const fcuda_model *m, const fcuda_params *p) {
    return (size_t)m->n_layers * 2 * p->n_kv_blocks * m->n_kv_heads * KV_BLOCK * m->head_dim *
           dtype_bytes(p->kv_dtype);
}

/* Lays out the scratch arena (b may be NULL: only the size) */
static size_t scratch_layout(const fcuda_model *m, const fcuda_params *p, fcuda_backend *b) {
    size_t T = (size_t)p->max_batch_tokens, R = (size_t)p->max_logit_rows, off = 0;
    size_t H = m->hidden, I = m->inter, qd = (size_t)m->n_heads * m->head_dim;
    size_t QKV = qd + 2 * (size_t)m->n_kv_heads * m->head_dim;
    size_t maxk = H > qd ? H : qd;
    if (I > maxk) maxk = I;
    size_t TR = T > R ? T : R;
    char *base = b ? b->sarena : nullptr;
#define PLACE(field, type, bytes)                                                                 \
    do {                                                                                          \
        if (b) b->field = (type)(base + off);                                                     \
        off += align256(bytes);                                                                   \
    } while (0)
    PLACE(x, float *, T * H * 4);
    PLACE(tmp, float *, T * H * 4);
    PLACE(xn, void *, T * H * 4);
    PLACE(qkv, float *, T * QKV * 4);
    PLACE(att, void *, T * qd * 4);
    PLACE(gu, float *, T * 2 * I * 4);
    PLACE(act, void *, T * I * 4);
    PLACE(xf, void *, R * H * 4);
    PLACE(logits, float *, R * (size_t)m->vocab * 4);
    PLACE(ids, int32_t *, R * 4);
    PLACE(cand, int32_t *, R * (size_t)m->vocab * 4);
    PLACE(bsum, double *, R * sample_bsum_per_row(m->vocab) * 8);
    PLACE(rs, fcuda_row_sample *, R * sizeof(fcuda_row_sample));
    PLACE(part, float *, attn_part_floats((int)T, m->n_heads, m->head_dim) * 4);
    PLACE(counters, int *, T * m->n_kv_heads * 4);
    PLACE(gc.conv, void *, TR * maxk * 2);
    PLACE(blas_ws, void *, (size_t)BLAS_WS_BYTES);
#undef PLACE
    return off;
}

static size_t cuda_scratch_bytes(const fcuda_model *m, const fcuda_params *p) {
    size_t meta = ((size_t)3 * p->max_batch_tokens + p->max_logit_rows + p->n_kv_blocks + p->max_batch_tokens) * 4;
    return scratch_layout(m, p, nullptr) + align256(meta);
}

/* ---- weight upload ---------------------------------------------------------------------- */

/* Two pinned staging buffers: the CPU fills one while the copy engine drains the other. */
struct uploader {
    fcuda_backend *b;
    size_t off;   /* next free byte of the arena */
    bool dry;     /* only measure */
    char *stage[2];
    cudaEvent_t ev[2];
    int cur;
    cudaError_t e;
};

static void up_bytes(uploader &u, char *dst, const void *src, size_t n) {
    if (u.e != cudaSuccess) return;
    const char *s = (const char *)src;
    while (n) {
        size_t c = n < STAGE_BYTES ? n : STAGE_BYTES;
        if (u.stage[0]) {
            if ((u.e = cudaEventSynchronize(u.ev[u.cur])) != cudaSuccess) return;
            memcpy(u.stage[u.cur], s, c);
            if ((u.e = cudaMemcpyAsync(dst, u.stage[u.cur], c, cudaMemcpyHostToDevice, u.b->stream)) != cudaSuccess)
                return;
            if ((u.e = cudaEventRecord(u.ev[u.cur], u.b->stream)) != cudaSuccess) return;
            u.cur ^= 1;
        } else if ((u.e = cudaMemcpy(dst, s, c, cudaMemcpyHostToDevice)) != cudaSuccess) {
            return;
        }
        dst += c;
        s += c;
        n -= c;
    }
}

/* Places n bytes of src in the arena (contiguous with the previous put when !align). */
static char *put(uploader &u, const void *src, size_t n, bool align = true) {
    char *dst = u.dry ? nullptr : u.b->warena + u.off;
    if (!u.dry && src) up_bytes(u, dst, src, n);
    u.off += align ? align256(n) : n;
    return dst;
}

static const float *put_vec(uploader &u, const float *v, size_t n) { return v ? (const float *)put(u, v, n * 4) : nullptr; }

static dmat put_mat(uploader &u, const fcuda_weight &w, bool align = true) {
    dmat d = {nullptr, w.dtype, w.rows, w.cols, w.qtype};
    d.data = put(u, w.data, (size_t)w.rows * dmat_row_bytes(w.dtype, w.qtype, w.cols), align);
    return d;
}

/* Concatenates parts with one dtype into one matrix (rows stacked); else keeps them apart. */
static int put_group(uploader &u, const fcuda_weight *const *w, int n, dmat *out, int *col) {
    bool same = true;
    for (int i = 1; i < n; i++)
        same = same && w[i]->dtype == w[0]->dtype && w[i]->qtype == w[0]->qtype && w[i]->cols == w[0]->cols;
    int c = 0;
    if (same) {
        dmat d = {nullptr, w[0]->dtype, 0, w[0]->cols, w[0]->qtype};
        for (int i = 0; i < n; i++) {
            dmat p = put_mat(u, *w[i], i == n - 1);
            if (i == 0) d.data = p.data;
            d.rows += w[i]->rows;
        }
        out[0] = d;
        col[0] = 0;
        return 1;
    }
    for (int i = 0; i < n; i++) {
        out[i] = put_mat(u, *w[i]);
        col[i] = c;
        c += w[i]->rows;
    }
    return n;
}

static void upload_model(uploader &u, const fcuda_model *m) {
    fcuda_backend *b = u.b;
    b->embed = put_mat(u, m->embed);
    b->lm_head = m->lm_head.data == m->embed.data ? b->embed : put_mat(u, m->lm_head);
    b->final_norm = put_vec(u, m->final_norm, m->hidden);
    b->inv_freq = (const double *)put(u, m->rope_inv_freq, (size_t)(m->head_dim / 2) * sizeof(double));
    for (int l = 0; l < m->n_layers; l++) {
        const fcuda_layer *s = &m->layers[l];
        dlayer d;
        memset(&d, 0, sizeof d);
        d.attn_norm = put_vec(u, s->attn_norm, m->hidden);
        d.ffn_norm = put_vec(u, s->ffn_norm, m->hidden);
        d.q_norm = put_vec(u, s->q_norm, m->head_dim);
        d.k_norm = put_vec(u, s->k_norm, m->head_dim);
        d.bq = put_vec(u, s->wq.bias, s->wq.rows);
        d.bk = put_vec(u, s->wk.bias, s->wk.rows);
        d.bv = put_vec(u, s->wv.bias, s->wv.rows);
        d.bo = put_vec(u, s->wo.bias, s->wo.rows);
        d.bg = put_vec(u, s->wgate.bias, s->wgate.rows);
        d.bu = put_vec(u, s->wup.bias, s->wup.rows);
        d.bd = put_vec(u, s->wdown.bias, s->wdown.rows);
        const fcuda_weight *qkv[3] = {&s->wq, &s->wk, &s->wv}, *gu[2] = {&s->wgate, &s->wup};
        d.n_qkv = put_group(u, qkv, 3, d.qkv, d.qkv_col);
        d.wo = put_mat(u, s->wo);
        d.n_gu = put_group(u, gu, 2, d.gu, d.gu_col);
        d.wdown = put_mat(u, s->wdown);
        d.sliding = s->sliding;
        if (!u.dry) b->layers[l] = d;
    }
}

/* ---- create / destroy ------------------------------------------------------------------- */

static void cuda_destroy(fcuda_backend *b) {
    if (!b) return;
    if (b->stream) cudaStreamSynchronize(b->stream);
    for (int i = 0; i < b->n_graphs; i++) cudaGraphExecDestroy(b->graphs[i].exec);
    if (b->blas) cublasDestroy(b->blas);
    if (b->pinned) cudaHostUnregister(b->host_logits);
    cudaFree(b->warena);
    cudaFree(b->kv);
    cudaFree(b->sarena);
    cudaFree(b->d_meta);
    cudaFreeHost(b->h_meta);
    cudaFreeHost(b->h_stage);
    cudaFreeHost(b->h_ids);
    cudaFreeHost(b->h_rs);
    if (b->stream) cudaStreamDestroy(b->stream);
    free(b->layers);
    free(b->seq_need);
    free(b->seq_off);
    free(b);
}

static forge_status fit_check(const fcuda_model *m, const fcuda_params *p, size_t wbytes, const fcuda_device_info &dev,
                              forge_error *err) {
    const double GB = 1e9;
    size_t kv = kv_pool_bytes(m, p), scratch = cuda_scratch_bytes(m, p);
    double cap = p->mem_fraction * (double)dev.total_bytes;
    double allowed = cap < (double)dev.free_bytes - (64 << 20) ? cap : (double)dev.free_bytes - (64 << 20);
    if ((double)wbytes > allowed)
        return set_err(err, FORGE_E_NOMEM,
                       "the weights (%.2f GB) do not fit on %s: %.3g of its %.1f GB with %.1f GB free allows %.2f GB "
                       "(raise FORGE_GPU_MEMORY_UTILIZATION, free the GPU, or use the CPU: FORGE_DEVICE=cpu)",
                       wbytes / GB, dev.name, p->mem_fraction, dev.total_bytes / GB, dev.free_bytes / GB,
                       allowed / GB);
    if ((double)(wbytes + kv + scratch) > allowed)
        return set_err(err, FORGE_E_NOMEM,
                       "the model does not fit on %s: weights %.2f GB + KV cache %.2f GB (%d blocks) + scratch %.2f GB "
                       "(%d batch tokens) = %.2f GB, but %.3g of %.1f GB with %.1f GB free allows %.2f GB: lower the "
                       "KV cache (kv_cache_mb, n_kv_blocks) or the batch",
                       dev.name, wbytes / GB, kv / GB, p->n_kv_blocks, scratch / GB, p->max_batch_tokens,
                       (wbytes + kv + scratch) / GB, p->mem_fraction, dev.total_bytes / GB, dev.free_bytes / GB,
                       allowed / GB);
    return FORGE_OK;
}

static bool weights_ok(const fcuda_model *m, forge_error *err) {
    if (!weight_ok(m->embed, err) || !weight_ok(m->lm_head, err)) return false;
    for (int l = 0; l < m->n_layers; l++) {
        const fcuda_layer &L = m->layers[l];
        const fcuda_weight *w[7] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.wgate, &L.wup, &L.wdown};
        for (int i = 0; i < 7; i++)
            if (!weight_ok(*w[i], err)) return false;
    }
    return true;
}

static fcuda_backend *cuda_create(const fcuda_model *m, const fcuda_params *pin, forge_error *err) {
    if (!weights_ok(m, err)) return nullptr;
    if (m->head_dim > FCUDA_MAX_HEAD_DIM || m->head_dim % 2 || m->n_heads % m->n_kv_heads ||
        m->n_heads / m->n_kv_heads > FCUDA_MAX_GQA) {
        set_err(err, FORGE_E_UNSUPPORTED, "CUDA backend: head_dim %d (at most %d, even) or %d heads over %d KV heads "
                "(at most %d per KV head) not supported", m->head_dim, FCUDA_MAX_HEAD_DIM, m->n_heads, m->n_kv_heads,
                FCUDA_MAX_GQA);
        return nullptr;
    }
    fcuda_device_info dev;
    if (cuda_probe(&dev, err)) return nullptr;
    double t0 = wall_seconds();
    fcuda_backend *b = (fcuda_backend *)calloc(1, sizeof *b);
    if (!b) {
        set_err(err, FORGE_E_NOMEM, "out of memory");
        return nullptr;
    }
    b->p = *pin;
    fcuda_params &p = b->p;
    if (p.mem_fraction <= 0 || p.mem_fraction > 1) p.mem_fraction = 0.9;
    /* cuBLAS only when asked for: it picks kernels (and split-K) by shape, so a row's bits
     * would depend on its batch; FORGE_CUDA_BLAS=1 is today's measured-faster prefill. */
    if (p.gemv_max_rows < 0)
        p.gemv_max_rows = env_int("FORGE_CUDA_GEMV_MAX", env_int("FORGE_CUDA_BLAS", 0) ? 1 : DEFAULT_GEMV_MAX);
    if (p.graph_max_rows < 0) p.graph_max_rows = env_int("FORGE_CUDA_GRAPHS", DEFAULT_GRAPH_MAX);
    b->V = m->vocab, b->H = m->hidden, b->I = m->inter, b->L = m->n_layers, b->nh = m->n_heads;
    b->nkv = m->n_kv_heads, b->hd = m->head_dim, b->window = m->sliding_window, b->eps = m->eps;
    b->qd = b->nh * b->hd, b->kvd = b->nkv * b->hd, b->QKV = b->qd + 2 * b->kvd;
    b->Tcap = p.max_batch_tokens, b->Rcap = p.max_logit_rows;
    b->graph_cap = p.graph_max_rows < b->Tcap ? p.graph_max_rows : b->Tcap;
    b->st.gemv_max_rows = p.gemv_max_rows;
    b->st.graph_max_rows = b->graph_cap;
    b->st.attn_splits = ATTN_SPLITS;
    snprintf(b->st.device, sizeof b->st.device, "%s", dev.name);
    cudaError_t e;
    cublasStatus_t bs;

    uploader u = {};
    u.b = b;
    u.dry = true;
    upload_model(u, m);
    b->wbytes = u.off;
    if (fit_check(m, &p, b->wbytes, dev, err)) goto fail;

    if ((e = cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking))) goto cuda_fail;
    b->layers = (dlayer *)calloc((size_t)m->n_layers, sizeof *b->layers);
    if (!b->layers) {
        set_err(err, FORGE_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((e = cudaMalloc((void **)&b->warena, b->wbytes))) goto cuda_fail;
    u.off = 0;
    u.dry = false;
    if (cudaMallocHost((void **)&u.stage[0], 2 * (size_t)STAGE_BYTES) == cudaSuccess) {
        u.stage[1] = u.stage[0] + STAGE_BYTES;
        cudaEventCreateWithFlags(&u.ev[0], cudaEventDisableTiming);
        cudaEventCreateWithFlags(&u.ev[1], cudaEventDisableTiming);
    } else {
        cudaGetLastError();
        u.stage[0] = nullptr;
    }
    upload_model(u, m);
    if (u.e == cudaSuccess) u.e = cudaStreamSynchronize(b->stream);
    if (u.stage[0]) {
        cudaEventDestroy(u.ev[0]);
        cudaEventDestroy(u.ev[1]);
        cudaFreeHost(u.stage[0]);
    }
    if ((e = u.e)) goto cuda_fail;

    b->kv_bytes = kv_pool_bytes(m, &p);
    if ((e = cudaMalloc((void **)&b->kv, b->kv_bytes))) goto cuda_fail;
    if ((e = cudaMemsetAsync(b->kv, 0, b->kv_bytes, b->stream))) goto cuda_fail;
    {
        size_t pool = b->kv_bytes / (2 * (size_t)b->L);
        for (int l = 0; l < b->L; l++) {
            b->layers[l].k_cache = b->kv + (2 * (size_t)l) * pool;
            b->layers[l].v_cache = b->kv + (2 * (size_t)l + 1) * pool;
        }
    }
    b->sbytes = scratch_layout(m, &p, nullptr);
    if ((e = cudaMalloc((void **)&b->sarena, b->sbytes))) goto cuda_fail;
    scratch_layout(m, &p, b);
    if ((e = cudaMemsetAsync(b->counters, 0, (size_t)b->Tcap * b->nkv * 4, b->stream))) goto cuda_fail;
    b->gc.conv_bytes = (size_t)(b->Tcap > b->Rcap ? b->Tcap : b->Rcap) *
                       (b->H > b->qd ? (b->H > b->I ? b->H : b->I) : (b->qd > b->I ? b->qd : b->I)) * 2;
    b->meta_cap = (size_t)3 * b->Tcap + b->Rcap + p.n_kv_blocks + b->Tcap;
    if ((e = cudaMalloc((void **)&b->d_meta, b->meta_cap * 4))) goto cuda_fail;
    if ((e = cudaMallocHost((void **)&b->h_meta, b->meta_cap * 4))) goto cuda_fail;

    if ((bs = cublasCreate(&b->blas)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetStream(b->blas, b->stream)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetWorkspace(b->blas, b->blas_ws, BLAS_WS_BYTES)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetMathMode(b->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        blas_err(err, bs, "cuBLAS setup");
        goto fail;
    }
    b->gc.stream = b->stream;
    b->gc.blas = b->blas;
    b->gc.gemv_max = p.gemv_max_rows;
    b->gc.tf32 = env_int("FORGE_CUDA_TF32", 0) != 0;
    b->fuse_max = (size_t)env_int("FORGE_CUDA_FUSE_MAX", 4 << 20); /* elements; 0: never fused */
    if ((e = attn_prepare(b->nh, b->nkv, b->hd))) goto cuda_fail;

    b->host_logits = p.host_logits;
    if (b->host_logits) {
        size_t bytes = (size_t)b->Rcap * b->V * 4;
        if (cudaHostRegister(b->host_logits, bytes, cudaHostRegisterDefault) == cudaSuccess)
            b->pinned = true;
        else
            cudaGetLastError();
    }
    if (!b->pinned && (e = cudaMallocHost((void **)&b->h_stage, (size_t)b->Rcap * b->V * 4))) goto cuda_fail;
    if ((e = cudaMallocHost((void **)&b->h_ids, (size_t)b->Rcap * 4 + 4))) goto cuda_fail;
    if ((e = cudaMallocHost((void **)&b->h_rs, (size_t)b->Rcap * sizeof(fcuda_row_sample)))) goto cuda_fail;
    if ((e = cudaStreamSynchronize(b->stream))) goto cuda_fail;
    b->st.weight_bytes = b->wbytes;
    b->st.kv_bytes = b->kv_bytes;
    b->st.scratch_bytes = b->sbytes + b->meta_cap * 4;
    b->st.upload_seconds = wall_seconds() - t0;
    b->st.logits_pinned = b->pinned;
    return b;

cuda_fail:
    cuda_err(err, e, "creating the backend");
fail:
    cudaGetLastError();
    cuda_destroy(b);
    return nullptr;
}

/* ---- the forward ------------------------------------------------------------------------ */

static int qkv_input_dtype(const fcuda_backend *b, const dlayer &d, int T) {
    int dt = gemm_input_dtype(b->gc, d.qkv[0], T, GEMM_AUTO);
    for (int i = 1; i < d.n_qkv; i++)
        if (gemm_input_dtype(b->gc, d.qkv[i], T, GEMM_AUTO) != dt) return FORGE_DTYPE_F32;
    return dt;
}

static int gu_input_dtype(const fcuda_backend *b, const dlayer &d, int T) {
    int dt = gemm_input_dtype(b->gc, d.gu[0], T, GEMM_AUTO);
    if (d.n_gu == 2 && gemm_input_dtype(b->gc, d.gu[1], T, GEMM_AUTO) != dt) return FORGE_DTYPE_F32;
    return dt;
}

/* The layer steps both paths share: q/k norm + RoPE + KV store, then attention. */
static void attend(fcuda_backend *b, const dlayer &d, int T, int out_dtype) {
    const int32_t *pos = b->d_meta + b->Tcap, *toff = pos + b->Tcap, *tables = toff + b->Tcap + b->Rcap;
    rope_store_args ra = {b->qkv, b->QKV, b->nh, b->nkv, b->hd, d.bq, d.bk, d.bv, d.q_norm, d.k_norm, b->eps,
                          b->inv_freq, pos, toff, tables, d.k_cache, d.v_cache, b->p.kv_dtype};
    launch_qk_rope_store(b->stream, ra, T);
    attn_args aa = {b->qkv, b->QKV, b->nh, b->nkv, b->hd, d.k_cache, d.v_cache, b->p.kv_dtype, pos, toff, tables,
                    d.sliding ? b->window : 0, (float)(1.0 / sqrt((double)b->hd)), b->part, b->counters, b->att,
                    out_dtype, b->qd};
    launch_attention(b->stream, aa, T, b->attn_splits);
}

/* Whether a GEMV over these weights takes its RMSNorm / SwiGLU fused as a prologue: each
 * warp then recomputes its rows' inputs (and each block the rows' RMS), which costs about
 * the weights' element count; a separate kernel costs one launch. Fused for small weights
 * (SmolLM2-135M's every matrix), separate for large ones (Llama-3.2-1B's). By shape only:
 * the path never depends on the batch. */
static bool fuse_prologue(const fcuda_backend *b, const dmat *w, int n) {
    size_t elems = 0;
    for (int i = 0; i < n; i++) elems += (size_t)w[i].rows * w[i].cols;
    return elems < b->fuse_max;
}

/* out[r] (+ col[i] for each of the n matrices) = rmsnorm(x[idx ? idx[r] : r]) * norm_w . w[i]^T
 * for `rows` rows: the norm fused as the GEMVs' prologue, or run first into scratch. */
static void norm_gemv(fcuda_backend *b, int rows, const int32_t *idx, const float *norm_w, const dmat *w,
                      const int *col, int n, float *out, int ldo, void *scratch) {
    cudaStream_t s = b->stream;
    if (fuse_prologue(b, w, n)) {
        gemv_extra norm;
        norm.xrows = idx;
        norm.norm_w = norm_w;
        norm.eps = b->eps;
        for (int i = 0; i < n; i++) gemv_run(s, GEMV_NORM, b->x, b->H, rows, w[i], out + col[i], ldo, norm);
    } else {
        launch_add_rmsnorm(s, b->x, nullptr, nullptr, idx, false, norm_w, rows, b->H, b->eps, scratch, FORGE_DTYPE_F32);
        for (int i = 0; i < n; i++)
            gemv_run(s, GEMV_PLAIN, (const float *)scratch, b->H, rows, w[i], out + col[i], ldo, gemv_extra());
    }
}

/* Decode (T <= gemv_max): six to nine kernels a layer, the residual stream updated in place
 * by the GEMV epilogues and normalized in the next GEMV's prologue or a norm kernel. */
static void enqueue_gemv(fcuda_backend *b, int T, int R) {
    cudaStream_t s = b->stream;
    const int32_t *lrows = b->d_meta + 3 * b->Tcap;
    const int H = b->H, I = b->I;
    launch_embed(s, b->embed, b->d_meta, T, b->x);
    for (int l = 0; l < b->L; l++) {
        const dlayer &d = b->layers[l];
        norm_gemv(b, T, nullptr, d.attn_norm, d.qkv, d.qkv_col, d.n_qkv, b->qkv, b->QKV, b->xn);
        attend(b, d, T, FORGE_DTYPE_F32);
        gemv_extra res;
        res.bias = d.bo;
        gemv_run(s, GEMV_RESID, (const float *)b->att, b->qd, T, d.wo, b->x, H, res);
        norm_gemv(b, T, nullptr, d.ffn_norm, d.gu, d.gu_col, d.n_gu, b->gu, 2 * I, b->xn);
        gemv_extra dn;
        dn.bias = d.bd;
        if (fuse_prologue(b, &d.wdown, 1)) {
            dn.bg = d.bg, dn.bu = d.bu;
            gemv_run(s, GEMV_SWIGLU_RESID, b->gu, 2 * I, T, d.wdown, b->x, H, dn);
        } else {
            launch_swiglu(s, b->gu, 2 * I, d.bg, d.bu, T, I, b->act, FORGE_DTYPE_F32);
            gemv_run(s, GEMV_RESID, (const float *)b->act, I, T, d.wdown, b->x, H, dn);
        }
    }
    const int col0 = 0;
    if (R > 0) {
        norm_gemv(b, R, lrows, b->final_norm, &b->lm_head, &col0, 1, b->logits, b->V, b->xf);
        launch_sample(s, b->logits, R, b->V, b->rs, b->ids, b->cand, b->bsum);
    }
}

/* Prefill and large batches: cuBLAS GEMMs; norms as kernels writing the GEMM's input dtype,
 * the residual add deferred into the next norm (as the CPU backend does). */
static forge_status enqueue_blas(fcuda_backend *b, int T, int R, forge_error *err) {
    cudaStream_t s = b->stream;
    const int32_t *lrows = b->d_meta + 3 * b->Tcap;
    const int H = b->H, I = b->I;
    forge_status st;
    launch_embed(s, b->embed, b->d_meta, T, b->x);
    for (int l = 0; l < b->L; l++) {
        const dlayer &d = b->layers[l];
        int dq = qkv_input_dtype(b, d, T);
        launch_add_rmsnorm(s, b->x, l ? b->tmp : nullptr, l ? b->layers[l - 1].bd : nullptr, nullptr, true,
                           d.attn_norm, T, H, b->eps, b->xn, dq);
        for (int i = 0; i < d.n_qkv; i++)
            if ((st = gemm_run(b->gc, b->xn, dq, H, T, d.qkv[i], b->qkv + d.qkv_col[i], b->QKV, GEMM_AUTO, err)))
                return st;
        int da = gemm_input_dtype(b->gc, d.wo, T, GEMM_AUTO);
        attend(b, d, T, da);
        if ((st = gemm_run(b->gc, b->att, da, b->qd, T, d.wo, b->tmp, H, GEMM_AUTO, err))) return st;
        int dg = gu_input_dtype(b, d, T);
        launch_add_rmsnorm(s, b->x, b->tmp, d.bo, nullptr, true, d.ffn_norm, T, H, b->eps, b->xn, dg);
        for (int i = 0; i < d.n_gu; i++)
            if ((st = gemm_run(b->gc, b->xn, dg, H, T, d.gu[i], b->gu + d.gu_col[i], 2 * I, GEMM_AUTO, err)))
                return st;
        int dd = gemm_input_dtype(b->gc, d.wdown, T, GEMM_AUTO);
        launch_swiglu(s, b->gu, 2 * I, d.bg, d.bu, T, I, b->act, dd);
        if ((st = gemm_run(b->gc, b->act, dd, I, T, d.wdown, b->tmp, H, GEMM_AUTO, err))) return st;
    }
    if (R > 0) {
        int dl = gemm_input_dtype(b->gc, b->lm_head, R, GEMM_AUTO);
        launch_add_rmsnorm(s, b->x, b->tmp, b->layers[b->L - 1].bd, lrows, false, b->final_norm, R, H, b->eps, b->xf,
                           dl);
        if ((st = gemm_run(b->gc, b->xf, dl, H, R, b->lm_head, b->logits, b->V, GEMM_AUTO, err))) return st;
        launch_sample(s, b->logits, R, b->V, b->rs, b->ids, b->cand, b->bsum);
    }
    return FORGE_OK;
}

/* Enqueues the whole forward of T rows (R with logits) reading the batch from d_meta. */
static forge_status enqueue(fcuda_backend *b, int T, int R, forge_error *err) {
    if (T <= b->gc.gemv_max) {
        enqueue_gemv(b, T, R);
    } else {
        forge_status st = enqueue_blas(b, T, R, err);
        if (st) return st;
    }
    cudaError_t e = cudaGetLastError();
    return e ? cuda_err(err, e, "launching the forward") : FORGE_OK;
}

static int bucket_of(const fcuda_backend *b, int T) {
    int r = 1;
    while (r < T) r <<= 1;
    return r < b->graph_cap ? r : b->graph_cap;
}

static void drop_graphs(fcuda_backend *b) {
    for (int i = 0; i < b->n_graphs; i++) cudaGraphExecDestroy(b->graphs[i].exec);
    b->n_graphs = 0;
}

/* Captures the forward of a bucket; on failure graphs are turned off (eager still works). */
static void capture(fcuda_backend *b, int T, int R) {
    double t0 = wall_seconds();
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    forge_error err;
    err.msg[0] = 0;
    b->attn_splits = attn_splits_for(-1); /* a graph replays for any positions */
    cudaError_t e = cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeRelaxed);
    forge_status st = FORGE_OK;
    if (e == cudaSuccess) {
        st = enqueue(b, T, R, &err);
        e = cudaStreamEndCapture(b->stream, &g);
    }
    if (e == cudaSuccess && st == FORGE_OK) e = cudaGraphInstantiate(&exec, g, 0);
    if (g) cudaGraphDestroy(g);
    if (e != cudaSuccess || st != FORGE_OK || b->n_graphs == MAX_GRAPHS) {
        snprintf(b->st.note, sizeof b->st.note, "CUDA graphs off: capture of %d rows failed: %s", T,
                 st ? err.msg : e ? cudaGetErrorString(e) : "too many graphs");
        cudaGetLastError();
        if (exec) cudaGraphExecDestroy(exec);
        drop_graphs(b);
        b->graph_cap = 0;
        return;
    }
    b->graphs[b->n_graphs++] = (graph_slot){T, exec};
    b->st.n_graphs = b->n_graphs;
    b->st.capture_seconds += wall_seconds() - t0;
}

/* Packs the batch into h_meta; returns the ints to copy, or 0 when out of memory. */
static size_t pack_batch(fcuda_backend *b, const forge_batch *bt, int Tr, int Rr, forge_error *err) {
    const int T = bt->n_tokens, R = bt->n_logits;
    if (bt->n_seqs > b->seq_cap) {
        int cap = bt->n_seqs * 2;
        int32_t *need = (int32_t *)realloc(b->seq_need, (size_t)cap * 4), *off;
        if (need) b->seq_need = need;
        off = (int32_t *)realloc(b->seq_off, (size_t)cap * 4);
        if (off) b->seq_off = off;
        if (!need || !off) {
            set_err(err, FORGE_E_NOMEM, "out of memory");
            return 0;
        }
        b->seq_cap = cap;
    }
    for (int s = 0; s < bt->n_seqs; s++) b->seq_need[s] = 0;
    for (int i = 0; i < T; i++) {
        int need = bt->positions[i] / KV_BLOCK + 1;
        if (need > b->seq_need[bt->seq[i]]) b->seq_need[bt->seq[i]] = need;
    }
    size_t ntab = 0;
    for (int s = 0; s < bt->n_seqs; s++) {
        b->seq_off[s] = (int32_t)ntab;
        ntab += (size_t)b->seq_need[s];
    }
    size_t head = (size_t)3 * b->Tcap + b->Rcap, total = head + ntab;
    if (total > b->meta_cap) { /* grow both buffers; graphs hold the old address */
        size_t cap = total * 2;
        int32_t *d = nullptr, *h = nullptr;
        if (cudaMalloc((void **)&d, cap * 4) != cudaSuccess || cudaMallocHost((void **)&h, cap * 4) != cudaSuccess) {
            cudaGetLastError();
            cudaFree(d);
            set_err(err, FORGE_E_NOMEM, "cannot grow the batch buffer to %zu block-table entries", ntab);
            return 0;
        }
        drop_graphs(b);
        cudaFree(b->d_meta);
        cudaFreeHost(b->h_meta);
        b->d_meta = d;
        b->h_meta = h;
        b->meta_cap = cap;
    }
    int32_t *tok = b->h_meta, *pos = tok + b->Tcap, *toff = pos + b->Tcap, *lrows = toff + b->Tcap;
    int32_t *tab = lrows + b->Rcap;
    for (int s = 0; s < bt->n_seqs; s++)
        if (b->seq_need[s]) memcpy(tab + b->seq_off[s], bt->block_tables[s], (size_t)b->seq_need[s] * 4);
    for (int i = 0; i < T; i++) {
        tok[i] = bt->tokens[i];
        pos[i] = bt->positions[i];
        toff[i] = b->seq_off[bt->seq[i]];
    }
    for (int i = T; i < Tr; i++) tok[i] = 0, pos[i] = 0, toff[i] = -1;
    for (int r = 0; r < R; r++) lrows[r] = bt->logit_rows[r];
    for (int r = R; r < Rr; r++) lrows[r] = 0;
    return total;
}

/* Row r asks for its token only (its logits stay on the device). */
static bool token_only(const fcuda_row_sample *rows, int r) { return rows && rows[r].kind != FCUDA_ROW_LOGITS; }

/* Copies logits rows [r0, r1) to the host buffer dst (async on the stream). */
static cudaError_t copy_rows(fcuda_backend *b, float *dst, int r0, int r1) {
    size_t row = (size_t)b->V;
    return cudaMemcpyAsync(dst + r0 * row, b->logits + r0 * row, (size_t)(r1 - r0) * row * 4, cudaMemcpyDeviceToHost,
                           b->stream);
}

static forge_status cuda_forward(fcuda_backend *b, const forge_batch *bt, const fcuda_row_sample *rows,
                                 float *logits, int32_t *ids, forge_error *err) {
    if (!ids) rows = nullptr; /* no tokens wanted: every row's logits */
    const int T = bt->n_tokens, R = bt->n_logits;
    if (T > b->Tcap || R > b->Rcap) return set_err(err, FORGE_E_RANGE, "batch larger than the backend's scratch");
    bool graph = b->graph_cap > 0 && T <= b->graph_cap;
    int Tr = graph ? bucket_of(b, T) : T, Rr = graph ? (Tr < b->Rcap ? Tr : b->Rcap) : R;
    size_t n = pack_batch(b, bt, Tr, Rr, err);
    if (!n) return err ? err->code : FORGE_E_NOMEM;
    cudaError_t e = cudaMemcpyAsync(b->d_meta, b->h_meta, n * 4, cudaMemcpyHostToDevice, b->stream);
    if (e) return cuda_err(err, e, "copying the batch");
    /* each logit row's sampling (padding rows of a graph bucket: greedy, unused) */
    int Rs = graph ? Rr : R;
    memset(b->h_rs, 0, (size_t)Rs * sizeof(fcuda_row_sample));
    if (rows) memcpy(b->h_rs, rows, (size_t)R * sizeof(fcuda_row_sample));
    if (Rs > 0 && (e = cudaMemcpyAsync(b->rs, b->h_rs, (size_t)Rs * sizeof(fcuda_row_sample), cudaMemcpyHostToDevice,
                                       b->stream)))
        return cuda_err(err, e, "copying the rows' sampling");
    graph = graph && b->graph_cap > 0; /* pack_batch may have dropped graphs, not the cap */
    int slot = -1;
    for (int i = 0; graph && i < b->n_graphs; i++)
        if (b->graphs[i].rows == Tr) slot = i;
    forge_status st = FORGE_OK;
    if (slot >= 0) {
        if ((e = cudaGraphLaunch(b->graphs[slot].exec, b->stream))) return cuda_err(err, e, "cudaGraphLaunch");
        b->st.graph_forwards++;
    } else {
        int max_pos = -1;
        for (int i = 0; i < T; i++) max_pos = bt->positions[i] > max_pos ? bt->positions[i] : max_pos;
        b->attn_splits = attn_splits_for(max_pos);
        if ((st = enqueue(b, Tr, graph ? Rr : R, err))) return st;
        b->st.eager_forwards++;
    }
    if (R > 0) {
        /* the rows that want logits, in runs of consecutive rows; the tokens of all */
        float *dst = logits == b->host_logits && b->pinned ? logits : b->h_stage ? b->h_stage : logits;
        for (int r = 0; r < R;) {
            int r1 = r;
            while (r1 < R && !token_only(rows, r1)) r1++;
            if (r1 > r && (e = copy_rows(b, dst, r, r1))) return cuda_err(err, e, "copying logits");
            b->st.logit_rows_copied += r1 - r;
            r = r1;
            while (r < R && token_only(rows, r)) r++, b->st.id_rows_copied++;
        }
        if (ids && (e = cudaMemcpyAsync(b->h_ids, b->ids, (size_t)R * 4, cudaMemcpyDeviceToHost, b->stream)))
            return cuda_err(err, e, "copying the tokens");
        if ((e = cudaStreamSynchronize(b->stream))) return cuda_err(err, e, "running the forward");
        if (dst != logits)
            for (int r = 0; r < R; r++)
                if (!token_only(rows, r)) memcpy(logits + (size_t)r * b->V, dst + (size_t)r * b->V, (size_t)b->V * 4);
        if (ids) memcpy(ids, b->h_ids, (size_t)R * 4);
    } else if ((e = cudaStreamSynchronize(b->stream))) {
        return cuda_err(err, e, "running the forward");
    }
    if (graph && slot < 0) capture(b, Tr, Rr);
    return FORGE_OK;
}

static void cuda_get_stats(const fcuda_backend *b, fcuda_stats *out) { *out = b->st; }

/* The pools are [block][kv_head][KV_BLOCK][head_dim] per layer: one copy per layer, K/V and
 * head, device to device on the forward's stream (so the next forward sees it). */
static forge_status cuda_copy_kv(fcuda_backend *b, int src, int dst, int n, forge_error *err) {
    size_t esz = dtype_bytes(b->p.kv_dtype), row = (size_t)b->hd * esz, head = (size_t)KV_BLOCK * row;
    size_t blk = head * (size_t)b->nkv;
    for (int l = 0; l < b->L; l++)
        for (int kv = 0; kv < 2; kv++) {
            char *pool = (char *)(kv ? b->layers[l].v_cache : b->layers[l].k_cache);
            for (int g = 0; g < b->nkv; g++) {
                cudaError_t e = cudaMemcpyAsync(pool + (size_t)dst * blk + g * head, pool + (size_t)src * blk + g * head,
                                                (size_t)n * row, cudaMemcpyDeviceToDevice, b->stream);
                if (e) return cuda_err(err, e, "copying KV blocks");
            }
        }
    return FORGE_OK;
}

/* ---- the entry point -------------------------------------------------------------------- */

static const fcuda_api g_api = {
    FCUDA_ABI_VERSION,
    sizeof(fcuda_api),
    cuda_probe,
    cuda_create,
    cuda_forward,
    cuda_destroy,
    cuda_get_stats,
    cuda_scratch_bytes,
    op_measure_bandwidth,
    op_matmul,
    op_gemv,
    op_add_rmsnorm,
    op_swiglu,
    op_embed,
    op_qk_rope_store,
    op_attention,
    cuda_copy_kv,
    op_sample,
};

extern "C" __attribute__((visibility("default"))) const fcuda_api *forge_cuda_api(int abi_version) {
    return abi_version == FCUDA_ABI_VERSION ? &g_api : nullptr;
}
