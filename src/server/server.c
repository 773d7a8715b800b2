/* server.c: the server's lifecycle and plumbing: listening (HTTP in http1.c), loading the
 * model on a thread while /health says 503, the queue that carries engine events to the loop
 * thread, signals and the graceful shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "base/port.h"
#include "base/timing.h"
#include "server/server_int.h"
#include "template/template.h"

double server_now(void) { return time_sec(); }

int srv_fail(srv_err *e, int status, const char *code, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status == 401 ? "authentication_error"
              : status >= 500 ? "server_error"
                              : "invalid_request_error";
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* splitmix64 over a seed from the system: ids need to be unique, not secret */
static uint64_t next_random(forge_server *s) {
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void server_random_hex(forge_server *s, char out[33]) {
    for (int half = 0; half < 2; half++) snprintf(out + 16 * half, 17, "%016llx", (unsigned long long)next_random(s));
}

void server_random_alnum(forge_server *s, char *out, int n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < n; i++) out[i] = digits[next_random(s) % 62];
    out[n > 0 ? n : 0] = 0;
}

/* ---- the model loader (its own thread) ------------------------------------------------ */

static void *loader_main(void *arg) {
    forge_server *s = arg;
    forge_error *err = &s->load_err;
    err_clear(err);
    forge_hub_params hub = s->p.hub;
    if (forge_model_resolve(s->s_model, &hub, s->model_dir, sizeof s->model_dir, err) != FORGE_OK) goto done;
    double t0 = time_sec();
    s->model = forge_model_open(s->model_dir, &s->p.model_params, err);
    if (!s->model) goto done;
    s->tok = forge_tokenizer_open(s->model_dir, err);
    if (!s->tok) goto done;
    forge_error terr;
    s->tmpl = forge_chat_template_load(s->model_dir, s->s_template, &terr);
    if (!s->tmpl) {
        if (s->s_template || terr.code != FORGE_E_NOT_FOUND) {
            *err = terr;
            goto done;
        }
        log_warn("server: %s has no chat template: /v1/chat/completions answers 400 (use --chat-template)",
                 s->model_dir);
    }
    if (!s->tc_given) s->tc_fam = tc_detect(s->tmpl ? chat_template_source(s->tmpl) : NULL);
    if (!s->rk_given) s->rk = rp_detect(s->tmpl ? chat_template_source(s->tmpl) : NULL);
    log_info("server: tool calls: %s%s; reasoning: %s%s", tc_family_name(s->tc_fam), s->tc_given ? "" : " (from the template)",
             s->rk == RP_THINK ? "<think>" : "none", s->rk_given ? "" : " (from the template)");
    if (forge_generation_config_load(s->model_dir, &s->gen, err) != FORGE_OK) goto done;
    forge_engine_params ep = s->p.engine;
    ep.manual_step = false;
    s->engine = forge_engine_create(s->model, s->tok, &ep, err);
    if (!s->engine) goto done;
    s->context_len = forge_engine_context_len(s->engine);
    s->vocab = forge_tokenizer_get_info(s->tok)->vocab_size;
    s->hidden_size = forge_model_get_info(s->model)->hidden_size;
    int mv = forge_model_get_info(s->model)->vocab_size;
    if (mv < s->vocab) s->vocab = mv;
    char buf[16];
    s->max_token_bytes = 1;
    for (int32_t id = 0; id < s->vocab; id++) {
        int n = forge_tokenizer_token_bytes(s->tok, id, buf, sizeof buf);
        if (n > s->max_token_bytes) s->max_token_bytes = n;
    }
    log_info("server: loaded %s in %.2f s (context %d tokens)", s->model_dir, time_sec() - t0, s->context_len);
done:
    pthread_mutex_lock(&s->q_lock);
    atomic_store(&s->load_done, true);
    pthread_cond_broadcast(&s->ready_cond);
    pthread_mutex_unlock(&s->q_lock);
    char b = 1;
    if (write(s->wake[1], &b, 1) < 0) { /* the loop polls load_done on any wake-up anyway */ }
    return NULL;
}

/* ---- engine events to the loop -------------------------------------------------------- */

static void queue_push(forge_server *s, srv_msg *m) {
    m->next = NULL;
    pthread_mutex_lock(&s->q_lock);
    bool was_empty = !s->q_head;
    if (s->q_tail) s->q_tail->next = m;
    else s->q_head = m;
    s->q_tail = m;
    pthread_mutex_unlock(&s->q_lock);
    if (was_empty) {
        char b = 1;
        if (write(s->wake[1], &b, 1) < 0) { /* full pipe: a wake-up is pending already */ }
    }
}

void server_on_engine_event(const forge_event *ev, void *user) {
    srv_sub *sub = user;
    forge_server *s = sub->s;
    /* the thread CPU clock costs ~0.5 us a read: time one event in 32 and count it 32 times */
    bool timed = (atomic_fetch_add(&s->metrics.n_callbacks, 1) & 31) == 0;
    struct timespec c0;
    if (timed) clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    int n_plp = ev->n_prompt_logprobs > 0 && ev->prompt_logprobs ? ev->n_prompt_logprobs : 0;
    int n_top = ev->n_top > 0 && ev->top_ids && ev->top_logprobs ? ev->n_top : 0;
    size_t elen = ev->error ? strlen(ev->error) + 1 : 0;
    int n_emb = ev->n_embedding > 0 && ev->embedding ? ev->n_embedding : 0;
    size_t extra = (size_t)n_top * (sizeof(int32_t) + sizeof(float)) + (size_t)n_plp * sizeof(float) +
                   (size_t)n_emb * sizeof(float) + ev->text_len + 1 + elen;
    srv_msg *m = malloc(sizeof *m + extra);
    if (!m) {
        if (!ev->finish) return; /* a lost token; its choice still ends with a final event */
        /* the final event must arrive: a static-size fallback without the payload */
        m = calloc(1, sizeof *m);
        if (!m) {
            log_error("server: out of memory delivering a final engine event");
            return;
        }
        m->lost = true;
        m->text = "";
    } else {
        memset(m, 0, sizeof *m);
        char *p = (char *)(m + 1);
        m->top_lp = (float *)p;
        memcpy(p, ev->top_logprobs ? (const void *)ev->top_logprobs : (const void *)"", (size_t)n_top * sizeof(float));
        p += (size_t)n_top * sizeof(float);
        m->prompt_lp = (float *)p;
        if (n_plp) memcpy(p, ev->prompt_logprobs, (size_t)n_plp * sizeof(float));
        p += (size_t)n_plp * sizeof(float);
        if (n_emb) {
            m->emb = (float *)p;
            memcpy(p, ev->embedding, (size_t)n_emb * sizeof(float));
            m->n_emb = n_emb;
            p += (size_t)n_emb * sizeof(float);
        }
        m->top_ids = (int32_t *)p;
        if (n_top) memcpy(p, ev->top_ids, (size_t)n_top * sizeof(int32_t));
        p += (size_t)n_top * sizeof(int32_t);
        m->text = p;
        if (ev->text_len) memcpy(p, ev->text, ev->text_len);
        p[ev->text_len] = 0;
        m->text_len = ev->text_len;
        p += ev->text_len + 1;
        if (elen) {
            memcpy(p, ev->error, elen);
            m->error = p;
        }
        m->n_top = n_top;
        m->n_prompt_lp = n_plp;
    }
    m->sub = sub;
    m->choice = ev->choice;
    m->token = ev->token;
    m->logprob = ev->logprob;
    m->finish = ev->finish;
    m->stop_index = ev->stop_index;
    m->prompt_tokens = ev->prompt_tokens;
    m->completion_tokens = ev->completion_tokens;
    m->cached_tokens = ev->cached_tokens;
    m->t = time_sec();
    queue_push(s, m);
    struct timespec c1;
    if (timed && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1) == 0)
        atomic_fetch_add(&s->metrics.callback_ns,
                         32 * (uint64_t)((c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec)));
}

static void begin_shutdown(forge_server *s);

static void finish_loading(forge_server *s) {
    pthread_join(s->loader, NULL);
    s->loader_started = false;
    if (s->load_err.code != FORGE_OK) {
        atomic_store(&s->state, SRV_FAILED);
        log_error("server: %s", s->load_err.msg);
        event_base_loopbreak(s->base);
        return;
    }
    if (atomic_load(&s->state) == SRV_LOADING) {
        atomic_store(&s->state, SRV_READY);
        if (s->listening) log_info("server: ready on http://%s:%d", s->s_host, s->port);
        else log_info("server: ready (in-process)");
    }
    server_check_done(s);
}

/* The wake pipe: engine events, the end of loading, stop requests. */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    forge_server *s = arg;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    if (s->loader_started && atomic_load(&s->load_done)) {
        finish_loading(s);
        if (atomic_load(&s->state) == SRV_FAILED) return;
    }
    pthread_mutex_lock(&s->q_lock);
    srv_msg *m = s->q_head;
    s->q_head = s->q_tail = NULL;
    /* in-process requests start once the model is loaded */
    srv_local *l = NULL;
    if (atomic_load(&s->state) != SRV_LOADING) {
        l = s->local_head;
        s->local_head = s->local_tail = NULL;
    }
    pthread_mutex_unlock(&s->q_lock);
    while (m) {
        srv_msg *next = m->next;
        gen_on_msg(s, m);
        m = next;
    }
    while (l) {
        srv_local *next = l->next;
        l->next = NULL;
        routes_dispatch_local(s, l);
        l = next;
    }
    int stops = atomic_load(&s->stop_requests);
    while (s->stops_seen < stops) {
        s->stops_seen++;
        begin_shutdown(s);
    }
}

/* ---- shutdown ------------------------------------------------------------------------- */

void server_check_done(forge_server *s) {
    if (atomic_load(&s->state) != SRV_STOPPING || s->loader_started) return;
    if (s->n_reqs == 0 && s->n_unflushed == 0) event_base_loopexit(s->base, NULL);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    forge_server *s = arg;
    if (s->n_reqs) log_info("server: cancelling %d request(s) still running", s->n_reqs);
    gen_cancel_all(s);
    server_check_done(s);
}

static void begin_shutdown(forge_server *s) {
    srv_state st = atomic_load(&s->state);
    if (st == SRV_STOPPING) { /* a second stop: cancel now */
        on_grace_over(-1, 0, s);
        return;
    }
    if (st == SRV_FAILED) return;
    atomic_store(&s->state, SRV_STOPPING);
    log_info("server: stopping: new requests get 503; %d request(s) in flight", s->n_reqs);
    /* still listening: /health says 503 (a balancer takes it out), new requests are refused
     * with 503, and answers close their connections */
    if (s->h1) h1_set_draining(s->h1, true);
    double grace = s->p.shutdown_timeout;
    if (grace < 0 || s->n_reqs == 0) on_grace_over(-1, 0, s);
    else {
        struct timeval tv = {(time_t)grace, (suseconds_t)((grace - (double)(time_t)grace) * 1e6)};
        s->grace = evtimer_new(s->base, on_grace_over, s);
        if (s->grace) evtimer_add(s->grace, &tv);
        else on_grace_over(-1, 0, s);
    }
    server_check_done(s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    log_info("server: %s received", sig == SIGINT ? "SIGINT" : "SIGTERM");
    forge_server_stop(arg);
}

/* ---- public API ----------------------------------------------------------------------- */

/* no_webui was carved from the reserved tail: the struct's size must not change */
_Static_assert(sizeof(forge_server_params) == offsetof(forge_server_params, no_webui) + 48,
               "forge_server_params changed size");

static char *dup_or_null(const char *x) { return x && *x ? strdup(x) : NULL; }

forge_server *forge_server_create(const forge_server_params *params, forge_error *err) {
    forge_server *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->q_lock, NULL);
    pthread_cond_init(&s->ready_cond, NULL);
    if (params) s->p = *params;
    if (s->p.request_timeout <= 0) s->p.request_timeout = 60;
    if (s->p.shutdown_timeout == 0) s->p.shutdown_timeout = 30;
    if (s->p.sse_keepalive <= 0) s->p.sse_keepalive = 10;
    if (s->p.max_body_bytes == 0) s->p.max_body_bytes = 8u << 20;
    const char *model = s->p.model && *s->p.model ? s->p.model : getenv("FORGE_MODEL");
    if (!model || !*model) {
        err_set(err, FORGE_E_INVALID, "no model: give one (a folder or a Hub id) or set FORGE_MODEL");
        goto fail;
    }
    s->s_model = strdup(model);
    s->s_host = strdup(s->p.host && *s->p.host ? s->p.host : "127.0.0.1");
    s->s_key = dup_or_null(s->p.api_key);
    s->s_name = strdup(s->p.served_model_name && *s->p.served_model_name ? s->p.served_model_name : model);
    s->s_template = dup_or_null(s->p.chat_template);
    s->s_device = dup_or_null(s->p.engine.device);
    if (!s->s_model || !s->s_host || !s->s_name || (s->p.api_key && *s->p.api_key && !s->s_key) ||
        (s->p.chat_template && *s->p.chat_template && !s->s_template) ||
        (s->p.engine.device && *s->p.engine.device && !s->s_device)) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        goto fail;
    }
    s->p.engine.device = s->s_device;
    strbuf nj = STRBUF_INIT;
    json_write_string(&nj, s->s_name, strlen(s->s_name), false);
    s->name_json = sb_take(&nj, NULL);
    if (!s->name_json) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        goto fail;
    }
    if (s->p.request_timeout > 1e6 || s->p.shutdown_timeout > 1e6 || s->p.sse_keepalive > 1e6) {
        err_set(err, FORGE_E_INVALID, "request, shutdown and keep-alive times must be under 10^6 seconds");
        goto fail;
    }
    if (s->p.max_connections < 0) {
        err_set(err, FORGE_E_INVALID, "max_connections must be positive (0: from the file descriptor limit), got %d",
                s->p.max_connections);
        goto fail;
    }
    if (s->p.max_connections == 0) s->p.max_connections = forge_server_default_max_connections();
    const char *tcp = s->p.tool_call_parser, *rpp = s->p.reasoning_parser;
    if (tcp && *tcp && strcmp(tcp, "auto")) {
        if (!tc_family_from_name(tcp, &s->tc_fam)) {
            err_set(err, FORGE_E_INVALID, "unknown tool-call parser '%.100s' (auto, hermes, llama3_json, mistral, none)", tcp);
            goto fail;
        }
        s->tc_given = true;
    }
    if (rpp && *rpp && strcmp(rpp, "auto")) {
        if (!rp_kind_from_name(rpp, &s->rk)) {
            err_set(err, FORGE_E_INVALID, "unknown reasoning parser '%.100s' (auto, qwen3, deepseek_r1, none)", rpp);
            goto fail;
        }
        s->rk_given = true;
    }
    s->p.tool_call_parser = s->p.reasoning_parser = NULL; /* not kept: the caller's strings */
    metrics_init(&s->metrics);
    s->t_created = (long long)time(NULL);
    uint64_t seed = time_ns() ^ ((uint64_t)getpid() << 32);
    int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (ufd >= 0) {
        uint64_t x;
        if (read(ufd, &x, sizeof x) == (ssize_t)sizeof x) seed ^= x;
        close(ufd);
    }
    s->rng = seed;

    s->base = event_base_new();
    if (!s->base || port_pipe_nonblock(s->wake) != 0) {
        err_set(err, FORGE_E_NOMEM, "cannot create the event loop");
        goto fail;
    }
    s->wake_ev = event_new(s->base, s->wake[0], EV_READ | EV_PERSIST, on_wake, s);
    h1_params hp = {.max_body = s->p.max_body_bytes, .request_timeout = s->p.request_timeout,
                    .max_conns = s->p.max_connections,
                    .hooks = {routes_head, routes_request, routes_error, routes_gone, routes_written, routes_closed},
                    .user = s};
    s->h1 = h1_server_new(s->base, &hp);
    if (!s->wake_ev || !s->h1) {
        err_set(err, FORGE_E_NOMEM, "cannot create the HTTP server");
        goto fail;
    }
    event_add(s->wake_ev, NULL);
    if (s->p.port < -1 || s->p.port > 65535) {
        err_set(err, FORGE_E_INVALID, "port must be from 0 to 65535 (or -1 for no socket), got %d", s->p.port);
        goto fail;
    }
    s->port = s->p.port;
    char lmsg[256];
    if (s->p.port >= 0) {
        if (h1_listen(s->h1, s->s_host, s->p.port, &s->port, lmsg, sizeof lmsg)) {
            err_set(err, FORGE_E_IO, "cannot listen on %s:%d: %s", s->s_host, s->p.port, lmsg);
            goto fail;
        }
        s->listening = true;
    }
    atomic_store(&s->state, SRV_LOADING);
    if (pthread_create(&s->loader, NULL, loader_main, s) != 0) {
        err_set(err, FORGE_E_NOMEM, "cannot start the model loader thread");
        goto fail;
    }
    s->loader_started = true;
    if (s->listening)
        log_info("server: listening on http://%s:%d (at most %d connections; loading %s)", s->s_host, s->port,
                 s->p.max_connections, s->s_model);
    else log_info("server: in-process only (loading %s)", s->s_model);
    return s;
fail:
    forge_server_free(s);
    return NULL;
}

int forge_server_port(const forge_server *s) { return s ? s->port : -1; }

forge_server_params forge_server_default_params(void) { return (forge_server_params){0}; }

int forge_server_default_max_connections(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1 << 20) return 4096;
    /* headroom for the model's files, the engine, logs, and refusing connections past the cap */
    long n = (long)rl.rlim_cur;
    long cap = n - 48 - n / 8;
    return cap < 8 ? 8 : (int)cap;
}

void forge_server_stop(forge_server *s) {
    if (!s) return;
    atomic_fetch_add(&s->stop_requests, 1);
    char b = 1;
    if (write(s->wake[1], &b, 1) < 0) { /* a wake-up is pending already */ }
}

forge_status forge_server_run(forge_server *s, forge_error *err) {
    if (!s) return err_set(err, FORGE_E_INVALID, "forge_server_run: the server is NULL");
    /* writes to a closed socket raise SIGPIPE in this thread: keep it blocked and pending
     * while serving, and drop it before restoring the mask */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    if (s->p.handle_signals) {
        s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
        s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
        if (s->sig_term) evsignal_add(s->sig_term, NULL);
        if (s->sig_int) evsignal_add(s->sig_int, NULL);
    }
    event_base_dispatch(s->base);
    if (s->sig_term) event_free(s->sig_term);
    if (s->sig_int) event_free(s->sig_int);
    s->sig_term = s->sig_int = NULL;
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    if (s->loader_started) { /* stopped while loading: wait for the loader */
        pthread_join(s->loader, NULL);
        s->loader_started = false;
    }
    if (atomic_load(&s->state) == SRV_FAILED) {
        if (err) *err = s->load_err;
        return s->load_err.code ? s->load_err.code : FORGE_E_INTERNAL;
    }
    log_info("server: stopped");
    return FORGE_OK;
}

forge_status forge_server_post(forge_server *s, const char *path, const char *body, size_t len,
                               forge_server_reply_cb cb, void *user, forge_error *err) {
    if (!s || !path || !cb || (!body && len)) return err_set(err, FORGE_E_INVALID, "forge_server_post: server, path and cb are required");
    srv_local *l = calloc(1, sizeof *l);
    if (l) {
        l->path = strdup(path);
        l->body = malloc(len + 1);
    }
    if (!l || !l->path || !l->body) {
        if (l) free(l->path), free(l->body);
        free(l);
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    if (len) memcpy(l->body, body, len);
    l->body[len] = 0;
    l->len = len;
    l->cb = cb;
    l->user = user;
    pthread_mutex_lock(&s->q_lock);
    if (s->local_tail) s->local_tail->next = l;
    else s->local_head = l;
    s->local_tail = l;
    pthread_mutex_unlock(&s->q_lock);
    char b = 1;
    if (write(s->wake[1], &b, 1) < 0) { /* full pipe: a wake-up is pending already */ }
    return FORGE_OK;
}

forge_status forge_server_wait_ready(forge_server *s, forge_error *err) {
    if (!s) return err_set(err, FORGE_E_INVALID, "forge_server_wait_ready: no server");
    pthread_mutex_lock(&s->q_lock);
    while (!atomic_load(&s->load_done)) pthread_cond_wait(&s->ready_cond, &s->q_lock);
    pthread_mutex_unlock(&s->q_lock);
    if (s->load_err.code != FORGE_OK) {
        if (err) *err = s->load_err;
        return s->load_err.code;
    }
    return FORGE_OK;
}

forge_engine *forge_server_engine(forge_server *s) {
    if (!s || !atomic_load(&s->load_done) || s->load_err.code != FORGE_OK) return NULL;
    return s->engine;
}

void forge_server_free(forge_server *s) {
    if (!s) return;
    if (s->loader_started) pthread_join(s->loader, NULL);
    gen_cancel_all(s);
    h1_server_free(s->h1); /* closes connections: their requests learn they are gone */
    s->h1 = NULL;
    /* the engine's last events (cancellations) are still queued: apply them to free the
     * requests, then free the engine, which waits for its thread */
    if (s->engine) {
        for (srv_req *r = s->reqs; r; r = r->next)
            for (int i = 0; i < r->n_subs; i++)
                if (r->subs[i].er) forge_request_wait(r->subs[i].er);
        if (s->wake_ev) on_wake(s->wake[0], EV_READ, s);
        forge_engine_free(s->engine);
    }
    pthread_mutex_lock(&s->q_lock);
    for (srv_msg *m = s->q_head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    srv_local *l = s->local_head;
    s->local_head = s->local_tail = NULL;
    pthread_mutex_unlock(&s->q_lock);
    while (l) { /* never started: the server stopped or failed first */
        srv_local *next = l->next;
        srv_err e;
        srv_fail(&e, 503, "shutting_down", NULL, "the server stopped before the request could start");
        local_answer_error(s, l, SRV_ROUTE_OTHER, &e);
        l = next;
    }
    if (s->grace) event_free(s->grace);
    if (s->wake_ev) event_free(s->wake_ev);
    if (s->base) event_base_free(s->base);
    if (s->wake[0] >= 0) close(s->wake[0]);
    if (s->wake[1] >= 0) close(s->wake[1]);
    forge_chat_template_free(s->tmpl);
    forge_tokenizer_close(s->tok);
    forge_model_close(s->model);
    pthread_mutex_destroy(&s->q_lock);
    pthread_cond_destroy(&s->ready_cond);
    sb_free(&s->scratch);
    free(s->s_model), free(s->s_host), free(s->s_key), free(s->s_name), free(s->s_template);
    free(s->s_device);
    free(s->name_json);
    free(s);
}
