/* respond.c: writing HTTP answers: JSON bodies, OpenAI's error JSON, the SSE framing, and
 * the JSON of token strings and bytes for logprobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "server/server_int.h"

void reply_headers(h1_conn *hc, const char *rid) {
    h1_add_field(hc, "Access-Control-Allow-Origin", "*");
    h1_add_field(hc, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
    if (rid) h1_add_field(hc, "X-Request-Id", rid);
}

void reply_json(forge_server *s, h1_conn *hc, int route, int status, const char *json, size_t len) {
    metrics_count_http(&s->metrics, route, status);
    h1_add_field(hc, "Content-Type", "application/json");
    h1_respond(hc, status, json, len);
}

/* A string as JSON, valid UTF-8 whatever the bytes: error messages quote what the client sent
 * (a model name, a path), which may be invalid UTF-8 or cut inside a character by %.200s;
 * each invalid byte becomes U+FFFD. */
static void json_write_sanitized(strbuf *sb, const char *s) {
    size_t n = strlen(s);
    if (utf8_valid(s, n)) {
        json_write_string(sb, s, n, false);
        return;
    }
    strbuf tmp = STRBUF_INIT;
    utf8_sanitize(&tmp, s, n);
    if (sb_failed(&tmp)) json_write_string(sb, "out of memory", 13, false);
    else json_write_string(sb, sb_str(&tmp), tmp.len, false);
    sb_free(&tmp);
}

void error_json(strbuf *sb, const srv_err *e) {
    sb_puts(sb, "{\"error\":{\"message\":");
    json_write_sanitized(sb, e->msg);
    sb_puts(sb, ",\"type\":");
    json_write_string(sb, e->type ? e->type : "invalid_request_error", strlen(e->type ? e->type : "invalid_request_error"),
                      false);
    sb_puts(sb, ",\"param\":");
    if (e->param[0]) json_write_sanitized(sb, e->param);
    else sb_puts(sb, "null");
    sb_puts(sb, ",\"code\":");
    if (e->code) json_write_string(sb, e->code, strlen(e->code), false);
    else sb_puts(sb, "null");
    sb_puts(sb, "}}");
}

/* e as error JSON into sb; the status to send (500 with a fixed body when out of memory). */
static int error_body(strbuf *sb, const srv_err *e, const char **json, size_t *len) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                              "\"code\":null}}";
    error_json(sb, e);
    if (sb_failed(sb)) {
        *json = oom;
        *len = sizeof oom - 1;
        return 500;
    }
    *json = sb->data;
    *len = sb->len;
    return e->status;
}

void reply_error(forge_server *s, h1_conn *hc, int route, const srv_err *e) {
    strbuf sb = STRBUF_INIT;
    const char *json;
    size_t len;
    int status = error_body(&sb, e, &json, &len);
    if (e->status == 503) h1_add_field(hc, "Retry-After", "1");
    if (e->status == 401) h1_add_field(hc, "WWW-Authenticate", "Bearer");
    if (e->status == 405) h1_add_field(hc, "Allow", route == SRV_ROUTE_HEALTH || route == SRV_ROUTE_METRICS ||
                                                               route == SRV_ROUTE_MODELS || route == SRV_ROUTE_WEBUI
                                                           ? "GET, HEAD, OPTIONS"
                                                           : "POST, OPTIONS");
    reply_json(s, hc, route, status, json, len);
    sb_free(&sb);
}

void local_answer(forge_server *s, srv_local *l, int route, int status, const char *json, size_t len) {
    metrics_count_http(&s->metrics, route, status);
    l->cb(status, json, len, l->user);
    free(l->path);
    free(l->body);
    free(l);
}

void local_answer_error(forge_server *s, srv_local *l, int route, const srv_err *e) {
    strbuf sb = STRBUF_INIT;
    const char *json;
    size_t len;
    int status = error_body(&sb, e, &json, &len);
    local_answer(s, l, route, status, json, len);
    sb_free(&sb);
}

void sse_start(forge_server *s, h1_conn *hc, int route) {
    metrics_count_http(&s->metrics, route, 200);
    h1_add_field(hc, "Content-Type", "text/event-stream; charset=utf-8");
    h1_add_field(hc, "Cache-Control", "no-cache");
    h1_add_field(hc, "X-Accel-Buffering", "no");
    h1_stream_begin(hc, 200);
}

void sse_send(h1_conn *hc, const char *frame, size_t len) { h1_stream_write(hc, frame, len); }

void sse_end(h1_conn *hc) { h1_stream_end(hc); }

/* ---- cutting quoted text ------------------------------------------------------------- */

/* The length of s cut to at most max bytes on a character boundary (for "%.*s": a quoted
 * name cut inside a UTF-8 sequence would make the error JSON invalid). */
int utf8_cut(const char *s, size_t max) {
    size_t n = strnlen(s, max + 1);
    if (n <= max) return (int)n;
    /* s[max] is the first byte left out: when it continues a character, cut before its lead */
    size_t k = max;
    while (k > 0 && max - k < 3 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    if (k < max && utf8_seq_len((unsigned char)s[k]) > 0) return (int)k;
    return (int)max;
}

/* ---- token text and bytes for logprobs ------------------------------------------------ */

void utf8_sanitize(strbuf *out, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = utf8_decode(s + i, n - i, &cp);
        if (k > 0) {
            sb_append(out, s + i, (size_t)k);
            i += (size_t)k;
        } else {
            sb_append(out, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
}

/* The raw bytes of a token into buf (growing past the stack buffer when needed). */
static int token_bytes(forge_server *s, int32_t id, char *stack, size_t cap, char **heap) {
    *heap = NULL;
    int n = forge_tokenizer_token_bytes(s->tok, id, stack, cap);
    if (n < 0 || (size_t)n <= cap) return n;
    *heap = malloc((size_t)n);
    if (!*heap) return -1;
    return forge_tokenizer_token_bytes(s->tok, id, *heap, (size_t)n);
}

void token_text_json(forge_server *s, strbuf *sb, int32_t id) {
    char stack[128], *heap;
    int n = token_bytes(s, id, stack, sizeof stack, &heap);
    if (n < 0) {
        sb_puts(sb, "\"\"");
        return;
    }
    strbuf tmp = STRBUF_INIT;
    utf8_sanitize(&tmp, heap ? heap : stack, (size_t)n);
    json_write_string(sb, sb_str(&tmp), tmp.len, false);
    sb_free(&tmp);
    free(heap);
}

size_t token_text_chars(forge_server *s, int32_t id) {
    char stack[128], *heap;
    int n = token_bytes(s, id, stack, sizeof stack, &heap);
    const char *p = heap ? heap : stack;
    size_t chars = 0;
    for (int i = 0; i < n;) {
        uint32_t cp;
        int k = utf8_decode(p + i, (size_t)(n - i), &cp);
        i += k > 0 ? k : 1;
        chars++;
    }
    free(heap);
    return chars;
}

void token_bytes_json(forge_server *s, strbuf *sb, int32_t id) {
    char stack[128], *heap;
    int n = token_bytes(s, id, stack, sizeof stack, &heap);
    const unsigned char *p = (const unsigned char *)(heap ? heap : stack);
    sb_putc(sb, '[');
    for (int i = 0; i < n; i++) sb_printf(sb, i ? ",%u" : "%u", p[i]);
    sb_putc(sb, ']');
    free(heap);
}
