/* backend.h: the forward pass of a batch on one device, behind one small interface.
 * A backend owns its KV block pool and scratch; forge_context (context.c) validates each
 * batch before handing it over, so backends may trust the batch's indices. */
#ifndef FORGE_BACKEND_H
#define FORGE_BACKEND_H

#include "backend/cuda/cuda_abi.h"
#include "forge.h"
#include "model/model.h"

typedef struct backend_params {
    int n_kv_blocks;
    int max_batch_tokens;
    int max_logit_rows;
    forge_dtype kv_dtype; /* F32 or BF16 */
    int n_threads;
    double gpu_mem_fraction; /* CUDA: share of the device's memory to take (0, 1] */
    float *logits;           /* the context's logits buffer (max_logit_rows x vocab) */
} backend_params;

typedef struct backend backend;
struct backend {
    const char *name;
    /* Runs the batch; writes batch->n_logits rows of vocab_size floats to logits. */
    forge_status (*forward)(backend *b, const forge_batch *batch, float *logits, forge_error *err);
    /* Optional (NULL: the context chooses tokens from the logits on the host): forward, where
     * output rows with rows[i].kind != FORGE_ROW_LOGITS (rows NULL: none) need only their
     * token; ids[i] gets every row's token (the greedy one for LOGITS rows), logits only the
     * LOGITS rows. */
    forge_status (*forward_sample)(backend *b, const forge_batch *batch, const forge_row_sample *rows, float *logits,
                                   int32_t *ids, forge_error *err);
    /* The final-norm hidden state (hidden_size floats) of output row i of the last forward,
     * the vector the logits were computed from; NULL where the backend does not keep it. */
    const float *(*hidden)(const backend *b, int i);
    /* Copies the K/V of the first n tokens of block src to block dst (valid, distinct
     * blocks; 0 < n <= FORGE_KV_BLOCK_TOKENS), bit for bit. Every backend has it (the
     * engine's partial-block reuse); forge_context_copy_kv refuses where it is NULL. */
    forge_status (*copy_kv)(backend *b, int src, int dst, int n, forge_error *err);
    void (*destroy)(backend *b);
};

backend *backend_cpu_create(const forge_model *m, const backend_params *p, forge_error *err);

/* The CUDA backend through libforge-cuda.so, loaded on first use (cuda_loader.c). Fails with
 * a message naming why: library not found or not loadable, no device, weights not fitting. */
backend *backend_cuda_create(const forge_model *m, const backend_params *p, forge_error *err);
/* The loaded library's entry table, or NULL (err says why; the reason is kept). */
const fcuda_api *cuda_api_get(forge_error *err);
/* Path of the loaded libforge-cuda.so, or NULL. */
const char *cuda_lib_path(void);
/* Device count, name and memory; FORGE_E_UNSUPPORTED naming why when none can be used. */
forge_status backend_cuda_probe(fcuda_device_info *info, forge_error *err);
/* Device bytes the CUDA backend needs beside weights and KV for p's batch sizes (0: no library). */
size_t backend_cuda_scratch_bytes(const forge_model *m, const backend_params *p);
/* Statistics of a CUDA backend; false for other backends. */
bool backend_cuda_get_stats(const backend *be, fcuda_stats *out);

/* The backend behind a context (tools and tests). */
const backend *context_backend(const forge_context *ctx);

#endif
