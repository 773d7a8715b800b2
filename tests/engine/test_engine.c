/* The engine: requests that run together give exactly what each gives alone (greedy and
 * seeded sampling, joining at different steps), also when the KV pool is so small that
 * sequences are preempted, and when prompts share long prefixes (prefix cache hits);
 * chunked prefill of a long prompt equals unchunked while running decodes keep gaining one
 * token per step; cancel frees blocks; a soak of random submit/cancel/complete; limits.
 * Steps are driven by hand (manual_step): no timing, no sleeps. Under emulation
 * (t_emulated()) the long prompt is 1000 tokens instead of 3000 and the soak 1500 ops. */
#include <unistd.h>

#include "forge.h"
#include "test.h"

#define DIR "tests/fixtures/stories260K"
enum { MAXTOK = 1200, NREQ = 64 };

typedef struct {
    int32_t toks[MAXTOK];
    int n;
    char text[8192];
    size_t text_len;
    forge_finish_reason fin;
    int events, cached;
} result;

static void on_event(const forge_event *ev, void *user) {
    result *r = (result *)user + ev->choice;
    if (ev->token >= 0 && r->n < MAXTOK) r->toks[r->n++] = ev->token;
    if (ev->text_len && r->text_len + ev->text_len < sizeof r->text) {
        memcpy(r->text + r->text_len, ev->text, ev->text_len);
        r->text_len += ev->text_len;
    }
    if (ev->finish) {
        r->fin = ev->finish;
        r->cached = ev->cached_tokens;
    }
    r->events++;
}

static forge_model *g_model;
static forge_tokenizer *g_tok;

typedef struct {
    int32_t prompt[3100];
    int n_prompt, max_tokens, join_step, n;
    forge_sampling_params sp;
} req_spec;

static forge_engine *make_engine(forge_model *m, int kv_blocks, int budget, bool prefix) {
    forge_error err;
    forge_engine *e = forge_engine_create(m, g_tok, &(forge_engine_params){.manual_step = true, .n_kv_blocks = kv_blocks,
                                                                           .max_batched_tokens = budget, .max_seqs = 64,
                                                                           .no_prefix_caching = !prefix, .n_threads = 1},
                                          &err);
    if (!e) printf("    engine: %s\n", err.msg);
    return e;
}

static forge_request *submit(forge_engine *e, const req_spec *q, result *out) {
    forge_request_params p = {.prompt_ids = q->prompt, .n_prompt_ids = q->n_prompt, .sampling = q->sp,
                              .max_tokens = q->max_tokens, .n = q->n, .ignore_eos = true};
    forge_error err;
    forge_request *r = forge_engine_submit(e, &p, on_event, out, &err);
    if (!r) printf("    submit: %s\n", err.msg);
    return r;
}

static void run_until_idle(forge_engine *e) {
    for (int guard = 0; guard < 100000 && forge_engine_step(e) > 0; guard++) {
    }
}

/* Each request alone on a fresh engine. */
static void run_solo(forge_model *m, const req_spec *q, int n, result *out) {
    for (int i = 0; i < n; i++) {
        forge_engine *e = make_engine(m, 0, 512, false);
        forge_request *r = submit(e, &q[i], &out[i * 4]);
        run_until_idle(e);
        forge_request_release(r);
        forge_engine_free(e);
    }
}

/* All requests on one engine, each joining at its step. Returns the engine's stats. */
static forge_engine_stats run_together(forge_model *m, const req_spec *q, int n, result *out, int kv_blocks, int budget,
                                       bool prefix) {
    forge_engine *e = make_engine(m, kv_blocks, budget, prefix);
    forge_engine_stats st = {0};
    if (!e) return st;
    forge_request *rs[NREQ] = {0};
    int submitted = 0;
    for (int step = 0; step < 100000; step++) {
        for (int i = 0; i < n; i++)
            if (!rs[i] && q[i].join_step <= step) {
                rs[i] = submit(e, &q[i], &out[i * 4]);
                submitted++;
            }
        int done = forge_engine_step(e);
        if (done == 0 && submitted == n) break;
    }
    forge_engine_get_stats(e, &st);
    CHECKF(st.kv_blocks_used == 0, "%d KV blocks still used when idle", st.kv_blocks_used);
    for (int i = 0; i < n; i++) forge_request_release(rs[i]);
    forge_engine_free(e);
    return st;
}

static void compare(const result *solo, const result *together, int n, const char *what) {
    int bad = 0;
    for (int i = 0; i < n * 4; i++) {
        const result *a = &solo[i], *b = &together[i];
        if (a->n != b->n || memcmp(a->toks, b->toks, sizeof(int32_t) * (size_t)a->n) || a->text_len != b->text_len ||
            memcmp(a->text, b->text, a->text_len) || a->fin != b->fin) {
            if (bad++ < 3)
                printf("    %s: request %d choice %d differs (%d vs %d tokens, finish %d vs %d)\n", what, i / 4, i % 4,
                       a->n, b->n, a->fin, b->fin);
        }
    }
    CHECKF(bad == 0, "%s: %d sequences differ from their solo run", what, bad);
}

static req_spec g_q[NREQ];
static result g_solo[NREQ * 4], g_tog[NREQ * 4];

static void make_specs(int shared_prefix) {
    for (int i = 0; i < NREQ; i++) {
        req_spec *q = &g_q[i];
        memset(q, 0, sizeof *q);
        q->n_prompt = shared_prefix + 1 + (int)(t_rand64() % 200);
        for (int k = 0; k < q->n_prompt; k++) q->prompt[k] = k < shared_prefix ? 100 + k % 50 : (int32_t)(3 + t_rand64() % 509);
        q->max_tokens = 1 + (int)(t_rand64() % 60);
        q->join_step = (int)(t_rand64() % 40);
        forge_sampling_params_default(&q->sp);
        if (i % 2) {
            q->sp.temperature = 0.8f;
            q->sp.top_p = 0.9f;
            q->sp.has_seed = true;
            q->sp.seed = 1000 + (uint64_t)i;
        } else {
            q->sp.temperature = 0;
        }
        q->n = i % 16 == 5 ? 3 : 1;
    }
}

TEST(batched_equals_solo) {
    make_specs(0);
    memset(g_solo, 0, sizeof g_solo);
    memset(g_tog, 0, sizeof g_tog);
    run_solo(g_model, g_q, NREQ, g_solo);
    forge_engine_stats st = run_together(g_model, g_q, NREQ, g_tog, 0, 512, true);
    compare(g_solo, g_tog, NREQ, "64 together");
    CHECK(st.preemptions == 0 && st.requests_done == NREQ);
    int n_events = 0;
    for (int i = 0; i < NREQ * 4; i++) n_events += g_tog[i].events;
    CHECK(n_events > NREQ);
    /* the n = 3 requests: choice 0 is what n = 1 gives; other choices differ from it */
    req_spec one = g_q[5];
    one.n = 1;
    result r1[4] = {0};
    run_solo(g_model, &one, 1, r1);
    CHECK(r1[0].n == g_tog[5 * 4].n && !memcmp(r1[0].toks, g_tog[5 * 4].toks, sizeof(int32_t) * (size_t)r1[0].n));

    /* again with a pool so small that sequences get preempted (one full context fits) */
    memset(g_tog, 0, sizeof g_tog);
    st = run_together(g_model, g_q, NREQ, g_tog, 40, 512, true);
    compare(g_solo, g_tog, NREQ, "small pool");
    CHECKF(st.preemptions > 0, "no preemption happened (%lld)", st.preemptions);
    printf("    preemptions with 40 blocks: %lld\n", st.preemptions);
}

TEST(shared_prefixes_hit_the_cache) {
    make_specs(160);
    for (int i = 0; i < NREQ; i++) g_q[i].join_step = 5 * i; /* later requests find earlier blocks */
    memset(g_solo, 0, sizeof g_solo);
    memset(g_tog, 0, sizeof g_tog);
    run_solo(g_model, g_q, 16, g_solo);
    forge_engine_stats st = run_together(g_model, g_q, 16, g_tog, 0, 512, true);
    compare(g_solo, g_tog, 16, "shared prefix");
    CHECKF(st.prefix_hits >= 15 * 160, "prefix hits %lld of %lld", st.prefix_hits, st.prefix_queries);
    int cached = 0;
    for (int i = 1; i < 16; i++) cached += g_tog[i * 4].cached;
    CHECK(cached >= 15 * 160);
    printf("    prefix hits: %lld of %lld prompt tokens\n", st.prefix_hits, st.prefix_queries);
}

/* One greedy request of 4 tokens to the end on e; out[choice].cached tells its cache hits. */
static void run_one(forge_engine *e, const int32_t *ids, int n, int n_choices, result *out) {
    static req_spec q;
    memset(&q, 0, sizeof q);
    memcpy(q.prompt, ids, sizeof(int32_t) * (size_t)n);
    q.n_prompt = n;
    q.max_tokens = 4;
    q.n = n_choices;
    forge_sampling_params_default(&q.sp);
    q.sp.temperature = 0;
    memset(out, 0, sizeof(result) * 4);
    forge_request *r = submit(e, &q, out);
    run_until_idle(e);
    forge_request_release(r);
}

/* Hit counts, not just outputs (issue 21: after a hit on its first block, a sequence's later
 * blocks were never registered, so every chat sharing a system prompt missed from then on). */
TEST(prefix_cache_hit_counts) {
    forge_engine *e = make_engine(g_model, 0, 512, true);
    static int32_t a[200], b[200], c[200], turn2[200];
    for (int i = 0; i < 81; i++) {
        a[i] = 3 + (i * 7) % 500;
        b[i] = i < 16 ? a[i] : 3 + (i * 11 + 5) % 500;
        c[i] = 3 + (i * 13 + 1) % 500;
    }
    result r[4];
    run_one(e, a, 81, 1, r);
    CHECK_EQ_INT(r[0].cached, 0);
    run_one(e, a, 81, 1, r); /* repeated: everything but the last token */
    CHECK_EQ_INT(r[0].cached, 80);
    run_one(e, b, 81, 1, r); /* shares only the first block with a */
    CHECK_EQ_INT(r[0].cached, 16);
    run_one(e, b, 81, 1, r); /* its own blocks were registered after that hit */
    CHECK_EQ_INT(r[0].cached, 80);
    /* b's next turn: its prompt, the answer, more text */
    memcpy(turn2, b, sizeof(int32_t) * 81);
    for (int i = 0; i < 4; i++) turn2[81 + i] = r[0].toks[i];
    for (int i = 85; i < 120; i++) turn2[i] = 3 + (i * 5) % 500;
    run_one(e, turn2, 120, 1, r); /* 5 blocks, and 4 tokens of the partial block b left */
    CHECK_EQ_INT(r[0].cached, 84);
    run_one(e, turn2, 120, 1, r); /* that turn's own 7 blocks, then 7 of its partial tail */
    CHECK_EQ_INT(r[0].cached, 119);
    /* n = 3: the other choices wait for choice 0's prompt and hit all of it */
    run_one(e, c, 81, 3, r);
    CHECK(r[0].cached == 0 && r[1].cached == 80 && r[2].cached == 80);
    run_one(e, c, 81, 1, r);
    CHECK_EQ_INT(r[0].cached, 80);
    forge_engine_stats st;
    forge_engine_get_stats(e, &st);
    CHECK_EQ_INT(st.kv_blocks_used, 0);
    forge_engine_free(e);
    /* chunked prefill (a step budget of 32 tokens): every block is registered as it fills */
    forge_error err;
    e = forge_engine_create(g_model, g_tok,
                            &(forge_engine_params){.manual_step = true, .max_seqs = 4, .max_batched_tokens = 32,
                                                   .n_threads = 1}, &err);
    CHECKF(e, "%s", err.msg);
    run_one(e, a, 81, 1, r);
    CHECK_EQ_INT(r[0].cached, 0);
    run_one(e, a, 81, 1, r);
    CHECK_EQ_INT(r[0].cached, 80);
    run_one(e, b, 81, 1, r);
    CHECK_EQ_INT(r[0].cached, 16);
    run_one(e, b, 81, 1, r);
    CHECK_EQ_INT(r[0].cached, 80);
    forge_engine_free(e);
}

static bool same_tokens(const result *a, const result *b) {
    return a->n == b->n && !memcmp(a->toks, b->toks, sizeof(int32_t) * (size_t)a->n);
}

/* Token-granular reuse (issue 21): a prompt sharing only part of a block with earlier
 * content gets those tokens' K/V copied from it (a repeated short prompt, a stem, the partial
 * tail a finished request left, a block a running request still holds), the cached counts
 * say so, and every output equals an engine without prefix caching. */
TEST(partial_blocks_reused_token_by_token) {
    forge_engine *e = make_engine(g_model, 0, 512, true), *plain = make_engine(g_model, 0, 512, false);
    static int32_t p[64], q[64];
    for (int i = 0; i < 64; i++) p[i] = 3 + (i * 17 + 2) % 500;
    result r[4], ref[4], first[4];
    run_one(e, p, 13, 1, first);
    CHECK_EQ_INT(first[0].cached, 0);
    run_one(plain, p, 13, 1, ref);
    CHECK(same_tokens(first, ref));
    run_one(e, p, 13, 1, r); /* repeated: all but the last token, from the first run's block */
    CHECK_EQ_INT(r[0].cached, 12);
    CHECK(same_tokens(r, ref));
    memcpy(q, p, sizeof(int32_t) * 9); /* a 9-token stem */
    for (int i = 9; i < 13; i++) q[i] = 400 + i;
    run_one(e, q, 13, 1, r);
    CHECK_EQ_INT(r[0].cached, 9);
    run_one(plain, q, 13, 1, ref);
    CHECK(same_tokens(r, ref));
    /* 40 tokens: the first block's 16 are p[0..13) and the answer's first 3: the match runs
     * as far as they agree with p */
    int32_t had[16];
    memcpy(had, p, sizeof(int32_t) * 13);
    memcpy(had + 13, first[0].toks, sizeof(int32_t) * 3);
    int want = 0;
    while (want < 16 && had[want] == p[want]) want++;
    run_one(e, p, 40, 1, r);
    CHECK_EQ_INT(r[0].cached, want);
    run_one(plain, p, 40, 1, ref);
    CHECK(same_tokens(r, ref));
    /* two full blocks, then 5 tokens of the 11 that run left in its third block */
    memcpy(q, p, sizeof(int32_t) * 37);
    for (int i = 37; i < 40; i++) q[i] = 450 + i;
    run_one(e, q, 40, 1, r);
    CHECK_EQ_INT(r[0].cached, 37);
    run_one(plain, q, 40, 1, ref);
    CHECK(same_tokens(r, ref));
    /* the source block held by a running request: copied, the runner undisturbed */
    static req_spec longq;
    memset(&longq, 0, sizeof longq);
    memcpy(longq.prompt, p, sizeof(int32_t) * 40);
    longq.n_prompt = 40;
    longq.max_tokens = 40;
    forge_sampling_params_default(&longq.sp);
    longq.sp.temperature = 0;
    static result lr[4], lref[4];
    memset(lr, 0, sizeof lr);
    forge_request *lq = submit(e, &longq, lr);
    for (int i = 0; i < 5; i++) forge_engine_step(e);
    memcpy(q, p, sizeof(int32_t) * 10);
    for (int i = 10; i < 14; i++) q[i] = 420 + i;
    run_one(e, q, 14, 1, r); /* runs beside the long one to its end */
    CHECK_EQ_INT(r[0].cached, 10);
    run_one(plain, q, 14, 1, ref);
    CHECK(same_tokens(r, ref));
    run_until_idle(e);
    forge_request_release(lq);
    memset(lref, 0, sizeof lref);
    forge_request *lp = submit(plain, &longq, lref);
    run_until_idle(plain);
    forge_request_release(lp);
    CHECK(lr[0].n == 40 && same_tokens(lr, lref));
    forge_engine_stats st;
    forge_engine_get_stats(e, &st);
    CHECK_EQ_INT(st.kv_blocks_used, 0);
    forge_engine_free(e);
    forge_engine_free(plain);
}

/* Fairness (issue 21): a request with n = 32 fills every slot (max_seqs 8) for 150 steps; a
 * 4-token request submitted later finishes within a few steps (counted, not timed), and the
 * big request's choices are still exactly what they are alone. */
TEST(fair_share_for_a_late_short_request) {
    static req_spec big, small;
    memset(&big, 0, sizeof big);
    memset(&small, 0, sizeof small);
    for (int i = 0; i < 20; i++) big.prompt[i] = 3 + (i * 17) % 500, small.prompt[i] = 3 + (i * 29) % 500;
    big.n_prompt = small.n_prompt = 20;
    big.max_tokens = 150;
    big.n = 32;
    small.max_tokens = 4;
    small.n = 1;
    forge_sampling_params_default(&big.sp);
    big.sp.temperature = 0.8f;
    big.sp.has_seed = true;
    big.sp.seed = 7;
    forge_sampling_params_default(&small.sp);
    small.sp.temperature = 0;
    static result alone[32], together[32], short_r[4];
    forge_error err;
    forge_engine_params ep = {.manual_step = true, .max_seqs = 8, .n_threads = 1};
    /* alone */
    forge_engine *e = forge_engine_create(g_model, g_tok, &ep, &err);
    CHECKF(e, "%s", err.msg);
    memset(alone, 0, sizeof alone);
    forge_request *r = submit(e, &big, alone);
    run_until_idle(e);
    forge_request_release(r);
    forge_engine_free(e);
    /* the short one arrives after 10 steps */
    e = forge_engine_create(g_model, g_tok, &ep, &err);
    memset(together, 0, sizeof together);
    memset(short_r, 0, sizeof short_r);
    r = submit(e, &big, together);
    for (int i = 0; i < 10; i++) forge_engine_step(e);
    forge_request *rs = submit(e, &small, short_r);
    int steps = 0;
    while (!short_r[0].fin && steps < 1000) {
        forge_engine_step(e);
        steps++;
    }
    CHECKF(short_r[0].fin == FORGE_FINISH_LENGTH && short_r[0].n == 4, "the short request: finish %d, %d tokens",
           short_r[0].fin, short_r[0].n);
    CHECKF(steps <= 6, "the short request took %d steps (a prefill and 4 tokens need 5)", steps);
    run_until_idle(e);
    forge_engine_stats st;
    forge_engine_get_stats(e, &st);
    CHECK(st.fair_preemptions >= 1);
    forge_request_release(rs);
    forge_request_release(r);
    forge_engine_free(e);
    int differ = 0;
    for (int c = 0; c < 32; c++)
        differ += alone[c].n != together[c].n || memcmp(alone[c].toks, together[c].toks, sizeof(int32_t) * (size_t)alone[c].n);
    CHECKF(differ == 0, "%d of the big request's choices differ from its run alone", differ);
    printf("    the short request finished in %d steps; %lld fair preemption(s)\n", steps, st.fair_preemptions);
}

/* TTFT under load (issue 21): with 8 sequences decoding, a 300-token prompt arriving later
 * shares each step's budget (64 tokens) with them and gets its first token after
 * ceil(300 / (64 - 8)) = 6 steps, while every running sequence keeps gaining a token a step. */
TEST(prefill_shares_the_budget_with_decodes) {
    forge_error err;
    forge_engine *e = forge_engine_create(g_model, g_tok,
                                          &(forge_engine_params){.manual_step = true, .max_seqs = 16,
                                                                 .max_batched_tokens = 64, .n_threads = 1}, &err);
    CHECKF(e, "%s", err.msg);
    static req_spec run, late;
    memset(&run, 0, sizeof run);
    memset(&late, 0, sizeof late);
    for (int i = 0; i < 10; i++) run.prompt[i] = 3 + i;
    run.n_prompt = 10;
    run.max_tokens = 100;
    run.n = 8;
    forge_sampling_params_default(&run.sp);
    run.sp.temperature = 0;
    for (int i = 0; i < 300; i++) late.prompt[i] = 3 + (i * 31) % 500;
    late.n_prompt = 300;
    late.max_tokens = 2;
    late.n = 1;
    late.sp = run.sp;
    static result rr[8], lr[4];
    memset(rr, 0, sizeof rr);
    memset(lr, 0, sizeof lr);
    forge_request *r1 = submit(e, &run, rr);
    for (int i = 0; i < 4; i++) forge_engine_step(e); /* all 8 decoding */
    int before[8];
    for (int c = 0; c < 8; c++) before[c] = rr[c].n;
    forge_request *r2 = submit(e, &late, lr);
    int steps = 0;
    while (lr[0].n == 0 && steps < 100) {
        forge_engine_step(e);
        steps++;
    }
    CHECKF(steps == 6, "the late prompt's first token came after %d steps (want 6)", steps);
    int stalled = 0;
    for (int c = 0; c < 8; c++) stalled += rr[c].n != before[c] + steps;
    CHECKF(stalled == 0, "%d running sequences missed a token while the prompt was prefilled", stalled);
    run_until_idle(e);
    forge_request_release(r1);
    forge_request_release(r2);
    forge_engine_free(e);
}

TEST(chunked_prefill_and_running_decodes) {
    /* stories260K with a 4k context (RoPE extends to any position) for a 3000-token prompt */
    char dir[] = "/tmp/forge-ctx4k-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], src[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(realpath(DIR "/model.safetensors", src) && symlink(src, path) == 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":172,\"num_hidden_layers\":5,"
          "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,\"max_position_embeddings\":4096,"
          "\"rms_norm_eps\":1e-05,\"tie_word_embeddings\":true,\"torch_dtype\":\"float32\"}", f);
    fclose(f);
    forge_error err;
    forge_model *m = forge_model_open(dir, NULL, &err);
    CHECKF(m, "%s", err.msg);
    if (!m) return;
    static req_spec q[4];
    memset(q, 0, sizeof q);
    for (int i = 0; i < 4; i++) {
        forge_sampling_params_default(&q[i].sp);
        q[i].sp.temperature = 0;
        q[i].n_prompt = i == 0 ? 3000 : 20 + i;
        for (int k = 0; k < q[i].n_prompt; k++) q[i].prompt[k] = (int32_t)(3 + t_rand64() % 509);
        q[i].max_tokens = i == 0 ? 8 : 40;
    }
    int long_prompt = t_emulated() ? 1000 : 3000;
    q[0].n_prompt = long_prompt;
    result alone[4] = {0}, chunked[16] = {0};
    forge_engine *e = make_engine(m, 0, 3072, false); /* unchunked: the whole prompt in one step */
    forge_request *r = submit(e, &q[0], alone);
    CHECK(forge_engine_step(e) == long_prompt);
    run_until_idle(e);
    forge_request_release(r);
    forge_engine_free(e);

    e = make_engine(m, 0, 256, false);
    forge_request *rs[4];
    for (int i = 1; i < 4; i++) rs[i] = submit(e, &q[i], &chunked[i * 4]);
    forge_engine_step(e); /* the three short ones are prefilled and decoding */
    rs[0] = submit(e, &q[0], &chunked[0]);
    int steps = 0, stalls = 0;
    while (chunked[0].n == 0 && steps < 100) {
        int before[4];
        for (int i = 1; i < 4; i++) before[i] = chunked[i * 4].n;
        forge_engine_step(e);
        steps++;
        for (int i = 1; i < 4; i++) stalls += chunked[i * 4].fin == 0 && chunked[i * 4].n != before[i] + 1;
    }
    CHECKF(steps >= long_prompt / 256, "the long prompt took %d steps", steps);
    CHECKF(stalls == 0, "running decodes stalled %d times during the long prefill", stalls);
    run_until_idle(e);
    CHECK(chunked[0].n == alone[0].n && !memcmp(chunked[0].toks, alone[0].toks, sizeof(int32_t) * (size_t)alone[0].n));
    for (int i = 0; i < 4; i++) forge_request_release(rs[i]);
    forge_engine_free(e);
    forge_model_close(m);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}

TEST(cancel_frees_blocks_and_soak) {
    forge_engine *e = make_engine(g_model, 200, 256, true);
    forge_engine_stats st0, st;
    forge_engine_get_stats(e, &st0);
    CHECK(st0.kv_blocks_used == 0);
    static result res[64 * 4];
    static req_spec q;
    forge_request *live[64] = {0};
    int n_ops = t_emulated() ? 1500 : 5000, cancelled = 0, completed = 0;
    for (int op = 0; op < n_ops; op++) {
        int k = (int)(t_rand64() % 64), what = (int)(t_rand64() % 10);
        if (what < 5 && !live[k]) {
            memset(&q, 0, sizeof q);
            forge_sampling_params_default(&q.sp);
            q.sp.temperature = (float)(t_rand64() % 2);
            q.n_prompt = 1 + (int)(t_rand64() % 100);
            for (int i = 0; i < q.n_prompt; i++) q.prompt[i] = (int32_t)(t_rand64() % 512);
            q.max_tokens = 1 + (int)(t_rand64() % 30);
            q.n = 1 + (int)(t_rand64() % 2);
            memset(&res[k * 4], 0, 4 * sizeof(result));
            live[k] = submit(e, &q, &res[k * 4]);
        } else if (what < 7 && live[k]) {
            forge_request_cancel(live[k]);
            cancelled++;
        } else {
            forge_engine_step(e);
        }
        for (int i = 0; i < 64; i++) /* reap finished requests */
            if (live[i] && res[i * 4].fin && (res[i * 4 + 1].fin || res[i * 4 + 1].events == 0)) {
                bool two = res[i * 4 + 1].events > 0;
                if (!two || res[i * 4 + 1].fin) {
                    completed += res[i * 4].fin != FORGE_FINISH_CANCELLED;
                    forge_request_release(live[i]);
                    live[i] = NULL;
                }
            }
    }
    for (int i = 0; i < 64; i++)
        if (live[i]) forge_request_cancel(live[i]);
    run_until_idle(e);
    forge_engine_step(e);
    forge_engine_get_stats(e, &st);
    CHECKF(st.kv_blocks_used == 0 && st.running == 0 && st.waiting == 0, "after the soak: %d blocks used, %d running, %d waiting",
           st.kv_blocks_used, st.running, st.waiting);
    for (int i = 0; i < 64; i++) forge_request_release(live[i]);
    CHECK(cancelled > n_ops / 50 && completed > n_ops / 50);
    printf("    soak: %d ops, %d cancels, %d completed, %lld preemptions\n", n_ops, cancelled, completed, st.preemptions);
    forge_engine_free(e);
}

TEST(limits_at_submit) {
    forge_error err;
    forge_engine *e = forge_engine_create(g_model, g_tok, &(forge_engine_params){.manual_step = true, .max_waiting = 3}, &err);
    static int32_t prompt[600];
    for (int i = 0; i < 600; i++) prompt[i] = 5;
    result res[4];
    forge_request_params p = {.prompt_ids = prompt, .n_prompt_ids = 512, .max_tokens = 4};
    forge_sampling_params_default(&p.sampling);
    CHECK(!forge_engine_submit(e, &p, on_event, res, &err) && err.code == FORGE_E_RANGE && strstr(err.msg, "512"));
    p.n_prompt_ids = 10;
    forge_request *rs[3];
    for (int i = 0; i < 3; i++) CHECK((rs[i] = forge_engine_submit(e, &p, on_event, res, &err)) != NULL);
    CHECK(!forge_engine_submit(e, &p, on_event, res, &err) && err.code == FORGE_E_BUSY);
    forge_engine_step(e); /* admitted: the queue has room again */
    forge_request *r4 = forge_engine_submit(e, &p, on_event, res, &err);
    CHECK(r4 != NULL);
    p.min_tokens = 5; /* more than max_tokens */
    CHECK(!forge_engine_submit(e, &p, on_event, res, &err) && err.code == FORGE_E_INVALID && strstr(err.msg, "min_tokens"));
    p.min_tokens = 0;
    p.max_tokens = 3;
    p.n_prompt_ids = 0;
    CHECK(!forge_engine_submit(e, &p, on_event, res, &err) && strstr(err.msg, "empty"));
    prompt[0] = 512;
    p.n_prompt_ids = 2;
    CHECK(!forge_engine_submit(e, &p, on_event, res, &err) && strstr(err.msg, "vocabulary"));
    for (int i = 0; i < 3; i++) forge_request_release(rs[i]);
    forge_request_release(r4);
    forge_engine_free(e);
    /* a pool that cannot hold one full-length sequence is refused at start */
    e = forge_engine_create(g_model, g_tok, &(forge_engine_params){.manual_step = true, .n_kv_blocks = 31}, &err);
    CHECK(!e && strstr(err.msg, "one sequence"));
    /* a step budget below the sequence count is refused (it used to be raised silently);
     * the default budget grows to fit many sequences */
    e = forge_engine_create(g_model, g_tok,
                            &(forge_engine_params){.manual_step = true, .max_seqs = 32, .max_batched_tokens = 16}, &err);
    CHECK(!e && err.code == FORGE_E_INVALID && strstr(err.msg, "max_batched_tokens (16)") && strstr(err.msg, "max_seqs (32)"));
    e = forge_engine_create(g_model, g_tok, &(forge_engine_params){.manual_step = true, .max_seqs = 600}, &err);
    CHECK(e != NULL);
    forge_engine_free(e);
}

int main(void) {
    forge_error err;
    g_model = forge_model_open(DIR, NULL, &err);
    g_tok = forge_tokenizer_open(DIR, &err);
    if (!g_model || !g_tok) {
        printf("cannot open %s: %s\n", DIR, err.msg);
        return 1;
    }
    RUN(batched_equals_solo);
    RUN(shared_prefixes_hit_the_cache);
    RUN(prefix_cache_hit_counts);
    RUN(partial_blocks_reused_token_by_token);
    RUN(fair_share_for_a_late_short_request);
    RUN(prefill_shares_the_budget_with_decodes);
    RUN(chunked_prefill_and_running_decodes);
    RUN(cancel_frees_blocks_and_soak);
    RUN(limits_at_submit);
    forge_tokenizer_close(g_tok);
    forge_model_close(g_model);
    return t_summary();
}
