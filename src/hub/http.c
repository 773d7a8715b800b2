#include "hub/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/timing.h"
#include "forge.h"
#include "hub/progress.h"

#define MAX_REDIRECTS 10
#define MAX_KEPT_BODY (64u << 20) /* a file list of a very large repo still fits */

struct hub_http {
    CURL *curl;
    const hub_conf *conf;
    const hub_request *req;
    hub_response *resp;
    bool sink_aborted;
    bool too_large;        /* a kept body outgrew MAX_KEPT_BODY */
    bool stalled;          /* the stall limit fired */
    double stall_limit;    /* seconds without a body byte before giving up */
    curl_off_t last_dlnow; /* body bytes at the last change */
    double last_change;    /* when they last changed */
    char location_raw[2048];
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;
static void curl_init_once(void) { g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static long env_long(const char *name, long def, long lo, long hi) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        log_warn("%s=%s is not an integer in [%ld, %ld]; using %ld", name, v, lo, hi, def);
        return def;
    }
    return x;
}

void hub_conf_init(hub_conf *conf, const char *endpoint_override, const char *token) {
    memset(conf, 0, sizeof *conf);
    const char *ep =
        endpoint_override && *endpoint_override ? endpoint_override : getenv("HF_ENDPOINT");
    if (!ep || !*ep) ep = "https://huggingface.co";
    snprintf(conf->endpoint, sizeof conf->endpoint, "%s", ep);
    size_t n = strlen(conf->endpoint);
    while (n > 0 && conf->endpoint[n - 1] == '/') conf->endpoint[--n] = 0; /* rstrip("/") */
    conf->token = token;
    /* huggingface_hub reads these two; 0 there means the default (its `or`). */
    conf->meta_timeout_s = env_long("HF_HUB_ETAG_TIMEOUT", 10, 0, 86400);
    if (conf->meta_timeout_s == 0) conf->meta_timeout_s = 10;
    conf->download_timeout_s = env_long("HF_HUB_DOWNLOAD_TIMEOUT", 10, 0, 86400);
    if (conf->download_timeout_s == 0) conf->download_timeout_s = 10;
    conf->max_retries = (int)env_long("FORGE_HUB_RETRIES", 5, 0, 100);
}

hub_http *hub_http_create(const hub_conf *conf, forge_error *err) {
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) {
        err_set(err, FORGE_E_NETWORK, "libcurl failed to initialise: %s",
                curl_easy_strerror(g_curl_init_rc));
        return NULL;
    }
    hub_http *h = calloc(1, sizeof *h);
    if (!h || !(h->curl = curl_easy_init())) {
        free(h);
        err_set(err, FORGE_E_NOMEM, "cannot create an HTTP client");
        return NULL;
    }
    h->conf = conf;
    return h;
}

void hub_http_free(hub_http *h) {
    if (!h) return;
    curl_easy_cleanup(h->curl);
    free(h);
}

void hub_response_free(hub_response *resp) { sb_free(&resp->body); }

static void response_reset(hub_response *r) {
    sb_free(&r->body);
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    r->linked_size = -1;
    r->retry_after = -1;
}

/* ---- small parsers ---------------------------------------------------------------------- */

double hub_parse_retry_after(const char *v) {
    while (*v == ' ' || *v == '\t') v++;
    if (!*v) return -1;
    char *end;
    errno = 0;
    double s = strtod(v, &end);
    if (end != v && !errno) {
        while (*end == ' ' || *end == '\t') end++;
        if (!*end) return s < 0 ? -1 : s;
    }
    time_t t = curl_getdate(v, NULL); /* the HTTP-date form */
    if (t == (time_t)-1) return -1;
    double d = difftime(t, time(NULL));
    return d < 0 ? 0 : d;
}

void hub_normalize_etag(const char *in, char *out, size_t n) {
    /* Python's etag.lstrip("W/").strip('"'): lstrip removes any run of 'W' and '/'. */
    while (*in == 'W' || *in == '/') in++;
    size_t len = strlen(in);
    while (len && in[0] == '"') in++, len--;
    while (len && in[len - 1] == '"') len--;
    snprintf(out, n, "%.*s", (int)len, in);
}

int hub_url_quote(const char *s, bool keep_slash, char *out, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-' || c == '~' || (keep_slash && c == '/');
        if (k + 4 > n) return -1;
        if (keep) {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    if (k + 1 > n) return -1;
    out[k] = 0;
    return 0;
}

bool hub_same_origin(const char *a, const char *b) {
    CURLU *ua = curl_url(), *ub = curl_url();
    bool same = false;
    char *sa = NULL, *sb = NULL, *ha = NULL, *hb = NULL, *pa = NULL, *pb = NULL;
    if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
        curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_SCHEME, &sa, 0) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_SCHEME, &sb, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_HOST, &ha, 0) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_HOST, &hb, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_PORT, &pa, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_PORT, &pb, CURLU_DEFAULT_PORT) == CURLUE_OK)
        same = !strcasecmp(sa, sb) && !strcasecmp(ha, hb) && !strcmp(pa, pb);
    curl_free(sa), curl_free(sb), curl_free(ha), curl_free(hb), curl_free(pa), curl_free(pb);
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* ---- libcurl callbacks ------------------------------------------------------------------ */

static void copy_value(char *dst, size_t n, const char *v, size_t len) {
    if (len >= n) len = n - 1;
    memcpy(dst, v, len);
    dst[len] = 0;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud) {
    hub_http *h = ud;
    hub_response *r = h->resp;
    size_t n = size * nitems, len = n;
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r')) len--;
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) { /* a status line starts a new response */
        const char *sp = memchr(data, ' ', len);
        long status = sp ? strtol(sp + 1, NULL, 10) : 0;
        char url[sizeof r->url];
        memcpy(url, r->url, sizeof url);
        response_reset(r);
        memcpy(r->url, url, sizeof url);
        r->status = status;
        h->location_raw[0] = 0;
        return n;
    }
    if (len == 0) { /* end of the headers */
        r->to_sink = h->req->sink && r->status / 100 == 2;
        if (r->to_sink && h->req->sink(h->req->sink_ctx, r, NULL, 0) != 0) {
            h->sink_aborted = true;
            return 0;
        }
        return n;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon) return n;
    size_t klen = (size_t)(colon - data);
    const char *v = colon + 1;
    while (v < data + len && (*v == ' ' || *v == '\t')) v++;
    size_t vlen = (size_t)(data + len - v);
    char val[2048];
    copy_value(val, sizeof val, v, vlen);
#define IS(name) (klen == sizeof(name) - 1 && !strncasecmp(data, name, klen))
    if (IS("content-length"))
        r->content_length = strtoll(val, NULL, 10);
    else if (IS("x-linked-size"))
        r->linked_size = strtoll(val, NULL, 10);
    else if (IS("retry-after"))
        r->retry_after = hub_parse_retry_after(val);
    else if (IS("x-repo-commit"))
        copy_value(r->repo_commit, sizeof r->repo_commit, v, vlen);
    else if (IS("etag"))
        copy_value(r->etag, sizeof r->etag, v, vlen);
    else if (IS("x-linked-etag"))
        copy_value(r->linked_etag, sizeof r->linked_etag, v, vlen);
    else if (IS("content-range"))
        copy_value(r->content_range, sizeof r->content_range, v, vlen);
    else if (IS("x-error-code"))
        copy_value(r->error_code, sizeof r->error_code, v, vlen);
    else if (IS("x-error-message"))
        copy_value(r->error_message, sizeof r->error_message, v, vlen);
    else if (IS("location"))
        copy_value(h->location_raw, sizeof h->location_raw, v, vlen);
#undef IS
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    hub_http *h = ud;
    hub_response *r = h->resp;
    size_t n = size * nmemb;
    if (r->to_sink) {
        if (h->req->sink(h->req->sink_ctx, r, data, n) != 0) {
            h->sink_aborted = true;
            return 0;
        }
        return n;
    }
    if (n > MAX_KEPT_BODY - r->body.len) {
        h->too_large = true;
        return 0;
    }
    sb_append(&r->body, data, n);
    return sb_failed(&r->body) ? 0 : n;
}

/* The read timeout. libcurl's LOW_SPEED_TIME averages the speed over a window of several
 * seconds, so after a burst it notices a stall late; this counts the time since the last
 * body byte instead (libcurl calls it at least once a second even when idle). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal, (void)ultotal, (void)ulnow;
    hub_http *h = ud;
    if (h->conf->cancel && atomic_load(h->conf->cancel)) return 1;
    double now = time_sec();
    if (dlnow != h->last_dlnow) {
        h->last_dlnow = dlnow;
        h->last_change = now;
    } else if (now - h->last_change > h->stall_limit) {
        h->stalled = true;
        return 1;
    }
    return 0;
}

static hub_net classify(CURLcode rc) {
    switch (rc) {
    case CURLE_OK: return HUB_NET_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: return HUB_NET_UNREACHABLE;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY: return HUB_NET_TRANSIENT;
    case CURLE_ABORTED_BY_CALLBACK: return HUB_NET_CANCELLED;
    default: return HUB_NET_FATAL;
    }
}

/* ---- requests --------------------------------------------------------------------------- */

static bool is_redirect(long s) { return s == 301 || s == 302 || s == 303 || s == 307 || s == 308; }

void hub_http_once(hub_http *h, const hub_request *req, hub_response *resp) {
    CURL *c = h->curl;
    char url[2048];
    snprintf(url, sizeof url, "%s", req->url);
    bool head = !strcmp(req->method, "HEAD");
    h->req = req;
    h->resp = resp;
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        response_reset(resp);
        snprintf(resp->url, sizeof resp->url, "%s", url);
        h->sink_aborted = false;
        h->too_large = false;
        h->location_raw[0] = 0;
        h->errbuf[0] = 0;
        curl_easy_reset(c);
        struct curl_slist *hdrs = curl_slist_append(NULL, "Accept-Encoding: identity");
        char auth[4200];
        /* The token goes to the Hub's own origin only: a CDN's presigned URL rejects it (and
         * must never see it), as huggingface_hub drops it when the host changes. */
        if (h->conf->token && hub_same_origin(url, h->conf->endpoint)) {
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->conf->token);
            struct curl_slist *t = curl_slist_append(hdrs, auth);
            if (t) hdrs = t;
        }
        char range[48];
        if (req->range_from > 0) snprintf(range, sizeof range, "%lld-", (long long)req->range_from);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "forge/" FORGE_VERSION);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->conf->meta_timeout_s);
        h->stalled = false;
        h->stall_limit =
            (double)(req->download ? h->conf->download_timeout_s : h->conf->meta_timeout_s);
        h->last_dlnow = 0;
        h->last_change = time_sec();
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        if (head)
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        if (req->range_from > 0) curl_easy_setopt(c, CURLOPT_RANGE, range);
        CURLcode rc = curl_easy_perform(c);
        curl_slist_free_all(hdrs);
        if (rc != CURLE_OK) {
            resp->net = h->sink_aborted ? HUB_NET_FATAL
                        : h->stalled    ? HUB_NET_TRANSIENT
                                        : classify(rc);
            if (h->stalled)
                snprintf(resp->net_error, sizeof resp->net_error, "timed out: no data for %.0f s",
                         h->stall_limit);
            else if (resp->net == HUB_NET_CANCELLED)
                snprintf(resp->net_error, sizeof resp->net_error, "cancelled");
            else if (h->too_large)
                snprintf(resp->net_error, sizeof resp->net_error, "the answer is over %u MB",
                         MAX_KEPT_BODY >> 20);
            else if (rc == CURLE_OPERATION_TIMEDOUT)
                snprintf(resp->net_error, sizeof resp->net_error, "timed out: %.200s", h->errbuf);
            else
                snprintf(resp->net_error, sizeof resp->net_error, "%s",
                         h->sink_aborted ? "the download was stopped"
                         : h->errbuf[0]  ? h->errbuf
                                         : curl_easy_strerror(rc));
            return;
        }
        resp->net = HUB_NET_OK;
        if (!is_redirect(resp->status) || !h->location_raw[0]) return;
        char *abs_url = NULL;
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &abs_url);
        snprintf(resp->location, sizeof resp->location, "%s", abs_url ? abs_url : h->location_raw);
        /* huggingface_hub follows relative redirects (a renamed repo) but stops at an absolute
         * one (a CDN) to read the Hub's own headers. */
        bool relative = h->location_raw[0] == '/' && h->location_raw[1] != '/';
        if (!abs_url || !(req->follow_all || relative)) return;
        snprintf(url, sizeof url, "%s", abs_url);
    }
    resp->net = HUB_NET_FATAL;
    snprintf(resp->net_error, sizeof resp->net_error, "more than %d redirects", MAX_REDIRECTS);
}

bool hub_response_retryable(const hub_response *r) {
    if (r->net == HUB_NET_TRANSIENT) return true;
    if (r->net != HUB_NET_OK) return false;
    return r->status == 429 || r->status == 500 || r->status == 502 || r->status == 503 ||
           r->status == 504;
}

double hub_backoff_s(int attempt, double retry_after) {
    if (retry_after >= 0) return retry_after > 60 ? 60 : retry_after;
    double s = 1;
    for (int i = 0; i < attempt && s < 8; i++) s *= 2;
    return s;
}

void hub_sleep(double s, atomic_int *cancel) {
    while (s > 0 && !(cancel && atomic_load(cancel))) {
        double step = s < 0.05 ? s : 0.05;
        struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
        nanosleep(&ts, NULL);
        s -= step;
    }
}

void hub_http_fetch(hub_http *h, const hub_request *req, int retries, hub_response *resp) {
    for (int attempt = 0;; attempt++) {
        hub_http_once(h, req, resp);
        if (!hub_response_retryable(resp) || attempt >= retries) return;
        if (h->conf->cancel && atomic_load(h->conf->cancel)) return;
        double wait = hub_backoff_s(attempt, resp->retry_after);
        char why[300];
        if (resp->net != HUB_NET_OK)
            snprintf(why, sizeof why, "%s", resp->net_error);
        else
            snprintf(why, sizeof why, "HTTP %ld", resp->status);
        hub_progress_note(h->conf->progress, "%s %s: %s; retrying in %.3g s (%d of %d)",
                          req->method, req->url, why, wait, attempt + 1, retries);
        hub_sleep(wait, h->conf->cancel);
    }
}

/* ---- errors ----------------------------------------------------------------------------- */

forge_status hub_response_error(const hub_response *r, const char *what, const char *repo,
                                const char *revision, const char *endpoint, bool had_token,
                                forge_error *err) {
    if (r->net == HUB_NET_CANCELLED) return err_set(err, FORGE_E_CANCELLED, "%s: cancelled", what);
    if (r->net != HUB_NET_OK)
        return err_set(err, FORGE_E_NETWORK, "cannot reach %s for %s of %s: %s", endpoint, what,
                       repo, r->net_error);
    char hub_says[600] = "";
    if (r->error_message[0])
        snprintf(hub_says, sizeof hub_says, " (the Hub says: %s)", r->error_message);
    const char *code = r->error_code;
    if (!strcmp(code, "GatedRepo"))
        return err_set(
            err, FORGE_E_INVALID,
            "%s is a gated model: ask for access at %s/%s, then set HF_TOKEN to a token of an "
            "account that has it%s%s",
            repo, endpoint, repo, had_token ? " (the token sent has no access)" : "", hub_says);
    if (!strcmp(code, "RevisionNotFound"))
        return err_set(err, FORGE_E_NOT_FOUND, "revision '%s' not found in %s on %s%s", revision,
                       repo, endpoint, hub_says);
    if (!strcmp(code, "EntryNotFound"))
        return err_set(err, FORGE_E_NOT_FOUND, "%s not found in %s at revision %s%s", what, repo,
                       revision, hub_says);
    if (r->status == 401 &&
        !strcmp(r->error_message, "Invalid credentials in Authorization header"))
        return err_set(
            err, FORGE_E_INVALID,
            "the Hub at %s rejected the token (from --token, HF_TOKEN or the token file): invalid "
            "credentials",
            endpoint);
    if (!strcmp(code, "RepoNotFound") || r->status == 401) {
        /* The Hub answers 401, not 404, for a missing repo when no token is sent. */
        if (!had_token)
            return err_set(err, FORGE_E_NOT_FOUND,
                           "model %s not found on %s (if it is private or gated, set HF_TOKEN)%s",
                           repo, endpoint, hub_says);
        return err_set(err, FORGE_E_NOT_FOUND,
                       "model %s not found on %s, or the token has no access to it%s", repo,
                       endpoint, hub_says);
    }
    if (r->status == 429)
        return err_set(err, FORGE_E_NETWORK,
                       "%s rate-limits requests (HTTP 429) for %s of %s; try again later%s",
                       endpoint, what, repo, hub_says);
    if (r->status >= 500)
        return err_set(err, FORGE_E_NETWORK, "the server answered HTTP %ld for %s of %s (%s)%s",
                       r->status, what, repo, r->url, hub_says);
    return err_set(err, FORGE_E_NETWORK, "unexpected HTTP %ld for %s of %s (%s)%s", r->status, what,
                   repo, r->url, hub_says);
}
