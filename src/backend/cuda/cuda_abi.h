/* cuda_abi.h: the C ABI between libforge (backend/cuda_loader.c) and libforge-cuda.so.
 *
 * libforge never links CUDA: it dlopens libforge-cuda.so and calls forge_cuda_api(), which
 * returns a table of functions. Everything crossing the boundary is plain C data described
 * here (plus forge_batch and forge_error from forge.h), so the CUDA library does not depend
 * on libforge's internal structs. Bump FCUDA_ABI_VERSION whenever anything here changes. */
#ifndef FORGE_CUDA_ABI_H
#define FORGE_CUDA_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "forge.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FCUDA_ABI_VERSION 7
#define FCUDA_ENTRY "forge_cuda_api"
#define FCUDA_MAX_HEAD_DIM 256
#define FCUDA_MAX_GQA 32

/* ggml's quantized weight types the backend multiplies as stored (fcuda_weight.qtype; the
 * block layouts of src/kernels/quant.h, cols a multiple of the block) */
enum {
    FCUDA_Q4_0 = 2, FCUDA_Q4_1 = 3, FCUDA_Q5_0 = 6, FCUDA_Q5_1 = 7, FCUDA_Q8_0 = 8,
    FCUDA_Q4_K = 12, FCUDA_Q5_K = 13, FCUDA_Q6_K = 14,
};

/* What the forward does with an output row (forge_row_sample, field for field) */
enum { FCUDA_ROW_LOGITS = 0, FCUDA_ROW_GREEDY = 1, FCUDA_ROW_DRAW = 2 };
typedef struct fcuda_row_sample {
    int32_t kind;
    float temperature, min_p;
    double u;
} fcuda_row_sample;

/* A weight matrix in host memory (the mmap), rows x cols row-major, as stored. */
typedef struct fcuda_weight {
    const void *data;
    int dtype; /* forge_dtype: F32, F16 or BF16 (ignored when qtype is set) */
    int rows, cols;
    const float *bias; /* rows floats or NULL */
    int qtype;         /* 0, or an FCUDA_Q* type: rows of ggml blocks (since ABI 6) */
} fcuda_weight;

typedef struct fcuda_layer {
    const float *attn_norm, *ffn_norm; /* [hidden] */
    const float *q_norm, *k_norm;      /* [head_dim] or NULL */
    fcuda_weight wq, wk, wv, wo, wgate, wup, wdown;
    int sliding; /* this layer uses the sliding window */
} fcuda_layer;

typedef struct fcuda_model {
    int vocab, hidden, inter, n_layers, n_heads, n_kv_heads, head_dim;
    int sliding_window; /* 0: none */
    float eps;
    const double *rope_inv_freq; /* [head_dim / 2] */
    fcuda_weight embed, lm_head; /* lm_head.data == embed.data when tied */
    const float *final_norm;
    const fcuda_layer *layers;
} fcuda_model;

typedef struct fcuda_params {
    int n_kv_blocks, max_batch_tokens, max_logit_rows;
    int kv_dtype;        /* F32 or BF16 */
    double mem_fraction; /* share of the device's memory this context may take (0, 1] */
    int gemv_max_rows;   /* batches of at most this many rows use the GEMV kernel; < 0: default */
    int graph_max_rows;  /* CUDA graphs for batches of at most this many rows; 0: off; < 0: default */
    float *host_logits;  /* the caller's logits buffer (max_logit_rows x vocab), pinned in place if possible */
} fcuda_params;

typedef struct fcuda_device_info {
    int count;
    char name[256];
    int cc_major, cc_minor, n_sm;
    size_t total_bytes, free_bytes;
    int driver_version, runtime_version;
} fcuda_device_info;

typedef struct fcuda_stats {
    char device[256]; /* the GPU's name */
    size_t weight_bytes, kv_bytes, scratch_bytes;
    double upload_seconds;
    int gemv_max_rows, graph_max_rows, attn_splits;
    int n_graphs;              /* captured so far */
    double capture_seconds;    /* spent capturing and instantiating them */
    long long graph_forwards, eager_forwards;
    int logits_pinned;         /* the logits buffer is page-locked (direct copies) */
    long long logit_rows_copied; /* rows of logits copied to the host (since ABI 6) */
    long long id_rows_copied;    /* rows whose token alone came back (greedy or drawn) */
    char note[256];            /* why graphs were turned off, if they were */
} fcuda_stats;

typedef struct fcuda_backend fcuda_backend;

/* Paged-cache description for the op test: the cache arrays are host copies of one layer's
 * pool [n_blocks][n_kv_heads][FORGE_KV_BLOCK_TOKENS][head_dim] in kv_dtype. */
typedef struct fcuda_op_cache {
    int n_blocks, n_kv_heads, head_dim, kv_dtype;
    void *k, *v;                /* host, n_blocks * block elements each */
    const int32_t *tables;      /* host, flat block tables */
    int n_table;                /* entries in tables */
    const int32_t *table_off;   /* [n_rows]: row i's sequence table starts at tables[table_off[i]]; -1: padding */
    const int32_t *positions;   /* [n_rows] */
} fcuda_op_cache;

typedef struct fcuda_api {
    int abi_version;
    size_t api_size; /* sizeof(fcuda_api) as built */
    /* Device count, name and memory; FORGE_E_UNSUPPORTED naming why when there is none. */
    forge_status (*probe)(fcuda_device_info *info, forge_error *err);
    /* Uploads the weights and allocates the KV pool and scratch; the host model may be
     * released afterwards. A clear FORGE_E_NOMEM when it does not fit. */
    fcuda_backend *(*create)(const fcuda_model *m, const fcuda_params *p, forge_error *err);
    /* The batched forward (the batch is already validated); n_logits rows to logits, except
     * the rows whose rows[i].kind is not LOGITS (rows NULL: all are), which stay on the
     * device; ids (NULL: not wanted) gets every row's token (forge_context_token's rule),
     * chosen on the device (since ABI 6). */
    forge_status (*forward)(fcuda_backend *b, const forge_batch *batch, const fcuda_row_sample *rows, float *logits,
                            int32_t *ids, forge_error *err);
    void (*destroy)(fcuda_backend *b);
    void (*get_stats)(const fcuda_backend *b, fcuda_stats *out);
    /* Device bytes a backend needs beside weights and KV (scratch, workspaces). */
    size_t (*scratch_bytes)(const fcuda_model *m, const fcuda_params *p);
    /* Device read bandwidth in bytes/s over a buffer of `bytes` (the decode roofline). */
    double (*measure_bandwidth)(size_t bytes, forge_error *err);

    /* ---- single ops on host arrays, for the cross-backend op test (tests/cuda) ---- */
    /* y[M][N] = x[M][K] . w^T (w's bias ignored); path 1: GEMV kernel, 2: cuBLAS (x rounded
     * to w's dtype when 16-bit), 0: as the forward would choose. */
    forge_status (*op_matmul)(const float *x, int M, const fcuda_weight *w, float *y, int path, forge_error *err);
    /* The GEMV kernel with its fused neighbours (mode 0 plain, 1 RMSNorm prologue over rows
     * xrows of x (x_rows rows in all; xrows NULL: row m), 2 residual epilogue y += x.W^T +
     * bias, 3 SwiGLU prologue (x rows are [gate | up], K = w->cols each) + residual epilogue).
     * y [M][N] is read (modes 2, 3) and written. Pointers other than x, w, y may be NULL. */
    forge_status (*op_gemv)(int mode, const float *x, int M, const fcuda_weight *w, const int32_t *xrows, int x_rows,
                            const float *norm_w, float eps, const float *bg, const float *bu, const float *bias,
                            float *y, forge_error *err);
    /* x[r] += add[r] + add_bias (when add is not NULL); out[r] = rmsnorm(x[r]) * w. */
    forge_status (*op_add_rmsnorm)(float *x, const float *add, const float *add_bias, const float *w, int rows,
                                   int n, float eps, float *out, forge_error *err);
    /* out[r][i] = silu(gu[r][i] + bg[i]) * (gu[r][I + i] + bu[i]); biases may be NULL. */
    forge_status (*op_swiglu)(const float *gu, const float *bg, const float *bu, int rows, int inter, float *out,
                              forge_error *err);
    /* x[r] = embed[tokens[r]] as f32. */
    forge_status (*op_embed)(const fcuda_weight *embed, const int32_t *tokens, int rows, float *x, forge_error *err);
    /* qkv[r] = [q | k | v] with biases added, q/k per-head RMSNorm (when norms are given),
     * RoPE at positions; k, v written to the cache; q written back in place. */
    forge_status (*op_qk_rope_store)(float *qkv, int rows, int n_heads, const float *bq, const float *bk,
                                     const float *bv, const float *q_norm, const float *k_norm, float eps,
                                     const double *inv_freq, fcuda_op_cache *cache, forge_error *err);
    /* out[r] = causal attention of q[r] (ldq floats a row) over the cache, keys
     * [max(0, pos - window + 1), pos] (window 0: all). */
    forge_status (*op_attention)(const float *q, int ldq, int rows, int n_heads, int window,
                                 const fcuda_op_cache *cache, float *out, forge_error *err);

    /* ---- since ABI 5 ---- */
    /* K/V of the first n tokens of block src copied into block dst, every layer and KV head,
     * ordered on the backend's stream before the next forward (arguments already checked). */
    forge_status (*copy_kv)(fcuda_backend *b, int src, int dst, int n, forge_error *err);

    /* ---- since ABI 6 ---- */
    /* ids[r] = the token of row r of x (rows x n) as the forward chooses it for rs[r] (rs
     * NULL: greedy for all), by the forward's sampling kernel. */
    forge_status (*op_sample)(const float *x, int rows, int n, const fcuda_row_sample *rs, int32_t *ids,
                              forge_error *err);
} fcuda_api;

/* The entry point libforge-cuda.so exports: NULL when abi_version does not match. */
typedef const fcuda_api *(*fcuda_entry_fn)(int abi_version);

#ifdef __cplusplus
}
#endif

#endif
