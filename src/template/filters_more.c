/* filters_more.c: the numeric, formatting and HTML filters (int, float, round, indent,
 * truncate, format, escape, batch, slice, tojson, ...), with Python's parsing of numbers
 * from strings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/filters.h"
#include "template/pystr.h"
#include "template/strmeth.h"

#define BIND(fname, lead, ...)                                                              \
    static const char *const names_[] = {__VA_ARGS__};                                     \
    enum { NP_ = sizeof names_ / sizeof names_[0] };                                       \
    val arg[NP_];                                                                          \
    bool has[NP_];                                                                         \
    if (!args_bind(c, a, fname, lead, NP_, names_, 0, arg, has)) return false

/* Python's int(s, base) for a str: false if s is not a valid literal. */
static bool parse_int(const char *s, size_t n, int base, int64_t *out, bool *overflow) {
    size_t i = 0;
    *overflow = false;
    while (i < n && py_isspace((unsigned char)s[i])) i++;
    while (n > i && py_isspace((unsigned char)s[n - 1])) n--;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (base == 0 || base == 16 || base == 8 || base == 2) {
        if (i + 1 < n && s[i] == '0') {
            char x = (char)(s[i + 1] | 32);
            int b = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
            if (b && (base == 0 || base == b)) {
                base = b;
                i += 2;
                if (i < n && s[i] == '_') i++;
            }
        }
        if (base == 0) {
            base = 10;
            /* base 0 forbids leading zeros in non-zero decimals */
            size_t j = i;
            bool nonzero = false;
            for (size_t k = i; k < n; k++)
                if (s[k] != '0' && s[k] != '_') nonzero = true;
            if (j < n && s[j] == '0' && nonzero) return false;
        }
    }
    if (base < 2 || base > 36 || i >= n) return false;
    uint64_t v = 0;
    bool prev_digit = false;
    for (; i < n; i++) {
        char ch = s[i];
        if (ch == '_') {
            if (!prev_digit || i + 1 >= n) return false;
            prev_digit = false;
            continue;
        }
        int d = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 32) >= 'a' && (ch | 32) <= 'z' ? (ch | 32) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) *overflow = true;
        v = v * (uint64_t)base + (uint64_t)d;
        prev_digit = true;
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0)) *overflow = true;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Python's float(s) for a str. */
static bool parse_float(const char *s, size_t n, double *out) {
    size_t i = 0;
    while (i < n && py_isspace((unsigned char)s[i])) i++;
    while (n > i && py_isspace((unsigned char)s[n - 1])) n--;
    if (i >= n || n - i > 400) return false;
    char buf[420];
    size_t k = 0;
    size_t j = i;
    if (s[j] == '+' || s[j] == '-') buf[k++] = s[j++];
    const char *rest = s + j;
    size_t rl = n - j;
    if ((rl == 3 && !strncasecmp(rest, "inf", 3)) || (rl == 8 && !strncasecmp(rest, "infinity", 8))) {
        *out = buf[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (rl == 3 && !strncasecmp(rest, "nan", 3)) {
        *out = NAN;
        return true;
    }
    bool digits = false, prev_digit = false, dot = false, exp = false;
    for (; j < n; j++) {
        char ch = s[j];
        if (ch >= '0' && ch <= '9') {
            digits = prev_digit = true;
            buf[k++] = ch;
        } else if (ch == '_') {
            if (!prev_digit || j + 1 >= n || s[j + 1] < '0' || s[j + 1] > '9') return false;
            prev_digit = false;
        } else if (ch == '.' && !dot && !exp) {
            dot = true;
            prev_digit = false;
            buf[k++] = ch;
        } else if ((ch | 32) == 'e' && digits && !exp) {
            exp = true;
            prev_digit = false;
            buf[k++] = 'e';
            if (j + 1 < n && (s[j + 1] == '+' || s[j + 1] == '-')) buf[k++] = s[++j];
            if (j + 1 >= n) return false;
        } else return false;
    }
    if (!digits || (exp && (buf[k - 1] < '0' || buf[k - 1] > '9'))) return false;
    buf[k] = 0;
    *out = strtod(buf, NULL);
    return true;
}

static bool float_to_int(rctx *c, double d, int64_t *out, bool *valueerror) {
    *valueerror = false;
    if (isnan(d)) {
        *valueerror = true;
        return true;
    }
    if (isinf(d)) return tpl_fail(c, TE_OVERFLOW, "cannot convert float infinity to integer");
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        return tpl_fail(c, TE_OVERFLOW, "integer result beyond 64 bits (Python's big integers are not supported)");
    *out = (int64_t)d;
    return true;
}

bool flt_int(rctx *c, val in, callargs *a, val *out) {
    BIND("do_int", 1, "default", "base");
    val def = has[0] ? arg[0] : v_int(0);
    int64_t base = 10;
    if (has[1]) {
        if (arg[1].t != V_INT) return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(arg[1]));
        base = arg[1].u.i;
    }
    int64_t r;
    bool ve;
    switch ((vtype)in.t) {
    case V_INT: *out = in; return true;
    case V_BOOL: *out = v_int(in.u.b); return true;
    case V_FLOAT:
        if (!float_to_int(c, in.u.f, &r, &ve)) return false;
        *out = ve ? v_ref(def) : v_int(r);
        return true;
    case V_STR: {
        vstr *s = V_S(in);
        bool over;
        if ((base == 0 || (base >= 2 && base <= 36)) && parse_int(s->s, s->len, (int)base, &r, &over)) {
            if (over) return tpl_fail(c, TE_OVERFLOW, "integer result beyond 64 bits (Python's big integers are not supported)");
            *out = v_int(r);
            return true;
        }
        if (base != 10 && base != 0 && !(base >= 2 && base <= 36))
            return tpl_fail(c, TE_VALUE, "int() base must be >= 2 and <= 36, or 0");
        double d;
        if (parse_float(s->s, s->len, &d)) {
            if (!float_to_int(c, d, &r, &ve)) return false;
            *out = ve ? v_ref(def) : v_int(r);
            return true;
        }
        *out = v_ref(def);
        return true;
    }
    default: *out = v_ref(def); return true;
    }
}

bool flt_float(rctx *c, val in, callargs *a, val *out) {
    BIND("do_float", 1, "default");
    double d;
    switch ((vtype)in.t) {
    case V_FLOAT: *out = in; return true;
    case V_INT: *out = v_float((double)in.u.i); return true;
    case V_BOOL: *out = v_float(in.u.b); return true;
    case V_STR:
        if (parse_float(V_S(in)->s, V_S(in)->len, &d)) {
            *out = v_float(d);
            return true;
        }
        /* fall through */
    default: *out = has[0] ? v_ref(arg[0]) : v_float(0.0); return true;
    }
}

/* Python's round(x, ndigits) for floats: correctly rounded, ties to even. */
static double round_float(double x, int64_t nd) {
    if (!isfinite(x) || nd > 300) return x;
    if (nd >= 0) {
        char buf[512];
        snprintf(buf, sizeof buf, "%.*f", (int)nd, x);
        return strtod(buf, NULL);
    }
    if (nd < -308) return copysign(0.0, x);
    double p = pow(10.0, (double)-nd);
    double y = x / p, r = nearbyint(y);
    return r * p;
}

bool flt_round(rctx *c, val in, callargs *a, val *out) {
    BIND("do_round", 1, "precision", "method");
    int64_t prec = 0;
    if (has[0]) {
        if (arg[0].t != V_INT && arg[0].t != V_BOOL)
            return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(arg[0]));
        prec = arg[0].t == V_BOOL ? arg[0].u.b : arg[0].u.i;
    }
    int method = 0;
    if (has[1]) {
        const char *m = arg[1].t == V_STR ? V_S(arg[1])->s : "";
        if (!strcmp(m, "common")) method = 0;
        else if (!strcmp(m, "ceil")) method = 1;
        else if (!strcmp(m, "floor")) method = 2;
        else return tpl_fail(c, TE_FILTERARG, "method must be common, ceil or floor");
    }
    if (in.t == V_UNDEF) return tpl_fail_undef(c, in);
    if (in.t != V_INT && in.t != V_BOOL && in.t != V_FLOAT) {
        if (method) return tpl_fail(c, TE_TYPE, "can't multiply sequence by non-int of type 'float'");
        return tpl_fail(c, TE_TYPE, "type %s doesn't define __round__ method", v_type_name(in));
    }
    if (method == 0) {
        if (in.t == V_FLOAT) {
            *out = v_float(round_float(in.u.f, prec));
            return true;
        }
        int64_t x = in.t == V_BOOL ? in.u.b : in.u.i;
        if (prec >= 0 || prec < -18) {
            *out = v_int(prec >= 0 ? x : 0);
            return true;
        }
        int64_t p = 1;
        for (int64_t i = 0; i < -prec; i++) p *= 10;
        int64_t q = x / p, r = x % p;
        if (r < 0) {
            r += p;
            q -= 1;
        }
        if (r * 2 > p || (r * 2 == p && (q & 1))) q += 1;
        *out = v_int(q * p);
        return true;
    }
    double x = in.t == V_FLOAT ? in.u.f : (double)(in.t == V_BOOL ? in.u.b : in.u.i);
    double p = pow(10.0, (double)prec);
    double v = method == 1 ? ceil(x * p) : floor(x * p);
    *out = v_float(v / p);
    return true;
}

bool flt_indent(rctx *c, val in, callargs *a, val *out) {
    BIND("do_indent", 1, "width", "first", "blank");
    strbuf ind = STRBUF_INIT;
    if (has[0] && arg[0].t == V_STR) sb_append(&ind, V_S(arg[0])->s, V_S(arg[0])->len);
    else {
        int64_t w = 4;
        if (has[0]) {
            if (arg[0].t != V_INT && arg[0].t != V_BOOL)
                return tpl_fail(c, TE_TYPE, "can't multiply sequence by non-int of type '%s'", v_type_name(arg[0]));
            w = arg[0].t == V_BOOL ? arg[0].u.b : arg[0].u.i;
        }
        if (w > 10000) return tpl_fail(c, TE_LIMIT, "indent width %lld is too large", (long long)w);
        for (int64_t i = 0; i < w; i++) sb_putc(&ind, ' ');
    }
    if (in.t == V_UNDEF) {
        sb_free(&ind);
        return tpl_fail_undef(c, in);
    }
    if (in.t != V_STR) {
        sb_free(&ind);
        return tpl_fail(c, TE_TYPE, "unsupported operand type(s) for +=: '%s' and 'str'", v_type_name(in));
    }
    /* s += "\n"; lines = s.splitlines() */
    vstr *src = V_S(in);
    vstr *s = str_new_uninit(src->len + 1);
    if (!s) {
        sb_free(&ind);
        return tpl_oom(c);
    }
    memcpy(s->s, src->s, src->len);
    s->s[src->len] = '\n';
    vlist *lines;
    bool ok = str_splitlines(c, s, false, &lines);
    obj_unref(s);
    if (!ok) {
        sb_free(&ind);
        return false;
    }
    bool first = has[1] && v_truthy(arg[1]), blank = has[2] && v_truthy(arg[2]);
    strbuf sb = STRBUF_INIT;
    if (first) sb_append(&sb, ind.data ? ind.data : "", ind.len);
    for (size_t i = 0; i < lines->n; i++) {
        vstr *line = V_S(lines->items[i]);
        if (i) {
            sb_putc(&sb, '\n');
            if (blank || line->len) sb_append(&sb, ind.data ? ind.data : "", ind.len);
        }
        sb_append(&sb, line->s, line->len);
        if (sb.len > c->lim.max_output) break;
    }
    obj_unref(lines);
    sb_free(&ind);
    if (sb.len > c->lim.max_output) {
        sb_free(&sb);
        return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    }
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

bool flt_wordcount(rctx *c, val in, callargs *a, val *out) {
    if (a->n || a->nk) return tpl_fail(c, TE_TYPE, "do_wordcount() takes 1 positional argument but %d were given", 1 + a->n + a->nk);
    val sv;
    if (!py_str_val(c, in, &sv)) return false;
    vstr *s = V_S(sv);
    int64_t n = 0;
    bool inword = false;
    size_t i = 0;
    while (i < s->len) {
        uint32_t cp = u8_next(s->s, s->len, &i);
        bool w = cp == '_' || py_isalnum(cp);
        if (w && !inword) n++;
        inword = w;
    }
    v_unref(sv);
    *out = v_int(n);
    return true;
}

bool flt_truncate(rctx *c, val in, callargs *a, val *out) {
    BIND("do_truncate", 2, "length", "killwords", "end", "leeway");
    int64_t length = 255, leeway = 5;
    if (has[0]) {
        if (arg[0].t != V_INT) return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(arg[0]));
        length = arg[0].u.i;
    }
    if (has[3] && arg[3].t != V_NONE) {
        if (arg[3].t != V_INT) return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(arg[3]));
        leeway = arg[3].u.i;
    }
    vstr *end = NULL;
    val endv = has[2] ? arg[2] : v_undef();
    if (has[2] && endv.t != V_STR) return tpl_fail(c, TE_TYPE, "truncate end must be a string");
    val dflt = v_str("...", 3);
    if (dflt.t != V_STR) return tpl_oom(c);
    end = has[2] ? V_S(endv) : V_S(dflt);
    int64_t endlen = (int64_t)str_ncp(end);
    bool ok = true;
    if (length < endlen) ok = tpl_fail(c, TE_ATTRIBUTE, "expected length >= %lld, got %lld", (long long)endlen, (long long)length);
    else if (leeway < 0) ok = tpl_fail(c, TE_ATTRIBUTE, "expected leeway >= 0, got %lld", (long long)leeway);
    else if (in.t != V_STR) ok = tpl_fail(c, TE_TYPE, "object of type '%s' has no len()", v_type_name(in));
    if (!ok) {
        v_unref(dflt);
        return false;
    }
    vstr *s = V_S(in);
    if ((int64_t)str_ncp(s) <= length + leeway) {
        v_unref(dflt);
        *out = v_ref(in);
        return true;
    }
    size_t cut = str_cp_offset(s, (size_t)(length - endlen));
    size_t keep = cut;
    if (!(has[1] && v_truthy(arg[1]))) {
        const char *sp = NULL;
        for (size_t i = cut; i-- > 0;)
            if (s->s[i] == ' ') {
                sp = s->s + i;
                break;
            }
        if (sp) keep = (size_t)(sp - s->s);
    }
    strbuf sb = STRBUF_INIT;
    sb_append(&sb, s->s, keep);
    sb_append(&sb, end->s, end->len);
    v_unref(dflt);
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

bool flt_format(rctx *c, val in, callargs *a, val *out) {
    if (a->n && a->nk) return tpl_fail(c, TE_FILTERARG, "can't handle positional and keyword arguments at the same time");
    val fmt;
    if (!py_str_val(c, in, &fmt)) return false;
    val args;
    if (a->nk) {
        vdict *d = dict_new((size_t)a->nk);
        if (!d) {
            v_unref(fmt);
            return tpl_oom(c);
        }
        for (int i = 0; i < a->nk; i++) {
            val k = v_cstr(a->kn[i]);
            if (k.t != V_STR || !dict_set(d, k, v_ref(a->kv[i]))) {
                obj_unref(d);
                v_unref(fmt);
                return tpl_oom(c);
            }
        }
        args = v_obj(V_DICT, d);
    } else {
        vlist *t = list_new((size_t)a->n);
        if (!t) {
            v_unref(fmt);
            return tpl_oom(c);
        }
        t->h.flags |= OBJ_TUPLE;
        for (int i = 0; i < a->n; i++) t->items[t->n++] = v_ref(a->pos[i]);
        args = v_obj(V_LIST, t);
    }
    bool ok = py_percent_format(c, V_S(fmt), args, out);
    v_unref(args);
    v_unref(fmt);
    return ok;
}

bool flt_safe(rctx *c, val in, callargs *a, val *out) {
    if (a->n || a->nk) return tpl_fail(c, TE_TYPE, "do_mark_safe() takes 1 positional argument but %d were given", 1 + a->n + a->nk);
    strbuf sb = STRBUF_INIT;
    if (!py_str(c, &sb, in)) {
        sb_free(&sb);
        return false;
    }
    *out = v_str_take(&sb);
    sb_free(&sb);
    if (out->t != V_STR) return tpl_oom(c);
    out->u.o->flags |= OBJ_MARKUP;
    return true;
}

bool flt_escape(rctx *c, val in, callargs *a, val *out) {
    if (a->n || a->nk) return tpl_fail(c, TE_TYPE, "escape() takes exactly one argument (%d given)", 1 + a->n + a->nk);
    if (in.t == V_STR && (in.u.o->flags & OBJ_MARKUP)) {
        *out = v_ref(in);
        return true;
    }
    strbuf raw = STRBUF_INIT, sb = STRBUF_INIT;
    if (!py_str(c, &raw, in)) {
        sb_free(&raw);
        return false;
    }
    py_html_escape(&sb, sb_str(&raw), raw.len);
    sb_free(&raw);
    *out = v_str_take(&sb);
    sb_free(&sb);
    if (out->t != V_STR) return tpl_oom(c);
    out->u.o->flags |= OBJ_MARKUP;
    return true;
}

bool flt_attr(rctx *c, val in, callargs *a, val *out) {
    static const char *const names[] = {"name"};
    val arg[1];
    bool has[1];
    if (!args_bind(c, a, "do_attr", 2, 1, names, 1, arg, has)) return false;
    val name;
    if (!py_str_val(c, arg[0], &name)) return false;
    /* getattr only: attributes and methods, not items (d|attr('key') is undefined) */
    vstr *n = V_S(name);
    bool ok = true;
    if (in.t == V_UNDEF) ok = tpl_fail_undef(c, in);
    else if (n->len >= 4 && !memcmp(n->s, "__", 2) && !memcmp(n->s + n->len - 2, "__", 2)) ok = op_getattr(c, in, n->s, n->len, out);
    else {
        int r = method_lookup(c, in, n->s, n->len, out);
        val *v = r == 0 && in.t == V_NS ? dict_get_str(V_D(in), n->s, n->len) : NULL;
        if (r < 0) ok = false;
        else if (v) *out = v_ref(*v);
        else if (r == 0) {
            *out = undef_attr(in, n->s, n->len);
            ok = out->u.o ? true : tpl_oom(c);
        }
    }
    v_unref(name);
    return ok;
}

static bool count_arg(rctx *c, val v, int64_t *n) {
    if (v.t == V_INT) *n = v.u.i;
    else if (v.t == V_BOOL) *n = v.u.b;
    else return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(v));
    return true;
}

bool flt_batch(rctx *c, val in, callargs *a, val *out) {
    static const char *const names[] = {"linecount", "fill_with"};
    val arg[2];
    bool has[2];
    if (!args_bind(c, a, "do_batch", 1, 2, names, 1, arg, has)) return false;
    int64_t lc = 0;
    if (!count_arg(c, arg[0], &lc)) return false;
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    vlist *r = list_new(0), *cur = NULL;
    bool ok = r != NULL;
    for (size_t i = 0; ok && i < l->n; i++) {
        if (!cur || (int64_t)cur->n == lc) {
            cur = list_new(0);
            ok = cur && list_push(r, v_obj(V_LIST, cur));
        }
        if (ok) ok = list_push(cur, v_ref(l->items[i]));
    }
    if (ok && cur && has[1] && arg[1].t != V_NONE)
        while (ok && (int64_t)cur->n < lc) ok = list_push(cur, v_ref(arg[1]));
    obj_unref(l);
    if (!ok) {
        obj_unref(r);
        return tpl_oom(c);
    }
    return flt_ret_iter(c, r, "generator", out);
}

bool flt_slice(rctx *c, val in, callargs *a, val *out) {
    static const char *const names[] = {"slices", "fill_with"};
    val arg[2];
    bool has[2];
    if (!args_bind(c, a, "sync_do_slice", 1, 2, names, 1, arg, has)) return false;
    int64_t slices = 0;
    if (!count_arg(c, arg[0], &slices)) return false;
    if (slices == 0) return tpl_fail(c, TE_ZERODIV, "integer division or modulo by zero");
    if (slices < 0 || slices > 100000) return tpl_fail(c, TE_VALUE, "slice count %lld is not supported", (long long)slices);
    vlist *seq;
    if (!op_iterate(c, in, &seq)) return false;
    int64_t length = (int64_t)seq->n, per = length / slices, extra = length % slices, offset = 0;
    vlist *r = list_new((size_t)slices);
    bool ok = r != NULL;
    for (int64_t k = 0; ok && k < slices; k++) {
        int64_t start = offset + k * per;
        if (k < extra) offset++;
        int64_t end = offset + (k + 1) * per;
        vlist *tmp = list_new(0);
        ok = tmp != NULL;
        for (int64_t i = start; ok && i < end && i < length; i++) ok = list_push(tmp, v_ref(seq->items[i]));
        if (ok && has[1] && arg[1].t != V_NONE && k >= extra) ok = list_push(tmp, v_ref(arg[1]));
        if (tmp) r->items[r->n++] = v_obj(V_LIST, tmp);
    }
    obj_unref(seq);
    if (!ok) {
        obj_unref(r);
        return tpl_oom(c);
    }
    return flt_ret_iter(c, r, "generator", out);
}

/* HF's tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
bool flt_tojson(rctx *c, val in, callargs *a, val *out) {
    static const char *const names[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    val arg[4];
    bool has[4];
    if (!args_bind(c, a, "tojson", 1, 4, names, 0, arg, has)) return false;
    json_opts o = {0};
    o.ensure_ascii = has[0] && v_truthy(arg[0]);
    o.sort_keys = has[3] && v_truthy(arg[3]);
    char spaces[256];
    if (has[1] && arg[1].t != V_NONE) {
        if (arg[1].t == V_STR) {
            o.indent = V_S(arg[1])->s;
            o.indent_len = V_S(arg[1])->len;
        } else if (arg[1].t == V_INT || arg[1].t == V_BOOL) {
            int64_t w = arg[1].t == V_BOOL ? arg[1].u.b : arg[1].u.i;
            if (w < 0) w = 0;
            if (w > (int64_t)sizeof spaces) return tpl_fail(c, TE_LIMIT, "tojson indent %lld is too large", (long long)w);
            memset(spaces, ' ', (size_t)w);
            o.indent = spaces;
            o.indent_len = (size_t)w;
        } else {
            return tpl_fail(c, TE_TYPE, "can't multiply sequence by non-int of type '%s'", v_type_name(arg[1]));
        }
    }
    o.item_sep = o.indent ? "," : ", ";
    o.item_sep_len = o.indent ? 1 : 2;
    o.key_sep = ": ";
    o.key_sep_len = 2;
    if (has[2] && arg[2].t != V_NONE) {
        val s = arg[2];
        if (s.t != V_LIST || V_L(s)->n != 2 || V_L(s)->items[0].t != V_STR || V_L(s)->items[1].t != V_STR)
            return tpl_fail(c, TE_VALUE, "separators must be a pair of strings");
        o.item_sep = V_S(V_L(s)->items[0])->s;
        o.item_sep_len = V_S(V_L(s)->items[0])->len;
        o.key_sep = V_S(V_L(s)->items[1])->s;
        o.key_sep_len = V_S(V_L(s)->items[1])->len;
    }
    strbuf sb = STRBUF_INIT;
    if (!py_json_dumps(c, &sb, in, &o)) {
        sb_free(&sb);
        return false;
    }
    if (sb.len > c->lim.max_output) {
        sb_free(&sb);
        return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    }
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}
