/* context.c: forge_context, the public face of a backend: parameters, batch validation
 * (backends trust what passes here), and the logits buffer. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/log.h"
#include "sampling/sampler.h"

struct forge_context {
    forge_model *model;
    backend *be;
    backend_params p;
    float *logits;
    int n_logits;
    int32_t *ids;   /* max_logit_rows: the tokens of the last decode, when ids_valid */
    bool ids_valid; /* the backend chose them (forward_sample): rows asking for a token have
                       no logits on the host */
    forge_row_sample *rows; /* max_logit_rows: what the last decode asked of each row */
    sampler_ws *ws;         /* host draws (made on first use) */
};

typedef enum { DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA } device_kind;

/* The device params (or $FORGE_DEVICE) ask for; FORGE_E_INVALID naming the bad value. */
static forge_status device_choice(const forge_context_params *params, device_kind *out, forge_error *err) {
    const char *s = params->device, *from = "device";
    if (!s) {
        s = getenv("FORGE_DEVICE");
        from = "FORGE_DEVICE";
    }
    if (!s || !*s || !strcmp(s, "auto")) *out = DEVICE_AUTO;
    else if (!strcmp(s, "cpu")) *out = DEVICE_CPU;
    else if (!strcmp(s, "cuda")) *out = DEVICE_CUDA;
    else return err_set(err, FORGE_E_INVALID, "%s \"%s\" is not a device: use auto, cpu or cuda", from, s);
    return FORGE_OK;
}

/* gpu_memory_utilization from params, $FORGE_GPU_MEMORY_UTILIZATION, or 0.9 */
static forge_status gpu_fraction(const forge_context_params *params, double *out, forge_error *err) {
    double f = params->gpu_memory_utilization;
    const char *from = "gpu_memory_utilization", *env = getenv("FORGE_GPU_MEMORY_UTILIZATION");
    if (f == 0 && env && *env) {
        char *end;
        f = strtod(env, &end);
        from = "FORGE_GPU_MEMORY_UTILIZATION";
        if (*end) f = -1;
    }
    if (f == 0) f = 0.9;
    if (!(f > 0 && f <= 1)) return err_set(err, FORGE_E_RANGE, "%s must be in (0, 1]", from);
    *out = f;
    return FORGE_OK;
}

/* The CPU fallback of device auto is said once per process, not once per context. */
static void note_fallback(const char *why) {
    static int said;
    if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED)) return;
    log_info("device: CPU (CUDA not used: %s)", why);
}

forge_context_params forge_context_default_params(void) { return (forge_context_params){0}; }

forge_context *forge_context_create(forge_model *m, const forge_context_params *params, forge_error *err) {
    if (!m) {
        err_set(err, FORGE_E_INVALID, "no model");
        return NULL;
    }
    forge_context_params dflt = {.kv_dtype = FORGE_DTYPE_AUTO};
    if (!params) params = &dflt;
    device_kind dev;
    double gpu_frac;
    if (device_choice(params, &dev, err) || gpu_fraction(params, &gpu_frac, err)) return NULL;
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
    p.gpu_mem_fraction = gpu_frac;
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
    ctx->ids = malloc(sizeof(int32_t) * (size_t)p.max_logit_rows);
    ctx->rows = calloc((size_t)p.max_logit_rows, sizeof *ctx->rows);
    /* page-aligned: the CUDA backend pins it in place and copies logits straight into it */
    size_t logit_bytes = (size_t)p.max_logit_rows * (size_t)c->vocab_size * sizeof(float);
    ctx->logits = aligned_alloc(4096, (logit_bytes + 4095) & ~(size_t)4095);
    if (!ctx->logits || !ctx->ids || !ctx->rows) {
        forge_context_free(ctx);
        err_set(err, FORGE_E_NOMEM, "cannot allocate logits for %d rows", p.max_logit_rows);
        return NULL;
    }
    p.logits = ctx->logits;
    ctx->p = p;
    if (dev != DEVICE_CPU) {
        forge_error cerr;
        ctx->be = backend_cuda_create(m, &p, &cerr);
        if (!ctx->be && dev == DEVICE_CUDA) {
            if (err) *err = cerr;
            forge_context_free(ctx);
            return NULL;
        }
        if (!ctx->be) note_fallback(cerr.msg);
    }
    if (!ctx->be) ctx->be = backend_cpu_create(m, &p, err);
    if (!ctx->be) {
        forge_context_free(ctx);
        return NULL;
    }
    fcuda_stats cs;
    if (backend_cuda_get_stats(ctx->be, &cs))
        log_info("device: CUDA, %s: weights %.2f GB uploaded in %.2f s, KV cache %.2f GB, scratch %.2f GB",
                 cs.device, cs.weight_bytes / 1e9, cs.upload_seconds, cs.kv_bytes / 1e9, cs.scratch_bytes / 1e9);
    log_debug("context: %s backend, %d KV blocks (%.1f MB, %s), %d batch tokens, %d threads", ctx->be->name,
              p.n_kv_blocks, p.n_kv_blocks * (double)block_bytes / 1e6, p.kv_dtype == FORGE_DTYPE_F32 ? "f32" : "bf16",
              p.max_batch_tokens, p.n_threads);
    return ctx;
}

void forge_context_free(forge_context *ctx) {
    if (!ctx) return;
    if (ctx->be) ctx->be->destroy(ctx->be);
    sampler_ws_free(ctx->ws);
    free(ctx->logits), free(ctx->ids), free(ctx->rows);
    free(ctx);
}

int forge_context_n_kv_blocks(const forge_context *ctx) { return ctx ? ctx->p.n_kv_blocks : 0; }

const char *forge_context_device(const forge_context *ctx) { return ctx ? ctx->be->name : ""; }

const backend *context_backend(const forge_context *ctx) { return ctx->be; }

size_t forge_context_kv_budget(forge_model *m, const forge_context_params *params, forge_error *err) {
    if (!m) {
        err_set(err, FORGE_E_INVALID, "forge_context_kv_budget: the model is NULL");
        return 0;
    }
    forge_context_params dflt = {.kv_dtype = FORGE_DTYPE_AUTO};
    if (!params) params = &dflt;
    device_kind dev;
    double frac;
    if (device_choice(params, &dev, err) || gpu_fraction(params, &frac, err) || dev == DEVICE_CPU) return 0;
    fcuda_device_info info;
    forge_error perr;
    if (backend_cuda_probe(&info, &perr)) {
        if (dev == DEVICE_CUDA && err) *err = perr;
        return 0;
    }
    backend_params p = {.max_batch_tokens = params->max_batch_tokens > 0 ? params->max_batch_tokens : 512,
                        .max_logit_rows = params->max_logit_rows > 0 ? params->max_logit_rows : 64,
                        .kv_dtype = FORGE_DTYPE_BF16, .gpu_mem_fraction = frac};
    double allowed = frac * (double)info.total_bytes;
    double free_bytes = (double)info.free_bytes - 64.0 * 1024 * 1024;
    if (free_bytes < allowed) allowed = free_bytes;
    /* weights as uploaded (a little more than their bytes: norms, biases, alignment); a MoE's
     * weight_bytes counts only the top-k share of its experts, all of which are uploaded */
    const forge_model_info *in = &m->info;
    double all = (double)in->weight_bytes;
    if (in->n_experts) all += (double)in->expert_bytes * (1.0 - (double)in->n_experts_used / in->n_experts);
    double need = all * 1.01 + 16.0 * 1024 * 1024 + (double)backend_cuda_scratch_bytes(m, &p);
    return allowed > need ? (size_t)(allowed - need) : 0;
}

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

forge_status forge_context_decode_sample(forge_context *ctx, const forge_batch *b, const forge_row_sample *rows,
                                         forge_error *err) {
    if (!ctx || !b) return err_set(err, FORGE_E_INVALID, "forge_context_decode: %s is NULL", !ctx ? "the context" : "the batch");
    ctx->n_logits = 0;
    forge_status st = check_batch(ctx, b, err);
    if (st) return st;
    for (int i = 0; rows && i < b->n_logits; i++) {
        const forge_row_sample *r = &rows[i];
        if (r->kind < FORGE_ROW_LOGITS || r->kind > FORGE_ROW_DRAW ||
            (r->kind == FORGE_ROW_DRAW && !(r->temperature > 0 && r->min_p >= 0 && r->min_p <= 1 && r->u >= 0 && r->u < 1)))
            return err_set(err, FORGE_E_INVALID,
                           "forge_context_decode_sample: row %d: kind %d, temperature %g, min_p %g, u %g (a kind 0-2; "
                           "a draw needs temperature > 0, min_p in [0, 1], u in [0, 1))",
                           i, r->kind, r->temperature, r->min_p, r->u);
    }
    if (rows && !ctx->ws && !(ctx->ws = sampler_ws_create(ctx->model->info.vocab_size)))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    bool device = rows && ctx->be->forward_sample;
    if (device)
        st = ctx->be->forward_sample(ctx->be, b, rows, ctx->logits, ctx->ids, err);
    else
        st = ctx->be->forward(ctx->be, b, ctx->logits, err);
    if (st != FORGE_OK) return st;
    ctx->n_logits = b->n_logits;
    ctx->ids_valid = device;
    for (int i = 0; i < b->n_logits; i++) ctx->rows[i] = rows ? rows[i] : (forge_row_sample){0};
    return FORGE_OK;
}

forge_status forge_context_decode(forge_context *ctx, const forge_batch *b, forge_error *err) {
    return forge_context_decode_sample(ctx, b, NULL, err);
}

int32_t forge_context_token(const forge_context *ctx, int i) {
    if (!ctx || i < 0 || i >= ctx->n_logits) return -1;
    if (ctx->ids_valid) return ctx->ids[i];
    const float *x = ctx->logits + (size_t)i * ctx->model->info.vocab_size;
    const forge_row_sample *r = &ctx->rows[i];
    if (r->kind == FORGE_ROW_DRAW) /* the sampler's draw (ws exists: made with the rows) */
        return sampler_draw_plain(ctx->ws, x, r->temperature, r->min_p, r->u);
    return sampler_argmax(x, ctx->model->info.vocab_size);
}

forge_status forge_context_copy_kv(forge_context *ctx, int src, int dst, int n_tokens, forge_error *err) {
    if (!ctx) return err_set(err, FORGE_E_INVALID, "forge_context_copy_kv: the context is NULL");
    if (!ctx->be->copy_kv)
        return err_set(err, FORGE_E_UNSUPPORTED, "forge_context_copy_kv: the %s backend cannot copy KV blocks", ctx->be->name);
    int n = ctx->p.n_kv_blocks;
    if (src < 0 || src >= n || dst < 0 || dst >= n || src == dst)
        return err_set(err, FORGE_E_INVALID, "forge_context_copy_kv: blocks %d -> %d (the pool has %d; they must differ)", src,
                       dst, n);
    if (n_tokens <= 0 || n_tokens > FORGE_KV_BLOCK_TOKENS)
        return err_set(err, FORGE_E_INVALID, "forge_context_copy_kv: %d tokens (1 to %d)", n_tokens, FORGE_KV_BLOCK_TOKENS);
    return ctx->be->copy_kv(ctx->be, src, dst, n_tokens, err);
}

const float *forge_context_hidden(const forge_context *ctx, int i) {
    if (!ctx || i < 0 || i >= ctx->n_logits || !ctx->be->hidden) return NULL;
    return ctx->be->hidden(ctx->be, i);
}

const float *forge_context_logits(const forge_context *ctx, int i) {
    if (!ctx || i < 0 || i >= ctx->n_logits || (ctx->ids_valid && ctx->rows[i].kind != FORGE_ROW_LOGITS)) return NULL;
    return ctx->logits + (size_t)i * ctx->model->info.vocab_size;
}
