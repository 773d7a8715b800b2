/* gbnf.c: the GBNF parser (llama.cpp's grammar format) and its compilation to byte-level
 * rules, with the analysis the matcher needs (nullable rules, first bytes, left recursion).
 *
 * Syntax: `name ::= alternatives` per rule; a rule ends at a newline unless inside
 * parentheses or after `|`; `#` starts a comment. Elements: "literal", [class], [^class],
 * `.` (any character), rule names, ( groups ), each optionally followed by *, +, ?, {m},
 * {m,}, {m,n}. Escapes: \n \r \t \\ \" \[ \] \- \^ \/ \xHH \uHHHH \UHHHHHHHH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/hashmap.h"
#include "base/strbuf.h"
#include "grammar/grammar.h"

/* ---- builder -------------------------------------------------------------------------- */

typedef struct evec {
    gelem *v;
    int n, cap;
} evec;

typedef struct brule {
    char *name;
    bool defined;
    int n_gen; /* generated children, for their names */
    evec *alts;
    int n_alts, cap_alts;
} brule;

typedef struct parser {
    const char *start, *p, *end;
    int depth;
    brule *rules;
    int n_rules, cap_rules;
    strmap names;
    gbyteset *sets;
    int n_sets, cap_sets;
    long n_elems;
    forge_error *err;
    bool failed;
} parser;

static void line_col(const parser *P, const char *at, int *line, int *col) {
    *line = 1, *col = 1;
    for (const char *q = P->start; q < at && q < P->end; q++) {
        if (*q == '\n') (*line)++, *col = 1;
        else (*col)++;
    }
}

#define FAIL(P, ...)                                                                         \
    do {                                                                                     \
        if (!(P)->failed) {                                                                  \
            char m_[512];                                                                    \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                            \
            int l_, c_;                                                                      \
            line_col(P, (P)->p, &l_, &c_);                                                   \
            err_set((P)->err, FORGE_E_INVALID, "grammar line %d column %d: %s", l_, c_, m_); \
            (P)->failed = true;                                                              \
        }                                                                                    \
    } while (0)

static bool ev_push(parser *P, evec *e, gelem x) {
    if (P->failed) return false;
    if (++P->n_elems > GRAMMAR_MAX_ELEMS) {
        FAIL(P, "the grammar is too large (more than %d elements once repetitions are expanded)", GRAMMAR_MAX_ELEMS);
        return false;
    }
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 8;
        gelem *v = realloc(e->v, (size_t)cap * sizeof *v);
        if (!v) {
            err_set(P->err, FORGE_E_NOMEM, "out of memory");
            P->failed = true;
            return false;
        }
        e->v = v, e->cap = cap;
    }
    e->v[e->n++] = x;
    return true;
}

static void ev_append(parser *P, evec *dst, const evec *src) {
    for (int i = 0; i < src->n && !P->failed; i++) ev_push(P, dst, src->v[i]);
}

static int new_rule(parser *P, const char *name, size_t len) {
    if (P->failed) return -1;
    if (P->n_rules >= GRAMMAR_MAX_RULES) {
        FAIL(P, "too many rules (at most %d)", GRAMMAR_MAX_RULES);
        return -1;
    }
    if (P->n_rules == P->cap_rules) {
        int cap = P->cap_rules ? P->cap_rules * 2 : 64;
        brule *r = realloc(P->rules, (size_t)cap * sizeof *r);
        if (!r) goto nomem;
        P->rules = r, P->cap_rules = cap;
    }
    brule *r = &P->rules[P->n_rules];
    memset(r, 0, sizeof *r);
    r->name = malloc(len + 1);
    if (!r->name) goto nomem;
    memcpy(r->name, name, len);
    r->name[len] = 0;
    return P->n_rules++;
nomem:
    err_set(P->err, FORGE_E_NOMEM, "out of memory");
    P->failed = true;
    return -1;
}

/* The index of a named rule, created undefined on first mention. */
static int rule_named(parser *P, const char *name, size_t len) {
    int32_t i = strmap_get(&P->names, name, len);
    if (i >= 0) return i;
    int r = new_rule(P, name, len);
    if (r < 0) return -1;
    if (!strmap_put(&P->names, P->rules[r].name, len, r)) {
        err_set(P->err, FORGE_E_NOMEM, "out of memory");
        P->failed = true;
        return -1;
    }
    return r;
}

static int gen_rule(parser *P, int parent) {
    char name[96];
    int n = snprintf(name, sizeof name, "%.60s_%d", parent >= 0 ? P->rules[parent].name : "g",
                     parent >= 0 ? ++P->rules[parent].n_gen : 0);
    int r = new_rule(P, name, (size_t)n);
    if (r >= 0) P->rules[r].defined = true;
    return r;
}

/* Adds an alternative (taking ownership of e's memory). */
static void add_alt(parser *P, int r, evec *e) {
    if (P->failed || r < 0) {
        free(e->v);
        *e = (evec){0};
        return;
    }
    brule *R = &P->rules[r];
    if (R->n_alts == R->cap_alts) {
        int cap = R->cap_alts ? R->cap_alts * 2 : 4;
        evec *a = realloc(R->alts, (size_t)cap * sizeof *a);
        if (!a) {
            free(e->v);
            *e = (evec){0};
            err_set(P->err, FORGE_E_NOMEM, "out of memory");
            P->failed = true;
            return;
        }
        R->alts = a, R->cap_alts = cap;
    }
    R->alts[R->n_alts++] = *e;
    *e = (evec){0};
}

static int new_set(parser *P, const gbyteset *s) {
    if (P->failed) return 0;
    if (P->n_sets == P->cap_sets) {
        int cap = P->cap_sets * 2;
        gbyteset *v = realloc(P->sets, (size_t)cap * sizeof *v);
        if (!v) {
            err_set(P->err, FORGE_E_NOMEM, "out of memory");
            P->failed = true;
            return 0;
        }
        P->sets = v, P->cap_sets = cap;
    }
    P->sets[P->n_sets] = *s;
    return P->n_sets++;
}

static gelem E(int kind, int arg) { return (gelem){.kind = (uint32_t)kind, .arg = (uint32_t)arg}; }

/* ---- characters ----------------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one UTF-8 character at p (strict); returns its length or 0 when invalid. */
static int utf8_dec(const char *p, const char *end, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)p;
    size_t left = (size_t)(end - p);
    if (!left) return 0;
    if (s[0] < 0x80) return *cp = s[0], 1;
    int n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!n || (size_t)n > left) return 0;
    uint32_t c = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

static int utf8_enc(uint32_t c, unsigned char *o) {
    if (c < 0x80) return o[0] = (unsigned char)c, 1;
    if (c < 0x800) return o[0] = (unsigned char)(0xC0 | (c >> 6)), o[1] = (unsigned char)(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12)), o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (c >> 18)), o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* One character of a literal or class, escapes decoded. */
static bool parse_char(parser *P, uint32_t *cp) {
    if (P->p >= P->end) {
        FAIL(P, "unexpected end of grammar");
        return false;
    }
    if (*P->p == '\\') {
        P->p++;
        if (P->p >= P->end) {
            FAIL(P, "unexpected end after '\\'");
            return false;
        }
        char c = *P->p++;
        int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
        if (digits) {
            uint32_t v = 0;
            for (int i = 0; i < digits; i++) {
                int h = P->p < P->end ? hexval(*P->p) : -1;
                if (h < 0) {
                    FAIL(P, "\\%c needs %d hex digits", c, digits);
                    return false;
                }
                v = v * 16 + (uint32_t)h;
                P->p++;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
                FAIL(P, "\\%c escape 0x%X is not a Unicode scalar value", c, v);
                return false;
            }
            *cp = v;
            return true;
        }
        switch (c) {
        case 'n': *cp = '\n'; return true;
        case 'r': *cp = '\r'; return true;
        case 't': *cp = '\t'; return true;
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '\'': *cp = (uint32_t)c; return true;
        default: P->p--; FAIL(P, "unknown escape '\\%c'", c); return false;
        }
    }
    int n = utf8_dec(P->p, P->end, cp);
    if (!n) {
        FAIL(P, "invalid UTF-8");
        return false;
    }
    P->p += n;
    return true;
}

/* ---- character classes to byte rules -------------------------------------------------- */

typedef struct cprange {
    uint32_t lo, hi;
} cprange;

static int cmp_range(const void *a, const void *b) {
    const cprange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges ranges, optionally complements them, and removes the surrogates. */
static int normalize_ranges(cprange *r, int n, bool negate, cprange *out) {
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m && r[i].lo <= out[m - 1].hi + 1) {
            if (r[i].hi > out[m - 1].hi) out[m - 1].hi = r[i].hi;
        } else out[m++] = r[i];
    }
    cprange *tmp = malloc(sizeof *tmp * (size_t)(m + 2));
    if (!tmp) return -1;
    if (negate) {
        int k = 0;
        uint32_t next = 0;
        for (int i = 0; i < m; i++) {
            if (out[i].lo > next) tmp[k++] = (cprange){next, out[i].lo - 1};
            next = out[i].hi + 1;
        }
        if (next <= 0x10FFFF) tmp[k++] = (cprange){next, 0x10FFFF};
        memcpy(out, tmp, (size_t)k * sizeof *tmp);
        m = k;
    }
    /* cut the surrogates out (out has room for one more range) */
    int k = 0;
    cprange *res = tmp;
    for (int i = 0; i < m; i++) {
        cprange x = out[i];
        if (x.hi < 0xD800 || x.lo > 0xDFFF) res[k++] = x;
        else {
            if (x.lo < 0xD800) res[k++] = (cprange){x.lo, 0xD7FF};
            if (x.hi > 0xDFFF) res[k++] = (cprange){0xE000, x.hi};
        }
    }
    memcpy(out, res, (size_t)k * sizeof *res);
    free(tmp);
    return k;
}

static void set_range(gbyteset *s, unsigned lo, unsigned hi) {
    for (unsigned b = lo; b <= hi; b++) s->w[b >> 6] |= 1ull << (b & 63);
}

/* Emits the UTF-8 byte-range sequences of [lo, hi] (both of the same encoded length) as
 * alternatives of rule r (RE2's split: each byte position a contiguous range). */
static void utf8_seqs(parser *P, int r, uint32_t lo, uint32_t hi) {
    if (P->failed) return;
    static const uint32_t lim[] = {0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= lim[i] && hi > lim[i]) {
            utf8_seqs(P, r, lo, lim[i]);
            utf8_seqs(P, r, lim[i] + 1, hi);
            return;
        }
    unsigned char a[4], b[4];
    int n = utf8_enc(lo, a);
    utf8_enc(hi, b);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if (lo & m) {
                utf8_seqs(P, r, lo, lo | m);
                utf8_seqs(P, r, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                utf8_seqs(P, r, lo, (hi & ~m) - 1);
                utf8_seqs(P, r, hi & ~m, hi);
                return;
            }
        }
    }
    evec alt = {0};
    for (int i = 0; i < n; i++) {
        if (a[i] == b[i]) ev_push(P, &alt, E(G_SET, a[i]));
        else {
            gbyteset s = {{0}};
            set_range(&s, a[i], b[i]);
            ev_push(P, &alt, E(G_SET, new_set(P, &s)));
        }
    }
    add_alt(P, r, &alt);
}

/* Appends to piece the elements matching one character of the ranges. */
static void class_piece(parser *P, int parent, cprange *r, int n, bool negate, evec *piece) {
    cprange *norm = malloc(sizeof *norm * (size_t)(n + 2));
    int m = norm ? normalize_ranges(r, n, negate, norm) : -1;
    if (m < 0) {
        free(norm);
        err_set(P->err, FORGE_E_NOMEM, "out of memory");
        P->failed = true;
        return;
    }
    gbyteset ascii = {{0}};
    bool has_ascii = false, has_multi = false;
    for (int i = 0; i < m; i++) {
        if (norm[i].lo < 0x80) {
            set_range(&ascii, norm[i].lo, norm[i].hi < 0x80 ? norm[i].hi : 0x7F);
            has_ascii = true;
        }
        if (norm[i].hi >= 0x80) has_multi = true;
    }
    if (!has_multi && has_ascii) {
        free(norm);
        ev_push(P, piece, E(G_SET, new_set(P, &ascii)));
        return;
    }
    int cr = gen_rule(P, parent);
    if (cr < 0) {
        free(norm);
        return;
    }
    if (has_ascii) {
        evec alt = {0};
        ev_push(P, &alt, E(G_SET, new_set(P, &ascii)));
        add_alt(P, cr, &alt);
    }
    for (int i = 0; i < m; i++)
        if (norm[i].hi >= 0x80) utf8_seqs(P, cr, norm[i].lo < 0x80 ? 0x80 : norm[i].lo, norm[i].hi);
    free(norm);
    ev_push(P, piece, E(G_REF, cr));
}

/* ---- the parser ----------------------------------------------------------------------- */

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static void skip_space(parser *P, bool newline_ok) {
    while (P->p < P->end) {
        char c = *P->p;
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) P->p++;
        else if (c == '#') {
            while (P->p < P->end && *P->p != '\n' && *P->p != '\r') P->p++;
        } else break;
    }
}

static void parse_alternates(parser *P, int r, bool nested);

static bool parse_uint(parser *P, long *out) {
    const char *s = P->p;
    long v = 0;
    while (P->p < P->end && *P->p >= '0' && *P->p <= '9') {
        v = v * 10 + (*P->p - '0');
        if (v > GRAMMAR_MAX_REPEAT) {
            FAIL(P, "repetition count above %d", GRAMMAR_MAX_REPEAT);
            return false;
        }
        P->p++;
    }
    *out = v;
    return P->p > s;
}

/* piece repeated min..max times (max -1: unbounded), appended to seq */
static void repeat_piece(parser *P, int parent, evec *piece, long min, long max, evec *seq) {
    if (piece->n == 0) return; /* "" repeated is "" */
    if (piece->n > 1 && (min > 1 || max != 1)) {
        int w = gen_rule(P, parent);
        evec body = *piece;
        *piece = (evec){0};
        add_alt(P, w, &body);
        ev_push(P, piece, E(G_REF, w));
        if (P->failed) return;
    }
    for (long i = 0; i < min && !P->failed; i++) ev_append(P, seq, piece);
    if (max < 0) {
        int s = gen_rule(P, parent);
        evec a = {0}, b = {0};
        ev_append(P, &a, piece);
        ev_push(P, &a, E(G_REF, s));
        add_alt(P, s, &a);
        add_alt(P, s, &b);
        ev_push(P, seq, E(G_REF, s));
        return;
    }
    int prev = -1; /* O_k ::= piece O_{k-1} | "" */
    for (long k = min; k < max && !P->failed; k++) {
        int o = gen_rule(P, parent);
        evec a = {0}, b = {0};
        ev_append(P, &a, piece);
        if (prev >= 0) ev_push(P, &a, E(G_REF, prev));
        add_alt(P, o, &a);
        add_alt(P, o, &b);
        prev = o;
    }
    if (prev >= 0) ev_push(P, seq, E(G_REF, prev));
}

static void parse_sequence(parser *P, int r, bool nested, evec *seq) {
    while (P->p < P->end && !P->failed) {
        evec piece = {0};
        char c = *P->p;
        if (c == '"') {
            P->p++;
            while (P->p < P->end && *P->p != '"' && !P->failed) {
                uint32_t cp;
                if (!parse_char(P, &cp)) break;
                unsigned char b[4];
                int n = utf8_enc(cp, b);
                for (int i = 0; i < n; i++) ev_push(P, &piece, E(G_SET, b[i]));
            }
            if (P->p >= P->end) FAIL(P, "unterminated literal");
            else P->p++;
        } else if (c == '[') {
            P->p++;
            bool neg = false;
            if (P->p < P->end && *P->p == '^') neg = true, P->p++;
            int n = 0, cap = 16;
            cprange *rs = malloc((size_t)cap * sizeof *rs);
            if (!rs) {
                err_set(P->err, FORGE_E_NOMEM, "out of memory");
                P->failed = true;
                break;
            }
            while (P->p < P->end && *P->p != ']' && !P->failed) {
                uint32_t lo, hi;
                if (!parse_char(P, &lo)) break;
                hi = lo;
                if (P->p + 1 < P->end && *P->p == '-' && P->p[1] != ']') {
                    P->p++;
                    if (!parse_char(P, &hi)) break;
                    if (hi < lo) {
                        FAIL(P, "class range end before its start");
                        break;
                    }
                }
                if (n == cap) {
                    cap *= 2;
                    cprange *t = realloc(rs, (size_t)cap * sizeof *rs);
                    if (!t) {
                        err_set(P->err, FORGE_E_NOMEM, "out of memory");
                        P->failed = true;
                        break;
                    }
                    rs = t;
                }
                rs[n++] = (cprange){lo, hi};
            }
            if (!P->failed && P->p >= P->end) FAIL(P, "unterminated character class");
            if (!P->failed) {
                P->p++;
                class_piece(P, r, rs, n, neg, &piece);
            }
            free(rs);
        } else if (c == '.') {
            P->p++;
            cprange all = {0, 0x10FFFF};
            class_piece(P, r, &all, 1, false, &piece);
        } else if (is_name_char(c)) {
            const char *s = P->p;
            while (P->p < P->end && is_name_char(*P->p)) P->p++;
            int ref = rule_named(P, s, (size_t)(P->p - s));
            if (ref >= 0) ev_push(P, &piece, E(G_REF, ref));
        } else if (c == '(') {
            if (++P->depth > GRAMMAR_MAX_NEST) {
                FAIL(P, "groups nested deeper than %d", GRAMMAR_MAX_NEST);
                break;
            }
            P->p++;
            skip_space(P, true);
            int g = gen_rule(P, r);
            parse_alternates(P, g, true);
            if (!P->failed && (P->p >= P->end || *P->p != ')')) FAIL(P, "expected ')'");
            P->p++;
            P->depth--;
            if (g >= 0) ev_push(P, &piece, E(G_REF, g));
        } else break;
        if (P->failed) {
            free(piece.v);
            break;
        }
        skip_space(P, nested);
        long min = 1, max = 1;
        if (P->p < P->end && (*P->p == '*' || *P->p == '+' || *P->p == '?')) {
            min = *P->p == '+';
            max = *P->p == '?' ? 1 : -1;
            if (*P->p == '?') min = 0;
            P->p++;
        } else if (P->p < P->end && *P->p == '{') {
            P->p++;
            skip_space(P, nested);
            if (!parse_uint(P, &min)) {
                FAIL(P, "expected a number after '{'");
                free(piece.v);
                break;
            }
            max = min;
            skip_space(P, nested);
            if (P->p < P->end && *P->p == ',') {
                P->p++;
                skip_space(P, nested);
                max = -1;
                if (P->p < P->end && *P->p >= '0' && *P->p <= '9' && !parse_uint(P, &max)) {
                    free(piece.v); /* a maximum above the limit */
                    break;
                }
                skip_space(P, nested);
            }
            if (P->p >= P->end || *P->p != '}') {
                FAIL(P, "expected '}'");
                free(piece.v);
                break;
            }
            P->p++;
            if (max >= 0 && max < min) {
                FAIL(P, "repetition {%ld,%ld}: the maximum is below the minimum", min, max);
                free(piece.v);
                break;
            }
        }
        if (min == 1 && max == 1) ev_append(P, seq, &piece);
        else repeat_piece(P, r, &piece, min, max, seq);
        free(piece.v);
        skip_space(P, nested);
    }
}

static void parse_alternates(parser *P, int r, bool nested) {
    for (;;) {
        evec seq = {0};
        parse_sequence(P, r, nested, &seq);
        add_alt(P, r, &seq);
        if (P->failed || P->p >= P->end || *P->p != '|') return;
        P->p++;
        skip_space(P, true);
    }
}

static void parse_rule(parser *P) {
    const char *s = P->p;
    while (P->p < P->end && is_name_char(*P->p)) P->p++;
    if (P->p == s) {
        FAIL(P, "expected a rule name");
        return;
    }
    int r = rule_named(P, s, (size_t)(P->p - s));
    if (r < 0) return;
    if (P->rules[r].defined) {
        P->p = s;
        FAIL(P, "rule '%s' is defined twice", P->rules[r].name);
        return;
    }
    P->rules[r].defined = true;
    skip_space(P, false);
    if (P->end - P->p < 3 || memcmp(P->p, "::=", 3)) {
        FAIL(P, "expected '::=' after the rule name '%s'", P->rules[r].name);
        return;
    }
    P->p += 3;
    skip_space(P, true);
    parse_alternates(P, r, false);
    if (P->failed) return;
    if (P->p < P->end && *P->p == '\r') P->p++;
    if (P->p < P->end && *P->p == '\n') P->p++;
    else if (P->p < P->end) FAIL(P, "unexpected '%c' (expected a newline or the end)", *P->p);
    skip_space(P, true);
}

/* ---- compilation and analysis --------------------------------------------------------- */

void grammar_free(grammar *g) {
    if (!g) return;
    for (int i = 0; i < g->n_rules; i++) free(g->names ? g->names[i] : NULL);
    free(g->names);
    free(g->rule_alt0);
    free(g->alt_pos);
    free(g->elems);
    free(g->sets);
    free(g->rule_nullable);
    free(g->null_from);
    free(g->first_from);
    free(g);
}

static void set_or(gbyteset *a, const gbyteset *b) {
    for (int i = 0; i < 4; i++) a->w[i] |= b->w[i];
}

/* Nullable rules (worklist), left recursion (iterative DFS over "can start with" edges),
 * then first bytes in the DFS's post-order, which the absence of left recursion makes a
 * valid dependency order. */
static forge_status analyse(grammar *g, forge_error *err) {
    int R = g->n_rules, A = g->n_alts, N = g->n_elems;
    forge_status st = FORGE_OK;
    int32_t *alt_rule = malloc(sizeof(int32_t) * (size_t)(A + 1));
    int32_t *pending = malloc(sizeof(int32_t) * (size_t)(A + 1));
    int32_t *occ0 = calloc((size_t)R + 1, sizeof(int32_t)), *occ = malloc(sizeof(int32_t) * (size_t)(N + 1));
    int32_t *elem_alt = malloc(sizeof(int32_t) * (size_t)(N + 1));
    int32_t *work = malloc(sizeof(int32_t) * (size_t)(R + 1));
    uint8_t *color = calloc((size_t)R + 1, 1);
    int32_t *order = malloc(sizeof(int32_t) * (size_t)(R + 1));
    int32_t *fr_rule = malloc(sizeof(int32_t) * (size_t)(R + 1)), *fr_alt = malloc(sizeof(int32_t) * (size_t)(R + 1)),
            *fr_el = malloc(sizeof(int32_t) * (size_t)(R + 1));
    gbyteset *first = calloc((size_t)R + 1, sizeof *first);
    g->rule_nullable = calloc((size_t)R + 1, sizeof(bool));
    g->null_from = calloc((size_t)N + 1, sizeof(bool));
    g->first_from = calloc((size_t)N + 1, sizeof(gbyteset));
    if (!alt_rule || !pending || !occ0 || !occ || !elem_alt || !work || !color || !order || !fr_rule || !fr_alt ||
        !fr_el || !first || !g->rule_nullable || !g->null_from || !g->first_from) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    for (int r = 0; r < R; r++)
        for (int a = g->rule_alt0[r]; a < g->rule_alt0[r + 1]; a++) alt_rule[a] = r;
    /* nullable: pending[a] counts elements not yet known nullable */
    int nw = 0;
    for (int a = 0; a < A; a++) {
        int cnt = 0;
        for (int i = g->alt_pos[a]; g->elems[i].kind != G_END; i++) {
            cnt++;
            elem_alt[i] = a;
            if (g->elems[i].kind == G_REF) occ0[g->elems[i].arg + 1]++;
        }
        pending[a] = cnt;
        if (cnt == 0 && !g->rule_nullable[alt_rule[a]]) g->rule_nullable[alt_rule[a]] = true, work[nw++] = alt_rule[a];
    }
    for (int r = 0; r < R; r++) occ0[r + 1] += occ0[r];
    {
        int32_t *fill = calloc((size_t)R + 1, sizeof(int32_t));
        if (!fill) {
            st = err_set(err, FORGE_E_NOMEM, "out of memory");
            goto out;
        }
        for (int a = 0; a < A; a++)
            for (int i = g->alt_pos[a]; g->elems[i].kind != G_END; i++)
                if (g->elems[i].kind == G_REF) {
                    int s = (int)g->elems[i].arg;
                    occ[occ0[s] + fill[s]++] = i;
                }
        free(fill);
    }
    while (nw > 0) {
        int s = work[--nw];
        for (int k = occ0[s]; k < occ0[s + 1]; k++) {
            int a = elem_alt[occ[k]];
            if (--pending[a] == 0 && !g->rule_nullable[alt_rule[a]]) {
                g->rule_nullable[alt_rule[a]] = true;
                work[nw++] = alt_rule[a];
            }
        }
    }
    /* left recursion: DFS frames (rule, alternative, element) */
    int n_order = 0;
    for (int r0 = 0; r0 < R && !st; r0++) {
        if (color[r0]) continue;
        int sp = 0;
        fr_rule[0] = r0, fr_alt[0] = g->rule_alt0[r0], fr_el[0] = -1;
        color[r0] = 1;
        while (sp >= 0) {
            int r = fr_rule[sp];
            int next = -1;
            while (fr_alt[sp] < g->rule_alt0[r + 1]) {
                int a = fr_alt[sp];
                int i = fr_el[sp] < 0 ? g->alt_pos[a] : fr_el[sp] + 1;
                /* fr_el: the last element examined; it was a nullable ref if we are here again */
                if (fr_el[sp] >= 0 && !(g->elems[fr_el[sp]].kind == G_REF && g->rule_nullable[g->elems[fr_el[sp]].arg])) i = -1;
                if (i >= 0 && g->elems[i].kind == G_REF) {
                    fr_el[sp] = i;
                    next = (int)g->elems[i].arg;
                    break;
                }
                fr_alt[sp]++;
                fr_el[sp] = -1;
            }
            if (next < 0) {
                color[r] = 2;
                order[n_order++] = r;
                sp--;
                continue;
            }
            if (color[next] == 1) {
                st = err_set(err, FORGE_E_INVALID, "grammar: rule '%s' is left-recursive (through '%s')", g->names[next],
                             g->names[r]);
                break;
            }
            if (color[next] == 0) {
                color[next] = 1;
                sp++;
                fr_rule[sp] = next, fr_alt[sp] = g->rule_alt0[next], fr_el[sp] = -1;
            }
        }
    }
    if (st) goto out;
    for (int k = 0; k < n_order; k++) {
        int r = order[k];
        for (int a = g->rule_alt0[r]; a < g->rule_alt0[r + 1]; a++)
            for (int i = g->alt_pos[a]; g->elems[i].kind != G_END; i++) {
                if (g->elems[i].kind == G_SET) {
                    set_or(&first[r], &g->sets[g->elems[i].arg]);
                    break;
                }
                set_or(&first[r], &first[g->elems[i].arg]);
                if (!g->rule_nullable[g->elems[i].arg]) break;
            }
    }
    for (int a = 0; a < A; a++) {
        int e = g->alt_pos[a];
        while (g->elems[e].kind != G_END) e++;
        g->null_from[e] = true;
        for (int i = e - 1; i >= g->alt_pos[a]; i--) {
            gelem x = g->elems[i];
            if (x.kind == G_SET) g->first_from[i] = g->sets[x.arg];
            else {
                g->first_from[i] = first[x.arg];
                if (g->rule_nullable[x.arg]) {
                    set_or(&g->first_from[i], &g->first_from[i + 1]);
                    g->null_from[i] = g->null_from[i + 1];
                }
            }
        }
    }
out:
    free(alt_rule), free(pending), free(occ0), free(occ), free(elem_alt), free(work), free(color), free(order);
    free(fr_rule), free(fr_alt), free(fr_el), free(first);
    return st;
}

static grammar *build(parser *P, forge_error *err) {
    for (int r = 0; r < P->n_rules; r++)
        if (!P->rules[r].defined) {
            err_set(err, FORGE_E_INVALID, "grammar: rule '%s' is used but not defined", P->rules[r].name);
            return NULL;
        }
    int root = strmap_get(&P->names, "root", 4);
    if (root < 0) {
        err_set(err, FORGE_E_INVALID, "grammar: there is no rule named 'root'");
        return NULL;
    }
    grammar *g = calloc(1, sizeof *g);
    if (!g) goto nomem;
    g->root = root;
    int A = 0;
    long N = 0;
    for (int r = 0; r < P->n_rules; r++) {
        A += P->rules[r].n_alts;
        for (int a = 0; a < P->rules[r].n_alts; a++) N += P->rules[r].alts[a].n + 1;
    }
    g->n_alts = A;
    g->n_elems = (int)N;
    if (P->n_rules <= 0 || A < 0) goto nomem;
    g->names = calloc((size_t)P->n_rules, sizeof(char *));
    if (!g->names) goto nomem;
    g->n_rules = P->n_rules;
    g->rule_alt0 = malloc(sizeof(int32_t) * (size_t)(P->n_rules + 1));
    g->alt_pos = malloc(sizeof(int32_t) * (size_t)(A + 1));
    g->elems = malloc(sizeof(gelem) * (size_t)(N + 1));
    if (!g->names || !g->rule_alt0 || !g->alt_pos || !g->elems) goto nomem;
    int a = 0, e = 0;
    for (int r = 0; r < P->n_rules; r++) {
        g->names[r] = P->rules[r].name;
        P->rules[r].name = NULL;
        g->rule_alt0[r] = a;
        for (int k = 0; k < P->rules[r].n_alts; k++) {
            evec *v = &P->rules[r].alts[k];
            g->alt_pos[a++] = e;
            if (v->n) memcpy(g->elems + e, v->v, sizeof(gelem) * (size_t)v->n);
            e += v->n;
            g->elems[e++] = E(G_END, 0);
        }
    }
    g->rule_alt0[P->n_rules] = a;
    g->sets = P->sets;
    g->n_sets = P->n_sets;
    P->sets = NULL;
    if (analyse(g, err)) {
        grammar_free(g);
        return NULL;
    }
    return g;
nomem:
    grammar_free(g);
    err_set(err, FORGE_E_NOMEM, "out of memory");
    return NULL;
}

grammar *grammar_parse(const char *text, size_t len, forge_error *err) {
    if (!text && len) {
        err_set(err, FORGE_E_INVALID, "grammar: the text is NULL");
        return NULL;
    }
    if (len > GRAMMAR_MAX_TEXT) {
        err_set(err, FORGE_E_INVALID, "grammar: %zu bytes, more than the %d allowed", len, GRAMMAR_MAX_TEXT);
        return NULL;
    }
    parser P = {.start = text, .p = text, .end = text + len, .err = err};
    grammar *g = NULL;
    P.cap_sets = 512;
    P.sets = calloc((size_t)P.cap_sets, sizeof *P.sets);
    if (!P.sets || !strmap_init(&P.names, 64)) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    for (int b = 0; b < 256; b++) P.sets[b].w[b >> 6] = 1ull << (b & 63);
    P.n_sets = 256;
    skip_space(&P, true);
    while (P.p < P.end && !P.failed) parse_rule(&P);
    if (!P.failed) g = build(&P, err);
out:
    for (int r = 0; r < P.n_rules; r++) {
        free(P.rules[r].name);
        for (int a = 0; a < P.rules[r].n_alts; a++) free(P.rules[r].alts[a].v);
        free(P.rules[r].alts);
    }
    free(P.rules);
    free(P.sets);
    strmap_free(&P.names);
    return g;
}

/* ---- writing GBNF --------------------------------------------------------------------- */

static void put_escaped(strbuf *sb, uint32_t c, bool in_class) {
    if (c == '"' || c == '\\' || (in_class && (c == ']' || c == '-' || c == '^' || c == '['))) {
        sb_putc(sb, '\\');
        sb_putc(sb, (char)c);
    } else if (c == '\n') sb_puts(sb, "\\n");
    else if (c == '\r') sb_puts(sb, "\\r");
    else if (c == '\t') sb_puts(sb, "\\t");
    else if (c < 0x20 || c == 0x7F) sb_printf(sb, "\\x%02X", c);
    else {
        unsigned char b[4];
        int n = utf8_enc(c, b);
        sb_append(sb, b, (size_t)n);
    }
}

void gbnf_put_literal(strbuf *sb, const char *s, size_t n) {
    sb_putc(sb, '"');
    const char *p = s, *end = s + n;
    while (p < end) {
        uint32_t c;
        int k = utf8_dec(p, end, &c);
        if (!k) { /* not UTF-8: the byte as a code point escape would change it; keep it valid */
            sb_printf(sb, "\\x%02X", (unsigned char)*p);
            p++;
            continue;
        }
        put_escaped(sb, c, false);
        p += k;
    }
    sb_putc(sb, '"');
}

void gbnf_put_class_char(strbuf *sb, uint32_t cp) { put_escaped(sb, cp, true); }
