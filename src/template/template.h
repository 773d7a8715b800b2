/* template.h: the template layer's internal API: compile a Jinja2 source once, render it
 * many times (concurrently: a compiled template is read-only), and the chat-specific layer
 * (chat.c) that turns an OpenAI chat request into template variables as vLLM does. */
#ifndef FORGE_TEMPLATE_TEMPLATE_H
#define FORGE_TEMPLATE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "template/ast.h"
#include "template/eval.h"
#include "template/value.h"

typedef struct tpl_template {
    tpl_arena *A;
    tnode *root;
    bool content_as_list; /* loops over message content: gets content parts, not text */
} tpl_template;

typedef struct tpl_error {
    tpl_errkind kind;
    int line;
    char msg[1024];
} tpl_error;

/* Parses a template; NULL with *e filled (line, Jinja2's message) on a syntax error. */
tpl_template *tpl_compile(const char *src, size_t len, tpl_syntax_error *e);
void tpl_template_free(tpl_template *t);
/* Renders with the variables in vars (string keys; borrowed) and appends the text to out.
 * now: seconds since the epoch for strftime_now (< 0: the current time). */
bool tpl_render(const tpl_template *t, const vdict *vars, const tpl_limits *lim, int64_t now, strbuf *out,
                tpl_error *err);

/* ---- the chat layer (chat.c, chat_request.c) --------------------------------------------- */

enum { MAX_NAMED = 16 };

struct forge_chat_template {
    int n;                  /* templates: one unnamed, or several named ones */
    char *names[MAX_NAMED]; /* NULL for the unnamed one */
    tpl_template *tpls[MAX_NAMED];
    vdict *tokens;          /* special tokens (immortal) */
    tpl_arena *A;           /* owns the token values */
    tpl_limits lim;
    char *origin;           /* file the template came from */
    strbuf source;          /* the sources of all templates, one after another (what the
                               tool-call and reasoning formats are guessed from) */
};

/* The templates' source text ("" when none). */
const char *chat_template_source(const forge_chat_template *t);

/* Renders a parsed chat request (the server's entry point; forge_chat_template_render is
 * this on JSON text). Appends the prompt to out. */
forge_status chat_render_request(const forge_chat_template *t, const json_value *req, strbuf *out, forge_error *err);
/* The same, also reporting the template's own error (Python exception class, line, message). */
forge_status chat_render_request_detail(const forge_chat_template *t, const json_value *req, strbuf *out,
                                        tpl_error *te, forge_error *err);

/* A JSON value as a template value (dicts keep document order; duplicate keys keep the
 * first position and the last value, as Python's json.loads). */
bool tpl_from_json(const json_value *j, val *out, forge_error *err);

#endif
