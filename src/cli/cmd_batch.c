/* forge batch: every line of a JSONL file is a request ({"prompt", "max_tokens",
 * "temperature", "top_p", "top_k", "min_p", "seed", "stop"}; missing fields take generate's
 * defaults); all are submitted to one engine and run concurrently. Stdout is JSONL, one
 * line per input line in input order; a summary (throughput, TTFT and inter-token latency
 * percentiles, preemptions, prefix hits) goes to stderr. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "cli/commands.h"
#include "cli/session.h"

typedef struct {
    strbuf text;
    forge_finish_reason finish;
    int prompt_tokens, completion_tokens, cached;
    double ttft_ms, total_ms, last_ms;
    double *itl; /* shared array of inter-token gaps */
    char error[1100];
    forge_request *req;
} item;

typedef struct {
    pthread_mutex_t lock;
    double *itl;
    size_t n_itl, cap_itl;
} itl_log;

static itl_log g_itl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void on_event(const forge_event *ev, void *user) {
    item *it = user;
    sb_append(&it->text, ev->text, ev->text_len);
    double t = now_ms();
    if (ev->token >= 0) {
        if (it->last_ms > 0) {
            pthread_mutex_lock(&g_itl.lock);
            if (g_itl.n_itl == g_itl.cap_itl) {
                size_t cap = g_itl.cap_itl ? g_itl.cap_itl * 2 : 4096;
                double *p = realloc(g_itl.itl, cap * sizeof *p);
                if (p) {
                    g_itl.itl = p;
                    g_itl.cap_itl = cap;
                }
            }
            if (g_itl.n_itl < g_itl.cap_itl) g_itl.itl[g_itl.n_itl++] = t - it->last_ms;
            pthread_mutex_unlock(&g_itl.lock);
        }
        it->last_ms = t;
    }
    if (ev->finish) {
        it->finish = ev->finish;
        it->prompt_tokens = ev->prompt_tokens;
        it->completion_tokens = ev->completion_tokens;
        it->cached = ev->cached_tokens;
        it->ttft_ms = ev->ttft_ms;
        it->total_ms = ev->total_ms;
        if (ev->error) snprintf(it->error, sizeof it->error, "%s", ev->error);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static const char *finish_name(forge_finish_reason f) {
    switch (f) {
    case FORGE_FINISH_STOP: return "stop";
    case FORGE_FINISH_LENGTH: return "length";
    case FORGE_FINISH_CANCELLED: return "cancelled";
    case FORGE_FINISH_ERROR: return "error";
    default: return "none";
    }
}

/* Builds request parameters from one JSON line; errors name the field. */
static int parse_line(const json_value *o, const forge_sampling_params *dflt, long dflt_max, forge_request_params *rp,
                      const char **stops, char *err, size_t errn) {
    if (!json_is(o, JSON_OBJECT)) {
        snprintf(err, errn, "the line is not a JSON object");
        return -1;
    }
    const json_value *p = json_get(o, "prompt");
    if (!json_is(p, JSON_STRING)) {
        snprintf(err, errn, "\"prompt\" must be a string");
        return -1;
    }
    rp->prompt = p->u.s;
    rp->prompt_len = p->n;
    rp->add_special_tokens = true;
    rp->sampling = *dflt;
    rp->max_tokens = (int)dflt_max;
    struct { const char *key; float *f; int *i; } nums[] = {
        {"temperature", &rp->sampling.temperature, NULL}, {"top_p", &rp->sampling.top_p, NULL},
        {"min_p", &rp->sampling.min_p, NULL}, {"repetition_penalty", &rp->sampling.repetition_penalty, NULL},
        {"presence_penalty", &rp->sampling.presence_penalty, NULL}, {"frequency_penalty", &rp->sampling.frequency_penalty, NULL},
        {"top_k", NULL, &rp->sampling.top_k}, {"max_tokens", NULL, &rp->max_tokens},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const json_value *v = json_get(o, nums[i].key);
        if (!v || v->type == JSON_NULL) continue;
        if (!json_is_number(v) || (nums[i].i && (v->type != JSON_INT || v->u.i < -1 || v->u.i > 1 << 30))) {
            snprintf(err, errn, "\"%s\" must be a%s number", nums[i].key, nums[i].i ? "n integer" : "");
            return -1;
        }
        if (nums[i].f) *nums[i].f = (float)json_number(v);
        else *nums[i].i = (int)v->u.i;
    }
    const json_value *seed = json_get(o, "seed");
    if (seed && seed->type != JSON_NULL) {
        if (seed->type != JSON_INT || seed->u.i < 0) {
            snprintf(err, errn, "\"seed\" must be a non-negative integer");
            return -1;
        }
        rp->sampling.has_seed = true;
        rp->sampling.seed = (uint64_t)seed->u.i;
    }
    const json_value *st = json_get(o, "stop");
    if (json_is(st, JSON_STRING)) {
        stops[0] = st->u.s;
        rp->n_stop = 1;
    } else if (json_is(st, JSON_ARRAY)) {
        if (st->n > 16) {
            snprintf(err, errn, "\"stop\" holds at most 16 strings");
            return -1;
        }
        for (size_t i = 0; i < st->n; i++) {
            if (!json_is(json_at(st, i), JSON_STRING)) {
                snprintf(err, errn, "\"stop\"[%zu] must be a string", i);
                return -1;
            }
            stops[i] = json_at(st, i)->u.s;
        }
        rp->n_stop = (int)st->n;
    } else if (st && st->type != JSON_NULL) {
        snprintf(err, errn, "\"stop\" must be a string or a list of strings");
        return -1;
    }
    rp->stop = stops;
    if (rp->max_tokens == 0 || rp->max_tokens < -1) {
        snprintf(err, errn, "\"max_tokens\" must be positive (or -1)");
        return -1;
    }
    return 0;
}

int cmd_batch(int argc, char **argv) {
    cli_model_opts mo = {0};
    cli_sampling_opts so;
    cli_sampling_init(&so);
    const char *prompts = NULL;
    long max_tokens = 256, help = 0;
    cli_opt opts[32];
    int n = cli_model_options(opts, &mo, true);
    opts[n++] = (cli_opt){"prompts", OPT_STR, &prompts, "FILE: JSONL requests (- for stdin)"};
    opts[n++] = (cli_opt){"max-tokens", OPT_INT, &max_tokens, "N: default max_tokens (256)"};
    n += cli_sampling_options(opts + n, &so);
    opts[n++] = (cli_opt){"help", OPT_FLAG, &help, "this help"};
    if (cli_parse("batch", argc, argv, opts, n, NULL, 0) < 0) return 2;
    if (help || !prompts) {
        cli_usage("batch", "--prompts FILE.jsonl [--model M] [options]", opts, n);
        return help ? 0 : 2;
    }
    FILE *f = strcmp(prompts, "-") ? fopen(prompts, "r") : stdin;
    if (!f) {
        fprintf(stderr, "forge batch: cannot open %s\n", prompts);
        return 1;
    }
    cli_session s;
    if (cli_session_open(&s, "batch", &mo) != 0) {
        if (f != stdin) fclose(f);
        return 1;
    }
    forge_sampling_params dflt;
    if (cli_sampling_resolve(&s, &so, "batch", &dflt) != 0) {
        cli_session_close(&s);
        if (f != stdin) fclose(f);
        return 2;
    }
    size_t cap = 64, count = 0;
    item *items = calloc(cap, sizeof *items);
    json_doc **docs = calloc(cap, sizeof *docs);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    double t0 = now_ms();
    int rc = 0;
    while (items && docs && (len = getline(&line, &line_cap, f)) >= 0) {
        if (len == 0 || (len == 1 && line[0] == '\n')) continue;
        if (count == cap) {
            item *ni = realloc(items, cap * 2 * sizeof *ni);
            json_doc **nd = ni ? realloc(docs, cap * 2 * sizeof *nd) : NULL;
            if (ni) items = ni;
            if (nd) docs = nd;
            if (!ni || !nd) break;
            memset(items + cap, 0, cap * sizeof *items);
            memset(docs + cap, 0, cap * sizeof *docs);
            cap *= 2;
        }
        item *it = &items[count];
        forge_error err;
        json_doc *d = json_parse(line, (size_t)len, &err);
        docs[count++] = d;
        if (!d) {
            snprintf(it->error, sizeof it->error, "%s", err.msg);
            continue;
        }
        forge_request_params rp = {0};
        const char *stops[16];
        if (parse_line(json_root(d), &dflt, max_tokens, &rp, stops, it->error, sizeof it->error) != 0) continue;
        it->req = forge_engine_submit(s.engine, &rp, on_event, it, &err);
        if (!it->req) snprintf(it->error, sizeof it->error, "%s", err.msg);
    }
    free(line);
    if (f != stdin) fclose(f);
    long long gen = 0;
    for (size_t i = 0; i < count; i++) {
        item *it = &items[i];
        strbuf out = STRBUF_INIT;
        sb_printf(&out, "{\"index\":%zu", i);
        if (it->req) {
            forge_request_wait(it->req);
            forge_request_release(it->req);
            sb_puts(&out, ",\"completion\":");
            json_write_string(&out, sb_str(&it->text), it->text.len, false);
            sb_printf(&out, ",\"finish_reason\":\"%s\",\"prompt_tokens\":%d,\"completion_tokens\":%d,\"cached_tokens\":%d,"
                            "\"ttft_ms\":%.1f,\"total_ms\":%.1f",
                      finish_name(it->finish), it->prompt_tokens, it->completion_tokens, it->cached, it->ttft_ms, it->total_ms);
            gen += it->completion_tokens;
        }
        if (it->error[0]) {
            sb_puts(&out, ",\"error\":");
            json_write_string(&out, it->error, strlen(it->error), false);
            rc = 1;
        }
        sb_puts(&out, "}\n");
        fwrite(sb_str(&out), 1, out.len, stdout);
        sb_free(&out);
        sb_free(&it->text);
        json_free(docs[i]);
    }
    fflush(stdout);
    double wall = (now_ms() - t0) / 1e3;
    forge_engine_stats st;
    forge_engine_get_stats(s.engine, &st);
    double *ttft = malloc((count ? count : 1) * sizeof *ttft);
    size_t nt = 0;
    for (size_t i = 0; ttft && i < count; i++)
        if (items[i].completion_tokens > 0) ttft[nt++] = items[i].ttft_ms;
    if (ttft) qsort(ttft, nt, sizeof *ttft, cmp_double);
    qsort(g_itl.itl, g_itl.n_itl, sizeof *g_itl.itl, cmp_double);
    fprintf(stderr,
            "forge: %zu requests, %lld tokens generated in %.2f s: %.1f tok/s; TTFT p50 %.0f ms p90 %.0f ms p99 %.0f ms; "
            "ITL p50 %.1f ms p90 %.1f ms p99 %.1f ms; %lld preemptions; prefix cache %lld of %lld prompt tokens; "
            "scheduler overhead %.2f%% of step time\n",
            count, gen, wall, gen / (wall > 0 ? wall : 1), ttft ? pct(ttft, nt, 50) : 0, ttft ? pct(ttft, nt, 90) : 0,
            ttft ? pct(ttft, nt, 99) : 0, pct(g_itl.itl, g_itl.n_itl, 50), pct(g_itl.itl, g_itl.n_itl, 90),
            pct(g_itl.itl, g_itl.n_itl, 99), st.preemptions, st.prefix_hits, st.prefix_queries,
            st.step_seconds > 0 ? 100.0 * (st.step_seconds - st.forward_seconds) / st.step_seconds : 0);
    free(ttft);
    free(g_itl.itl);
    free(items);
    free(docs);
    cli_session_close(&s);
    return rc;
}
