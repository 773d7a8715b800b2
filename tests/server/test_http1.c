/* The HTTP/1.1 layer (src/server/http1.c): request heads and chunked bodies against RFC 9112's
 * rules (every case written from the RFC, not from the code's output), and whole
 * connections over a bufferevent pair: pipelining, errors that close, bodies refused
 * before they are read, Expect: 100-continue. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "server/http1.h"
#include "test.h"

static long parse(const char *text, h1_head *h, h1_error *e) {
    static char buf[H1_MAX_HEAD + 1];
    size_t n = strlen(text);
    memcpy(buf, text, n + 1);
    return h1_parse_head(buf, n, h, e);
}

TEST(valid_heads) {
    h1_head h;
    h1_error e;
    const char *req = "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length:  12 \r\nX-A: b c\r\n\r\nBODY";
    long n = parse(req, &h, &e);
    CHECK_EQ_INT(n, (long)(strstr(req, "BODY") - req));
    CHECK_EQ_STR(h.method, "POST");
    CHECK_EQ_STR(h.path, "/v1/completions");
    CHECK_EQ_INT(h.minor, 1);
    CHECK(h.has_length && h.length == 12 && !h.chunked && h.keep_alive);
    CHECK_EQ_STR(h1_field_get(&h, "x-a"), "b c");
    CHECK_EQ_STR(h1_field_get(&h, "content-length"), "12");
    /* bare LF line ends, leading empty lines, absolute-form, HTTP/1.0 keep-alive rules */
    CHECK(parse("\r\n\nGET http://h:1/health?q HTTP/1.0\nConnection: keep-alive\n\n", &h, &e) > 0);
    CHECK_EQ_STR(h.path, "/health");
    CHECK(h.minor == 0 && h.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &h, &e) > 0 && !h.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", &h, &e) > 0 && !h.keep_alive);
    CHECK(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &h, &e) > 0);
    CHECK_EQ_STR(h.path, "*");
    /* repeated equal lengths are one length; a chunked body; 100-continue */
    CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", &h, &e) > 0);
    CHECK(h.length == 5);
    CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n", &h, &e) > 0);
    CHECK(h.chunked && h.expect_continue);
    /* incomplete */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n", &h, &e), 0);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r", &h, &e), 0);
}

TEST(invalid_heads) {
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\nContent-Length: 31\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30, 31\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +30\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET relative HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / FTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417},
        {"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", 400},
        {"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h1_head h;
        h1_error e = {0};
        long n = parse(cases[i].req, &h, &e);
        CHECKF(n == -1 && e.status == cases[i].status, "case %zu: got %ld status %d, want status %d", i, n, e.status,
               cases[i].status);
        CHECKF(n != -1 || e.msg[0], "case %zu: no message", i);
    }
}

TEST(size_limits) {
    static char big[H1_MAX_HEAD + 100];
    h1_head h;
    h1_error e;
    /* a target over the limit: 414 */
    strcpy(big, "GET /");
    memset(big + 5, 'a', H1_MAX_TARGET + 10);
    strcpy(big + 5 + H1_MAX_TARGET + 10, " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(h1_parse_head(big, strlen(big), &h, &e) == -1 && e.status == 414);
    /* a head over 64 KB: 431 */
    strcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    size_t n = strlen(big);
    memset(big + n, 'a', H1_MAX_HEAD);
    big[H1_MAX_HEAD] = 0;
    CHECK(h1_parse_head(big, H1_MAX_HEAD, &h, &e) == -1 && e.status == 431);
    /* 101 fields: 431 */
    strcpy(big, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++) sprintf(big + strlen(big), "X-%d: v\r\n", i);
    strcat(big, "\r\n");
    CHECK(h1_parse_head(big, strlen(big), &h, &e) == -1 && e.status == 431);
}

/* Feeds a chunked body in pieces of `step` bytes. Returns the status (0 ok), the body in out
 * and the bytes consumed in *used. */
static int chunked(const char *in, size_t n, size_t step, size_t max, strbuf *out, size_t *used) {
    h1_chunked c = {0};
    sb_reset(out);
    size_t off = 0;
    bool done = false;
    while (off < n && !done) {
        size_t k = n - off < step ? n - off : step;
        h1_error e;
        long r = h1_chunked_feed(&c, in + off, k, out, max, &done, &e);
        if (r < 0) return e.status;
        off += (size_t)r;
        if ((size_t)r < k && !done) return -1; /* stopped early without finishing */
    }
    *used = off;
    return done ? 0 : -2;
}

TEST(chunked_bodies) {
    strbuf out = STRBUF_INIT;
    size_t used;
    const char body[] = "5;name=\"v\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
    for (size_t step = 1; step <= sizeof body; step++) {
        CHECK_EQ_INT(chunked(body, sizeof body - 1, step, 100, &out, &used), 0);
        CHECK_EQ_STR(sb_str(&out), "hello world");
        CHECK_EQ_INT(used, sizeof body - 1 - 4); /* "NEXT" is the next request's */
    }
    CHECK_EQ_INT(chunked("0\r\n\r\n", 5, 5, 100, &out, &used), 0);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(chunked("A\nabcdefghij\n0\n\n", 16, 3, 100, &out, &used), 0); /* bare LF */
    CHECK_EQ_STR(sb_str(&out), "abcdefghij");
    static const struct {
        const char *in;
        int status;
    } bad[] = {
        {"zz\r\n{}\r\n0\r\n\r\n", 400},
        {"\r\nhello\r\n0\r\n\r\n", 400},
        {"-5\r\nhello\r\n0\r\n\r\n", 400},
        {"5\r\nhelloX\r\n0\r\n\r\n", 400},
        {"5\rXhello\r\n0\r\n\r\n", 400},
        {"5;a\x01\r\nhello\r\n0\r\n\r\n", 400},
        {"ffffffffffffffffffffff\r\n", 413},
        {"65\r\n", 413}, /* 101 bytes, over a limit of 100 */
        {"0\r\nX: a\rb\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t step = 1; step <= 7; step += 6) {
            int st = chunked(bad[i].in, strlen(bad[i].in), step, 100, &out, &used);
            CHECKF(st == bad[i].status, "bad case %zu step %zu: got %d, want %d", i, step, st, bad[i].status);
        }
    /* the limit counts the whole body, across chunks */
    char two[300];
    snprintf(two, sizeof two, "32\r\n%050d\r\n32\r\n%050d\r\n1\r\nx\r\n0\r\n\r\n", 0, 0);
    CHECK_EQ_INT(chunked(two, strlen(two), 9, 100, &out, &used), 413);
    CHECK_EQ_INT(chunked(two, strlen(two), 9, 101, &out, &used), 0);
    sb_free(&out);
}

/* ---- whole connections over a bufferevent pair ---------------------------------------- */

static struct {
    int heads, requests, errors, gone, written, closed;
    char last_body[256];
} g;

static int g_refuse; /* the head hook answers this status (0: read the body) */

static int hook_head(h1_conn *c, void *u) {
    (void)u;
    g.heads++;
    if (g_refuse) {
        h1_respond(c, g_refuse, "refused", 7);
        return 1;
    }
    return 0;
}
static void hook_request(h1_conn *c, void *u) {
    (void)u;
    g.requests++;
    snprintf(g.last_body, sizeof g.last_body, "%s", c->body.data ? c->body.data : "");
    char ans[300];
    int n = snprintf(ans, sizeof ans, "%s:%zu", c->head.path, c->body.len);
    h1_respond(c, 200, ans, (size_t)n);
}
static void hook_error(h1_conn *c, const h1_error *e, void *u) {
    (void)u;
    g.errors++;
    h1_respond(c, e->status, e->code ? e->code : "error", strlen(e->code ? e->code : "error"));
}
static void hook_gone(h1_conn *c, void *u) { (void)c, (void)u, g.gone++; }
static void hook_written(h1_conn *c, void *u) { (void)c, (void)u, g.written++; }
static void hook_closed(h1_conn *c, void *u) { (void)c, (void)u, g.closed++; }

/* Sends `in` from a client end and collects what the server answers until it closes or
 * nothing more comes. */
static void exchange(const char *in, size_t n, size_t max_body, strbuf *answer, bool *closed) {
    memset(&g, 0, sizeof g - sizeof g.last_body);
    struct event_base *base = event_base_new();
    h1_params p = {.max_body = max_body, .request_timeout = 30, .max_conns = 4,
                   .hooks = {hook_head, hook_request, hook_error, hook_gone, hook_written, hook_closed}};
    h1_server *hs = h1_server_new(base, &p);
    struct bufferevent *pair[2];
    bufferevent_pair_new(base, 0, pair);
    h1_adopt(hs, pair[0], -1);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    bufferevent_write(pair[1], in, n);
    sb_reset(answer);
    for (int i = 0; i < 200; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        struct evbuffer *b = bufferevent_get_input(pair[1]);
        size_t k = evbuffer_get_length(b);
        if (k) {
            sb_reserve(answer, k);
            evbuffer_remove(b, answer->data + answer->len, k);
            answer->len += k;
            answer->data[answer->len] = 0;
        }
    }
    *closed = h1_conn_count(hs) == 0;
    h1_server_free(hs);
    bufferevent_free(pair[1]);
    event_base_free(base);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

TEST(connections) {
    strbuf a = STRBUF_INIT;
    bool closed;
    /* two pipelined requests: two answers, in order, the connection kept */
    const char two[] = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                       "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
    exchange(two, sizeof two - 1, 100, &a, &closed);
    CHECK_EQ_INT(g.requests, 2);
    CHECK(strstr(sb_str(&a), "/a:3") && strstr(sb_str(&a), "/b:2") && strstr(sb_str(&a), "/a:3") < strstr(sb_str(&a), "/b:2"));
    CHECK_EQ_INT(count(sb_str(&a), "HTTP/1.1 200 OK\r\n"), 2);
    CHECK_EQ_INT(count(sb_str(&a), "Content-Length: 4\r\n"), 2);
    CHECK(!closed);
    CHECK_EQ_STR(g.last_body, "hi");
    /* Connection: close: answered, then closed; nothing read after it */
    const char cl[] = "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(cl, sizeof cl - 1, 100, &a, &closed);
    CHECK(g.requests == 1 && closed && strstr(sb_str(&a), "Connection: close\r\n"));
    /* a framing error: the error hook answers, the connection closes, what follows is unread */
    const char bad[] = "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nabGET /f HTTP/1.1\r\n\r\n";
    exchange(bad, sizeof bad - 1, 100, &a, &closed);
    CHECK(g.errors == 1 && g.requests == 0 && closed);
    CHECK(!strncmp(sb_str(&a), "HTTP/1.1 400 Bad Request\r\n", 26));
    /* a body over the limit: 413 before reading it */
    const char big[] = "POST /g HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n";
    exchange(big, sizeof big - 1, 100, &a, &closed);
    CHECK(g.errors == 1 && g.requests == 0 && closed && !strncmp(sb_str(&a), "HTTP/1.1 413 ", 13));
    /* refused at the head (as a wrong API key is): the body is never read, then close */
    const char ref[] = "POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n0123456789";
    g_refuse = 401;
    exchange(ref, sizeof ref - 1, 100, &a, &closed);
    CHECK(g.heads == 1 && g.requests == 0 && closed);
    CHECK(strstr(sb_str(&a), "HTTP/1.1 401 Unauthorized\r\n") != NULL);
    g_refuse = 0;
    /* Expect: 100-continue gets its interim answer before the final one */
    const char ex[] = "POST /i HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
    exchange(ex, sizeof ex - 1, 100, &a, &closed);
    CHECK(!strncmp(sb_str(&a), "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 42));
    /* HEAD: the length of the GET answer, no body */
    const char hd[] = "HEAD /j HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(hd, sizeof hd - 1, 100, &a, &closed);
    CHECK(strstr(sb_str(&a), "Content-Length: 4\r\n") && !strstr(sb_str(&a), "/j:0"));
    /* a head that never ends within the limit: 431 */
    strbuf huge = STRBUF_INIT;
    sb_puts(&huge, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    for (int i = 0; i < H1_MAX_HEAD; i++) sb_putc(&huge, 'a');
    exchange(huge.data, huge.len, 100, &a, &closed);
    CHECK(closed && !strncmp(sb_str(&a), "HTTP/1.1 431 ", 13));
    sb_free(&huge);
    sb_free(&a);
}

int main(void) {
    RUN(valid_heads);
    RUN(invalid_heads);
    RUN(size_limits);
    RUN(chunked_bodies);
    RUN(connections);
    return t_summary();
}
