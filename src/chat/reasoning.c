/* reasoning.c: the <think> splitter (reasoning.h). */
#include <string.h>

#include "chat/reasoning.h"

enum { RS_START, RS_THINK, RS_AFTER, RS_CONTENT };

static const char OPEN[] = "<think>", CLOSE[] = "</think>";

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

rp_kind rp_detect(const char *src) {
    return src && strstr(src, OPEN) && strstr(src, CLOSE) ? RP_THINK : RP_NONE;
}

bool rp_kind_from_name(const char *name, rp_kind *out) {
    if (!name) return false;
    if (!strcmp(name, "qwen3") || !strcmp(name, "deepseek_r1")) *out = RP_THINK;
    else if (!strcmp(name, "none")) *out = RP_NONE;
    else return false;
    return true;
}

bool rp_prompt_opens_think(const char *prompt, size_t len) {
    while (len && is_ws(prompt[len - 1])) len--;
    return len >= sizeof OPEN - 1 && !memcmp(prompt + len - (sizeof OPEN - 1), OPEN, sizeof OPEN - 1);
}

void rp_init(rp_parser *p, bool in_think) {
    memset(p, 0, sizeof *p);
    p->state = in_think ? RS_THINK : RS_START;
}

static void consume(strbuf *sb, size_t k) {
    memmove(sb->data, sb->data + k, sb->len - k);
    sb->len -= k;
    sb->data[sb->len] = 0;
}

static void out(chat_emit_fn emit, void *user, chat_ev_kind kind, const char *s, size_t n) {
    if (n) emit(user, kind, s, n, NULL, 0);
}

void rp_feed(rp_parser *p, const char *text, size_t len, chat_emit_fn emit, void *user) {
    if (!len) return;
    if (p->state == RS_CONTENT && !p->pend.len) {
        out(emit, user, CHAT_EV_CONTENT, text, len);
        return;
    }
    sb_append(&p->pend, text, len);
    if (sb_failed(&p->pend)) return;
    for (;;) {
        const char *s = p->pend.data;
        size_t n = p->pend.len;
        if (!n) return;
        if (p->state == RS_START) {
            size_t i = 0, ol = sizeof OPEN - 1;
            while (i < n && is_ws(s[i])) i++;
            size_t rest = n - i;
            if (rest >= ol && !memcmp(s + i, OPEN, ol)) {
                consume(&p->pend, i + ol);
                p->state = RS_THINK;
                continue;
            }
            if (rest < ol && !memcmp(s + i, OPEN, rest)) return; /* blanks, or a part of <think> */
            p->state = RS_CONTENT;
            continue;
        }
        if (p->state == RS_THINK) {
            const char *m = memmem(s, n, CLOSE, sizeof CLOSE - 1);
            if (m) {
                size_t at = (size_t)(m - s);
                out(emit, user, CHAT_EV_REASONING, s, at);
                consume(&p->pend, at + sizeof CLOSE - 1);
                p->state = RS_AFTER;
                continue;
            }
            size_t keep = 0;
            for (size_t k = sizeof CLOSE - 2 < n ? sizeof CLOSE - 2 : n; k > 0 && !keep; k--)
                if (!memcmp(s + n - k, CLOSE, k)) keep = k;
            out(emit, user, CHAT_EV_REASONING, s, n - keep);
            consume(&p->pend, n - keep);
            return;
        }
        if (p->state == RS_AFTER) {
            size_t i = 0;
            while (i < n && is_ws(s[i])) i++;
            consume(&p->pend, i);
            if (i == n) return;
            p->state = RS_CONTENT;
            continue;
        }
        out(emit, user, CHAT_EV_CONTENT, s, n);
        sb_reset(&p->pend);
        return;
    }
}

void rp_finish(rp_parser *p, chat_emit_fn emit, void *user) {
    const char *s = p->pend.data;
    size_t n = p->pend.len;
    if (p->state == RS_THINK) out(emit, user, CHAT_EV_REASONING, s, n);
    else if (p->state == RS_START || p->state == RS_CONTENT) out(emit, user, CHAT_EV_CONTENT, s, n);
    sb_reset(&p->pend);
}

void rp_free(rp_parser *p) { sb_free(&p->pend); }
