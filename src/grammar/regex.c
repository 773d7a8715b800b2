/* regex.c: regular expressions (the common subset of Python's and JavaScript's) and choice
 * lists to GBNF. See convert.h for the accepted syntax. Classes are turned into code point
 * ranges here, so that the JSON-string form can take out what JSON must escape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "grammar/convert.h"
#include "grammar/grammar.h"

enum { RE_MAX_LEN = 1 << 16, RE_MAX_NEST = 64, RE_MAX_RANGES = 512 };

typedef struct rrange {
    uint32_t lo, hi;
} rrange;

typedef struct rparser {
    const char *s, *p, *end;
    bool json;
    int depth;
    forge_error *err;
    forge_status st;
} rparser;

#define RFAIL(R, code, ...)                                                                    \
    do {                                                                                       \
        if (!(R)->st) (R)->st = err_set((R)->err, code, __VA_ARGS__);                          \
    } while (0)

static int rhex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

typedef struct rset {
    rrange r[RE_MAX_RANGES];
    int n;
} rset;

static void rs_add(rparser *R, rset *s, uint32_t lo, uint32_t hi) {
    if (s->n >= RE_MAX_RANGES) {
        RFAIL(R, FORGE_E_INVALID, "regex: character class too large");
        return;
    }
    s->r[s->n++] = (rrange){lo, hi};
}

static int cmp_rr(const void *a, const void *b) {
    const rrange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void rs_norm(rset *s) {
    qsort(s->r, (size_t)s->n, sizeof *s->r, cmp_rr);
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        if (m && s->r[i].lo <= s->r[m - 1].hi + 1) {
            if (s->r[i].hi > s->r[m - 1].hi) s->r[m - 1].hi = s->r[i].hi;
        } else s->r[m++] = s->r[i];
    }
    s->n = m;
}

static void rs_negate(rset *s) {
    rs_norm(s);
    rrange out[RE_MAX_RANGES + 1];
    int k = 0;
    uint32_t next = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->r[i].lo > next) out[k++] = (rrange){next, s->r[i].lo - 1};
        next = s->r[i].hi + 1;
    }
    if (next <= 0x10FFFF) out[k++] = (rrange){next, 0x10FFFF};
    if (k > RE_MAX_RANGES) k = RE_MAX_RANGES;
    memcpy(s->r, out, sizeof(rrange) * (size_t)k);
    s->n = k;
}

/* removes [lo, hi] from a normalized set */
static void rs_remove(rset *s, uint32_t lo, uint32_t hi) {
    rrange out[RE_MAX_RANGES + 2];
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        rrange x = s->r[i];
        if (x.hi < lo || x.lo > hi) out[k++] = x;
        else {
            if (x.lo < lo) out[k++] = (rrange){x.lo, lo - 1};
            if (x.hi > hi) out[k++] = (rrange){hi + 1, x.hi};
        }
    }
    if (k > RE_MAX_RANGES) k = RE_MAX_RANGES;
    memcpy(s->r, out, sizeof(rrange) * (size_t)k);
    s->n = k;
}

static bool rs_has(const rset *s, uint32_t c) {
    for (int i = 0; i < s->n; i++)
        if (c >= s->r[i].lo && c <= s->r[i].hi) return true;
    return false;
}

static void add_shorthand(rparser *R, rset *s, char c) {
    rset t = {.n = 0};
    char lc = (char)(c | 0x20);
    if (lc == 'd') rs_add(R, &t, '0', '9');
    else if (lc == 'w') rs_add(R, &t, '0', '9'), rs_add(R, &t, 'A', 'Z'), rs_add(R, &t, 'a', 'z'), rs_add(R, &t, '_', '_');
    else rs_add(R, &t, '\t', '\r'), rs_add(R, &t, ' ', ' ');
    if (c != lc) rs_negate(&t); /* \D \W \S */
    for (int i = 0; i < t.n; i++) rs_add(R, s, t.r[i].lo, t.r[i].hi);
}

/* UTF-8 decode (strict enough for a pattern; invalid bytes are refused) */
static int rdec(rparser *R, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)R->p;
    size_t left = (size_t)(R->end - R->p);
    if (u[0] < 0x80) return *cp = u[0], 1;
    int n = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 0;
    if (!n || (size_t)n > left) goto bad;
    uint32_t c = u[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) goto bad;
        c = (c << 6) | (u[i] & 0x3F);
    }
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) goto bad;
    *cp = c;
    return n;
bad:
    RFAIL(R, FORGE_E_INVALID, "regex: invalid UTF-8 at byte %td", R->p - R->s);
    return 0;
}

/* An escape after '\' (R->p at the letter): a single character (*cp, returns 1), or a class
 * added to s (returns 2); 0 on error. */
static int parse_escape(rparser *R, uint32_t *cp, rset *s, bool in_class) {
    if (R->p >= R->end) {
        RFAIL(R, FORGE_E_INVALID, "regex: pattern ends with '\\'");
        return 0;
    }
    char c = *R->p++;
    switch (c) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S': add_shorthand(R, s, c); return 2;
    case 'n': *cp = '\n'; return 1;
    case 't': *cp = '\t'; return 1;
    case 'r': *cp = '\r'; return 1;
    case 'f': *cp = '\f'; return 1;
    case 'v': *cp = '\v'; return 1;
    case '0': *cp = 0; return 1;
    case 'x': case 'u': {
        int nd = c == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int i = 0; i < nd; i++) {
            int h = R->p < R->end ? rhex(*R->p) : -1;
            if (h < 0) {
                RFAIL(R, FORGE_E_INVALID, "regex: \\%c needs %d hex digits", c, nd);
                return 0;
            }
            v = v * 16 + (uint32_t)h;
            R->p++;
        }
        if (v >= 0xD800 && v <= 0xDFFF) {
            RFAIL(R, FORGE_E_UNSUPPORTED, "regex: surrogate escape \\u%04X", v);
            return 0;
        }
        *cp = v;
        return 1;
    }
    case 'b':
        if (in_class) {
            *cp = '\b';
            return 1;
        }
        RFAIL(R, FORGE_E_UNSUPPORTED, "regex: word boundary \\b is not supported");
        return 0;
    case 'B': RFAIL(R, FORGE_E_UNSUPPORTED, "regex: \\B is not supported"); return 0;
    case 'A': case 'Z': case 'z': case 'G':
        RFAIL(R, FORGE_E_UNSUPPORTED, "regex: anchor \\%c is not supported (use ^ and $ at the ends)", c);
        return 0;
    case 'p': case 'P': RFAIL(R, FORGE_E_UNSUPPORTED, "regex: Unicode property \\%c is not supported", c); return 0;
    case 'k': RFAIL(R, FORGE_E_UNSUPPORTED, "regex: backreference \\k is not supported"); return 0;
    default:
        if (c >= '1' && c <= '9') {
            RFAIL(R, FORGE_E_UNSUPPORTED, "regex: backreference \\%c is not supported", c);
            return 0;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            RFAIL(R, FORGE_E_UNSUPPORTED, "regex: escape \\%c is not supported", c);
            return 0;
        }
        R->p--;
        {
            int n = rdec(R, cp);
            if (!n) return 0;
            R->p += n;
        }
        return 1;
    }
}

/* ---- output --------------------------------------------------------------------------- */

static void put_json_escaped_char(strbuf *sb, uint32_t c) {
    /* the JSON text of a character JSON must escape, as a GBNF literal */
    char tmp[16];
    if (c == '"') snprintf(tmp, sizeof tmp, "\\\"");
    else if (c == '\\') snprintf(tmp, sizeof tmp, "\\\\");
    else if (c == '\n') snprintf(tmp, sizeof tmp, "\\n");
    else if (c == '\t') snprintf(tmp, sizeof tmp, "\\t");
    else if (c == '\r') snprintf(tmp, sizeof tmp, "\\r");
    else snprintf(tmp, sizeof tmp, "\\u%04x", c);
    gbnf_put_literal(sb, tmp, strlen(tmp));
}

static void put_char(rparser *R, strbuf *sb, uint32_t c) {
    if (R->json && (c == '"' || c == '\\' || c < 0x20)) {
        put_json_escaped_char(sb, c);
        return;
    }
    char b[4];
    int n;
    if (c < 0x80) b[0] = (char)c, n = 1;
    else if (c < 0x800) b[0] = (char)(0xC0 | (c >> 6)), b[1] = (char)(0x80 | (c & 0x3F)), n = 2;
    else if (c < 0x10000)
        b[0] = (char)(0xE0 | (c >> 12)), b[1] = (char)(0x80 | ((c >> 6) & 0x3F)), b[2] = (char)(0x80 | (c & 0x3F)), n = 3;
    else
        b[0] = (char)(0xF0 | (c >> 18)), b[1] = (char)(0x80 | ((c >> 12) & 0x3F)), b[2] = (char)(0x80 | ((c >> 6) & 0x3F)),
        b[3] = (char)(0x80 | (c & 0x3F)), n = 4;
    gbnf_put_literal(sb, b, (size_t)n);
}

static void put_set(rparser *R, strbuf *sb, rset *s) {
    rs_norm(s);
    rs_remove(s, 0xD800, 0xDFFF);
    rset esc = {.n = 0};
    if (R->json) {
        for (uint32_t c = 0; c < 0x20; c++)
            if (rs_has(s, c)) esc.r[esc.n++] = (rrange){c, c};
        if (rs_has(s, '"')) esc.r[esc.n++] = (rrange){'"', '"'};
        if (rs_has(s, '\\')) esc.r[esc.n++] = (rrange){'\\', '\\'};
        rs_remove(s, 0, 0x1F);
        rs_remove(s, '"', '"');
        rs_remove(s, '\\', '\\');
    }
    sb_puts(sb, "(");
    bool any = false;
    if (s->n > 0) {
        sb_putc(sb, '[');
        for (int i = 0; i < s->n; i++) {
            gbnf_put_class_char(sb, s->r[i].lo);
            if (s->r[i].hi > s->r[i].lo) {
                sb_putc(sb, '-');
                gbnf_put_class_char(sb, s->r[i].hi);
            }
        }
        sb_putc(sb, ']');
        any = true;
    }
    for (int i = 0; i < esc.n; i++) {
        if (any) sb_puts(sb, " | ");
        put_json_escaped_char(sb, esc.r[i].lo);
        any = true;
    }
    if (!any) sb_puts(sb, "[^\\x00-\\U0010FFFF]"); /* matches nothing */
    sb_puts(sb, ")");
}

/* ---- the parser: alternation, concatenation, repetition, atoms ------------------------ */

static void parse_alt(rparser *R, strbuf *sb);

static bool at(rparser *R, char c) { return R->p < R->end && *R->p == c; }

static void parse_atom(rparser *R, strbuf *sb) {
    char c = *R->p;
    if (c == '(') {
        R->p++;
        if (++R->depth > RE_MAX_NEST) {
            RFAIL(R, FORGE_E_INVALID, "regex: groups nested deeper than %d", RE_MAX_NEST);
            return;
        }
        if (at(R, '?')) {
            R->p++;
            if (at(R, ':')) R->p++;
            else if (at(R, 'P') && R->p + 1 < R->end && R->p[1] == '<') {
                while (R->p < R->end && *R->p != '>') R->p++;
                R->p++;
            } else if (at(R, '<') && R->p + 1 < R->end && R->p[1] != '=' && R->p[1] != '!') {
                while (R->p < R->end && *R->p != '>') R->p++;
                R->p++;
            } else if (at(R, '=') || at(R, '!')) {
                RFAIL(R, FORGE_E_UNSUPPORTED, "regex: lookahead (?%c is not supported", *R->p);
                return;
            } else if (at(R, '<')) {
                RFAIL(R, FORGE_E_UNSUPPORTED, "regex: lookbehind (?<%c is not supported", R->p + 1 < R->end ? R->p[1] : '?');
                return;
            } else if (at(R, 'P') && R->p + 1 < R->end && R->p[1] == '=') {
                RFAIL(R, FORGE_E_UNSUPPORTED, "regex: backreference (?P= is not supported");
                return;
            } else {
                RFAIL(R, FORGE_E_UNSUPPORTED, "regex: group flags (?%c are not supported", R->p < R->end ? *R->p : '?');
                return;
            }
        }
        sb_puts(sb, "(");
        parse_alt(R, sb);
        sb_puts(sb, ")");
        if (!R->st && !at(R, ')')) RFAIL(R, FORGE_E_INVALID, "regex: missing ')'");
        R->p++;
        R->depth--;
        return;
    }
    if (c == '[') {
        R->p++;
        rset *s = malloc(sizeof *s);
        if (!s) {
            RFAIL(R, FORGE_E_NOMEM, "out of memory");
            return;
        }
        s->n = 0;
        bool neg = at(R, '^');
        if (neg) R->p++;
        bool first = true;
        while (!R->st && R->p < R->end && (*R->p != ']' || first)) {
            first = false;
            uint32_t lo;
            int k;
            if (*R->p == '\\') {
                R->p++;
                k = parse_escape(R, &lo, s, true);
                if (k != 1) continue;
            } else if (*R->p == '[' && R->p + 1 < R->end && R->p[1] == ':') {
                RFAIL(R, FORGE_E_UNSUPPORTED, "regex: POSIX classes [:name:] are not supported");
                break;
            } else {
                k = rdec(R, &lo);
                if (!k) break;
                R->p += k;
            }
            uint32_t hi = lo;
            if (R->p + 1 < R->end && *R->p == '-' && R->p[1] != ']') {
                R->p++;
                if (*R->p == '\\') {
                    R->p++;
                    rset dummy = {.n = 0};
                    if (parse_escape(R, &hi, &dummy, true) != 1) {
                        RFAIL(R, FORGE_E_INVALID, "regex: bad class range");
                        break;
                    }
                } else {
                    k = rdec(R, &hi);
                    if (!k) break;
                    R->p += k;
                }
                if (hi < lo) {
                    RFAIL(R, FORGE_E_INVALID, "regex: class range out of order");
                    break;
                }
            }
            rs_add(R, s, lo, hi);
        }
        if (!R->st && !at(R, ']')) RFAIL(R, FORGE_E_INVALID, "regex: missing ']'");
        R->p++;
        if (!R->st) {
            if (neg) rs_negate(s);
            put_set(R, sb, s);
        }
        free(s);
        return;
    }
    if (c == '.') {
        R->p++;
        rset s = {.n = 0};
        rs_add(R, &s, '\n', '\n');
        rs_add(R, &s, '\r', '\r');
        rs_add(R, &s, 0x2028, 0x2029);
        rs_negate(&s);
        put_set(R, sb, &s);
        return;
    }
    if (c == '\\') {
        R->p++;
        rset s = {.n = 0};
        uint32_t cp;
        int k = parse_escape(R, &cp, &s, false);
        if (k == 1) put_char(R, sb, cp);
        else if (k == 2) put_set(R, sb, &s);
        return;
    }
    if (c == '^' || c == '$') {
        RFAIL(R, FORGE_E_UNSUPPORTED, "regex: anchor '%c' is only supported at the %s of the pattern", c,
              c == '^' ? "start" : "end");
        return;
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') {
        RFAIL(R, FORGE_E_INVALID, "regex: '%c' has nothing to repeat (at byte %td)", c, R->p - R->s);
        return;
    }
    uint32_t cp;
    int k = rdec(R, &cp);
    if (!k) return;
    R->p += k;
    put_char(R, sb, cp);
}

static bool parse_count(rparser *R, long *v) {
    const char *s = R->p;
    *v = 0;
    while (R->p < R->end && *R->p >= '0' && *R->p <= '9') {
        *v = *v * 10 + (*R->p++ - '0');
        if (*v > GRAMMAR_MAX_REPEAT) {
            RFAIL(R, FORGE_E_INVALID, "regex: repetition count above %d", GRAMMAR_MAX_REPEAT);
            return false;
        }
    }
    return R->p > s;
}

static void parse_concat(rparser *R, strbuf *sb) {
    bool any = false;
    while (!R->st && R->p < R->end && *R->p != '|' && *R->p != ')') {
        /* a '$' closing the whole pattern is handled by the caller */
        if (*R->p == '$' && R->p + 1 == R->end && R->depth == 0) break;
        if (any) sb_putc(sb, ' ');
        sb_putc(sb, '(');
        parse_atom(R, sb);
        sb_putc(sb, ')');
        any = true;
        if (R->st || R->p >= R->end) break;
        char q = *R->p;
        if (q == '*' || q == '+' || q == '?') {
            sb_putc(sb, q);
            R->p++;
        } else if (q == '{') {
            const char *save = R->p;
            R->p++;
            long m, n;
            if (!parse_count(R, &m)) {
                if (R->st) return;
                R->p = save; /* a literal '{' as Python takes it */
                RFAIL(R, FORGE_E_UNSUPPORTED, "regex: a literal '{' must be escaped");
                return;
            }
            n = m;
            bool open = false;
            if (at(R, ',')) {
                R->p++;
                if (!parse_count(R, &n)) {
                    if (R->st) return;
                    open = true;
                }
            }
            if (!at(R, '}')) {
                RFAIL(R, FORGE_E_INVALID, "regex: missing '}'");
                return;
            }
            R->p++;
            if (!open && n < m) {
                RFAIL(R, FORGE_E_INVALID, "regex: repetition {%ld,%ld} out of order", m, n);
                return;
            }
            if (open) sb_printf(sb, "{%ld,}", m);
            else sb_printf(sb, "{%ld,%ld}", m, n);
        } else continue;
        if (at(R, '?')) R->p++; /* lazy: the same language */
        else if (at(R, '+')) {
            RFAIL(R, FORGE_E_UNSUPPORTED, "regex: possessive quantifiers are not supported");
            return;
        }
        if (R->p < R->end && (*R->p == '*' || *R->p == '+' || *R->p == '{')) {
            RFAIL(R, FORGE_E_INVALID, "regex: multiple repeat at byte %td", R->p - R->s);
            return;
        }
    }
    if (!any) sb_puts(sb, "\"\"");
}

static void parse_alt(rparser *R, strbuf *sb) {
    sb_putc(sb, '(');
    parse_concat(R, sb);
    while (!R->st && at(R, '|')) {
        R->p++;
        sb_puts(sb, " | ");
        parse_concat(R, sb);
    }
    sb_putc(sb, ')');
}

static forge_status convert(const char *re, size_t len, bool json, bool *anch_s, bool *anch_e, strbuf *out,
                            forge_error *err) {
    if (!re && len) return err_set(err, FORGE_E_INVALID, "regex: NULL");
    if (len > RE_MAX_LEN) return err_set(err, FORGE_E_INVALID, "regex: longer than %d bytes", RE_MAX_LEN);
    rparser R = {.s = re, .p = re, .end = re + len, .json = json, .err = err};
    *anch_s = *anch_e = false;
    if (at(&R, '^')) R.p++, *anch_s = true;
    parse_alt(&R, out);
    if (!R.st && at(&R, '$') && R.p + 1 == R.end) R.p++, *anch_e = true;
    if (!R.st && R.p < R.end) {
        if (*R.p == ')') RFAIL(&R, FORGE_E_INVALID, "regex: unbalanced ')' at byte %td", R.p - R.s);
        else RFAIL(&R, FORGE_E_UNSUPPORTED, "regex: '%c' at byte %td is not supported there", *R.p, R.p - R.s);
    }
    if (!R.st && sb_failed(out)) R.st = err_set(err, FORGE_E_NOMEM, "out of memory");
    return R.st;
}

forge_status regex_to_gbnf(const char *re, size_t len, strbuf *out, forge_error *err) {
    bool s, e;
    sb_puts(out, "root ::= ");
    forge_status st = convert(re, len, false, &s, &e, out, err);
    sb_putc(out, '\n');
    return st;
}

forge_status regex_to_gbnf_json_expr(const char *re, size_t len, strbuf *out, forge_error *err) {
    bool s, e;
    strbuf body = STRBUF_INIT;
    forge_status st = convert(re, len, true, &s, &e, &body, err);
    if (!st) {
        const char *any = "([^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" [\"\\\\/bfnrt])*";
        sb_putc(out, '(');
        if (!s) sb_printf(out, "%s ", any);
        sb_append(out, body.data, body.len);
        if (!e) sb_printf(out, " %s", any);
        sb_putc(out, ')');
    }
    sb_free(&body);
    return st;
}

forge_status choice_to_gbnf(const char *choices, size_t len, strbuf *out, forge_error *err) {
    json_doc *d = json_parse(choices, len, err);
    if (!d) return err_prefix(err, "guided_choice");
    const json_value *v = json_root(d);
    forge_status st = FORGE_OK;
    if (!json_is(v, JSON_ARRAY) || v->n == 0) st = err_set(err, FORGE_E_INVALID, "guided_choice must be a non-empty array of strings");
    else {
        sb_puts(out, "root ::= ");
        for (size_t i = 0; i < v->n && !st; i++) {
            const json_value *c = json_at(v, i);
            if (!json_is(c, JSON_STRING)) st = err_set(err, FORGE_E_INVALID, "guided_choice[%zu] is not a string", i);
            else {
                if (i) sb_puts(out, " | ");
                gbnf_put_literal(out, c->u.s, c->n);
            }
        }
        sb_putc(out, '\n');
    }
    json_free(d);
    return st;
}
