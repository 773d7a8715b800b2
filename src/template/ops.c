/* ops.c: Python's operators on template values (arithmetic, comparison, `in`), Jinja2's
 * sandboxed attribute and item lookup, slicing, len(), iteration and calls, with the
 * messages of the Python exceptions they raise. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/eval.h"
#include "template/pystr.h"

/* ---- undefined values ------------------------------------------------------------------- */

val undef_attr(val obj, const char *name, size_t n) {
    val key = v_str(name, n);
    if (key.t != V_STR) return v_undef();
    vundef *u = undef_new(UNDEF_ATTR, v_objtype_repr(obj), key, NULL);
    return u ? v_obj(V_UNDEF, u) : v_undef();
}

val undef_element(val obj, val key) {
    vundef *u = undef_new(UNDEF_ELEMENT, v_objtype_repr(obj), v_ref(key), NULL);
    return u ? v_obj(V_UNDEF, u) : v_undef();
}

val undef_hint(const char *msg) {
    vstr *h = str_new(msg, strlen(msg));
    if (!h) return v_undef();
    vundef *u = undef_new(UNDEF_HINT, NULL, v_undef(), h);
    return u ? v_obj(V_UNDEF, u) : v_undef();
}

static val undef_unsafe(val obj, const char *name) {
    char msg[300];
    snprintf(msg, sizeof msg, "access to attribute '%.200s' of '%s' object is unsafe.", name, v_type_name(obj));
    vstr *h = str_new(msg, strlen(msg));
    if (!h) return v_undef();
    vundef *u = undef_new(UNDEF_UNSAFE, NULL, v_undef(), h);
    return u ? v_obj(V_UNDEF, u) : v_undef();
}

/* ---- arithmetic -------------------------------------------------------------------------- */

static bool is_intlike(val v) { return v.t == V_INT || v.t == V_BOOL; }
static bool is_number(val v) { return v.t == V_INT || v.t == V_BOOL || v.t == V_FLOAT; }
static int64_t as_int(val v) { return v.t == V_BOOL ? (int64_t)v.u.b : v.u.i; }
static double as_double(val v) { return v.t == V_FLOAT ? v.u.f : (double)as_int(v); }

static const char *op_symbol(int op) {
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "** or pow()";
    default: return "?";
    }
}

static bool unsupported(rctx *c, int op, val a, val b) {
    return tpl_fail(c, TE_TYPE, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(op), v_type_name(a),
                    v_type_name(b));
}

static bool int_overflow(rctx *c) {
    return tpl_fail(c, TE_OVERFLOW, "integer result beyond 64 bits (Python's big integers are not supported)");
}

/* CPython's float divmod */
static void float_divmod(double vx, double wx, double *floordiv, double *mod) {
    double div;
    *mod = fmod(vx, wx);
    div = (vx - *mod) / wx;
    if (*mod) {
        if ((wx < 0) != (*mod < 0)) {
            *mod += wx;
            div -= 1.0;
        }
    } else {
        *mod = copysign(0.0, wx);
    }
    if (div) {
        *floordiv = floor(div);
        if (div - *floordiv > 0.5) *floordiv += 1.0;
    } else {
        *floordiv = copysign(0.0, vx / wx);
    }
}

static bool repeat_seq(rctx *c, val seq, int64_t times, val *out) {
    if (times < 0) times = 0;
    if (seq.t == V_STR) {
        vstr *s = V_S(seq);
        if (s->len && (uint64_t)times > c->lim.max_output / s->len)
            return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
        vstr *r = str_new_uninit(s->len * (size_t)times);
        if (!r) return tpl_oom(c);
        for (int64_t i = 0; i < times; i++) memcpy(r->s + (size_t)i * s->len, s->s, s->len);
        r->h.flags |= s->h.flags & OBJ_ASCII;
        if (s->h.flags & OBJ_ASCII) {
            r->h.flags |= OBJ_CPKNOWN;
            r->ncp = r->len;
        }
        *out = v_obj(V_STR, r);
        return out_step(c, out, r->len / 64);
    }
    vlist *l = V_L(seq);
    if (l->n && (uint64_t)times > (c->lim.max_output / 8) / l->n)
        return tpl_fail(c, TE_LIMIT, "a list would exceed the size limit");
    vlist *r = list_new(l->n * (size_t)times);
    if (!r) return tpl_oom(c);
    r->h.flags |= l->h.flags & OBJ_TUPLE;
    for (int64_t i = 0; i < times; i++)
        for (size_t j = 0; j < l->n; j++) r->items[r->n++] = v_ref(l->items[j]);
    *out = v_obj(V_LIST, r);
    return out_step(c, out, r->n);
}

static bool concat_seq(rctx *c, val a, val b, val *out) {
    if (a.t == V_STR) {
        vstr *x = V_S(a), *y = V_S(b);
        if (x->len + y->len > c->lim.max_output)
            return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
        vstr *r = str_new_uninit(x->len + y->len);
        if (!r) return tpl_oom(c);
        memcpy(r->s, x->s, x->len);
        memcpy(r->s + x->len, y->s, y->len);
        if ((x->h.flags & OBJ_ASCII) && (y->h.flags & OBJ_ASCII)) {
            r->h.flags |= OBJ_ASCII | OBJ_CPKNOWN;
            r->ncp = r->len;
        }
        *out = v_obj(V_STR, r);
        return out_step(c, out, r->len / 64);
    }
    vlist *x = V_L(a), *y = V_L(b);
    vlist *r = list_new(x->n + y->n);
    if (!r) return tpl_oom(c);
    r->h.flags |= x->h.flags & OBJ_TUPLE;
    for (size_t i = 0; i < x->n; i++) r->items[r->n++] = v_ref(x->items[i]);
    for (size_t i = 0; i < y->n; i++) r->items[r->n++] = v_ref(y->items[i]);
    *out = v_obj(V_LIST, r);
    return out_step(c, out, r->n);
}

static bool int_pow(rctx *c, int64_t base, int64_t exp, val *out) {
    if (exp < 0) {
        if (base == 0) return tpl_fail(c, TE_ZERODIV, "0.0 cannot be raised to a negative power");
        *out = v_float(pow((double)base, (double)exp));
        return true;
    }
    int64_t r = 1;
    while (exp > 0) {
        if (exp & 1)
            if (__builtin_mul_overflow(r, base, &r)) return int_overflow(c);
        exp >>= 1;
        if (exp && __builtin_mul_overflow(base, base, &base)) return int_overflow(c);
    }
    *out = v_int(r);
    return true;
}

bool op_binary(rctx *c, int op, val a, val b, val *out) {
    if (a.t == V_UNDEF) return tpl_fail_undef(c, a);
    if (b.t == V_UNDEF) return tpl_fail_undef(c, b);
    if (is_intlike(a) && is_intlike(b)) {
        int64_t x = as_int(a), y = as_int(b), r;
        switch (op) {
        case OP_ADD:
            if (__builtin_add_overflow(x, y, &r)) return int_overflow(c);
            *out = v_int(r);
            return true;
        case OP_SUB:
            if (__builtin_sub_overflow(x, y, &r)) return int_overflow(c);
            *out = v_int(r);
            return true;
        case OP_MUL:
            if (__builtin_mul_overflow(x, y, &r)) return int_overflow(c);
            *out = v_int(r);
            return true;
        case OP_DIV:
            if (!y) return tpl_fail(c, TE_ZERODIV, "division by zero");
            *out = v_float((double)x / (double)y);
            return true;
        case OP_FLOORDIV:
        case OP_MOD: {
            if (!y) return tpl_fail(c, TE_ZERODIV, op == OP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) {
                if (op == OP_MOD) {
                    *out = v_int(0);
                    return true;
                }
                return int_overflow(c);
            }
            int64_t q = x / y, m = x % y;
            if (m && ((m < 0) != (y < 0))) {
                m += y;
                q -= 1;
            }
            *out = v_int(op == OP_MOD ? m : q);
            return true;
        }
        case OP_POW: return int_pow(c, x, y, out);
        }
    }
    if (is_number(a) && is_number(b)) {
        double x = as_double(a), y = as_double(b), r = 0;
        switch (op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        case OP_DIV:
            if (y == 0) return tpl_fail(c, TE_ZERODIV, "float division by zero");
            r = x / y;
            break;
        case OP_FLOORDIV:
        case OP_MOD: {
            if (y == 0) return tpl_fail(c, TE_ZERODIV, op == OP_MOD ? "float modulo" : "float floor division by zero");
            double q, m;
            float_divmod(x, y, &q, &m);
            r = op == OP_MOD ? m : q;
            break;
        }
        case OP_POW:
            if (x == 0 && y < 0) return tpl_fail(c, TE_ZERODIV, "0.0 cannot be raised to a negative power");
            if (x < 0 && y != floor(y) && isfinite(y))
                return tpl_fail(c, TE_UNSUPPORTED, "complex numbers are not supported");
            r = pow(x, y);
            if (isinf(r) && isfinite(x) && isfinite(y)) return tpl_fail(c, TE_OVERFLOW, "(34, 'Numerical result out of range')");
            break;
        }
        *out = v_float(r);
        return true;
    }
    switch (op) {
    case OP_ADD:
        if (a.t == V_STR && b.t == V_STR && ((a.u.o->flags | b.u.o->flags) & OBJ_MARKUP)) {
            /* Markup + str escapes the plain side and stays Markup */
            strbuf sb = STRBUF_INIT;
            for (int k = 0; k < 2; k++) {
                vstr *x = V_S(k ? b : a);
                if (x->h.flags & OBJ_MARKUP) sb_append(&sb, x->s, x->len);
                else py_html_escape(&sb, x->s, x->len);
            }
            *out = v_str_take(&sb);
            if (out->t != V_STR) return tpl_oom(c);
            out->u.o->flags |= OBJ_MARKUP;
            return true;
        }
        if (a.t == V_STR && b.t == V_STR) return concat_seq(c, a, b, out);
        if (a.t == V_LIST && b.t == V_LIST && v_is_tuple(a) == v_is_tuple(b)) return concat_seq(c, a, b, out);
        if (a.t == V_STR) return tpl_fail(c, TE_TYPE, "can only concatenate str (not \"%s\") to str", v_type_name(b));
        if (a.t == V_LIST)
            return tpl_fail(c, TE_TYPE, "can only concatenate %s (not \"%s\") to %s", v_type_name(a), v_type_name(b),
                            v_type_name(a));
        return unsupported(c, op, a, b);
    case OP_MUL:
        if ((a.t == V_STR || a.t == V_LIST) && is_intlike(b)) return repeat_seq(c, a, as_int(b), out);
        if ((b.t == V_STR || b.t == V_LIST) && is_intlike(a)) return repeat_seq(c, b, as_int(a), out);
        if (a.t == V_STR || a.t == V_LIST)
            return tpl_fail(c, TE_TYPE, "can't multiply sequence by non-int of type '%s'", v_type_name(b));
        if (b.t == V_STR || b.t == V_LIST)
            return tpl_fail(c, TE_TYPE, "can't multiply sequence by non-int of type '%s'", v_type_name(a));
        return unsupported(c, op, a, b);
    case OP_MOD:
        if (a.t == V_STR) return py_percent_format(c, V_S(a), b, out);
        return unsupported(c, op, a, b);
    default: return unsupported(c, op, a, b);
    }
}

bool op_neg(rctx *c, val a, bool neg, val *out) {
    if (a.t == V_UNDEF) return tpl_fail_undef(c, a);
    if (is_intlike(a)) {
        int64_t x = as_int(a);
        if (neg && x == INT64_MIN) return int_overflow(c);
        *out = v_int(neg ? -x : x);
        return true;
    }
    if (a.t == V_FLOAT) {
        *out = v_float(neg ? -a.u.f : a.u.f);
        return true;
    }
    return tpl_fail(c, TE_TYPE, "bad operand type for unary %s: '%s'", neg ? "-" : "+", v_type_name(a));
}

/* ---- comparison --------------------------------------------------------------------------- */

static const char *cmp_symbol(int op) {
    switch (op) {
    case OP_LT: return "<";
    case OP_LTEQ: return "<=";
    case OP_GT: return ">";
    default: return ">=";
    }
}

/* Orders a and b for op (LT/LTEQ/GT/GTEQ). */
static bool order(rctx *c, int op, val a, val b, bool *res, int depth) {
    if (a.t == V_UNDEF) return tpl_fail_undef(c, a);
    if (b.t == V_UNDEF) return tpl_fail_undef(c, b);
    if (depth > VAL_MAX_DEPTH) return tpl_fail(c, TE_RECURSION, "maximum recursion depth exceeded in comparison");
    int cmp;
    if (is_number(a) && is_number(b)) {
        if (a.t == V_FLOAT || b.t == V_FLOAT) {
            if (a.t == V_FLOAT && b.t == V_FLOAT) {
                double x = a.u.f, y = b.u.f;
                if (isnan(x) || isnan(y)) {
                    *res = false;
                    return true;
                }
                cmp = x < y ? -1 : x > y;
            } else if (a.t == V_FLOAT) {
                int k = cmp_int_float(as_int(b), a.u.f);
                if (k == 2) {
                    *res = false;
                    return true;
                }
                cmp = -k;
            } else {
                int k = cmp_int_float(as_int(a), b.u.f);
                if (k == 2) {
                    *res = false;
                    return true;
                }
                cmp = k;
            }
        } else {
            int64_t x = as_int(a), y = as_int(b);
            cmp = x < y ? -1 : x > y;
        }
    } else if (a.t == V_STR && b.t == V_STR) {
        vstr *x = V_S(a), *y = V_S(b);
        size_t n = x->len < y->len ? x->len : y->len;
        int k = memcmp(x->s, y->s, n); /* UTF-8 byte order is code point order */
        cmp = k ? (k < 0 ? -1 : 1) : (x->len < y->len ? -1 : x->len > y->len);
    } else if (a.t == V_LIST && b.t == V_LIST && v_is_tuple(a) == v_is_tuple(b)) {
        vlist *x = V_L(a), *y = V_L(b);
        size_t i = 0;
        while (i < x->n && i < y->n && v_eq(x->items[i], y->items[i])) i++;
        if (i < x->n && i < y->n) return order(c, op, x->items[i], y->items[i], res, depth + 1);
        cmp = x->n < y->n ? -1 : x->n > y->n;
    } else {
        return tpl_fail(c, TE_TYPE, "'%s' not supported between instances of '%s' and '%s'", cmp_symbol(op),
                        v_type_name(a), v_type_name(b));
    }
    switch (op) {
    case OP_LT: *res = cmp < 0; break;
    case OP_LTEQ: *res = cmp <= 0; break;
    case OP_GT: *res = cmp > 0; break;
    default: *res = cmp >= 0; break;
    }
    return true;
}

bool op_compare(rctx *c, int op, val a, val b, bool *res) {
    if (a.t == V_LIST && b.t == V_LIST && !STEP(c, (V_L(a)->n < V_L(b)->n ? V_L(a)->n : V_L(b)->n) / 8)) return false;
    switch (op) {
    case OP_EQ: *res = v_eq(a, b); return true;
    case OP_NE: *res = !v_eq(a, b); return true;
    case OP_IN: return op_contains(c, b, a, res);
    case OP_NOTIN:
        if (!op_contains(c, b, a, res)) return false;
        *res = !*res;
        return true;
    default: return order(c, op, a, b, res, 0);
    }
}

bool op_contains(rctx *c, val container, val item, bool *res) {
    *res = false;
    switch ((vtype)container.t) {
    case V_STR: {
        if (item.t != V_STR)
            return tpl_fail(c, TE_TYPE, "'in <string>' requires string as left operand, not %s", v_type_name(item));
        vstr *h = V_S(container), *n = V_S(item);
        if (!STEP(c, h->len / 64)) return false;
        *res = n->len == 0 || (n->len <= h->len && memmem(h->s, h->len, n->s, n->len) != NULL);
        return true;
    }
    case V_LIST:
        for (size_t i = 0; i < V_L(container)->n; i++)
            if (v_eq(V_L(container)->items[i], item)) {
                *res = true;
                break;
            }
        return STEP(c, V_L(container)->n / 8);
    case V_DICT: {
        uint64_t h;
        if (!v_hash(item, &h)) return tpl_fail(c, TE_TYPE, "unhashable type: '%s'", v_type_name(item));
        *res = dict_get(V_D(container), item) != NULL;
        return true;
    }
    case V_UNDEF: return true;
    case V_ITER: {
        viter *it = (viter *)container.u.o;
        while (it->items && it->pos < it->items->n) {
            if (v_eq(it->items->items[it->pos++], item)) {
                *res = true;
                break;
            }
        }
        return true;
    }
    case V_LOOP: {
        vloop *l = (vloop *)container.u.o;
        for (size_t i = 0; l->items && i < l->items->n; i++)
            if (v_eq(l->items->items[i], item)) *res = true;
        return true;
    }
    default: return tpl_fail(c, TE_TYPE, "argument of type '%s' is not iterable", v_type_name(container));
    }
}

/* ---- attribute and item lookup ------------------------------------------------------------ */

static bool is_dunder(const char *name, size_t n) {
    return n >= 4 && name[0] == '_' && name[1] == '_' && name[n - 2] == '_' && name[n - 1] == '_';
}

bool op_getattr(rctx *c, val obj, const char *name, size_t n, val *out) {
    if (obj.t == V_UNDEF) return tpl_fail_undef(c, obj);
    if (is_dunder(name, n)) {
        *out = undef_unsafe(obj, name);
        return out->t == V_UNDEF && out->u.o ? true : tpl_oom(c);
    }
    int r = method_lookup(c, obj, name, n, out);
    if (r < 0) return false;
    if (r > 0) return true;
    if (obj.t == V_DICT || obj.t == V_NS) {
        val *v = dict_get_str(V_D(obj), name, n);
        if (v) {
            *out = v_ref(*v);
            return true;
        }
    }
    *out = undef_attr(obj, name, n);
    return out->u.o ? true : tpl_oom(c);
}

/* Python index normalisation: false when out of range. */
static bool norm_index(int64_t i, size_t n, size_t *out) {
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return false;
    *out = (size_t)i;
    return true;
}

bool op_getitem(rctx *c, val obj, val key, val *out) {
    if (obj.t == V_UNDEF) return tpl_fail_undef(c, obj);
    switch ((vtype)obj.t) {
    case V_DICT: {
        uint64_t h;
        if (v_hash(key, &h)) {
            val *v = dict_get(V_D(obj), key);
            if (v) {
                *out = v_ref(*v);
                return true;
            }
        }
        break;
    }
    case V_LIST:
        if (is_intlike(key)) {
            size_t i;
            if (norm_index(as_int(key), V_L(obj)->n, &i)) {
                *out = v_ref(V_L(obj)->items[i]);
                return true;
            }
        }
        break;
    case V_STR:
        if (is_intlike(key)) {
            vstr *s = V_S(obj);
            size_t i;
            if (norm_index(as_int(key), str_ncp(s), &i)) {
                size_t off = str_cp_offset(s, i), end = off;
                u8_next(s->s, s->len, &end);
                *out = v_str(s->s + off, end - off);
                return out->t == V_STR || tpl_oom(c);
            }
        }
        break;
    default: break;
    }
    if (key.t == V_STR) {
        if (is_dunder(V_S(key)->s, V_S(key)->len)) {
            *out = undef_unsafe(obj, V_S(key)->s);
            return out->u.o ? true : tpl_oom(c);
        }
        int r = method_lookup(c, obj, V_S(key)->s, V_S(key)->len, out);
        if (r < 0) return false;
        if (r > 0) return true;
        if (obj.t == V_NS) {
            val *v = dict_get_str(V_D(obj), V_S(key)->s, V_S(key)->len);
            if (v) {
                *out = v_ref(*v);
                return true;
            }
        }
        *out = undef_attr(obj, V_S(key)->s, V_S(key)->len);
    } else {
        *out = undef_element(obj, key);
    }
    return out->u.o ? true : tpl_oom(c);
}

/* PySlice_AdjustIndices for one bound */
static int64_t slice_bound(val v, int64_t def, int64_t n, int64_t step) {
    if (v.t == V_NONE) return def;
    int64_t i = as_int(v);
    if (i < 0) {
        i += n;
        if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
        i = step < 0 ? n - 1 : n;
    }
    return i;
}

bool op_slice(rctx *c, val obj, val start, val stop, val step, val *out) {
    if (obj.t == V_UNDEF) return tpl_fail_undef(c, obj);
    bool bounds_ok = (start.t == V_NONE || is_intlike(start)) && (stop.t == V_NONE || is_intlike(stop)) &&
                     (step.t == V_NONE || is_intlike(step));
    if ((obj.t != V_LIST && obj.t != V_STR) || !bounds_ok) {
        /* TypeError inside the sandbox's getitem: an undefined naming the slice */
        strbuf sb = STRBUF_INIT;
        sb_puts(&sb, "slice(");
        bool ok = py_repr(c, &sb, start);
        sb_append(&sb, ", ", 2);
        ok = ok && py_repr(c, &sb, stop);
        sb_append(&sb, ", ", 2);
        ok = ok && py_repr(c, &sb, step);
        sb_putc(&sb, ')');
        char msg[600];
        snprintf(msg, sizeof msg, "%s has no element %.500s", v_objtype_repr(obj), sb_str(&sb));
        sb_free(&sb);
        if (!ok) return false;
        *out = undef_hint(msg);
        return out->u.o ? true : tpl_oom(c);
    }
    int64_t st = step.t == V_NONE ? 1 : as_int(step);
    if (st == 0) return tpl_fail(c, TE_VALUE, "slice step cannot be zero");
    if (st == INT64_MIN) st = -INT64_MAX;
    bool is_str = obj.t == V_STR;
    vstr *s = is_str ? V_S(obj) : NULL;
    int64_t n = is_str ? (int64_t)str_ncp(s) : (int64_t)V_L(obj)->n;
    int64_t lo = slice_bound(start, st < 0 ? n - 1 : 0, n, st);
    int64_t hi = slice_bound(stop, st < 0 ? -1 : n, n, st);
    int64_t count = 0;
    if (st > 0 && lo < hi) count = (hi - lo - 1) / st + 1;
    if (st < 0 && hi < lo) count = (lo - hi - 1) / (-st) + 1;
    if (!STEP(c, (uint64_t)count / 8)) return false;
    if (!is_str) {
        vlist *l = V_L(obj), *r = list_new((size_t)count);
        if (!r) return tpl_oom(c);
        r->h.flags |= l->h.flags & OBJ_TUPLE;
        for (int64_t k = 0, i = lo; k < count; k++, i += st) r->items[r->n++] = v_ref(l->items[i]);
        *out = v_obj(V_LIST, r);
        return true;
    }
    if (str_ascii(s)) {
        if (st == 1) {
            *out = v_str(s->s + lo, (size_t)count);
            return out->t == V_STR || tpl_oom(c);
        }
        vstr *r = str_new_uninit((size_t)count);
        if (!r) return tpl_oom(c);
        for (int64_t k = 0, i = lo; k < count; k++, i += st) r->s[k] = s->s[i];
        r->h.flags |= OBJ_ASCII | OBJ_CPKNOWN;
        r->ncp = r->len;
        *out = v_obj(V_STR, r);
        return true;
    }
    /* offsets of every code point, then pick */
    size_t *off = malloc(((size_t)n + 1) * sizeof *off);
    if (!off) return tpl_oom(c);
    size_t p = 0;
    for (int64_t i = 0; i < n; i++) {
        off[i] = p;
        u8_next(s->s, s->len, &p);
    }
    off[n] = s->len;
    strbuf sb = STRBUF_INIT;
    for (int64_t k = 0, i = lo; k < count; k++, i += st) sb_append(&sb, s->s + off[i], off[i + 1] - off[i]);
    free(off);
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

/* ---- len, iteration, calls ------------------------------------------------------------------- */

bool op_len(rctx *c, val v, int64_t *n) {
    switch ((vtype)v.t) {
    case V_STR: *n = (int64_t)str_ncp(V_S(v)); return true;
    case V_LIST: *n = (int64_t)V_L(v)->n; return true;
    case V_DICT: *n = (int64_t)V_D(v)->n; return true;
    case V_UNDEF: *n = 0; return true;
    case V_LOOP: *n = ((vloop *)v.u.o)->items ? (int64_t)((vloop *)v.u.o)->items->n : 0; return true;
    default: return tpl_fail(c, TE_TYPE, "object of type '%s' has no len()", v_type_name(v));
    }
}

bool op_iterate(rctx *c, val v, vlist **out) {
    vlist *r = NULL;
    switch ((vtype)v.t) {
    case V_LIST: {
        vlist *l = V_L(v);
        r = list_new(l->n);
        if (!r) return tpl_oom(c);
        for (size_t i = 0; i < l->n; i++) r->items[r->n++] = v_ref(l->items[i]);
        break;
    }
    case V_DICT:
    case V_NS: {
        if (v.t == V_NS) return tpl_fail(c, TE_TYPE, "'Namespace' object is not iterable");
        vdict *d = V_D(v);
        r = list_new(d->n);
        if (!r) return tpl_oom(c);
        for (size_t i = 0; i < d->n; i++) r->items[r->n++] = v_ref(d->keys[i]);
        break;
    }
    case V_STR: {
        vstr *s = V_S(v);
        size_t n = str_ncp(s);
        r = list_new(n);
        if (!r) return tpl_oom(c);
        size_t i = 0;
        while (i < s->len) {
            size_t start = i;
            u8_next(s->s, s->len, &i);
            val ch = v_str(s->s + start, i - start);
            if (ch.t != V_STR) {
                obj_unref(r);
                return tpl_oom(c);
            }
            r->items[r->n++] = ch;
        }
        break;
    }
    case V_UNDEF:
        r = list_new(0);
        if (!r) return tpl_oom(c);
        break;
    case V_ITER: {
        viter *it = (viter *)v.u.o;
        size_t n = it->items ? it->items->n - it->pos : 0;
        r = list_new(n);
        if (!r) return tpl_oom(c);
        while (it->items && it->pos < it->items->n) r->items[r->n++] = v_ref(it->items->items[it->pos++]);
        break;
    }
    case V_LOOP: {
        vloop *l = (vloop *)v.u.o;
        size_t n = l->items ? l->items->n : 0;
        r = list_new(n);
        if (!r) return tpl_oom(c);
        for (size_t i = 0; i < n; i++) r->items[r->n++] = v_ref(l->items->items[i]);
        break;
    }
    default: return tpl_fail(c, TE_TYPE, "'%s' object is not iterable", v_type_name(v));
    }
    if (!STEP(c, r->n / 8)) {
        obj_unref(r);
        return false;
    }
    *out = r;
    return true;
}

bool op_call(rctx *c, val fn, callargs *a, val *out) {
    switch ((vtype)fn.t) {
    case V_MACRO: return eval_macro_call(c, (vmacro *)fn.u.o, a, out);
    case V_FUNC: return func_call(c, (vfunc *)fn.u.o, a, out);
    case V_LOOP: return eval_loop_call(c, (vloop *)fn.u.o, a, out);
    case V_UNDEF: return tpl_fail_undef(c, fn);
    default: return tpl_fail(c, TE_TYPE, "'%s' object is not callable", v_type_name(fn));
    }
}

/* ---- sorting ------------------------------------------------------------------------------- */

typedef struct {
    rctx *c;
    bool reverse;
    bool failed;
} sort_ctx;

/* key a sorts before key b */
static bool sort_less(sort_ctx *s, val a, val b) {
    if (s->failed) return false;
    bool r;
    if (!(s->reverse ? order(s->c, OP_LT, b, a, &r, 0) : order(s->c, OP_LT, a, b, &r, 0))) {
        s->failed = true;
        return false;
    }
    return r;
}

static void merge_sort(sort_ctx *s, val *items, val *keys, val *ti, val *tk, size_t n) {
    if (n < 2 || s->failed) return;
    size_t h = n / 2;
    merge_sort(s, items, keys, ti, tk, h);
    merge_sort(s, items + h, keys + h, ti, tk, n - h);
    if (s->failed) return;
    memcpy(ti, items, h * sizeof *ti);
    memcpy(tk, keys, h * sizeof *tk);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (sort_less(s, keys[j], tk[i])) {
            items[k] = items[j];
            keys[k++] = keys[j++];
        } else {
            items[k] = ti[i];
            keys[k++] = tk[i++];
        }
    }
    while (i < h) {
        items[k] = ti[i];
        keys[k++] = tk[i++];
    }
}

bool py_sort(rctx *c, val *items, val *keys, size_t n, bool reverse) {
    if (n < 2) return true;
    if (!STEP(c, n * 2)) return false;
    val *ti = malloc(n * sizeof *ti), *tk = malloc(n * sizeof *tk);
    if (!ti || !tk) {
        free(ti);
        free(tk);
        return tpl_oom(c);
    }
    sort_ctx s = {c, reverse, false};
    merge_sort(&s, items, keys, ti, tk, n);
    free(ti);
    free(tk);
    return !s.failed;
}
