/* toolcall.h: the chat answer's text -> message fields. Pure functions on text, no I/O.
 *
 * A model answers a chat with text; with tools offered it may write function calls in its
 * family's markup, and some templates make it think aloud first. These parsers split the
 * generated text into
 *   - reasoning (`<think>...</think>`, Qwen3 / SmolLM3 / DeepSeek-R1 style; reasoning.c),
 *   - content (the text outside calls) and
 *   - calls (a function name and its arguments as compact JSON text; toolcall.c),
 * incrementally: text goes in as it is generated, in pieces split anywhere, and comes out as
 * events as soon as it is certain what it is. Text that could still turn into markup (a
 * partial "<tool_" at the end of a piece) is held back; a call is held whole until its end
 * and then parsed, so a malformed call is given back as content, byte for byte. Feeding the
 * text in any split gives the same events, joined, as feeding it whole (tested at every
 * split point and fuzzed), so a streamed answer equals the non-streamed one.
 *
 * Formats (what the families' documentation shows the models writing):
 *   hermes       `<tool_call>{"name": N, "arguments": {...}}</tool_call>`, several per answer
 *                (Qwen2.5, Qwen3, SmolLM3, Hermes); "parameters" is accepted for "arguments".
 *   llama3_json  the whole answer is `{"name": N, "parameters": {...}}` (Llama 3.1/3.2 with
 *                custom tools), optionally after `<|python_tag|>`, several separated by `;`.
 *                Only an answer that starts (after blanks) with `{` or `<|python_tag|>` is
 *                held and tried; any other answer is content as it comes.
 *   mistral      `[TOOL_CALLS][{"name": N, "arguments": {...}}, ...]` (v0.3, Nemo) or
 *                `[TOOL_CALLS]N[ARGS]{...}` repeated (newer tokenizers); the text before the
 *                marker is content, everything after it is held to the end.
 * Whitespace that only separates content from a call (before or after it) is dropped;
 * everything else of the content is kept as generated. */
#ifndef FORGE_CHAT_TOOLCALL_H
#define FORGE_CHAT_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "base/json.h"
#include "base/strbuf.h"

typedef enum { TC_FAMILY_NONE, TC_FAMILY_HERMES, TC_FAMILY_LLAMA3_JSON, TC_FAMILY_MISTRAL } tc_family;

/* The family a chat template's source writes its tool calls in (as llama.cpp's common chat
 * guesses it): `[TOOL_CALLS]` -> mistral, `<tool_call>` -> hermes, a Llama 3 header with
 * `<|python_tag|>` or "parameters" -> llama3_json; else none. NULL: none. */
tc_family tc_detect(const char *template_source);
/* "hermes", "llama3_json", "mistral", "none"; NULL for an out-of-range value. */
const char *tc_family_name(tc_family f);
/* The family of a --tool-call-parser name (the names above; "auto" is not one); false when
 * unknown. */
bool tc_family_from_name(const char *name, tc_family *out);

/* What the parsers emit. CONTENT and REASONING: a is the text (an bytes, never 0).
 * CALL: a is the function name, b its arguments as compact JSON text (an object). */
typedef enum { CHAT_EV_CONTENT, CHAT_EV_REASONING, CHAT_EV_CALL } chat_ev_kind;
typedef void (*chat_emit_fn)(void *user, chat_ev_kind kind, const char *a, size_t an, const char *b, size_t bn);

/* One answer's tool-call parser. Owns its buffers: tc_free releases them. */
typedef struct tc_parser {
    tc_family fam;
    bool parallel;   /* false: calls after the first are dropped (parallel_tool_calls false) */
    int state;
    int n_calls;     /* calls emitted */
    bool after_call; /* blanks that follow a call are dropped */
    bool oom;        /* an allocation failed parsing a call (it may have gone out as content) */
    strbuf pend;     /* held text: a possible marker start, or a call not ended yet */
    strbuf ws;       /* blanks at the end of the content, held until it is known what follows */
    strbuf args;     /* scratch: a call's arguments as JSON text */
} tc_parser;

void tc_init(tc_parser *p, tc_family fam, bool parallel);
/* Parses the next piece of the answer; emits what is certain. */
void tc_feed(tc_parser *p, const char *text, size_t len, chat_emit_fn emit, void *user);
/* The answer has ended: emits everything still held. The parser can then be freed or
 * re-initialized. */
void tc_finish(tc_parser *p, chat_emit_fn emit, void *user);
void tc_free(tc_parser *p);
/* True when any allocation failed (events may be missing). */
bool tc_failed(const tc_parser *p);

/* ---- forcing a call (tool_choice "required" or a named function) ----------------------- */

/* What a model of family fam must write to call a tool: the literal prefix, then one JSON
 * value valid against schema (the call object: the name as a const, the tool's `parameters`
 * schema as its arguments; with several tools an anyOf of them), then the literal suffix.
 * tools is the request's "tools" array; name NULL: any of the tools ("required"), else only
 * that one. hermes: "<tool_call>\n" {"name","arguments"} "\n</tool_call>"; llama3_json: ""
 * {"name","parameters"} ""; mistral: "[TOOL_CALLS][" {"name","arguments"} "]".
 * Appends to the three buffers. Errors (FORGE_E_INVALID): no tools, a tool without a
 * function name, a name not among the tools, family none (no format to force). */
forge_status tc_forcing_spec(tc_family fam, const json_value *tools, const char *name, strbuf *prefix, strbuf *schema,
                             strbuf *suffix, forge_error *err);

#endif
