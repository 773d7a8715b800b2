/* http1.h: the server's HTTP/1.1 layer (RFC 9112) on libevent's event loop and bufferevents.
 *
 * Why our own framing and not evhttp or libmicrohttpd: docs/http.md. In short, libevent 2.1's
 * evhttp reads a whole body before the server sees a header (no hook to refuse an
 * unauthenticated upload), takes the first of conflicting Content-Length fields, reads
 * "gzip, chunked" as chunked, and answers its own errors in HTML; libmicrohttpd 0.9.75 (Debian
 * 12) answers framing errors with fixed HTML pages too; llhttp is not packaged as a C library
 * in Debian 12. libevent stays for what it does well: the loop, sockets, buffers, timers.
 *
 * Contract:
 * - Requests are parsed strictly: request line `METHOD SP target SP HTTP/1.0|1.1`, header
 *   fields `name ":" OWS value OWS` (no space before the colon, no obs-fold, no control
 *   characters), CRLF or bare LF line ends (a bare CR is an error). HTTP/1.1 needs exactly one
 *   Host. Content-Length is 1*DIGIT (repeated values must all be equal); Transfer-Encoding
 *   must be exactly "chunked" (not in HTTP/1.0, not with Content-Length). Anything else is a
 *   400 (431 for a head over H1_MAX_HEAD bytes or H1_MAX_FIELDS fields, 414 for a target
 *   over H1_MAX_TARGET, 505 for another HTTP version, 417 for an unknown Expect), answered
 *   through hooks.error, and the connection closes after the answer.
 * - A connection carries one request at a time. hooks.head runs when a head is complete and
 *   valid, before any body byte is read; it may answer at once (unknown path, missing key).
 *   Then the body is never read and the connection closes after the answer, unless the
 *   request had no body. A body larger than max_body (declared, or grown while chunked) is
 *   answered 413 without reading further. "Expect: 100-continue" gets its 100 when the
 *   body is wanted.
 * - hooks.request runs with the whole body in memory (contiguous, NUL-terminated, at most
 *   max_body bytes). The server answers with h1_respond or an h1_stream_*; pipelined
 *   requests wait in the input (at most H1_MAX_HEAD bytes are read ahead) until the answer
 *   has been written out.
 * - hooks.gone runs when the client leaves while its request is answered (reset, write
 *   error, the write timeout, h1_drop). A client that half-closes after sending still gets
 *   its answer: on EOF during a non-streaming HTTP/1.1 answer the layer sends an interim
 *   "100 Continue" and asks the kernel whether the peer reset it (TCP_INFO); only a reset
 *   (or a write error) means gone. HTTP/1.0 has no interim answers: EOF means gone.
 * - Time limits: the whole request must arrive within request_timeout of the connection
 *   being ready for it (408, then close; an idle keep-alive connection is closed silently);
 *   an answer that makes no write progress for that long means the client is gone.
 * - At most max_conns connections: past that the oldest idle keep-alive connection is
 *   closed to make room, or else the new one gets 503 and is closed. Accept failures (out
 *   of file descriptors) pause accepting with a back-off from 10 ms to 1 s instead of
 *   spinning. libevent's own log goes to Forge's log, at most 10 lines a second.
 * - Every answer the layer writes itself goes through hooks.error (the server's JSON).
 * Threads: everything runs on the loop thread. */
#ifndef FORGE_SERVER_HTTP1_H
#define FORGE_SERVER_HTTP1_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

enum {
    H1_MAX_HEAD = 64 * 1024, /* request line + header fields */
    H1_MAX_FIELDS = 100,
    H1_MAX_TARGET = 8 * 1024,
    H1_MAX_CHUNK_LINE = 1024, /* a chunk-size line with its extensions */
};

typedef struct h1_field {
    const char *name, *value; /* NUL-terminated, inside the connection's head buffer */
} h1_field;

/* A parsed request head. Pointers are into the buffer given to h1_parse_head. */
typedef struct h1_head {
    const char *method;
    const char *path;   /* the request-target's path (origin-form; absolute-form cut to
                           its path; "*"), without the query */
    int minor;          /* HTTP/1.minor: 0 or 1 */
    int n_fields;
    h1_field fields[H1_MAX_FIELDS];
    bool has_length, chunked;
    uint64_t length;    /* Content-Length when has_length */
    bool keep_alive;    /* the client allows another request on the connection */
    bool expect_continue;
} h1_head;

/* Why a request cannot be read: the status to answer and a message for the client. */
typedef struct h1_error {
    int status;
    const char *code;
    char msg[256];
} h1_error;

/* Fills e (status, code, message); returns -1. */
int h1_fail(h1_error *e, int status, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parses a request head at the start of buf[0..len) in place (NULs are written into it).
 * Returns the head's length in bytes (through its empty line) when it is complete and valid,
 * 0 when more bytes are needed, -1 with e filled when it is invalid or too large. Leading
 * empty lines (at most 4) are skipped. */
long h1_parse_head(char *buf, size_t len, h1_head *h, h1_error *e);

/* The first field named name (case-insensitive), or NULL. */
const char *h1_field_get(const h1_head *h, const char *name);

/* Incremental decoder of a chunked body (RFC 9112 section 7.1). */
typedef struct h1_chunked {
    int state;
    uint64_t left;     /* bytes of the current chunk still to come */
    size_t line;       /* bytes of the current size, extension or trailer line */
    size_t trailers;   /* bytes of trailer fields */
    int digits;
} h1_chunked;

/* Feeds in[0..n): appends decoded body bytes to out, never letting out grow past max
 * bytes. Returns the bytes of in consumed; sets *done when the last chunk and trailers are
 * through (bytes after that belong to the next request). -1 with e filled (400 malformed,
 * 413 too large). */
long h1_chunked_feed(h1_chunked *c, const char *in, size_t n, strbuf *out, size_t max, bool *done, h1_error *e);

typedef struct h1_server h1_server;
typedef struct h1_conn h1_conn;

typedef struct h1_hooks {
    /* A head arrived (body unread). Answer now and return 1, or return 0 to read the body. */
    int (*head)(h1_conn *c, void *user);
    /* The request is complete: answer it (now or later). */
    void (*request)(h1_conn *c, void *user);
    /* The layer must answer an error (framing, timeout, connection cap): the server writes
     * its JSON with h1_respond. The connection closes after it. */
    void (*error)(h1_conn *c, const h1_error *e, void *user);
    /* The client of the request being answered left; c is freed right after. */
    void (*gone)(h1_conn *c, void *user);
    /* An answer was written out completely. */
    void (*written)(h1_conn *c, void *user);
    /* c is being freed (always called, last). */
    void (*closed)(h1_conn *c, void *user);
} h1_hooks;

typedef struct h1_params {
    size_t max_body;
    double request_timeout; /* seconds */
    int max_conns;
    h1_hooks hooks;
    void *user;
} h1_params;

struct h1_conn {
    h1_server *hs;
    h1_conn *prev, *next;
    struct bufferevent *bev;
    int fd;                 /* -1 for a connection that is not a socket (tests, fuzzing) */
    struct event *timer;    /* the request deadline, or the half-close probe */
    int state;
    char *headbuf;          /* H1_MAX_HEAD + 1 bytes: the head being read, then parsed */
    size_t head_have;       /* bytes in headbuf */
    size_t head_scanned;    /* bytes of headbuf searched for the end of the head */
    size_t text_start;      /* where the request line starts (after empty lines) */
    bool seen_text;
    h1_head head;
    strbuf body;
    h1_chunked ch;
    strbuf out_headers;     /* fields added for the next answer */
    bool close_after;       /* close once the answer is written */
    bool streaming;         /* an h1_stream_* answer is being written */
    bool stream_chunked;
    bool head_only;         /* HEAD: no body in the answer */
    bool peer_eof;          /* the client sent EOF */
    bool unread;            /* the answer leaves request bytes unread: linger before closing */
    size_t lingered;        /* bytes dropped while lingering */
    bool dead;              /* freed when the current callback returns */
    int in_cb;
    int probes;             /* half-close probes done */
    double t_idle;          /* when the connection became idle (eviction order) */
    /* the server's: the route of the request (-1 before its head hook), its record, and
     * whether an answer is owed */
    int route;
    void *req;
    bool unflushed;
};

/* A server on base. NULL when out of memory. */
h1_server *h1_server_new(struct event_base *base, const h1_params *p);
/* Listens on host:port (port 0: any); *bound gets the port. 0, or -1 with msg filled. */
int h1_listen(h1_server *hs, const char *host, int port, int *bound, char *msg, size_t msg_len);
/* Serves a connection over an existing bufferevent (a socket, or a pair in tests and
 * fuzzing); the layer owns bev from here on. */
h1_conn *h1_adopt(h1_server *hs, struct bufferevent *bev, int fd);
/* Answers from now on ask the client to close the connection (a shutdown drain). */
void h1_set_draining(h1_server *hs, bool on);
int h1_conn_count(const h1_server *hs);
/* Closes every connection now (hooks.gone for requests being answered). */
void h1_close_all(h1_server *hs);
/* Closes every connection (as h1_close_all) and frees. */
void h1_server_free(h1_server *hs);

/* Adds a header field to c's next answer. */
void h1_add_field(h1_conn *c, const char *name, const char *value);
/* A complete answer with a body (Content-Length). */
void h1_respond(h1_conn *c, int status, const char *body, size_t len);
/* A streamed answer: chunked in HTTP/1.1, until close in HTTP/1.0. */
void h1_stream_begin(h1_conn *c, int status);
void h1_stream_write(h1_conn *c, const char *data, size_t len);
void h1_stream_end(h1_conn *c);
/* Bytes written but not yet taken by the kernel. */
size_t h1_unsent(const h1_conn *c);
/* Drops the connection now (hooks.gone if a request is being answered). */
void h1_drop(h1_conn *c);

#endif
