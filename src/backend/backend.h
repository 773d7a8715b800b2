/* backend.h: the forward pass of a batch on one device, behind one small interface.
 * A backend owns its KV block pool and scratch; forge_context (context.c) validates each
 * batch before handing it over, so backends may trust the batch's indices. */
#ifndef FORGE_BACKEND_H
#define FORGE_BACKEND_H

#include "forge.h"
#include "model/model.h"

typedef struct backend_params {
    int n_kv_blocks;
    int max_batch_tokens;
    int max_logit_rows;
    forge_dtype kv_dtype; /* F32 or BF16 */
    int n_threads;
} backend_params;

typedef struct backend backend;
struct backend {
    const char *name;
    /* Runs the batch; writes batch->n_logits rows of vocab_size floats to logits. */
    forge_status (*forward)(backend *b, const forge_batch *batch, float *logits, forge_error *err);
    void (*destroy)(backend *b);
};

backend *backend_cpu_create(const forge_model *m, const backend_params *p, forge_error *err);

#endif
