/* http1.c: HTTP/1.1 connections, the accept loop and answers (contract in http1.h; heads and
 * chunked bodies are parsed in http1_parse.c; why this is ours and not evhttp's in
 * docs/http.md). */
#include "server/http1.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "base/log.h"
#include "base/port.h"
#include "base/timing.h"

/* ---- libevent's log ------------------------------------------------------------------- */

/* libevent logs from inside its calls (accept failures, for one): at most 10 lines a
 * second reach Forge's log, then one line saying how many were left out. */
static void forward_event_log(int severity, const char *msg) {
    static _Atomic long window;
    static atomic_int in_window, dropped;
    long now = (long)time(NULL);
    if (atomic_exchange(&window, now) != now) {
        int d = atomic_exchange(&dropped, 0);
        atomic_store(&in_window, 0);
        if (d) log_warn("libevent: %d more message(s) left out", d);
    }
    if (atomic_fetch_add(&in_window, 1) >= 10) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    if (severity >= EVENT_LOG_WARN) log_warn("libevent: %s", msg);
    else log_msg(LOG_DEBUG, "libevent: %s", msg);
}

/* ---- connections ---------------------------------------------------------------------- */

struct h1_server {
    struct event_base *base;
    h1_params p;
    struct timeval request_tv;
    struct evconnlistener *listener;
    struct event *backoff;
    double backoff_s;
    bool paused;   /* accepting stopped by the back-off */
    bool capped;   /* accepting stopped at the connection cap */
    bool draining;
    h1_conn *conns;
    int n_conns;
};

enum { ST_HEAD, ST_BODY, ST_BUSY, ST_WRITING, ST_CLOSING, ST_LINGER };

/* After an answer that left request bytes unread, the write side is shut and what the client
 * still sends is read and dropped for a while before closing: closing a socket with unread
 * input makes the kernel send a reset, which can destroy the answer in flight (RFC 9112
 * section 9.6; nginx's lingering_close). */
#define LINGER_SECONDS 2
#define LINGER_MAX_BYTES (8u << 20)

static void conn_process(h1_conn *c);

static void listener_update(h1_server *hs) {
    if (!hs->listener) return;
    /* past the cap, a few more are accepted only to be told 503 */
    int extra = hs->p.max_conns / 4 + 1 < 64 ? hs->p.max_conns / 4 + 1 : 64;
    bool want = !hs->paused && hs->n_conns < hs->p.max_conns + extra;
    if (want && hs->capped) evconnlistener_enable(hs->listener);
    if (!want && !hs->capped) evconnlistener_disable(hs->listener);
    hs->capped = !want;
}

static void conn_free(h1_conn *c) {
    h1_server *hs = c->hs;
    if (c->prev) c->prev->next = c->next;
    else hs->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    hs->n_conns--;
    hs->p.hooks.closed(c, hs->p.user);
    if (c->timer) event_free(c->timer);
    if (c->bev) bufferevent_free(c->bev);
    free(c->headbuf);
    sb_free(&c->body);
    sb_free(&c->out_headers);
    free(c);
    listener_update(hs);
}

/* Frees c now, or when the callback running on it returns. */
static void conn_release(h1_conn *c) {
    if (c->in_cb) c->dead = true;
    else conn_free(c);
}

static void conn_leave(h1_conn *c) {
    if (--c->in_cb == 0 && c->dead) conn_free(c);
}

/* The client of a request being answered is gone. */
static void conn_gone(h1_conn *c) {
    if (c->dead) return;
    if (c->state == ST_BUSY || c->state == ST_WRITING) {
        c->state = ST_CLOSING;
        c->in_cb++;
        c->hs->p.hooks.gone(c, c->hs->p.user);
        c->in_cb--;
    }
    conn_release(c);
}

static void arm_deadline(h1_conn *c) {
    if (c->timer) evtimer_add(c->timer, &c->hs->request_tv);
}

static void set_write_timeout(h1_conn *c, bool on) {
    bufferevent_set_timeouts(c->bev, NULL, on ? &c->hs->request_tv : NULL);
}

/* The layer's own error answer; the connection closes after it. */
static void conn_error(h1_conn *c, const h1_error *e) {
    c->close_after = true;
    c->unread = true;
    c->head.minor = 1;
    c->state = ST_BUSY;
    c->head_only = false;
    bufferevent_disable(c->bev, EV_READ);
    if (c->timer) evtimer_del(c->timer);
    c->hs->p.hooks.error(c, e, c->hs->p.user);
}

static void start_request(h1_conn *c) {
    c->state = ST_BUSY;
    if (c->timer) evtimer_del(c->timer);
    set_write_timeout(c, true);
    c->hs->p.hooks.request(c, c->hs->p.user);
}

/* The head is in headbuf[0..have): parse it, run the head hook, prepare the body. */
static void got_head(h1_conn *c) {
    h1_error e;
    long n = h1_parse_head(c->headbuf, c->head_have, &c->head, &e);
    if (n == 0) { /* cannot happen: the caller found the end of the head */
        h1_fail(&e, 400, "bad_request", "incomplete request head");
        n = -1;
    }
    if (n < 0) {
        conn_error(c, &e);
        return;
    }
    /* bytes read past the head belong to the body (or the next request) */
    size_t extra = c->head_have - (size_t)n;
    if (extra) evbuffer_prepend(bufferevent_get_input(c->bev), c->headbuf + n, extra);
    c->head_have = (size_t)n;
    c->head_only = !strcmp(c->head.method, "HEAD");
    if (c->hs->draining) c->head.keep_alive = false;
    c->close_after = !c->head.keep_alive;
    bool has_body = c->head.chunked || c->head.length > 0;
    c->state = ST_BUSY;
    if (c->hs->p.hooks.head(c, c->hs->p.user)) {
        if (has_body) { /* answered without reading the body: it cannot be skipped safely */
            c->close_after = true;
            c->unread = true;
            bufferevent_disable(c->bev, EV_READ);
        }
        if (c->timer) evtimer_del(c->timer);
        return;
    }
    if (c->dead) return;
    if (c->head.has_length && c->head.length > c->hs->p.max_body) {
        h1_fail(&e, 413, "request_too_large", "the request body (%llu bytes) is larger than the limit of %zu bytes",
             (unsigned long long)c->head.length, c->hs->p.max_body);
        conn_error(c, &e);
        return;
    }
    sb_reset(&c->body);
    memset(&c->ch, 0, sizeof c->ch);
    if (!has_body) {
        sb_append(&c->body, "", 0);
        start_request(c);
        return;
    }
    if (c->head.has_length && !sb_reserve(&c->body, (size_t)c->head.length + 1)) {
        h1_fail(&e, 500, NULL, "out of memory for the request body");
        conn_error(c, &e);
        return;
    }
    if (c->head.expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        bufferevent_write(c->bev, cont, sizeof cont - 1);
    }
    c->state = ST_BODY;
}

/* Looks for the end of the head (an empty line after a non-empty one) in the new bytes of
 * headbuf: each byte is looked at once however slowly the head arrives. */
static bool head_complete(h1_conn *c) {
    const char *b = c->headbuf;
    size_t i = c->head_scanned, have = c->head_have;
    if (!c->seen_text) { /* empty lines before the request line */
        while (i < have && (b[i] == '\r' || b[i] == '\n')) i++;
        if (i == have) {
            c->head_scanned = i;
            return false;
        }
        c->seen_text = true;
        c->text_start = i;
    }
    for (; i < have; i++) {
        if (b[i] != '\n') continue;
        size_t j = i;
        if (j > c->text_start && b[j - 1] == '\r') j--;
        if (j > c->text_start && b[j - 1] == '\n') {
            c->head_scanned = i + 1;
            return true;
        }
    }
    c->head_scanned = have;
    return false;
}

static void conn_process(h1_conn *c) {
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->dead) {
        if (c->state == ST_HEAD) {
            size_t avail = evbuffer_get_length(in);
            if (!avail) return;
            size_t room = H1_MAX_HEAD - c->head_have;
            size_t k = avail < room ? avail : room;
            if (k) {
                evbuffer_remove(in, c->headbuf + c->head_have, k);
                c->head_have += k;
                c->headbuf[c->head_have] = 0;
            }
            if (head_complete(c)) {
                got_head(c);
                continue;
            }
            if (c->head_have >= H1_MAX_HEAD) { /* no end in sight: the parser says what is wrong */
                h1_error e;
                if (h1_parse_head(c->headbuf, c->head_have, &c->head, &e) >= 0)
                    h1_fail(&e, 431, "request_header_fields_too_large", "the request head is larger than %d bytes", H1_MAX_HEAD);
                conn_error(c, &e);
            }
            return;
        }
        if (c->state == ST_BODY) {
            size_t avail = evbuffer_get_length(in);
            if (!avail) return;
            if (c->head.has_length) {
                size_t want = (size_t)c->head.length - c->body.len;
                size_t k = avail < want ? avail : want;
                if (!sb_reserve(&c->body, k)) {
                    h1_error e;
                    h1_fail(&e, 500, NULL, "out of memory reading the request body");
                    conn_error(c, &e);
                    return;
                }
                evbuffer_remove(in, c->body.data + c->body.len, k);
                c->body.len += k;
                c->body.data[c->body.len] = 0;
                if (c->body.len == c->head.length) start_request(c);
                continue;
            }
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) return;
            bool done = false;
            h1_error e;
            long used = h1_chunked_feed(&c->ch, v.iov_base, v.iov_len, &c->body, c->hs->p.max_body, &done, &e);
            if (used < 0) {
                conn_error(c, &e);
                return;
            }
            evbuffer_drain(in, (size_t)used);
            if (done) {
                sb_append(&c->body, "", 0); /* NUL-terminated, even when empty */
                if (sb_failed(&c->body)) {
                    h1_fail(&e, 500, NULL, "out of memory reading the request body");
                    conn_error(c, &e);
                    return;
                }
                start_request(c);
            }
            continue;
        }
        return; /* busy: pipelined bytes wait */
    }
}

static void on_read(struct bufferevent *bev, void *arg) {
    (void)bev;
    h1_conn *c = arg;
    if (c->state == ST_LINGER) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        c->lingered += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (c->lingered > LINGER_MAX_BYTES) conn_release(c);
        return;
    }
    c->in_cb++;
    conn_process(c);
    conn_leave(c);
}

/* The answer went out: next request, or close. */
static void on_write(struct bufferevent *bev, void *arg) {
    (void)bev;
    h1_conn *c = arg;
    if (c->state != ST_WRITING && c->state != ST_CLOSING) return;
    if (evbuffer_get_length(bufferevent_get_output(c->bev))) return;
    c->in_cb++;
    if (c->state == ST_WRITING) c->hs->p.hooks.written(c, c->hs->p.user);
    if (c->close_after || c->peer_eof || c->state == ST_CLOSING) {
        if (c->unread && c->fd >= 0 && !c->peer_eof && !c->dead && shutdown(c->fd, SHUT_WR) == 0) {
            c->state = ST_LINGER;
            evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
            bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
            bufferevent_enable(c->bev, EV_READ);
            struct timeval tv = {LINGER_SECONDS, 0};
            if (c->timer) evtimer_add(c->timer, &tv);
        } else {
            if (c->state == ST_WRITING) c->state = ST_CLOSING;
            conn_release(c);
        }
    } else {
        c->state = ST_HEAD;
        c->head_have = c->head_scanned = c->text_start = 0;
        c->seen_text = false;
        c->route = -1;
        c->req = NULL;
        c->t_idle = time_sec();
        set_write_timeout(c, false);
        arm_deadline(c);
        bufferevent_enable(c->bev, EV_READ);
        conn_process(c);
    }
    conn_leave(c);
}

/* Did the peer reset the connection (it had closed, not half-closed)? */
static bool peer_reset(h1_conn *c) {
    if (c->fd < 0) return false;
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err) return true;
    return port_tcp_peer_gone(c->fd);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    h1_conn *c = arg;
    c->in_cb++;
    if (c->state == ST_LINGER) {
        conn_release(c);
    } else if (c->state == ST_BUSY && c->peer_eof) { /* the half-close probe */
        if (peer_reset(c)) conn_gone(c);
        else if (c->probes < 4) {
            static const double wait_s[] = {0.02, 0.1, 0.5, 2.0};
            struct timeval tv = {0, (suseconds_t)(wait_s[c->probes] * 1e6)};
            if (wait_s[c->probes] >= 1) tv = (struct timeval){(time_t)wait_s[c->probes], 0};
            c->probes++;
            evtimer_add(c->timer, &tv);
        }
    } else if (c->state == ST_HEAD || c->state == ST_BODY) {
        if (c->state == ST_HEAD && c->head_have == 0 && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            conn_release(c); /* an idle keep-alive connection */
        } else {
            h1_error e;
            h1_fail(&e, 408, "request_timeout", "the request did not arrive within %.3g s", c->hs->p.request_timeout);
            conn_error(c, &e);
        }
    }
    conn_leave(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    h1_conn *c = arg;
    c->in_cb++;
    if (c->state == ST_LINGER) {
        conn_release(c);
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        conn_gone(c); /* reset, write error, or no write progress */
    } else if (what & BEV_EVENT_EOF) {
        c->peer_eof = true;
        switch (c->state) {
        case ST_HEAD:
        case ST_BODY: conn_release(c); break; /* nothing (whole) to answer */
        case ST_BUSY:
            if (c->streaming) break; /* the next write tells whether the client is there */
            if (c->head.minor == 0 || c->fd < 0) {
                conn_gone(c);
                break;
            }
            /* half-closed, or closed? An interim answer makes a closed peer reset. */
            {
                static const char probe[] = "HTTP/1.1 100 Continue\r\n\r\n";
                bufferevent_write(c->bev, probe, sizeof probe - 1);
                bufferevent_flush(c->bev, EV_WRITE, BEV_FLUSH);
                c->probes = 0;
                struct timeval tv = {0, 5000};
                if (c->timer) evtimer_add(c->timer, &tv);
            }
            break;
        default: break; /* writing: finish, then close */
        }
    }
    conn_leave(c);
}

h1_conn *h1_adopt(h1_server *hs, struct bufferevent *bev, int fd) {
    h1_conn *c = calloc(1, sizeof *c);
    if (c) c->headbuf = malloc(H1_MAX_HEAD + 1);
    if (c && c->headbuf) c->timer = evtimer_new(hs->base, on_timer, c);
    if (!c || !c->headbuf || !c->timer) {
        if (c) free(c->headbuf);
        free(c);
        bufferevent_free(bev);
        return NULL;
    }
    c->hs = hs;
    c->bev = bev;
    c->fd = fd;
    c->route = -1;
    c->t_idle = time_sec();
    c->next = hs->conns;
    if (hs->conns) hs->conns->prev = c;
    hs->conns = c;
    hs->n_conns++;
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    /* pipelined bytes read ahead while a request is answered stay bounded */
    bufferevent_setwatermark(bev, EV_READ, 0, H1_MAX_HEAD);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    arm_deadline(c);
    listener_update(hs);
    return c;
}

/* At the cap: close the connection idle the longest, if any is idle. */
static bool evict_idle(h1_server *hs) {
    h1_conn *oldest = NULL;
    for (h1_conn *c = hs->conns; c; c = c->next)
        if (c->state == ST_HEAD && !c->head_have && !c->in_cb && !c->dead &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 && (!oldest || c->t_idle < oldest->t_idle))
            oldest = c;
    if (!oldest) return false;
    conn_free(oldest);
    return true;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg) {
    (void)l, (void)sa, (void)salen;
    h1_server *hs = arg;
    hs->backoff_s = 0;
    bool over = hs->n_conns >= hs->p.max_conns && !evict_idle(hs);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev = bufferevent_socket_new(hs->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return;
    }
    h1_conn *c = h1_adopt(hs, bev, fd);
    if (c && over) {
        h1_error e;
        h1_fail(&e, 503, "too_many_connections", "the server has %d connections open, its limit (--max-connections)",
             hs->p.max_conns);
        c->in_cb++;
        conn_error(c, &e);
        conn_leave(c);
    }
}

static void on_backoff(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    h1_server *hs = arg;
    hs->paused = false;
    listener_update(hs);
}

/* accept() failed (out of file descriptors, or memory): stop accepting for a while. */
static void on_accept_error(struct evconnlistener *l, void *arg) {
    (void)l;
    h1_server *hs = arg;
    int err = EVUTIL_SOCKET_ERROR();
    hs->backoff_s = hs->backoff_s ? hs->backoff_s * 2 : 0.01;
    if (hs->backoff_s > 1) hs->backoff_s = 1;
    forward_event_log(EVENT_LOG_WARN, err == EMFILE || err == ENFILE
                                     ? "accept: out of file descriptors; pausing new connections (raise ulimit -n or "
                                       "lower --max-connections)"
                                     : "accept failed; pausing new connections");
    hs->paused = true;
    listener_update(hs);
    struct timeval tv = {(time_t)hs->backoff_s, (suseconds_t)((hs->backoff_s - (double)(time_t)hs->backoff_s) * 1e6)};
    if (hs->backoff) evtimer_add(hs->backoff, &tv);
}

h1_server *h1_server_new(struct event_base *base, const h1_params *p) {
    h1_server *hs = calloc(1, sizeof *hs);
    if (!hs) return NULL;
    hs->base = base;
    hs->p = *p;
    if (hs->p.max_conns < 1) hs->p.max_conns = 1;
    double rt = p->request_timeout > 0 ? p->request_timeout : 60;
    hs->request_tv.tv_sec = (time_t)rt;
    hs->request_tv.tv_usec = (suseconds_t)((rt - (double)(time_t)rt) * 1e6);
    hs->backoff = evtimer_new(base, on_backoff, hs);
    if (!hs->backoff) {
        free(hs);
        return NULL;
    }
    event_set_log_callback(forward_event_log);
    return hs;
}

int h1_listen(h1_server *hs, const char *host, int port, int *bound, char *msg, size_t msg_len) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) {
        snprintf(msg, msg_len, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int err = 0;
    for (struct addrinfo *a = res; a && !hs->listener; a = a->ai_next) {
        hs->listener = evconnlistener_new_bind(hs->base, on_accept, hs,
                                               LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 511,
                                               a->ai_addr, (int)a->ai_addrlen);
        if (!hs->listener) err = errno;
    }
    freeaddrinfo(res);
    if (!hs->listener) {
        snprintf(msg, msg_len, "%s", strerror(err ? err : EADDRNOTAVAIL));
        return -1;
    }
    evconnlistener_set_error_cb(hs->listener, on_accept_error);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound = port;
    if (getsockname(evconnlistener_get_fd(hs->listener), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) *bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) *bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

void h1_set_draining(h1_server *hs, bool on) { hs->draining = on; }

int h1_conn_count(const h1_server *hs) { return hs ? hs->n_conns : 0; }

void h1_close_all(h1_server *hs) {
    while (hs && hs->conns) {
        h1_conn *c = hs->conns;
        if (c->state == ST_BUSY || c->state == ST_WRITING) {
            c->state = ST_CLOSING;
            hs->p.hooks.gone(c, hs->p.user);
        }
        conn_free(c);
    }
}

void h1_server_free(h1_server *hs) {
    if (!hs) return;
    if (hs->listener) evconnlistener_free(hs->listener);
    hs->listener = NULL;
    h1_close_all(hs);
    if (hs->backoff) event_free(hs->backoff);
    free(hs);
}

/* ---- answers -------------------------------------------------------------------------- */

static const char *reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

void h1_add_field(h1_conn *c, const char *name, const char *value) {
    sb_printf(&c->out_headers, "%s: %s\r\n", name, value);
}

static void write_head(h1_conn *c, int status, const char *framing) {
    if (c->hs->draining) c->close_after = true;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    char line[512];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s", status, reason(status), date,
                     framing, c->close_after ? "Connection: close\r\n" : c->head.minor == 0 ? "Connection: keep-alive\r\n" : "");
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, line, (size_t)n);
    evbuffer_add(out, c->out_headers.data ? c->out_headers.data : "", c->out_headers.len);
    evbuffer_add(out, "\r\n", 2);
    sb_reset(&c->out_headers);
}

/* Once the last byte is queued: written out when the output empties (on_write). */
static void answer_queued(h1_conn *c) {
    if (c->state != ST_CLOSING) c->state = ST_WRITING;
    if (c->close_after || c->peer_eof) bufferevent_disable(c->bev, EV_READ);
    if (c->timer) evtimer_del(c->timer);
}

void h1_respond(h1_conn *c, int status, const char *body, size_t len) {
    if (!c || c->dead || c->state == ST_CLOSING || c->state == ST_WRITING) return;
    char framing[64];
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    if (no_body) framing[0] = 0;
    else snprintf(framing, sizeof framing, "Content-Length: %zu\r\n", len);
    write_head(c, status, framing);
    if (!no_body && !c->head_only && len) evbuffer_add(bufferevent_get_output(c->bev), body, len);
    answer_queued(c);
}

void h1_stream_begin(h1_conn *c, int status) {
    if (!c || c->dead || c->state != ST_BUSY) return;
    c->streaming = true;
    c->stream_chunked = c->head.minor == 1;
    if (!c->stream_chunked) c->close_after = true;
    write_head(c, status, c->stream_chunked ? "Transfer-Encoding: chunked\r\n" : "");
}

void h1_stream_write(h1_conn *c, const char *data, size_t len) {
    if (!c || c->dead || !c->streaming || c->state != ST_BUSY || !len || c->head_only) return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->stream_chunked) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        evbuffer_add(out, size, (size_t)n);
    }
    evbuffer_add(out, data, len);
    if (c->stream_chunked) evbuffer_add(out, "\r\n", 2);
}

void h1_stream_end(h1_conn *c) {
    if (!c || c->dead || !c->streaming || c->state != ST_BUSY) return;
    if (c->stream_chunked && !c->head_only) evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
    c->streaming = false;
    answer_queued(c);
}

size_t h1_unsent(const h1_conn *c) { return c && c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0; }

void h1_drop(h1_conn *c) {
    if (c && !c->dead) conn_gone(c);
}
