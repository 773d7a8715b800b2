/* sched.c: one engine step, as vLLM V1 schedules: every sequence has computed and total
 * tokens; a step hands out a token budget, running sequences first (a decode takes one
 * token, a partly prefilled prompt takes a chunk), then waiting ones, those of the request
 * with the fewest running sequences first, then in arrival order. When KV blocks run out,
 * the newest running sequence is preempted (its blocks freed, to be recomputed later).
 * Fairness: when every slot (max_seqs) is taken and a request that has nothing running
 * waits, the request holding the most slots gives up its newest sequence, so one request
 * with n = 128 (or many prompts) cannot keep a short one out for its whole length
 * (docs/engine.md). The scheduled chunks run as one batched forward; then each sequence
 * that reached its end samples a token, detokenizes and checks its stops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "kernels/kernels.h"

enum { B = FORGE_KV_BLOCK_TOKENS };

double engine_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ---- queues --------------------------------------------------------------------------- */

static void running_remove(forge_engine *e, seq *s) {
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i] == s) {
            s->req->n_running--;
            memmove(e->running + i, e->running + i + 1, (size_t)(e->n_running - i - 1) * sizeof *e->running);
            e->n_running--;
            return;
        }
}

static void waiting_remove(forge_engine *e, seq *s) {
    for (int i = 0; i < e->n_waiting; i++)
        if (e->waiting[i] == s) {
            memmove(e->waiting + i, e->waiting + i + 1, (size_t)(e->n_waiting - i - 1) * sizeof *e->waiting);
            e->n_waiting--;
            return;
        }
}

static void waiting_push_front(forge_engine *e, seq *s) {
    memmove(e->waiting + 1, e->waiting, (size_t)e->n_waiting * sizeof *e->waiting);
    e->waiting[0] = s;
    e->n_waiting++;
}

/* ---- blocks --------------------------------------------------------------------------- */

static void release_blocks(forge_engine *e, seq *s) {
    /* a partial tail with computed K/V stays findable for token-granular reuse */
    int tail = s->n_computed / B, valid = s->n_computed % B;
    if (!e->p.no_prefix_caching && valid > 0 && tail < s->n_blocks)
        kvb_commit_partial(e->kv, s->blocks[tail], tail > 0 ? s->blocks[tail - 1] : -1, s->tokens + (size_t)tail * B, valid);
    /* last blocks first, so that the LRU evicts a prompt's tail before its shared head */
    for (int i = s->n_blocks - 1; i >= 0; i--) kvb_unref(e->kv, s->blocks[i]);
    s->n_blocks = 0;
    s->n_committed = 0;
    s->n_computed = 0;
}

static bool ensure_blocks(forge_engine *e, seq *s, int upto) {
    int need = (upto + B - 1) / B;
    while (s->n_blocks < need) {
        int b = kvb_alloc(e->kv);
        if (b < 0) return false;
        s->blocks[s->n_blocks++] = b;
    }
    return true;
}

/* After the full-block hits: the cached block under `parent` sharing the longest prefix with
 * the next tokens lends that many tokens' K/V, copied into a new block of the sequence's own.
 * Returns the tokens gained (0 on a miss, or when no block can be spared). */
static int match_partial(forge_engine *e, seq *s, int parent) {
    int at = s->n_blocks * B, avail = s->n_tokens - 1 - at, got = 0;
    if (avail <= 0) return 0;
    int src = kvb_match_partial(e->kv, parent, s->tokens + at, avail, &got);
    if (src < 0) return 0;
    kvb_ref(e->kv, src); /* pinned: the allocation below must not evict it */
    int dst = kvb_alloc(e->kv);
    forge_error err;
    if (dst >= 0 && forge_context_copy_kv(e->ctx, src, dst, got, &err) != FORGE_OK) {
        log_debug("engine: partial block not reused: %s", err.msg);
        kvb_unref(e->kv, dst);
        dst = -1;
    }
    kvb_unref(e->kv, src);
    if (dst < 0) return 0;
    s->blocks[s->n_blocks++] = dst;
    return got;
}

/* Takes the longest run of full cached blocks that start the sequence, then the longest
 * partial match of the next block (leaving at least one token to compute, whose logits are
 * needed). */
static void match_prefix(forge_engine *e, seq *s) {
    int max_blocks = (s->n_tokens - 1) / B, parent = -1, hits = 0, partial = 0;
    if (!e->p.no_prefix_caching && !s->req->prompt_logprobs) {
        for (; hits < max_blocks; hits++) {
            int b = kvb_lookup(e->kv, parent, s->tokens + (size_t)hits * B);
            if (b < 0) break;
            kvb_ref(e->kv, b);
            s->blocks[s->n_blocks++] = b;
            parent = b;
        }
        partial = match_partial(e, s, parent);
    }
    s->n_committed = hits; /* blocks, as the commit loop after the forward counts them */
    s->n_computed = hits * B + partial;
    int lookup = s->n_prompt < s->n_tokens ? s->n_tokens : s->n_prompt;
    if (!s->admitted_once) {
        s->n_cached = s->n_computed;
        e->stats.prefix_queries += lookup;
        e->stats.prefix_hits += s->n_computed;
    }
}

static void preempt(forge_engine *e, seq *s) {
    release_blocks(e, s);
    running_remove(e, s);
    s->state = SEQ_WAITING;
    waiting_push_front(e, s);
    e->stats.preemptions++;
    log_debug("engine: preempted a sequence (%d tokens) to free KV blocks", s->n_tokens);
}

/* The waiting sequence to admit next: not held, of the request with the fewest running
 * sequences, the earliest among those. NULL when none. */
static seq *next_waiting(forge_engine *e) {
    seq *best = NULL;
    for (int i = 0; i < e->n_waiting; i++) {
        seq *s = e->waiting[i];
        if (s->hold) continue;
        if (!best || s->req->n_running < best->req->n_running) best = s;
        if (best->req->n_running == 0) break;
    }
    return best;
}

/* Every slot taken while a request with nothing running waits: the request holding the most
 * slots (at least two) gives up its newest running sequence. One per step: the newcomer is
 * admitted in this step, and a further one in the next. */
static void fair_share(forge_engine *e) {
    if (e->n_running < e->p.max_seqs || e->n_waiting == 0) return;
    bool starving = false;
    for (int i = 0; i < e->n_waiting && !starving; i++)
        starving = !e->waiting[i]->hold && e->waiting[i]->req->n_running == 0;
    if (!starving) return;
    forge_request *top = NULL;
    for (int i = 0; i < e->n_running; i++)
        if (!top || e->running[i]->req->n_running > top->n_running) top = e->running[i]->req;
    if (!top || top->n_running < 2) return;
    for (int i = e->n_running - 1; i >= 0; i--)
        if (e->running[i]->req == top) {
            preempt(e, e->running[i]);
            e->stats.fair_preemptions++;
            return;
        }
}

/* ---- finishing ------------------------------------------------------------------------ */

static void fill_usage(forge_event *ev, const seq *s) {
    ev->prompt_tokens = s->n_prompt;
    ev->completion_tokens = s->n_generated;
    ev->cached_tokens = s->n_cached;
    ev->ttft_ms = s->t_first > 0 ? s->t_first - s->req->t_arrival : 0;
    ev->total_ms = s->t_done - s->req->t_arrival;
}

void seq_finish(forge_engine *e, seq *s, forge_finish_reason why, const char *error) {
    if (s->state == SEQ_FINISHED) return;
    if (s->state == SEQ_RUNNING) running_remove(e, s);
    else waiting_remove(e, s);
    if (!s->admitted_once) atomic_fetch_sub(&e->n_pending, 1);
    release_blocks(e, s);
    s->state = SEQ_FINISHED;
    s->finish = why;
    s->t_done = engine_now_ms();
    forge_request *r = s->req;
    if (why != FORGE_FINISH_STOP && why != FORGE_FINISH_LENGTH) {
        /* cancelled or failed: no more text, but the caller hears of it */
        forge_event ev = {.choice = s->index, .token = -1, .finish = why, .stop_index = -1, .error = error, .text = ""};
        fill_usage(&ev, s);
        engine_deliver(r, &ev);
    }
    /* an n > 1 child waits for choice 0's blocks; if choice 0 ends first, let it go */
    if (s->index == 0)
        for (int i = 1; i < r->n_seqs; i++) r->seqs[i].hold = false;
    if (++r->n_finished == r->n_seqs) {
        e->stats.requests_done++;
        engine_request_finished(r); /* r may be gone after this */
    }
}

/* ---- sampling and events -------------------------------------------------------------- */

static bool in_list(const int32_t *ids, int n, int32_t t) {
    for (int i = 0; i < n; i++)
        if (ids[i] == t) return true;
    return false;
}

static bool grow_tokens(seq *s) {
    if (s->n_tokens < s->cap_tokens) return true;
    int cap = s->cap_tokens * 2;
    int32_t *p = realloc(s->tokens, (size_t)cap * sizeof *p);
    if (!p) return false;
    s->tokens = p;
    s->cap_tokens = cap;
    return true;
}

/* Text of a new token into s->text through the detokenizer and the stop matcher; true when
 * a stop string matched. */
static bool push_text(seq *s, int32_t token, bool last) {
    const char *t = "";
    size_t n = 0;
    bool stopped = false;
    if (s->detok && token >= 0) {
        if (forge_detok_push(s->detok, token, &t, &n, NULL) != FORGE_OK) n = 0;
        stopped = stop_feed(s->stop, t, n, &s->text);
    }
    if (!stopped && last) {
        if (s->detok && forge_detok_finish(s->detok, &t, &n, NULL) == FORGE_OK) stopped = stop_feed(s->stop, t, n, &s->text);
        if (!stopped) stop_flush(s->stop, &s->text);
    }
    return stopped;
}

/* A constrained choice whose grammar admits nothing but the end: its last event. */
static void finish_complete(forge_engine *e, seq *s) {
    sb_reset(&s->text);
    push_text(s, -1, true);
    s->t_done = engine_now_ms();
    forge_event ev = {.choice = s->index, .text = sb_str(&s->text), .text_len = s->text.len, .token = -1,
                      .finish = FORGE_FINISH_STOP, .stop_index = -1};
    fill_usage(&ev, s);
    engine_deliver(s->req, &ev);
    seq_finish(e, s, FORGE_FINISH_STOP, NULL);
}

static void handle_token(forge_engine *e, seq *s, const sample_result *res) {
    forge_request *r = s->req;
    int32_t token = res->token;
    if (!grow_tokens(s)) {
        seq_finish(e, s, FORGE_FINISH_ERROR, "out of memory");
        return;
    }
    s->tokens[s->n_tokens++] = token;
    s->n_generated++;
    sampler_accept(s->smp, token);
    e->stats.generated_tokens++;
    if (s->t_first == 0) s->t_first = engine_now_ms();
    sb_reset(&s->text);

    forge_finish_reason fin = FORGE_FINISH_NONE;
    int stop_index = -1;
    bool is_stop_token = (!r->ignore_eos && in_list(e->eos_ids, e->n_eos, token)) || in_list(r->stop_ids, r->n_stop_ids, token);
    bool grammar_done = false; /* constrained: nothing but the end can follow this token */
    if (s->gm && !is_stop_token) {
        int c = engine_constraint_accept(e, s, token);
        if (c < 0) {
            seq_finish(e, s, FORGE_FINISH_ERROR, "the sampled token does not match the constraint");
            return;
        }
        grammar_done = c > 0;
    }
    if (is_stop_token) {
        fin = FORGE_FINISH_STOP; /* the stop token's text is not part of the output */
        push_text(s, -1, true);
    } else {
        bool at_limit = s->n_generated >= r->max_tokens || s->n_tokens >= e->context_len;
        if (push_text(s, token, at_limit || grammar_done)) {
            fin = FORGE_FINISH_STOP;
            stop_index = stop_which(s->stop);
        } else if (grammar_done) {
            fin = FORGE_FINISH_STOP;
        } else if (at_limit) {
            fin = FORGE_FINISH_LENGTH;
        }
    }
    forge_event ev = {.choice = s->index, .text = sb_str(&s->text), .text_len = s->text.len, .token = token,
                      .finish = fin, .stop_index = stop_index};
    if (r->logprobs) {
        ev.logprob = res->logprob;
        ev.n_top = res->n_top;
        ev.top_ids = res->top_ids;
        ev.top_logprobs = res->top_logprobs;
    }
    if (r->prompt_logprobs && !s->prompt_lp_sent) {
        ev.n_prompt_logprobs = s->n_prompt;
        ev.prompt_logprobs = s->prompt_lp;
        s->prompt_lp_sent = true;
    }
    if (fin) {
        s->t_done = engine_now_ms();
        fill_usage(&ev, s);
    }
    engine_deliver(r, &ev);
    if (fin) seq_finish(e, s, fin, NULL);
}

/* An embedding request's prompt is in: its vector is the last prompt token's final-norm
 * hidden state, L2-normalized (in double, then rounded once). */
static void finish_embedding(forge_engine *e, seq *s, int row) {
    const float *h = forge_context_hidden(e->ctx, row);
    if (!h) {
        seq_finish(e, s, FORGE_FINISH_ERROR, "this device does not produce embeddings (the CPU does)");
        return;
    }
    double ss = 0;
    for (int i = 0; i < e->hidden; i++) ss += (double)h[i] * h[i];
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
    for (int i = 0; i < e->hidden; i++) s->emb[i] = (float)(h[i] * inv);
    s->t_first = s->t_done = engine_now_ms();
    forge_event ev = {.choice = s->index, .text = "", .token = -1, .finish = FORGE_FINISH_STOP, .stop_index = -1,
                      .embedding = s->emb, .n_embedding = e->hidden};
    fill_usage(&ev, s);
    engine_deliver(s->req, &ev);
    seq_finish(e, s, FORGE_FINISH_STOP, NULL);
}

/* log-softmax of logits at `token` */
static float logprob_of(const float *logits, int vocab, int32_t token) {
    const kernels *k = kernels_get();
    float m = k->max(logits, vocab);
    return logits[token] - m - logf(k->sum_exp(logits, vocab, m));
}

/* ---- the step ------------------------------------------------------------------------- */

typedef struct {
    int nb, nt, nl; /* batch sequences, tokens, logit rows */
} batch_fill;

static void add_to_batch(forge_engine *e, batch_fill *f, seq *s, int n) {
    int bi = f->nb++;
    e->b_seqs[bi] = s;
    e->b_count[bi] = n;
    e->b_tables[bi] = s->blocks;
    e->b_nblocks[bi] = s->n_blocks;
    bool prompt_rows = s->req->prompt_logprobs && s->n_computed < s->n_prompt;
    e->b_logit_base[bi] = -1;
    for (int j = 0; j < n; j++) {
        int row = f->nt++;
        e->b_tokens[row] = s->tokens[s->n_computed + j];
        e->b_pos[row] = s->n_computed + j;
        e->b_seq[row] = bi;
        bool last = s->n_computed + j == s->n_tokens - 1;
        if (prompt_rows || last) {
            if (e->b_logit_base[bi] < 0) e->b_logit_base[bi] = f->nl;
            /* a row only sampled, by a plain argmax or a plain draw: the token is chosen where
             * the logits are (on a GPU only it comes back); the draw's uniform is taken from
             * the sequence's RNG now, as sampler_sample would take it */
            forge_row_sample *rs = &e->b_rs[f->nl];
            memset(rs, 0, sizeof *rs);
            if (last && !prompt_rows && !s->gm && !s->req->embedding && !s->req->logprobs) {
                if (sampler_plain_greedy(s->smp)) {
                    rs->kind = FORGE_ROW_GREEDY;
                } else if (sampler_plain_draw(s->smp, &rs->temperature, &rs->min_p)) {
                    rs->kind = FORGE_ROW_DRAW;
                    rs->u = sampler_take_uniform(s->smp);
                }
            }
            e->b_rows[f->nl++] = row;
        }
    }
}

/* How many of the wanted tokens a sequence may take given the logit rows left. */
static int cap_for_rows(const forge_engine *e, const seq *s, int n, int rows_left) {
    if (s->req->prompt_logprobs && s->n_computed < s->n_prompt) return n < rows_left ? n : rows_left;
    (void)e;
    return s->n_computed + n == s->n_tokens && rows_left < 1 ? (n > 1 ? n - 1 : 0) : n;
}

int sched_step(forge_engine *e) {
    double t0 = engine_now_ms();
    /* cancellations */
    for (int i = e->n_running - 1; i >= 0; i--)
        if (atomic_load(&e->running[i]->req->cancel)) seq_finish(e, e->running[i], FORGE_FINISH_CANCELLED, NULL);
    for (int i = e->n_waiting - 1; i >= 0; i--)
        if (atomic_load(&e->waiting[i]->req->cancel)) seq_finish(e, e->waiting[i], FORGE_FINISH_CANCELLED, NULL);

    fair_share(e);
    batch_fill f = {0};
    int budget = e->p.max_batched_tokens;
    bool preempted = false;
    /* running sequences first, in admission order */
    for (int i = 0; i < e->n_running && budget > 0; i++) {
        seq *s = e->running[i];
        int n = s->n_tokens - s->n_computed;
        if (n > budget) n = budget;
        n = cap_for_rows(e, s, n, e->max_logit_rows - f.nl);
        if (n <= 0) continue;
        bool ok;
        while (!(ok = ensure_blocks(e, s, s->n_computed + n))) {
            seq *victim = e->running[e->n_running - 1];
            preempt(e, victim);
            preempted = true;
            if (victim == s) break;
        }
        if (!ok) break; /* s itself was the newest: it waits now */
        add_to_batch(e, &f, s, n);
        budget -= n;
    }
    /* then waiting ones: the request with the fewest running sequences first, then first
     * come first served (an n > 1 child may wait for its sibling) */
    while (!preempted && budget > 0 && e->n_running < e->p.max_seqs) {
        seq *s = next_waiting(e);
        if (!s) break;
        if (s->n_blocks == 0) match_prefix(e, s);
        int n = s->n_tokens - s->n_computed;
        if (n > budget) n = budget;
        n = cap_for_rows(e, s, n, e->max_logit_rows - f.nl);
        if (n <= 0 || !ensure_blocks(e, s, s->n_computed + n)) {
            release_blocks(e, s); /* keep nothing while waiting */
            break;
        }
        waiting_remove(e, s);
        e->running[e->n_running++] = s;
        s->req->n_running++;
        s->state = SEQ_RUNNING;
        if (!s->admitted_once) {
            s->admitted_once = true;
            atomic_fetch_sub(&e->n_pending, 1);
            e->stats.prompt_tokens += s->n_prompt;
        }
        add_to_batch(e, &f, s, n);
        budget -= n;
    }
    if (f.nt == 0) {
        e->stats.step_seconds += (engine_now_ms() - t0) * 1e-3;
        return 0;
    }

    forge_batch batch = {.n_tokens = f.nt, .tokens = e->b_tokens, .positions = e->b_pos, .seq = e->b_seq,
                         .n_seqs = f.nb, .block_tables = e->b_tables, .n_blocks = e->b_nblocks, .n_logits = f.nl,
                         .logit_rows = e->b_rows};
    forge_error err;
    double tf = engine_now_ms();
    forge_status st = forge_context_decode_sample(e->ctx, &batch, e->b_rs, &err);
    e->stats.forward_seconds += (engine_now_ms() - tf) * 1e-3;
    if (st != FORGE_OK) {
        log_error("engine: forward failed: %s", err.msg);
        for (int bi = 0; bi < f.nb; bi++) seq_finish(e, e->b_seqs[bi], FORGE_FINISH_ERROR, err.msg);
        return -(int)st;
    }

    for (int bi = 0; bi < f.nb; bi++) {
        seq *s = e->b_seqs[bi];
        if (s->state != SEQ_RUNNING) continue; /* finished by a callback's cancel: ignored */
        int old = s->n_computed, n = e->b_count[bi];
        s->n_computed += n;
        if (!e->p.no_prefix_caching)
            for (; s->n_committed < s->n_computed / B; s->n_committed++) {
                int k = s->n_committed;
                kvb_commit(e->kv, s->blocks[k], k > 0 ? s->blocks[k - 1] : -1, s->tokens + (size_t)k * B);
            }
        if (s->prompt_lp && e->b_logit_base[bi] >= 0)
            for (int j = 0; j < n && old + j + 1 < s->n_prompt; j++)
                s->prompt_lp[old + j + 1] =
                    logprob_of(forge_context_logits(e->ctx, e->b_logit_base[bi] + j), e->vocab, s->tokens[old + j + 1]);
        if (s->index == 0 && s->n_computed >= s->n_prompt)
            for (int c = 1; c < s->req->n_seqs; c++) s->req->seqs[c].hold = false;
        if (s->n_computed < s->n_tokens) continue;
        if (s->gm) {
            const char *why = NULL;
            int c = engine_constraint_mask(e, s, &why);
            if (c < 0) {
                seq_finish(e, s, FORGE_FINISH_ERROR, why);
                continue;
            }
            if (c > 0) { /* complete before any token: the end, with a final flush */
                finish_complete(e, s);
                continue;
            }
        }
        int row = e->b_logit_base[bi] + (s->req->prompt_logprobs && old < s->n_prompt ? n - 1 : 0);
        if (s->req->embedding) {
            finish_embedding(e, s, row);
            continue;
        }
        sample_result res;
        if (e->b_rs[row].kind != FORGE_ROW_LOGITS) {
            memset(&res, 0, sizeof res);
            res.token = forge_context_token(e->ctx, row);
        } else {
            sampler_sample(s->smp, e->ws, forge_context_logits(e->ctx, row), s->req->logprobs, &res);
        }
        handle_token(e, s, &res);
    }
    e->stats.steps++;
    e->stats.step_seconds += (engine_now_ms() - t0) * 1e-3;
    return f.nt;
}
