/* reasoning.h: splitting `<think>...</think>` off a chat answer (Qwen3, SmolLM3, DeepSeek-R1
 * style) as message.reasoning_content, vLLM's field. Incremental like toolcall.h: text in
 * pieces split anywhere, the same events as the whole text.
 *
 * The answer is in reasoning from its start when the prompt ends with `<think>` (templates
 * that open the block for the model: DeepSeek-R1, Qwen3 thinking-2507), or when the answer
 * starts (after blanks) with `<think>`; the reasoning ends at `</think>`, and the blanks right
 * after it are dropped. An answer that never closes its block is all reasoning (it ran out
 * of tokens). An answer that does not start in reasoning is all content: a later
 * `<think>` or `</think>` is text (Qwen3 with enable_thinking false gets an empty block in
 * its prompt and answers directly). Tool calls inside the reasoning are not calls: the
 * content alone goes on to the tool-call parser (chatout.h). */
#ifndef FORGE_CHAT_REASONING_H
#define FORGE_CHAT_REASONING_H

#include <stdbool.h>
#include <stddef.h>

#include "base/strbuf.h"
#include "chat/toolcall.h"

typedef enum { RP_NONE, RP_THINK } rp_kind;

/* The reasoning format a chat template's source implies: `<think>` and `</think>` in it ->
 * think; else none. NULL: none. */
rp_kind rp_detect(const char *template_source);
/* "qwen3" (alias "deepseek_r1") -> think, "none" -> none; false when unknown. */
bool rp_kind_from_name(const char *name, rp_kind *out);
/* True when a rendered prompt ends (after blanks) with `<think>`: the answer starts in
 * reasoning. */
bool rp_prompt_opens_think(const char *prompt, size_t len);

typedef struct rp_parser {
    int state;
    strbuf pend;
} rp_parser;

/* in_think: the prompt opened the block (rp_prompt_opens_think). */
void rp_init(rp_parser *p, bool in_think);
/* Emits CHAT_EV_REASONING and CHAT_EV_CONTENT events. */
void rp_feed(rp_parser *p, const char *text, size_t len, chat_emit_fn emit, void *user);
void rp_finish(rp_parser *p, chat_emit_fn emit, void *user);
void rp_free(rp_parser *p);

#endif
