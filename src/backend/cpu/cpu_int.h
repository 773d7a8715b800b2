/* cpu_int.h: the CPU backend's state, shared by its files (cpu_backend.c: the forward;
 * moe.c: mixture-of-experts MLPs). Not a public interface. */
#ifndef FORGE_BACKEND_CPU_INT_H
#define FORGE_BACKEND_CPU_INT_H

#include "backend/backend.h"
#include "base/threadpool.h"
#include "kernels/quant.h"

enum { MM_MAX_TASKS = 4 }; /* matmuls per dispatch of the dense path; MoE layers need more */
/* Below this many input rows (decode batches) a matmul is one run of panels per thread, each
 * panel's successor prefetched while it computes, and its rows are not split: converting or
 * dequantizing a panel streams the weights, which is most of the cost at these sizes. Was 32;
 * at 256, 64 sequences of SmolLM2-135M BF16 decode 8-13% faster (4 rounds interleaved, ctx
 * 192), the 1B and Q4_0 within noise. */
#ifndef GEMM_STREAM_ROWS
#define GEMM_STREAM_ROWS 256
#endif

typedef struct mm_task {
    const float *x;
    int ldx, m;
    const mm_weight *w;
    float *y;
    int ldy;
    int col_size, n_col, row_size, n_row; /* chunking */
} mm_task;

typedef enum { ROWS_ATTN_NORM, ROWS_QK_ROPE_STORE, ROWS_FFN_NORM, ROWS_SWIGLU } rows_op;

/* FORGE_PROFILE=1: time per phase of the forward, printed when the backend is freed */
enum { PH_NORM, PH_QKV, PH_ROPE, PH_ATTN, PH_O, PH_GATEUP, PH_SWIGLU, PH_DOWN, PH_HEAD, PH_ROUTER, PH_EXPERTS, PH_N };

/* Scratch of the MoE path, sized once for max_batch_tokens x top-k (token, expert) pairs. */
typedef struct moe_scratch {
    float *logits;        /* [T][n_experts] router logits */
    int32_t *pick;        /* [T][k] chosen experts of each token, in increasing expert id */
    float *weight;        /* [T][k] their routing weights */
    int32_t *slot;        /* [T][k] the pair's row in the grouped buffers */
    int32_t *slot_token;  /* [T*k] the token of each grouped row */
    int32_t *count, *first; /* [n_experts] rows routed to each expert, first row of its group */
    float *xe, *ye;       /* [T*k][hidden] grouped inputs, expert outputs */
    float *ge, *ue;       /* [T*k][moe_intermediate] */
    int n_pairs;
    bool ungrouped; /* FORGE_MOE_UNGROUPED=1: one token at a time (benchmark baseline) */
} moe_scratch;

typedef struct cpu_backend {
    backend base;
    const forge_model *m;
    const kernels *k;
    const quant_kernels *qk; /* GGUF quantized weights */
    tpool *pool;
    int n_threads;
    backend_params p;
    /* the paged KV cache: per layer, [block][kv_head][BLOCK_TOKENS][head_dim] */
    void **kpool, **vpool;
    size_t block_elems, pool_bytes;
    /* scratch, sized once for max_batch_tokens rows */
    float *x, *xn, *q, *kk, *vv, *att, *tmp, *gate, *up, *rcos, *rsin, *xf;
    float *rcos_local, *rsin_local; /* Gemma 3's local layers' angles, or NULL */
    float *pack;
    size_t pack_floats;
    /* the job in flight */
    const forge_batch *batch;
    int layer;
    rows_op op;
    int rows_per_chunk;
    int attn_heads_per_chunk;
    mm_task *tasks; /* [cap_tasks] */
    int n_tasks, cap_tasks;
    moe_scratch moe;
    bool profile;
    double phase_s[PH_N];
    uint64_t phase_t0;
} cpu_backend;


/* Ends a FORGE_PROFILE phase. */
void phase_end(cpu_backend *b, int ph);
/* Adds a job y[m][rows(w)] = x[m][cols(w)] . w^T to the next dispatch (at most b->cap_tasks). */
void mm_add(cpu_backend *b, const float *x, int ldx, int m, const mm_weight *w, float *y, int ldy);
/* Runs the queued jobs on the pool; each output element is reduced as the kernel set fixes. */
void mm_run(cpu_backend *b);
/* 64-byte aligned floats; clears *ok on failure. */
float *alloc_floats(size_t n, bool *ok);

/* The mixture-of-experts MLP of layer b->layer: b->xn [T][hidden] in, b->tmp [T][hidden] out. */
void moe_forward(cpu_backend *b);
/* Scratch for moe_forward (none when the model has no experts); false when out of memory. */
bool moe_alloc(cpu_backend *b);
void moe_free(cpu_backend *b);

#endif
