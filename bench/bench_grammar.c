/* bench_grammar.c: the cost of constrained decoding's token mask per decode step.
 *
 * build/bench/bench_grammar [TOKENIZER_DIR] [SEQS] [STEPS]: builds the vocabulary trie of a
 * tokenizer (default tests/fixtures/tokenizers/llama3, 128k tokens), compiles a JSON schema
 * of moderate size, and runs SEQS matchers (default 64) for STEPS steps (default 200): each
 * step fills every sequence's mask and feeds it a random allowed token (a sequence that can
 * only end starts over). Prints the time to build the trie, the cache fills (context keys
 * walked over the trie, paid once per constraint), and per step the mask time for all
 * sequences after warm-up, as mean and max, with the per-sequence mean. Timings on a shared
 * machine are noisy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grammar/constraint.h"
#include "grammar/matcher.h"
#include "sampling/sampler.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"name\":{\"type\":\"string\",\"maxLength\":40},"
    "\"age\":{\"type\":\"integer\"},"
    "\"email\":{\"type\":\"string\"},"
    "\"score\":{\"type\":\"number\"},"
    "\"active\":{\"type\":\"boolean\"},"
    "\"role\":{\"enum\":[\"admin\",\"user\",\"guest\"]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":16},\"maxItems\":5},"
    "\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"},\"city\":{\"type\":\"string\"},"
    "\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"},\"country\":{\"type\":\"string\",\"maxLength\":2}},"
    "\"required\":[\"city\",\"country\"]},"
    "\"created\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"notes\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]},"
    "\"history\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"when\":{\"type\":\"string\","
    "\"format\":\"date\"},\"what\":{\"type\":\"string\",\"maxLength\":30}},\"required\":[\"when\",\"what\"]},\"maxItems\":3}"
    "},\"required\":[\"id\",\"name\",\"age\",\"role\",\"address\"]}";

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/fixtures/tokenizers/llama3";
    int S = argc > 2 ? atoi(argv[2]) : 64, steps = argc > 3 ? atoi(argv[3]) : 200;
    if (S <= 0 || steps <= 0) return 2;
    forge_error err;
    forge_tokenizer *tok = forge_tokenizer_open(dir, &err);
    if (!tok) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int V = forge_tokenizer_get_info(tok)->vocab_size;
    double t0 = now_ms();
    gvocab *v = gvocab_create(tok, V, &err);
    double t_vocab = now_ms() - t0;
    forge_constraint c = {.kind = FORGE_CONSTRAINT_JSON_SCHEMA, .text = SCHEMA, .len = strlen(SCHEMA)};
    t0 = now_ms();
    grammar *g = constraint_compile(&c, &err);
    if (!v || !g) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gconstraint *gc = gconstraint_create(g, v, &err);
    double t_compile = now_ms() - t0;
    gws *w = gws_create(&err);
    gmatcher **m = calloc((size_t)S, sizeof *m);
    uint32_t **mask = calloc((size_t)S, sizeof *mask);
    int32_t *allowed = malloc(sizeof(int32_t) * (size_t)V);
    for (int i = 0; i < S; i++) {
        m[i] = gmatcher_create(gc, w, &err);
        mask[i] = malloc(sizeof(uint32_t) * (size_t)((V + 31) / 32));
    }
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    double cold = 0, warm_sum = 0, warm_max = 0, accept_sum = 0;
    double cold_max = 0;
    int cold_n = 0;
    int warm_n = 0, restarts = 0, warmup = steps / 4;
    double *step_ms = malloc(sizeof(double) * (size_t)steps);
    for (int st = 0; st < steps; st++) {
        int keys0 = gconstraint_n_keys(gc);
        double a = now_ms();
        for (int i = 0; i < S; i++)
            if (gmatcher_fill_mask(m[i], gc, w, mask[i], &err)) {
                fprintf(stderr, "mask: %s\n", err.msg);
                return 1;
            }
        double b = now_ms();
        step_ms[st] = b - a;
        if (gconstraint_n_keys(gc) != keys0 || st < warmup) {
            cold += b - a;
            if (b - a > cold_max) cold_max = b - a;
            cold_n++;
        }
        else {
            warm_sum += b - a;
            warm_n++;
            if (b - a > warm_max) warm_max = b - a;
        }
        double a2 = now_ms();
        for (int i = 0; i < S; i++) {
            int n = 0;
            for (int id = 0; id < V; id++)
                if ((mask[i][id >> 5] >> (id & 31)) & 1) allowed[n++] = id;
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            if (n == 0 || gmatcher_must_end(m[i]) || (gmatcher_can_end(m[i]) && rng % 3 == 0)) {
                gmatcher_reset(m[i], w, NULL);
                restarts++;
                continue;
            }
            gmatcher_accept_token(m[i], w, allowed[rng % (uint64_t)n], NULL);
        }
        accept_sum += now_ms() - a2;
    }
    printf("tokenizer %s: %d tokens; trie built in %.1f ms; schema compiled in %.2f ms\n", dir, V, t_vocab, t_compile);
    printf("%d sequences, %d steps (%d restarts): %d context keys cached (%.1f MB); %d steps with cache fills or warm-up: "
           "%.1f ms in all, max %.1f ms\n", S, steps, restarts, gconstraint_n_keys(gc), gconstraint_cache_bytes(gc) / 1e6,
           cold_n, cold, cold_max);
    if (warm_n)
        printf("mask per step (warm, %d steps): mean %.3f ms, max %.3f ms, per sequence %.1f us\n", warm_n, warm_sum / warm_n,
               warm_max, 1e3 * warm_sum / warm_n / S);
    printf("(bench loop: listing allowed ids and accepting tokens took %.1f ms per step; not part of the engine's cost)\n",
           accept_sum / steps);
    /* the sampler's share: one sample (temperature 1) with and without the last mask */
    float *logits = malloc(sizeof(float) * (size_t)V);
    for (int i = 0; i < V; i++) logits[i] = (float)((i * 2654435761u) % 1000) / 100.0f;
    sampler_ws *ws = sampler_ws_create(V);
    forge_sampling_params sp = forge_sampling_default_params();
    sp.has_seed = true;
    sampler *smp = sampler_create(&sp, V, NULL, 0, 0, NULL);
    double tm[2];
    for (int with = 0; with < 2; with++) {
        sampler_set_mask(smp, with ? mask[0] : NULL);
        double a = now_ms();
        for (int it = 0; it < 200; it++) sampler_sample(smp, ws, logits, false, NULL);
        tm[with] = (now_ms() - a) / 200;
    }
    printf("sampling one token: %.1f us without a mask, %.1f us with one\n", 1e3 * tm[0], 1e3 * tm[1]);
    sampler_free(smp);
    sampler_ws_free(ws);
    free(logits);
    for (int i = 0; i < S; i++) gmatcher_free(m[i]), free(mask[i]);
    free(m), free(mask), free(allowed), free(step_ms);
    gws_free(w);
    gconstraint_free(gc);
    gvocab_free(v);
    forge_tokenizer_close(tok);
    return 0;
}
