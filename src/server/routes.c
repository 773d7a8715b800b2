/* routes.c: dispatching requests by path and method, the API key, CORS preflight,
 * X-Request-Id, and the small routes: /health, /metrics, /v1/models, /tokenize,
 * /detokenize. Generation routes are in generate.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h> /* evhttp_uridecode */

#include "base/log.h"
#include "base/utf8.h"
#include "server/server_int.h"
#include "server/webui.h"

static const struct {
    const char *path;
    int route;
    bool post;
} g_routes[] = {
    {"/health", SRV_ROUTE_HEALTH, false},
    {"/metrics", SRV_ROUTE_METRICS, false},
    {"/v1/models", SRV_ROUTE_MODELS, false},
    {"/v1/completions", SRV_ROUTE_COMPLETIONS, true},
    {"/v1/chat/completions", SRV_ROUTE_CHAT, true},
    {"/v1/embeddings", SRV_ROUTE_EMBEDDINGS, true},
    {"/tokenize", SRV_ROUTE_TOKENIZE, true},
    {"/detokenize", SRV_ROUTE_DETOKENIZE, true},
};

/* Compares the presented key with the configured one in time that depends only on the
 * presented length (which the client knows), never on where the bytes differ. */
static bool key_matches(const char *given, size_t n_given, const char *key) {
    size_t n_key = strlen(key);
    volatile unsigned char diff = (unsigned char)(n_given != n_key);
    for (size_t i = 0; i < n_given; i++) diff |= (unsigned char)(given[i] ^ key[i % n_key]);
    return diff == 0;
}

static bool authorized(forge_server *s, h1_conn *hc) {
    if (!s->s_key) return true;
    const char *h = h1_field_get(&hc->head, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    const char *k = h + 7;
    while (*k == ' ') k++;
    size_t n = strlen(k);
    while (n && (k[n - 1] == ' ' || k[n - 1] == '\t')) n--;
    return key_matches(k, n, s->s_key);
}

/* Parses the body (whole, at most max_body_bytes: http1.c saw to it) as a JSON object; NULL
 * (and e filled) when it is not one. */
json_doc *route_parse_body(forge_server *s, h1_conn *hc, const char **body, size_t *len, srv_err *e) {
    *body = hc->body.data ? hc->body.data : "";
    *len = hc->body.len;
    return route_parse_text(s, *body, *len, e);
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The byte offset of a \u escape of a UTF-16 surrogate that is not half of a pair, or -1.
 * yajl turns those into replacement bytes or '?', and the chat template refuses what it
 * gets: completions and chat must answer the same, so both refuse them here (as Rust's
 * serde_json and HF's tokenizers do). */
static long lone_surrogate(const char *b, size_t n) {
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '"') in_str = !in_str;
        else if (in_str && b[i] == '\\' && i + 1 < n) {
            if (b[i + 1] != 'u' || i + 6 > n) {
                i++; /* a two-character escape */
                continue;
            }
            int v = hex4(b + i + 2);
            if (v >= 0xDC00 && v <= 0xDFFF) return (long)i;
            if (v >= 0xD800 && v <= 0xDBFF) {
                int w = i + 12 <= n && b[i + 6] == '\\' && b[i + 7] == 'u' ? hex4(b + i + 8) : -1;
                if (w < 0xDC00 || w > 0xDFFF) return (long)i;
                i += 6;
            }
            i += 5;
        }
    }
    return -1;
}

json_doc *route_parse_text(forge_server *s, const char *body, size_t len, srv_err *e) {
    if (len > s->p.max_body_bytes) {
        srv_fail(e, 413, "request_too_large", NULL, "the request body (%zu bytes) is larger than the limit of %zu bytes",
                 len, s->p.max_body_bytes);
        return NULL;
    }
    if (len == 0) {
        srv_fail(e, 400, "invalid_json", NULL, "the request body is empty: send a JSON object");
        return NULL;
    }
    /* strict UTF-8 (yajl lets overlong forms through) */
    if (!utf8_valid(body, len)) {
        size_t off = 0;
        while (off < len) {
            uint32_t cp;
            int k = utf8_decode(body + off, len - off, &cp);
            if (k <= 0) break;
            off += (size_t)k;
        }
        srv_fail(e, 400, "invalid_json", NULL, "the request body is not valid UTF-8 (byte offset %zu)", off);
        return NULL;
    }
    long ls = lone_surrogate(body, len);
    if (ls >= 0) {
        srv_fail(e, 400, "invalid_json", NULL,
                 "the request body has a lone UTF-16 surrogate escape (\\%.5s at byte offset %ld): strings must be "
                 "valid Unicode", body + ls + 1, ls);
        return NULL;
    }
    forge_error err;
    json_doc *doc = json_parse(body, len, &err);
    if (!doc) {
        srv_fail(e, 400, "invalid_json", NULL, "the request body is not valid JSON: %s", err.msg);
        return NULL;
    }
    if (!json_is(json_root(doc), JSON_OBJECT)) {
        srv_fail(e, 400, "invalid_json", NULL, "the request body must be a JSON object, got %s",
                 json_type_name(json_root(doc)->type));
        json_free(doc);
        return NULL;
    }
    return doc;
}

static void send_text(forge_server *s, h1_conn *hc, int route, const char *ctype, const strbuf *sb) {
    if (sb_failed(sb)) {
        srv_err e;
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        reply_error(s, hc, route, &e);
        return;
    }
    metrics_count_http(&s->metrics, route, 200);
    h1_add_field(hc, "Content-Type", ctype);
    h1_respond(hc, 200, sb_str(sb), sb->len);
}

static void model_json(forge_server *s, strbuf *o) {
    sb_puts(o, "{\"id\":");
    json_write_string(o, s->s_name, strlen(s->s_name), false);
    sb_printf(o, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"forge\",\"root\":", s->t_created);
    json_write_string(o, s->model_dir, strlen(s->model_dir), false);
    sb_printf(o, ",\"parent\":null,\"max_model_len\":%d,\"permission\":[]}", s->context_len);
}

static void handle_models(forge_server *s, h1_conn *hc, const char *path) {
    strbuf *o = &s->scratch;
    sb_reset(o);
    if (!strcmp(path, "/v1/models")) {
        sb_puts(o, "{\"object\":\"list\",\"data\":[");
        model_json(s, o);
        sb_puts(o, "]}");
    } else {
        const char *name = path + strlen("/v1/models/");
        char *dec = evhttp_uridecode(name, 0, NULL);
        bool ok = dec && !strcmp(dec, s->s_name);
        if (!ok) {
            srv_err e;
            const char *shown = dec ? dec : name;
            srv_fail(&e, 404, "model_not_found", "model", "The model `%.*s` does not exist.", utf8_cut(shown, 200),
                     shown);
            free(dec);
            reply_error(s, hc, SRV_ROUTE_MODELS, &e);
            return;
        }
        free(dec);
        model_json(s, o);
    }
    send_text(s, hc, SRV_ROUTE_MODELS, "application/json", o);
}

static const char *const k_tokenize[] = {"model", "prompt", "messages", "add_special_tokens", "return_token_strs",
                                         "add_generation_prompt", "continue_final_message", "chat_template_kwargs",
                                         "tools", "documents", NULL};

/* vLLM's /tokenize: {"prompt"} or a chat request {"messages"} -> count, max_model_len,
 * tokens, token_strs. */
static int handle_tokenize(forge_server *s, h1_conn *hc, const json_value *root, const char *body,
                           size_t len, srv_err *e) {
    parse_warn_unknown(root, "/tokenize", k_tokenize);
    if (parse_check_model(s, root, e)) return -1;
    const json_value *prompt = json_get(root, "prompt"), *msgs = json_get(root, "messages");
    bool chat = msgs && msgs->type != JSON_NULL;
    bool add_special = !chat, strs = false;
    if (parse_bool(root, "add_special_tokens", &add_special, e) || parse_bool(root, "return_token_strs", &strs, e))
        return -1;
    char *rendered = NULL;
    const char *text;
    size_t text_len;
    if (chat) {
        if (prompt && prompt->type != JSON_NULL)
            return srv_fail(e, 400, "invalid_value", "prompt", "give either prompt or messages, not both");
        if (msgs->type != JSON_ARRAY) return srv_fail(e, 400, "invalid_type", "messages", "messages must be a list");
        if (parse_render_chat(s, body, len, &rendered, &text_len, e)) return -1;
        text = rendered;
    } else {
        if (!prompt || prompt->type == JSON_NULL)
            return srv_fail(e, 400, "missing_required_parameter", "prompt", "prompt (or messages) is required");
        if (prompt->type != JSON_STRING)
            return srv_fail(e, 400, "invalid_type", "prompt", "prompt must be a string, got %s",
                            json_type_name(prompt->type));
        text = prompt->u.s;
        text_len = prompt->n;
    }
    forge_tokens t = {0};
    forge_error err;
    forge_status st = forge_tokenizer_encode(s->tok, text, text_len, add_special ? FORGE_ENCODE_ADD_SPECIAL : 0, &t, &err);
    free(rendered);
    if (st != FORGE_OK) {
        forge_tokens_free(&t);
        return srv_fail(e, st == FORGE_E_NOMEM ? 500 : 400, NULL, chat ? "messages" : "prompt", "%s", err.msg);
    }
    strbuf *o = &s->scratch;
    sb_reset(o);
    sb_printf(o, "{\"count\":%zu,\"max_model_len\":%d,\"tokens\":[", t.n, s->context_len);
    for (size_t i = 0; i < t.n; i++) sb_printf(o, i ? ",%d" : "%d", t.ids[i]);
    sb_puts(o, "],\"token_strs\":");
    if (!strs) sb_puts(o, "null");
    else {
        sb_putc(o, '[');
        for (size_t i = 0; i < t.n; i++) {
            size_t n;
            const char *ts = forge_tokenizer_id_to_token(s->tok, t.ids[i], &n);
            if (i) sb_putc(o, ',');
            strbuf tmp = STRBUF_INIT;
            utf8_sanitize(&tmp, ts ? ts : "", ts ? n : 0);
            json_write_string(o, sb_str(&tmp), tmp.len, false);
            sb_free(&tmp);
        }
        sb_putc(o, ']');
    }
    sb_putc(o, '}');
    forge_tokens_free(&t);
    send_text(s, hc, SRV_ROUTE_TOKENIZE, "application/json", o);
    return 0;
}

/* vLLM's /detokenize: {"tokens": [ids]} -> {"prompt": text}. */
static int handle_detokenize(forge_server *s, h1_conn *hc, const json_value *root, srv_err *e) {
    static const char *const known[] = {"model", "tokens", NULL};
    parse_warn_unknown(root, "/detokenize", known);
    if (parse_check_model(s, root, e)) return -1;
    const json_value *v = json_get(root, "tokens");
    if (!v || v->type == JSON_NULL) return srv_fail(e, 400, "missing_required_parameter", "tokens", "tokens is required");
    if (v->type != JSON_ARRAY) return srv_fail(e, 400, "invalid_type", "tokens", "tokens must be a list of token ids");
    int32_t *ids = malloc((v->n ? v->n : 1) * sizeof *ids);
    if (!ids) return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        char p[48];
        snprintf(p, sizeof p, "tokens[%zu]", i);
        const json_value *x = v->u.items[i];
        if (!json_is_number(x)) {
            free(ids);
            return srv_fail(e, 400, "invalid_type", p, "%s must be an integer, got %s", p, json_type_name(x->type));
        }
        double d = json_number(x);
        if (d != (double)(long)d || d < 0 || d >= s->vocab) {
            free(ids);
            return srv_fail(e, 400, "invalid_value", p, "%s must be a token id between 0 and %d", p, s->vocab - 1);
        }
        ids[i] = (int32_t)d;
    }
    size_t n_text = 0;
    forge_error err;
    char *text = forge_tokenizer_decode(s->tok, ids, v->n, FORGE_DECODE_SKIP_SPECIAL, &n_text, &err);
    free(ids);
    if (!text) return srv_fail(e, 500, NULL, NULL, "out of memory decoding");
    strbuf *o = &s->scratch;
    sb_reset(o);
    sb_puts(o, "{\"prompt\":");
    strbuf tmp = STRBUF_INIT;
    utf8_sanitize(&tmp, text, n_text);
    json_write_string(o, sb_str(&tmp), tmp.len, false);
    sb_free(&tmp);
    sb_putc(o, '}');
    free(text);
    send_text(s, hc, SRV_ROUTE_DETOKENIZE, "application/json", o);
    return 0;
}

static void preflight(forge_server *s, h1_conn *hc, int route) {
    const char *want = h1_field_get(&hc->head, "Access-Control-Request-Headers");
    h1_add_field(hc, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    h1_add_field(hc, "Access-Control-Allow-Headers",
                 want && strlen(want) < 1024 ? want : "Authorization, Content-Type, X-Request-Id");
    h1_add_field(hc, "Access-Control-Max-Age", "86400");
    metrics_count_http(&s->metrics, route, 204);
    h1_respond(hc, 204, NULL, 0);
}

/* The chat page's file at path, or NULL. */
static const srv_webui_asset *webui_asset(const char *path) {
    for (int i = 0; i < srv_webui_n_assets; i++)
        if (!strcmp(path, srv_webui_assets[i].path)) return &srv_webui_assets[i];
    return NULL;
}

/* The security headers keep the page to itself: scripts, styles, images and fetches only
 * from this server (no inline script or style: model text can never become code), no
 * framing by other sites, no referrer, no MIME sniffing. The key a user types stays in
 * their browser (localStorage); the page is public and served without it. */
static void send_webui(forge_server *s, h1_conn *hc, const srv_webui_asset *a) {
    h1_add_field(hc, "Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                 "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    h1_add_field(hc, "X-Content-Type-Options", "nosniff");
    h1_add_field(hc, "X-Frame-Options", "DENY");
    h1_add_field(hc, "Referrer-Policy", "no-referrer");
    h1_add_field(hc, "Cache-Control", "no-cache");
    h1_add_field(hc, "ETag", a->etag);
    const char *inm = h1_field_get(&hc->head, "If-None-Match");
    if (inm && strstr(inm, a->etag)) {
        metrics_count_http(&s->metrics, SRV_ROUTE_WEBUI, 304);
        h1_respond(hc, 304, NULL, 0);
        return;
    }
    metrics_count_http(&s->metrics, SRV_ROUTE_WEBUI, 200);
    h1_add_field(hc, "Content-Type", a->ctype);
    h1_respond(hc, 200, (const char *)a->data, a->len);
}

/* A client's X-Request-Id is echoed when it is 1-128 visible ASCII characters. */
static bool good_request_id(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f) return false;
    return true;
}

/* The head of a request arrived (its body unread): everything that needs no body is
 * answered here, and so are the refusals (unknown path, method, API key, state), so that
 * nobody's body is read before their key is checked. */
int routes_head(h1_conn *hc, void *arg) {
    forge_server *s = arg;
    if (!hc->unflushed) {
        hc->unflushed = true;
        s->n_unflushed++;
    }
    const char *rid = h1_field_get(&hc->head, "X-Request-Id");
    char gen_rid[33];
    if (!rid || !good_request_id(rid)) {
        server_random_hex(s, gen_rid);
        rid = gen_rid;
    }
    reply_headers(hc, rid);

    srv_err e;
    const char *path = hc->head.path, *method = hc->head.method;
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), postm = !strcmp(method, "POST");
    int route = SRV_ROUTE_OTHER;
    bool post = false;
    for (size_t i = 0; i < sizeof g_routes / sizeof g_routes[0]; i++)
        if (!strcmp(path, g_routes[i].path)) {
            route = g_routes[i].route;
            post = g_routes[i].post;
        }
    bool model_path = !strncmp(path, "/v1/models/", 11) && path[11];
    if (model_path) route = SRV_ROUTE_MODELS;
    const srv_webui_asset *asset = s->p.no_webui ? NULL : webui_asset(path);
    if (asset) route = SRV_ROUTE_WEBUI;
    hc->route = route;
    if (route == SRV_ROUTE_OTHER) {
        srv_fail(&e, 404, "not_found", NULL, "Invalid URL (%.16s %.*s)", method, utf8_cut(path, 200), path);
        goto fail;
    }
    if (!strcmp(method, "OPTIONS")) {
        preflight(s, hc, route);
        return 1;
    }
    if (post ? !postm : !get) {
        srv_fail(&e, 405, "method_not_allowed", NULL, "%.16s is not allowed on %s (use %s)", method, path,
                 post ? "POST" : "GET");
        goto fail;
    }
    if (asset) { /* public, and served while the model loads: the page says so */
        send_webui(s, hc, asset);
        return 1;
    }
    srv_state st = atomic_load(&s->state);
    if (route == SRV_ROUTE_HEALTH) {
        if (st == SRV_READY) {
            static const char ok[] = "{\"status\":\"ok\"}";
            reply_json(s, hc, route, 200, ok, sizeof ok - 1);
            return 1;
        }
        srv_fail(&e, 503, st == SRV_LOADING ? "loading" : "shutting_down", NULL,
                 st == SRV_LOADING ? "the model is loading" : "the server is shutting down");
        goto fail;
    }
    if (route == SRV_ROUTE_METRICS) {
        strbuf *o = &s->scratch;
        sb_reset(o);
        metrics_write(s, o);
        send_text(s, hc, route, "text/plain; version=0.0.4; charset=utf-8", o);
        return 1;
    }
    if (!authorized(s, hc)) {
        srv_fail(&e, 401, "invalid_api_key", NULL, "Incorrect API key provided.");
        goto fail;
    }
    if (st != SRV_READY) {
        srv_fail(&e, 503, st == SRV_LOADING ? "loading" : "shutting_down", NULL,
                 st == SRV_LOADING ? "the model is loading; try again shortly" : "the server is shutting down");
        goto fail;
    }
    if (route == SRV_ROUTE_MODELS) {
        handle_models(s, hc, path);
        return 1;
    }
    /* a POST route: read the body; the answer is owed once it has arrived (a client still
     * sending does not hold a shutdown) */
    hc->unflushed = false;
    s->n_unflushed--;
    return 0;
fail:
    if (e.status >= 500 && e.status != 503) log_error("server: %s", e.msg);
    reply_error(s, hc, route, &e);
    return 1;
}

/* A POST request arrived whole. */
void routes_request(h1_conn *hc, void *arg) {
    forge_server *s = arg;
    int route = hc->route;
    if (!hc->unflushed) {
        hc->unflushed = true;
        s->n_unflushed++;
    }
    if (route == SRV_ROUTE_COMPLETIONS || route == SRV_ROUTE_CHAT || route == SRV_ROUTE_EMBEDDINGS) {
        gen_handle(s, hc, NULL, route);
        return;
    }
    srv_err e;
    const char *body;
    size_t len;
    json_doc *doc = route_parse_body(s, hc, &body, &len, &e);
    if (doc) {
        int rc = route == SRV_ROUTE_TOKENIZE ? handle_tokenize(s, hc, json_root(doc), body, len, &e)
                                             : handle_detokenize(s, hc, json_root(doc), &e);
        json_free(doc);
        if (rc == 0) return;
    }
    if (e.status >= 500 && e.status != 503) log_error("server: %s", e.msg);
    reply_error(s, hc, route, &e);
}

/* http1.c could not read a request (framing, size, time, the connection cap). */
void routes_error(h1_conn *hc, const h1_error *he, void *arg) {
    forge_server *s = arg;
    if (!hc->unflushed) {
        hc->unflushed = true;
        s->n_unflushed++;
    }
    char rid[33];
    server_random_hex(s, rid);
    reply_headers(hc, rid);
    srv_err e;
    srv_fail(&e, he->status, he->code, NULL, "%s", he->msg);
    reply_error(s, hc, hc->route >= 0 ? hc->route : SRV_ROUTE_OTHER, &e);
}

/* The client left while its request was answered. */
void routes_gone(h1_conn *hc, void *arg) {
    forge_server *s = arg;
    srv_req *r = hc->req;
    if (!r) return;
    hc->req = NULL;
    r->hc = NULL;
    s->metrics.disconnects++;
    gen_client_gone(r);
}

void routes_written(h1_conn *hc, void *arg) {
    forge_server *s = arg;
    if (hc->unflushed) {
        hc->unflushed = false;
        s->n_unflushed--;
    }
    server_check_done(s);
}

void routes_closed(h1_conn *hc, void *arg) {
    forge_server *s = arg;
    if (hc->req) routes_gone(hc, arg);
    routes_written(hc, s);
}

/* In-process requests take the generation routes; anything else is answered as an unknown
 * URL is over HTTP. No API key: the caller is in the process. */
void routes_dispatch_local(forge_server *s, srv_local *l) {
    srv_err e;
    int route = SRV_ROUTE_OTHER;
    for (size_t i = 0; i < sizeof g_routes / sizeof g_routes[0]; i++)
        if (!strcmp(l->path, g_routes[i].path)) route = g_routes[i].route;
    if (route != SRV_ROUTE_COMPLETIONS && route != SRV_ROUTE_CHAT && route != SRV_ROUTE_EMBEDDINGS) {
        srv_fail(&e, 404, "not_found", NULL, "Invalid URL (POST %.*s)", utf8_cut(l->path, 200), l->path);
        local_answer_error(s, l, SRV_ROUTE_OTHER, &e);
        return;
    }
    srv_state st = atomic_load(&s->state);
    if (st != SRV_READY) {
        srv_fail(&e, 503, st == SRV_LOADING ? "loading" : "shutting_down", NULL,
                 st == SRV_LOADING ? "the model is loading; try again shortly" : "the server is shutting down");
        local_answer_error(s, l, route, &e);
        return;
    }
    gen_handle(s, NULL, l, route);
}
