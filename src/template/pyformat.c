/* pyformat.c: Python's two string formatting languages: printf-style `fmt % args` (also the
 * `format` filter) and str.format with its format-spec mini-language. Width and precision
 * count code points, as Python's do. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "template/pystr.h"

/* ---- shared number rendering ----------------------------------------------------------------- */

typedef struct spec {
    uint32_t fill;
    char align; /* '<', '>', '^', '=' or 0 */
    char sign;  /* '+', '-', ' ' or 0 */
    bool alt, zero;
    int64_t width; /* -1 none */
    int64_t prec;  /* -1 none */
    char group;    /* ',', '_' or 0 */
    char type;     /* 0 none */
} spec;

static size_t ncp(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static void fill_n(strbuf *sb, uint32_t fill, int64_t n) {
    for (int64_t i = 0; i < n; i++) u8_put(sb, fill);
}

/* Pads body (sign and prefix kept apart for '=' alignment) to sp->width. */
static void emit_padded(strbuf *sb, const spec *sp, const char *signpfx, const char *body, size_t blen,
                        char default_align) {
    size_t used = strlen(signpfx) + ncp(body, blen);
    int64_t pad = sp->width > (int64_t)used ? sp->width - (int64_t)used : 0;
    char align = sp->align ? sp->align : default_align;
    uint32_t fill = sp->fill ? sp->fill : ' ';
    if (align == '=') {
        sb_puts(sb, signpfx);
        fill_n(sb, fill, pad);
        sb_append(sb, body, blen);
        return;
    }
    int64_t left = align == '>' ? pad : align == '^' ? pad / 2 : 0;
    fill_n(sb, fill, left);
    sb_puts(sb, signpfx);
    sb_append(sb, body, blen);
    fill_n(sb, fill, pad - left);
}

static void group_digits(strbuf *out, const char *digits, size_t n, char sep, int every) {
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % (size_t)every == 0) sb_putc(out, sep);
        sb_putc(out, digits[i]);
    }
}

static void uint_digits(char *buf, uint64_t v, int base, bool upper) {
    char tmp[72];
    int k = 0;
    do {
        int d = (int)(v % (uint64_t)base);
        tmp[k++] = (char)(d < 10 ? '0' + d : (upper ? 'A' : 'a') + d - 10);
        v /= (uint64_t)base;
    } while (v);
    for (int i = 0; i < k; i++) buf[i] = tmp[k - 1 - i];
    buf[k] = 0;
}

static void format_int(strbuf *sb, int64_t x, const spec *sp) {
    char type = sp->type ? sp->type : 'd';
    int base = type == 'b' ? 2 : type == 'o' ? 8 : (type == 'x' || type == 'X') ? 16 : 10;
    uint64_t mag = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    char digits[72];
    uint_digits(digits, mag, base, type == 'X');
    strbuf body = STRBUF_INIT;
    if (sp->group) group_digits(&body, digits, strlen(digits), sp->group, base == 10 ? 3 : 4);
    else sb_puts(&body, digits);
    char signpfx[8] = "";
    size_t k = 0;
    if (x < 0) signpfx[k++] = '-';
    else if (sp->sign == '+' || sp->sign == ' ') signpfx[k++] = sp->sign;
    if (sp->alt && base != 10) {
        signpfx[k++] = '0';
        signpfx[k++] = type == 'b' ? 'b' : type == 'o' ? 'o' : type;
    }
    signpfx[k] = 0;
    spec s2 = *sp;
    if (sp->zero && !sp->align) {
        s2.fill = '0';
        s2.align = '=';
    }
    emit_padded(sb, &s2, signpfx, sb_str(&body), body.len, '>');
    sb_free(&body);
}

static void format_float(strbuf *sb, double x, const spec *sp) {
    char type = sp->type;
    int64_t prec = sp->prec;
    char buf[512];
    bool neg = signbit(x) && !isnan(x);
    double mag = fabs(x);
    if (isnan(x) || isinf(x)) {
        bool up = type == 'E' || type == 'F' || type == 'G';
        snprintf(buf, sizeof buf, "%s", isnan(x) ? (up ? "NAN" : "nan") : (up ? "INF" : "inf"));
        if (type == '%') strcat(buf, "%");
    } else if (!type) {
        if (prec < 0) fmt_double_repr(buf, mag);
        else {
            snprintf(buf, sizeof buf, "%.*g", (int)(prec ? prec : 1), mag);
            if (!strpbrk(buf, ".e")) strcat(buf, ".0");
        }
    } else {
        if (prec < 0) prec = 6;
        if (prec > 300) prec = 300;
        char t = type == 'n' ? 'g' : type;
        if (type == '%') {
            snprintf(buf, sizeof buf, sp->alt ? "%#.*f%%" : "%.*f%%", (int)prec, mag * 100);
        } else {
            char fmt[16];
            snprintf(fmt, sizeof fmt, sp->alt ? "%%#.*%c" : "%%.*%c", t);
            snprintf(buf, sizeof buf, fmt, (int)prec, mag);
        }
    }
    strbuf body = STRBUF_INIT;
    if (sp->group && isfinite(x)) {
        size_t ip = strspn(buf, "0123456789");
        group_digits(&body, buf, ip, sp->group, 3);
        sb_puts(&body, buf + ip);
    } else sb_puts(&body, buf);
    char signpfx[4] = "";
    if (neg) strcpy(signpfx, "-");
    else if (sp->sign == '+' || sp->sign == ' ') signpfx[0] = sp->sign, signpfx[1] = 0;
    spec s2 = *sp;
    if (sp->zero && !sp->align) {
        s2.fill = '0';
        s2.align = '=';
    }
    emit_padded(sb, &s2, signpfx, sb_str(&body), body.len, '>');
    sb_free(&body);
}

static void format_text(strbuf *sb, const char *s, size_t n, const spec *sp) {
    size_t len = n;
    if (sp->prec >= 0) {
        size_t i = 0;
        int64_t k = 0;
        while (i < n && k < sp->prec) {
            u8_next(s, n, &i);
            k++;
        }
        len = i;
    }
    emit_padded(sb, sp, "", s, len, '<');
}

/* ---- printf-style ------------------------------------------------------------------------------ */

static bool pct_int_arg(rctx *c, val v, char conv, int64_t *out) {
    if (v.t == V_INT) *out = v.u.i;
    else if (v.t == V_BOOL) *out = v.u.b;
    else if (v.t == V_FLOAT && (conv == 'd' || conv == 'i' || conv == 'u')) {
        if (!isfinite(v.u.f)) return tpl_fail(c, TE_OVERFLOW, "cannot convert float infinity to integer");
        if (fabs(v.u.f) >= 9.2e18) return tpl_fail(c, TE_OVERFLOW, "integer result beyond 64 bits");
        *out = (int64_t)v.u.f;
    } else if (conv == 'd' || conv == 'i' || conv == 'u')
        return tpl_fail(c, TE_TYPE, "%%%c format: a real number is required, not %s", conv, v_type_name(v));
    else return tpl_fail(c, TE_TYPE, "%%%c format: an integer is required, not %s", conv, v_type_name(v));
    return true;
}

bool py_percent_format(rctx *c, vstr *fmt, val args, val *out) {
    const char *f = fmt->s;
    size_t n = fmt->len;
    bool is_tuple = v_is_tuple(args);
    vdict *dict = args.t == V_DICT ? V_D(args) : NULL;
    size_t nargs = is_tuple ? V_L(args)->n : 1, argi = 0;
    bool used_mapping = false;
    strbuf sb = STRBUF_INIT;
    size_t i = 0;
#define FAIL(...)                                                                                   \
    do {                                                                                            \
        sb_free(&sb);                                                                               \
        return tpl_fail(c, __VA_ARGS__);                                                            \
    } while (0)
#define NEXT_ARG(dst)                                                                               \
    do {                                                                                            \
        if (argi >= nargs) FAIL(TE_TYPE, "not enough arguments for format string");                \
        dst = is_tuple ? V_L(args)->items[argi] : args;                                             \
        argi++;                                                                                     \
    } while (0)
    while (i < n) {
        if (f[i] != '%') {
            const char *p = memchr(f + i, '%', n - i);
            size_t e = p ? (size_t)(p - f) : n;
            sb_append(&sb, f + i, e - i);
            i = e;
            continue;
        }
        i++;
        val v = v_undef();
        bool have_v = false;
        if (i < n && f[i] == '(') {
            if (!dict) FAIL(TE_TYPE, "format requires a mapping");
            int depth = 1;
            size_t ks = ++i;
            while (i < n && depth) {
                if (f[i] == '(') depth++;
                else if (f[i] == ')') depth--;
                i++;
            }
            if (depth) FAIL(TE_VALUE, "incomplete format key");
            val *hit = dict_get_str(dict, f + ks, i - 1 - ks);
            if (!hit) {
                strbuf k = STRBUF_INIT;
                py_repr_string(&k, f + ks, i - 1 - ks);
                bool r = tpl_fail(c, TE_KEY, "%s", sb_str(&k));
                sb_free(&k);
                sb_free(&sb);
                return r;
            }
            v = *hit;
            have_v = true;
            used_mapping = true;
        }
        spec sp = {.width = -1, .prec = -1};
        bool left = false;
        for (; i < n; i++) {
            if (f[i] == '-') left = true;
            else if (f[i] == '+') sp.sign = '+';
            else if (f[i] == ' ') {
                if (sp.sign != '+') sp.sign = ' ';
            } else if (f[i] == '#') sp.alt = true;
            else if (f[i] == '0') sp.zero = true;
            else break;
        }
        if (i < n && f[i] == '*') {
            val w;
            NEXT_ARG(w);
            if (w.t != V_INT) FAIL(TE_TYPE, "* wants int");
            sp.width = w.u.i < 0 ? -w.u.i : w.u.i;
            if (w.u.i < 0) left = true;
            i++;
        } else if (i < n && f[i] >= '0' && f[i] <= '9') {
            sp.width = 0;
            while (i < n && f[i] >= '0' && f[i] <= '9' && sp.width < 100000000) sp.width = sp.width * 10 + (f[i++] - '0');
        }
        if (i < n && f[i] == '.') {
            i++;
            sp.prec = 0;
            if (i < n && f[i] == '*') {
                val p;
                NEXT_ARG(p);
                if (p.t != V_INT) FAIL(TE_TYPE, "* wants int");
                sp.prec = p.u.i < 0 ? 0 : p.u.i;
                i++;
            } else
                while (i < n && f[i] >= '0' && f[i] <= '9' && sp.prec < 100000000) sp.prec = sp.prec * 10 + (f[i++] - '0');
        }
        while (i < n && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L')) i++;
        if (i >= n) FAIL(TE_VALUE, "incomplete format");
        if (sp.width > (int64_t)c->lim.max_output) FAIL(TE_LIMIT, "format width too large");
        char conv = f[i++];
        if (conv == '%') {
            sb_putc(&sb, '%');
            continue;
        }
        if (!have_v) NEXT_ARG(v);
        if (left) sp.align = '<', sp.zero = false;
        switch (conv) {
        case 's':
        case 'r':
        case 'a': {
            strbuf t = STRBUF_INIT;
            bool ok = conv == 's' ? py_str(c, &t, v) : py_repr(c, &t, v);
            if (!ok) {
                sb_free(&t);
                sb_free(&sb);
                return false;
            }
            spec ts = sp;
            ts.align = left ? '<' : '>';
            format_text(&sb, sb_str(&t), t.len, &ts);
            sb_free(&t);
            break;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            int64_t x = 0;
            if (!pct_int_arg(c, v, conv, &x)) {
                sb_free(&sb);
                return false;
            }
            spec is = sp;
            is.type = (conv == 'i' || conv == 'u') ? 'd' : conv;
            if (!left && !sp.zero) is.align = '>';
            if (sp.prec > 0) { /* precision: minimum digits */
                char digits[72];
                uint64_t mag = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
                uint_digits(digits, mag, is.type == 'o' ? 8 : (is.type == 'x' || is.type == 'X') ? 16 : 10, is.type == 'X');
                strbuf body = STRBUF_INIT;
                for (int64_t z = (int64_t)strlen(digits); z < sp.prec; z++) sb_putc(&body, '0');
                sb_puts(&body, digits);
                char sp_[8] = "";
                if (x < 0) strcpy(sp_, "-");
                else if (sp.sign) sp_[0] = sp.sign, sp_[1] = 0;
                if (sp.alt && is.type != 'd') strcat(sp_, is.type == 'o' ? "0o" : is.type == 'x' ? "0x" : "0X");
                if (sp.zero && !left) is.fill = '0', is.align = '=';
                emit_padded(&sb, &is, sp_, sb_str(&body), body.len, '>');
                sb_free(&body);
            } else format_int(&sb, x, &is);
            break;
        }
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G': {
            double x;
            if (v.t == V_FLOAT) x = v.u.f;
            else if (v.t == V_INT) x = (double)v.u.i;
            else if (v.t == V_BOOL) x = v.u.b;
            else FAIL(TE_TYPE, "must be real number, not %s", v_type_name(v));
            spec fs = sp;
            fs.type = conv;
            if (fs.prec < 0) fs.prec = 6;
            if (!left && !sp.zero) fs.align = '>';
            format_float(&sb, x, &fs);
            break;
        }
        case 'c': {
            char ch[8];
            size_t cl;
            if (v.t == V_INT && v.u.i >= 0 && v.u.i <= 0x10FFFF) {
                strbuf t = STRBUF_INIT;
                u8_put(&t, (uint32_t)v.u.i);
                cl = t.len < sizeof ch ? t.len : 0;
                memcpy(ch, sb_str(&t), cl);
                sb_free(&t);
            } else if (v.t == V_STR && str_ncp(V_S(v)) == 1 && V_S(v)->len < sizeof ch) {
                cl = V_S(v)->len;
                memcpy(ch, V_S(v)->s, cl);
            } else FAIL(TE_TYPE, "%%c requires int or char");
            spec ts = sp;
            ts.align = left ? '<' : '>';
            ts.prec = -1;
            format_text(&sb, ch, cl, &ts);
            break;
        }
        default:
            FAIL(TE_VALUE, "unsupported format character '%c' (0x%x) at index %zu", conv, (unsigned char)conv,
                 ncp(f, i - 1));
        }
        if (sb.len > c->lim.max_output) FAIL(TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    }
    if (!used_mapping && !dict && argi < nargs && (is_tuple || argi == 0))
        FAIL(TE_TYPE, "not all arguments converted during string formatting");
#undef NEXT_ARG
#undef FAIL
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

/* ---- str.format ---------------------------------------------------------------------------------- */

static bool parse_spec(rctx *c, const char *s, size_t n, spec *sp) {
    memset(sp, 0, sizeof *sp);
    sp->width = sp->prec = -1;
    size_t i = 0;
    if (n) {
        size_t k = 0;
        uint32_t first = u8_next(s, n, &k);
        if (k < n && (s[k] == '<' || s[k] == '>' || s[k] == '^' || s[k] == '=')) {
            sp->fill = first;
            sp->align = s[k];
            i = k + 1;
        } else if (s[0] == '<' || s[0] == '>' || s[0] == '^' || s[0] == '=') {
            sp->align = s[0];
            i = 1;
        }
    }
    if (i < n && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) sp->sign = s[i++];
    if (i < n && s[i] == 'z') i++;
    if (i < n && s[i] == '#') sp->alt = true, i++;
    if (i < n && s[i] == '0') sp->zero = true, i++;
    if (i < n && s[i] >= '0' && s[i] <= '9') {
        sp->width = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && sp->width < 100000000) sp->width = sp->width * 10 + (s[i++] - '0');
    }
    if (i < n && (s[i] == ',' || s[i] == '_')) sp->group = s[i++];
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return tpl_fail(c, TE_VALUE, "Format specifier missing precision");
        sp->prec = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && sp->prec < 100000000) sp->prec = sp->prec * 10 + (s[i++] - '0');
    }
    if (i < n) sp->type = s[i++];
    if (i < n) return tpl_fail(c, TE_VALUE, "Invalid format specifier");
    if (sp->width > (int64_t)c->lim.max_output) return tpl_fail(c, TE_LIMIT, "format width too large");
    return true;
}

/* format(v, spec) for the builtin types */
static bool format_value(rctx *c, strbuf *sb, val v, const char *s, size_t n) {
    if (n == 0) return py_str(c, sb, v);
    spec sp;
    if (!parse_spec(c, s, n, &sp)) return false;
    switch ((vtype)v.t) {
    case V_STR:
        if (sp.type && sp.type != 's') return tpl_fail(c, TE_VALUE, "Unknown format code '%c' for object of type 'str'", sp.type);
        if (sp.sign) return tpl_fail(c, TE_VALUE, "Sign not allowed in string format specifier");
        if (sp.alt) return tpl_fail(c, TE_VALUE, "Alternate form (#) not allowed in string format specifier");
        if (sp.zero && !sp.align) sp.fill = '0', sp.align = '<';
        format_text(sb, V_S(v)->s, V_S(v)->len, &sp);
        return true;
    case V_INT:
    case V_BOOL: {
        int64_t x = v.t == V_BOOL ? v.u.b : v.u.i;
        if (strchr("eEfFgG%", sp.type ? sp.type : 'd')) {
            format_float(sb, (double)x, &sp);
            return true;
        }
        if (sp.type == 'c') {
            if (x < 0 || x > 0x10FFFF) return tpl_fail(c, TE_OVERFLOW, "%%c arg not in range(0x110000)");
            strbuf t = STRBUF_INIT;
            u8_put(&t, (uint32_t)x);
            spec ts = sp;
            ts.prec = -1;
            emit_padded(sb, &ts, "", sb_str(&t), t.len, '<');
            sb_free(&t);
            return true;
        }
        if (sp.type && !strchr("bdoxXn", sp.type))
            return tpl_fail(c, TE_VALUE, "Unknown format code '%c' for object of type '%s'", sp.type, v_type_name(v));
        if (sp.prec >= 0) return tpl_fail(c, TE_VALUE, "Precision not allowed in integer format specifier");
        if (sp.type == 'n') sp.type = 'd';
        format_int(sb, x, &sp);
        return true;
    }
    case V_FLOAT:
        if (sp.type && !strchr("eEfFgGn%", sp.type))
            return tpl_fail(c, TE_VALUE, "Unknown format code '%c' for object of type 'float'", sp.type);
        format_float(sb, v.u.f, &sp);
        return true;
    default:
        return tpl_fail(c, TE_TYPE, "unsupported format string passed to %s.__format__", v_type_name(v));
    }
}

typedef struct fmt_state {
    callargs *a;
    int auto_idx; /* -1: manual numbering used */
    bool manual;
} fmt_state;

/* Resolves a field name ("", "0", "name", "0.attr", "name[key]") to a new reference. */
static bool resolve_field(rctx *c, fmt_state *st, const char *s, size_t n, val *out) {
    size_t i = 0;
    while (i < n && s[i] != '.' && s[i] != '[') i++;
    val cur;
    if (i == 0) {
        if (st->manual)
            return tpl_fail(c, TE_VALUE, "cannot switch from manual field specification to automatic field numbering");
        int k = st->auto_idx++;
        if (k >= st->a->n) return tpl_fail(c, TE_INDEX, "tuple index out of range");
        cur = v_ref(st->a->pos[k]);
    } else {
        bool digits = true;
        int64_t k = 0;
        for (size_t j = 0; j < i; j++) {
            if (s[j] < '0' || s[j] > '9' || k > 100000000) digits = false;
            else k = k * 10 + (s[j] - '0');
        }
        if (digits) {
            if (st->auto_idx > 0)
                return tpl_fail(c, TE_VALUE, "cannot switch from automatic field numbering to manual field specification");
            st->manual = true;
            if (k >= st->a->n) return tpl_fail(c, TE_INDEX, "tuple index out of range");
            cur = v_ref(st->a->pos[k]);
        } else {
            int found = -1;
            for (int j = 0; j < st->a->nk; j++)
                if (strlen(st->a->kn[j]) == i && !memcmp(st->a->kn[j], s, i)) found = j;
            if (found < 0) {
                strbuf k2 = STRBUF_INIT;
                py_repr_string(&k2, s, i);
                bool r = tpl_fail(c, TE_KEY, "%s", sb_str(&k2));
                sb_free(&k2);
                return r;
            }
            cur = v_ref(st->a->kv[found]);
        }
    }
    while (i < n) {
        val next, key;
        bool ok;
        if (s[i] == '.') {
            size_t j = ++i;
            while (i < n && s[i] != '.' && s[i] != '[') i++;
            ok = op_getattr(c, cur, s + j, i - j, &next);
        } else {
            size_t j = ++i;
            while (i < n && s[i] != ']') i++;
            if (i >= n) {
                v_unref(cur);
                return tpl_fail(c, TE_VALUE, "Missing ']' in format string");
            }
            bool digits = i > j;
            int64_t k = 0;
            for (size_t q = j; q < i; q++) {
                if (s[q] < '0' || s[q] > '9' || k > 100000000) digits = false;
                else k = k * 10 + (s[q] - '0');
            }
            key = digits ? v_int(k) : v_str(s + j, i - j);
            ok = key.t != V_UNDEF && op_getitem(c, cur, key, &next);
            v_unref(key);
            i++;
        }
        v_unref(cur);
        if (!ok) return c->err ? false : tpl_oom(c);
        cur = next;
    }
    *out = cur;
    return true;
}

static bool format_into(rctx *c, fmt_state *st, strbuf *sb, const char *f, size_t n, int depth) {
    if (depth > 2) return tpl_fail(c, TE_VALUE, "Max string recursion exceeded");
    size_t i = 0;
    while (i < n) {
        char ch = f[i];
        if (ch == '}') {
            if (i + 1 < n && f[i + 1] == '}') {
                sb_putc(sb, '}');
                i += 2;
                continue;
            }
            return tpl_fail(c, TE_VALUE, "Single '}' encountered in format string");
        }
        if (ch != '{') {
            sb_putc(sb, ch);
            i++;
            continue;
        }
        if (i + 1 < n && f[i + 1] == '{') {
            sb_putc(sb, '{');
            i += 2;
            continue;
        }
        /* a replacement field: find its matching '}' */
        size_t j = i + 1;
        int nest = 1;
        while (j < n) {
            if (f[j] == '{') nest++;
            else if (f[j] == '}' && --nest == 0) break;
            j++;
        }
        if (j >= n) return tpl_fail(c, TE_VALUE, i + 1 >= n ? "Single '{' encountered in format string" : "expected '}' before end of string");
        const char *field = f + i + 1;
        size_t flen = j - i - 1, name_end = 0;
        while (name_end < flen && field[name_end] != '!' && field[name_end] != ':') {
            if (field[name_end] == '[')
                while (name_end < flen && field[name_end] != ']') name_end++;
            if (name_end < flen) name_end++;
        }
        char conv = 0;
        size_t p = name_end;
        if (p < flen && field[p] == '!') {
            if (p + 1 >= flen) return tpl_fail(c, TE_VALUE, "end of string while looking for conversion specifier");
            conv = field[p + 1];
            p += 2;
            if (p < flen && field[p] != ':') return tpl_fail(c, TE_VALUE, "expected ':' after conversion specifier");
        }
        const char *spec_s = p < flen ? field + p + 1 : "";
        size_t spec_n = p < flen ? flen - p - 1 : 0;
        val v;
        if (!resolve_field(c, st, field, name_end, &v)) return false;
        if (conv && conv != 's' && conv != 'r' && conv != 'a') {
            v_unref(v);
            return tpl_fail(c, TE_VALUE, "Unknown conversion specifier %c", conv);
        }
        if (conv) {
            strbuf t = STRBUF_INIT;
            bool ok = conv == 's' ? py_str(c, &t, v) : py_repr(c, &t, v);
            v_unref(v);
            if (!ok) {
                sb_free(&t);
                return false;
            }
            v = v_str_take(&t);
            sb_free(&t);
            if (v.t != V_STR) return tpl_oom(c);
        }
        strbuf sp = STRBUF_INIT;
        bool ok = format_into(c, st, &sp, spec_s, spec_n, depth + 1) &&
                  format_value(c, sb, v, sb_str(&sp), sp.len);
        sb_free(&sp);
        v_unref(v);
        if (!ok) return false;
        if (sb->len > c->lim.max_output)
            return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
        i = j + 1;
    }
    return true;
}

bool py_str_format(rctx *c, vstr *fmt, callargs *a, val *out) {
    fmt_state st = {.a = a};
    strbuf sb = STRBUF_INIT;
    if (!format_into(c, &st, &sb, fmt->s, fmt->len, 0)) {
        sb_free(&sb);
        return false;
    }
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}
