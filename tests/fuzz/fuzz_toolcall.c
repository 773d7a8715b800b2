/* libFuzzer: the chat answer parsers (src/chat: reasoning, then tool calls) never crash, and
 * the text fed in pieces (cut at points the input chooses) gives the same message as the
 * text fed whole. Input: one byte of settings (family, reasoning, prompt opened <think>,
 * parallel calls), one byte of cut seed, then the answer text. Also exercises the forcing
 * spec on the text as a tools array. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chatout.h"

typedef struct msg {
    strbuf content, reasoning, calls;
    int n_calls;
} msg;

static void on_ev(void *user, chat_ev_kind kind, const char *a, size_t an, const char *b, size_t bn) {
    msg *m = user;
    if (kind != CHAT_EV_CALL && an == 0) abort(); /* no empty text events */
    if (kind == CHAT_EV_CONTENT) sb_append(&m->content, a, an);
    else if (kind == CHAT_EV_REASONING) sb_append(&m->reasoning, a, an);
    else {
        forge_error err;
        json_doc *d = json_parse(b, bn, &err); /* arguments are always a JSON object */
        if (!d && err.code != FORGE_E_NOMEM) abort();
        if (d && json_root(d)->type != JSON_OBJECT) abort();
        json_free(d);
        sb_append(&m->calls, a, an);
        sb_putc(&m->calls, 0);
        sb_append(&m->calls, b, bn);
        sb_putc(&m->calls, 0);
        m->n_calls++;
    }
}

static void run(const uint8_t *set, const char *text, size_t n, uint32_t seed, msg *m) {
    memset(m, 0, sizeof *m);
    chat_out c;
    chat_out_init(&c, set[0] & 4, set[0] & 8, (tc_family)(set[0] & 3), set[0] & 16, on_ev, m);
    size_t at = 0;
    while (at < n) {
        size_t len = n - at;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            len = 1 + (seed >> 16) % 17;
            if (len > n - at) len = n - at;
        }
        chat_out_feed(&c, text + at, len);
        at += len;
    }
    chat_out_finish(&c);
    if (chat_out_failed(&c)) abort();
    chat_out_free(&c);
}

static bool same(const strbuf *a, const strbuf *b) { return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len)); }

static void msg_free(msg *m) { sb_free(&m->content), sb_free(&m->reasoning), sb_free(&m->calls); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const char *text = (const char *)data + 2;
    size_t n = size - 2;
    msg whole, cut;
    run(data, text, n, 0, &whole);
    run(data, text, n, data[1] | 0x100u, &cut);
    if (!same(&whole.content, &cut.content) || !same(&whole.reasoning, &cut.reasoning) ||
        !same(&whole.calls, &cut.calls) || whole.n_calls != cut.n_calls)
        abort();
    /* with parallel calls off, at most one */
    if (!(data[0] & 16) && whole.n_calls > 1) abort();
    msg_free(&whole), msg_free(&cut);

    forge_error err;
    json_doc *d = json_parse(text, n, &err);
    if (d) {
        strbuf p = STRBUF_INIT, s = STRBUF_INIT, x = STRBUF_INIT;
        if (tc_forcing_spec((tc_family)(data[0] & 3), json_root(d), data[1] & 1 ? "f" : NULL, &p, &s, &x, &err) == FORGE_OK) {
            json_doc *sd = json_parse(sb_str(&s), s.len, &err); /* the schema is JSON */
            if (!sd && err.code != FORGE_E_NOMEM) abort();
            json_free(sd);
        }
        sb_free(&p), sb_free(&s), sb_free(&x);
        json_free(d);
    }
    return 0;
}
