/* test_constrained.c: constrained decoding through the engine and the sampler, with the
 * built-in model (stories260K, vocabulary 512), steps driven by hand.
 * - the sampler never picks a masked token, for every setting (greedy, temperature, top-k,
 *   top-p, min-p, penalties, logit bias), and sampler_process gives masked ids -inf;
 * - every choice of n > 1 follows the constraint with its own state (each text is checked
 *   by a hand-written recognizer of the choice list / digits pattern, not by the matcher);
 * - a constrained request's tokens are the same alone and among 20 other requests (batch
 *   invariance), and the same when its constraint is already cached by the engine;
 * - the grammar's end finishes the choice with FINISH_STOP, also with ignore_eos;
 * - submit returns the constraint's errors. */
#include <string.h>

#include "forge.h"
#include "sampling/sampler.h"
#include "test.h"

#define DIR "tests/fixtures/stories260K"
enum { MAXT = 600 };

typedef struct {
    int32_t toks[MAXT];
    int n;
    char text[4096];
    size_t len;
    forge_finish_reason fin;
} result;

static void on_event(const forge_event *ev, void *user) {
    result *r = (result *)user + ev->choice;
    if (ev->token >= 0 && r->n < MAXT) r->toks[r->n++] = ev->token;
    if (ev->text_len && r->len + ev->text_len < sizeof r->text) {
        memcpy(r->text + r->len, ev->text, ev->text_len);
        r->len += ev->text_len;
    }
    if (ev->finish) r->fin = ev->finish;
}

static forge_model *g_model;
static forge_tokenizer *g_tok;

static forge_engine *make_engine(void) {
    forge_error err;
    forge_engine *e = forge_engine_create(
        g_model, g_tok, &(forge_engine_params){.manual_step = true, .max_seqs = 32, .n_threads = 1}, &err);
    if (!e) printf("    engine: %s\n", err.msg);
    return e;
}

static void run(forge_engine *e) {
    for (int guard = 0; guard < 100000 && forge_engine_step(e) > 0; guard++) {
    }
}

TEST(sampler_mask_all_settings) {
    int V = 512;
    uint32_t mask[16] = {0};
    int allowed[] = {3, 77, 78, 200, 511};
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) mask[allowed[i] >> 5] |= 1u << (allowed[i] & 31);
    float logits[512];
    uint64_t x = 12345;
    forge_logit_bias bias[] = {{10, 100}, {77, -100}};
    forge_sampling_params ps[] = {
        {.temperature = 0},
        {.temperature = 1},
        {.temperature = 2, .top_k = 3},
        {.temperature = 1, .top_p = 0.5f},
        {.temperature = 1, .min_p = 0.2f},
        {.temperature = 1, .repetition_penalty = 1.5f, .presence_penalty = 1, .frequency_penalty = 1},
        {.temperature = 0.7f, .logit_bias = bias, .n_logit_bias = 2},
    };
    sampler_ws *ws = sampler_ws_create(V);
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        ps[k].has_seed = true;
        ps[k].seed = k;
        int32_t prompt[] = {3, 200, 200};
        sampler *s = sampler_create(&ps[k], V, prompt, 3, 100, NULL);
        sampler_set_mask(s, mask);
        int seen_allowed = 0;
        for (int it = 0; it < 300; it++) {
            for (int i = 0; i < V; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                logits[i] = (float)(x % 2000) / 100.0f - 10;
            }
            logits[10] = 50; /* the best token is masked */
            int32_t t = sampler_sample(s, ws, logits, false, NULL);
            bool ok = (mask[t >> 5] >> (t & 31)) & 1;
            CHECKF(ok, "setting %zu: sampled masked token %d", k, t);
            seen_allowed |= 1 << (t == 3 ? 0 : t == 77 ? 1 : t == 78 ? 2 : t == 200 ? 3 : 4);
            sampler_accept(s, t);
        }
        if (ps[k].temperature >= 1 && !ps[k].top_k && ps[k].top_p == 0 && ps[k].min_p == 0)
            CHECKF(__builtin_popcount((unsigned)seen_allowed) >= 3, "setting %zu: only %x drawn", k, seen_allowed);
        float out[512];
        sampler_process(s, logits, out);
        for (int i = 0; i < V; i++)
            if (!((mask[i >> 5] >> (i & 31)) & 1)) CHECK(out[i] == -INFINITY);
        sampler_free(s);
    }
    sampler_ws_free(ws);
}

/* digits: [0-9]{3} "-" ("a" | "bc") */
static bool is_code(const char *s, size_t n) {
    if (n != 5 && n != 6) return false;
    for (int i = 0; i < 3; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    if (s[3] != '-') return false;
    return (n == 5 && s[4] == 'a') || (n == 6 && s[4] == 'b' && s[5] == 'c');
}

TEST(n_choices_each_constrained) {
    forge_engine *e = make_engine();
    if (!e) return;
    const char *re = "[0-9]{3}-(a|bc)";
    static result res[8];
    memset(res, 0, sizeof res);
    forge_request_params p = {.prompt = "Once upon a time", .prompt_len = 16, .add_special_tokens = true, .n = 8,
                              .sampling = {.temperature = 1.5f, .has_seed = true, .seed = 7}, .max_tokens = 50,
                              .constraint = {.kind = FORGE_CONSTRAINT_REGEX, .text = re, .len = strlen(re)}};
    forge_error err;
    forge_request *r = forge_engine_submit(e, &p, on_event, res, &err);
    CHECKF(r != NULL, "%s", err.msg);
    run(e);
    int distinct = 0;
    for (int i = 0; i < 8; i++) {
        CHECKF(is_code(res[i].text, res[i].len), "choice %d: '%.*s'", i, (int)res[i].len, res[i].text);
        CHECK_EQ_INT(res[i].fin, FORGE_FINISH_STOP);
        bool dup = false;
        for (int j = 0; j < i; j++) dup |= res[j].len == res[i].len && !memcmp(res[j].text, res[i].text, res[i].len);
        distinct += !dup;
    }
    CHECKF(distinct >= 3, "only %d distinct answers among 8", distinct);
    forge_request_release(r);
    /* ignore_eos: the grammar's end still ends the choice */
    memset(res, 0, sizeof res);
    const char *ch = "[\"alpha\",\"beta\"]";
    p.n = 2;
    p.ignore_eos = true;
    p.constraint = (forge_constraint){.kind = FORGE_CONSTRAINT_CHOICE, .text = ch, .len = strlen(ch)};
    r = forge_engine_submit(e, &p, on_event, res, &err);
    run(e);
    for (int i = 0; i < 2; i++) {
        CHECKF((res[i].len == 5 && !memcmp(res[i].text, "alpha", 5)) || (res[i].len == 4 && !memcmp(res[i].text, "beta", 4)),
               "choice %d: '%.*s'", i, (int)res[i].len, res[i].text);
        CHECK_EQ_INT(res[i].fin, FORGE_FINISH_STOP);
    }
    forge_request_release(r);
    forge_engine_free(e);
}

TEST(batch_invariance_and_cache) {
    const char *schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"maxLength\":6},"
                         "\"b\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"maxItems\":3}},\"required\":[\"a\",\"b\"]}";
    forge_request_params p = {.prompt = "Once upon a time", .prompt_len = 16, .add_special_tokens = true,
                              .sampling = {.temperature = 1.0f, .top_k = 50, .has_seed = true, .seed = 11}, .max_tokens = 300,
                              .constraint = {.kind = FORGE_CONSTRAINT_JSON_SCHEMA, .text = schema, .len = strlen(schema)}};
    static result alone, again, crowd[21];
    memset(&alone, 0, sizeof alone);
    memset(&again, 0, sizeof again);
    memset(crowd, 0, sizeof crowd);
    forge_error err;
    forge_engine *e = make_engine();
    if (!e) return;
    forge_request *r = forge_engine_submit(e, &p, on_event, &alone, &err);
    CHECKF(r != NULL, "%s", err.msg);
    run(e);
    forge_request_release(r);
    /* the same constraint again: its compiled form and mask caches come from the engine */
    r = forge_engine_submit(e, &p, on_event, &again, &err);
    run(e);
    forge_request_release(r);
    forge_engine_free(e);
    CHECK_EQ_INT(alone.fin, FORGE_FINISH_STOP);
    CHECK(alone.len > 10 && alone.text[0] == '{');
    CHECK(again.n == alone.n && !memcmp(again.toks, alone.toks, sizeof(int32_t) * (size_t)alone.n));
    /* among 20 others (unconstrained and differently constrained), joining first */
    e = make_engine();
    forge_request *rs[21];
    const char *re = "[a-z ]{1,40}\\.";
    for (int i = 0; i < 21; i++) {
        forge_request_params q = p;
        if (i > 0) {
            q.sampling.seed = 100 + (uint64_t)i;
            q.constraint = i % 2 ? (forge_constraint){0}
                                 : (forge_constraint){.kind = FORGE_CONSTRAINT_REGEX, .text = re, .len = strlen(re)};
        }
        rs[i] = forge_engine_submit(e, &q, on_event, &crowd[i], &err);
        CHECKF(rs[i] != NULL, "%s", err.msg);
        if (i == 0) forge_engine_step(e);
    }
    run(e);
    CHECKF(crowd[0].n == alone.n && !memcmp(crowd[0].toks, alone.toks, sizeof(int32_t) * (size_t)alone.n),
           "batched: %d tokens '%.*s' vs alone %d '%.*s'", crowd[0].n, (int)crowd[0].len, crowd[0].text, alone.n,
           (int)alone.len, alone.text);
    for (int i = 2; i < 21; i += 2) {
        bool ok = crowd[i].fin != FORGE_FINISH_STOP || (crowd[i].len >= 2 && crowd[i].text[crowd[i].len - 1] == '.');
        for (size_t k = 0; k + 1 < crowd[i].len; k++) ok &= (crowd[i].text[k] >= 'a' && crowd[i].text[k] <= 'z') || crowd[i].text[k] == ' ';
        CHECKF(ok, "regex request %d: '%.*s'", i, (int)crowd[i].len, crowd[i].text);
    }
    for (int i = 0; i < 21; i++) forge_request_release(rs[i]);
    forge_engine_free(e);
}

TEST(submit_errors) {
    forge_engine *e = make_engine();
    if (!e) return;
    forge_error err;
    struct {
        int kind;
        const char *text, *want;
    } cases[] = {
        {FORGE_CONSTRAINT_JSON_SCHEMA, "{\"type\":\"string\",\"minLength\":\"x\"}", "minLength"},
        {FORGE_CONSTRAINT_JSON_SCHEMA, "{\"type\":\"number\",\"multipleOf\":2}", "multipleOf"},
        {FORGE_CONSTRAINT_GBNF, "root ::= x\n", "'x'"},
        {FORGE_CONSTRAINT_REGEX, "a(?!b)", "lookahead"},
        {99, "", "unknown kind"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        forge_request_params p = {.prompt = "Once", .prompt_len = 4,
                                  .constraint = {.kind = cases[i].kind, .text = cases[i].text, .len = strlen(cases[i].text)}};
        forge_request *r = forge_engine_submit(e, &p, NULL, NULL, &err);
        CHECKF(!r && strstr(err.msg, cases[i].want), "case %zu: %s", i, r ? "accepted" : err.msg);
        forge_request_release(r);
    }
    forge_engine_free(e);
}

TEST(grammar_edges) {
    forge_engine *e = make_engine();
    if (!e) return;
    forge_error err;
    static result res[2];
    memset(res, 0, sizeof res);
    /* complete at the start: one last event, no token */
    const char *empty = "root ::= \"\"\n";
    forge_request_params p = {.prompt = "Once", .prompt_len = 4, .add_special_tokens = true, .max_tokens = 20,
                              .constraint = {.kind = FORGE_CONSTRAINT_GBNF, .text = empty, .len = strlen(empty)}};
    forge_request *r = forge_engine_submit(e, &p, on_event, &res[0], &err);
    CHECKF(r != NULL, "%s", err.msg);
    run(e);
    CHECK_EQ_INT(res[0].fin, FORGE_FINISH_STOP);
    CHECK_EQ_INT(res[0].n, 0);
    CHECK_EQ_INT(res[0].len, 0);
    forge_request_release(r);
    /* a dead end (a class matching nothing after "a"): the choice ends with an error */
    const char *dead = "root ::= \"a\" [^\\x00-\\U0010FFFF]\n";
    p.constraint = (forge_constraint){.kind = FORGE_CONSTRAINT_GBNF, .text = dead, .len = strlen(dead)};
    r = forge_engine_submit(e, &p, on_event, &res[1], &err);
    CHECKF(r != NULL, "%s", err.msg);
    run(e);
    CHECK_EQ_INT(res[1].fin, FORGE_FINISH_ERROR);
    CHECK(res[1].len == 1 && res[1].text[0] == 'a');
    forge_request_release(r);
    forge_engine_free(e);
}

int main(void) {
    forge_error err;
    g_model = forge_model_open(DIR, NULL, &err);
    g_tok = forge_tokenizer_open(DIR, &err);
    if (!g_model || !g_tok) {
        printf("FAIL setup: %s\n0 passed, 1 failed\n", err.msg);
        return 1;
    }
    RUN(sampler_mask_all_settings);
    RUN(n_choices_each_constrained);
    RUN(batch_invariance_and_cache);
    RUN(submit_errors);
    RUN(grammar_edges);
    forge_tokenizer_close(g_tok);
    forge_model_close(g_model);
    return t_summary();
}
