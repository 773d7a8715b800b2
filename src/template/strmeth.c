/* strmeth.c: Python's str methods on UTF-8 strings, counting in code points. */
#include "template/strmeth.h"

#include <stdlib.h>
#include <string.h>

#include "template/pystr.h"

static const char *const g_names[] = {
    "upper",      "lower",      "title",      "capitalize", "swapcase",  "casefold",   "strip",
    "lstrip",     "rstrip",     "split",      "rsplit",     "splitlines", "startswith", "endswith",
    "replace",    "find",       "rfind",      "index",      "rindex",    "count",      "format",
    "join",       "center",     "ljust",      "rjust",      "zfill",     "partition",  "rpartition",
    "removeprefix", "removesuffix", "isdigit", "isalpha",   "isalnum",   "isspace",    "isupper",
    "islower",    "isnumeric",  "isdecimal",  "istitle",    NULL};
enum {
    M_UPPER, M_LOWER, M_TITLE, M_CAPITALIZE, M_SWAPCASE, M_CASEFOLD, M_STRIP, M_LSTRIP, M_RSTRIP,
    M_SPLIT, M_RSPLIT, M_SPLITLINES, M_STARTSWITH, M_ENDSWITH, M_REPLACE, M_FIND, M_RFIND, M_INDEX,
    M_RINDEX, M_COUNT, M_FORMAT, M_JOIN, M_CENTER, M_LJUST, M_RJUST, M_ZFILL, M_PARTITION,
    M_RPARTITION, M_REMOVEPREFIX, M_REMOVESUFFIX, M_ISDIGIT, M_ISALPHA, M_ISALNUM, M_ISSPACE,
    M_ISUPPER, M_ISLOWER, M_ISNUMERIC, M_ISDECIMAL, M_ISTITLE,
};

int strmeth_lookup(const char *name, size_t n) {
    for (int i = 0; g_names[i]; i++)
        if (strlen(g_names[i]) == n && !memcmp(g_names[i], name, n)) return i;
    return -1;
}

const char *strmeth_name(int id) { return g_names[id]; }

static bool ret_str(rctx *c, strbuf *sb, val *out) {
    if (c->lim.max_output && sb->len > c->lim.max_output) {
        sb_free(sb);
        return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    }
    *out = v_str_take(sb);
    sb_free(sb);
    return out->t == V_STR || tpl_oom(c);
}

/* ---- helpers shared with filters ----------------------------------------------------------- */

static bool in_chars(vstr *chars, uint32_t cp) {
    if (!chars) return py_isspace(cp);
    size_t i = 0;
    while (i < chars->len)
        if (u8_next(chars->s, chars->len, &i) == cp) return true;
    return false;
}

bool str_strip(rctx *c, vstr *s, vstr *chars, int which, val *out) {
    size_t lo = 0, hi = s->len;
    if (which != 2)
        while (lo < hi) {
            size_t k = lo;
            if (!in_chars(chars, u8_next(s->s, hi, &k))) break;
            lo = k;
        }
    if (which != 1)
        while (hi > lo) {
            size_t p = u8_prev(s->s, hi), k = p;
            if (!in_chars(chars, u8_next(s->s, hi, &k))) break;
            hi = p;
        }
    *out = v_str(s->s + lo, hi - lo);
    return out->t == V_STR || tpl_oom(c);
}

bool str_replace(rctx *c, vstr *s, vstr *old, vstr *rep, int64_t count, val *out) {
    strbuf sb = STRBUF_INIT;
    if (count < 0) count = INT64_MAX;
    if (old->len == 0) {
        size_t i = 0;
        int64_t done = 0;
        if (done < count) {
            sb_append(&sb, rep->s, rep->len);
            done++;
        }
        while (i < s->len) {
            size_t st = i;
            u8_next(s->s, s->len, &i);
            sb_append(&sb, s->s + st, i - st);
            if (done < count) {
                sb_append(&sb, rep->s, rep->len);
                done++;
            }
            if (sb.len > c->lim.max_output) break;
        }
        return ret_str(c, &sb, out);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i <= s->len && done < count) {
        const char *p = memmem(s->s + i, s->len - i, old->s, old->len);
        if (!p) break;
        size_t at = (size_t)(p - s->s);
        sb_append(&sb, s->s + i, at - i);
        sb_append(&sb, rep->s, rep->len);
        i = at + old->len;
        done++;
        if (sb.len > c->lim.max_output) break;
    }
    sb_append(&sb, s->s + i, s->len - i);
    if (!STEP(c, sb.len / 64)) {
        sb_free(&sb);
        return false;
    }
    return ret_str(c, &sb, out);
}

bool str_case(rctx *c, vstr *s, int mode, val *out) {
    strbuf sb = STRBUF_INIT;
    size_t i = 0;
    bool prev_cased = false, first = true;
    while (i < s->len) {
        uint32_t cp = u8_next(s->s, s->len, &i);
        switch (mode) {
        case 0: py_upper_cp(&sb, cp); break;
        case 1: py_lower_cp(&sb, cp); break;
        case 2:
            if (prev_cased) py_lower_cp(&sb, cp);
            else py_title_cp(&sb, cp);
            prev_cased = py_iscased(cp);
            break;
        case 3:
            if (first) py_title_cp(&sb, cp);
            else py_lower_cp(&sb, cp);
            break;
        default:
            if (py_isupper_cp(cp)) py_lower_cp(&sb, cp);
            else if (py_islower_cp(cp)) py_upper_cp(&sb, cp);
            else u8_put(&sb, cp);
        }
        first = false;
    }
    return ret_str(c, &sb, out);
}

static void put_fill(strbuf *sb, uint32_t fill, int64_t n) {
    for (int64_t i = 0; i < n; i++) u8_put(sb, fill);
}

static bool check_width(rctx *c, int64_t width) {
    if (width > (int64_t)c->lim.max_output)
        return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    return true;
}

bool str_center(rctx *c, vstr *s, int64_t width, uint32_t fill, val *out) {
    int64_t n = (int64_t)str_ncp(s);
    if (width <= n) {
        *out = v_ref(v_obj(V_STR, s));
        return true;
    }
    if (!check_width(c, width)) return false;
    int64_t marg = width - n, left = marg / 2 + (marg & width & 1);
    strbuf sb = STRBUF_INIT;
    put_fill(&sb, fill, left);
    sb_append(&sb, s->s, s->len);
    put_fill(&sb, fill, marg - left);
    return ret_str(c, &sb, out);
}

static bool is_linebreak(uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
}

bool str_splitlines(rctx *c, vstr *s, bool keepends, vlist **out) {
    vlist *l = list_new(0);
    if (!l) return tpl_oom(c);
    size_t i = 0, start = 0;
    while (i < s->len) {
        size_t at = i;
        uint32_t cp = u8_next(s->s, s->len, &i);
        if (!is_linebreak(cp)) continue;
        if (cp == '\r' && i < s->len && s->s[i] == '\n') i++;
        val line = v_str(s->s + start, (keepends ? i : at) - start);
        if (line.t != V_STR || !list_push(l, line)) {
            obj_unref(l);
            return tpl_oom(c);
        }
        start = i;
    }
    if (start < s->len) {
        val line = v_str(s->s + start, s->len - start);
        if (line.t != V_STR || !list_push(l, line)) {
            obj_unref(l);
            return tpl_oom(c);
        }
    }
    *out = l;
    return true;
}

/* ---- methods ----------------------------------------------------------------------------------- */

static bool want_str(rctx *c, val v, const char *what) {
    if (v.t == V_STR) return true;
    return tpl_fail(c, TE_TYPE, "%s must be str, not %s", what, v_type_name(v));
}

static bool get_int(rctx *c, val v, int64_t *out) {
    if (v.t == V_INT) *out = v.u.i;
    else if (v.t == V_BOOL) *out = v.u.b;
    else return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(v));
    return true;
}

/* start/end arguments (code points, slice semantics) as byte offsets into s */
static bool span(rctx *c, vstr *s, const val *args, const bool *given, size_t *lo, size_t *hi) {
    int64_t n = (int64_t)str_ncp(s), st = 0, en = n;
    if (given[0] && args[0].t != V_NONE && !get_int(c, args[0], &st)) return false;
    if (given[1] && args[1].t != V_NONE && !get_int(c, args[1], &en)) return false;
    if (st < 0) st = st + n < 0 ? 0 : st + n;
    if (en < 0) en = en + n < 0 ? 0 : en + n;
    if (st > n) st = n + 1; /* beyond the end: nothing matches, not even "" */
    if (en > n) en = n;
    if (st > n) {
        *lo = s->len + 1;
        *hi = s->len;
        return true;
    }
    *lo = str_cp_offset(s, (size_t)st);
    *hi = en < st ? *lo : str_cp_offset(s, (size_t)en);
    return true;
}

static size_t cp_index(vstr *s, size_t byte) {
    if (str_ascii(s)) return byte;
    size_t n = 0;
    for (size_t i = 0; i < byte; i++) n += ((unsigned char)s->s[i] & 0xC0) != 0x80;
    return n;
}

static bool do_split(rctx *c, vstr *s, val sepv, int64_t maxsplit, bool right, val *out) {
    vlist *l = list_new(0);
    if (!l) return tpl_oom(c);
    if (maxsplit < 0) maxsplit = INT64_MAX;
    bool ok = true;
    if (sepv.t == V_NONE || sepv.t == V_UNDEF) {
        /* whitespace runs; leading and trailing whitespace ignored */
        vlist *parts = l;
        if (!right) {
            size_t i = 0;
            int64_t done = 0;
            while (ok) {
                while (i < s->len) {
                    size_t k = i;
                    if (!py_isspace(u8_next(s->s, s->len, &k))) break;
                    i = k;
                }
                if (i >= s->len) break;
                size_t st = i;
                if (done == maxsplit) {
                    size_t e = s->len;
                    while (e > st) {
                        size_t p = u8_prev(s->s, e), k = p;
                        if (!py_isspace(u8_next(s->s, e, &k))) break;
                        e = p;
                    }
                    ok = list_push(parts, v_str(s->s + st, e - st));
                    break;
                }
                while (i < s->len) {
                    size_t k = i;
                    if (py_isspace(u8_next(s->s, s->len, &k))) break;
                    i = k;
                }
                ok = list_push(parts, v_str(s->s + st, i - st));
                done++;
            }
        } else {
            size_t i = s->len;
            int64_t done = 0;
            while (ok) {
                while (i > 0) {
                    size_t p = u8_prev(s->s, i), k = p;
                    if (!py_isspace(u8_next(s->s, i, &k))) break;
                    i = p;
                }
                if (i == 0) break;
                size_t e = i;
                if (done == maxsplit) {
                    size_t st = 0;
                    while (st < e) {
                        size_t k = st;
                        if (!py_isspace(u8_next(s->s, e, &k))) break;
                        st = k;
                    }
                    ok = list_push(parts, v_str(s->s + st, e - st));
                    break;
                }
                while (i > 0) {
                    size_t p = u8_prev(s->s, i), k = p;
                    if (py_isspace(u8_next(s->s, i, &k))) break;
                    i = p;
                }
                ok = list_push(parts, v_str(s->s + i, e - i));
                done++;
            }
            for (size_t a = 0, b = l->n ? l->n - 1 : 0; a < b; a++, b--) {
                val t = l->items[a];
                l->items[a] = l->items[b];
                l->items[b] = t;
            }
        }
    } else {
        if (sepv.t != V_STR) {
            obj_unref(l);
            return tpl_fail(c, TE_TYPE, "must be str or None, not %s", v_type_name(sepv));
        }
        vstr *sep = V_S(sepv);
        if (!sep->len) {
            obj_unref(l);
            return tpl_fail(c, TE_VALUE, "empty separator");
        }
        int64_t done = 0;
        if (!right) {
            size_t i = 0;
            while (ok && done < maxsplit) {
                const char *p = memmem(s->s + i, s->len - i, sep->s, sep->len);
                if (!p) break;
                size_t at = (size_t)(p - s->s);
                ok = list_push(l, v_str(s->s + i, at - i));
                i = at + sep->len;
                done++;
            }
            if (ok) ok = list_push(l, v_str(s->s + i, s->len - i));
        } else {
            size_t e = s->len;
            while (ok && done < maxsplit) {
                size_t at = SIZE_MAX;
                for (size_t k = e >= sep->len ? e - sep->len + 1 : 0; k-- > 0;)
                    if (!memcmp(s->s + k, sep->s, sep->len)) {
                        at = k;
                        break;
                    }
                if (at == SIZE_MAX) break;
                ok = list_push(l, v_str(s->s + at + sep->len, e - at - sep->len));
                e = at;
                done++;
            }
            if (ok) ok = list_push(l, v_str(s->s, e));
            for (size_t a = 0, b = l->n ? l->n - 1 : 0; a < b; a++, b--) {
                val t = l->items[a];
                l->items[a] = l->items[b];
                l->items[b] = t;
            }
        }
    }
    for (size_t i = 0; ok && i < l->n; i++)
        if (l->items[i].t != V_STR) ok = false;
    if (!ok) {
        obj_unref(l);
        return tpl_oom(c);
    }
    *out = v_obj(V_LIST, l);
    return out_step(c, out, l->n);
}

static bool affix(rctx *c, vstr *s, val *args, bool *given, bool end, const char *fname, val *out) {
    size_t lo, hi;
    if (!span(c, s, args + 1, given + 1, &lo, &hi)) return false;
    val p = args[0];
    size_t np = 1;
    val *cands = &p;
    if (p.t == V_LIST && v_is_tuple(p)) {
        cands = V_L(p)->items;
        np = V_L(p)->n;
    } else if (p.t != V_STR) {
        return tpl_fail(c, TE_TYPE, "%s first arg must be str or a tuple of str, not %s", fname, v_type_name(p));
    }
    bool r = false;
    for (size_t i = 0; i < np; i++) {
        if (cands[i].t != V_STR)
            return tpl_fail(c, TE_TYPE, "tuple for %s must only contain str, not %s", fname, v_type_name(cands[i]));
        vstr *x = V_S(cands[i]);
        if (lo > s->len) continue;
        if (hi - lo >= x->len && !memcmp(s->s + (end ? hi - x->len : lo), x->s, x->len)) r = true;
    }
    *out = v_bool(r);
    return true;
}

static bool find(rctx *c, vstr *s, val *args, bool *given, bool right, int64_t *res) {
    if (!want_str(c, args[0], "argument")) return false;
    size_t lo, hi;
    if (!span(c, s, args + 1, given + 1, &lo, &hi)) return false;
    vstr *x = V_S(args[0]);
    *res = -1;
    if (lo > s->len || hi < lo || hi - lo < x->len) return true;
    if (!right) {
        const char *p = x->len ? memmem(s->s + lo, hi - lo, x->s, x->len) : s->s + lo;
        if (p) *res = (int64_t)cp_index(s, (size_t)(p - s->s));
    } else {
        for (size_t k = hi - x->len + 1; k-- > lo;)
            if (!memcmp(s->s + k, x->s, x->len)) {
                *res = (int64_t)cp_index(s, k);
                break;
            }
    }
    return true;
}

static bool classify(vstr *s, int id) {
    if (!s->len) return false;
    size_t i = 0;
    bool cased = false, prev_cased = false, title_ok = true;
    while (i < s->len) {
        uint32_t cp = u8_next(s->s, s->len, &i);
        switch (id) {
        case M_ISDIGIT:
        case M_ISNUMERIC:
        case M_ISDECIMAL:
            if (!py_isdigit(cp)) return false;
            break;
        case M_ISALPHA:
            if (!py_isalpha(cp)) return false;
            break;
        case M_ISALNUM:
            if (!py_isalnum(cp)) return false;
            break;
        case M_ISSPACE:
            if (!py_isspace(cp)) return false;
            break;
        case M_ISUPPER:
            if (py_islower_cp(cp)) return false;
            if (py_isupper_cp(cp)) cased = true;
            break;
        case M_ISLOWER:
            if (py_isupper_cp(cp)) return false;
            if (py_islower_cp(cp)) cased = true;
            break;
        case M_ISTITLE:
            if (py_isupper_cp(cp)) {
                if (prev_cased) title_ok = false;
                prev_cased = cased = true;
            } else if (py_islower_cp(cp)) {
                if (!prev_cased) title_ok = false;
                prev_cased = cased = true;
            } else prev_cased = false;
            break;
        }
    }
    if (id == M_ISUPPER || id == M_ISLOWER) return cased;
    if (id == M_ISTITLE) return title_ok && cased;
    return true;
}

static bool join(rctx *c, vstr *s, val it, val *out) {
    vlist *items;
    if (!op_iterate(c, it, &items)) return false;
    strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < items->n; i++) {
        val x = items->items[i];
        if (x.t != V_STR) {
            sb_free(&sb);
            obj_unref(items);
            return tpl_fail(c, TE_TYPE, "sequence item %zu: expected str instance, %s found", i, v_type_name(x));
        }
        if (i) sb_append(&sb, s->s, s->len);
        sb_append(&sb, V_S(x)->s, V_S(x)->len);
        if (sb.len > c->lim.max_output) break;
    }
    obj_unref(items);
    return ret_str(c, &sb, out);
}

static bool pad(rctx *c, vstr *s, int64_t width, val fillv, int mode, val *out) {
    uint32_t fill = ' ';
    if (fillv.t != V_UNDEF) {
        if (fillv.t != V_STR || str_ncp(V_S(fillv)) != 1)
            return tpl_fail(c, TE_TYPE, "The fill character must be exactly one character long");
        size_t k = 0;
        fill = u8_next(V_S(fillv)->s, V_S(fillv)->len, &k);
    }
    if (mode == 0) return str_center(c, s, width, fill, out);
    int64_t n = (int64_t)str_ncp(s);
    if (width <= n) {
        *out = v_ref(v_obj(V_STR, s));
        return true;
    }
    if (!check_width(c, width)) return false;
    strbuf sb = STRBUF_INIT;
    if (mode == 1) {
        sb_append(&sb, s->s, s->len);
        put_fill(&sb, fill, width - n);
    } else if (mode == 2) {
        put_fill(&sb, fill, width - n);
        sb_append(&sb, s->s, s->len);
    } else { /* zfill */
        size_t i = 0;
        if (s->len && (s->s[0] == '+' || s->s[0] == '-')) sb_putc(&sb, s->s[i++]);
        put_fill(&sb, '0', width - n);
        sb_append(&sb, s->s + i, s->len - i);
    }
    return ret_str(c, &sb, out);
}

static bool partition(rctx *c, vstr *s, val sepv, bool right, val *out) {
    if (!want_str(c, sepv, "argument")) return false;
    vstr *sep = V_S(sepv);
    if (!sep->len) return tpl_fail(c, TE_VALUE, "empty separator");
    size_t at = SIZE_MAX;
    if (!right) {
        const char *p = memmem(s->s, s->len, sep->s, sep->len);
        if (p) at = (size_t)(p - s->s);
    } else if (s->len >= sep->len) {
        for (size_t k = s->len - sep->len + 1; k-- > 0;)
            if (!memcmp(s->s + k, sep->s, sep->len)) {
                at = k;
                break;
            }
    }
    vlist *t = list_new(3);
    if (!t) return tpl_oom(c);
    t->h.flags |= OBJ_TUPLE;
    if (at == SIZE_MAX) {
        val whole = v_ref(v_obj(V_STR, s)), e1 = v_str("", 0), e2 = v_str("", 0);
        if (right) {
            t->items[0] = e1;
            t->items[1] = e2;
            t->items[2] = whole;
        } else {
            t->items[0] = whole;
            t->items[1] = e1;
            t->items[2] = e2;
        }
    } else {
        t->items[0] = v_str(s->s, at);
        t->items[1] = v_ref(sepv);
        t->items[2] = v_str(s->s + at + sep->len, s->len - at - sep->len);
    }
    t->n = 3;
    *out = v_obj(V_LIST, t);
    for (int i = 0; i < 3; i++)
        if (t->items[i].t != V_STR) return tpl_oom(c);
    return true;
}

bool strmeth_call(rctx *c, int id, vstr *s, callargs *a, val *out) {
    static const char *const p_chars[] = {"chars"};
    static const char *const p_split[] = {"sep", "maxsplit"};
    static const char *const p_affix[] = {"prefix", "start", "end"};
    static const char *const p_find[] = {"sub", "start", "end"};
    static const char *const p_replace[] = {"old", "new", "count"};
    static const char *const p_width[] = {"width", "fillchar"};
    static const char *const p_keep[] = {"keepends"};
    static const char *const p_one[] = {"arg"};
    const char *fname = g_names[id];
    val args[3];
    bool given[3];
    val self = v_obj(V_STR, s);
    switch (id) {
    case M_UPPER:
    case M_LOWER:
    case M_TITLE:
    case M_CAPITALIZE:
    case M_SWAPCASE:
    case M_CASEFOLD:
        if (!args_bind(c, a, fname, 0, 0, NULL, 0, args, given)) return false;
        return str_case(c, s, id == M_UPPER ? 0 : id == M_LOWER || id == M_CASEFOLD ? 1 : id == M_TITLE ? 2 : id == M_CAPITALIZE ? 3 : 4, out);
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
        if (!args_bind(c, a, fname, 0, 1, p_chars, 0, args, given)) return false;
        if (given[0] && args[0].t != V_NONE && args[0].t != V_STR)
            return tpl_fail(c, TE_TYPE, "%s arg must be None or str", fname);
        return str_strip(c, s, given[0] && args[0].t == V_STR ? V_S(args[0]) : NULL,
                         id == M_STRIP ? 0 : id == M_LSTRIP ? 1 : 2, out);
    case M_SPLIT:
    case M_RSPLIT: {
        if (!args_bind(c, a, fname, 0, 2, p_split, 0, args, given)) return false;
        int64_t maxsplit = -1;
        if (given[1] && !get_int(c, args[1], &maxsplit)) return false;
        return do_split(c, s, given[0] ? args[0] : v_none(), maxsplit, id == M_RSPLIT, out);
    }
    case M_SPLITLINES: {
        if (!args_bind(c, a, fname, 0, 1, p_keep, 0, args, given)) return false;
        vlist *l;
        if (!str_splitlines(c, s, given[0] && v_truthy(args[0]), &l)) return false;
        *out = v_obj(V_LIST, l);
        return true;
    }
    case M_STARTSWITH:
    case M_ENDSWITH:
        if (!args_bind(c, a, fname, 0, 3, p_affix, 1, args, given)) return false;
        return affix(c, s, args, given, id == M_ENDSWITH, fname, out);
    case M_REPLACE: {
        if (!args_bind(c, a, fname, 0, 3, p_replace, 2, args, given)) return false;
        if (args[0].t != V_STR) return tpl_fail(c, TE_TYPE, "replace() argument 1 must be str, not %s", v_type_name(args[0]));
        if (args[1].t != V_STR) return tpl_fail(c, TE_TYPE, "replace() argument 2 must be str, not %s", v_type_name(args[1]));
        int64_t count = -1;
        if (given[2] && !get_int(c, args[2], &count)) return false;
        return str_replace(c, s, V_S(args[0]), V_S(args[1]), count, out);
    }
    case M_FIND:
    case M_RFIND:
    case M_INDEX:
    case M_RINDEX: {
        if (!args_bind(c, a, fname, 0, 3, p_find, 1, args, given)) return false;
        int64_t r;
        if (!find(c, s, args, given, id == M_RFIND || id == M_RINDEX, &r)) return false;
        if (r < 0 && (id == M_INDEX || id == M_RINDEX)) return tpl_fail(c, TE_VALUE, "substring not found");
        *out = v_int(r);
        return true;
    }
    case M_COUNT: {
        if (!args_bind(c, a, fname, 0, 3, p_find, 1, args, given)) return false;
        if (!want_str(c, args[0], "argument")) return false;
        size_t lo, hi;
        if (!span(c, s, args + 1, given + 1, &lo, &hi)) return false;
        vstr *x = V_S(args[0]);
        int64_t n = 0;
        if (lo <= s->len) {
            if (!x->len) n = (int64_t)(cp_index(s, hi) - cp_index(s, lo)) + 1;
            else
                for (size_t i = lo; i + x->len <= hi;) {
                    const char *p = memmem(s->s + i, hi - i, x->s, x->len);
                    if (!p) break;
                    n++;
                    i = (size_t)(p - s->s) + x->len;
                }
        }
        *out = v_int(n);
        return true;
    }
    case M_FORMAT: return py_str_format(c, s, a, out);
    case M_JOIN:
        if (!args_bind(c, a, fname, 0, 1, p_one, 1, args, given)) return false;
        return join(c, s, args[0], out);
    case M_CENTER:
    case M_LJUST:
    case M_RJUST:
    case M_ZFILL: {
        if (!args_bind(c, a, fname, 0, id == M_ZFILL ? 1 : 2, p_width, 1, args, given)) return false;
        int64_t w = 0;
        if (!get_int(c, args[0], &w)) return false;
        return pad(c, s, w, id != M_ZFILL && given[1] ? args[1] : v_undef(),
                   id == M_CENTER ? 0 : id == M_LJUST ? 1 : id == M_RJUST ? 2 : 3, out);
    }
    case M_PARTITION:
    case M_RPARTITION:
        if (!args_bind(c, a, fname, 0, 1, p_one, 1, args, given)) return false;
        return partition(c, s, args[0], id == M_RPARTITION, out);
    case M_REMOVEPREFIX:
    case M_REMOVESUFFIX: {
        if (!args_bind(c, a, fname, 0, 1, p_one, 1, args, given)) return false;
        if (args[0].t != V_STR)
            return tpl_fail(c, TE_TYPE, "%s() argument must be str, not %s", fname, v_type_name(args[0]));
        vstr *x = V_S(args[0]);
        if (x->len <= s->len && !memcmp(id == M_REMOVEPREFIX ? s->s : s->s + s->len - x->len, x->s, x->len)) {
            *out = id == M_REMOVEPREFIX ? v_str(s->s + x->len, s->len - x->len) : v_str(s->s, s->len - x->len);
            return out->t == V_STR || tpl_oom(c);
        }
        *out = v_ref(self);
        return true;
    }
    default:
        if (!args_bind(c, a, fname, 0, 0, NULL, 0, args, given)) return false;
        *out = v_bool(classify(s, id));
        return true;
    }
}
