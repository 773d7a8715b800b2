/* engine.c: the engine's API: creation (KV pool sizing), the engine thread, submit and
 * cancel from any thread, request handles, stats. The step itself is in sched.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/sysinfo.h"
#include "engine/engine_int.h"
#include "grammar/matcher.h"
#include "model/model.h"

/* ---- creation ------------------------------------------------------------------------- */


static void add_eos(forge_engine *e, int32_t id) {
    if (id < 0 || id >= e->vocab || e->n_eos >= (int)(sizeof e->eos_ids / sizeof e->eos_ids[0])) return;
    for (int i = 0; i < e->n_eos; i++)
        if (e->eos_ids[i] == id) return;
    e->eos_ids[e->n_eos++] = id;
}

static void *engine_main(void *arg);

forge_engine_params forge_engine_default_params(void) { return (forge_engine_params){0}; }

forge_request_params forge_request_default_params(void) {
    forge_request_params p = {0};
    forge_sampling_params_default(&p.sampling);
    return p;
}

forge_engine *forge_engine_create(forge_model *model, const forge_tokenizer *tok, const forge_engine_params *params,
                                  forge_error *err) {
    if (!model) {
        err_set(err, FORGE_E_INVALID, "no model");
        return NULL;
    }
    forge_engine *e = calloc(1, sizeof *e);
    if (!e) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->gram_lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    e->model = model;
    e->tok = tok;
    const forge_model_info *in = forge_model_get_info(model);
    e->vocab = in->vocab_size;
    e->context_len = in->context_len;
    e->hidden = in->hidden_size;
    if (params) e->p = *params;
    if (e->p.max_seqs <= 0) e->p.max_seqs = 64;
    if (e->p.max_batched_tokens <= 0) { /* the default: 512, and at least a token per sequence */
        e->p.max_batched_tokens = e->p.max_seqs > 512 ? e->p.max_seqs : 512;
    } else if (e->p.max_batched_tokens < e->p.max_seqs) { /* as vLLM: a step must fit every sequence */
        err_set(err, FORGE_E_INVALID,
                "max_batched_tokens (%d) must be at least max_seqs (%d): each step gives every running sequence a token",
                e->p.max_batched_tokens, e->p.max_seqs);
        goto fail;
    }
    if (e->p.max_waiting <= 0) e->p.max_waiting = 1024;
    if (e->p.max_seqs > 4096 || e->p.max_batched_tokens > 65536) {
        err_set(err, FORGE_E_RANGE, "max_seqs (at most 4096) or max_batched_tokens (at most 65536) too large");
        goto fail;
    }

    /* EOS: config.json, generation_config.json and the tokenizer's eos_token, together */
    for (int i = 0; i < in->n_eos_ids; i++) add_eos(e, in->eos_ids[i]);
    forge_generation_config gc;
    if (forge_generation_config_load(model->dir, &gc, err) != FORGE_OK) goto fail;
    for (int i = 0; i < gc.n_eos_ids; i++) add_eos(e, gc.eos_ids[i]);
    if (tok) add_eos(e, forge_tokenizer_get_info(tok)->eos_id);

    /* KV pool: explicit blocks, explicit MB, or a quarter of free memory capped at what
     * max_seqs full-length sequences could use */
    forge_dtype kvd = e->p.kv_dtype;
    if (kvd == FORGE_DTYPE_AUTO) kvd = in->dtype == FORGE_DTYPE_F32 ? FORGE_DTYPE_F32 : FORGE_DTYPE_BF16;
    size_t block_bytes = (size_t)in->n_layers * 2 * in->n_kv_heads * FORGE_KV_BLOCK_TOKENS * in->head_dim *
                         (kvd == FORGE_DTYPE_F32 ? 4 : 2);
    int seq_blocks = (e->context_len + FORGE_KV_BLOCK_TOKENS - 1) / FORGE_KV_BLOCK_TOKENS;
    long long n_blocks = e->p.n_kv_blocks;
    if (n_blocks <= 0 && e->p.kv_cache_mb > 0) n_blocks = (long long)(e->p.kv_cache_mb * 1024 * 1024 / block_bytes);
    forge_context_params cp = {.max_batch_tokens = e->p.max_batched_tokens, .max_logit_rows = e->p.max_seqs + 64,
                               .kv_dtype = kvd, .n_threads = e->p.n_threads, .device = e->p.device,
                               .gpu_memory_utilization = e->p.gpu_memory_utilization};
    if (n_blocks <= 0) {
        /* on a GPU the pool takes what the weights leave of gpu_memory_utilization */
        size_t gpu = forge_context_kv_budget(model, &cp, NULL), avail = gpu ? 0 : sys_mem_available();
        long long cap = (long long)seq_blocks * e->p.max_seqs;
        n_blocks = gpu ? (long long)(gpu / block_bytes) : avail ? (long long)(avail / 4 / block_bytes) : cap;
        if (n_blocks > cap) n_blocks = cap;
        if (n_blocks < seq_blocks) n_blocks = seq_blocks;
    }
    if (n_blocks < seq_blocks) {
        err_set(err, FORGE_E_RANGE,
                "the KV cache (%lld blocks, %.1f MB) cannot hold one sequence of the full context (%d tokens, "
                "%d blocks): raise kv_cache_mb (--kv-cache-mb) or lower max_model_len (--max-model-len)",
                n_blocks, n_blocks * (double)block_bytes / 1e6, e->context_len, seq_blocks);
        goto fail;
    }
    if (n_blocks > (1LL << 30)) n_blocks = 1LL << 30;
    log_info("KV cache: %lld blocks of %d tokens (%.1f MB, %s), context %d tokens", n_blocks, FORGE_KV_BLOCK_TOKENS,
             n_blocks * (double)block_bytes / 1e6, kvd == FORGE_DTYPE_F32 ? "f32" : "bf16", e->context_len);

    e->max_logit_rows = e->p.max_seqs + 64; /* room for prompt logprobs rows too */
    cp.n_kv_blocks = (int)n_blocks;
    cp.max_logit_rows = e->max_logit_rows;
    e->ctx = forge_context_create(model, &cp, err);
    if (!e->ctx) goto fail;
    e->kv = kvb_create((int)n_blocks);
    e->ws = sampler_ws_create(e->vocab);
    int T = e->p.max_batched_tokens, S = e->p.max_seqs;
    e->running = calloc((size_t)S, sizeof *e->running);
    e->cap_waiting = 64;
    e->waiting = calloc((size_t)e->cap_waiting, sizeof *e->waiting);
    e->b_tokens = malloc(sizeof(int32_t) * (size_t)T);
    e->b_pos = malloc(sizeof(int32_t) * (size_t)T);
    e->b_seq = malloc(sizeof(int32_t) * (size_t)T);
    e->b_rows = malloc(sizeof(int32_t) * (size_t)T);
    e->b_rs = malloc(sizeof *e->b_rs * (size_t)T);
    e->b_nblocks = malloc(sizeof(int32_t) * (size_t)S);
    e->b_tables = malloc(sizeof *e->b_tables * (size_t)S);
    e->b_seqs = malloc(sizeof *e->b_seqs * (size_t)S);
    e->b_count = malloc(sizeof(int) * (size_t)S);
    e->b_logit_base = malloc(sizeof(int) * (size_t)S);
    if (!e->kv || !e->ws || !e->running || !e->waiting || !e->b_tokens || !e->b_pos || !e->b_seq || !e->b_rows || !e->b_rs ||
        !e->b_nblocks || !e->b_tables || !e->b_seqs || !e->b_count || !e->b_logit_base) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        goto fail;
    }
    e->stats.kv_blocks_total = e->pub_stats.kv_blocks_total = (int)n_blocks;
    if (!e->p.manual_step) {
        if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
            err_set(err, FORGE_E_NOMEM, "cannot start the engine thread");
            goto fail;
        }
        e->has_thread = true;
    }
    return e;
fail:
    forge_engine_free(e);
    return NULL;
}

/* ---- requests ------------------------------------------------------------------------- */

static void seq_release(seq *s) {
    free(s->tokens);
    free(s->blocks);
    sampler_free(s->smp);
    if (s->detok) forge_detok_free(s->detok);
    stop_free(s->stop);
    sb_free(&s->text);
    free(s->prompt_lp);
    free(s->emb);
}

static void request_free(forge_request *r) {
    engine_constraint_free(r); /* nothing left when the engine finished the request */
    engine_constraint_free_masks(r);
    for (int i = 0; i < r->n_seqs; i++) seq_release(&r->seqs[i]);
    free(r->seqs);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->stop_ids);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->cb_lock);
    pthread_cond_destroy(&r->done_cond);
    free(r);
}

static void request_unref(forge_request *r) {
    if (atomic_fetch_sub(&r->refs, 1) == 1) request_free(r);
}

static uint64_t child_seed(uint64_t seed, int i) {
    if (i == 0) return seed; /* choice 0 of n equals the single-choice result */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    return z ^ (z >> 31);
}

static forge_status setup_seq(forge_engine *e, forge_request *r, int i, const int32_t *prompt, int n_prompt,
                              const forge_request_params *p, forge_error *err) {
    seq *s = &r->seqs[i];
    s->req = r;
    s->index = i;
    s->stop_index = -1;
    s->n_prompt = s->n_tokens = n_prompt;
    s->cap_tokens = n_prompt + 16;
    s->tokens = malloc(sizeof(int32_t) * (size_t)s->cap_tokens);
    s->cap_blocks = (e->context_len + FORGE_KV_BLOCK_TOKENS - 1) / FORGE_KV_BLOCK_TOKENS + 1;
    s->blocks = malloc(sizeof(int32_t) * (size_t)s->cap_blocks);
    s->stop = stop_create((const char *const *)r->stop, r->n_stop);
    if (!s->tokens || !s->blocks || !s->stop) return err_set(err, FORGE_E_NOMEM, "out of memory");
    memcpy(s->tokens, prompt, sizeof(int32_t) * (size_t)n_prompt);
    forge_sampling_params sp = p->sampling;
    sp.has_seed = true;
    sp.seed = child_seed(r->seed0, i);
    int max_new = r->max_tokens < e->context_len ? r->max_tokens : e->context_len;
    s->smp = sampler_create(&sp, e->vocab, prompt, n_prompt, max_new, err);
    if (!s->smp) return err ? err->code : FORGE_E_NOMEM;
    if (r->min_tokens > 0) sampler_set_min_tokens(s->smp, r->min_tokens, r->stop_ids, r->n_stop_ids);
    if (e->tok) {
        s->detok = forge_detok_create(e->tok, p->keep_special_tokens ? 0 : FORGE_DECODE_SKIP_SPECIAL, err);
        if (!s->detok) return err ? err->code : FORGE_E_NOMEM;
        forge_status st = forge_detok_prime(s->detok, prompt, (size_t)n_prompt, err);
        if (st) return st;
    }
    if (p->prompt_logprobs) {
        s->prompt_lp = malloc(sizeof(float) * (size_t)n_prompt);
        if (!s->prompt_lp) return err_set(err, FORGE_E_NOMEM, "out of memory");
        for (int k = 0; k < n_prompt; k++) s->prompt_lp[k] = NAN;
    }
    if (p->embedding) {
        s->emb = malloc(sizeof(float) * (size_t)e->hidden);
        if (!s->emb) return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    s->hold = i > 0 && !e->p.no_prefix_caching; /* share choice 0's prompt blocks */
    return FORGE_OK;
}

forge_request *forge_engine_submit(forge_engine *e, const forge_request_params *p, forge_event_cb cb, void *user,
                                   forge_error *err) {
    if (!e || !p) {
        err_set(err, FORGE_E_INVALID, "forge_engine_submit: %s is NULL", !e ? "the engine" : "the request params");
        return NULL;
    }
    if ((p->n_stop > 0 && !p->stop) || (p->n_stop_token_ids > 0 && !p->stop_token_ids) ||
        (p->n_prompt_ids > 0 && !p->prompt_ids && !p->prompt) || (p->prompt_len > 0 && !p->prompt)) {
        err_set(err, FORGE_E_INVALID, "forge_engine_submit: %s", p->n_stop > 0 && !p->stop ? "n_stop > 0 but stop is NULL"
                                      : p->n_stop_token_ids > 0 && !p->stop_token_ids ? "n_stop_token_ids > 0 but stop_token_ids is NULL"
                                      : p->prompt_len > 0 && !p->prompt ? "prompt_len > 0 but prompt is NULL"
                                                                        : "n_prompt_ids > 0 but prompt_ids is NULL");
        return NULL;
    }
    forge_tokens ids = {0};
    const int32_t *prompt = p->prompt_ids;
    int n_prompt = p->n_prompt_ids;
    if (p->prompt) {
        if (!e->tok) {
            err_set(err, FORGE_E_INVALID, "a text prompt needs a tokenizer");
            return NULL;
        }
        if (forge_tokenizer_encode(e->tok, p->prompt, p->prompt_len, p->add_special_tokens ? FORGE_ENCODE_ADD_SPECIAL : 0,
                                   &ids, err) != FORGE_OK)
            return NULL;
        prompt = ids.ids;
        n_prompt = (int)ids.n;
    }
    forge_request *r = NULL;
    forge_status st = FORGE_OK;
    int n = p->n > 0 ? p->n : 1;
    if (n_prompt <= 0 || (!prompt && n_prompt > 0)) {
        st = err_set(err, FORGE_E_INVALID, "the prompt is empty");
        goto out;
    }
    if (n_prompt >= e->context_len) {
        st = err_set(err, FORGE_E_RANGE, "the prompt has %d tokens; the context holds %d (prompt and output)", n_prompt,
                     e->context_len);
        goto out;
    }
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= e->vocab) {
            st = err_set(err, FORGE_E_INVALID, "prompt token %d is %d, outside the vocabulary (0..%d)", i, prompt[i],
                         e->vocab - 1);
            goto out;
        }
    if (p->min_tokens < 0 || n > 128 || p->n < 0 || (p->max_tokens > 0 && p->min_tokens > p->max_tokens)) {
        st = err_set(err, FORGE_E_INVALID, "request params: need 0 <= min_tokens <= max_tokens (when max_tokens > 0) "
                                           "and 0 <= n <= 128 (min_tokens %d, max_tokens %d, n %d)",
                     p->min_tokens, p->max_tokens, p->n);
        goto out;
    }
    if (p->embedding && (n != 1 || p->logprobs || p->prompt_logprobs || p->constraint.kind)) {
        st = err_set(err, FORGE_E_INVALID, "an embedding request takes n = 1, no logprobs and no constraint (n %d%s%s%s)",
                     n, p->logprobs ? ", logprobs" : "", p->prompt_logprobs ? ", prompt_logprobs" : "",
                     p->constraint.kind ? ", a constraint" : "");
        goto out;
    }
    if ((st = forge_sampling_params_check(&p->sampling, e->vocab, err))) goto out;
    r = calloc(1, sizeof *r);
    if (!r) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    atomic_init(&r->refs, 2); /* the caller's handle and the engine's */
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&r->cb_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&r->done_cond, NULL);
    r->e = e;
    r->cb = cb;
    r->user = user;
    r->max_tokens = p->max_tokens > 0 ? p->max_tokens : e->context_len;
    r->min_tokens = p->min_tokens;
    r->ignore_eos = p->ignore_eos;
    r->logprobs = p->logprobs;
    r->prompt_logprobs = p->prompt_logprobs;
    r->embedding = p->embedding;
    r->n_seqs = n;
    r->seed0 = p->sampling.has_seed ? p->sampling.seed : 0;
    if (!p->sampling.has_seed) {
        /* draw one seed for the request; choices derive theirs from it */
        sampler *tmp = sampler_create(&p->sampling, e->vocab, NULL, 0, 0, NULL);
        r->seed0 = tmp ? sampler_seed(tmp) : 0;
        sampler_free(tmp);
    }
    r->stop = calloc((size_t)(p->n_stop > 0 ? p->n_stop : 1), sizeof *r->stop);
    int n_ids = p->n_stop_token_ids + (p->ignore_eos ? 0 : e->n_eos);
    r->stop_ids = malloc(sizeof(int32_t) * (size_t)(n_ids > 0 ? n_ids : 1));
    r->seqs = calloc((size_t)n, sizeof *r->seqs);
    if (!r->stop || !r->stop_ids || !r->seqs) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < p->n_stop; i++) {
        if (!p->stop[i]) continue;
        r->stop[r->n_stop] = strdup(p->stop[i]);
        if (!r->stop[r->n_stop++]) {
            st = err_set(err, FORGE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    for (int i = 0; i < p->n_stop_token_ids; i++) r->stop_ids[r->n_stop_ids++] = p->stop_token_ids[i];
    /* the banned list for min_tokens is the stop ids plus EOS: kept after the stop ids */
    int n_stop_only = r->n_stop_ids;
    if (!p->ignore_eos)
        for (int i = 0; i < e->n_eos; i++) r->stop_ids[n_stop_only + i] = e->eos_ids[i];
    for (int i = 0; i < n; i++) {
        if ((st = setup_seq(e, r, i, prompt, n_prompt, p, err))) goto out;
        if (r->min_tokens > 0)
            sampler_set_min_tokens(r->seqs[i].smp, r->min_tokens, r->stop_ids, n_stop_only + (p->ignore_eos ? 0 : e->n_eos));
    }
    if ((st = engine_constraint_setup(e, r, p, err))) goto out;
    r->t_arrival = engine_now_ms();

    pthread_mutex_lock(&e->lock);
    if (e->stopping) st = err_set(err, FORGE_E_CANCELLED, "the engine is shutting down");
    else if (atomic_load(&e->n_pending) + n > e->p.max_waiting)
        st = err_set(err, FORGE_E_BUSY, "the queue is full (%d waiting)", atomic_load(&e->n_pending));
    if (!st) {
        atomic_fetch_add(&e->n_pending, n);
        if (e->incoming_tail) e->incoming_tail->next_incoming = r;
        else e->incoming_head = r;
        e->incoming_tail = r;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->lock);
out:
    forge_tokens_free(&ids);
    if (st && r) {
        request_free(r);
        r = NULL;
    }
    return r;
}

/* Lock order: r->lock, then e->lock. r->e is cleared under r->lock when the request
 * finishes, and the engine finishes every request before it is freed, so a cancel that
 * finds r->e set may use the engine until it unlocks r->lock. */
void forge_request_cancel(forge_request *r) {
    if (!r) return;
    atomic_store(&r->cancel, true);
    pthread_mutex_lock(&r->lock);
    forge_engine *e = r->done ? NULL : r->e;
    if (e) {
        pthread_mutex_lock(&e->lock);
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->lock);
    }
    pthread_mutex_unlock(&r->lock);
}

void forge_request_wait(forge_request *r) {
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    while (!r->done) pthread_cond_wait(&r->done_cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

bool forge_request_done(forge_request *r) {
    if (!r) return true;
    pthread_mutex_lock(&r->lock);
    bool done = r->done;
    pthread_mutex_unlock(&r->lock);
    return done;
}

uint64_t forge_request_seed(const forge_request *r) { return r ? r->seed0 : 0; }

/* Cancels, then detaches the callback: taking cb_lock waits for a callback running on the
 * engine thread to return (or, inside a callback, is the engine thread's own lock). */
void forge_request_release(forge_request *r) {
    if (!r) return;
    forge_request_cancel(r);
    pthread_mutex_lock(&r->cb_lock);
    r->cb = NULL;
    r->user = NULL;
    pthread_mutex_unlock(&r->cb_lock);
    request_unref(r);
}

void engine_deliver(forge_request *r, const forge_event *ev) {
    pthread_mutex_lock(&r->cb_lock);
    if (r->cb) r->cb(ev, r->user);
    pthread_mutex_unlock(&r->cb_lock);
}

/* ---- the loop ------------------------------------------------------------------------- */

static void publish_stats(forge_engine *e);

void engine_request_finished(forge_request *r) {
    publish_stats(r->e); /* stats read after forge_request_wait include this request */
    engine_constraint_free(r); /* while the engine (whose cache may hold it) lives */
    pthread_mutex_lock(&r->lock);
    r->done = true;
    r->e = NULL;
    pthread_cond_broadcast(&r->done_cond);
    pthread_mutex_unlock(&r->lock);
    request_unref(r);
}

/* Moves submitted requests into the waiting queue (engine thread only). */
static void take_incoming(forge_engine *e) {
    pthread_mutex_lock(&e->lock);
    forge_request *r = e->incoming_head;
    e->incoming_head = e->incoming_tail = NULL;
    pthread_mutex_unlock(&e->lock);
    for (forge_request *next; r; r = next) {
        next = r->next_incoming;
        if (e->n_waiting + r->n_seqs > e->cap_waiting) {
            int cap = e->cap_waiting;
            while (cap < e->n_waiting + r->n_seqs) cap *= 2;
            seq **w = realloc(e->waiting, sizeof *w * (size_t)cap);
            if (w) {
                e->waiting = w;
                e->cap_waiting = cap;
            }
        }
        for (int i = 0; i < r->n_seqs; i++) {
            r->seqs[i].state = SEQ_WAITING;
            if (e->n_waiting < e->cap_waiting) e->waiting[e->n_waiting++] = &r->seqs[i];
            else seq_finish(e, &r->seqs[i], FORGE_FINISH_ERROR, "out of memory queueing the request");
        }
    }
}

/* Publishes the engine thread's counters for other threads (forge_engine_get_stats). */
static void update_stats(forge_engine *e) {
    double now = engine_now_ms();
    int at = e->rate_at % 64, old = (e->rate_at + 1) % 64;
    e->rate_t[at] = now;
    e->rate_n[at] = e->stats.generated_tokens;
    e->rate_at++;
    if (e->rate_at > 64 && now > e->rate_t[old])
        e->stats.tokens_per_second = (e->stats.generated_tokens - e->rate_n[old]) / ((now - e->rate_t[old]) / 1e3);
    else if (e->rate_at > 1 && now > e->rate_t[0])
        e->stats.tokens_per_second = (e->stats.generated_tokens - e->rate_n[0]) / ((now - e->rate_t[0]) / 1e3);
    publish_stats(e);
}

/* Copies the engine thread's counters where other threads read them. */
static void publish_stats(forge_engine *e) {
    e->stats.running = e->n_running;
    e->stats.waiting = e->n_waiting;
    e->stats.kv_blocks_used = kvb_total(e->kv) - kvb_free_count(e->kv);
    e->stats.kv_blocks_cached = kvb_cached_free_count(e->kv);
    pthread_mutex_lock(&e->lock);
    e->pub_stats = e->stats;
    pthread_mutex_unlock(&e->lock);
}

int forge_engine_step(forge_engine *e) {
    if (!e) return FORGE_E_INVALID;
    take_incoming(e);
    int n = sched_step(e);
    update_stats(e);
    return n;
}

/* Finishes every request left with FINISH_CANCELLED (forge_engine_free). */
static void cancel_all(forge_engine *e) {
    take_incoming(e);
    while (e->n_running) seq_finish(e, e->running[e->n_running - 1], FORGE_FINISH_CANCELLED, "the engine stopped");
    while (e->n_waiting) seq_finish(e, e->waiting[e->n_waiting - 1], FORGE_FINISH_CANCELLED, "the engine stopped");
}

static void *engine_main(void *arg) {
    forge_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        while (!e->stopping && !e->incoming_head && e->n_running == 0 && e->n_waiting == 0)
            pthread_cond_wait(&e->wake, &e->lock);
        bool stop = e->stopping;
        pthread_mutex_unlock(&e->lock);
        if (stop) break;
        forge_engine_step(e);
    }
    cancel_all(e); /* the last events, on this thread as every other event */
    return NULL;
}

void forge_engine_free(forge_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    if (e->has_thread) pthread_join(e->thread, NULL); /* the thread cancelled what was left */
    else if (e->kv) cancel_all(e);                     /* manual_step: on the caller's thread */
    forge_context_free(e->ctx);
    kvb_free(e->kv);
    sampler_ws_free(e->ws);
    free(e->running);
    free(e->waiting);
    free(e->b_tokens), free(e->b_pos), free(e->b_seq), free(e->b_rows), free(e->b_rs), free(e->b_nblocks);
    free(e->b_tables), free(e->b_seqs), free(e->b_count), free(e->b_logit_base);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->gram_lock);
    engine_constraint_cache_free(e);
    gvocab_free(e->gvocab);
    gws_free(e->gws);
    pthread_cond_destroy(&e->wake);
    free(e);
}

void forge_engine_get_stats(forge_engine *e, forge_engine_stats *out) {
    if (!out) return;
    if (!e) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&e->lock);
    *out = e->pub_stats;
    pthread_mutex_unlock(&e->lock);
}

int forge_engine_context_len(const forge_engine *e) { return e ? e->context_len : 0; }
