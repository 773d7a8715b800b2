/* methods.c: attributes and methods of the builtin types as the sandbox exposes them (str,
 * dict, list methods; loop.*; macro attributes), and the global functions (range, dict,
 * namespace, joiner, raise_exception, strftime_now). Mutating methods (list.append,
 * dict.update, ...) resolve to an "unsafe" undefined that raises SecurityError when called,
 * as Jinja2's ImmutableSandboxedEnvironment does. */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template/eval.h"
#include "template/pystr.h"
#include "template/strmeth.h"

enum {
    F_NONE,
    /* globals */
    G_RANGE, G_DICT, G_NAMESPACE, G_JOINER, G_JOINER_CALL, G_RAISE, G_STRFTIME, G_CYCLER_UNSUPPORTED,
    /* dict */
    D_ITEMS, D_KEYS, D_VALUES, D_GET, D_COPY,
    /* list */
    L_INDEX, L_COUNT, L_COPY,
    /* loop */
    LOOP_CYCLE, LOOP_CHANGED,
    /* str methods start here (strmeth.h numbers them from S_FIRST) */
};

val func_new(int id, const char *name, val self) {
    vfunc *f = malloc(sizeof *f);
    if (!f) {
        v_unref(self);
        return v_undef();
    }
    f->h.rc = 1;
    f->h.type = V_FUNC;
    f->h.flags = 0;
    f->h.reg_prev = f->h.reg_next = NULL;
    f->id = id;
    f->name = name;
    f->self = self;
    return v_obj(V_FUNC, f);
}

static int bound(rctx *c, int id, const char *name, val self, val *out) {
    *out = func_new(id, name, v_ref(self));
    return out->t == V_FUNC ? 1 : (tpl_oom(c), -1);
}

static int unsafe(rctx *c, val self, const char *name, val *out) {
    char msg[300];
    snprintf(msg, sizeof msg, "access to attribute '%s' of '%s' object is unsafe.", name, v_type_name(self));
    vstr *h = str_new(msg, strlen(msg));
    vundef *u = h ? undef_new(UNDEF_UNSAFE, NULL, v_undef(), h) : NULL;
    if (!u) return tpl_oom(c), -1;
    *out = v_obj(V_UNDEF, u);
    return 1;
}

static bool name_is(const char *name, size_t n, const char *what) { return strlen(what) == n && !memcmp(name, what, n); }

static int loop_attr(rctx *c, vloop *l, const char *name, size_t n, val self, val *out) {
    size_t len = l->items ? l->items->n : 0;
    size_t i = l->index0;
    if (name_is(name, n, "index")) *out = v_int((int64_t)i + 1);
    else if (name_is(name, n, "index0")) *out = v_int((int64_t)i);
    else if (name_is(name, n, "revindex")) *out = v_int((int64_t)(len - i));
    else if (name_is(name, n, "revindex0")) *out = v_int((int64_t)(len - i) - 1);
    else if (name_is(name, n, "first")) *out = v_bool(i == 0);
    else if (name_is(name, n, "last")) *out = v_bool(i + 1 == len);
    else if (name_is(name, n, "length")) *out = v_int((int64_t)len);
    else if (name_is(name, n, "depth")) *out = v_int(l->depth0 + 1);
    else if (name_is(name, n, "depth0")) *out = v_int(l->depth0);
    else if (name_is(name, n, "previtem")) {
        *out = i > 0 ? v_ref(l->items->items[i - 1]) : undef_hint("there is no previous item");
        if (out->t == V_UNDEF && !out->u.o) return tpl_oom(c), -1;
    } else if (name_is(name, n, "nextitem")) {
        *out = i + 1 < len ? v_ref(l->items->items[i + 1]) : undef_hint("there is no next item");
        if (out->t == V_UNDEF && !out->u.o) return tpl_oom(c), -1;
    } else if (name_is(name, n, "cycle")) return bound(c, LOOP_CYCLE, "cycle", self, out);
    else if (name_is(name, n, "changed")) return bound(c, LOOP_CHANGED, "changed", self, out);
    else return 0;
    return 1;
}

int method_lookup(rctx *c, val self, const char *name, size_t n, val *out) {
    switch ((vtype)self.t) {
    case V_STR: {
        int id = strmeth_lookup(name, n);
        if (id < 0) return 0;
        return bound(c, S_FIRST + id, strmeth_name(id), self, out);
    }
    case V_DICT:
        if (name_is(name, n, "items")) return bound(c, D_ITEMS, "items", self, out);
        if (name_is(name, n, "keys")) return bound(c, D_KEYS, "keys", self, out);
        if (name_is(name, n, "values")) return bound(c, D_VALUES, "values", self, out);
        if (name_is(name, n, "get")) return bound(c, D_GET, "get", self, out);
        if (name_is(name, n, "copy")) return bound(c, D_COPY, "copy", self, out);
        if (name_is(name, n, "pop") || name_is(name, n, "popitem") || name_is(name, n, "setdefault") ||
            name_is(name, n, "update") || name_is(name, n, "clear"))
            return unsafe(c, self, n == 3 ? "pop" : name, out);
        return 0;
    case V_LIST:
        if (name_is(name, n, "index")) return bound(c, L_INDEX, "index", self, out);
        if (name_is(name, n, "count")) return bound(c, L_COUNT, "count", self, out);
        if (!v_is_tuple(self)) {
            if (name_is(name, n, "copy")) return bound(c, L_COPY, "copy", self, out);
            static const char *const mut[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort", NULL};
            for (int i = 0; mut[i]; i++)
                if (name_is(name, n, mut[i])) return unsafe(c, self, mut[i], out);
        }
        return 0;
    case V_LOOP: return loop_attr(c, (vloop *)self.u.o, name, n, self, out);
    case V_MACRO: {
        vmacro *m = (vmacro *)self.u.o;
        if (name_is(name, n, "name")) {
            *out = v_cstr(m->name);
            return out->t == V_STR ? 1 : (tpl_oom(c), -1);
        }
        if (name_is(name, n, "arguments")) {
            vlist *l = list_new((size_t)m->def->nv);
            if (!l) return tpl_oom(c), -1;
            l->h.flags |= OBJ_TUPLE;
            for (int i = 0; i < m->def->nv; i++) {
                val s = v_cstr(m->def->v[i]->s);
                if (s.t != V_STR) {
                    obj_unref(l);
                    return tpl_oom(c), -1;
                }
                l->items[l->n++] = s;
            }
            *out = v_obj(V_LIST, l);
            return 1;
        }
        if (name_is(name, n, "catch_kwargs")) *out = v_bool(m->def->flags & NF_KWARGS);
        else if (name_is(name, n, "catch_varargs")) *out = v_bool(m->def->flags & NF_VARARGS);
        else if (name_is(name, n, "caller")) *out = v_bool(m->def->flags & NF_CALLER);
        else return 0;
        return 1;
    }
    case V_INT:
    case V_BOOL:
    case V_FLOAT:
        if (name_is(name, n, "real")) {
            *out = self.t == V_BOOL ? v_int(self.u.b) : v_ref(self);
            return 1;
        }
        if (name_is(name, n, "imag")) {
            *out = self.t == V_FLOAT ? v_float(0) : v_int(0);
            return 1;
        }
        return 0;
    default: return 0;
    }
}

int global_lookup(rctx *c, const char *name, size_t n, val *out) {
    static const struct {
        const char *name;
        int id;
    } g[] = {{"range", G_RANGE},         {"dict", G_DICT},     {"namespace", G_NAMESPACE},
             {"joiner", G_JOINER},       {"raise_exception", G_RAISE}, {"strftime_now", G_STRFTIME},
             {"cycler", G_CYCLER_UNSUPPORTED}, {"lipsum", G_CYCLER_UNSUPPORTED}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        if (name_is(name, n, g[i].name)) {
            *out = func_new(g[i].id, g[i].name, v_undef());
            return out->t == V_FUNC ? 1 : (tpl_oom(c), -1);
        }
    return 0;
}

/* ---- global functions ------------------------------------------------------------------------ */

static bool to_index(rctx *c, val v, int64_t *out) {
    if (v.t == V_INT) *out = v.u.i;
    else if (v.t == V_BOOL) *out = v.u.b;
    else return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(v));
    return true;
}

static bool g_range(rctx *c, callargs *a, val *out) {
    if (a->nk) return tpl_fail(c, TE_TYPE, "range() takes no keyword arguments");
    if (a->n < 1 || a->n > 3)
        return tpl_fail(c, TE_TYPE, a->n < 1 ? "range expected at least 1 argument, got 0"
                                             : "range expected at most 3 arguments, got %d", a->n);
    int64_t start = 0, stop = 0, step = 1;
    if (a->n == 1) {
        if (!to_index(c, a->pos[0], &stop)) return false;
    } else {
        if (!to_index(c, a->pos[0], &start) || !to_index(c, a->pos[1], &stop)) return false;
        if (a->n == 3 && !to_index(c, a->pos[2], &step)) return false;
    }
    if (step == 0) return tpl_fail(c, TE_VALUE, "range() arg 3 must not be zero");
    int64_t count = 0;
    if (step > 0 && start < stop) count = (int64_t)(((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step) + 1;
    if (step < 0 && start > stop) count = (int64_t)(((uint64_t)start - (uint64_t)stop - 1) / (uint64_t)(-(step + 1) + 1)) + 1;
    if (count > 100000)
        return tpl_fail(c, TE_OVERFLOW, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    vlist *l = list_new((size_t)count);
    if (!l) return tpl_oom(c);
    for (int64_t i = 0; i < count; i++) l->items[l->n++] = v_int(start + i * step);
    *out = v_obj(V_LIST, l);
    return out_step(c, out, (uint64_t)count / 8);
}

/* dict(*args, **kwargs) into d */
static bool fill_dict(rctx *c, vdict *d, callargs *a, const char *fname) {
    if (a->n > 1) return tpl_fail(c, TE_TYPE, "%s expected at most 1 argument, got %d", fname, a->n);
    if (a->n == 1) {
        val src = a->pos[0];
        if (src.t == V_DICT || src.t == V_NS) {
            vdict *s = V_D(src);
            for (size_t i = 0; i < s->n; i++)
                if (!dict_set(d, v_ref(s->keys[i]), v_ref(s->vals[i]))) return tpl_oom(c);
        } else {
            vlist *items;
            if (!op_iterate(c, src, &items)) return false;
            for (size_t i = 0; i < items->n; i++) {
                val it = items->items[i];
                if (it.t != V_LIST || V_L(it)->n != 2) {
                    obj_unref(items);
                    return tpl_fail(c, TE_VALUE, "dictionary update sequence element #%zu has the wrong length", i);
                }
                uint64_t h;
                if (!v_hash(V_L(it)->items[0], &h)) {
                    obj_unref(items);
                    return tpl_fail(c, TE_TYPE, "unhashable type: '%s'", v_type_name(V_L(it)->items[0]));
                }
                if (!dict_set(d, v_ref(V_L(it)->items[0]), v_ref(V_L(it)->items[1]))) {
                    obj_unref(items);
                    return tpl_oom(c);
                }
            }
            obj_unref(items);
        }
    }
    for (int i = 0; i < a->nk; i++) {
        val k = v_cstr(a->kn[i]);
        if (k.t != V_STR || !dict_set(d, k, v_ref(a->kv[i]))) return tpl_oom(c);
    }
    return true;
}

static bool g_strftime(rctx *c, callargs *a, val *out) {
    if (a->n != 1 || a->nk) return tpl_fail(c, TE_TYPE, "strftime_now() takes 1 positional argument but %d were given", a->n + a->nk);
    if (a->pos[0].t != V_STR)
        return tpl_fail(c, TE_TYPE, "strftime() argument 1 must be str, not %s", v_type_name(a->pos[0]));
    time_t t = c->now >= 0 ? (time_t)c->now : time(NULL);
    struct tm tm;
    if (c->now >= 0) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    /* Python's datetime handles %f, %z and %Z itself (a naive datetime: empty zone) */
    vstr *f = V_S(a->pos[0]);
    strbuf fmt = STRBUF_INIT;
    for (size_t i = 0; i < f->len; i++) {
        if (f->s[i] == '%' && i + 1 < f->len) {
            char d = f->s[i + 1];
            if (d == 'f') {
                sb_puts(&fmt, "000000");
                i++;
                continue;
            }
            if (d == 'z' || d == 'Z') {
                i++;
                continue;
            }
            sb_putc(&fmt, '%');
            sb_putc(&fmt, d);
            i++;
            continue;
        }
        sb_putc(&fmt, f->s[i]);
    }
    sb_putc(&fmt, 'x'); /* strftime returns 0 for an empty result too: keep it non-empty */
    if (sb_failed(&fmt)) {
        sb_free(&fmt);
        return tpl_oom(c);
    }
    locale_t C = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    size_t cap = 256;
    char *buf = NULL;
    size_t n = 0;
    bool nomem = false;
    for (;;) {
        char *p = realloc(buf, cap);
        if (!p) {
            nomem = true;
            break;
        }
        buf = p;
        n = C ? strftime_l(buf, cap, sb_str(&fmt), &tm, C) : strftime(buf, cap, sb_str(&fmt), &tm);
        if (n || cap > 65536) break;
        cap *= 4;
    }
    if (C) freelocale(C);
    sb_free(&fmt);
    if (nomem || !n) {
        free(buf);
        return nomem ? tpl_oom(c) : tpl_fail(c, TE_VALUE, "strftime format too long");
    }
    *out = v_str(buf, n - 1);
    free(buf);
    return out->t == V_STR || tpl_oom(c);
}

bool func_call(rctx *c, vfunc *f, callargs *a, val *out) {
    if (f->id >= S_FIRST) return STEP(c, 1 + V_S(f->self)->len / 64) && strmeth_call(c, f->id - S_FIRST, V_S(f->self), a, out);
    val self = f->self;
    switch (f->id) {
    case G_RANGE: return g_range(c, a, out);
    case G_DICT:
    case G_NAMESPACE: {
        vdict *d = dict_new(0);
        if (!d) return tpl_oom(c);
        if (!fill_dict(c, d, a, f->id == G_DICT ? "dict" : "Namespace")) {
            obj_unref(d);
            return false;
        }
        if (f->id == G_NAMESPACE) {
            d->h.type = V_NS;
            registry_add(c, &d->h);
        }
        *out = v_obj(f->id == G_DICT ? V_DICT : V_NS, d);
        return true;
    }
    case G_JOINER: {
        val sep = v_undef(), args[1];
        bool given[1];
        static const char *const names[] = {"sep"};
        if (!args_bind(c, a, "Joiner.__init__", 1, 1, names, 0, args, given)) return false;
        sep = given[0] ? v_ref(args[0]) : v_cstr(", ");
        vlist *st = list_new(2);
        if (!st) {
            v_unref(sep);
            return tpl_oom(c);
        }
        st->items[st->n++] = sep;
        st->items[st->n++] = v_bool(false);
        *out = func_new(G_JOINER_CALL, "joiner", v_obj(V_LIST, st));
        return out->t == V_FUNC || tpl_oom(c);
    }
    case G_JOINER_CALL: {
        vlist *st = V_L(self);
        if (!st->items[1].u.b) {
            st->items[1] = v_bool(true);
            *out = v_str("", 0);
            return out->t == V_STR || tpl_oom(c);
        }
        *out = v_ref(st->items[0]);
        return true;
    }
    case G_RAISE: {
        if (a->n != 1 || a->nk)
            return tpl_fail(c, TE_TYPE, "raise_exception() takes 1 positional argument but %d were given", a->n + a->nk);
        strbuf sb = STRBUF_INIT;
        bool ok = py_str(c, &sb, a->pos[0]);
        if (ok) tpl_fail(c, TE_TEMPLATE, "%s", sb_str(&sb));
        sb_free(&sb);
        return false;
    }
    case G_STRFTIME: return g_strftime(c, a, out);
    case G_CYCLER_UNSUPPORTED: return tpl_fail(c, TE_UNSUPPORTED, "%s() is not supported", f->name);
    case D_ITEMS:
    case D_KEYS:
    case D_VALUES: {
        if (a->n || a->nk) return tpl_fail(c, TE_TYPE, "dict.%s() takes no arguments (%d given)", f->name, a->n + a->nk);
        vdict *d = V_D(self);
        vlist *l = list_new(d->n);
        if (!l) return tpl_oom(c);
        for (size_t i = 0; i < d->n; i++) {
            if (f->id == D_KEYS) l->items[l->n++] = v_ref(d->keys[i]);
            else if (f->id == D_VALUES) l->items[l->n++] = v_ref(d->vals[i]);
            else {
                vlist *t = list_new(2);
                if (!t) {
                    obj_unref(l);
                    return tpl_oom(c);
                }
                t->h.flags |= OBJ_TUPLE;
                t->items[t->n++] = v_ref(d->keys[i]);
                t->items[t->n++] = v_ref(d->vals[i]);
                l->items[l->n++] = v_obj(V_LIST, t);
            }
        }
        *out = v_obj(V_LIST, l);
        return out_step(c, out, l->n / 8);
    }
    case D_GET: {
        if (a->nk) return tpl_fail(c, TE_TYPE, "dict.get() takes no keyword arguments");
        if (a->n < 1 || a->n > 2)
            return tpl_fail(c, TE_TYPE, "get expected %s 2 arguments, got %d", a->n < 1 ? "at least 1" : "at most", a->n);
        uint64_t h;
        if (!v_hash(a->pos[0], &h)) return tpl_fail(c, TE_TYPE, "unhashable type: '%s'", v_type_name(a->pos[0]));
        val *v = dict_get(V_D(self), a->pos[0]);
        *out = v ? v_ref(*v) : a->n == 2 ? v_ref(a->pos[1]) : v_none();
        return true;
    }
    case D_COPY:
    case L_COPY: {
        if (a->n || a->nk) return tpl_fail(c, TE_TYPE, "copy() takes no arguments (%d given)", a->n + a->nk);
        if (f->id == L_COPY) {
            vlist *l;
            if (!op_iterate(c, self, &l)) return false;
            *out = v_obj(V_LIST, l);
            return true;
        }
        vdict *s = V_D(self), *d = dict_new(s->n);
        if (!d) return tpl_oom(c);
        for (size_t i = 0; i < s->n; i++)
            if (!dict_set(d, v_ref(s->keys[i]), v_ref(s->vals[i]))) {
                obj_unref(d);
                return tpl_oom(c);
            }
        *out = v_obj(V_DICT, d);
        return true;
    }
    case L_INDEX:
    case L_COUNT: {
        if (a->n != 1 || a->nk) return tpl_fail(c, TE_TYPE, "%s() takes exactly one argument (%d given)", f->name, a->n + a->nk);
        vlist *l = V_L(self);
        int64_t count = 0;
        for (size_t i = 0; i < l->n; i++)
            if (v_eq(l->items[i], a->pos[0])) {
                if (f->id == L_INDEX) {
                    *out = v_int((int64_t)i);
                    return true;
                }
                count++;
            }
        if (f->id == L_COUNT) {
            *out = v_int(count);
            return true;
        }
        strbuf sb = STRBUF_INIT;
        if (py_repr(c, &sb, a->pos[0])) tpl_fail(c, TE_VALUE, "%s is not in %s", sb_str(&sb), v_is_tuple(self) ? "tuple" : "list");
        sb_free(&sb);
        return false;
    }
    case LOOP_CYCLE: {
        if (a->nk) return tpl_fail(c, TE_TYPE, "cycle() got an unexpected keyword argument '%s'", a->kn[0]);
        if (!a->n) return tpl_fail(c, TE_TYPE, "no items for cycling given");
        vloop *l = (vloop *)self.u.o;
        *out = v_ref(a->pos[l->index0 % (size_t)a->n]);
        return true;
    }
    case LOOP_CHANGED: {
        vloop *l = (vloop *)self.u.o;
        vlist *t = list_new((size_t)a->n);
        if (!t) return tpl_oom(c);
        t->h.flags |= OBJ_TUPLE;
        for (int i = 0; i < a->n; i++) t->items[t->n++] = v_ref(a->pos[i]);
        val tv = v_obj(V_LIST, t);
        if (!l->has_changed || !v_eq(l->last_changed, tv)) {
            v_unref(l->last_changed);
            l->last_changed = tv;
            l->has_changed = true;
            *out = v_bool(true);
        } else {
            v_unref(tv);
            *out = v_bool(false);
        }
        return true;
    }
    }
    return tpl_fail(c, TE_TYPE, "'%s' is not callable", f->name);
}

bool attr_path_get(rctx *c, val item, val attr, val *out) {
    if (attr.t != V_STR) return op_getitem(c, item, attr, out);
    vstr *s = V_S(attr);
    val cur = v_ref(item);
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < s->len && s->s[j] != '.') j++;
        bool digits = j > i;
        int64_t num = 0;
        for (size_t k = i; k < j; k++) {
            if (s->s[k] < '0' || s->s[k] > '9' || num > (INT64_MAX - 9) / 10) {
                digits = false;
                break;
            }
            num = num * 10 + (s->s[k] - '0');
        }
        val key = digits ? v_int(num) : v_str(s->s + i, j - i);
        if (key.t == V_UNDEF) {
            v_unref(cur);
            return tpl_oom(c);
        }
        val next;
        bool ok = op_getitem(c, cur, key, &next);
        v_unref(key);
        v_unref(cur);
        if (!ok) return false;
        cur = next;
        if (j >= s->len) break;
        i = j + 1;
    }
    *out = cur;
    return true;
}
