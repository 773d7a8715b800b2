/* lexer.c: Jinja2's lexer with HF's settings (trim_blocks, lstrip_blocks, no trailing
 * newline), and the arena the syntax tree lives in.
 *
 * This follows jinja2/lexer.py rule by rule: the earliest `{{`, `{%` or `{#` ends the text
 * before it; a `-` after the opening strips all whitespace before the tag; lstrip_blocks
 * strips spaces and tabs from the line start up to a block or comment tag; `-%}` strips
 * all whitespace after, a plain `%}` (trim_blocks) one newline. Inside a tag, an end
 * delimiter only counts when brackets are balanced (so `{{ {'a': {}} }}` works). String
 * literals use Python's unicode-escape rules. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "template/ast.h"
#include "template/pystr.h"

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct tpl_arena {
    arena_chunk *chunks;
    obj **owned;
    size_t nowned, capowned;
};

tpl_arena *arena_create(void) { return calloc(1, sizeof(tpl_arena)); }

void *arena_alloc(tpl_arena *A, size_t n) {
    n = (n + 15) & ~(size_t)15;
    arena_chunk *c = A->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = A->chunks;
        A->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(tpl_arena *A, const char *s, size_t n) {
    char *p = arena_alloc(A, n + 1);
    if (p && n) memcpy(p, s, n);
    return p;
}

bool arena_own(tpl_arena *A, obj *o) {
    if (A->nowned == A->capowned) {
        size_t cap = A->capowned ? A->capowned * 2 : 64;
        obj **p = realloc(A->owned, cap * sizeof *p);
        if (!p) return false;
        A->owned = p;
        A->capowned = cap;
    }
    obj_make_immortal(o);
    A->owned[A->nowned++] = o;
    return true;
}

void arena_free(tpl_arena *A) {
    if (!A) return;
    for (size_t i = 0; i < A->nowned; i++) obj_free_immortal(A->owned[i]);
    free(A->owned);
    for (arena_chunk *c = A->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(A);
}

/* ---- lexer state ---------------------------------------------------------------------- */

typedef struct lexer {
    tpl_arena *A;
    const char *src;
    size_t len, pos;
    int line;
    bool line_starting;
    token *toks;
    size_t ntoks, cap;
    tpl_syntax_error *e;
    char stack[256]; /* open brackets in the current tag */
    int depth;
} lexer;

static bool lex_fail(lexer *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool lex_fail(lexer *L, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->e->msg, sizeof L->e->msg, fmt, ap);
    va_end(ap);
    L->e->line = L->line;
    L->e->assertion = false;
    return false;
}

static token *emit(lexer *L, tok_type t, int line) {
    if (L->ntoks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        token *p = realloc(L->toks, cap * sizeof *p);
        if (!p) return NULL;
        L->toks = p;
        L->cap = cap;
    }
    token *k = &L->toks[L->ntoks++];
    memset(k, 0, sizeof *k);
    k->type = (uint8_t)t;
    k->line = line;
    return k;
}

static int count_nl(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

/* Length of the run of Python whitespace (re's \s) at s[i..end). */
static size_t ws_run(const char *s, size_t i, size_t end) {
    size_t j = i;
    while (j < end) {
        size_t k = j;
        uint32_t cp = u8_next(s, end, &k);
        if (!py_isspace(cp)) break;
        j = k;
    }
    return j - i;
}

/* str.rstrip(): length of text without trailing whitespace. */
static size_t rstrip_len(const char *s, size_t n) {
    while (n > 0) {
        size_t p = u8_prev(s, n);
        size_t k = p;
        if (!py_isspace(u8_next(s, n, &k))) break;
        n = p;
    }
    return n;
}

/* Emits the text s[0..n) before a tag, applying the tag's whitespace control. */
static bool emit_text(lexer *L, const char *s, size_t n, char sign, bool is_variable) {
    int line = L->line;
    int total_nl = count_nl(s, n);
    size_t keep = n;
    if (sign == '-') {
        keep = rstrip_len(s, n);
    } else if (sign != '+' && !is_variable) {
        size_t l_pos = n;
        while (l_pos > 0 && s[l_pos - 1] != '\n') l_pos--;
        if ((l_pos > 0 || L->line_starting) && l_pos < n && ws_run(s, l_pos, n) == n - l_pos)
            keep = l_pos;
    }
    if (keep) {
        token *t = emit(L, TK_DATA, line);
        if (!t) return lex_fail(L, "out of memory");
        t->s = arena_strndup(L->A, s, keep);
        if (!t->s) return lex_fail(L, "out of memory");
        t->n = keep;
    }
    L->line += total_nl;
    return true;
}

/* ---- string literals ------------------------------------------------------------------ */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a Jinja2 string literal body as Python's unicode-escape codec does (after the
 * lexer turned non-ASCII characters into backslash escapes, hence the `\é` quirk). */
static bool decode_string(lexer *L, const char *s, size_t n, token *t) {
    strbuf sb = STRBUF_INIT;
    size_t i = 0;
    while (i < n) {
        if (s[i] != '\\') {
            size_t j = i;
            while (j < n && s[j] != '\\') j++;
            sb_append(&sb, s + i, j - i);
            i = j;
            continue;
        }
        if (i + 1 >= n) { /* a lone trailing backslash cannot happen: the regex needs \\. */
            sb_putc(&sb, '\\');
            i++;
            continue;
        }
        unsigned char e = (unsigned char)s[i + 1];
        i += 2;
        int digits = 0;
        switch (e) {
        case '\n': break;
        case '\\': sb_putc(&sb, '\\'); break;
        case '\'': sb_putc(&sb, '\''); break;
        case '"': sb_putc(&sb, '"'); break;
        case 'a': sb_putc(&sb, '\a'); break;
        case 'b': sb_putc(&sb, '\b'); break;
        case 'f': sb_putc(&sb, '\f'); break;
        case 'n': sb_putc(&sb, '\n'); break;
        case 'r': sb_putc(&sb, '\r'); break;
        case 't': sb_putc(&sb, '\t'); break;
        case 'v': sb_putc(&sb, '\v'); break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case 'N':
            sb_free(&sb);
            return lex_fail(L, "\\N{...} escapes are not supported");
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = e - '0';
                for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++) v = v * 8 + (uint32_t)(s[i++] - '0');
                u8_put(&sb, v);
            } else if (e >= 0x80) {
                /* backslashreplace turned the character into \xNN / \uNNNN / \UNNNNNNNN, and
                 * the escaped backslash leaves that text as it is */
                size_t k = i - 1;
                uint32_t cp = u8_next(s, n, &k);
                i = k;
                if (cp < 0x100) sb_printf(&sb, "\\x%02x", cp);
                else if (cp < 0x10000) sb_printf(&sb, "\\u%04x", cp);
                else sb_printf(&sb, "\\U%08x", cp);
            } else {
                sb_putc(&sb, '\\');
                sb_putc(&sb, (char)e);
            }
        }
        if (digits) {
            uint32_t v = 0;
            int k = 0;
            for (; k < digits && i < n && hexval(s[i]) >= 0; k++) v = v * 16 + (uint32_t)hexval(s[i++]);
            if (k < digits) {
                sb_free(&sb);
                return lex_fail(L, "truncated \\%sXX%s escape", e == 'x' ? "x" : e == 'u' ? "u" : "U",
                                e == 'x' ? "" : e == 'u' ? "XX" : "XXXXXX");
            }
            if (v > 0x10FFFF) {
                sb_free(&sb);
                return lex_fail(L, "illegal Unicode character");
            }
            if (v >= 0xD800 && v <= 0xDFFF) {
                sb_free(&sb);
                return lex_fail(L, "surrogate code points in string literals are not supported");
            }
            u8_put(&sb, v);
        }
    }
    if (sb_failed(&sb)) {
        sb_free(&sb);
        return lex_fail(L, "out of memory");
    }
    t->s = arena_strndup(L->A, sb_str(&sb), sb.len);
    t->n = sb.len;
    sb_free(&sb);
    return t->s != NULL || lex_fail(L, "out of memory");
}

/* ---- tags ----------------------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_start(unsigned char c) { return c == '_' || (unsigned)((c | 32) - 'a') < 26u || c >= 0x80; }
static bool is_name_char(unsigned char c) { return is_name_start(c) || is_digit((char)c); }

/* (\d+_)*\d+ at s[i]: returns the end or i when no digits. */
static size_t digits_us(const char *s, size_t i, size_t n) {
    size_t j = i;
    if (j >= n || !is_digit(s[j])) return i;
    for (;;) {
        while (j < n && is_digit(s[j])) j++;
        if (j + 1 < n && s[j] == '_' && is_digit(s[j + 1])) {
            j++;
            continue;
        }
        return j;
    }
}

/* float_re at pos; returns its end or pos. */
static size_t match_float(const char *s, size_t pos, size_t n) {
    if (pos > 0 && s[pos - 1] == '.') return pos;
    size_t j = digits_us(s, pos, n);
    if (j == pos) return pos;
    size_t frac = j;
    if (j < n && s[j] == '.') {
        size_t k = digits_us(s, j + 1, n);
        if (k > j + 1) frac = k;
    }
    if (frac < n && (s[frac] == 'e' || s[frac] == 'E')) {
        size_t k = frac + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        size_t m = digits_us(s, k, n);
        if (m > k) return m;
    }
    return frac > j ? frac : pos;
}

/* integer_re at pos; returns its end or pos. */
static size_t match_int(const char *s, size_t pos, size_t n) {
    if (pos >= n || !is_digit(s[pos])) return pos;
    if (s[pos] == '0' && pos + 1 < n) {
        char x = (char)(s[pos + 1] | 32);
        int base = x == 'b' ? 2 : x == 'o' ? 8 : x == 'x' ? 16 : 0;
        if (base) {
            size_t j = pos + 2, end = pos;
            for (;;) {
                size_t k = j;
                if (k < n && s[k] == '_') k++;
                int h = k < n ? hexval(s[k]) : -1;
                if (h < 0 || h >= base) break;
                j = k + 1;
                end = j;
            }
            if (end > pos) return end;
        }
    }
    if (s[pos] == '0') {
        size_t j = pos + 1;
        for (;;) {
            size_t k = j;
            if (k < n && s[k] == '_') k++;
            if (k < n && s[k] == '0') j = k + 1;
            else break;
        }
        return j;
    }
    size_t j = pos + 1;
    for (;;) {
        size_t k = j;
        if (k < n && s[k] == '_') k++;
        if (k < n && is_digit(s[k])) j = k + 1;
        else break;
    }
    return j;
}

static const struct {
    const char *s;
    uint8_t op;
} g_ops[] = {
    {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {">=", OP_GTEQ},
    {"<=", OP_LTEQ},     {"+", OP_ADD},  {"-", OP_SUB}, {"/", OP_DIV}, {"*", OP_MUL},
    {"%", OP_MOD},       {"~", OP_TILDE}, {"[", OP_LBRACKET}, {"]", OP_RBRACKET},
    {"(", OP_LPAREN},    {")", OP_RPAREN}, {"{", OP_LBRACE}, {"}", OP_RBRACE},
    {">", OP_GT},        {"<", OP_LT},   {"=", OP_ASSIGN}, {".", OP_DOT}, {":", OP_COLON},
    {"|", OP_PIPE},      {",", OP_COMMA}, {";", OP_SEMICOLON},
};

/* Lexes one tag body after `{{` / `{%` up to and including its end delimiter. */
static bool lex_tag(lexer *L, bool block) {
    const char *s = L->src;
    size_t n = L->len;
    L->depth = 0;
    for (;;) {
        size_t p = L->pos;
        if (p >= n) return true; /* the parser reports the unexpected end */
        if (L->depth == 0) {
            if (block) {
                size_t end = 0;
                if (p + 2 < n + 0 && s[p] == '+' && p + 2 < n && s[p + 1] == '%' && s[p + 2] == '}') end = p + 3;
                else if (s[p] == '-' && p + 2 < n && s[p + 1] == '%' && s[p + 2] == '}') {
                    end = p + 3;
                    end += ws_run(s, end, n);
                } else if (s[p] == '%' && p + 1 < n && s[p + 1] == '}') {
                    end = p + 2;
                    if (end < n && s[end] == '\n') end++;
                }
                if (end) {
                    if (!emit(L, TK_BLOCK_END, L->line)) return lex_fail(L, "out of memory");
                    L->line += count_nl(s + p, end - p);
                    L->line_starting = s[end - 1] == '\n';
                    L->pos = end;
                    return true;
                }
            } else {
                size_t end = 0;
                if (s[p] == '-' && p + 2 < n && s[p + 1] == '}' && s[p + 2] == '}') {
                    end = p + 3;
                    end += ws_run(s, end, n);
                } else if (s[p] == '}' && p + 1 < n && s[p + 1] == '}') end = p + 2;
                if (end) {
                    if (!emit(L, TK_VAR_END, L->line)) return lex_fail(L, "out of memory");
                    L->line += count_nl(s + p, end - p);
                    L->line_starting = s[end - 1] == '\n';
                    L->pos = end;
                    return true;
                }
            }
        }
        size_t w = ws_run(s, p, n);
        if (w) {
            L->line += count_nl(s + p, w);
            L->line_starting = s[p + w - 1] == '\n';
            L->pos = p + w;
            continue;
        }
        L->line_starting = false;
        size_t e = match_float(s, p, n);
        if (e > p) {
            char buf[128];
            size_t k = 0;
            for (size_t i = p; i < e && k < sizeof buf - 1; i++)
                if (s[i] != '_') buf[k++] = s[i];
            buf[k] = 0;
            token *t = emit(L, TK_FLOAT, L->line);
            if (!t) return lex_fail(L, "out of memory");
            t->f = strtod(buf, NULL);
            L->pos = e;
            continue;
        }
        e = match_int(s, p, n);
        if (e > p) {
            char buf[128];
            size_t k = 0;
            for (size_t i = p; i < e && k < sizeof buf - 1; i++)
                if (s[i] != '_') buf[k++] = s[i];
            buf[k] = 0;
            int base = 10;
            const char *digits = buf;
            if (k > 1 && buf[0] == '0' && (buf[1] | 32) != '0' && !is_digit(buf[1])) {
                char x = (char)(buf[1] | 32);
                base = x == 'b' ? 2 : x == 'o' ? 8 : 16;
                digits = buf + 2;
            }
            uint64_t v = 0;
            bool over = false;
            for (const char *q = digits; *q; q++) {
                uint64_t d = (uint64_t)hexval(*q);
                if (v > (UINT64_MAX - d) / (uint64_t)base) over = true;
                v = v * (uint64_t)base + d;
            }
            if (over || v > (uint64_t)INT64_MAX)
                return lex_fail(L, "integer literal %s is beyond 64 bits (not supported)", buf);
            token *t = emit(L, TK_INT, L->line);
            if (!t) return lex_fail(L, "out of memory");
            t->i = (int64_t)v;
            L->pos = e;
            continue;
        }
        if (is_name_start((unsigned char)s[p])) {
            size_t j = p;
            while (j < n && is_name_char((unsigned char)s[j])) j++;
            token *t = emit(L, TK_NAME, L->line);
            if (!t) return lex_fail(L, "out of memory");
            t->s = arena_strndup(L->A, s + p, j - p);
            t->n = j - p;
            if (!t->s) return lex_fail(L, "out of memory");
            L->pos = j;
            continue;
        }
        if (s[p] == '\'' || s[p] == '"') {
            char q = s[p];
            size_t j = p + 1;
            while (j < n && s[j] != q) j += (s[j] == '\\' && j + 1 < n) ? 2 : 1;
            if (j < n && s[j] == q) {
                token *t = emit(L, TK_STRING, L->line);
                if (!t) return lex_fail(L, "out of memory");
                if (!decode_string(L, s + p + 1, j - p - 1, t)) return false;
                L->line += count_nl(s + p, j + 1 - p);
                L->pos = j + 1;
                continue;
            }
        }
        uint8_t op = OP_NONE;
        size_t oplen = 0;
        for (size_t i = 0; i < sizeof g_ops / sizeof g_ops[0]; i++) {
            size_t l = strlen(g_ops[i].s);
            if (p + l <= n && !memcmp(s + p, g_ops[i].s, l)) {
                op = g_ops[i].op;
                oplen = l;
                break;
            }
        }
        if (op == OP_NONE) {
            size_t k = p;
            uint32_t cp = u8_next(s, n, &k);
            strbuf r = STRBUF_INIT;
            char ch[5] = {0};
            utf8_encode(cp, ch);
            py_repr_string(&r, ch, strlen(ch));
            lex_fail(L, "unexpected char %s at %zu", sb_str(&r), p);
            sb_free(&r);
            return false;
        }
        if (op == OP_LBRACE || op == OP_LPAREN || op == OP_LBRACKET) {
            if (L->depth >= (int)sizeof L->stack) return lex_fail(L, "brackets nested too deeply");
            L->stack[L->depth++] = op == OP_LBRACE ? '}' : op == OP_LPAREN ? ')' : ']';
        } else if (op == OP_RBRACE || op == OP_RPAREN || op == OP_RBRACKET) {
            char c = s[p];
            if (!L->depth) return lex_fail(L, "unexpected '%c'", c);
            char want = L->stack[--L->depth];
            if (want != c) return lex_fail(L, "unexpected '%c', expected '%c'", c, want);
        }
        token *t = emit(L, TK_OP, L->line);
        if (!t) return lex_fail(L, "out of memory");
        t->op = op;
        L->pos = p + oplen;
    }
}

/* Finds the next `{{`, `{%` or `{#` at or after pos; returns its index or len. */
static size_t find_tag(const char *s, size_t pos, size_t n) {
    while (pos + 1 < n) {
        const char *p = memchr(s + pos, '{', n - 1 - pos);
        if (!p) return n;
        size_t i = (size_t)(p - s);
        char c = s[i + 1];
        if (c == '{' || c == '%' || c == '#') return i;
        pos = i + 1;
    }
    return n;
}

/* `{%(-|+|)\s*raw\s*(-%}\s*|%})` at i: returns the end or 0. */
static size_t match_raw_begin(const char *s, size_t i, size_t n) {
    size_t j = i + 2;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    j += ws_run(s, j, n);
    if (j + 3 > n || memcmp(s + j, "raw", 3)) return 0;
    j += 3;
    j += ws_run(s, j, n);
    if (j + 3 <= n && s[j] == '-' && s[j + 1] == '%' && s[j + 2] == '}') return j + 3 + ws_run(s, j + 3, n);
    if (j + 2 <= n && s[j] == '%' && s[j + 1] == '}') return j + 2;
    return 0;
}

static bool lex_raw(lexer *L) {
    const char *s = L->src;
    size_t n = L->len, p = L->pos;
    for (size_t i = find_tag(s, p, n); i < n; i = find_tag(s, i + 1, n)) {
        if (s[i + 1] != '%') continue;
        size_t j = i + 2;
        char sign = 0;
        if (j < n && (s[j] == '-' || s[j] == '+')) sign = s[j++];
        j += ws_run(s, j, n);
        if (j + 6 > n || memcmp(s + j, "endraw", 6)) continue;
        j += 6;
        j += ws_run(s, j, n);
        size_t end = 0;
        if (j + 3 <= n && s[j] == '+' && s[j + 1] == '%' && s[j + 2] == '}') end = j + 3;
        else if (j + 3 <= n && s[j] == '-' && s[j + 1] == '%' && s[j + 2] == '}') end = j + 3 + ws_run(s, j + 3, n);
        else if (j + 2 <= n && s[j] == '%' && s[j + 1] == '}') {
            end = j + 2;
            if (end < n && s[end] == '\n') end++;
        }
        if (!end) continue;
        if (!emit_text(L, s + p, i - p, sign, false)) return false;
        L->line += count_nl(s + i, end - i);
        L->line_starting = s[end - 1] == '\n';
        L->pos = end;
        return true;
    }
    return lex_fail(L, "Missing end of raw directive");
}

bool tpl_lex(tpl_arena *A, const char *src, size_t len, token **toks, size_t *ntoks, tpl_syntax_error *e) {
    /* newlines: \r\n and \r become \n; one trailing newline is dropped */
    char *norm = malloc(len + 1);
    if (!norm) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return false;
    }
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[m++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else norm[m++] = src[i];
    }
    if (m > 0 && norm[m - 1] == '\n') m--;
    norm[m] = 0;

    lexer L = {.A = A, .src = norm, .len = m, .line = 1, .line_starting = true, .e = e};
    bool ok = true;
    while (ok && L.pos < L.len) {
        size_t i = find_tag(norm, L.pos, L.len);
        if (i >= L.len) {
            ok = emit_text(&L, norm + L.pos, L.len - L.pos, '+', true);
            L.pos = L.len;
            break;
        }
        char kind = norm[i + 1];
        char sign = (i + 2 < L.len && (norm[i + 2] == '-' || norm[i + 2] == '+')) ? norm[i + 2] : 0;
        size_t raw_end = kind == '%' ? match_raw_begin(norm, i, L.len) : 0;
        if (!emit_text(&L, norm + L.pos, i - L.pos, sign, kind == '{')) {
            ok = false;
            break;
        }
        if (raw_end) {
            L.line += count_nl(norm + i, raw_end - i);
            L.line_starting = norm[raw_end - 1] == '\n';
            L.pos = raw_end;
            ok = lex_raw(&L);
            continue;
        }
        L.pos = i + 2 + (sign ? 1 : 0);
        L.line_starting = false;
        if (kind == '#') {
            size_t start = L.pos, q = start;
            size_t end = 0;
            for (;;) {
                const char *h = q + 1 < L.len ? memchr(norm + q, '#', L.len - q) : NULL;
                if (!h) break;
                size_t k = (size_t)(h - norm);
                if (k + 1 < L.len && norm[k + 1] == '}') {
                    if (k > start && norm[k - 1] == '-') end = k + 2 + ws_run(norm, k + 2, L.len);
                    else if (k > start && norm[k - 1] == '+') end = k + 2;
                    else {
                        end = k + 2;
                        if (end < L.len && norm[end] == '\n') end++;
                    }
                    break;
                }
                q = k + 1;
            }
            if (!end) {
                ok = lex_fail(&L, "Missing end of comment tag");
                break;
            }
            L.line += count_nl(norm + start, end - start);
            L.line_starting = norm[end - 1] == '\n';
            L.pos = end;
            continue;
        }
        token *t = emit(&L, kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, L.line);
        if (!t) {
            ok = lex_fail(&L, "out of memory");
            break;
        }
        ok = lex_tag(&L, kind == '%');
    }
    if (!ok && strcmp(e->msg, "out of memory")) {
        /* Jinja2 lexes as the parser pulls tokens: report this only if parsing gets here */
        token *t = emit(&L, TK_ERROR, e->line);
        if (t && (t->s = arena_strndup(L.A, e->msg, strlen(e->msg)))) {
            t->n = strlen(e->msg);
            ok = true;
        }
    }
    if (ok && !emit(&L, TK_EOF, L.line)) ok = lex_fail(&L, "out of memory");
    /* token text was copied into the arena, so the normalized source can go */
    free(norm);
    if (!ok) {
        free(L.toks);
        return false;
    }
    *toks = L.toks;
    *ntoks = L.ntoks;
    return true;
}
