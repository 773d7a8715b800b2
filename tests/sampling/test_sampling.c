/* Sampling: processors against the Python reference (scripts/sampling/make_goldens.py),
 * kept sets and their probabilities, chi-square of seeded draws, determinism per seed,
 * raw logprobs, parameter checks; stop strings split across tokens. */
#include "base/json.h"
#include "sampling/sampler.h"
#include "sampling/stop.h"
#include "test.h"

static json_doc *g_doc;

static void load_case(const json_value *c, forge_sampling_params *p, forge_logit_bias *bias, float *logits,
                      int32_t *prompt, int *np, int32_t *gen, int *ng) {
    forge_sampling_params_default(p);
    p->temperature = (float)json_number(json_get(c, "temperature"));
    p->top_k = (int)json_number(json_get(c, "top_k"));
    p->top_p = (float)json_number(json_get(c, "top_p"));
    p->min_p = (float)json_number(json_get(c, "min_p"));
    p->repetition_penalty = (float)json_number(json_get(c, "repetition_penalty"));
    p->presence_penalty = (float)json_number(json_get(c, "presence_penalty"));
    p->frequency_penalty = (float)json_number(json_get(c, "frequency_penalty"));
    const json_value *b = json_get(c, "logit_bias");
    p->n_logit_bias = (int)b->n;
    for (size_t i = 0; i < b->n; i++) {
        bias[i].token = (int32_t)json_number(json_at(json_at(b, i), 0));
        bias[i].bias = (float)json_number(json_at(json_at(b, i), 1));
    }
    p->logit_bias = bias;
    const json_value *l = json_get(c, "logits");
    for (size_t i = 0; i < l->n; i++) logits[i] = (float)json_number(json_at(l, i));
    const json_value *pr = json_get(c, "prompt"), *g = json_get(c, "generated");
    *np = (int)pr->n;
    *ng = (int)g->n;
    for (size_t i = 0; i < pr->n; i++) prompt[i] = (int32_t)json_number(json_at(pr, i));
    for (size_t i = 0; i < g->n; i++) gen[i] = (int32_t)json_number(json_at(g, i));
}

/* chi-square critical value for df degrees of freedom at p = 1e-4 (Wilson-Hilferty) */
static double chi2_crit(int df) {
    double z = 3.719, a = 2.0 / (9.0 * df);
    return df * pow(1 - a + z * sqrt(a), 3);
}

TEST(processors_and_kept_sets_match_reference) {
    const json_value *cases = json_get(json_root(g_doc), "cases");
    int V = (int)json_number(json_get(json_root(g_doc), "vocab"));
    sampler_ws *ws = sampler_ws_create(V);
    for (size_t ci = 0; ci < cases->n; ci++) {
        const json_value *c = json_at(cases, ci);
        forge_sampling_params p;
        forge_logit_bias bias[8];
        float logits[64], out[64], probs[64];
        int32_t prompt[64], gen[64], ids[64];
        int np, ng;
        load_case(c, &p, bias, logits, prompt, &np, gen, &ng);
        p.has_seed = true;
        p.seed = ci;
        forge_error err;
        sampler *s = sampler_create(&p, V, prompt, np, 64, &err);
        CHECKF(s, "case %zu: %s", ci, err.msg);
        if (!s) continue;
        for (int i = 0; i < ng; i++) sampler_accept(s, gen[i]);
        sampler_process(s, logits, out);
        const json_value *want = json_get(c, "processed");
        int bad = 0;
        for (int i = 0; i < V; i++) bad += out[i] != (float)json_number(json_at(want, (size_t)i));
        CHECKF(bad == 0, "case %zu: %d processed logits differ from the reference", ci, bad);

        int n = sampler_kept(s, ws, logits, ids, probs);
        const json_value *kid = json_get(c, "kept_ids"), *kp = json_get(c, "kept_probs");
        CHECKF((size_t)n == kid->n, "case %zu: kept %d tokens, reference %zu", ci, n, kid->n);
        double expect[64] = {0};
        for (size_t i = 0; i < kid->n; i++) expect[(int)json_number(json_at(kid, i))] = json_number(json_at(kp, i));
        for (int i = 0; i < n; i++)
            CHECKF(fabs(probs[i] - expect[ids[i]]) < 1e-5, "case %zu: p(%d) = %g, reference %g", ci, ids[i], probs[i],
                   expect[ids[i]]);

        /* draws: never outside the kept set; frequencies fit the reference (chi-square) */
        enum { DRAWS = 20000 };
        int counts[64] = {0}, outside = 0;
        for (int d = 0; d < DRAWS; d++) {
            int32_t t = sampler_sample(s, ws, logits, false, NULL);
            if (expect[t] == 0) outside++;
            counts[t]++;
        }
        CHECKF(outside == 0, "case %zu: %d draws outside the kept set", ci, outside);
        if (kid->n > 1) {
            double chi2 = 0;
            for (int t = 0; t < V; t++)
                if (expect[t] > 0) chi2 += pow(counts[t] - DRAWS * expect[t], 2) / (DRAWS * expect[t]);
            CHECKF(chi2 < chi2_crit((int)kid->n - 1), "case %zu: chi2 %.1f over %zu tokens (critical %.1f)", ci, chi2,
                   kid->n, chi2_crit((int)kid->n - 1));
        }
        sampler_free(s);
    }
    sampler_ws_free(ws);
}

TEST(same_seed_same_tokens) {
    enum { V = 1000 };
    static float logits[V];
    for (int i = 0; i < V; i++) logits[i] = t_randf() * 4;
    forge_sampling_params p;
    forge_sampling_params_default(&p);
    p.temperature = 0.9f;
    p.top_p = 0.95f;
    p.has_seed = true;
    p.seed = 42;
    sampler_ws *ws = sampler_ws_create(V);
    int32_t a[100], b[100], c[100];
    for (int run = 0; run < 3; run++) {
        if (run == 2) p.seed = 43;
        sampler *s = sampler_create(&p, V, NULL, 0, 100, NULL);
        int32_t *out = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 100; i++) out[i] = sampler_sample(s, ws, logits, false, NULL);
        CHECK(sampler_seed(s) == p.seed);
        sampler_free(s);
    }
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* without a seed, one is drawn, and two samplers get different ones */
    p.has_seed = false;
    sampler *s1 = sampler_create(&p, V, NULL, 0, 1, NULL), *s2 = sampler_create(&p, V, NULL, 0, 1, NULL);
    CHECK(sampler_seed(s1) != sampler_seed(s2));
    sampler_free(s1);
    sampler_free(s2);
    sampler_ws_free(ws);
}

/* The split a device uses (sampler_plain_greedy / sampler_plain_draw, sampler_take_uniform
 * and sampler_draw_plain) gives sampler_sample's tokens and RNG stream: for each setting,
 * two samplers with one seed, one sampling, the other taking the uniform and drawing; which
 * settings count as plain. */
TEST(plain_draw_equals_sample) {
    enum { V = 3000 };
    static float logits[V];
    sampler_ws *ws = sampler_ws_create(V);
    static const struct {
        float t, min_p, top_p;
        int top_k;
        bool plain;
    } cases[] = {{0.7f, 0, 1, 0, true},     {1.0f, 0, 1, 0, true},      {1.5f, 0.05f, 1, 0, true},
                 {0.9f, 0.3f, 1, V, true},  {0.9f, 0, 1, V + 5, true},  {0.9f, 0, 0.95f, 0, false},
                 {0.9f, 0, 1, 40, false},   {0, 0, 1, 0, false}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        forge_sampling_params p;
        forge_sampling_params_default(&p);
        p.temperature = cases[c].t, p.min_p = cases[c].min_p, p.top_p = cases[c].top_p, p.top_k = cases[c].top_k;
        p.has_seed = true, p.seed = 7 + c;
        sampler *a = sampler_create(&p, V, NULL, 0, 50, NULL), *b = sampler_create(&p, V, NULL, 0, 50, NULL);
        float t, mp;
        CHECKF(sampler_plain_draw(b, &t, &mp) == cases[c].plain, "case %zu: plain %d", c, cases[c].plain);
        if (cases[c].plain) {
            int same = 0;
            for (int k = 0; k < 50; k++) {
                for (int i = 0; i < V; i++) logits[i] = t_randf() * (k % 3 ? 3 : 12);
                int32_t x = sampler_sample(a, ws, logits, false, NULL);
                int32_t y = sampler_draw_plain(ws, logits, t, mp, sampler_take_uniform(b));
                same += x == y;
                sampler_accept(a, x), sampler_accept(b, y);
            }
            CHECKF(same == 50, "case %zu: %d of 50 draws equal sampler_sample's", c, same);
        }
        sampler_free(a), sampler_free(b);
    }
    /* what disqualifies: bias, penalties, a mask, a min-tokens ban in force */
    forge_sampling_params p;
    forge_sampling_params_default(&p);
    p.temperature = 0.8f;
    forge_logit_bias lb = {.token = 5, .bias = 1};
    p.logit_bias = &lb, p.n_logit_bias = 1;
    sampler *s = sampler_create(&p, V, NULL, 0, 5, NULL);
    float t, mp;
    CHECK(!sampler_plain_draw(s, &t, &mp));
    sampler_free(s);
    p.n_logit_bias = 0, p.logit_bias = NULL, p.presence_penalty = 0.5f;
    s = sampler_create(&p, V, NULL, 0, 5, NULL);
    CHECK(!sampler_plain_draw(s, &t, &mp));
    sampler_free(s);
    p.presence_penalty = 0;
    s = sampler_create(&p, V, NULL, 0, 5, NULL);
    CHECK(sampler_plain_draw(s, &t, &mp));
    static uint32_t mask[V / 32 + 1];
    sampler_set_mask(s, mask);
    CHECK(!sampler_plain_draw(s, &t, &mp));
    sampler_set_mask(s, NULL);
    int32_t banned[1] = {2};
    sampler_set_min_tokens(s, 1, banned, 1);
    CHECK(!sampler_plain_draw(s, &t, &mp));
    sampler_accept(s, 9);
    CHECK(sampler_plain_draw(s, &t, &mp));
    sampler_free(s);
    p.temperature = 0;
    s = sampler_create(&p, V, NULL, 0, 5, NULL);
    CHECK(sampler_plain_greedy(s) && !sampler_plain_draw(s, &t, &mp));
    sampler_free(s);
    sampler_ws_free(ws);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

TEST(big_vocab_top_p_matches_sorting) {
    /* 152k entries with many ties: the quickselect keeps exactly what a full sort keeps */
    enum { V = 151936 };
    float *logits = malloc(V * sizeof(float)), *sorted = malloc(V * sizeof(float)), *probs = malloc(V * sizeof(float));
    int32_t *ids = malloc(V * sizeof(int32_t));
    for (int i = 0; i < V; i++) logits[i] = (float)((int)(t_randf() * 60)) / 4.0f;
    sampler_ws *ws = sampler_ws_create(V);
    float tps[] = {0.5f, 0.9f, 0.99f};
    for (int k = 0; k < 3; k++) {
        forge_sampling_params p;
        forge_sampling_params_default(&p);
        p.top_p = tps[k];
        p.has_seed = true;
        sampler *s = sampler_create(&p, V, NULL, 0, 1, NULL);
        int n = sampler_kept(s, ws, logits, ids, probs);
        memcpy(sorted, logits, V * sizeof(float));
        qsort(sorted, V, sizeof(float), cmp_desc);
        double z = 0, acc = 0;
        for (int i = 0; i < V; i++) z += exp((double)sorted[i] - sorted[0]);
        int want = 0;
        while (acc < tps[k] * z * (1 - 1e-6)) acc += exp((double)sorted[want++] - sorted[0]);
        /* ties at the boundary are kept together */
        while (want < V && sorted[want] == sorted[want - 1]) want++;
        CHECKF(n == want, "top_p %g: kept %d, sort keeps %d", tps[k], n, want);
        sampler_free(s);
    }
    sampler_ws_free(ws);
    free(logits), free(sorted), free(probs), free(ids);
}

TEST(raw_logprobs) {
    enum { V = 300 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = t_randf() * 8;
    logits[17] = logits[18] = 9.5f; /* a tie at the top: lower id first */
    forge_sampling_params p;
    forge_sampling_params_default(&p);
    p.temperature = 0;
    p.top_logprobs = 5;
    p.repetition_penalty = 2.0f; /* processors do not change the reported raw logprobs */
    int32_t prompt[1] = {17};
    sampler *s = sampler_create(&p, V, prompt, 1, 4, NULL);
    sampler_ws *ws = sampler_ws_create(V);
    sample_result r;
    int32_t t = sampler_sample(s, ws, logits, true, &r);
    CHECK(t == 18 && r.token == 18); /* 17 was penalized */
    double z = 0;
    for (int i = 0; i < V; i++) z += exp((double)logits[i]);
    CHECKF(fabs(r.logprob - (logits[18] - log(z))) < 1e-5, "logprob %g vs %g", r.logprob, logits[18] - log(z));
    CHECK(r.n_top == 5 && r.top_ids[0] == 17 && r.top_ids[1] == 18);
    for (int i = 0; i < 5; i++) CHECK(fabs(r.top_logprobs[i] - (logits[r.top_ids[i]] - log(z))) < 1e-5);
    for (int i = 1; i < 5; i++) CHECK(r.top_logprobs[i] <= r.top_logprobs[i - 1]);
    sampler_free(s);
    sampler_ws_free(ws);
}

TEST(parameter_checks) {
    forge_sampling_params p;
    forge_error err;
    forge_sampling_params_default(&p);
    CHECK(forge_sampling_params_check(&p, 10, &err) == FORGE_OK);
    p.temperature = -1;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "temperature"));
    forge_sampling_params_default(&p);
    p.top_p = -0.1f;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "top_p"));
    p.top_p = 0; /* zero: off, as in a zeroed struct */
    CHECK(forge_sampling_params_check(&p, 10, &err) == FORGE_OK);
    forge_sampling_params_default(&p);
    p.min_p = 1.5f;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "min_p"));
    forge_sampling_params_default(&p);
    p.presence_penalty = 3;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "presence_penalty"));
    forge_sampling_params_default(&p);
    p.repetition_penalty = -1;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "repetition_penalty"));
    p.repetition_penalty = 0; /* zero: off */
    CHECK(forge_sampling_params_check(&p, 10, &err) == FORGE_OK);
    forge_sampling_params_default(&p);
    p.top_logprobs = 21;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "top_logprobs"));
    forge_sampling_params_default(&p);
    forge_logit_bias b[1] = {{10, 1}};
    p.logit_bias = b;
    p.n_logit_bias = 1;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "token 10"));
    b[0] = (forge_logit_bias){3, 101};
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "-100, 100"));
    forge_sampling_params_default(&p);
    p.temperature = NAN;
    CHECK(forge_sampling_params_check(&p, 10, &err) && strstr(err.msg, "temperature"));
}

/* Feeds pieces to a matcher; returns what came out and whether it stopped. */
static const char *run_stop(const char *const *stops, int n, const char *const *pieces, int np, bool *stopped) {
    static strbuf out;
    sb_reset(&out);
    stop_matcher *m = stop_create(stops, n);
    *stopped = false;
    for (int i = 0; i < np && !*stopped; i++) *stopped = stop_feed(m, pieces[i], strlen(pieces[i]), &out);
    if (!*stopped) stop_flush(m, &out);
    stop_free(m);
    return sb_str(&out);
}

TEST(stop_strings) {
    bool st;
    const char *s1[] = {"END"};
    const char *p2[] = {"Hello E", "ND more"}; /* split over 2 tokens */
    CHECK_EQ_STR(run_stop(s1, 1, p2, 2, &st), "Hello ");
    CHECK(st);
    const char *p3[] = {"abc E", "N", "D"}; /* split over 3 */
    CHECK_EQ_STR(run_stop(s1, 1, p3, 3, &st), "abc ");
    CHECK(st);
    const char *pstart[] = {"END", "x"}; /* at the very start */
    CHECK_EQ_STR(run_stop(s1, 1, pstart, 2, &st), "");
    CHECK(st);
    const char *s_self[] = {"aab"}; /* overlaps itself: "aaab" */
    const char *pself[] = {"a", "a", "a", "b", "c"};
    CHECK_EQ_STR(run_stop(s_self, 1, pself, 5, &st), "a");
    CHECK(st);
    const char *s_pre[] = {"stop here", "stop"}; /* one is a prefix of a longer one */
    const char *ppre[] = {"go st", "op here"};
    CHECK_EQ_STR(run_stop(s_pre, 2, ppre, 2, &st), "go ");
    CHECK(st);
    const char *pnear[] = {"EN", "Dx"};
    const char *s_none[] = {"ENDING"};
    CHECK_EQ_STR(run_stop(s_none, 1, pnear, 2, &st), "ENDx"); /* a near miss is released whole */
    CHECK(!st);
    const char *pheld[] = {"text E"}; /* held back, then released at the end */
    CHECK_EQ_STR(run_stop(s1, 1, pheld, 1, &st), "text E");
    CHECK(!st);
    const char *s_utf[] = {"\xc3\xa9t\xc3\xa9"}; /* multi-byte stop */
    const char *putf[] = {"l'\xc3\xa9", "t\xc3", "\xa9 fini"};
    CHECK_EQ_STR(run_stop(s_utf, 1, putf, 3, &st), "l'");
    CHECK(st);
    /* what is emitted before the end never includes a held-back prefix */
    stop_matcher *m = stop_create(s1, 1);
    strbuf out = STRBUF_INIT;
    CHECK(!stop_feed(m, "abcEN", 5, &out));
    CHECK_EQ_STR(sb_str(&out), "abc");
    CHECK(stop_feed(m, "D", 1, &out) && stop_which(m) == 0);
    CHECK_EQ_STR(sb_str(&out), "abc");
    sb_free(&out);
    stop_free(m);
}

int main(void) {
    forge_error err;
    g_doc = json_parse_file("tests/fixtures/sampling/goldens.json", 1 << 22, &err);
    if (!g_doc) {
        printf("%s\n", err.msg);
        return 1;
    }
    RUN(processors_and_kept_sets_match_reference);
    RUN(same_seed_same_tokens);
    RUN(plain_draw_equals_sample);
    RUN(big_vocab_top_p_matches_sorting);
    RUN(raw_logprobs);
    RUN(parameter_checks);
    RUN(stop_strings);
    json_free(g_doc);
    return t_summary();
}
