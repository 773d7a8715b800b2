/* generate.c: POST /v1/completions and /v1/chat/completions: a request becomes one engine
 * request per prompt (n choices each); engine events, carried to the loop thread, become
 * SSE chunks as they come or one JSON answer at the end, shaped as OpenAI's. A client that
 * leaves cancels its engine requests; the request record lives until the engine has
 * reported the end of every choice. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "server/server_int.h"

/* An answer stalled in the output buffer beyond this means the client stopped reading. */
#define MAX_UNSENT_BYTES (16u << 20)

static bool echo_only(const srv_req *r) { return r->g.echo && r->g.max_tokens == 0; }

static double lp_value(float x) { return isfinite(x) ? (double)x : -9999.0; }

/* ---- request records ------------------------------------------------------------------ */

static void req_free(forge_server *s, srv_req *r) {
    if (r->prev) r->prev->next = r->next;
    else if (s->reqs == r) s->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    if (r->keepalive) event_free(r->keepalive);
    if (r->hc) r->hc->req = NULL;
    for (int i = 0; i < r->n_subs; i++) {
        if (r->subs[i].er) forge_request_release(r->subs[i].er);
        free(r->subs[i].echo_text);
    }
    int n_choices = r->n_subs * (r->g.n > 0 ? r->g.n : 1);
    for (int i = 0; r->choices && i < n_choices; i++) {
        if (r->choices[i].co) chat_out_free(r->choices[i].co);
        free(r->choices[i].co);
        sb_free(&r->choices[i].text);
        for (int k = 0; k < 4; k++) sb_free(&r->choices[i].lp[k]);
        free(r->choices[i].emb);
    }
    free(r->subs);
    free(r->choices);
    srv_gen_free(&r->g);
    json_free(r->doc);
    free(r->error);
    free(r);
}

static void cancel_subs(srv_req *r) {
    r->cancelled = true;
    for (int i = 0; i < r->n_subs; i++)
        if (r->subs[i].er) forge_request_cancel(r->subs[i].er);
}

void gen_client_gone(srv_req *r) {
    r->gone = true;
    if (r->keepalive) event_del(r->keepalive);
    if (!r->cancelled) cancel_subs(r);
}

void gen_cancel_all(forge_server *s) {
    for (srv_req *r = s->reqs; r; r = r->next)
        if (!r->cancelled) cancel_subs(r);
}

/* ---- writing -------------------------------------------------------------------------- */

/* A whole answer, to the HTTP client or the in-process caller. */
static void answer_to(forge_server *s, h1_conn *hc, srv_local *local, int route, int status, const char *json,
                      size_t len) {
    if (local) local_answer(s, local, route, status, json, len);
    else reply_json(s, hc, route, status, json, len);
}

static void answer_error_to(forge_server *s, h1_conn *hc, srv_local *local, int route, const srv_err *e) {
    if (local) local_answer_error(s, local, route, e);
    else reply_error(s, hc, route, e);
}

/* Sends an SSE frame; a client whose unread output piles up is treated as gone. */
static void req_send(srv_req *r, const char *frame, size_t len) {
    if (!r->hc) return;
    if (h1_unsent(r->hc) > MAX_UNSENT_BYTES) {
        log_warn("server: %s: the client stopped reading; dropping it", r->id);
        h1_drop(r->hc); /* routes_gone marks r gone */
        return;
    }
    sse_send(r->hc, frame, len);
    r->t_last_write = server_now();
}

static void chunk_begin(forge_server *s, srv_req *r, strbuf *o) {
    sb_printf(o, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":%s,\"choices\":[", r->id,
              r->g.chat ? "chat.completion.chunk" : "text_completion", r->created, s->name_json);
}

static void chunk_end(srv_req *r, strbuf *o) {
    sb_puts(o, r->g.include_usage ? "],\"usage\":null}\n\n" : "]}\n\n");
}

static const char *finish_name(forge_finish_reason f) {
    return f == FORGE_FINISH_STOP ? "\"stop\"" : f == FORGE_FINISH_LENGTH ? "\"length\"" : "null";
}

/* A chat answer that called tools and ended by itself finishes with "tool_calls". */
static const char *chat_finish_name(forge_finish_reason f, int n_calls) {
    return f == FORGE_FINISH_STOP && n_calls > 0 ? "\"tool_calls\"" : finish_name(f);
}

/* A tool call's id: mistral's templates want 9 letters and digits (as vLLM makes them),
 * the others get OpenAI's "call_" and 24. */
static void call_id_json(forge_server *s, strbuf *o) {
    char id[32];
    if (s->tc_fam == TC_FAMILY_MISTRAL) server_random_alnum(s, id, 9);
    else {
        memcpy(id, "call_", 5);
        server_random_alnum(s, id + 5, 24);
    }
    sb_printf(o, "\"%s\"", id);
}

static bool parsers_on(const srv_req *r) { return r->g.chat && (r->g.tools_on || r->g.reasoning_on); }

static void new_chat_out(srv_req *r, chat_out *co, chat_emit_fn emit, void *user) {
    chat_out_init(co, r->g.reasoning_on, r->g.opens_think, r->g.tools_on ? r->s->tc_fam : TC_FAMILY_NONE,
                  r->g.parallel_tool_calls, emit, user);
}

/* vLLM's stop_reason: the stop string, or the stop token id, or null (EOS, length). */
static void stop_reason_json(srv_req *r, const srv_choice *c, strbuf *o) {
    if (c->finish == FORGE_FINISH_STOP && c->stop_index >= 0 && c->stop_index < r->g.n_stop) {
        json_write_string(o, r->g.stop[c->stop_index], strlen(r->g.stop[c->stop_index]), false);
        return;
    }
    if (c->finish == FORGE_FINISH_STOP)
        for (int i = 0; i < r->g.n_stop_ids; i++)
            if (r->g.stop_ids[i] == c->last_token) {
                sb_printf(o, "%d", c->last_token);
                return;
            }
    sb_puts(o, "null");
}

/* ---- logprobs ------------------------------------------------------------------------- */

/* One chat logprobs entry: {"token", "logprob", "bytes", "top_logprobs": [...]}. */
static void chat_lp_entry(forge_server *s, strbuf *o, const srv_msg *m, int top_n) {
    sb_puts(o, "{\"token\":");
    token_text_json(s, o, m->token);
    sb_puts(o, ",\"logprob\":");
    json_write_double(o, lp_value(m->logprob));
    sb_puts(o, ",\"bytes\":");
    token_bytes_json(s, o, m->token);
    sb_puts(o, ",\"top_logprobs\":[");
    for (int k = 0; k < m->n_top && k < top_n; k++) {
        sb_puts(o, k ? ",{\"token\":" : "{\"token\":");
        token_text_json(s, o, m->top_ids[k]);
        sb_puts(o, ",\"logprob\":");
        json_write_double(o, lp_value(m->top_lp[k]));
        sb_puts(o, ",\"bytes\":");
        token_bytes_json(s, o, m->top_ids[k]);
        sb_putc(o, '}');
    }
    sb_puts(o, "]}");
}

/* One completions logprobs entry into the four lists: the token, its logprob (NaN: null),
 * the top alternatives as {text: logprob} plus the sampled token (tops NULL: null), and the
 * text offset. */
static void cmpl_lp_add(forge_server *s, strbuf lp[4], int *n, size_t *chars, int32_t token, float logprob,
                        const int32_t *top_ids, const float *top_lp, int n_top, bool null_tops) {
    const char *sep = *n ? "," : "";
    sb_puts(&lp[0], sep);
    token_text_json(s, &lp[0], token);
    sb_puts(&lp[1], sep);
    if (isnan(logprob)) sb_puts(&lp[1], "null");
    else json_write_double(&lp[1], lp_value(logprob));
    sb_puts(&lp[2], sep);
    if (null_tops) {
        sb_puts(&lp[2], "null");
    } else {
        /* a dict keyed by token text: a text seen already keeps its first (higher) value */
        enum { MAX_KEYS = 24 };
        strbuf keys[MAX_KEYS];
        int nk = 0;
        sb_putc(&lp[2], '{');
        for (int k = 0; k <= n_top && nk < MAX_KEYS; k++) {
            int32_t id = k < n_top ? top_ids[k] : token;
            float v = k < n_top ? top_lp[k] : logprob;
            keys[nk] = (strbuf)STRBUF_INIT;
            token_text_json(s, &keys[nk], id);
            bool dup = false;
            for (int j = 0; j < nk && !dup; j++) dup = !strcmp(sb_str(&keys[j]), sb_str(&keys[nk]));
            if (dup) {
                sb_free(&keys[nk]);
                continue;
            }
            if (nk) sb_putc(&lp[2], ',');
            sb_append(&lp[2], sb_str(&keys[nk]), keys[nk].len);
            sb_putc(&lp[2], ':');
            json_write_double(&lp[2], lp_value(v));
            nk++;
        }
        for (int j = 0; j < nk; j++) sb_free(&keys[j]);
        sb_putc(&lp[2], '}');
    }
    sb_puts(&lp[3], sep);
    sb_printf(&lp[3], "%zu", *chars);
    *chars += token_text_chars(s, token);
    (*n)++;
}

/* The prompt's entries (echo with logprobs): the first token has no logprob. */
static void cmpl_lp_prompt(forge_server *s, srv_sub *sub, const srv_msg *m, strbuf lp[4], int *n, size_t *chars) {
    srv_req *r = sub->r;
    const int32_t *ids = r->g.ids[sub->index];
    int np = r->g.n_ids[sub->index];
    for (int i = 0; i < np; i++) {
        float v = i < m->n_prompt_lp && i > 0 ? m->prompt_lp[i] : NAN;
        cmpl_lp_add(s, lp, n, chars, ids[i], v, NULL, NULL, 0, i == 0);
    }
}

static void cmpl_lp_json(strbuf *o, strbuf lp[4]) {
    sb_puts(o, "{\"tokens\":[");
    sb_append(o, sb_str(&lp[0]), lp[0].len);
    sb_puts(o, "],\"token_logprobs\":[");
    sb_append(o, sb_str(&lp[1]), lp[1].len);
    sb_puts(o, "],\"top_logprobs\":[");
    sb_append(o, sb_str(&lp[2]), lp[2].len);
    sb_puts(o, "],\"text_offset\":[");
    sb_append(o, sb_str(&lp[3]), lp[3].len);
    sb_puts(o, "]}");
}

/* ---- events --------------------------------------------------------------------------- */

/* ---- chat answers parsed into message fields (docs/tools.md) -------------------------- */

/* Streaming: each parser event becomes a chunk; the event's logprobs go with its first. */
typedef struct stream_ctx {
    forge_server *s;
    srv_req *r;
    srv_choice *c;
    int ci;
    const srv_msg *m;
    bool lp_pending;
    strbuf *o;
} stream_ctx;

static void stream_delta_end(stream_ctx *x) {
    strbuf *o = x->o;
    sb_puts(o, "},\"logprobs\":");
    if (x->lp_pending) {
        sb_puts(o, "{\"content\":[");
        chat_lp_entry(x->s, o, x->m, x->r->g.logprobs);
        sb_puts(o, "]}");
        x->lp_pending = false;
    } else {
        sb_puts(o, "null");
    }
    sb_puts(o, ",\"finish_reason\":null}");
    chunk_end(x->r, o);
}

static void stream_emit(void *user, chat_ev_kind kind, const char *a, size_t an, const char *b, size_t bn) {
    stream_ctx *x = user;
    strbuf *o = x->o;
    chunk_begin(x->s, x->r, o);
    sb_printf(o, "{\"index\":%d,\"delta\":{", x->ci);
    if (kind == CHAT_EV_CALL) {
        /* OpenAI's shape: index, id, type and name first (arguments ""), then the arguments */
        int k = x->c->n_calls++;
        sb_printf(o, "\"tool_calls\":[{\"index\":%d,\"id\":", k);
        call_id_json(x->s, o);
        sb_puts(o, ",\"type\":\"function\",\"function\":{\"name\":");
        json_write_string(o, a, an, false);
        sb_puts(o, ",\"arguments\":\"\"}}]");
        stream_delta_end(x);
        chunk_begin(x->s, x->r, o);
        sb_printf(o, "{\"index\":%d,\"delta\":{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", x->ci, k);
        json_write_string(o, b, bn, false);
        sb_puts(o, "}}]");
    } else {
        sb_puts(o, kind == CHAT_EV_REASONING ? "\"reasoning_content\":" : "\"content\":");
        json_write_string(o, a, an, false);
    }
    stream_delta_end(x);
}

static void stream_parsed(forge_server *s, srv_req *r, int ci, srv_choice *c, const srv_msg *m) {
    bool ok_end = m->finish == FORGE_FINISH_STOP || m->finish == FORGE_FINISH_LENGTH;
    strbuf *o = &s->scratch;
    sb_reset(o);
    stream_ctx x = {.s = s, .r = r, .c = c, .ci = ci, .m = m, .lp_pending = r->g.logprobs >= 0 && m->token >= 0, .o = o};
    c->co->user = &x;
    if (m->text_len) chat_out_feed(c->co, m->text, m->text_len);
    if (ok_end) chat_out_finish(c->co);
    if (x.lp_pending) { /* the token's text is held: its logprobs go with an empty delta */
        chunk_begin(s, r, o);
        sb_printf(o, "{\"index\":%d,\"delta\":{", ci);
        stream_delta_end(&x);
    }
    if (ok_end) {
        c->finish = m->finish;
        c->stop_index = m->stop_index;
        chunk_begin(s, r, o);
        sb_printf(o, "{\"index\":%d,\"delta\":{},\"logprobs\":null,\"finish_reason\":%s,\"stop_reason\":", ci,
                  chat_finish_name(m->finish, c->n_calls));
        stop_reason_json(r, c, o);
        sb_putc(o, '}');
        chunk_end(r, o);
    }
    if (o->len && !sb_failed(o) && !chat_out_failed(c->co)) req_send(r, o->data, o->len);
}

/* Not streaming: the whole text parsed into the message's members. */
typedef struct message_ctx {
    forge_server *s;
    strbuf content, reasoning, calls;
    int n_calls;
} message_ctx;

static void message_emit(void *user, chat_ev_kind kind, const char *a, size_t an, const char *b, size_t bn) {
    message_ctx *x = user;
    if (kind == CHAT_EV_CONTENT) {
        sb_append(&x->content, a, an);
    } else if (kind == CHAT_EV_REASONING) {
        sb_append(&x->reasoning, a, an);
    } else {
        sb_puts(&x->calls, x->n_calls++ ? ",{\"id\":" : "{\"id\":");
        call_id_json(x->s, &x->calls);
        sb_puts(&x->calls, ",\"type\":\"function\",\"function\":{\"name\":");
        json_write_string(&x->calls, a, an, false);
        sb_puts(&x->calls, ",\"arguments\":");
        json_write_string(&x->calls, b, bn, false);
        sb_puts(&x->calls, "}}");
    }
}

/* The message's members after "role" (content null when empty, as OpenAI's), and the
 * number of calls. */
static int message_json(forge_server *s, srv_req *r, const srv_choice *c, strbuf *o) {
    message_ctx x = {.s = s};
    chat_out co;
    new_chat_out(r, &co, message_emit, &x);
    chat_out_feed(&co, sb_str(&c->text), c->text.len);
    chat_out_finish(&co);
    if (chat_out_failed(&co)) o->failed = true;
    chat_out_free(&co);
    sb_puts(o, ",\"content\":");
    if (x.content.len) json_write_string(o, x.content.data, x.content.len, false);
    else sb_puts(o, "null");
    if (r->g.reasoning_on) {
        sb_puts(o, ",\"reasoning_content\":");
        if (x.reasoning.len) json_write_string(o, x.reasoning.data, x.reasoning.len, false);
        else sb_puts(o, "null");
    }
    if (x.n_calls) {
        sb_puts(o, ",\"tool_calls\":[");
        sb_append(o, sb_str(&x.calls), x.calls.len);
        sb_putc(o, ']');
    }
    if (sb_failed(&x.content) || sb_failed(&x.reasoning) || sb_failed(&x.calls)) o->failed = true;
    sb_free(&x.content), sb_free(&x.reasoning), sb_free(&x.calls);
    return x.n_calls;
}

/* Streams one event of choice ci: a content chunk (text and/or logprobs), then for chat a
 * finish chunk with an empty delta. Cancellations and errors are answered at the end. */
static void stream_event(forge_server *s, srv_req *r, srv_sub *sub, int ci, srv_choice *c, const srv_msg *m) {
    if (c->co) {
        stream_parsed(s, r, ci, c, m);
        return;
    }
    bool ok_end = m->finish == FORGE_FINISH_STOP || m->finish == FORGE_FINISH_LENGTH;
    bool gen_token = m->token >= 0 && !echo_only(r);
    bool has_lp = r->g.logprobs >= 0 && (gen_token || (c->echo_pending && r->g.prompt_logprobs));
    bool has_text = m->text_len > 0 || c->echo_pending;
    if (echo_only(r) && !c->echo_pending) has_text = false;
    if (!has_text && !has_lp && !ok_end) return;
    strbuf *o = &s->scratch;
    sb_reset(o);
    if (has_text || has_lp) {
        chunk_begin(s, r, o);
        sb_printf(o, "{\"index\":%d,", ci);
        if (r->g.chat) {
            sb_puts(o, "\"delta\":{\"content\":");
            json_write_string(o, m->text, echo_only(r) ? 0 : m->text_len, false);
            sb_puts(o, "},\"logprobs\":");
            if (has_lp) {
                sb_puts(o, "{\"content\":[");
                chat_lp_entry(s, o, m, r->g.logprobs);
                sb_puts(o, "]}");
            } else {
                sb_puts(o, "null");
            }
            sb_puts(o, ",\"finish_reason\":null}");
        } else {
            strbuf text = STRBUF_INIT;
            if (c->echo_pending) sb_append(&text, sub->echo_text, sub->echo_len);
            if (!echo_only(r)) sb_append(&text, m->text, m->text_len);
            sb_puts(o, "\"text\":");
            json_write_string(o, sb_str(&text), text.len, false);
            sb_free(&text);
            sb_puts(o, ",\"logprobs\":");
            if (has_lp) {
                strbuf lp[4] = {STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT};
                int n = 0;
                if (c->echo_pending && r->g.prompt_logprobs) cmpl_lp_prompt(s, sub, m, lp, &n, &c->text_chars);
                if (gen_token)
                    cmpl_lp_add(s, lp, &n, &c->text_chars, m->token, m->logprob, m->top_ids, m->top_lp,
                                m->n_top < r->g.logprobs ? m->n_top : r->g.logprobs, false);
                cmpl_lp_json(o, lp);
                for (int k = 0; k < 4; k++) sb_free(&lp[k]);
            } else {
                sb_puts(o, "null");
            }
            sb_printf(o, ",\"finish_reason\":%s,\"stop_reason\":", ok_end ? finish_name(m->finish) : "null");
            if (ok_end) {
                c->finish = m->finish;
                c->stop_index = m->stop_index;
                stop_reason_json(r, c, o);
            } else {
                sb_puts(o, "null");
            }
            sb_putc(o, '}');
        }
        chunk_end(r, o);
        c->echo_pending = false;
    }
    if (ok_end && (r->g.chat || !(has_text || has_lp))) {
        c->finish = m->finish;
        c->stop_index = m->stop_index;
        chunk_begin(s, r, o);
        sb_printf(o, "{\"index\":%d,%s\"logprobs\":null,\"finish_reason\":%s,\"stop_reason\":", ci,
                  r->g.chat ? "\"delta\":{}," : "\"text\":\"\",", finish_name(m->finish));
        stop_reason_json(r, c, o);
        sb_putc(o, '}');
        chunk_end(r, o);
    }
    if (!sb_failed(o)) req_send(r, o->data, o->len);
}

/* Accumulates one event of a non-streaming request. */
static size_t choice_bytes(const srv_choice *c) {
    return c->text.len + c->lp[0].len + c->lp[1].len + c->lp[2].len + c->lp[3].len;
}

static void collect_lp(forge_server *s, srv_req *r, srv_sub *sub, srv_choice *c, const srv_msg *m);

/* A non-streaming choice's text and logprobs are held until the end: bounded by the
 * response limit (past it the request is cancelled and answered 400). */
static void collect_event(forge_server *s, srv_req *r, srv_sub *sub, srv_choice *c, const srv_msg *m) {
    size_t before = choice_bytes(c);
    if (!echo_only(r)) sb_append(&c->text, m->text, m->text_len);
    collect_lp(s, r, sub, c, m);
    r->held += choice_bytes(c) - before;
    if (r->held > parse_response_limit(s) && !r->too_large) {
        r->too_large = true;
        if (!r->cancelled) cancel_subs(r);
    }
}

static void collect_lp(forge_server *s, srv_req *r, srv_sub *sub, srv_choice *c, const srv_msg *m) {
    if (r->g.logprobs < 0 || m->token < 0) return;
    if (r->g.chat) {
        if (c->n_lp++) sb_putc(&c->lp[0], ',');
        chat_lp_entry(s, &c->lp[0], m, r->g.logprobs);
    } else {
        if (c->n_lp == 0 && r->g.prompt_logprobs) cmpl_lp_prompt(s, sub, m, c->lp, &c->n_lp, &c->text_chars);
        if (!echo_only(r))
            cmpl_lp_add(s, c->lp, &c->n_lp, &c->text_chars, m->token, m->logprob, m->top_ids, m->top_lp,
                        m->n_top < r->g.logprobs ? m->n_top : r->g.logprobs, false);
    }
}

static void usage_json(srv_req *r, strbuf *o) {
    long long prompt = 0, cached = 0;
    for (int i = 0; i < r->n_subs; i++) {
        prompt += r->subs[i].prompt_tokens;
        cached += r->subs[i].cached_tokens;
    }
    sb_printf(o,
              "{\"prompt_tokens\":%lld,\"completion_tokens\":%d,\"total_tokens\":%lld,"
              "\"prompt_tokens_details\":{\"cached_tokens\":%lld}}",
              prompt, r->completion_tokens, prompt + r->completion_tokens, cached);
}

static void answer_json(forge_server *s, srv_req *r, strbuf *o) {
    sb_printf(o, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":%s,\"choices\":[", r->id,
              r->g.chat ? "chat.completion" : "text_completion", r->created, s->name_json);
    for (int si = 0; si < r->n_subs; si++)
        for (int k = 0; k < r->g.n; k++) {
            int ci = si * r->g.n + k;
            srv_choice *c = &r->choices[ci];
            sb_printf(o, "%s{\"index\":%d,", ci ? "," : "", ci);
            int n_calls = 0;
            if (r->g.chat) {
                sb_puts(o, "\"message\":{\"role\":\"assistant\"");
                if (parsers_on(r)) {
                    n_calls = message_json(s, r, c, o);
                } else {
                    sb_puts(o, ",\"content\":");
                    json_write_string(o, sb_str(&c->text), c->text.len, false);
                }
                sb_puts(o, "},\"logprobs\":");
                if (r->g.logprobs >= 0) {
                    sb_puts(o, "{\"content\":[");
                    sb_append(o, sb_str(&c->lp[0]), c->lp[0].len);
                    sb_puts(o, "]}");
                } else {
                    sb_puts(o, "null");
                }
            } else {
                strbuf text = STRBUF_INIT;
                if (r->g.echo) sb_append(&text, r->subs[si].echo_text, r->subs[si].echo_len);
                sb_append(&text, sb_str(&c->text), c->text.len);
                sb_puts(o, "\"text\":");
                json_write_string(o, sb_str(&text), text.len, false);
                sb_free(&text);
                sb_puts(o, ",\"logprobs\":");
                if (r->g.logprobs >= 0) cmpl_lp_json(o, c->lp);
                else sb_puts(o, "null");
            }
            sb_printf(o, ",\"finish_reason\":%s,\"stop_reason\":", chat_finish_name(c->finish, n_calls));
            stop_reason_json(r, c, o);
            sb_putc(o, '}');
        }
    sb_puts(o, "],\"usage\":");
    usage_json(r, o);
    sb_putc(o, '}');
}

/* Every choice has ended: answer (unless the client is gone) and free the record. */
static void finish_request(forge_server *s, srv_req *r) {
    hist_observe(&s->metrics.e2e, server_now() - r->t_start);
    h1_conn *hc = r->hc;
    srv_local *local = r->local;
    if (hc || local) {
        strbuf *o = &s->scratch;
        sb_reset(o);
        srv_err e;
        bool failed = r->worst == FORGE_FINISH_ERROR || r->worst == FORGE_FINISH_CANCELLED || r->too_large;
        if (r->too_large)
            srv_fail(&e, 400, "response_too_large", NULL,
                     "the answer grew past this server's limit of %zu MB (--max-response-mb): lower n, max_tokens or "
                     "logprobs, or stream it", parse_response_limit(s) >> 20);
        else if (r->worst == FORGE_FINISH_ERROR)
            srv_fail(&e, 500, NULL, NULL, "generation failed: %s", r->error ? r->error : "an engine error");
        else if (failed)
            srv_fail(&e, 503, "shutting_down", NULL, "the server is shutting down; the request was cancelled");
        if (r->streaming) {
            if (failed) {
                sb_puts(o, "data: ");
                error_json(o, &e);
                sb_puts(o, "\n\n");
            } else if (r->g.include_usage) {
                chunk_begin(s, r, o);
                sb_puts(o, "],\"usage\":");
                usage_json(r, o);
                sb_puts(o, "}\n\n");
            }
            sb_puts(o, "data: [DONE]\n\n");
            req_send(r, o->data, o->len);
            if (r->hc) sse_end(r->hc);
        } else if (failed) {
            answer_error_to(s, hc, local, r->route, &e);
        } else {
            if (r->g.embed) embed_answer_json(s, r, o);
            else answer_json(s, r, o);
            if (sb_failed(o)) {
                srv_fail(&e, 500, NULL, NULL, "out of memory building the answer");
                answer_error_to(s, hc, local, r->route, &e);
            } else {
                answer_to(s, hc, local, r->route, 200, o->data, o->len);
            }
        }
        if (r->hc) r->hc->req = NULL;
        r->hc = NULL;
        r->local = NULL;
    }
    s->n_reqs--;
    req_free(s, r);
    server_check_done(s);
}

void gen_on_msg(forge_server *s, srv_msg *m) {
    srv_sub *sub = m->sub;
    srv_req *r = sub->r;
    int ci = sub->index * r->g.n + m->choice;
    srv_choice *c = &r->choices[ci];
    if (echo_only(r) && m->finish == FORGE_FINISH_STOP) m->finish = FORGE_FINISH_LENGTH; /* max_tokens 0 */
    if (m->token >= 0) {
        if (!echo_only(r)) s->metrics.generation_tokens++;
        if (!sub->got_token) {
            sub->got_token = true;
            hist_observe(&s->metrics.ttft, m->t - r->t_start);
        }
        if (c->t_last > 0) hist_observe(&s->metrics.itl, m->t - c->t_last);
        c->t_last = m->t;
        c->last_token = m->token;
    }
    if ((r->hc || r->local) && !m->lost) {
        if (r->g.embed) {
            if (m->emb && !c->emb) {
                c->emb = malloc(sizeof(float) * (size_t)m->n_emb);
                if (c->emb) memcpy(c->emb, m->emb, sizeof(float) * (size_t)m->n_emb), c->n_emb = m->n_emb;
                else m->lost = true; /* answered as an error below */
            }
        } else if (r->streaming) {
            stream_event(s, r, sub, ci, c, m);
        } else {
            collect_event(s, r, sub, c, m);
        }
    }
    if (m->finish) {
        c->finish = m->finish;
        c->stop_index = m->stop_index;
        s->metrics.finished[m->finish >= 0 && m->finish < 5 ? m->finish : 4]++;
        if (m->lost && r->worst != FORGE_FINISH_CANCELLED) r->worst = FORGE_FINISH_ERROR;
        if (m->finish == FORGE_FINISH_ERROR) {
            r->worst = FORGE_FINISH_ERROR;
            if (!r->error && m->error) r->error = strdup(m->error);
        } else if (m->finish == FORGE_FINISH_CANCELLED && r->worst != FORGE_FINISH_ERROR) {
            r->worst = FORGE_FINISH_CANCELLED;
        }
        if (!echo_only(r)) r->completion_tokens += m->completion_tokens;
        if (m->choice == 0) {
            sub->prompt_tokens = m->prompt_tokens;
            sub->cached_tokens = m->cached_tokens;
            s->metrics.prompt_tokens += (uint64_t)m->prompt_tokens;
            s->metrics.cached_tokens += (uint64_t)m->cached_tokens;
        }
        if (--sub->n_live == 0) {
            forge_request_release(sub->er);
            sub->er = NULL;
            if (--r->n_live_subs == 0) {
                free(m);
                finish_request(s, r);
                return;
            }
        }
    }
    free(m);
}

/* ---- starting a request --------------------------------------------------------------- */

static void on_keepalive(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    srv_req *r = arg;
    if (r->hc && server_now() - r->t_last_write >= r->s->p.sse_keepalive * 0.5) {
        static const char comment[] = ": keep-alive\n\n";
        req_send(r, comment, sizeof comment - 1);
    }
}

static int submit_error(forge_status st, const forge_error *err, srv_err *e) {
    switch (st) {
    case FORGE_E_BUSY: return srv_fail(e, 503, "overloaded", NULL, "the server is busy (%s); retry shortly", err->msg);
    case FORGE_E_RANGE: return srv_fail(e, 400, "context_length_exceeded", NULL, "%s", err->msg);
    case FORGE_E_CANCELLED: return srv_fail(e, 503, "shutting_down", NULL, "the server is shutting down");
    case FORGE_E_INVALID: return srv_fail(e, 400, "invalid_value", NULL, "%s", err->msg);
    default: return srv_fail(e, 500, NULL, NULL, "%s", err->msg);
    }
}

void gen_handle(forge_server *s, h1_conn *hc, srv_local *local, int route) {
    srv_err e;
    srv_req *r = calloc(1, sizeof *r);
    if (!r) {
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        answer_error_to(s, hc, local, route, &e);
        return;
    }
    r->s = s;
    r->local = local;
    r->route = route;
    r->t_start = server_now();
    r->created = (long long)time(NULL);
    bool chat = route == SRV_ROUTE_CHAT, embed = route == SRV_ROUTE_EMBEDDINGS;
    const char *body;
    size_t len;
    srv_gen *g = &r->g;
    if (local) {
        body = local->body;
        len = local->len;
        r->doc = route_parse_text(s, body, len, &e);
    } else {
        r->doc = route_parse_body(s, hc, &body, &len, &e);
    }
    if (!r->doc ||
        (embed ? embed_parse(s, json_root(r->doc), g, &e)
               : parse_generation(s, json_root(r->doc), chat, g, &e) || parse_constraint(json_root(r->doc), body, len, g, &e) ||
                     parse_tool_force(s, json_root(r->doc), g, &e)))
        goto fail;
    if (local && g->stream) {
        srv_fail(&e, 400, "invalid_value", "stream", "stream is not supported for in-process (batch) requests");
        goto fail;
    }
    if ((chat && parse_chat_prompt(s, json_root(r->doc), body, len, g, &e)) || parse_tokenize_prompts(s, g, &e) ||
        (!embed && parse_check_response_size(s, g, &e)))
        goto fail;
    char hex[33];
    server_random_hex(s, hex);
    snprintf(r->id, sizeof r->id, "%s-%s", chat ? "chatcmpl" : embed ? "embd" : "cmpl", hex);
    r->n_subs = g->n_prompts;
    r->subs = calloc((size_t)r->n_subs, sizeof *r->subs);
    r->choices = calloc((size_t)r->n_subs * (size_t)g->n, sizeof *r->choices);
    if (!r->subs || !r->choices) {
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < r->n_subs; i++) {
        srv_sub *sub = &r->subs[i];
        sub->r = r;
        sub->s = s;
        sub->index = i;
        if (!g->echo) continue;
        if (g->texts[i]) sub->echo_text = strndup(g->texts[i], g->text_lens[i]);
        else sub->echo_text = forge_tokenizer_decode(s->tok, g->ids[i], (size_t)g->n_ids[i], 0, NULL, NULL);
        if (!sub->echo_text) {
            srv_fail(&e, 500, NULL, NULL, "out of memory");
            goto fail;
        }
        sub->echo_len = strlen(sub->echo_text);
        for (int k = 0; k < g->n; k++) r->choices[i * g->n + k].echo_pending = g->stream;
    }
    for (int ci = 0; g->stream && parsers_on(r) && ci < r->n_subs * g->n; ci++) {
        srv_choice *c = &r->choices[ci];
        if (!(c->co = malloc(sizeof *c->co))) {
            srv_fail(&e, 500, NULL, NULL, "out of memory");
            goto fail;
        }
        new_chat_out(r, c->co, stream_emit, NULL); /* its user is set per event */
    }
    /* linked before submitting: from here on the record lives until its last event */
    r->next = s->reqs;
    if (s->reqs) s->reqs->prev = r;
    s->reqs = r;
    s->n_reqs++;
    for (int i = 0; i < r->n_subs; i++) {
        srv_sub *sub = &r->subs[i];
        forge_request_params rp = {.prompt_ids = g->ids[i], .n_prompt_ids = g->n_ids[i], .sampling = g->sp,
                                   .stop = g->stop, .n_stop = g->n_stop, .stop_token_ids = g->stop_ids,
                                   .n_stop_token_ids = g->n_stop_ids, .n = g->n,
                                   .max_tokens = echo_only(r) ? 1 : (int)g->max_tokens, .min_tokens = (int)g->min_tokens,
                                   .ignore_eos = g->ignore_eos, .logprobs = g->logprobs >= 0,
                                   .prompt_logprobs = g->prompt_logprobs, .keep_special_tokens = !g->skip_special_tokens,
                                   .embedding = g->embed, .constraint = g->constraint};
        forge_error err;
        sub->n_live = g->n;
        sub->er = forge_engine_submit(s->engine, &rp, server_on_engine_event, sub, &err);
        if (!sub->er) {
            sub->n_live = 0;
            submit_error(err.code, &err, &e);
            if (e.status >= 500 && e.status != 503) log_error("server: %s", e.msg);
            answer_error_to(s, hc, local, route, &e);
            r->local = NULL;
            if (r->n_live_subs == 0) {
                s->n_reqs--;
                req_free(s, r);
                server_check_done(s);
            } else {
                cancel_subs(r); /* the record goes when their cancellations arrive */
            }
            return;
        }
        r->n_live_subs++;
    }
    if (hc) { /* from here on routes_gone tells r when the client leaves */
        r->hc = hc;
        hc->req = r;
    }
    if (g->stream) {
        sse_start(s, hc, route);
        r->streaming = true;
        r->t_last_write = server_now();
        if (chat) { /* the role first, for every choice */
            strbuf *o = &s->scratch;
            sb_reset(o);
            for (int ci = 0; ci < r->n_subs * g->n; ci++) {
                chunk_begin(s, r, o);
                sb_printf(o, "{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
                             "\"finish_reason\":null}", ci);
                chunk_end(r, o);
            }
            if (!sb_failed(o)) req_send(r, o->data, o->len);
        }
        double ka = s->p.sse_keepalive;
        struct timeval tv = {(time_t)ka, (suseconds_t)((ka - (double)(time_t)ka) * 1e6)};
        r->keepalive = event_new(s->base, -1, EV_PERSIST, on_keepalive, r);
        if (r->keepalive) event_add(r->keepalive, &tv);
    }
    return;
fail:
    if (e.status >= 500 && e.status != 503) log_error("server: %s", e.msg);
    answer_error_to(s, hc, local, route, &e);
    r->local = NULL;
    req_free(s, r);
}
