/* engine_int.h: the engine's internal state, shared by engine.c (API, thread, request
 * lifecycle) and sched.c (the step: scheduling, the batched forward, sampling, events). */
#ifndef FORGE_ENGINE_INT_H
#define FORGE_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/strbuf.h"
#include "engine/kv_blocks.h"
#include "forge.h"
#include "sampling/sampler.h"
#include "sampling/stop.h"

typedef enum { SEQ_WAITING, SEQ_RUNNING, SEQ_FINISHED } seq_state;

/* A compiled constraint kept by the engine for requests with the same text (constrain.c). */
enum { ECACHE_SIZE = 8 };
typedef struct econstraint {
    int kind;
    char *text;
    size_t len;
    struct gconstraint *gc;
    int refs; /* requests using it */
    uint64_t last_use;
} econstraint;

/* One choice of a request: its own tokens, KV blocks, sampler, detokenizer, stop matcher. */
typedef struct seq {
    struct forge_request *req;
    int index;
    seq_state state;
    int32_t *tokens; /* prompt, then generated */
    int n_tokens, cap_tokens, n_prompt;
    int n_computed;     /* tokens whose K/V are in the cache */
    int32_t *blocks;    /* block table */
    int n_blocks, cap_blocks;
    int n_committed;    /* leading full blocks registered in the prefix cache */
    int n_cached;       /* prompt tokens served by the prefix cache (first admission) */
    bool admitted_once;
    bool hold;          /* an n > 1 child waiting for choice 0's prefill (to share its blocks) */
    int n_generated;
    sampler *smp;
    forge_detok *detok;
    stop_matcher *stop;
    strbuf text;        /* text released in the current event */
    forge_finish_reason finish;
    int stop_index;
    double t_first, t_done;
    float *prompt_lp; /* prompt logprobs being gathered (n_prompt floats) */
    float *emb;       /* an embedding request's vector (hidden_size floats) */
    bool prompt_lp_sent;
    struct gmatcher *gm; /* constrained decoding (constrain.c): the choice's state, or NULL */
    uint32_t *gmask;     /* its token mask, read by the sampler */
} seq;

struct forge_request {
    forge_engine *e;
    atomic_int refs;
    atomic_bool cancel;
    /* cb and user: the engine reads them under cb_lock while it delivers an event;
     * forge_request_release clears cb under it, so no callback runs once release returns.
     * Recursive: a callback may cancel or release its own request. */
    pthread_mutex_t cb_lock;
    forge_event_cb cb;
    void *user;
    /* copies of what the caller passed */
    char **stop;
    int n_stop;
    int32_t *stop_ids;
    int n_stop_ids;
    int max_tokens, min_tokens;
    bool ignore_eos, logprobs, prompt_logprobs;
    bool embedding; /* prefill only; the last event carries the embedding */
    int top_logprobs;
    seq *seqs;
    int n_seqs, n_finished;
    int n_running; /* of its sequences, how many are running (the scheduler's fair share) */
    double t_arrival;
    uint64_t seed0;
    struct gconstraint *gc; /* the compiled constraint shared by the choices, or NULL */
    forge_engine *engine_for_gc; /* the engine whose constraint cache holds gc (lives longer) */
    struct forge_request *next_incoming;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool done; /* under lock; e is cleared with it (the engine may be freed after) */
};

struct forge_engine {
    forge_model *model;
    const forge_tokenizer *tok;
    forge_context *ctx;
    forge_engine_params p;
    int context_len, vocab, hidden;
    int32_t eos_ids[24];
    int n_eos;
    kv_blocks *kv;
    sampler_ws *ws;
    /* queues (engine thread only): running in admission order; waiting FIFO with
     * preempted sequences put back at the front */
    seq **running;
    int n_running;
    seq **waiting;
    int n_waiting, cap_waiting;
    /* batch scratch, sized once */
    int32_t *b_tokens, *b_pos, *b_seq, *b_rows, *b_nblocks;
    forge_row_sample *b_rs; /* per logit row: a plain greedy or drawn token is chosen where the
                               logits are (the device), else the logits come to the sampler */
    const int32_t **b_tables;
    seq **b_seqs;       /* batch sequence index -> seq */
    int *b_count;       /* tokens scheduled per batch sequence */
    int *b_logit_base;  /* first logit row of each batch sequence, -1 if none */
    int max_logit_rows;
    /* submissions from other threads */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    forge_request *incoming_head, *incoming_tail;
    atomic_int n_pending; /* sequences submitted and never admitted yet, for max_waiting */
    bool stopping;
    pthread_t thread;
    bool has_thread;
    /* constrained decoding: the vocabulary trie and the engine thread's workspace, made at
     * the first constrained submit (under gram_lock) */
    struct gvocab *gvocab;
    struct gws *gws;
    pthread_mutex_t gram_lock;
    econstraint gcache[ECACHE_SIZE]; /* under gram_lock */
    uint64_t gcache_clock;
    /* stats: the engine thread's own, and the copy it publishes under the lock each step */
    forge_engine_stats stats, pub_stats;
    /* tokens generated over recent steps: a ring of (time, total generated) */
    double rate_t[64];
    long long rate_n[64];
    int rate_at;
};

/* engine.c: the request's last sequence has finished: wake waiters, drop the engine's
 * reference (the request may be freed on return). */
void engine_request_finished(forge_request *r);
/* engine.c: delivers one event to the request's callback unless it was released. */
void engine_deliver(forge_request *r, const forge_event *ev);

/* constrain.c: compiles p's constraint for r and gives each choice a matcher and mask
 * (nothing when there is none). */
forge_status engine_constraint_setup(forge_engine *e, forge_request *r, const forge_request_params *p,
                                     forge_error *err);
void engine_constraint_free(forge_request *r);
void engine_constraint_free_masks(forge_request *r);
void engine_constraint_cache_free(forge_engine *e);
/* Fills s's mask before a sample: 0 to sample, 1 when only the end can follow (finish with
 * STOP), -1 on failure (*why says why). */
int engine_constraint_mask(forge_engine *e, seq *s, const char **why);
/* Feeds a sampled (non-stop) token: 0, 1 when only the end can follow now, -1 on failure. */
int engine_constraint_accept(forge_engine *e, seq *s, int32_t token);

/* sched.c */
int sched_step(forge_engine *e);
void seq_finish(forge_engine *e, seq *s, forge_finish_reason why, const char *error);
double engine_now_ms(void);

#endif
