/* context.c: forge_context, the public face of a backend: parameters, batch validation
 * (backends trust what passes here), and the logits buffer. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/log.h"

struct forge_context {
    forge_model *model;
    backend *be;
    backend_params p;
    float *logits;
    int n_logits;
};

forge_context *forge_context_create(forge_model *m, const forge_context_params *params, forge_error *err) {
    if (!m) {
        err_set(err, FORGE_E_INVALID, "no model");
        return NULL;
    }
    forge_context_params dflt = {.kv_dtype = FORGE_DTYPE_AUTO};
    if (!params) params = &dflt;
    const model_config *c = &m->cfg;
    const forge_model_info *in = &m->info;
    backend_params p = {0};
    p.kv_dtype = params->kv_dtype;
    if (p.kv_dtype == FORGE_DTYPE_AUTO) p.kv_dtype = in->dtype == FORGE_DTYPE_F32 ? FORGE_DTYPE_F32 : FORGE_DTYPE_BF16;
    if (p.kv_dtype != FORGE_DTYPE_F32 && p.kv_dtype != FORGE_DTYPE_BF16) {
        err_set(err, FORGE_E_UNSUPPORTED, "KV cache dtype must be F32 or BF16");
        return NULL;
    }
    p.max_batch_tokens = params->max_batch_tokens > 0 ? params->max_batch_tokens : 512;
    p.max_logit_rows = params->max_logit_rows > 0 ? params->max_logit_rows : 64;
    p.n_threads = params->n_threads > 0 ? params->n_threads : in->n_threads;
    if (p.max_batch_tokens > 1 << 20 || p.max_logit_rows > 1 << 16 || p.n_threads > 1024) {
        err_set(err, FORGE_E_RANGE, "context parameters out of range");
        return NULL;
    }
    size_t block_bytes = (size_t)c->n_layers * 2 * (size_t)c->n_kv_heads * FORGE_KV_BLOCK_TOKENS * (size_t)c->head_dim *
                         (p.kv_dtype == FORGE_DTYPE_F32 ? 4 : 2);
    int min_blocks = (in->context_len + FORGE_KV_BLOCK_TOKENS - 1) / FORGE_KV_BLOCK_TOKENS;
    if (params->n_kv_blocks > 0) p.n_kv_blocks = params->n_kv_blocks;
    else if (params->kv_cache_mb > 0) p.n_kv_blocks = (int)(params->kv_cache_mb * 1024 * 1024 / block_bytes);
    else p.n_kv_blocks = min_blocks;
    if (p.n_kv_blocks <= 0) {
        err_set(err, FORGE_E_RANGE, "a KV cache of %zu MB holds no block of %zu bytes", params->kv_cache_mb, block_bytes);
        return NULL;
    }
    forge_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    ctx->model = m;
    ctx->p = p;
    ctx->logits = malloc((size_t)p.max_logit_rows * (size_t)c->vocab_size * sizeof(float));
    if (!ctx->logits) {
        free(ctx);
        err_set(err, FORGE_E_NOMEM, "cannot allocate logits for %d rows", p.max_logit_rows);
        return NULL;
    }
    ctx->be = backend_cpu_create(m, &p, err);
    if (!ctx->be) {
        free(ctx->logits);
        free(ctx);
        return NULL;
    }
    log_debug("context: %s backend, %d KV blocks (%.1f MB, %s), %d batch tokens, %d threads", ctx->be->name,
              p.n_kv_blocks, p.n_kv_blocks * (double)block_bytes / 1e6, p.kv_dtype == FORGE_DTYPE_F32 ? "f32" : "bf16",
              p.max_batch_tokens, p.n_threads);
    return ctx;
}

void forge_context_free(forge_context *ctx) {
    if (!ctx) return;
    if (ctx->be) ctx->be->destroy(ctx->be);
    free(ctx->logits);
    free(ctx);
}

int forge_context_n_kv_blocks(const forge_context *ctx) { return ctx->p.n_kv_blocks; }

static forge_status check_batch(const forge_context *ctx, const forge_batch *b, forge_error *err) {
    const forge_model_info *in = &ctx->model->info;
    if (!b || b->n_tokens <= 0) return err_set(err, FORGE_E_INVALID, "empty batch");
    if (b->n_tokens > ctx->p.max_batch_tokens)
        return err_set(err, FORGE_E_RANGE, "batch of %d tokens exceeds the context's %d", b->n_tokens,
                       ctx->p.max_batch_tokens);
    if (b->n_logits < 0 || b->n_logits > ctx->p.max_logit_rows)
        return err_set(err, FORGE_E_RANGE, "%d logit rows exceed the context's %d", b->n_logits, ctx->p.max_logit_rows);
    if (!b->tokens || !b->positions || !b->seq || b->n_seqs <= 0 || !b->block_tables || !b->n_blocks ||
        (b->n_logits > 0 && !b->logit_rows))
        return err_set(err, FORGE_E_INVALID, "batch arrays missing");
    for (int s = 0; s < b->n_seqs; s++)
        if (b->n_blocks[s] < 0 || (b->n_blocks[s] > 0 && !b->block_tables[s]))
            return err_set(err, FORGE_E_INVALID, "sequence %d has no block table", s);
    for (int i = 0; i < b->n_tokens; i++) {
        int tok = b->tokens[i], pos = b->positions[i], s = b->seq[i];
        if (tok < 0 || tok >= in->vocab_size)
            return err_set(err, FORGE_E_INVALID, "row %d: token id %d outside the vocabulary (0..%d)", i, tok,
                           in->vocab_size - 1);
        if (pos < 0 || pos >= in->context_len)
            return err_set(err, FORGE_E_RANGE, "row %d: position %d outside the context (0..%d)", i, pos,
                           in->context_len - 1);
        if (s < 0 || s >= b->n_seqs) return err_set(err, FORGE_E_INVALID, "row %d: sequence %d out of range", i, s);
        int need = pos / FORGE_KV_BLOCK_TOKENS + 1;
        if (b->n_blocks[s] < need)
            return err_set(err, FORGE_E_INVALID, "row %d: sequence %d's block table has %d blocks, position %d needs %d",
                           i, s, b->n_blocks[s], pos, need);
    }
    for (int s = 0; s < b->n_seqs; s++)
        for (int j = 0; j < b->n_blocks[s]; j++)
            if (b->block_tables[s][j] < 0 || b->block_tables[s][j] >= ctx->p.n_kv_blocks)
                return err_set(err, FORGE_E_INVALID, "sequence %d: block %d is %d, outside the pool (0..%d)", s, j,
                               b->block_tables[s][j], ctx->p.n_kv_blocks - 1);
    for (int r = 0; r < b->n_logits; r++)
        if (b->logit_rows[r] < 0 || b->logit_rows[r] >= b->n_tokens)
            return err_set(err, FORGE_E_INVALID, "logit row %d names batch row %d of %d", r, b->logit_rows[r], b->n_tokens);
    return FORGE_OK;
}

forge_status forge_context_decode(forge_context *ctx, const forge_batch *b, forge_error *err) {
    ctx->n_logits = 0;
    forge_status st = check_batch(ctx, b, err);
    if (st) return st;
    st = ctx->be->forward(ctx->be, b, ctx->logits, err);
    if (st == FORGE_OK) ctx->n_logits = b->n_logits;
    return st;
}

const float *forge_context_logits(const forge_context *ctx, int i) {
    if (i < 0 || i >= ctx->n_logits) return NULL;
    return ctx->logits + (size_t)i * ctx->model->info.vocab_size;
}
