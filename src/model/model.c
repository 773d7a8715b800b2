/* model.c: forge_model_open: config.json + safetensors -> bound weights. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sysinfo.h"
#include "base/threadpool.h"
#include "kernels/quant.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *own(forge_model *m, size_t bytes) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **p = realloc(m->owned, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (p) m->owned[m->n_owned++] = p;
    return p;
}

static void shape_str(char *out, size_t n, const int64_t *shape, int ndim) {
    size_t at = 0;
    at += (size_t)snprintf(out + at, n - at, "[");
    for (int i = 0; i < ndim && at < n; i++)
        at += (size_t)snprintf(out + at, n - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < n) snprintf(out + at, n - at, "]");
}

/* Finds a tensor and checks its dtype and shape against what the config implies. */
static forge_status find_checked(forge_model *m, const char *name, int rows, int cols, bool required,
                                 const st_tensor **out, forge_error *err) {
    *out = NULL;
    const st_tensor *t = st_find(&m->st, name);
    if (!t) {
        if (!required) return FORGE_OK;
        return err_set(err, FORGE_E_FORMAT, "tensor \"%s\" is missing (config.json model_type %s implies it)", name,
                       m->cfg.model_type);
    }
    if (t->dtype < 0 && !(t->qtype && quant_supported(t->qtype)))
        return err_set(err, FORGE_E_UNSUPPORTED,
                       "tensor \"%s\" has type %s (supported: F32, F16, BF16%s)", name, t->dtype_name,
                       t->qtype ? ", Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K" : "");
    if (t->qtype && cols <= 0)
        return err_set(err, FORGE_E_UNSUPPORTED, "tensor \"%s\" is a vector of type %s (supported: F32, F16, BF16)",
                       name, t->dtype_name);
    int64_t want[2] = {rows, cols};
    int want_dims = cols > 0 ? 2 : 1;
    bool ok = t->ndim == want_dims && t->shape[0] == rows && (want_dims == 1 || t->shape[1] == cols);
    if (!ok) {
        char got_s[96], want_s[64];
        shape_str(got_s, sizeof got_s, t->shape, t->ndim);
        shape_str(want_s, sizeof want_s, want, want_dims);
        return err_set(err, FORGE_E_FORMAT, "tensor \"%s\" has shape %s, but config.json implies %s", name, got_s, want_s);
    }
    *out = t;
    return FORGE_OK;
}

/* A vector (norm weight or bias) as f32, owned by the model. */
static forge_status bind_vec(forge_model *m, const char *name, int n, bool required, const float **out,
                             forge_error *err) {
    const st_tensor *t;
    forge_status st = find_checked(m, name, n, 0, required, &t, err);
    *out = NULL;
    if (st || !t) return st;
    float *v = own(m, (size_t)n * sizeof(float));
    if (!v) return err_set(err, FORGE_E_NOMEM, "out of memory");
    kernels_ref()->to_f32(v, t->data, (forge_dtype)t->dtype, n);
    *out = v;
    return FORGE_OK;
}

/* A norm weight as f32; Gemma's (1 + w) folded in here, in f32 as HF computes it. */
static forge_status bind_norm(forge_model *m, const char *name, int n, const float **out, forge_error *err) {
    forge_status st = bind_vec(m, name, n, true, out, err);
    if (st || !m->cfg.gemma_norms || (m->gguf && m->gguf->norms_hold_one)) return st;
    float *w = (float *)*out; /* owned by the model */
    for (int i = 0; i < n; i++) w[i] = 1.0f + w[i];
    return FORGE_OK;
}

typedef struct quant_job {
    const mm_weight *src;
    int qtype, rows_per;
    unsigned char *dst;
    size_t rb;
    float **tmp;
} quant_job;

static void quant_rows(void *ctx, int chunk, int thread) {
    const quant_job *q = ctx;
    int r0 = chunk * q->rows_per, r1 = r0 + q->rows_per;
    if (r1 > q->src->rows) r1 = q->src->rows;
    size_t srb = (size_t)q->src->cols * dtype_size(q->src->dtype);
    for (int r = r0; r < r1; r++) {
        kernels_ref()->to_f32(q->tmp[thread], (const char *)q->src->data + (size_t)r * srb, q->src->dtype, q->src->cols);
        quant_make_row(q->qtype, q->tmp[thread], q->dst + (size_t)r * q->rb, q->src->cols);
    }
}

/* --quantize: the matrix's rows quantized into owned memory (Q4_K falls back to Q8_0 for
 * widths that are not a multiple of 256; widths not a multiple of 32 stay as they are). */
static forge_status quantize_weight(forge_model *m, mm_weight *w, const char *name, size_t nbytes, forge_error *err) {
    int qt = m->quantize_to;
    if (w->cols % quant_block_elems(qt)) qt = QT_Q8_0;
    if (w->cols % quant_block_elems(qt)) {
        m->info.weight_bytes += nbytes;
        return FORGE_OK;
    }
    quant_job q = {.src = w, .qtype = qt, .rb = quant_row_bytes(qt, w->cols)};
    q.dst = own(m, q.rb * (size_t)w->rows);
    if (!q.dst) return err_set(err, FORGE_E_NOMEM, "out of memory quantizing tensor \"%s\"", name);
    int nt = m->n_threads > 0 ? m->n_threads : 1;
    if (nt > 1 && !m->qpool) m->qpool = tpool_create(nt); /* one pool for the whole load */
    tpool *pool = nt > 1 ? m->qpool : NULL;
    if (pool) nt = tpool_size(pool);
    else nt = 1;
    float *tmp[256];
    if (nt > 256) nt = 256;
    bool ok = true;
    for (int i = 0; i < nt; i++) ok &= (tmp[i] = malloc((size_t)w->cols * sizeof(float))) != NULL;
    q.tmp = tmp;
    q.rows_per = 64;
    int chunks = (w->rows + q.rows_per - 1) / q.rows_per;
    if (ok) {
        if (pool) tpool_run(pool, chunks, quant_rows, &q);
        else
            for (int c = 0; c < chunks; c++) quant_rows(&q, c, 0);
    }
    for (int i = 0; i < nt; i++) free(tmp[i]);
    if (!ok) return err_set(err, FORGE_E_NOMEM, "out of memory");
    w->data = q.dst;
    w->qtype = qt;
    w->dtype = FORGE_DTYPE_BF16; /* nominal, as for GGUF quantized weights */
    m->n_quantized++;
    m->n_made++;
    m->info.weight_bytes += q.rb * (size_t)w->rows;
    return FORGE_OK;
}

/* ---- row-interleaved copies for the CPU kernels -------------------------------------- */

typedef struct r16_job {
    const mm_weight *w;
    unsigned char *dst;
    int groups_per;
} r16_job;

static void r16_groups(void *ctx, int chunk, int thread) {
    (void)thread;
    const r16_job *j = ctx;
    int ng = (j->w->rows + QR16 - 1) / QR16, g0 = chunk * j->groups_per, g1 = g0 + j->groups_per;
    if (g1 > ng) g1 = ng;
    quant_r16_pack(j->w->qtype, j->w->data, j->w->rows, j->w->cols, g0, g1, j->dst);
}

/* The matrices whose quantized rows the CPU's kernel set multiplies from an r16 copy
 * (kernels/quant.h) get one, made once when the first CPU context is made, so every context
 * shares it (as llama.cpp repacks at load; a model run only on a GPU never needs them). The stored rows stay bound too: embedding lookups, other backends and
 * kernel sets read them. FORGE_REPACK=0 turns this off; so does too little free memory. */
/* A pass over the matrices: counting them (make false), or giving each its copy. */
typedef struct r16_pass {
    forge_model *m;
    const quant_kernels *qk;
    bool make;
    tpool *pool;
    size_t bytes;
    int n;
} r16_pass;

static void r16_one(r16_pass *ps, mm_weight *w) {
    if (!w->data || w->r16 || w->qtype <= 0 || w->qtype >= 32 || !(ps->qk->r16_types >> w->qtype & 1u)) return;
    size_t pb = quant_r16_bytes(w->qtype, w->rows, w->cols);
    if (!pb) return;
    if (ps->make) {
        unsigned char *dst = own(ps->m, pb);
        if (!dst) return; /* the stored rows serve */
        r16_job j = {.w = w, .dst = dst, .groups_per = 8};
        int chunks = ((w->rows + QR16 - 1) / QR16 + j.groups_per - 1) / j.groups_per;
        if (ps->pool) tpool_run(ps->pool, chunks, r16_groups, &j);
        else
            for (int ch = 0; ch < chunks; ch++) r16_groups(&j, ch, 0);
        w->r16 = dst;
    }
    ps->bytes += pb;
    ps->n++;
}

/* every matrix the forward multiplies: the layers' (experts included) and the LM head */
static void r16_visit(r16_pass *ps) {
    forge_model *m = ps->m;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        layer_weights *L = &m->layers[l];
        mm_weight *dense[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wgate, &L->wup, &L->wdown};
        for (int i = 0; i < 7; i++) r16_one(ps, dense[i]);
        if (L->moe && L->egate)
            for (int e = 0; e < m->cfg.n_experts; e++) {
                r16_one(ps, &L->egate[e]);
                r16_one(ps, &L->eup[e]);
                r16_one(ps, &L->edown[e]);
            }
    }
    r16_one(ps, &m->lm_head);
}

static void model_repack(forge_model *m);

void model_repack_once(forge_model *m) {
    pthread_mutex_lock(&m->repack_lock);
    if (!m->repacked) {
        m->repacked = true;
        model_repack(m);
        tpool_free(m->qpool);
        m->qpool = NULL;
    }
    pthread_mutex_unlock(&m->repack_lock);
}

static void model_repack(forge_model *m) {
    const quant_kernels *qk = quant_get();
    const char *env = getenv("FORGE_REPACK");
    if (!qk->matmul_r16 || (env && !strcmp(env, "0"))) return;
    r16_pass count = {.m = m, .qk = qk};
    r16_visit(&count);
    if (!count.n) return;
    size_t avail = sys_mem_available();
    if (avail && count.bytes + ((size_t)1 << 30) > avail) {
        log_info("not repacking %d quantized matrices for the %s kernels: %.1f GB would leave under 1 GB of the %.1f GB "
                 "available (their stored rows are used)", count.n, qk->name, (double)count.bytes * 1e-9,
                 (double)avail * 1e-9);
        return;
    }
    double t0 = now_seconds();
    int nt = m->n_threads > 0 ? m->n_threads : 1;
    if (nt > 1 && !m->qpool) m->qpool = tpool_create(nt);
    r16_pass make = {.m = m, .qk = qk, .make = true, .pool = nt > 1 ? m->qpool : NULL};
    r16_visit(&make);
    log_info("repacked %d quantized matrices (%.1f MB) for the %s kernels in %.2f s", make.n, (double)make.bytes * 1e-6,
             qk->name, now_seconds() - t0);
}

/* A matrix used in place from the mapping (copied only when misaligned for its dtype). */
static forge_status bind_mat(forge_model *m, const char *name, int rows, int cols, mm_weight *w,
                             forge_error *err) {
    const st_tensor *t;
    forge_status st = find_checked(m, name, rows, cols, true, &t, err);
    if (st) return st;
    memset(w, 0, sizeof *w);
    w->rows = rows;
    w->cols = cols;
    size_t esz = 1;
    if (t->qtype) {
        w->qtype = t->qtype;
        w->dtype = FORGE_DTYPE_BF16; /* nominal: activations and the KV cache as for 16-bit weights */
        m->n_quantized++;
    } else {
        w->dtype = (forge_dtype)t->dtype;
        esz = dtype_size(w->dtype);
    }
    if ((uintptr_t)t->data % esz == 0) {
        w->data = t->data;
    } else {
        void *copy = own(m, t->nbytes);
        if (!copy) return err_set(err, FORGE_E_NOMEM, "out of memory copying tensor \"%s\"", name);
        memcpy(copy, t->data, t->nbytes);
        w->data = copy;
    }
    if (m->quantize_to && !w->qtype) return quantize_weight(m, w, name, t->nbytes, err);
    m->info.weight_bytes += t->nbytes;
    return FORGE_OK;
}

/* Rows of each head from llama.cpp's order (r = 2i + s) back to HF's (r = s * d/2 + i), in an
 * owned copy; whole rows move, so this holds for quantized rows too. */
static forge_status unpermute_rows(forge_model *m, mm_weight *w, int n_head, const char *name, forge_error *err) {
    int hd = w->rows / n_head, half = hd / 2;
    size_t rb = (size_t)w->cols * dtype_size(w->dtype);
    if (w->qtype) rb = weight_row_bytes(w);
    unsigned char *dst = own(m, rb * (size_t)w->rows);
    if (!dst) return err_set(err, FORGE_E_NOMEM, "out of memory reordering tensor \"%s\"", name);
    const unsigned char *src = w->data;
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < half; i++)
            for (int s = 0; s < 2; s++)
                memcpy(dst + ((size_t)h * hd + (size_t)s * half + i) * rb, src + ((size_t)h * hd + 2 * i + s) * rb, rb);
    w->data = dst;
    if (w->bias) {
        float *b = own(m, (size_t)w->rows * sizeof(float));
        if (!b) return err_set(err, FORGE_E_NOMEM, "out of memory");
        for (int h = 0; h < n_head; h++)
            for (int i = 0; i < half; i++)
                for (int s = 0; s < 2; s++) b[h * hd + s * half + i] = w->bias[h * hd + 2 * i + s];
        w->bias = b;
    }
    return FORGE_OK;
}

static forge_status bind_linear(forge_model *m, const char *prefix, const char *proj, int rows, int cols,
                                bool bias, mm_weight *w, forge_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.%s.weight", prefix, proj);
    forge_status st = bind_mat(m, name, rows, cols, w, err);
    if (st) return st;
    if (bias) {
        snprintf(name, sizeof name, "%s.%s.bias", prefix, proj);
        if ((st = bind_vec(m, name, rows, true, &w->bias, err))) return st;
    }
    /* llama.cpp stores llama's q/k rows interleaved per head for its RoPE: undo it */
    if (m->gguf && m->gguf->qk_permuted && (!strcmp(proj, "q_proj") || !strcmp(proj, "k_proj")))
        return unpermute_rows(m, w, strcmp(proj, "q_proj") ? m->cfg.n_kv_heads : m->cfg.n_heads, name, err);
    return FORGE_OK;
}

/* A MoE layer's router and experts: Qwen3-MoE's mlp.gate / mlp.experts.E.{gate,up,down}_proj,
 * Mixtral's block_sparse_moe.gate / block_sparse_moe.experts.E.{w1,w3,w2}. */
static forge_status bind_experts(forge_model *m, int l, layer_weights *L, forge_error *err) {
    const model_config *c = &m->cfg;
    int H = c->hidden_size, I = c->moe_intermediate_size, E = c->n_experts;
    bool mixtral = c->arch == ARCH_MIXTRAL;
    const char *base = mixtral ? "block_sparse_moe" : "mlp";
    const char *names[3] = {mixtral ? "w1" : "gate_proj", mixtral ? "w3" : "up_proj", mixtral ? "w2" : "down_proj"};
    char p[160];
    forge_status st;
    snprintf(p, sizeof p, "model.layers.%d.%s", l, base);
    if ((st = bind_linear(m, p, "gate", E, H, false, &L->router, err))) return st;
    mm_weight *w = own(m, 3 * (size_t)E * sizeof *w);
    if (!w) return err_set(err, FORGE_E_NOMEM, "out of memory");
    L->egate = w;
    L->eup = w + E;
    L->edown = w + 2 * E;
    size_t before = m->info.weight_bytes;
    for (int e = 0; e < E; e++) {
        snprintf(p, sizeof p, "model.layers.%d.%s.experts.%d", l, base, e);
        if ((st = bind_linear(m, p, names[0], I, H, false, &L->egate[e], err)) ||
            (st = bind_linear(m, p, names[1], I, H, false, &L->eup[e], err)) ||
            (st = bind_linear(m, p, names[2], H, I, false, &L->edown[e], err)))
            return st;
    }
    /* a token reads its top k of the E experts: weight_bytes counts that share */
    size_t all = m->info.weight_bytes - before;
    m->info.expert_bytes += all;
    m->info.weight_bytes = before + (size_t)((double)all * c->n_experts_used / E);
    return FORGE_OK;
}

/* Rows [r0, r0 + rows) of a bound matrix as a view (whole rows: dtype or quantized). */
static mm_weight row_view(const mm_weight *w, int r0, int rows) {
    mm_weight v = *w;
    v.data = (const char *)w->data + (size_t)r0 * weight_row_bytes(w);
    v.rows = rows;
    v.bias = NULL;
    return v;
}

/* Phi-3: qkv_proj [q; k; v] and gate_up_proj [gate; up] (Phi3MLP chunks gate first), split
 * into views of the mapping; o_proj and down_proj as usual; no biases. */
static forge_status bind_phi3(forge_model *m, int l, layer_weights *L, forge_error *err) {
    const model_config *c = &m->cfg;
    int H = c->hidden_size, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, I = c->intermediate_size;
    char p[128];
    mm_weight qkv, gu;
    forge_status st;
    snprintf(p, sizeof p, "model.layers.%d.self_attn", l);
    if ((st = bind_linear(m, p, "qkv_proj", qd + 2 * kvd, H, false, &qkv, err)) ||
        (st = bind_linear(m, p, "o_proj", H, qd, false, &L->wo, err)))
        return st;
    snprintf(p, sizeof p, "model.layers.%d.mlp", l);
    if ((st = bind_linear(m, p, "gate_up_proj", 2 * I, H, false, &gu, err)) ||
        (st = bind_linear(m, p, "down_proj", H, I, false, &L->wdown, err)))
        return st;
    L->wq = row_view(&qkv, 0, qd);
    L->wk = row_view(&qkv, qd, kvd);
    L->wv = row_view(&qkv, qd + kvd, kvd);
    L->wgate = row_view(&gu, 0, I);
    L->wup = row_view(&gu, I, I);
    return FORGE_OK;
}

forge_status model_bind(forge_model *m, forge_error *err) {
    const model_config *c = &m->cfg;
    int H = c->hidden_size, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    forge_status st;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return err_set(err, FORGE_E_NOMEM, "out of memory");
    if ((st = bind_mat(m, "model.embed_tokens.weight", c->vocab_size, H, &m->embed, err))) return st;
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *L = &m->layers[l];
        char p[128], n[192];
        snprintf(p, sizeof p, "model.layers.%d.self_attn", l);
        if (c->fused_qkv_gate_up) {
            if ((st = bind_phi3(m, l, L, err))) return st;
        } else if ((st = bind_linear(m, p, "q_proj", qd, H, c->q_bias, &L->wq, err)) ||
            (st = bind_linear(m, p, "k_proj", kvd, H, c->k_bias, &L->wk, err)) ||
            (st = bind_linear(m, p, "v_proj", kvd, H, c->v_bias, &L->wv, err)) ||
            (st = bind_linear(m, p, "o_proj", H, qd, c->o_bias, &L->wo, err)))
            return st;
        if (c->qk_norm) {
            snprintf(n, sizeof n, "%s.q_norm.weight", p);
            if ((st = bind_norm(m, n, hd, &L->q_norm, err))) return st;
            snprintf(n, sizeof n, "%s.k_norm.weight", p);
            if ((st = bind_norm(m, n, hd, &L->k_norm, err))) return st;
        }
        L->moe = c->layer_moe[l];
        if (c->fused_qkv_gate_up) {
            /* bound with the attention */
        } else if (L->moe) {
            if ((st = bind_experts(m, l, L, err))) return st;
        } else {
            snprintf(p, sizeof p, "model.layers.%d.mlp", l);
            if ((st = bind_linear(m, p, "gate_proj", c->intermediate_size, H, c->mlp_bias, &L->wgate, err)) ||
                (st = bind_linear(m, p, "up_proj", c->intermediate_size, H, c->mlp_bias, &L->wup, err)) ||
                (st = bind_linear(m, p, "down_proj", H, c->intermediate_size, c->mlp_bias, &L->wdown, err)))
                return st;
        }
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
        if ((st = bind_norm(m, n, H, &L->attn_norm, err))) return st;
        /* llama's post_attention_layernorm is the MLP's input norm; Gemma's normalizes the
         * attention output, and pre/post_feedforward_layernorm wrap the MLP */
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
        if ((st = bind_norm(m, n, H, c->gemma_norms ? &L->post_attn_norm : &L->ffn_norm, err))) return st;
        if (c->gemma_norms) {
            snprintf(n, sizeof n, "model.layers.%d.pre_feedforward_layernorm.weight", l);
            if ((st = bind_norm(m, n, H, &L->ffn_norm, err))) return st;
            snprintf(n, sizeof n, "model.layers.%d.post_feedforward_layernorm.weight", l);
            if ((st = bind_norm(m, n, H, &L->post_ffn_norm, err))) return st;
        }
        L->sliding = c->layer_sliding[l];
        L->rope = c->layer_rope[l];
    }
    if ((st = bind_norm(m, "model.norm.weight", H, &m->final_norm, err))) return st;
    if (c->tie_word_embeddings) {
        m->lm_head = m->embed;
    } else {
        if ((st = bind_mat(m, "lm_head.weight", c->vocab_size, H, &m->lm_head, err))) return st;
    }
    m->rope_inv_freq = own(m, (size_t)(hd / 2) * sizeof(double));
    if (!m->rope_inv_freq) return err_set(err, FORGE_E_NOMEM, "out of memory");
    config_rope_inv_freq(c, m->rope_inv_freq);
    if (c->rope_type == ROPE_LONGROPE) {
        m->rope_long_inv_freq = own(m, (size_t)(c->rope_dim / 2) * sizeof(double));
        if (!m->rope_long_inv_freq) return err_set(err, FORGE_E_NOMEM, "out of memory");
        config_rope_long_inv_freq(c, m->rope_long_inv_freq);
    }
    if (c->rope_local_theta > 0) {
        m->rope_local_inv_freq = own(m, (size_t)(hd / 2) * sizeof(double));
        if (!m->rope_local_inv_freq) return err_set(err, FORGE_E_NOMEM, "out of memory");
        config_rope_local_inv_freq(c, m->rope_local_inv_freq);
    }
    if (m->gguf && m->gguf->rope_freqs)
        for (int i = 0; i < hd / 2; i++) {
            float f = m->gguf->rope_freqs[i]; /* llama.cpp: theta / freq_factor */
            if (!(f > 0) || f > 1e30f)
                return err_set(err, FORGE_E_FORMAT, "tensor \"rope_freqs.weight\"[%d] = %g is not a positive number", i, f);
            m->rope_inv_freq[i] /= f;
        }
    return FORGE_OK;
}


forge_model_params forge_model_default_params(void) { return (forge_model_params){0}; }

/* The load's progress hook: false when the caller asked to stop. */
static bool load_progress(const forge_model_params *p, uint64_t done, forge_error *err) {
    if (!p->progress || p->progress(done, 4, p->progress_user)) return true;
    err_set(err, FORGE_E_CANCELLED, "loading the model was cancelled by the progress callback");
    return false;
}

forge_model *forge_model_open(const char *dir, const forge_model_params *params, forge_error *err) {
    forge_model_params dflt = {0};
    if (!params) params = &dflt;
    if (!dir || !*dir) {
        err_set(err, FORGE_E_INVALID, "no model folder given");
        return NULL;
    }
    char path[4096];
    bool is_gguf;
    if (gguf_model_find(dir, path, sizeof path, &is_gguf, err)) return NULL;
    if (!is_gguf && !path_is_dir(dir)) {
        err_set(err, FORGE_E_NOT_FOUND, "%s: not a folder or a .gguf file", dir);
        return NULL;
    }
    forge_model *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->repack_lock, NULL);
    if (!m || !(m->dir = strdup(dir))) {
        if (m) pthread_mutex_destroy(&m->repack_lock);
        free(m);
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    forge_status st;
    if (params->quantize && params->quantize != FORGE_QUANT_Q8_0 && params->quantize != FORGE_QUANT_Q4_0 &&
        params->quantize != FORGE_QUANT_Q4_K) {
        st = err_set(err, FORGE_E_INVALID, "quantize %d is not supported (Q8_0, Q4_0, Q4_K)", params->quantize);
        goto fail;
    }
    m->quantize_to = params->quantize;
    m->n_threads = params->n_threads > 0 ? params->n_threads : cpu_default_threads();
    double tq0 = now_seconds();
    if (is_gguf) {
        /* the folder of the file holds generation_config.json, if any */
        if (path_is_file(dir)) {
            char *slash = strrchr(m->dir, '/');
            if (slash && slash != m->dir) *slash = 0;
            else if (slash) slash[1] = 0;
            else strcpy(m->dir, ".");
        }
        if (!(m->gguf = calloc(1, sizeof *m->gguf))) {
            st = err_set(err, FORGE_E_NOMEM, "out of memory");
            goto fail;
        }
        if ((st = gguf_model_open(m->gguf, path, &m->cfg, &m->st, err))) goto fail;
        if (!load_progress(params, 2, err)) goto cancelled;
        if ((st = model_bind(m, err))) {
            err_prefix(err, "%s", path);
            goto fail;
        }
        goto quantized;
    }
    if (path_join(path, sizeof path, dir, "config.json")) {
        st = err_set(err, FORGE_E_INVALID, "model path is too long");
        goto fail;
    }
    if ((st = config_load(&m->cfg, path, err))) goto fail;
    if (!load_progress(params, 1, err)) goto cancelled;
    if ((st = st_open_dir(&m->st, dir, err))) goto fail;
    if (!load_progress(params, 2, err)) goto cancelled;
    if ((st = model_bind(m, err))) {
        err_prefix(err, "%s", dir);
        goto fail;
    }
quantized:
    tpool_free(m->qpool);
    m->qpool = NULL;
    if (m->quantize_to)
        log_info("quantized %d weight matrices to %s in %.2f s", m->n_made,
                 m->quantize_to == FORGE_QUANT_Q8_0 ? "Q8_0" : m->quantize_to == FORGE_QUANT_Q4_0 ? "Q4_0" : "Q4_K",
                 now_seconds() - tq0);
    if (!load_progress(params, 3, err)) goto cancelled;

    const model_config *c = &m->cfg;
    forge_model_info *in = &m->info;
    in->model_type = c->model_type;
    in->vocab_size = c->vocab_size;
    in->hidden_size = c->hidden_size;
    in->intermediate_size = c->intermediate_size;
    in->n_layers = c->n_layers;
    in->n_heads = c->n_heads;
    in->n_kv_heads = c->n_kv_heads;
    in->head_dim = c->head_dim;
    in->max_position_embeddings = c->max_position_embeddings;
    in->dtype = m->layers[0].wq.dtype;
    in->bos_token_id = c->bos_token_id;
    in->n_eos_ids = c->n_eos;
    in->eos_ids = c->eos_ids;
    in->n_threads = params->n_threads > 0 ? params->n_threads : cpu_default_threads();
    in->n_experts = c->n_experts;
    in->n_experts_used = c->n_experts_used;
    in->moe_intermediate_size = c->moe_intermediate_size;

    /* context: min(max_position_embeddings, --max-model-len, what memory allows for KV) */
    int ctx = c->max_position_embeddings;
    if (params->max_model_len < 0) {
        st = err_set(err, FORGE_E_INVALID, "max_model_len must not be negative");
        goto fail;
    }
    if (params->max_model_len > 0) {
        if (params->max_model_len > ctx) {
            st = err_set(err, FORGE_E_RANGE, "max_model_len %d exceeds the model's max_position_embeddings %d",
                         params->max_model_len, ctx);
            goto fail;
        }
        ctx = params->max_model_len;
    } else {
        size_t kv_tok = (size_t)c->n_layers * 2 * (size_t)c->n_kv_heads * (size_t)c->head_dim *
                        (in->dtype == FORGE_DTYPE_F32 ? 4 : 2);
        size_t avail = sys_mem_available();
        if (avail > 0 && kv_tok > 0) {
            size_t fit = avail / 2 / kv_tok;
            if (fit < (size_t)ctx) {
                ctx = fit < FORGE_KV_BLOCK_TOKENS ? FORGE_KV_BLOCK_TOKENS : (int)fit;
                log_info("context limited to %d tokens by available memory", ctx);
            }
        }
    }
    in->context_len = ctx;
    if (!load_progress(params, 4, err)) goto cancelled;
    return m;
cancelled:
fail:
    (void)st;
    forge_model_close(m);
    return NULL;
}

void forge_model_close(forge_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    pthread_mutex_destroy(&m->repack_lock);
    free(m->layers);
    st_close(&m->st);
    tpool_free(m->qpool);
    if (m->gguf) gguf_model_close(m->gguf);
    free(m->gguf);
    config_free(&m->cfg);
    free(m->dir);
    free(m);
}

const forge_model_info *forge_model_get_info(const forge_model *m) { return m ? &m->info : NULL; }
