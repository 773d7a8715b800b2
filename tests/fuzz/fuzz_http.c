/* libFuzzer: the server's HTTP/1.1 layer (src/server/http1.c) as it runs: bytes from a
 * client, cut into pieces, go through a connection over a bufferevent pair with hooks that
 * answer as the server's routes do (at the head, after the body, streamed, or refused);
 * then the head parser and the chunked decoder on their own, each fed whole and byte by
 * byte, which must agree. Any crash, leak, hang, a malformed answer, or a disagreement
 * aborts.
 * Input: byte 0 picks the hooks' behaviour and the piece sizes, the rest is the client's. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http1.h"

static int g_mode;

static int on_head(h1_conn *c, void *u) {
    (void)u;
    if ((g_mode & 3) == 1 && c->head.path[0] && c->head.path[1] == 'r') { /* "/r...": refused at the head */
        h1_respond(c, 401, "{\"error\":{}}", 12);
        return 1;
    }
    return 0;
}

static void on_request(h1_conn *c, void *u) {
    (void)u;
    if (c->body.data && strlen(c->body.data) > c->body.len) abort(); /* NUL-terminated at len */
    if (g_mode & 4) {
        h1_add_field(c, "Content-Type", "text/event-stream");
        h1_stream_begin(c, 200);
        h1_stream_write(c, "data: 1\n\n", 9);
        h1_stream_write(c, c->body.data ? c->body.data : "", c->body.len);
        h1_stream_end(c);
    } else {
        h1_add_field(c, "Content-Type", "application/json");
        h1_respond(c, 200, c->body.data ? c->body.data : "", c->body.len);
    }
}

static void on_error(h1_conn *c, const h1_error *e, void *u) {
    (void)u;
    if (e->status < 400 || e->status > 599 || !e->msg[0]) abort();
    h1_respond(c, e->status, e->msg, strlen(e->msg));
}

static void on_gone(h1_conn *c, void *u) { (void)c, (void)u; }
static void on_written(h1_conn *c, void *u) { (void)c, (void)u; }
static void on_closed(h1_conn *c, void *u) { (void)c, (void)u; }

/* Every answer starts with a status line. */
static void check_answers(const char *a, size_t n) {
    if (n && (n < 12 || memcmp(a, "HTTP/1.1 ", 9) != 0)) abort();
}

static void run_connection(const uint8_t *data, size_t size) {
    struct event_base *base = event_base_new();
    h1_params p = {.max_body = 4096, .request_timeout = 30, .max_conns = 2,
                   .hooks = {on_head, on_request, on_error, on_gone, on_written, on_closed}};
    h1_server *hs = h1_server_new(base, &p);
    struct bufferevent *pair[2];
    if (!base || !hs || bufferevent_pair_new(base, 0, pair) != 0) abort();
    h1_adopt(hs, pair[0], -1);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    size_t piece = 1 + (size_t)(g_mode >> 3) * 7, off = 0;
    struct evbuffer *got = evbuffer_new();
    while (off < size) {
        size_t k = size - off < piece ? size - off : piece;
        bufferevent_write(pair[1], data + off, k);
        off += k;
        for (int i = 0; i < 4; i++) event_base_loop(base, EVLOOP_NONBLOCK);
        evbuffer_add_buffer(got, bufferevent_get_input(pair[1]));
    }
    for (int i = 0; i < 8; i++) event_base_loop(base, EVLOOP_NONBLOCK);
    evbuffer_add_buffer(got, bufferevent_get_input(pair[1]));
    size_t n = evbuffer_get_length(got);
    check_answers((const char *)evbuffer_pullup(got, -1), n);
    evbuffer_free(got);
    h1_server_free(hs);
    bufferevent_free(pair[1]);
    event_base_free(base);
}

static void run_parsers(const uint8_t *data, size_t size) {
    /* the head parser: never reads past len, and a complete head is no longer than the input */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    h1_head h;
    h1_error e;
    long n = h1_parse_head(buf, size, &h, &e);
    if (n > (long)size || (n < 0 && (e.status < 400 || !e.msg[0]))) abort();
    if (n > 0 && (!h.method || !h.path || (h.minor != 0 && h.minor != 1))) abort();
    free(buf);
    /* the chunked decoder: whole and byte by byte give the same verdict and body */
    strbuf a = STRBUF_INIT, b = STRBUF_INIT;
    h1_chunked ca = {0}, cb = {0};
    bool da = false, db = false;
    long ua = h1_chunked_feed(&ca, (const char *)data, size, &a, 4096, &da, &e);
    int sa = ua < 0 ? e.status : 0;
    long ub = 0;
    int sb = 0;
    for (size_t i = 0; i < size && !db; i++) {
        long r = h1_chunked_feed(&cb, (const char *)data + i, 1, &b, 4096, &db, &e);
        if (r < 0) {
            sb = e.status;
            break;
        }
        ub += r;
    }
    if (sa != sb) abort();
    if (!sa && (da != db || (da && (ua != ub || a.len != b.len || memcmp(sb_str(&a), sb_str(&b), a.len))))) abort();
    if (a.len > 4096 || b.len > 4096) abort();
    sb_free(&a);
    sb_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    g_mode = data[0];
    run_connection(data + 1, size - 1);
    run_parsers(data + 1, size - 1);
    return 0;
}
