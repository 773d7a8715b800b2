/* http1_parse.c: HTTP/1.1 request heads and chunked bodies (RFC 9112), pure functions over
 * bytes: no connection state, no I/O (contract in http1.h; fuzzed by tests/fuzz/fuzz_http.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/http1.h"

/* ---- parsing a head ------------------------------------------------------------------- */

int h1_fail(h1_error *e, int status, const char *code, const char *fmt, ...) {
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_tchar(unsigned char ch) {
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* The next line of buf from *pos: [*start, *start + *n) without its CRLF or LF. 1 when a
 * line end was found, 0 when the line is incomplete, -1 for a CR not followed by LF. */
static int next_line(const char *buf, size_t len, size_t *pos, size_t *start, size_t *n) {
    size_t i = *pos;
    *start = i;
    for (; i < len; i++) {
        if (buf[i] == '\n') {
            *n = i - *start;
            *pos = i + 1;
            return 1;
        }
        if (buf[i] == '\r') {
            if (i + 1 == len) return 0;
            if (buf[i + 1] != '\n') return -1;
            *n = i - *start;
            *pos = i + 2;
            return 1;
        }
    }
    return 0;
}

static bool token_eq(const char *a, size_t n, const char *b) { return strlen(b) == n && !strncasecmp(a, b, n); }

/* Calls each(element, length) for the comma-separated list elements of v (OWS trimmed,
 * empty elements skipped, as RFC 9110 section 5.6.1 asks of recipients). */
#define FOR_LIST(v, el, el_n, body)                                                                      \
    for (const char *p_ = (v); *p_;) {                                                                   \
        while (*p_ == ' ' || *p_ == '\t' || *p_ == ',') p_++;                                            \
        if (!*p_) break;                                                                                 \
        const char *el = p_;                                                                             \
        while (*p_ && *p_ != ',') p_++;                                                                  \
        size_t el_n = (size_t)(p_ - el);                                                                 \
        while (el_n && (el[el_n - 1] == ' ' || el[el_n - 1] == '\t')) el_n--;                            \
        body                                                                                             \
    }

const char *h1_field_get(const h1_head *h, const char *name) {
    for (int i = 0; i < h->n_fields; i++)
        if (!strcasecmp(h->fields[i].name, name)) return h->fields[i].value;
    return NULL;
}

static int parse_request_line(char *l, size_t n, h1_head *h, h1_error *e) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i])) i++;
    if (i == 0 || i > 32 || i == n || l[i] != ' ')
        return h1_fail(e, 400, "bad_request", "malformed request line: expected METHOD SP target SP HTTP/1.1");
    l[i] = 0;
    h->method = l;
    size_t t = ++i;
    while (i < n && (unsigned char)l[i] > 0x20 && (unsigned char)l[i] < 0x7f) i++;
    if (i - t > H1_MAX_TARGET)
        return h1_fail(e, 414, "uri_too_long", "the request target is longer than %d bytes", H1_MAX_TARGET);
    if (i == t || i == n || l[i] != ' ')
        return h1_fail(e, 400, "bad_request",
                    "malformed request line: the target must be visible ASCII (percent-encode the rest), then SP HTTP/1.1");
    l[i] = 0;
    char *target = l + t;
    i++;
    const char *v = l + i;
    size_t vn = n - i;
    if (vn == 8 && !memcmp(v, "HTTP/1.", 7) && (v[7] == '0' || v[7] == '1')) h->minor = v[7] - '0';
    else if (vn == 8 && !memcmp(v, "HTTP/", 5) && v[5] >= '0' && v[5] <= '9' && v[6] == '.' && v[7] >= '0' && v[7] <= '9')
        return h1_fail(e, 505, "http_version_not_supported", "HTTP/%c.%c is not supported: use HTTP/1.1", v[5], v[7]);
    else return h1_fail(e, 400, "bad_request", "malformed request line: the version must be HTTP/1.1 or HTTP/1.0");
    /* origin-form, absolute-form (cut to its path), or "*" */
    if (!strncasecmp(target, "http://", 7) || !strncasecmp(target, "https://", 8)) {
        char *slash = strchr(strstr(target, "//") + 2, '/');
        target = slash ? slash : (char *)"/";
    } else if (target[0] != '/' && strcmp(target, "*") != 0) {
        return h1_fail(e, 400, "bad_request", "the request target must be a path starting with /");
    }
    char *q = strchr(target, '?');
    if (q) *q = 0;
    h->path = target;
    return 0;
}

static int parse_field(char *l, size_t n, h1_head *h, h1_error *e) {
    if (l[0] == ' ' || l[0] == '\t')
        return h1_fail(e, 400, "bad_request", "obsolete line folding in a header field is not accepted");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i])) i++;
    if (i == n || l[i] != ':' || i == 0)
        return h1_fail(e, 400, "bad_request", i < n && (l[i] == ' ' || l[i] == '\t')
                                               ? "whitespace between a header field name and its colon"
                                               : "malformed header field: expected name: value");
    if (h->n_fields == H1_MAX_FIELDS)
        return h1_fail(e, 431, "request_header_fields_too_large", "more than %d header fields", H1_MAX_FIELDS);
    l[i++] = 0;
    while (i < n && (l[i] == ' ' || l[i] == '\t')) i++;
    size_t v = i;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)l[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return h1_fail(e, 400, "bad_request", "a control character in the value of header field %.64s", l);
    }
    size_t end = n;
    while (end > v && (l[end - 1] == ' ' || l[end - 1] == '\t')) end--;
    l[end] = 0;
    h->fields[h->n_fields].name = l;
    h->fields[h->n_fields].value = l + v;
    h->n_fields++;
    return 0;
}

/* Content-Length, Transfer-Encoding, Host, Connection, Expect. */
static int check_framing(h1_head *h, h1_error *e) {
    int hosts = 0, chunked = 0;
    bool te = false, close = false, ka = false;
    for (int f = 0; f < h->n_fields; f++) {
        const char *name = h->fields[f].name, *v = h->fields[f].value;
        if (!strcasecmp(name, "Host")) hosts++;
        else if (!strcasecmp(name, "Content-Length")) {
            bool any = false;
            FOR_LIST(v, el, el_n, {
                uint64_t x = 0;
                for (size_t k = 0; k < el_n; k++) {
                    if (el[k] < '0' || el[k] > '9')
                        return h1_fail(e, 400, "bad_request", "Content-Length must be digits only, got \"%.*s\"",
                                    (int)(el_n < 40 ? el_n : 40), el);
                    if (k >= 18) return h1_fail(e, 413, "request_too_large", "Content-Length %.40s is too large", el);
                    x = x * 10 + (uint64_t)(el[k] - '0');
                }
                if (h->has_length && x != h->length)
                    return h1_fail(e, 400, "bad_request", "conflicting Content-Length values (%llu and %llu)",
                                (unsigned long long)h->length, (unsigned long long)x);
                h->has_length = true;
                h->length = x;
                any = true;
            })
            if (!any) return h1_fail(e, 400, "bad_request", "an empty Content-Length");
        } else if (!strcasecmp(name, "Transfer-Encoding")) {
            te = true;
            FOR_LIST(v, el, el_n, {
                if (!token_eq(el, el_n, "chunked"))
                    return h1_fail(e, 400, "bad_request", "unsupported transfer coding \"%.*s\" (only chunked is accepted)",
                                (int)(el_n < 40 ? el_n : 40), el);
                chunked++;
            })
        } else if (!strcasecmp(name, "Connection")) {
            FOR_LIST(v, el, el_n, {
                if (token_eq(el, el_n, "close")) close = true;
                else if (token_eq(el, el_n, "keep-alive")) ka = true;
            })
        } else if (!strcasecmp(name, "Expect")) {
            FOR_LIST(v, el, el_n, {
                if (!token_eq(el, el_n, "100-continue"))
                    return h1_fail(e, 417, "expectation_failed", "unsupported expectation \"%.*s\"", (int)(el_n < 40 ? el_n : 40),
                                el);
                h->expect_continue = true;
            })
        }
    }
    if (h->minor == 1 ? hosts != 1 : hosts > 1)
        return h1_fail(e, 400, "bad_request", hosts ? "more than one Host header field" : "HTTP/1.1 needs a Host header field");
    if (te) {
        if (h->minor == 0) return h1_fail(e, 400, "bad_request", "Transfer-Encoding is not allowed in HTTP/1.0");
        if (chunked != 1) return h1_fail(e, 400, "bad_request", "Transfer-Encoding must be exactly \"chunked\"");
        if (h->has_length)
            return h1_fail(e, 400, "bad_request", "both Transfer-Encoding and Content-Length: the body length is ambiguous");
        h->chunked = true;
    }
    h->keep_alive = h->minor == 1 ? !close : ka && !close;
    if (h->minor == 0) h->expect_continue = false;
    return 0;
}

long h1_parse_head(char *buf, size_t len, h1_head *h, h1_error *e) {
    memset(h, 0, sizeof *h);
    size_t pos = 0, start, n;
    for (int k = 0; k < 5; k++) { /* empty lines before the request line */
        size_t save = pos;
        int rc = next_line(buf, len, &pos, &start, &n);
        if (rc < 0) return h1_fail(e, 400, "bad_request", "a bare CR in the request head");
        if (rc == 0) {
            (void)save;
            if (len < H1_MAX_HEAD) return 0;
            return h1_fail(e, 414, "uri_too_long", "the request line is longer than %d bytes", H1_MAX_HEAD);
        }
        if (n > 0) break;
        if (k == 4) return h1_fail(e, 400, "bad_request", "too many empty lines before the request line");
    }
    if (n > H1_MAX_TARGET + 64)
        return h1_fail(e, 414, "uri_too_long", "the request target is longer than %d bytes", H1_MAX_TARGET);
    if (parse_request_line(buf + start, n, h, e)) return -1;
    for (;;) {
        int rc = next_line(buf, len, &pos, &start, &n);
        if (rc < 0) return h1_fail(e, 400, "bad_request", "a bare CR in the request head");
        if (rc == 0) {
            if (len >= H1_MAX_HEAD)
                return h1_fail(e, 431, "request_header_fields_too_large", "the request head is larger than %d bytes",
                            H1_MAX_HEAD);
            return 0;
        }
        if (pos > H1_MAX_HEAD)
            return h1_fail(e, 431, "request_header_fields_too_large", "the request head is larger than %d bytes", H1_MAX_HEAD);
        if (n == 0) break;
        if (parse_field(buf + start, n, h, e)) return -1;
    }
    if (check_framing(h, e)) return -1;
    return (long)pos;
}

/* ---- chunked bodies ------------------------------------------------------------------- */

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_END, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LINE, CH_TRAILER_LF,
       CH_FINAL_LF, CH_DONE };

static int hexval(unsigned char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

long h1_chunked_feed(h1_chunked *c, const char *in, size_t n, strbuf *out, size_t max, bool *done, h1_error *e) {
    size_t i = 0;
    *done = c->state == CH_DONE;
    while (i < n && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CH_SIZE: {
            int d = hexval(ch);
            if (d >= 0) {
                if (++c->line > H1_MAX_CHUNK_LINE) return h1_fail(e, 400, "bad_request", "a chunk-size line is too long");
                c->left = c->left * 16 + (uint64_t)d;
                c->digits++;
                if (c->left > max - out->len)
                    return h1_fail(e, 413, "request_too_large", "the request body is larger than the limit of %zu bytes", max);
                i++;
                break;
            }
            if (c->digits == 0) return h1_fail(e, 400, "bad_request", "a chunk does not start with its size in hex");
            if (ch == ';' || ch == ' ' || ch == '\t') c->state = CH_EXT;
            else if (ch == '\r') c->state = CH_SIZE_LF, i++;
            else if (ch == '\n') c->state = c->left ? CH_DATA : CH_TRAILER, c->line = 0, i++;
            else return h1_fail(e, 400, "bad_request", "malformed chunk size");
            break;
        }
        case CH_EXT:
            if (ch == '\r') c->state = CH_SIZE_LF;
            else if (ch == '\n') c->state = c->left ? CH_DATA : CH_TRAILER, c->line = 0;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return h1_fail(e, 400, "bad_request", "a control character in a chunk extension");
            else if (++c->line > H1_MAX_CHUNK_LINE) return h1_fail(e, 400, "bad_request", "a chunk-size line is too long");
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') return h1_fail(e, 400, "bad_request", "a bare CR after a chunk size");
            c->state = c->left ? CH_DATA : CH_TRAILER;
            c->line = 0;
            i++;
            break;
        case CH_DATA: {
            size_t k = n - i < c->left ? n - i : (size_t)c->left;
            sb_append(out, in + i, k);
            if (sb_failed(out)) return h1_fail(e, 500, NULL, "out of memory reading the request body");
            c->left -= k;
            i += k;
            if (!c->left) c->state = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            if (ch == '\r') c->state = CH_DATA_LF;
            else if (ch == '\n') c->state = CH_SIZE, c->digits = 0;
            else return h1_fail(e, 400, "bad_request", "chunk data longer than its size");
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n') return h1_fail(e, 400, "bad_request", "a bare CR after chunk data");
            c->state = CH_SIZE;
            c->digits = 0;
            i++;
            break;
        case CH_TRAILER:
            if (ch == '\r') c->state = CH_FINAL_LF;
            else if (ch == '\n') c->state = CH_DONE;
            else c->state = CH_TRAILER_LINE;
            if (c->state != CH_TRAILER_LINE) i++;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\r') c->state = CH_TRAILER_LF;
            else if (ch == '\n') c->state = CH_TRAILER;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return h1_fail(e, 400, "bad_request", "a control character in a trailer field");
            if (++c->trailers > H1_MAX_HEAD)
                return h1_fail(e, 431, "request_header_fields_too_large", "the trailer fields are larger than %d bytes",
                            H1_MAX_HEAD);
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') return h1_fail(e, 400, "bad_request", "a bare CR in a trailer field");
            c->state = CH_TRAILER;
            i++;
            break;
        case CH_FINAL_LF:
            if (ch != '\n') return h1_fail(e, 400, "bad_request", "a bare CR at the end of a chunked body");
            c->state = CH_DONE;
            i++;
            break;
        }
    }
    *done = c->state == CH_DONE;
    return (long)i;
}
