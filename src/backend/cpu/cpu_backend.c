/* cpu_backend.c: the batched forward pass on the CPU.
 *
 * One call runs any mix of prompt chunks and decode tokens from many sequences. Work is
 * split across the thread pool by outputs only (matmul columns and row blocks, attention
 * (token, KV head) pairs, rows of element-wise ops), never by the reduction dimension, so
 * every value is computed the same way whatever the batch or the thread count. Each
 * layer's K/V for the batch are written to the paged cache before attention reads them
 * back, so a chunked prompt sees exactly the values an unchunked one does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend/cpu/cpu_int.h"
#include "base/log.h"
#include "base/threadpool.h"
#include "base/timing.h"
#include "kernels/quant.h"

static const char *g_phase_names[PH_N] = {"norms", "qkv", "qk-norm/rope/kv-write", "attention", "o_proj",
                                          "gate/up", "swiglu", "down", "lm_head", "moe router", "moe experts"};

void phase_end(cpu_backend *b, int ph) {
    if (!b->profile) return;
    uint64_t t = time_ns();
    b->phase_s[ph] += (double)(t - b->phase_t0) * 1e-9;
    b->phase_t0 = t;
}

/* ---- matmul dispatch ------------------------------------------------------------------ */

static void mm_chunk(void *ctx, int chunk, int thread) {
    cpu_backend *b = ctx;
    int t = 0;
    while (chunk >= b->tasks[t].n_col * b->tasks[t].n_row) {
        chunk -= b->tasks[t].n_col * b->tasks[t].n_row;
        t++;
    }
    const mm_task *mt = &b->tasks[t];
    int ci = chunk % mt->n_col, ri = chunk / mt->n_col;
    int j0 = ci * mt->col_size, j1 = j0 + mt->col_size;
    if (j1 > mt->w->rows) j1 = mt->w->rows;
    int i0 = ri * mt->row_size, i1 = i0 + mt->row_size;
    if (i1 > mt->m) i1 = mt->m;
    if (quant_uses_r16(b->qk, mt->w))
        b->qk->matmul_r16(mt->x + (size_t)i0 * mt->ldx, mt->ldx, i1 - i0, mt->w, j0, j1, mt->y + (size_t)i0 * mt->ldy,
                          mt->ldy, b->pack + (size_t)thread * b->pack_floats);
    else if (mt->w->qtype && quant_uses_f32(b->k, b->qk, mt->w->qtype))
        quant_matmul_f32(b->k, b->qk, mt->x + (size_t)i0 * mt->ldx, mt->ldx, i1 - i0, mt->w, j0, j1,
                         mt->y + (size_t)i0 * mt->ldy, mt->ldy, b->pack + (size_t)thread * b->pack_floats);
    else if (mt->w->qtype)
        quant_matmul(b->qk, mt->x + (size_t)i0 * mt->ldx, mt->ldx, i1 - i0, mt->w, j0, j1,
                     mt->y + (size_t)i0 * mt->ldy, mt->ldy, b->pack + (size_t)thread * b->pack_floats);
    else
        b->k->matmul(mt->x + (size_t)i0 * mt->ldx, mt->ldx, i1 - i0, mt->w, j0, j1, mt->y + (size_t)i0 * mt->ldy,
                     mt->ldy, b->pack + (size_t)thread * b->pack_floats);
}

/* Adds a job y[m][rows(w)] = x[m][cols(w)] . w^T to the next dispatch. */
void mm_add(cpu_backend *b, const float *x, int ldx, int m, const mm_weight *w, float *y, int ldy) {
    FORGE_ASSERT(b->n_tasks < b->cap_tasks);
    mm_task *t = &b->tasks[b->n_tasks++];
    *t = (mm_task){.x = x, .ldx = ldx, .m = m, .w = w, .y = y, .ldy = ldy};
    int N = w->rows;
    if (m < 4) {
        /* memory bound: one long run of weight rows per thread streams best (measured: finer
         * chunks for balance cost more in restarted prefetch streams than they gain) */
        int cs = (N + b->n_threads - 1) / b->n_threads;
        cs = cs < 16 ? 16 : (cs + 3) & ~3;
        if (quant_uses_r16(b->qk, w)) cs = (cs + QR16 - 1) & ~(QR16 - 1); /* whole 16-row groups */
        t->col_size = cs;
        t->row_size = m;
        t->n_row = 1;
    } else {
        /* one packed panel per chunk, split rows too when there are few panels; with few rows
         * the weights' streaming still matters: one run of panels per thread, each panel's
         * successor prefetched while it computes */
        t->col_size = mm_panel_rows(w->cols);
        if (quant_uses_r16(b->qk, w)) {
            /* each chunk quantizes its activation rows: two long runs of 16-row groups per
             * thread (the rows' records stay in L2 while the groups stream past) */
            int per = (N + 2 * b->n_threads - 1) / (2 * b->n_threads);
            t->col_size = (per + QR16 - 1) & ~(QR16 - 1);
            t->row_size = m;
            t->n_col = (N + t->col_size - 1) / t->col_size;
            t->n_row = 1;
            return;
        }
        if (m < GEMM_STREAM_ROWS) {
            int per = (N + b->n_threads - 1) / b->n_threads;
            t->col_size = (per + t->col_size - 1) / t->col_size * t->col_size;
        }
        int n_col = (N + t->col_size - 1) / t->col_size;
        int want = 4 * b->n_threads;
        int n_row = n_col >= want ? 1 : (want + n_col - 1) / n_col;
        int max_row = (m + 15) / 16;
        if (n_row > max_row) n_row = max_row;
        if (m < GEMM_STREAM_ROWS && n_col >= b->n_threads) n_row = 1; /* a panel converted once a step */
        if (n_row < 1) n_row = 1;
        t->row_size = (m + n_row - 1) / n_row;
    }
    t->n_col = (N + t->col_size - 1) / t->col_size;
    t->n_row = (m + t->row_size - 1) / t->row_size;
}

void mm_run(cpu_backend *b) {
    int total = 0;
    for (int i = 0; i < b->n_tasks; i++) total += b->tasks[i].n_col * b->tasks[i].n_row;
    tpool_run(b->pool, total, mm_chunk, b);
    b->n_tasks = 0;
}

/* ---- row-wise ops --------------------------------------------------------------------- */

static void store_kv(cpu_backend *b, int t) {
    const model_config *c = &b->m->cfg;
    const forge_batch *bt = b->batch;
    int hd = c->head_dim, pos = bt->positions[t];
    const int32_t *table = bt->block_tables[bt->seq[t]];
    size_t slot = (size_t)table[pos / FORGE_KV_BLOCK_TOKENS] * b->block_elems + (size_t)(pos % FORGE_KV_BLOCK_TOKENS) * hd;
    size_t esz = dtype_size(b->p.kv_dtype);
    for (int g = 0; g < c->n_kv_heads; g++) {
        size_t off = (slot + (size_t)g * FORGE_KV_BLOCK_TOKENS * hd) * esz;
        b->k->from_f32((char *)b->kpool[b->layer] + off, b->p.kv_dtype, b->kk + (size_t)t * c->n_kv_heads * hd + (size_t)g * hd, hd);
        b->k->from_f32((char *)b->vpool[b->layer] + off, b->p.kv_dtype, b->vv + (size_t)t * c->n_kv_heads * hd + (size_t)g * hd, hd);
    }
}

static void rows_row(cpu_backend *b, int t) {
    const model_config *c = &b->m->cfg;
    const layer_weights *L = &b->m->layers[b->layer];
    int H = c->hidden_size, hd = c->head_dim;
    float *x = b->x + (size_t)t * H, *xn = b->xn + (size_t)t * H, *tmp = b->tmp + (size_t)t * H;
    switch (b->op) {
    case ROWS_ATTN_NORM:
        if (b->layer > 0) {
            const float *pn = b->m->layers[b->layer - 1].post_ffn_norm;
            if (pn) b->k->rmsnorm(tmp, tmp, pn, H, c->rms_norm_eps); /* Gemma: the MLP output's norm */
            for (int i = 0; i < H; i++) x[i] += tmp[i];
        }
        b->k->rmsnorm(xn, x, L->attn_norm, H, c->rms_norm_eps);
        break;
    case ROWS_FFN_NORM:
        if (L->post_attn_norm) b->k->rmsnorm(tmp, tmp, L->post_attn_norm, H, c->rms_norm_eps);
        for (int i = 0; i < H; i++) x[i] += tmp[i];
        b->k->rmsnorm(xn, x, L->ffn_norm, H, c->rms_norm_eps);
        break;
    case ROWS_QK_ROPE_STORE: {
        float *q = b->q + (size_t)t * c->n_heads * hd, *k = b->kk + (size_t)t * c->n_kv_heads * hd;
        if (L->q_norm) {
            for (int h = 0; h < c->n_heads; h++) b->k->rmsnorm(q + h * hd, q + h * hd, L->q_norm, hd, c->rms_norm_eps);
            for (int h = 0; h < c->n_kv_heads; h++) b->k->rmsnorm(k + h * hd, k + h * hd, L->k_norm, hd, c->rms_norm_eps);
        }
        bool local = L->sliding && b->rcos_local;
        const float *cs = (local ? b->rcos_local : b->rcos) + (size_t)t * (hd / 2);
        const float *sn = (local ? b->rsin_local : b->rsin) + (size_t)t * (hd / 2);
        if (L->rope) {
            rope_apply_partial(q, c->n_heads, hd, c->rope_dim, cs, sn);
            rope_apply_partial(k, c->n_kv_heads, hd, c->rope_dim, cs, sn);
        }
        store_kv(b, t);
        break;
    }
    case ROWS_SWIGLU: {
        int I = c->intermediate_size;
        if (c->act == ACT_GELU_TANH)
            gelu_tanh_mul(b->gate + (size_t)t * I, b->gate + (size_t)t * I, b->up + (size_t)t * I, I);
        else
            b->k->swiglu(b->gate + (size_t)t * I, b->gate + (size_t)t * I, b->up + (size_t)t * I, I);
        break;
    }
    }
}

static void rows_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    cpu_backend *b = ctx;
    int t0 = chunk * b->rows_per_chunk, t1 = t0 + b->rows_per_chunk;
    if (t1 > b->batch->n_tokens) t1 = b->batch->n_tokens;
    for (int t = t0; t < t1; t++) rows_row(b, t);
}

static void rows_run(cpu_backend *b, rows_op op) {
    int T = b->batch->n_tokens;
    b->op = op;
    int per = T / (4 * b->n_threads);
    b->rows_per_chunk = per < 1 ? 1 : per;
    if (T < 4) b->rows_per_chunk = T; /* not worth waking the workers */
    tpool_run(b->pool, (T + b->rows_per_chunk - 1) / b->rows_per_chunk, rows_chunk, b);
}

/* ---- attention ------------------------------------------------------------------------ */

static void attn_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    cpu_backend *b = ctx;
    const model_config *c = &b->m->cfg;
    const forge_batch *bt = b->batch;
    /* a chunk is one query's heads that share a KV head, or a single head when there are too
     * few tokens to keep the threads busy (each head's arithmetic is the same either way) */
    int hpc = b->attn_heads_per_chunk, per_token = c->n_heads / hpc;
    int t = chunk / per_token, h0 = (chunk % per_token) * hpc;
    int hd = c->head_dim, rep = c->n_heads / c->n_kv_heads, g = h0 / rep, pos = bt->positions[t];
    int first = 0;
    if (b->m->layers[b->layer].sliding && c->sliding_window > 0 && pos - c->sliding_window + 1 > 0)
        first = pos - c->sliding_window + 1; /* HF: key visible iff q_pos - k_pos < window */
    attn_args a = {
        .q = b->q + (size_t)t * c->n_heads * hd + (size_t)h0 * hd,
        .n_rep = hpc,
        .head_dim = hd,
        .k_cache = b->kpool[b->layer],
        .v_cache = b->vpool[b->layer],
        .kv_dtype = b->p.kv_dtype,
        .n_kv_heads = c->n_kv_heads,
        .kv_head = g,
        .blocks = bt->block_tables[bt->seq[t]],
        .first = first,
        .last = pos,
        .scale = (float)c->attn_scale,
        .softcap = c->attn_softcap,
        .out = b->att + (size_t)t * c->n_heads * hd + (size_t)h0 * hd,
    };
    b->k->attention(&a);
}

/* ---- the forward ---------------------------------------------------------------------- */

static forge_status cpu_forward(backend *be, const forge_batch *bt, float *logits, forge_error *err) {
    (void)err;
    cpu_backend *b = (cpu_backend *)be;
    const forge_model *m = b->m;
    const model_config *c = &m->cfg;
    const int T = bt->n_tokens, H = c->hidden_size, hd = c->head_dim, I = c->intermediate_size;
    const int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    b->batch = bt;

    size_t erow = weight_row_bytes(&m->embed);
    for (int t = 0; t < T; t++)
        if (m->embed.qtype)
            quant_dequant_row(m->embed.qtype, (const char *)m->embed.data + (size_t)bt->tokens[t] * erow,
                              b->x + (size_t)t * H, H);
        else
            b->k->to_f32(b->x + (size_t)t * H, (const char *)m->embed.data + (size_t)bt->tokens[t] * erow, m->embed.dtype, H);
    if (c->embed_scale > 0)
        for (size_t i = 0; i < (size_t)T * H; i++) b->x[i] *= c->embed_scale;
    for (int t = 0; t < T; t++) {
        /* longrope: a token whose sequence is longer than the original context (position + 1 >
         * original_max_position_embeddings) takes the long factors, as transformers does when
         * it generates that token with a KV cache; chosen per token, so batch and chunk
         * invariant. cos/sin scaled by the attention factor (1 but for longrope), in f32 as HF */
        int pos = bt->positions[t];
        const double *inv = m->rope_long_inv_freq && pos + 1 > c->rope_original_max_pos ? m->rope_long_inv_freq
                                                                                         : m->rope_inv_freq;
        float af = (float)c->rope_attn_factor;
        for (int i = 0; i < c->rope_dim / 2; i++) {
            double ang = (double)pos * inv[i];
            b->rcos[(size_t)t * (hd / 2) + i] = af == 1.0f ? (float)cos(ang) : (float)cos(ang) * af;
            b->rsin[(size_t)t * (hd / 2) + i] = af == 1.0f ? (float)sin(ang) : (float)sin(ang) * af;
            if (b->rcos_local) {
                ang = (double)bt->positions[t] * m->rope_local_inv_freq[i];
                b->rcos_local[(size_t)t * (hd / 2) + i] = (float)cos(ang);
                b->rsin_local[(size_t)t * (hd / 2) + i] = (float)sin(ang);
            }
        }
    }

    if (b->profile) b->phase_t0 = time_ns();
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *L = &m->layers[l];
        b->layer = l;
        rows_run(b, ROWS_ATTN_NORM);
        phase_end(b, PH_NORM);
        mm_add(b, b->xn, H, T, &L->wq, b->q, qd);
        mm_add(b, b->xn, H, T, &L->wk, b->kk, kvd);
        mm_add(b, b->xn, H, T, &L->wv, b->vv, kvd);
        mm_run(b);
        phase_end(b, PH_QKV);
        rows_run(b, ROWS_QK_ROPE_STORE);
        phase_end(b, PH_ROPE);
        /* a whole KV group per chunk reads its keys once for all its heads: measured faster
         * even when the chunks are few (SmolLM2 decode, 3 groups on 2 threads: 41 us a layer at
         * context 1024 against 53 us with single heads) */
        b->attn_heads_per_chunk = T * c->n_kv_heads >= b->n_threads ? c->n_heads / c->n_kv_heads : 1;
        tpool_run(b->pool, T * c->n_heads / b->attn_heads_per_chunk, attn_chunk, b);
        phase_end(b, PH_ATTN);
        mm_add(b, b->att, qd, T, &L->wo, b->tmp, H);
        mm_run(b);
        phase_end(b, PH_O);
        rows_run(b, ROWS_FFN_NORM);
        phase_end(b, PH_NORM);
        if (L->moe) {
            moe_forward(b);
            continue;
        }
        mm_add(b, b->xn, H, T, &L->wgate, b->gate, I);
        mm_add(b, b->xn, H, T, &L->wup, b->up, I);
        mm_run(b);
        phase_end(b, PH_GATEUP);
        rows_run(b, ROWS_SWIGLU);
        phase_end(b, PH_SWIGLU);
        mm_add(b, b->gate, I, T, &L->wdown, b->tmp, H);
        mm_run(b);
        phase_end(b, PH_DOWN);
    }
    int R = bt->n_logits;
    if (R == 0) return FORGE_OK;
    for (int r = 0; r < R; r++) {
        int t = bt->logit_rows[r];
        float *x = b->x + (size_t)t * H, *tmp = b->tmp + (size_t)t * H, *xf = b->xf + (size_t)r * H;
        const float *pn = m->layers[c->n_layers - 1].post_ffn_norm;
        if (pn) b->k->rmsnorm(tmp, tmp, pn, H, c->rms_norm_eps);
        for (int i = 0; i < H; i++) xf[i] = x[i] + tmp[i];
        b->k->rmsnorm(xf, xf, m->final_norm, H, c->rms_norm_eps);
    }
    mm_add(b, b->xf, H, R, &m->lm_head, logits, c->vocab_size);
    mm_run(b);
    if (c->final_softcap > 0) /* Gemma: tanh(logits / cap) * cap */
        for (size_t i = 0; i < (size_t)R * c->vocab_size; i++)
            logits[i] = tanhf(logits[i] / c->final_softcap) * c->final_softcap;
    phase_end(b, PH_HEAD);
    return FORGE_OK;
}

/* b->xf holds the final-norm hidden states of the last forward's logit rows */
static const float *cpu_hidden(const backend *be, int i) {
    const cpu_backend *b = (const cpu_backend *)be;
    return b->xf + (size_t)i * (size_t)b->m->cfg.hidden_size;
}

/* A KV pool: anonymous memory, whose untouched pages cost nothing until a block is used.
 * No MADV_HUGEPAGE: with THP's defrag on "madvise" (Debian's default) each first touch of
 * a 2 MB page compacts memory in the fault, which cost ~2 ms per page here and made the
 * KV writes of a new sequence a tenth of its decode time. */
static void *kv_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void kv_release(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

static void cpu_destroy(backend *be) {
    cpu_backend *b = (cpu_backend *)be;
    if (!b) return;
    if (b->profile) {
        double total = 0;
        for (int i = 0; i < PH_N; i++) total += b->phase_s[i];
        for (int i = 0; i < PH_N; i++)
            log_info("profile: %-22s %8.3f s %5.1f%%", g_phase_names[i], b->phase_s[i], 100 * b->phase_s[i] / (total > 0 ? total : 1));
    }
    tpool_free(b->pool);
    if (b->kpool)
        for (int l = 0; l < b->m->cfg.n_layers; l++) {
            kv_release(b->kpool[l], b->pool_bytes);
            kv_release(b->vpool[l], b->pool_bytes);
        }
    free(b->kpool);
    free(b->vpool);
    free(b->tasks);
    moe_free(b);
    float *bufs[] = {b->x, b->xn, b->q, b->kk, b->vv, b->att, b->tmp, b->gate, b->up, b->rcos, b->rsin, b->xf, b->pack, b->rcos_local, b->rsin_local};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(b);
}

/* The first n tokens' K/V of block src into block dst, every layer and KV head (the
 * layout [block][kv_head][BLOCK_TOKENS][head_dim]): the same bits, no conversion. */
static forge_status cpu_copy_kv(backend *be, int src, int dst, int n, forge_error *err) {
    (void)err;
    cpu_backend *b = (cpu_backend *)be;
    const model_config *c = &b->m->cfg;
    size_t esz = dtype_size(b->p.kv_dtype), row = (size_t)c->head_dim * esz;
    size_t head = (size_t)FORGE_KV_BLOCK_TOKENS * row;
    for (int l = 0; l < c->n_layers; l++)
        for (int g = 0; g < c->n_kv_heads; g++) {
            size_t from = (size_t)src * b->block_elems * esz + g * head, to = (size_t)dst * b->block_elems * esz + g * head;
            memcpy((char *)b->kpool[l] + to, (char *)b->kpool[l] + from, (size_t)n * row);
            memcpy((char *)b->vpool[l] + to, (char *)b->vpool[l] + from, (size_t)n * row);
        }
    return FORGE_OK;
}

float *alloc_floats(size_t n, bool *ok) {
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63);
    if (!p) *ok = false;
    return p;
}

backend *backend_cpu_create(const forge_model *m, const backend_params *p, forge_error *err) {
    model_repack_once((forge_model *)m); /* the model's r16 copies, shared by its CPU contexts */
    const model_config *c = &m->cfg;
    cpu_backend *b = calloc(1, sizeof *b);
    if (!b) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    b->base.name = "cpu";
    b->base.forward = cpu_forward;
    b->base.hidden = cpu_hidden;
    b->base.copy_kv = cpu_copy_kv;
    b->base.destroy = cpu_destroy;
    b->m = m;
    b->p = *p;
    b->k = kernels_get();
    b->qk = quant_get();
    b->profile = getenv("FORGE_PROFILE") && atoi(getenv("FORGE_PROFILE")) > 0;
    b->n_threads = p->n_threads > 0 ? p->n_threads : 1;
    b->cap_tasks = MM_MAX_TASKS > 2 * c->n_experts ? MM_MAX_TASKS : 2 * c->n_experts;
    b->tasks = calloc((size_t)b->cap_tasks, sizeof *b->tasks);
    b->pool = b->tasks ? tpool_create(b->n_threads) : NULL;
    if (!b->pool) {
        free(b->tasks);
        free(b);
        err_set(err, FORGE_E_NOMEM, "cannot start %d threads", p->n_threads);
        return NULL;
    }
    b->block_elems = (size_t)c->n_kv_heads * FORGE_KV_BLOCK_TOKENS * c->head_dim;
    size_t pool_bytes = (size_t)p->n_kv_blocks * b->block_elems * dtype_size(p->kv_dtype);
    b->pool_bytes = pool_bytes;
    bool ok = true;
    b->kpool = calloc((size_t)c->n_layers, sizeof *b->kpool);
    b->vpool = calloc((size_t)c->n_layers, sizeof *b->vpool);
    if (!b->kpool || !b->vpool) ok = false;
    for (int l = 0; ok && l < c->n_layers; l++) {
        b->kpool[l] = kv_alloc(pool_bytes);
        b->vpool[l] = kv_alloc(pool_bytes);
        if (!b->kpool[l] || !b->vpool[l]) ok = false;
    }
    if (!ok) {
        cpu_destroy(&b->base);
        err_set(err, FORGE_E_NOMEM, "cannot allocate the KV cache (%d blocks, %.1f MB)", p->n_kv_blocks,
                2.0 * c->n_layers * pool_bytes / 1e6);
        return NULL;
    }
    size_t T = (size_t)p->max_batch_tokens, H = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd, I = (size_t)c->intermediate_size;
    b->x = alloc_floats(T * H, &ok);
    b->xn = alloc_floats(T * H, &ok);
    b->tmp = alloc_floats(T * H, &ok);
    b->q = alloc_floats(T * qd, &ok);
    b->att = alloc_floats(T * qd, &ok);
    b->kk = alloc_floats(T * kvd, &ok);
    b->vv = alloc_floats(T * kvd, &ok);
    b->gate = alloc_floats(T * I, &ok);
    b->up = alloc_floats(T * I, &ok);
    b->rcos = alloc_floats(T * hd / 2, &ok);
    b->rsin = alloc_floats(T * hd / 2, &ok);
    if (m->rope_local_inv_freq) {
        b->rcos_local = alloc_floats(T * hd / 2, &ok);
        b->rsin_local = alloc_floats(T * hd / 2, &ok);
    }
    b->xf = alloc_floats((size_t)p->max_logit_rows * H, &ok);
    /* pack scratch: the widest panel of any weight */
    size_t pf = mm_pack_floats(&m->lm_head);
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *L = &m->layers[l];
        const mm_weight *ws[] = {&L->wq, &L->wo, L->moe ? &L->router : &L->wgate, L->moe ? L->egate : &L->wdown,
                                 L->moe ? L->edown : &L->wdown};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (mm_pack_floats(ws[i]) > pf) pf = mm_pack_floats(ws[i]);
    }
    if (!moe_alloc(b)) ok = false;
    b->pack_floats = (pf + 15) & ~(size_t)15;
    b->pack = alloc_floats(b->pack_floats * (size_t)b->n_threads, &ok);
    if (!ok) {
        cpu_destroy(&b->base);
        err_set(err, FORGE_E_NOMEM, "cannot allocate scratch for %d batch tokens", p->max_batch_tokens);
        return NULL;
    }
    return &b->base;
}
