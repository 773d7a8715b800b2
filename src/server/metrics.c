/* metrics.c: the server's counters and histograms (updated on the loop thread only) and the
 * Prometheus text exposition of them with the engine's stats (GET /metrics). */
#include <string.h>
#include <time.h>

#include "server/server_int.h"

static const int g_codes[SRV_N_CODES] = {200, 204, 304, 400, 401, 404, 405, 408, 413, 500, 503, 0, 0};
static const char *const g_routes[SRV_N_ROUTES] = {"/health", "/metrics", "/v1/models", "/v1/completions",
                                                   "/v1/chat/completions", "/tokenize", "/detokenize",
                                                   "webui", /* the chat page and its files */
                                                   "/v1/embeddings", "other"};

/* seconds */
static const double b_ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                                2.5,   5.0,   7.5,  10.0, 20.0, 40.0, 80.0};
static const double b_itl[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                               0.4,    0.5,   0.75,   1.0,   2.5,  5.0,   10.0, 20.0,  40.0, 80.0};
static const double b_e2e[] = {0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,    10.0,
                               15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

void metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    m->ttft = (srv_hist){.n_bounds = N_OF(b_ttft), .bounds = b_ttft};
    m->itl = (srv_hist){.n_bounds = N_OF(b_itl), .bounds = b_itl};
    m->e2e = (srv_hist){.n_bounds = N_OF(b_e2e), .bounds = b_e2e};
    atomic_init(&m->callback_ns, 0);
    atomic_init(&m->n_callbacks, 0);
}

void metrics_count_http(srv_metrics *m, int route, int status) {
    int k = SRV_N_CODES - 1; /* "other" codes share the last slot */
    for (int i = 0; i < SRV_N_CODES - 2; i++)
        if (g_codes[i] == status) k = i;
    if (route < 0 || route >= SRV_N_ROUTES) route = SRV_ROUTE_OTHER;
    m->http[route][k]++;
}

void hist_observe(srv_hist *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

static void head(strbuf *o, const char *name, const char *type, const char *help) {
    sb_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void num(strbuf *o, double v) {
    json_write_double(o, v); /* Python repr: what Prometheus clients print too */
}

static void sample(strbuf *o, const char *name, const char *type, const char *help, double v) {
    head(o, name, type, help);
    sb_puts(o, name);
    sb_putc(o, ' ');
    num(o, v);
    sb_putc(o, '\n');
}

static void hist(strbuf *o, const char *name, const char *help, const srv_hist *h) {
    head(o, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        sb_printf(o, "%s_bucket{le=\"", name);
        if (i < h->n_bounds) num(o, h->bounds[i]);
        else sb_puts(o, "+Inf");
        sb_printf(o, "\"} %llu\n", (unsigned long long)cum);
    }
    sb_printf(o, "%s_sum ", name);
    num(o, h->sum);
    sb_printf(o, "\n%s_count %llu\n", name, (unsigned long long)h->n);
}

void metrics_write(forge_server *s, strbuf *o) {
    srv_metrics *m = &s->metrics;
    srv_state st = atomic_load(&s->state);
    sample(o, "forge_server_ready", "gauge", "1 when the model is loaded and requests are served.", st == SRV_READY);

    head(o, "forge_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (int r = 0; r < SRV_N_ROUTES; r++)
        for (int k = 0; k < SRV_N_CODES - 1; k++) {
            uint64_t v = m->http[r][k] + (k == SRV_N_CODES - 2 ? m->http[r][SRV_N_CODES - 1] : 0);
            if (!v) continue;
            sb_printf(o, "forge_http_requests_total{route=\"%s\",code=\"", g_routes[r]);
            if (g_codes[k]) sb_printf(o, "%d", g_codes[k]);
            else sb_puts(o, "other");
            sb_printf(o, "\"} %llu\n", (unsigned long long)v);
        }
    static const char *const reasons[5] = {"none", "stop", "length", "abort", "error"};
    head(o, "forge_request_success_total", "counter", "Generated choices finished, by finish reason.");
    for (int i = 1; i < 5; i++)
        sb_printf(o, "forge_request_success_total{finished_reason=\"%s\"} %llu\n", reasons[i],
                  (unsigned long long)m->finished[i]);
    sample(o, "forge_prompt_tokens_total", "counter", "Prompt tokens processed.", (double)m->prompt_tokens);
    sample(o, "forge_generation_tokens_total", "counter", "Tokens generated.", (double)m->generation_tokens);
    sample(o, "forge_prompt_tokens_cached_total", "counter", "Prompt tokens served from the prefix cache.",
           (double)m->cached_tokens);
    hist(o, "forge_time_to_first_token_seconds", "Time from a request's arrival to its first token.", &m->ttft);
    hist(o, "forge_inter_token_latency_seconds", "Time between consecutive tokens of a choice.", &m->itl);
    hist(o, "forge_e2e_request_latency_seconds", "Time from a generation request's arrival to its end.", &m->e2e);
    sample(o, "forge_server_disconnects_total", "counter", "Clients that left before their answer was complete.",
           (double)m->disconnects);
    sample(o, "forge_server_request_timeouts_total", "counter",
           "Connections cut for not sending a whole request within the request timeout.", (double)m->timeouts_cut);
    sample(o, "forge_server_requests_in_flight", "gauge", "Generation requests being answered.", s->n_reqs);
    struct timespec ts;
    double loop_cpu = 0;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) loop_cpu = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    sample(o, "forge_server_loop_cpu_seconds_total", "counter",
           "CPU time of the HTTP event-loop thread (HTTP, JSON, SSE, templates, tokenization).", loop_cpu);
    sample(o, "forge_server_callback_seconds_total", "counter",
           "Engine-thread CPU time spent handing events to the HTTP loop (one event in 32 timed).", atomic_load(&m->callback_ns) * 1e-9);

    if (st == SRV_LOADING || st == SRV_FAILED || !s->engine) return;
    forge_engine_stats es;
    forge_engine_get_stats(s->engine, &es);
    sample(o, "forge_num_requests_running", "gauge", "Sequences in the running batch.", es.running);
    sample(o, "forge_num_requests_waiting", "gauge", "Sequences waiting to run.", es.waiting);
    double usage = es.kv_blocks_total ? (double)es.kv_blocks_used / es.kv_blocks_total : 0;
    sample(o, "forge_kv_cache_usage_ratio", "gauge", "Fraction of KV cache blocks held by sequences (0 to 1).", usage);
    sample(o, "forge_kv_cache_blocks_used", "gauge", "KV cache blocks held by sequences.", es.kv_blocks_used);
    sample(o, "forge_kv_cache_blocks_cached", "gauge", "Free KV cache blocks that still hold a cached prefix.",
           es.kv_blocks_cached);
    sample(o, "forge_kv_cache_pool_blocks", "gauge", "KV cache blocks in the pool.", es.kv_blocks_total);
    sample(o, "forge_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
           (double)es.prefix_queries);
    sample(o, "forge_prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.",
           (double)es.prefix_hits);
    sample(o, "forge_prefix_cache_hit_ratio", "gauge", "Prefix cache hits over queries so far (0 to 1).",
           es.prefix_queries ? (double)es.prefix_hits / (double)es.prefix_queries : 0);
    sample(o, "forge_num_preemptions_total", "counter", "Sequences preempted to free KV blocks.",
           (double)es.preemptions);
    sample(o, "forge_num_fair_preemptions_total", "counter",
           "Preemptions that gave a waiting request with nothing running a slot.", (double)es.fair_preemptions);
    sample(o, "forge_engine_steps_total", "counter", "Engine steps run.", (double)es.steps);
    sample(o, "forge_engine_step_seconds_total", "counter", "Wall time of engine steps.", es.step_seconds);
    sample(o, "forge_engine_forward_seconds_total", "counter", "Wall time of the forward passes within steps.",
           es.forward_seconds);
}
