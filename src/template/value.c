/* value.c: allocation, reference counting, dicts, equality and hashing of template values. */
#include "template/value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "template/eval.h"

/* ---- strings --------------------------------------------------------------------------- */

static void obj_init(obj *o, vtype t) {
    o->rc = 1;
    o->type = (uint8_t)t;
    o->flags = 0;
    o->reg_prev = o->reg_next = NULL;
}

vstr *str_new_uninit(size_t n) {
    if (n > ((size_t)1 << 40)) return NULL;
    vstr *s = malloc(sizeof *s + n + 1);
    if (!s) return NULL;
    obj_init(&s->h, V_STR);
    s->len = n;
    s->ncp = 0;
    s->s[n] = 0;
    return s;
}

static void str_finish(vstr *s) {
    bool ascii = true;
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->s[i] >= 0x80) {
            ascii = false;
            break;
        }
    if (ascii) {
        s->h.flags |= OBJ_ASCII | OBJ_CPKNOWN;
        s->ncp = s->len;
    }
}

vstr *str_new(const char *src, size_t n) {
    vstr *s = str_new_uninit(n);
    if (!s) return NULL;
    if (n) memcpy(s->s, src, n);
    str_finish(s);
    return s;
}

size_t str_ncp(vstr *s) {
    if (!(s->h.flags & OBJ_CPKNOWN)) {
        size_t n = 0;
        for (size_t i = 0; i < s->len; i++) n += ((unsigned char)s->s[i] & 0xC0) != 0x80;
        if (s->h.rc < 0) return n; /* shared between threads: never written */
        s->ncp = n;
        s->h.flags |= OBJ_CPKNOWN;
    }
    return s->ncp;
}

val v_str(const char *s, size_t n) {
    vstr *o = str_new(s, n);
    return o ? v_obj(V_STR, o) : v_undef();
}

val v_cstr(const char *s) { return v_str(s, strlen(s)); }

val v_str_take(strbuf *sb) {
    if (sb_failed(sb)) {
        sb_free(sb);
        return v_undef();
    }
    val v = v_str(sb_str(sb), sb->len);
    sb_free(sb);
    return v;
}

/* ---- lists and dicts ------------------------------------------------------------------- */

vlist *list_new(size_t cap) {
    vlist *l = malloc(sizeof *l);
    if (!l) return NULL;
    obj_init(&l->h, V_LIST);
    l->n = 0;
    l->cap = cap;
    l->items = cap ? malloc(cap * sizeof(val)) : NULL;
    if (cap && !l->items) {
        free(l);
        return NULL;
    }
    return l;
}

bool list_push(vlist *l, val v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        val *p = realloc(l->items, cap * sizeof *p);
        if (!p) {
            v_unref(v);
            return false;
        }
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = v;
    return true;
}

vdict *dict_new(size_t cap) {
    vdict *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    obj_init(&d->h, V_DICT);
    if (cap) {
        d->keys = malloc(cap * sizeof(val));
        d->vals = malloc(cap * sizeof(val));
        if (!d->keys || !d->vals) {
            free(d->keys);
            free(d->vals);
            free(d);
            return NULL;
        }
        d->cap = cap;
    }
    return d;
}

static bool idx_rebuild(vdict *d, size_t cap) {
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx) return false;
    for (size_t i = 0; i < d->n; i++) {
        uint64_t h = 0;
        v_hash(d->keys[i], &h);
        size_t j = h & (cap - 1);
        while (idx[j]) j = (j + 1) & (cap - 1);
        idx[j] = (uint32_t)(i + 1);
    }
    free(d->idx);
    d->idx = idx;
    d->idx_cap = cap;
    return true;
}

static val *dict_find(const vdict *d, val key, uint64_t h) {
    if (!d->idx) {
        for (size_t i = 0; i < d->n; i++)
            if (v_eq(d->keys[i], key)) return &d->vals[i];
        return NULL;
    }
    size_t j = h & (d->idx_cap - 1);
    while (d->idx[j]) {
        size_t e = d->idx[j] - 1;
        if (v_eq(d->keys[e], key)) return &d->vals[e];
        j = (j + 1) & (d->idx_cap - 1);
    }
    return NULL;
}

val *dict_get(const vdict *d, val key) {
    uint64_t h = 0;
    if (!v_hash(key, &h)) return NULL;
    return dict_find(d, key, h);
}

val *dict_get_str(const vdict *d, const char *key, size_t n) {
    if (!d->idx) {
        for (size_t i = 0; i < d->n; i++)
            if (d->keys[i].t == V_STR && V_S(d->keys[i])->len == n &&
                !memcmp(V_S(d->keys[i])->s, key, n))
                return &d->vals[i];
        return NULL;
    }
    uint64_t h = hash_bytes(key, n, 0);
    size_t j = h & (d->idx_cap - 1);
    while (d->idx[j]) {
        size_t e = d->idx[j] - 1;
        if (d->keys[e].t == V_STR && V_S(d->keys[e])->len == n && !memcmp(V_S(d->keys[e])->s, key, n))
            return &d->vals[e];
        j = (j + 1) & (d->idx_cap - 1);
    }
    return NULL;
}

bool dict_set(vdict *d, val key, val value) {
    uint64_t h = 0;
    v_hash(key, &h); /* callers check hashability first */
    val *slot = dict_find(d, key, h);
    if (slot) {
        v_unref(*slot);
        *slot = value;
        v_unref(key);
        return true;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        val *k = realloc(d->keys, cap * sizeof *k);
        if (k) d->keys = k;
        val *v = k ? realloc(d->vals, cap * sizeof *v) : NULL;
        if (!v) {
            v_unref(key);
            v_unref(value);
            return false;
        }
        d->vals = v;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = value;
    d->n++;
    if (d->n > DICT_LINEAR) {
        if (!d->idx || d->n * 2 > d->idx_cap) {
            size_t cap = 32;
            while (cap < d->n * 4) cap *= 2;
            if (!idx_rebuild(d, cap)) {
                d->n--; /* keep the dict consistent: drop the new entry */
                v_unref(key);
                v_unref(value);
                return false;
            }
        } else {
            size_t j = h & (d->idx_cap - 1);
            while (d->idx[j]) j = (j + 1) & (d->idx_cap - 1);
            d->idx[j] = (uint32_t)d->n;
        }
    }
    return true;
}

vundef *undef_new(undef_kind kind, const char *objtype, val name, vstr *hint) {
    vundef *u = malloc(sizeof *u);
    if (!u) {
        v_unref(name);
        obj_unref(hint);
        return NULL;
    }
    obj_init(&u->h, V_UNDEF);
    u->kind = (uint8_t)kind;
    u->objtype = objtype;
    u->name = name;
    u->hint = hint;
    return u;
}

/* ---- freeing --------------------------------------------------------------------------- */

/* Calls fn on each child value of o. */
static void obj_children(obj *o, void (*fn)(val *v, void *arg), void *arg) {
    switch (o->type) {
    case V_LIST: {
        vlist *l = (vlist *)o;
        for (size_t i = 0; i < l->n; i++) fn(&l->items[i], arg);
        break;
    }
    case V_DICT:
    case V_NS: {
        vdict *d = (vdict *)o;
        for (size_t i = 0; i < d->n; i++) {
            fn(&d->keys[i], arg);
            fn(&d->vals[i], arg);
        }
        break;
    }
    case V_UNDEF: {
        vundef *u = (vundef *)o;
        fn(&u->name, arg);
        if (u->hint) {
            val h = v_obj(V_STR, u->hint);
            fn(&h, arg);
            u->hint = (vstr *)h.u.o;
            if (h.t != V_STR) u->hint = NULL;
        }
        break;
    }
    case V_MACRO: {
        vmacro *m = (vmacro *)o;
        if (m->closure) {
            val s = v_obj(V_SCOPE, m->closure);
            fn(&s, arg);
            m->closure = s.t == V_SCOPE ? (struct scope *)s.u.o : NULL;
        }
        break;
    }
    case V_FUNC: fn(&((vfunc *)o)->self, arg); break;
    case V_LOOP: {
        vloop *l = (vloop *)o;
        if (l->items) {
            val s = v_obj(V_LIST, l->items);
            fn(&s, arg);
            l->items = s.t == V_LIST ? (vlist *)s.u.o : NULL;
        }
        fn(&l->last_changed, arg);
        if (l->outer) {
            val s = v_obj(V_SCOPE, l->outer);
            fn(&s, arg);
            l->outer = s.t == V_SCOPE ? (struct scope *)s.u.o : NULL;
        }
        break;
    }
    case V_ITER: {
        viter *it = (viter *)o;
        if (it->items) {
            val s = v_obj(V_LIST, it->items);
            fn(&s, arg);
            it->items = s.t == V_LIST ? (vlist *)s.u.o : NULL;
        }
        break;
    }
    case V_SCOPE: scope_children((struct scope *)o, fn, arg); break;
    default: break;
    }
}

typedef struct {
    obj **stack;
    size_t n, cap;
    bool oom;
} free_work;

static void release_child(val *v, void *arg) {
    free_work *w = arg;
    if (v_is_obj(*v)) {
        obj *o = v->u.o;
        if (o->rc > 0 && --o->rc == 0) {
            if (w->n == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 64;
                obj **s = realloc(w->stack, cap * sizeof *s);
                if (!s) {
                    /* out of memory while freeing: fall back to recursion for this one */
                    w->oom = true;
                    obj_free(o);
                    *v = v_undef();
                    return;
                }
                w->stack = s;
                w->cap = cap;
            }
            w->stack[w->n++] = o;
        }
    }
    *v = v_undef();
}

static void obj_dealloc(obj *o) {
    switch (o->type) {
    case V_LIST: free(((vlist *)o)->items); break;
    case V_DICT:
    case V_NS:
        free(((vdict *)o)->keys);
        free(((vdict *)o)->vals);
        free(((vdict *)o)->idx);
        break;
    case V_SCOPE: scope_dealloc((struct scope *)o); return;
    default: break;
    }
    free(o);
}

void obj_free(obj *o) {
    free_work w = {0};
    obj *cur = o;
    for (;;) {
        if (cur->flags & OBJ_REGISTERED) registry_unlink(cur);
        obj_children(cur, release_child, &w);
        obj_dealloc(cur);
        if (!w.n) break;
        cur = w.stack[--w.n];
    }
    free(w.stack);
}

static void clear_child(val *v, void *arg) {
    (void)arg;
    val old = *v;
    *v = v_undef();
    v_unref(old);
}

void obj_clear(obj *o) {
    obj_children(o, clear_child, NULL);
    if (o->type == V_LIST) ((vlist *)o)->n = 0;
    if (o->type == V_DICT || o->type == V_NS) {
        vdict *d = (vdict *)o;
        d->n = 0;
        free(d->idx);
        d->idx = NULL;
        d->idx_cap = 0;
    }
    if (o->type == V_SCOPE) scope_clear_vars((struct scope *)o);
}

static void immortal_child(val *v, void *arg) {
    (void)arg;
    if (v_is_obj(*v) && v->u.o->rc >= 0) obj_make_immortal(v->u.o);
}

void obj_make_immortal(obj *o) {
    if (o->rc < 0) return;
    if (o->type == V_STR) str_ncp((vstr *)o); /* cached now: immortal objects are never written */
    o->rc = -1;
    obj_children(o, immortal_child, NULL);
}

static void free_immortal_child(val *v, void *arg) {
    (void)arg;
    if (v_is_obj(*v) && v->u.o->rc < 0) obj_free_immortal(v->u.o);
    *v = v_undef();
}

void obj_free_immortal(obj *o) {
    if (o->rc >= 0) return; /* already freed in this walk (graphs are trees in practice) */
    o->rc = 0;
    obj_children(o, free_immortal_child, NULL);
    obj_dealloc(o);
}

/* ---- type names, truthiness, equality, hashing ----------------------------------------- */

const char *v_type_name(val v) {
    switch ((vtype)v.t) {
    case V_UNDEF: return "Undefined";
    case V_NONE: return "NoneType";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float";
    case V_STR: return (v.u.o->flags & OBJ_MARKUP) ? "Markup" : "str";
    case V_LIST: return v_is_tuple(v) ? "tuple" : "list";
    case V_DICT: return "dict";
    case V_NS: return "Namespace";
    case V_MACRO: return "Macro";
    case V_FUNC: return ((vfunc *)v.u.o)->self.t == V_UNDEF ? "function" : "builtin_function_or_method";
    case V_LOOP: return "LoopContext";
    case V_ITER: return ((viter *)v.u.o)->tname;
    case V_SCOPE: return "scope";
    }
    return "object";
}

const char *v_objtype_repr(val v) {
    switch ((vtype)v.t) {
    case V_NONE: return "None";
    case V_BOOL: return "bool object";
    case V_INT: return "int object";
    case V_FLOAT: return "float object";
    case V_STR: return (v.u.o->flags & OBJ_MARKUP) ? "markupsafe.Markup object" : "str object";
    case V_LIST: return v_is_tuple(v) ? "tuple object" : "list object";
    case V_DICT: return "dict object";
    case V_NS: return "jinja2.utils.Namespace object";
    case V_MACRO: return "jinja2.runtime.Macro object";
    case V_FUNC: return "builtin_function_or_method object";
    case V_LOOP: return "jinja2.runtime.LoopContext object";
    case V_ITER: return ((viter *)v.u.o)->tname[0] == 'g' ? "generator object" : "iterator object";
    default: return "object";
    }
}

bool v_truthy(val v) {
    switch ((vtype)v.t) {
    case V_UNDEF:
    case V_NONE: return false;
    case V_BOOL: return v.u.b;
    case V_INT: return v.u.i != 0;
    case V_FLOAT: return v.u.f != 0;
    case V_STR: return V_S(v)->len != 0;
    case V_LIST: return V_L(v)->n != 0;
    case V_DICT: return V_D(v)->n != 0;
    default: return true;
    }
}

static bool is_num(val v) { return v.t == V_BOOL || v.t == V_INT || v.t == V_FLOAT; }

/* Exact comparison of an int64 and a double, as Python compares int and float. */
int cmp_int_float(int64_t i, double f) {
    if (isnan(f)) return 2; /* unordered */
    if (f >= 9223372036854775808.0) return -1;
    if (f < -9223372036854775808.0) return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (i < fi) return -1;
    if (i > fi) return 1;
    return fl == f ? 0 : -1;
}

static bool eq_depth(val a, val b, int depth) {
    if (depth > VAL_MAX_DEPTH) return false;
    if (is_num(a) && is_num(b)) {
        if (a.t == V_FLOAT && b.t == V_FLOAT) return a.u.f == b.u.f;
        if (a.t == V_FLOAT) return cmp_int_float(b.t == V_BOOL ? b.u.b : b.u.i, a.u.f) == 0;
        if (b.t == V_FLOAT) return cmp_int_float(a.t == V_BOOL ? a.u.b : a.u.i, b.u.f) == 0;
        return (a.t == V_BOOL ? a.u.b : a.u.i) == (b.t == V_BOOL ? b.u.b : b.u.i);
    }
    if (a.t == V_UNDEF || b.t == V_UNDEF) return a.t == b.t;
    if (a.t != b.t) return false;
    switch ((vtype)a.t) {
    case V_NONE: return true;
    case V_STR: return V_S(a)->len == V_S(b)->len && !memcmp(V_S(a)->s, V_S(b)->s, V_S(a)->len);
    case V_LIST: {
        if (v_is_tuple(a) != v_is_tuple(b)) return false;
        vlist *x = V_L(a), *y = V_L(b);
        if (x == y) return true;
        if (x->n != y->n) return false;
        for (size_t i = 0; i < x->n; i++)
            if (!eq_depth(x->items[i], y->items[i], depth + 1)) return false;
        return true;
    }
    case V_DICT: {
        vdict *x = V_D(a), *y = V_D(b);
        if (x == y) return true;
        if (x->n != y->n) return false;
        for (size_t i = 0; i < x->n; i++) {
            val *o = dict_get(y, x->keys[i]);
            if (!o || !eq_depth(x->vals[i], *o, depth + 1)) return false;
        }
        return true;
    }
    default: return a.u.o == b.u.o;
    }
}

bool v_eq(val a, val b) { return eq_depth(a, b, 0); }

static bool hash_depth(val v, uint64_t *h, int depth) {
    if (depth > VAL_MAX_DEPTH) return false;
    switch ((vtype)v.t) {
    case V_UNDEF: *h = 0x5bd1e995; return true;
    case V_NONE: *h = 0x9e3779b9; return true;
    case V_BOOL: *h = hash_u64((uint64_t)v.u.b); return true;
    case V_INT: *h = hash_u64((uint64_t)v.u.i); return true;
    case V_FLOAT:
        if (v.u.f == floor(v.u.f) && fabs(v.u.f) < 9.2e18) *h = hash_u64((uint64_t)(int64_t)v.u.f);
        else {
            uint64_t bits;
            memcpy(&bits, &v.u.f, 8);
            *h = hash_u64(bits);
        }
        return true;
    case V_STR: *h = hash_bytes(V_S(v)->s, V_S(v)->len, 0); return true;
    case V_LIST: {
        if (!v_is_tuple(v)) return false;
        uint64_t acc = 0x345678;
        for (size_t i = 0; i < V_L(v)->n; i++) {
            uint64_t x;
            if (!hash_depth(V_L(v)->items[i], &x, depth + 1)) return false;
            acc = hash_u64(acc ^ x) + i;
        }
        *h = acc;
        return true;
    }
    case V_DICT:
    case V_ITER:
    case V_SCOPE: return false;
    default: *h = hash_u64((uint64_t)(uintptr_t)v.u.o); return true;
    }
}

bool v_hash(val v, uint64_t *h) { return hash_depth(v, h, 0); }
