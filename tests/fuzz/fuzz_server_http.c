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

/* Walks the answers in a[0..n): each starts with "HTTP/1.1 ddd ", has a head, and a body
 * framed by Content-Length or chunked (or ends the connection); aborts otherwise, or on a 5xx
 * other than 503 (busy, the connection cap) or 505 (an HTTP version other than 1.x), or 500
 * without "out of memory". 100 Continue answers have no body. */
static void check_answers(const char *a, size_t n) {
    size_t off = 0;
    while (off < n) {
        if (n - off < 13 || memcmp(a + off, "HTTP/1.1 ", 9)) abort();
        int status = atoi(a + off + 9);
        const char *end = memmem(a + off, n - off, "\r\n\r\n", 4);
        if (!end) abort(); /* a head cut short */
        size_t head_len = (size_t)(end - (a + off)) + 4;
        char head[4096];
        size_t hn = head_len < sizeof head - 1 ? head_len : sizeof head - 1;
        memcpy(head, a + off, hn);
        head[hn] = 0;
        size_t body = off + head_len;
        if (status >= 500 && status != 503 && status != 505) {
            if (status != 500 || !memmem(a + body, n - body, "out of memory", 13)) abort();
        }
        if (status == 100 || status == 204 || status == 304) {
            off = body;
            continue;
        }
        const char *cl = strstr(head, "Content-Length: ");
        if (cl) {
            size_t len = (size_t)strtoull(cl + 16, NULL, 10);
            /* an answer to HEAD has the length and no body: the next answer follows at once
             * (no body of ours starts with a status line) */
            if (body == n || (n - body >= 9 && !memcmp(a + body, "HTTP/1.1 ", 9))) len = 0;
            if (body + len > n) abort(); /* a body shorter than its length */
            off = body + len;
            continue;
        }
        if (!strstr(head, "Transfer-Encoding: chunked")) return; /* until close */
        size_t p = body;
        for (;;) { /* chunks */
            char *e;
            unsigned long long k = strtoull(a + p, &e, 16);
            const char *crlf = memmem(a + p, n - p, "\r\n", 2);
            if (!crlf || (const char *)e != crlf) {
                if (!crlf) return; /* the client left mid-stream */
                abort();
            }
            p = (size_t)(crlf - a) + 2;
            if (k == 0) {
                p += 2;
                break;
            }
            if (p + k + 2 > n) return; /* cut by the client leaving */
            p += (size_t)k + 2;
        }
        off = p;
    }
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
    /* the answers, one after the other, are well framed, and none is a 5xx other than 503 or 505 */
    size_t n = evbuffer_get_length(got);
    const char *a = n ? (const char *)evbuffer_pullup(got, -1) : "";
    check_answers(a, n);
    evbuffer_free(got);
    /* the client leaves; the server frees the connection and returns to idle */
    h1_close_all(g_s->h1);
    bufferevent_free(pair[1]);
    if (!run_until_idle(NULL, NULL, 20000)) abort();
    return 0;
}
