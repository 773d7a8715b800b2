/* moe.c: the mixture-of-experts MLP of the CPU forward (Qwen3-MoE, Mixtral).
 *
 * Per layer: router logits for every token (one matmul), then per token a softmax over all
 * experts, the top k, renormalized when the config says so (transformers' Qwen3MoeSparseMoeBlock
 * and MixtralSparseMoeBlock). The (token, expert) pairs are then grouped by expert: each
 * active expert's gate/up and down projections run once for all the rows routed to it, so its
 * weights are read once per step however many tokens chose it. All experts' matmuls go out in
 * one dispatch.
 *
 * Batch invariance by construction: a matmul row's result does not depend on the number of
 * rows or the tile it lands in (kernels.h), so an expert's output for a token is the same bits
 * in a group of 1 or of 200; the routing is per token; and a token's output sums its experts'
 * weighted outputs in increasing expert id (as transformers' loop over experts adds them),
 * whatever the other tokens chose. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_int.h"

bool moe_alloc(cpu_backend *b) {
    const model_config *c = &b->m->cfg;
    moe_scratch *s = &b->moe;
    const char *env = getenv("FORGE_MOE_UNGROUPED");
    s->ungrouped = env && atoi(env) > 0;
    if (c->n_experts == 0) return true;
    size_t T = (size_t)b->p.max_batch_tokens, K = (size_t)c->n_experts_used, E = (size_t)c->n_experts;
    size_t H = (size_t)c->hidden_size, I = (size_t)c->moe_intermediate_size;
    bool ok = true;
    s->logits = alloc_floats(T * E, &ok);
    s->weight = alloc_floats(T * K, &ok);
    s->xe = alloc_floats(T * K * H, &ok);
    s->ye = alloc_floats(T * K * H, &ok);
    s->ge = alloc_floats(T * K * I, &ok);
    s->ue = alloc_floats(T * K * I, &ok);
    s->pick = malloc(T * K * sizeof *s->pick);
    s->slot = malloc(T * K * sizeof *s->slot);
    s->slot_token = malloc(T * K * sizeof *s->slot_token);
    s->count = malloc(E * sizeof *s->count);
    s->first = malloc(E * sizeof *s->first);
    return ok && s->pick && s->slot && s->slot_token && s->count && s->first;
}

void moe_free(cpu_backend *b) {
    moe_scratch *s = &b->moe;
    void *p[] = {s->logits, s->weight, s->xe, s->ye, s->ge, s->ue, s->pick, s->slot, s->slot_token, s->count, s->first};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    memset(s, 0, sizeof *s);
}

/* Token t's top-k experts from its router logits: softmax over all experts in double, the k
 * largest (ties to the lower id), renormalized if norm_topk_prob; stored by increasing id. */
static void route_token(const model_config *c, const float *logit, int32_t *pick, float *weight) {
    int E = c->n_experts, K = c->n_experts_used;
    double mx = logit[0];
    for (int e = 1; e < E; e++)
        if (logit[e] > mx) mx = logit[e];
    double sum = 0;
    for (int e = 0; e < E; e++) sum += exp((double)logit[e] - mx);
    /* selection: the k largest logits (softmax is monotonic), lower id first on ties */
    int n = 0;
    for (int e = 0; e < E; e++) {
        int i = n < K ? n++ : K;
        if (i == K) {
            if (!(logit[e] > logit[pick[K - 1]])) continue;
            i = K - 1;
        }
        while (i > 0 && logit[e] > logit[pick[i - 1]]) {
            pick[i] = pick[i - 1];
            i--;
        }
        pick[i] = e;
    }
    double p[CONFIG_MAX_TOPK], top = 0;
    for (int k = 0; k < K; k++) top += p[k] = exp((double)logit[pick[k]] - mx) / sum;
    for (int k = 0; k < K; k++)
        if (c->norm_topk_prob) p[k] /= top;
    /* by increasing expert id: the order the outputs are summed in */
    for (int i = 1; i < K; i++)
        for (int j = i; j > 0 && pick[j] < pick[j - 1]; j--) {
            int32_t te = pick[j];
            pick[j] = pick[j - 1];
            pick[j - 1] = te;
            double tp = p[j];
            p[j] = p[j - 1];
            p[j - 1] = tp;
        }
    for (int k = 0; k < K; k++) weight[k] = (float)p[k];
}

typedef enum { MOE_GATHER, MOE_SWIGLU, MOE_COMBINE } moe_op;

typedef struct moe_rows {
    cpu_backend *b;
    moe_op op;
    int base, n, per; /* rows base .. base + n */
} moe_rows;

static void moe_rows_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    const moe_rows *r = ctx;
    cpu_backend *b = r->b;
    const model_config *c = &b->m->cfg;
    moe_scratch *s = &b->moe;
    int H = c->hidden_size, I = c->moe_intermediate_size, K = c->n_experts_used;
    int i0 = chunk * r->per, i1 = i0 + r->per < r->n ? i0 + r->per : r->n;
    for (int i = r->base + i0; i < r->base + i1; i++) {
        switch (r->op) {
        case MOE_GATHER: /* grouped row i <- its token's normalized input */
            memcpy(s->xe + (size_t)i * H, b->xn + (size_t)s->slot_token[i] * H, (size_t)H * sizeof(float));
            break;
        case MOE_SWIGLU:
            b->k->swiglu(s->ge + (size_t)i * I, s->ge + (size_t)i * I, s->ue + (size_t)i * I, I);
            break;
        case MOE_COMBINE: { /* token i's output: its experts' weighted outputs by increasing id */
            float *out = b->tmp + (size_t)i * H;
            for (int j = 0; j < H; j++) out[j] = 0;
            for (int k = 0; k < K; k++) {
                float w = s->weight[(size_t)i * K + k];
                const float *y = s->ye + (size_t)s->slot[(size_t)i * K + k] * H;
                for (int j = 0; j < H; j++) out[j] += y[j] * w;
            }
            break;
        }
        }
    }
}

static void moe_rows_run(cpu_backend *b, moe_op op, int base, int n) {
    moe_rows r = {.b = b, .op = op, .base = base, .n = n};
    r.per = n / (4 * b->n_threads);
    if (r.per < 1) r.per = 1;
    if (n < 4) r.per = n;
    tpool_run(b->pool, (n + r.per - 1) / r.per, moe_rows_chunk, &r);
}

/* The experts' projections for grouped rows [r0, r1): gate/up of every active expert in one
 * dispatch, SwiGLU, down in one dispatch. */
static void run_experts(cpu_backend *b, const layer_weights *L, int r0, int r1) {
    const model_config *c = &b->m->cfg;
    moe_scratch *s = &b->moe;
    int H = c->hidden_size, I = c->moe_intermediate_size, E = c->n_experts;
    for (int e = 0; e < E; e++) {
        if (!s->count[e]) continue;
        size_t r = (size_t)s->first[e];
        mm_add(b, s->xe + r * H, H, s->count[e], &L->egate[e], s->ge + r * I, I);
        mm_add(b, s->xe + r * H, H, s->count[e], &L->eup[e], s->ue + r * I, I);
    }
    mm_run(b);
    moe_rows_run(b, MOE_SWIGLU, r0, r1 - r0);
    for (int e = 0; e < E; e++) {
        if (!s->count[e]) continue;
        size_t r = (size_t)s->first[e];
        mm_add(b, s->ge + r * I, I, s->count[e], &L->edown[e], s->ye + r * H, H);
    }
    mm_run(b);
}

void moe_forward(cpu_backend *b) {
    const model_config *c = &b->m->cfg;
    const layer_weights *L = &b->m->layers[b->layer];
    moe_scratch *s = &b->moe;
    const int T = b->batch->n_tokens, E = c->n_experts, K = c->n_experts_used, H = c->hidden_size;

    mm_add(b, b->xn, H, T, &L->router, s->logits, E);
    mm_run(b);
    for (int t = 0; t < T; t++)
        route_token(c, s->logits + (size_t)t * E, s->pick + (size_t)t * K, s->weight + (size_t)t * K);
    phase_end(b, PH_ROUTER);

    if (s->ungrouped) {
        /* the baseline: each token's experts on their own (weights read once per token) */
        for (int t = 0; t < T; t++) {
            memset(s->count, 0, (size_t)E * sizeof *s->count);
            for (int k = 0; k < K; k++) {
                int e = s->pick[(size_t)t * K + k];
                s->count[e] = 1;
                s->first[e] = t * K + k;
                s->slot[(size_t)t * K + k] = t * K + k;
                memcpy(s->xe + (size_t)(t * K + k) * H, b->xn + (size_t)t * H, (size_t)H * sizeof(float));
            }
            run_experts(b, L, t * K, t * K + K);
        }
    } else {
        /* group: rows ordered by expert, then by token */
        memset(s->count, 0, (size_t)E * sizeof *s->count);
        for (int i = 0; i < T * K; i++) s->count[s->pick[i]]++;
        int at = 0;
        for (int e = 0; e < E; e++) {
            s->first[e] = at;
            at += s->count[e];
        }
        s->n_pairs = at;
        memset(s->count, 0, (size_t)E * sizeof *s->count);
        for (int i = 0; i < T * K; i++) {
            int e = s->pick[i], r = s->first[e] + s->count[e]++;
            s->slot[i] = r;
            s->slot_token[r] = i / K;
        }
        moe_rows_run(b, MOE_GATHER, 0, s->n_pairs);
        run_experts(b, L, 0, s->n_pairs);
    }
    moe_rows_run(b, MOE_COMBINE, 0, T);
    phase_end(b, PH_EXPERTS);
}
