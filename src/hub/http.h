/* http.h: the Hub's HTTP protocol over libcurl: one request at a time per hub_http (one per
 * thread), redirects followed by hand so that the token goes only to the Hub's own origin
 * (never to a CDN), the headers the Hub answers with, retries with backoff on 429 / 5xx /
 * transient network errors honouring Retry-After, connect and stall timeouts, and error
 * messages keyed on X-Error-Code. */
#ifndef FORGE_HUB_HTTP_H
#define FORGE_HUB_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "base/strbuf.h"

typedef struct hub_conf {
    char endpoint[1024]; /* e.g. "https://huggingface.co", no trailing "/" */
    /* NULL: none; else sent as "Authorization: Bearer" to the endpoint's origin only */
    const char *token;
    long meta_timeout_s;     /* connect limit, and the read limit of metadata requests: seconds
                                without a byte ($HF_HUB_ETAG_TIMEOUT, 10) */
    long download_timeout_s; /* the read limit of downloads ($HF_HUB_DOWNLOAD_TIMEOUT, 10) */
    int max_retries;         /* retries after the first try ($FORGE_HUB_RETRIES, 5) */
    atomic_int *cancel;      /* when not NULL and set, transfers in flight stop */
    struct hub_progress *progress; /* when not NULL, retry warnings are printed through it */
} hub_conf;

/* Fills conf from the environment; endpoint_override / token as given (may be NULL). */
void hub_conf_init(hub_conf *conf, const char *endpoint_override, const char *token);

typedef enum {
    HUB_NET_OK = 0,      /* a response came (any status) */
    HUB_NET_UNREACHABLE, /* the host could not be resolved or connected to */
    HUB_NET_TRANSIENT,   /* the transfer broke or stalled: worth retrying */
    HUB_NET_FATAL,       /* anything else (bad URL, TLS setup, write error) */
    HUB_NET_CANCELLED,
} hub_net;

typedef struct hub_response {
    hub_net net;
    char net_error[256]; /* curl's message when net != HUB_NET_OK */
    long status;
    int64_t content_length; /* -1: absent */
    int64_t linked_size;    /* X-Linked-Size; -1: absent */
    double retry_after;     /* seconds; -1: absent */
    char repo_commit[64];   /* X-Repo-Commit */
    char etag[256];         /* ETag as sent */
    char linked_etag[256];  /* X-Linked-Etag as sent */
    char content_range[96];
    char error_code[64];     /* X-Error-Code */
    char error_message[512]; /* X-Error-Message */
    char location[2048];     /* absolute form of a redirect's Location */
    char url[2048];          /* the URL that gave this response */
    strbuf body;             /* the body, when not streamed to a sink (64 MB at most) */
    bool to_sink;            /* internal: the body goes to the sink */
} hub_response;

/* Streams the body of a 2xx response. Called first with data NULL once the headers are in
 * (resp->status etc. are set), then with each piece. Returns 0, or -1 to abort. */
typedef int (*hub_sink_fn)(void *ctx, const hub_response *resp, const void *data, size_t n);

typedef struct hub_request {
    const char *method; /* "GET" or "HEAD" */
    const char *url;
    bool follow_all;    /* follow any redirect; otherwise only relative ones (same host) */
    bool download;      /* a file transfer: stall limit download_timeout_s */
    int64_t range_from; /* > 0: ask for bytes range_from.. */
    hub_sink_fn sink;   /* NULL: the body is kept in resp->body */
    void *sink_ctx;
} hub_request;

typedef struct hub_http hub_http;

/* A client for one thread. NULL with err on failure. conf must outlive it. */
hub_http *hub_http_create(const hub_conf *conf, forge_error *err);
void hub_http_free(hub_http *h);

/* One try (plus redirects). resp is reset first; free it with hub_response_free. */
void hub_http_once(hub_http *h, const hub_request *req, hub_response *resp);
/* Tries up to 1 + retries times while the answer is a transient network error, 429 or
 * 5xx (unreachable hosts are not retried), waiting as hub_backoff_s says between tries. */
void hub_http_fetch(hub_http *h, const hub_request *req, int retries, hub_response *resp);
void hub_response_free(hub_response *resp);

/* True when resp is worth another try: transient error, 429, 500, 502, 503, 504. */
bool hub_response_retryable(const hub_response *resp);
/* Seconds to wait before retry number `attempt` (0-based): Retry-After when the answer had
 * one (at most 60), else 1, 2, 4, 8, 8... */
double hub_backoff_s(int attempt, double retry_after);
/* Sleeps s seconds unless *cancel gets set (checked every 50 ms). */
void hub_sleep(double s, atomic_int *cancel);
/* Parses Retry-After: delay-seconds or an HTTP date; -1 when unparsable. */
double hub_parse_retry_after(const char *v);
/* ETag normalisation as huggingface_hub's _normalize_etag: leading "W/", then quotes. */
void hub_normalize_etag(const char *in, char *out, size_t n);
/* Percent-encodes s for a URL path (Python's quote: keeps A-Za-z0-9_.-~ and, with
 * keep_slash, "/"). Returns -1 when out (size n) is too small. */
int hub_url_quote(const char *s, bool keep_slash, char *out, size_t n);
/* True when a and b have the same scheme, host and port. */
bool hub_same_origin(const char *a, const char *b);

/* Turns an unsuccessful answer into err: `what` names the request ("config.json",
 * "the file list"), repo / revision / endpoint the model, had_token whether a token was sent. */
forge_status hub_response_error(const hub_response *resp, const char *what, const char *repo,
                                const char *revision, const char *endpoint, bool had_token,
                                forge_error *err);

#endif
