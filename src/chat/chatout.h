/* chatout.h: one chat answer through the reasoning parser, then the tool-call parser (the
 * reasoning's content only: a call written while thinking is not a call). The server keeps
 * one per choice; events go to the caller's emit function as they become certain. */
#ifndef FORGE_CHAT_CHATOUT_H
#define FORGE_CHAT_CHATOUT_H

#include "chat/reasoning.h"
#include "chat/toolcall.h"

typedef struct chat_out {
    bool reasoning, tools; /* which parsers are on */
    rp_parser rp;
    tc_parser tc;
    chat_emit_fn emit;
    void *user;
} chat_out;

/* reasoning: split <think> (in_think: the prompt opened the block); fam: the tool-call
 * format (TC_FAMILY_NONE: no tool calls); parallel false keeps the first call only. */
void chat_out_init(chat_out *c, bool reasoning, bool in_think, tc_family fam, bool parallel, chat_emit_fn emit,
                   void *user);
void chat_out_feed(chat_out *c, const char *text, size_t len);
void chat_out_finish(chat_out *c);
void chat_out_free(chat_out *c);
bool chat_out_failed(const chat_out *c);

#endif
