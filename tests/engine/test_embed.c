/* Embedding requests through the engine against the float64 reference forward
 * (tests/fixtures/embeddings.json, made by scripts/ref/make_embed_goldens.py from
 * scripts/ref/hf_forward.py): cosine > 0.99999 on every parity model, unit length, and
 * the same bits whether a prompt runs alone, among the others, or from the prefix cache. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "forge.h"
#include "test.h"

typedef struct got {
    float *v;
    int n, prompt_tokens, completion_tokens, events;
    forge_finish_reason finish;
} got;

static void on_event(const forge_event *ev, void *user) {
    got *g = user;
    g->events++;
    if (ev->embedding && ev->n_embedding > 0) {
        free(g->v);
        g->v = malloc(sizeof(float) * (size_t)ev->n_embedding);
        memcpy(g->v, ev->embedding, sizeof(float) * (size_t)ev->n_embedding);
        g->n = ev->n_embedding;
    }
    if (ev->finish) {
        g->finish = ev->finish;
        g->prompt_tokens = ev->prompt_tokens;
        g->completion_tokens = ev->completion_tokens;
    }
}

/* Runs the prompts together on engine e (manual steps); out[i] receives each. */
static void run_all(forge_engine *e, int n, int32_t **ids, const int *n_ids, got *out) {
    forge_request **r = calloc((size_t)n, sizeof *r);
    for (int i = 0; i < n; i++) {
        forge_error err;
        forge_request_params p = {.prompt_ids = ids[i], .n_prompt_ids = n_ids[i], .embedding = true};
        r[i] = forge_engine_submit(e, &p, on_event, &out[i], &err);
        CHECKF(r[i] != NULL, "submit: %s", err.msg);
    }
    for (int k = 0; k < 10000; k++) {
        bool all = true;
        for (int i = 0; i < n; i++) all = all && forge_request_done(r[i]);
        if (all) break;
        forge_engine_step(e);
    }
    for (int i = 0; i < n; i++) forge_request_release(r[i]);
    free(r);
}

static double cosine(const float *a, const double *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

TEST(matches_reference) {
    forge_error err;
    json_doc *doc = json_parse_file("tests/fixtures/embeddings.json", 1 << 24, &err);
    CHECKF(doc != NULL, "%s", doc ? "" : err.msg);
    if (!doc) return;
    const json_value *models = json_get(json_root(doc), "models");
    CHECK(models && models->n >= 9);
    for (size_t mi = 0; models && mi < models->n; mi++) {
        const json_value *mj = json_at(models, mi);
        const char *dir = json_string(json_get(mj, "model"));
        forge_model *m = forge_model_open(dir, NULL, &err);
        CHECKF(m != NULL, "%s: %s", dir, m ? "" : err.msg);
        if (!m) continue;
        const json_value *pj = json_get(mj, "prompts"), *ej = json_get(mj, "embeddings");
        int n = (int)pj->n, H = forge_model_get_info(m)->hidden_size;
        int32_t **ids = calloc((size_t)n, sizeof *ids);
        int *n_ids = calloc((size_t)n, sizeof *n_ids);
        for (int i = 0; i < n; i++) {
            const json_value *p = json_at(pj, (size_t)i);
            n_ids[i] = (int)p->n;
            ids[i] = malloc(sizeof(int32_t) * p->n);
            for (size_t k = 0; k < p->n; k++) ids[i][k] = (int32_t)json_number(json_at(p, k));
        }
        got *together = calloc((size_t)n, sizeof *together), *alone = calloc((size_t)n, sizeof *alone),
            *cached = calloc((size_t)n, sizeof *cached);
        forge_engine *e = forge_engine_create(m, NULL, &(forge_engine_params){.manual_step = true, .n_kv_blocks = 600, .n_threads = t_emulated() ? 1 : 0}, &err);
        CHECKF(e != NULL, "%s: %s", dir, e ? "" : err.msg);
        if (e) {
            run_all(e, n, ids, n_ids, together);
            run_all(e, n, ids, n_ids, cached); /* the prompts' full blocks now come from the cache */
            forge_engine_free(e);
        }
        for (int i = 0; i < n; i++) {
            e = forge_engine_create(m, NULL, &(forge_engine_params){.manual_step = true, .n_kv_blocks = 600, .n_threads = t_emulated() ? 1 : 0,
                                                                      .no_prefix_caching = true}, &err);
            if (e) run_all(e, 1, &ids[i], &n_ids[i], &alone[i]);
            forge_engine_free(e);
        }
        for (int i = 0; i < n; i++) {
            const json_value *ref = json_at(ej, (size_t)i);
            CHECKF(together[i].v && together[i].n == H && (int)ref->n == H, "%s prompt %d: no vector of %d", dir, i, H);
            if (!together[i].v || (int)ref->n != H) continue;
            double *r = malloc(sizeof(double) * (size_t)H), norm = 0, maxd = 0;
            for (int k = 0; k < H; k++) {
                r[k] = json_number(json_at(ref, (size_t)k));
                norm += (double)together[i].v[k] * together[i].v[k];
                double d = fabs(together[i].v[k] - r[k]);
                if (d > maxd) maxd = d;
            }
            double c = cosine(together[i].v, r, H);
            CHECKF(c > 0.99999, "%s prompt %d: cosine %.8f with the float64 reference (max diff %.2e)", dir, i, c, maxd);
            CHECKF(fabs(norm - 1) < 1e-5, "%s prompt %d: squared norm %.8f", dir, i, norm);
            CHECK_EQ_INT(together[i].finish, FORGE_FINISH_STOP);
            CHECK_EQ_INT(together[i].prompt_tokens, n_ids[i]);
            CHECK_EQ_INT(together[i].completion_tokens, 0);
            CHECK_EQ_INT(together[i].events, 1);
            CHECKF(alone[i].v && !memcmp(alone[i].v, together[i].v, sizeof(float) * (size_t)H),
                   "%s prompt %d: alone and batched differ", dir, i);
            CHECKF(cached[i].v && !memcmp(cached[i].v, together[i].v, sizeof(float) * (size_t)H),
                   "%s prompt %d: from the prefix cache the bits differ", dir, i);
            free(r);
        }
        for (int i = 0; i < n; i++) {
            free(ids[i]);
            free(together[i].v);
            free(alone[i].v);
            free(cached[i].v);
        }
        free(ids);
        free(n_ids);
        free(together);
        free(alone);
        free(cached);
        forge_model_close(m);
    }
    json_free(doc);
}

/* An embedding among generating requests: same vector as alone; refused with n > 1 or logprobs. */
TEST(mixed_and_refusals) {
    forge_error err;
    forge_model *m = forge_model_open("tests/fixtures/stories260K", NULL, &err);
    CHECK(m != NULL);
    if (!m) return;
    forge_engine *e = forge_engine_create(m, NULL, &(forge_engine_params){.manual_step = true, .n_kv_blocks = 600, .n_threads = t_emulated() ? 1 : 0}, &err);
    int32_t ids[] = {1, 403, 407, 261, 378};
    got a = {0}, b = {0}, gen[3] = {{0}};
    forge_request_params p = {.prompt_ids = ids, .n_prompt_ids = 5, .embedding = true};
    forge_request *r = forge_engine_submit(e, &p, on_event, &a, &err);
    while (!forge_request_done(r)) forge_engine_step(e);
    forge_request_release(r);
    forge_request *g[3];
    int32_t other[] = {1, 300, 301, 302, 303, 304, 305};
    for (int i = 0; i < 3; i++) {
        forge_request_params q = {.prompt_ids = other, .n_prompt_ids = 7 - i, .max_tokens = 20, .ignore_eos = true};
        g[i] = forge_engine_submit(e, &q, on_event, &gen[i], &err);
    }
    forge_engine_step(e);
    forge_engine_step(e); /* the others are decoding now */
    r = forge_engine_submit(e, &(forge_request_params){.prompt_ids = ids, .n_prompt_ids = 5, .embedding = true},
                            on_event, &b, &err);
    for (int k = 0; k < 200 && !(forge_request_done(r) && forge_request_done(g[0])); k++) forge_engine_step(e);
    CHECK(a.v && b.v && a.n == b.n && !memcmp(a.v, b.v, sizeof(float) * (size_t)a.n));
    CHECK_EQ_INT(gen[0].completion_tokens, 20);
    forge_request_release(r);
    for (int i = 0; i < 3; i++) forge_request_release(g[i]);
    CHECK(forge_engine_submit(e, &(forge_request_params){.prompt_ids = ids, .n_prompt_ids = 5, .embedding = true, .n = 2},
                              NULL, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "n = 1") != NULL);
    CHECK(forge_engine_submit(e, &(forge_request_params){.prompt_ids = ids, .n_prompt_ids = 5, .embedding = true,
                                                          .logprobs = true},
                              NULL, NULL, &err) == NULL);
    free(a.v);
    free(b.v);
    for (int i = 0; i < 3; i++) free(gen[i].v);
    forge_engine_free(e);
    forge_model_close(m);
}

int main(void) {
    RUN(matches_reference);
    RUN(mixed_and_refusals);
    return t_summary();
}
