/* chatout.c: the reasoning parser feeding the tool-call parser (chatout.h). */
#include <string.h>

#include "chat/chatout.h"

/* The reasoning parser's events: content goes on to the tool-call parser. */
static void from_rp(void *user, chat_ev_kind kind, const char *a, size_t an, const char *b, size_t bn) {
    chat_out *c = user;
    if (kind == CHAT_EV_CONTENT && c->tools) tc_feed(&c->tc, a, an, c->emit, c->user);
    else c->emit(c->user, kind, a, an, b, bn);
}

void chat_out_init(chat_out *c, bool reasoning, bool in_think, tc_family fam, bool parallel, chat_emit_fn emit,
                   void *user) {
    memset(c, 0, sizeof *c);
    c->reasoning = reasoning;
    c->tools = fam != TC_FAMILY_NONE;
    c->emit = emit;
    c->user = user;
    rp_init(&c->rp, in_think);
    tc_init(&c->tc, fam, parallel);
}

void chat_out_feed(chat_out *c, const char *text, size_t len) {
    if (c->reasoning) rp_feed(&c->rp, text, len, from_rp, c);
    else from_rp(c, CHAT_EV_CONTENT, text, len, NULL, 0);
}

void chat_out_finish(chat_out *c) {
    if (c->reasoning) rp_finish(&c->rp, from_rp, c);
    if (c->tools) tc_finish(&c->tc, c->emit, c->user);
}

void chat_out_free(chat_out *c) {
    rp_free(&c->rp);
    tc_free(&c->tc);
}

bool chat_out_failed(const chat_out *c) { return c->rp.pend.failed || tc_failed(&c->tc); }
