/* pystr.h: Python's string behaviour for template values: UTF-8 code point helpers,
 * str.isspace, case mapping, str() / repr(), json.dumps as HF's tojson calls it, and the
 * two formatting languages (printf-style `%` and str.format). */
#ifndef FORGE_TEMPLATE_PYSTR_H
#define FORGE_TEMPLATE_PYSTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "template/eval.h"

/* Decodes the code point at s[*i] (valid UTF-8 assumed) and advances *i. */
static inline uint32_t u8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *p = (const unsigned char *)s + *i;
    uint32_t c = p[0];
    size_t left = n - *i;
    if (c < 0x80 || left < 2) {
        *i += 1;
        return c;
    }
    if (c < 0xE0 || left < 3) {
        *i += 2;
        return ((c & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (c < 0xF0 || left < 4) {
        *i += 3;
        return ((c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    *i += 4;
    return ((c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
}
/* Index of the start of the code point before s[i]. */
static inline size_t u8_prev(const char *s, size_t i) {
    do i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}
void u8_put(strbuf *sb, uint32_t cp);

/* str.isspace for one code point. */
bool py_isspace(uint32_t cp);
bool py_isalnum(uint32_t cp);
bool py_isalpha(uint32_t cp);
bool py_isdigit(uint32_t cp);
bool py_iscased(uint32_t cp);
bool py_islower_cp(uint32_t cp);
bool py_isupper_cp(uint32_t cp);
bool py_isprintable(uint32_t cp);
/* Full case mappings (ß -> SS for upper) appended to sb. */
void py_upper_cp(strbuf *sb, uint32_t cp);
void py_lower_cp(strbuf *sb, uint32_t cp);
void py_title_cp(strbuf *sb, uint32_t cp);

/* Byte offset of code point index cp in s (cp <= ncp). */
size_t str_cp_offset(vstr *s, size_t cp);

/* Python str(v) / repr(v) appended to sb. False (error set) on recursion or bad values. */
bool py_str(rctx *c, strbuf *sb, val v);
bool py_repr(rctx *c, strbuf *sb, val v);
void py_repr_string(strbuf *sb, const char *s, size_t n);
/* str(v) as a new string value (shares v when it already is a str). */
bool py_str_val(rctx *c, val v, val *out);

/* markupsafe's escape: & < > " ' as entities */
void py_html_escape(strbuf *sb, const char *s, size_t n);

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as HF's tojson calls it.
 * indent: NULL for none, else the indent string (Python turns an int n into n spaces). */
typedef struct json_opts {
    bool ensure_ascii;
    const char *indent;
    size_t indent_len;
    const char *item_sep, *key_sep;
    size_t item_sep_len, key_sep_len;
    bool sort_keys;
} json_opts;
bool py_json_dumps(rctx *c, strbuf *sb, val v, const json_opts *o);

/* printf-style `fmt % args` (args: a tuple, a dict, or one value). */
bool py_percent_format(rctx *c, vstr *fmt, val args, val *out);
/* str.format(*args, **kwargs). */
bool py_str_format(rctx *c, vstr *fmt, callargs *a, val *out);

#endif
