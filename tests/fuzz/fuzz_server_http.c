/* libFuzzer: HTTP requests through the whole server: a real forge_server (the built-in model,
 * a chat template, a 64-token context so that any request ends quickly, no socket) gets the
 * fuzz input as a client's bytes on a connection over a bufferevent pair; its loop runs until
 * every request has ended; then the client leaves. Routes, the API key, request JSON, the
 * chat template, the engine and the answers all run as in `forge serve`. Any crash, leak,
 * a 5xx other than 503, 505 or out-of-memory, an answer that is not an HTTP/1.1 status line, or a server
 * that does not return to idle aborts.
 * Input: the client's bytes. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/server_int.h"

static forge_server *g_s;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    forge_server_params p = forge_server_default_params();
    p.model = "tests/fixtures/stories260K";
    p.port = -1;
    p.api_key = "k";
    p.chat_template = "tests/fixtures/server/chat_template.jinja";
    p.max_choices = 4;
    p.model_params.max_model_len = 64;
    p.model_params.n_threads = 1;
    p.engine.n_threads = 1;
    p.engine.max_seqs = 4;
    forge_error err;
    log_set_level(LOG_ERROR);
    g_s = forge_server_create(&p, &err);
    if (!g_s || forge_server_wait_ready(g_s, &err) != FORGE_OK) {
        fprintf(stderr, "fuzz_server_http: %s\n", err.msg);
        abort();
    }
    for (int i = 0; i < 1000 && atomic_load(&g_s->state) != SRV_READY; i++) event_base_loop(g_s->base, EVLOOP_ONCE);
    if (atomic_load(&g_s->state) != SRV_READY) abort();
    return 0;
}

/* Runs the loop until the server is idle (no request, nothing owed), at most `rounds` waits. */
static bool run_until_idle(struct bufferevent *client, struct evbuffer *got, int rounds) {
    for (int i = 0; i < rounds; i++) {
        event_base_loop(g_s->base, g_s->n_reqs ? EVLOOP_ONCE : EVLOOP_NONBLOCK);
        if (client) evbuffer_add_buffer(got, bufferevent_get_input(client));
        if (!g_s->n_reqs && !g_s->n_unflushed && i > 8) return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(g_s->base, 0, pair) != 0) abort();
    if (!h1_adopt(g_s->h1, pair[0], -1)) abort();
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    bufferevent_write(pair[1], data, size);
    struct evbuffer *got = evbuffer_new();
    if (!run_until_idle(pair[1], got, 20000)) abort(); /* a request that never ends */
    /* every answer starts with a status line; no 5xx but out of memory */
    size_t n = evbuffer_get_length(got);
    const char *a = (const char *)evbuffer_pullup(got, -1);
    if (n && (n < 12 || memcmp(a, "HTTP/1.1 ", 9))) abort();
    for (size_t off = 0; n && off + 12 <= n;) {
        const char *p = memmem(a + off, n - off, "HTTP/1.1 5", 10);
        if (!p) break;
        /* 503: busy or the connection cap; 505: an HTTP version other than 1.x */
        if (memcmp(p, "HTTP/1.1 503 ", 13) != 0 && memcmp(p, "HTTP/1.1 505 ", 13) != 0 &&
            !memmem(p, n - (size_t)(p - a), "out of memory", 13))
            abort();
        off = (size_t)(p - a) + 10;
    }
    evbuffer_free(got);
    /* the client leaves; the server frees the connection and returns to idle */
    h1_close_all(g_s->h1);
    bufferevent_free(pair[1]);
    if (!run_until_idle(NULL, NULL, 20000)) abort();
    return 0;
}
