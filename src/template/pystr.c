/* pystr.c: Python's str() / repr() of template values, json.dumps as HF's tojson filter
 * calls it, and Unicode character classes (through utf8proc) with Python's definitions. */
#include "template/pystr.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

#include "base/json.h"
#include "base/utf8.h"

void u8_put(strbuf *sb, uint32_t cp) {
    char b[4];
    int n = utf8_encode(cp, b);
    if (n) sb_append(sb, b, (size_t)n);
}

/* ---- character classes ----------------------------------------------------------------- */

bool py_isspace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int cat(uint32_t c) { return utf8proc_category((utf8proc_int32_t)c); }

bool py_isalpha(uint32_t c) {
    if (c < 0x80) return (c | 32) - 'a' < 26u;
    int k = cat(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
bool py_isdigit(uint32_t c) {
    if (c < 0x80) return c - '0' < 10u;
    return cat(c) == UTF8PROC_CATEGORY_ND;
}
bool py_isalnum(uint32_t c) {
    if (c < 0x80) return (c | 32) - 'a' < 26u || c - '0' < 10u;
    int k = cat(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}
bool py_iscased(uint32_t c) {
    if (c < 0x80) return (c | 32) - 'a' < 26u;
    int k = cat(c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}
bool py_islower_cp(uint32_t c) { return c < 0x80 ? c - 'a' < 26u : cat(c) == UTF8PROC_CATEGORY_LL; }
bool py_isupper_cp(uint32_t c) {
    if (c < 0x80) return c - 'A' < 26u;
    int k = cat(c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LT;
}
bool py_isprintable(uint32_t c) {
    if (c < 0x80) return c >= 0x20 && c < 0x7F;
    int k = cat(c);
    return !(k == UTF8PROC_CATEGORY_CN || k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL ||
             k == UTF8PROC_CATEGORY_ZP || k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
             k == UTF8PROC_CATEGORY_CS || k == UTF8PROC_CATEGORY_CO);
}

/* Unconditional multi-character mappings of Unicode's SpecialCasing.txt that Python applies
 * (Latin and Armenian; utf8proc has only the one-to-one mappings). */
static const struct {
    uint32_t cp;
    const char *upper, *title;
} g_special[] = {
    {0x00DF, "SS", "Ss"},
    {0x0149, "\u02BCN", "\u02BCN"},
    {0x01F0, "J\u030C", "J\u030C"},
    {0x0587, "\u0535\u0552", "\u0535\u0582"},
    {0x1E96, "H\u0331", "H\u0331"},
    {0x1E97, "T\u0308", "T\u0308"},
    {0x1E98, "W\u030A", "W\u030A"},
    {0x1E99, "Y\u030A", "Y\u030A"},
    {0x1E9A, "A\u02BE", "A\u02BE"},
    {0xFB00, "FF", "Ff"},
    {0xFB01, "FI", "Fi"},
    {0xFB02, "FL", "Fl"},
    {0xFB03, "FFI", "Ffi"},
    {0xFB04, "FFL", "Ffl"},
    {0xFB05, "ST", "St"},
    {0xFB06, "ST", "St"},
    {0xFB13, "\u0544\u0546", "\u0544\u0576"},
    {0xFB14, "\u0544\u0535", "\u0544\u0565"},
    {0xFB15, "\u0544\u053B", "\u0544\u056B"},
    {0xFB16, "\u054E\u0546", "\u054E\u0576"},
    {0xFB17, "\u0544\u053D", "\u0544\u056D"},
};

static bool special_case(strbuf *sb, uint32_t c, bool title) {
    for (size_t i = 0; i < sizeof g_special / sizeof g_special[0]; i++)
        if (g_special[i].cp == c) {
            sb_puts(sb, title ? g_special[i].title : g_special[i].upper);
            return true;
        }
    return false;
}

void py_upper_cp(strbuf *sb, uint32_t c) {
    if (c < 0x80) sb_putc(sb, (char)(c - 'a' < 26u ? c - 32 : c));
    else if (!special_case(sb, c, false)) u8_put(sb, (uint32_t)utf8proc_toupper((utf8proc_int32_t)c));
}
void py_lower_cp(strbuf *sb, uint32_t c) {
    if (c < 0x80) sb_putc(sb, (char)(c - 'A' < 26u ? c + 32 : c));
    else if (c == 0x130) sb_append(sb, "i\xCC\x87", 3);
    else u8_put(sb, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
}
void py_title_cp(strbuf *sb, uint32_t c) {
    if (c < 0x80) sb_putc(sb, (char)(c - 'a' < 26u ? c - 32 : c));
    else if (!special_case(sb, c, true)) u8_put(sb, (uint32_t)utf8proc_totitle((utf8proc_int32_t)c));
}

size_t str_cp_offset(vstr *s, size_t cp) {
    if (str_ascii(s)) return cp < s->len ? cp : s->len;
    size_t i = 0;
    while (cp > 0 && i < s->len) {
        u8_next(s->s, s->len, &i);
        cp--;
    }
    return i;
}

/* ---- str() and repr() ------------------------------------------------------------------ */

void py_repr_string(strbuf *sb, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    sb_putc(sb, q);
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t c = u8_next(s, n, &i);
        if (c == (uint32_t)q || c == '\\') {
            sb_putc(sb, '\\');
            sb_putc(sb, (char)c);
        } else if (c == '\t') sb_append(sb, "\\t", 2);
        else if (c == '\n') sb_append(sb, "\\n", 2);
        else if (c == '\r') sb_append(sb, "\\r", 2);
        else if (c < 0x20 || c == 0x7F) sb_printf(sb, "\\x%02x", c);
        else if (c < 0x80 || py_isprintable(c)) sb_append(sb, s + start, i - start);
        else if (c <= 0xFF) sb_printf(sb, "\\x%02x", c);
        else if (c <= 0xFFFF) sb_printf(sb, "\\u%04x", c);
        else sb_printf(sb, "\\U%08x", c);
    }
    sb_putc(sb, q);
}

static bool repr_depth(rctx *c, strbuf *sb, val v, int depth, bool as_str);

static bool seq_repr(rctx *c, strbuf *sb, vlist *l, bool tuple, int depth) {
    sb_putc(sb, tuple ? '(' : '[');
    for (size_t i = 0; i < l->n; i++) {
        if (i) sb_append(sb, ", ", 2);
        if (!repr_depth(c, sb, l->items[i], depth + 1, false)) return false;
    }
    if (tuple && l->n == 1) sb_putc(sb, ',');
    sb_putc(sb, tuple ? ')' : ']');
    return true;
}

static bool dict_repr(rctx *c, strbuf *sb, vdict *d, int depth) {
    sb_putc(sb, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) sb_append(sb, ", ", 2);
        if (!repr_depth(c, sb, d->keys[i], depth + 1, false)) return false;
        sb_append(sb, ": ", 2);
        if (!repr_depth(c, sb, d->vals[i], depth + 1, false)) return false;
    }
    sb_putc(sb, '}');
    return true;
}

static bool repr_depth(rctx *c, strbuf *sb, val v, int depth, bool as_str) {
    if (depth > VAL_MAX_DEPTH) return tpl_fail(c, TE_RECURSION, "maximum recursion depth exceeded while getting the repr of an object");
    if (c->lim.max_output && sb->len > c->lim.max_output)
        return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    char buf[32];
    switch ((vtype)v.t) {
    case V_UNDEF:
        if (!as_str) sb_puts(sb, "Undefined");
        return true;
    case V_NONE: sb_puts(sb, "None"); return true;
    case V_BOOL: sb_puts(sb, v.u.b ? "True" : "False"); return true;
    case V_INT: sb_printf(sb, "%lld", (long long)v.u.i); return true;
    case V_FLOAT: sb_append(sb, buf, (size_t)fmt_double_repr(buf, v.u.f)); return true;
    case V_STR:
        if (as_str) sb_append(sb, V_S(v)->s, V_S(v)->len);
        else if (v.u.o->flags & OBJ_MARKUP) {
            sb_puts(sb, "Markup(");
            py_repr_string(sb, V_S(v)->s, V_S(v)->len);
            sb_putc(sb, ')');
        } else py_repr_string(sb, V_S(v)->s, V_S(v)->len);
        return true;
    case V_LIST: return seq_repr(c, sb, V_L(v), v_is_tuple(v), depth);
    case V_DICT: return dict_repr(c, sb, V_D(v), depth);
    case V_NS:
        sb_puts(sb, "<Namespace ");
        if (!dict_repr(c, sb, V_D(v), depth)) return false;
        sb_putc(sb, '>');
        return true;
    case V_MACRO:
        sb_puts(sb, "<Macro ");
        py_repr_string(sb, ((vmacro *)v.u.o)->name, strlen(((vmacro *)v.u.o)->name));
        sb_putc(sb, '>');
        return true;
    case V_FUNC: {
        vfunc *f = (vfunc *)v.u.o;
        if (f->self.t == V_UNDEF) sb_printf(sb, "<function %s>", f->name);
        else sb_printf(sb, "<built-in method %s of %s object>", f->name, v_type_name(f->self));
        return true;
    }
    case V_LOOP: {
        vloop *l = (vloop *)v.u.o;
        sb_printf(sb, "<LoopContext %zu/%zu>", l->index0 + 1, l->items ? l->items->n : 0);
        return true;
    }
    case V_ITER: sb_printf(sb, "<%s object>", ((viter *)v.u.o)->tname); return true;
    case V_SCOPE: return true;
    }
    return true;
}

bool py_str(rctx *c, strbuf *sb, val v) {
    bool ok = repr_depth(c, sb, v, 0, true);
    if (ok && sb_failed(sb)) return tpl_oom(c);
    return ok;
}

bool py_repr(rctx *c, strbuf *sb, val v) {
    bool ok = repr_depth(c, sb, v, 0, false);
    if (ok && sb_failed(sb)) return tpl_oom(c);
    return ok;
}

bool py_str_val(rctx *c, val v, val *out) {
    if (v.t == V_STR) {
        *out = v_ref(v);
        return true;
    }
    strbuf sb = STRBUF_INIT;
    if (!py_str(c, &sb, v)) {
        sb_free(&sb);
        return false;
    }
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

void py_html_escape(strbuf *sb, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': sb_puts(sb, "&amp;"); break;
        case '<': sb_puts(sb, "&lt;"); break;
        case '>': sb_puts(sb, "&gt;"); break;
        case '"': sb_puts(sb, "&#34;"); break;
        case '\'': sb_puts(sb, "&#39;"); break;
        default: sb_putc(sb, s[i]);
        }
    }
}

/* ---- json.dumps ------------------------------------------------------------------------ */

static void json_newline(strbuf *sb, const json_opts *o, int level) {
    sb_putc(sb, '\n');
    for (int i = 0; i < level; i++) sb_append(sb, o->indent, o->indent_len);
}

static bool json_key(rctx *c, strbuf *sb, val k, const json_opts *o) {
    char buf[32];
    switch ((vtype)k.t) {
    case V_STR: json_write_string(sb, V_S(k)->s, V_S(k)->len, o->ensure_ascii); return true;
    case V_INT: sb_printf(sb, "\"%lld\"", (long long)k.u.i); return true;
    case V_BOOL: sb_puts(sb, k.u.b ? "\"true\"" : "\"false\""); return true;
    case V_NONE: sb_puts(sb, "\"null\""); return true;
    case V_FLOAT:
        if (isnan(k.u.f)) sb_puts(sb, "\"NaN\"");
        else if (isinf(k.u.f)) sb_puts(sb, k.u.f > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else {
            sb_putc(sb, '"');
            sb_append(sb, buf, (size_t)fmt_double_repr(buf, k.u.f));
            sb_putc(sb, '"');
        }
        return true;
    default:
        return tpl_fail(c, TE_TYPE, "keys must be str, int, float, bool or None, not %s", v_type_name(k));
    }
}

static bool dumps_depth(rctx *c, strbuf *sb, val v, const json_opts *o, int level);

static bool dumps_dict(rctx *c, strbuf *sb, vdict *d, const json_opts *o, int level) {
    if (!d->n) {
        sb_append(sb, "{}", 2);
        return true;
    }
    size_t *order = malloc(d->n * sizeof *order);
    if (!order) return tpl_oom(c);
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    if (o->sort_keys) {
        /* sorted(d.items()): by key with Python's <, stable */
        val *items = malloc(d->n * sizeof *items);
        val *keys = malloc(d->n * sizeof *keys);
        if (!items || !keys) {
            free(items);
            free(keys);
            free(order);
            return tpl_oom(c);
        }
        for (size_t i = 0; i < d->n; i++) {
            items[i] = v_int((int64_t)i);
            keys[i] = d->keys[i];
        }
        bool ok = py_sort(c, items, keys, d->n, false);
        for (size_t i = 0; i < d->n; i++) order[i] = (size_t)items[i].u.i;
        free(items);
        free(keys);
        if (!ok) {
            free(order);
            return false;
        }
    }
    sb_putc(sb, '{');
    bool ok = true;
    for (size_t j = 0; j < d->n && ok; j++) {
        size_t i = order[j];
        if (j) sb_append(sb, o->item_sep, o->item_sep_len);
        if (o->indent) json_newline(sb, o, level + 1);
        ok = json_key(c, sb, d->keys[i], o);
        if (!ok) break;
        sb_append(sb, o->key_sep, o->key_sep_len);
        ok = dumps_depth(c, sb, d->vals[i], o, level + 1);
    }
    free(order);
    if (!ok) return false;
    if (o->indent) json_newline(sb, o, level);
    sb_putc(sb, '}');
    return true;
}

static bool dumps_depth(rctx *c, strbuf *sb, val v, const json_opts *o, int level) {
    if (level > VAL_MAX_DEPTH) return tpl_fail(c, TE_RECURSION, "maximum recursion depth exceeded while encoding a JSON object");
    if (c->lim.max_output && sb->len > c->lim.max_output)
        return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    switch ((vtype)v.t) {
    case V_NONE: sb_puts(sb, "null"); return true;
    case V_BOOL: sb_puts(sb, v.u.b ? "true" : "false"); return true;
    case V_INT: sb_printf(sb, "%lld", (long long)v.u.i); return true;
    case V_FLOAT: json_write_double(sb, v.u.f); return true;
    case V_STR: json_write_string(sb, V_S(v)->s, V_S(v)->len, o->ensure_ascii); return true;
    case V_LIST: {
        vlist *l = V_L(v);
        if (!l->n) {
            sb_append(sb, "[]", 2);
            return true;
        }
        sb_putc(sb, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) sb_append(sb, o->item_sep, o->item_sep_len);
            if (o->indent) json_newline(sb, o, level + 1);
            if (!dumps_depth(c, sb, l->items[i], o, level + 1)) return false;
        }
        if (o->indent) json_newline(sb, o, level);
        sb_putc(sb, ']');
        return true;
    }
    case V_DICT: return dumps_dict(c, sb, V_D(v), o, level);
    default:
        return tpl_fail(c, TE_TYPE, "Object of type %s is not JSON serializable", v_type_name(v));
    }
}

bool py_json_dumps(rctx *c, strbuf *sb, val v, const json_opts *o) {
    bool ok = dumps_depth(c, sb, v, o, 0);
    if (ok && sb_failed(sb)) return tpl_oom(c);
    return ok;
}
