/* eval.c: the tree-walking evaluator: statements, expressions, scopes, loops, macros.
 *
 * Scoping follows what Jinja2's compiler produces: `set` binds in the innermost scope; each
 * for-loop iteration, macro call, call-block body, filter block, with block and generation
 * block gets a fresh scope whose parent is the scope it was written in (so a variable set
 * inside a loop body is gone at the next iteration, and reads fall back to the outer value);
 * `if` blocks share their scope; namespaces are the way out. Macros see their defining scope
 * as it is when they run (Python closures bind late). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "template/eval.h"
#include "template/pystr.h"

/* ---- errors -------------------------------------------------------------------------------- */

const char *tpl_errkind_name(tpl_errkind k) {
    switch (k) {
    case TE_NONE: return "";
    case TE_TEMPLATE: return "TemplateError";
    case TE_UNDEFINED: return "UndefinedError";
    case TE_SECURITY: return "SecurityError";
    case TE_SYNTAX: return "TemplateSyntaxError";
    case TE_ASSERTION: return "TemplateAssertionError";
    case TE_RUNTIME: return "TemplateRuntimeError";
    case TE_FILTERARG: return "FilterArgumentError";
    case TE_TYPE: return "TypeError";
    case TE_VALUE: return "ValueError";
    case TE_ZERODIV: return "ZeroDivisionError";
    case TE_OVERFLOW: return "OverflowError";
    case TE_KEY: return "KeyError";
    case TE_INDEX: return "IndexError";
    case TE_ATTRIBUTE: return "AttributeError";
    case TE_RECURSION: return "RecursionError";
    case TE_LIMIT: return "LimitError";
    case TE_UNSUPPORTED: return "NotSupported";
    case TE_NOMEM: return "MemoryError";
    }
    return "Error";
}

bool tpl_fail(rctx *c, tpl_errkind k, const char *fmt, ...) {
    if (c->err != TE_NONE) return false;
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0) m = NULL;
    va_end(ap);
    c->err = m ? k : TE_NOMEM; /* no message: reported as out of memory, which it is */
    c->errmsg = m;
    c->errline = c->line;
    return false;
}

bool tpl_oom(rctx *c) { return tpl_fail(c, TE_NOMEM, "out of memory"); }

bool tpl_nest_enter(rctx *c) {
    if (++c->nest <= TPL_MAX_NEST) return true;
    c->nest--;
    return tpl_fail(c, TE_LIMIT, "the template nests evaluation deeper than %d levels (recursive macros or loops)",
                    TPL_MAX_NEST);
}

bool tpl_fail_steps(rctx *c) {
    return tpl_fail(c, TE_LIMIT, "the template ran more than %llu evaluation steps (a loop too long?)",
                    (unsigned long long)c->lim.max_steps);
}

bool tpl_fail_undef(rctx *c, val u) {
    vundef *x = (vundef *)u.u.o;
    if (!x) return tpl_fail(c, TE_UNDEFINED, "'undefined' is undefined");
    strbuf sb = STRBUF_INIT;
    switch ((undef_kind)x->kind) {
    case UNDEF_NAME:
        if (!py_repr(c, &sb, x->name)) break;
        sb_puts(&sb, " is undefined");
        break;
    case UNDEF_ATTR:
        py_repr_string(&sb, x->objtype, strlen(x->objtype));
        sb_puts(&sb, " has no attribute ");
        py_repr(c, &sb, x->name);
        break;
    case UNDEF_ELEMENT:
        sb_printf(&sb, "%s has no element ", x->objtype);
        py_repr(c, &sb, x->name);
        break;
    case UNDEF_HINT:
    case UNDEF_UNSAFE:
        if (x->hint) sb_append(&sb, x->hint->s, x->hint->len);
        break;
    }
    bool r = tpl_fail(c, x->kind == UNDEF_UNSAFE ? TE_SECURITY : TE_UNDEFINED, "%s", sb_str(&sb));
    sb_free(&sb);
    return r;
}

/* ---- registry of cycle-capable objects ------------------------------------------------------ */

void registry_add(rctx *c, obj *o) {
    o->flags |= OBJ_REGISTERED;
    o->reg_next = c->reg.reg_next;
    o->reg_prev = &c->reg;
    c->reg.reg_next->reg_prev = o;
    c->reg.reg_next = o;
}

void registry_unlink(obj *o) {
    o->reg_prev->reg_next = o->reg_next;
    o->reg_next->reg_prev = o->reg_prev;
    o->reg_prev = o->reg_next = NULL;
    o->flags &= (uint8_t)~OBJ_REGISTERED;
}

/* ---- scopes ----------------------------------------------------------------------------------- */

scope *scope_new(rctx *c, scope *parent) {
    scope *s = calloc(1, sizeof *s);
    if (!s) {
        tpl_oom(c);
        return NULL;
    }
    s->h.rc = 1;
    s->h.type = V_SCOPE;
    s->parent = obj_ref(parent);
    registry_add(c, &s->h);
    return s;
}

uint64_t tpl_name_hash(const char *name, size_t len) { return hash_bytes(name, len, 7); }

bool scope_set(rctx *c, scope *s, const char *name, size_t len, val v) {
    uint64_t h = tpl_name_hash(name, len);
    for (size_t i = 0; i < s->n; i++)
        if (s->vars[i].hash == h && s->vars[i].len == len && !memcmp(s->vars[i].name, name, len)) {
            val old = s->vars[i].v;
            s->vars[i].v = v;
            v_unref(old);
            return true;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        scope_var *p = realloc(s->vars, cap * sizeof *p);
        if (!p) {
            v_unref(v);
            return tpl_oom(c);
        }
        s->vars = p;
        s->cap = cap;
    }
    s->vars[s->n++] = (scope_var){name, len, h, v};
    return true;
}

val *scope_lookup(scope *s, const char *name, size_t len, uint64_t h) {
    for (; s; s = s->parent)
        for (size_t i = 0; i < s->n; i++)
            if (s->vars[i].hash == h && s->vars[i].len == len && !memcmp(s->vars[i].name, name, len))
                return &s->vars[i].v;
    return NULL;
}

void scope_children(scope *s, void (*fn)(val *v, void *arg), void *arg) {
    for (size_t i = 0; i < s->n; i++) fn(&s->vars[i].v, arg);
    if (s->parent) {
        val p = v_obj(V_SCOPE, s->parent);
        fn(&p, arg);
        s->parent = p.t == V_SCOPE ? (scope *)p.u.o : NULL;
    }
}

void scope_clear_vars(scope *s) { s->n = 0; }

void scope_dealloc(scope *s) {
    free(s->vars);
    free(s);
}

/* ---- call arguments ---------------------------------------------------------------------------- */

void callargs_free(callargs *a) {
    for (int i = 0; i < a->n; i++) v_unref(a->pos[i]);
    for (int i = 0; i < a->nk; i++) v_unref(a->kv[i]);
    free(a->pos);
    free(a->kn);
    free(a->kv);
    v_unref(a->hold);
    memset(a, 0, sizeof *a);
}

bool args_bind(rctx *c, const callargs *a, const char *fname, int lead, int np, const char *const *names, int nreq,
               val *out, bool *given) {
    for (int i = 0; i < np; i++) {
        out[i] = v_undef();
        given[i] = false;
    }
    if (a->n > np) {
        if (lead > 0) {
            int lo = lead + nreq, hi = lead + np, got = lead + a->n;
            if (lo == hi)
                return tpl_fail(c, TE_TYPE, "%s() takes %d positional argument%s but %d were given", fname, hi,
                                hi == 1 ? "" : "s", got);
            return tpl_fail(c, TE_TYPE, "%s() takes from %d to %d positional arguments but %d were given", fname, lo,
                            hi, got);
        }
        if (np == 0) return tpl_fail(c, TE_TYPE, "%s() takes no arguments (%d given)", fname, a->n);
        return tpl_fail(c, TE_TYPE, "%s() takes at most %d argument%s (%d given)", fname, np, np == 1 ? "" : "s", a->n);
    }
    for (int i = 0; i < a->n; i++) {
        out[i] = a->pos[i];
        given[i] = true;
    }
    for (int k = 0; k < a->nk; k++) {
        int j = -1;
        for (int i = 0; i < np; i++)
            if (!strcmp(names[i], a->kn[k])) j = i;
        if (j < 0) return tpl_fail(c, TE_TYPE, "%s() got an unexpected keyword argument '%s'", fname, a->kn[k]);
        if (given[j]) return tpl_fail(c, TE_TYPE, "%s() got multiple values for argument '%s'", fname, a->kn[k]);
        out[j] = a->kv[k];
        given[j] = true;
    }
    for (int i = 0; i < nreq; i++)
        if (!given[i])
            return tpl_fail(c, TE_TYPE, "%s() missing 1 required positional argument: '%s'", fname, names[i]);
    return true;
}

/* ---- output ------------------------------------------------------------------------------------- */

bool tpl_out_append(rctx *c, const char *s, size_t n) {
    if (c->out->len + n > c->lim.max_output)
        return tpl_fail(c, TE_LIMIT, "the rendered text exceeds the output limit of %zu bytes", c->lim.max_output);
    sb_append(c->out, s, n);
    return !sb_failed(c->out) || tpl_oom(c);
}

bool tpl_out_value(rctx *c, val v) {
    if (v.t == V_STR) return tpl_out_append(c, V_S(v)->s, V_S(v)->len);
    size_t before = c->out->len;
    if (!py_str(c, c->out, v)) return false;
    if (c->out->len > c->lim.max_output) {
        c->out->len = before;
        return tpl_fail(c, TE_LIMIT, "the rendered text exceeds the output limit of %zu bytes", c->lim.max_output);
    }
    return true;
}

/* ---- expressions --------------------------------------------------------------------------------- */


static bool lookup_name(rctx *c, scope *s, const char *name, size_t len, val *out) {
    val *v = scope_lookup(s, name, len, tpl_name_hash(name, len));
    if (v) {
        *out = v_ref(*v);
        return true;
    }
    int r = global_lookup(c, name, len, out);
    if (r < 0) return false;
    if (r > 0) return true;
    val nm = v_str(name, len);
    if (nm.t != V_STR) return tpl_oom(c);
    vundef *u = undef_new(UNDEF_NAME, NULL, nm, NULL);
    if (!u) return tpl_oom(c);
    *out = v_obj(V_UNDEF, u);
    return true;
}

static bool push_pos(rctx *c, callargs *a, val v, int *cap) {
    if (a->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        val *p = realloc(a->pos, (size_t)*cap * sizeof *p);
        if (!p) {
            v_unref(v);
            return tpl_oom(c);
        }
        a->pos = p;
    }
    a->pos[a->n++] = v;
    return true;
}

static bool push_kw(rctx *c, callargs *a, const char *name, val v, int *cap) {
    for (int i = 0; i < a->nk; i++)
        if (!strcmp(a->kn[i], name)) {
            v_unref(v);
            return tpl_fail(c, TE_TYPE, "got multiple values for keyword argument '%s'", name);
        }
    if (a->nk == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        const char **kn = realloc(a->kn, (size_t)*cap * sizeof *kn);
        if (kn) a->kn = kn;
        val *kv = kn ? realloc(a->kv, (size_t)*cap * sizeof *kv) : NULL;
        if (!kv) {
            v_unref(v);
            return tpl_oom(c);
        }
        a->kv = kv;
    }
    a->kn[a->nk] = name;
    a->kv[a->nk++] = v;
    return true;
}

/* Evaluates the arguments of a call, filter or test node (v, names/w, *c, **d). */
bool tpl_eval_args(rctx *c, scope *s, const tnode *n, callargs *a) {
    memset(a, 0, sizeof *a);
    int pcap = 0, kcap = 0;
    for (int i = 0; i < n->nv; i++) {
        val v;
        if (!tpl_eval(c, s, n->v[i], &v) || !push_pos(c, a, v, &pcap)) return false;
    }
    if (n->c) {
        val v;
        if (!tpl_eval(c, s, n->c, &v)) return false;
        vlist *l;
        bool ok = op_iterate(c, v, &l);
        v_unref(v);
        if (!ok) return false;
        for (size_t i = 0; i < l->n; i++)
            if (!push_pos(c, a, v_ref(l->items[i]), &pcap)) {
                obj_unref(l);
                return false;
            }
        obj_unref(l);
    }
    for (int i = 0; i < n->nw; i++) {
        val v;
        if (!tpl_eval(c, s, n->w[i], &v) || !push_kw(c, a, n->names[i], v, &kcap)) return false;
    }
    if (n->d) {
        val v;
        if (!tpl_eval(c, s, n->d, &v)) return false;
        a->hold = v;
        if (v.t != V_DICT) return tpl_fail(c, TE_TYPE, "argument after ** must be a mapping, not %s", v_type_name(v));
        vdict *d = V_D(v);
        for (size_t i = 0; i < d->n; i++) {
            if (d->keys[i].t != V_STR) return tpl_fail(c, TE_TYPE, "keywords must be strings");
            if (!push_kw(c, a, V_S(d->keys[i])->s, v_ref(d->vals[i]), &kcap)) return false;
        }
    }
    return true;
}

static bool eval_filter(rctx *c, scope *s, const tnode *n, val input, val *out) {
    if (n->flags & NF_SOFT_UNKNOWN) {
        strbuf b = STRBUF_INIT;
        py_repr_string(&b, n->s, strlen(n->s));
        bool r = tpl_fail(c, TE_RUNTIME, "No %s named %s found.", n->kind == N_FILTER ? "filter" : "test", sb_str(&b));
        sb_free(&b);
        return r;
    }
    callargs a;
    if (!tpl_eval_args(c, s, n, &a)) {
        callargs_free(&a);
        return false;
    }
    c->line = n->line;
    bool ok;
    if (n->kind == N_FILTER) ok = tpl_call_filter(c, n->fn, n->s, input, &a, out);
    else {
        bool r = false;
        ok = tpl_call_test(c, n->fn, n->s, input, &a, &r);
        if (ok) *out = v_bool(r);
    }
    callargs_free(&a);
    return ok;
}

bool tpl_eval_filter_chain(rctx *c, scope *s, const tnode *f, val input, val *out) {
    /* a chain a|f1|f2 is nested as f2(f1(a)); inside blocks the innermost a is NULL */
    if (f->a) {
        val x;
        if (!tpl_eval_filter_chain(c, s, f->a, input, &x)) return false;
        bool ok = eval_filter(c, s, f, x, out);
        v_unref(x);
        return ok;
    }
    return eval_filter(c, s, f, input, out);
}

static bool eval_compare(rctx *c, scope *s, const tnode *n, val *out) {
    val left;
    if (!tpl_eval(c, s, n->a, &left)) return false;
    bool res = true;
    for (int i = 0; i < n->nv; i++) {
        val right;
        if (!tpl_eval(c, s, n->v[i], &right)) {
            v_unref(left);
            return false;
        }
        bool ok = op_compare(c, n->ops[i], left, right, &res);
        v_unref(left);
        left = right;
        if (!ok) {
            v_unref(left);
            return false;
        }
        if (!res) break;
    }
    v_unref(left);
    *out = v_bool(res);
    return true;
}

static bool eval_seq(rctx *c, scope *s, const tnode *n, bool tuple, val *out) {
    vlist *l = list_new((size_t)n->nv);
    if (!l) return tpl_oom(c);
    if (tuple) l->h.flags |= OBJ_TUPLE;
    for (int i = 0; i < n->nv; i++) {
        val v;
        if (!tpl_eval(c, s, n->v[i], &v)) {
            obj_unref(l);
            return false;
        }
        l->items[l->n++] = v;
    }
    *out = v_obj(V_LIST, l);
    return true;
}

static bool eval_dict(rctx *c, scope *s, const tnode *n, val *out) {
    vdict *d = dict_new((size_t)n->nv);
    if (!d) return tpl_oom(c);
    for (int i = 0; i < n->nv; i++) {
        val k, v;
        if (!tpl_eval(c, s, n->v[i], &k)) goto bad;
        uint64_t h;
        if (!v_hash(k, &h)) {
            tpl_fail(c, TE_TYPE, "unhashable type: '%s'", v_type_name(k));
            v_unref(k);
            goto bad;
        }
        if (!tpl_eval(c, s, n->w[i], &v)) {
            v_unref(k);
            goto bad;
        }
        if (!dict_set(d, k, v)) {
            tpl_oom(c);
            goto bad;
        }
    }
    *out = v_obj(V_DICT, d);
    return true;
bad:
    obj_unref(d);
    return false;
}

static bool eval_concat(rctx *c, scope *s, const tnode *n, val *out) {
    strbuf sb = STRBUF_INIT;
    for (int i = 0; i < n->nv; i++) {
        val v;
        if (!tpl_eval(c, s, n->v[i], &v)) {
            sb_free(&sb);
            return false;
        }
        bool ok = py_str(c, &sb, v);
        v_unref(v);
        if (!ok) {
            sb_free(&sb);
            return false;
        }
        if (sb.len > c->lim.max_output) {
            sb_free(&sb);
            return tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
        }
    }
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

static bool eval_slice_part(rctx *c, scope *s, const tnode *n, val *out) {
    if (!n) {
        *out = v_none();
        return true;
    }
    return tpl_eval(c, s, n, out);
}

static bool eval_node(rctx *c, scope *s, const tnode *n, val *out);

/* Every value is charged by its size too, so loops over big strings stay within max_steps. */
bool tpl_eval(rctx *c, scope *s, const tnode *n, val *out) {
    if (!tpl_nest_enter(c)) return false;
    bool ok = eval_node(c, s, n, out);
    c->nest--;
    if (!ok) return false;
    if (out->t == V_STR && V_S(*out)->len >= 1024 && !STEP(c, V_S(*out)->len / 64)) {
        v_unref(*out);
        return false;
    }
    return true;
}

static bool eval_node(rctx *c, scope *s, const tnode *n, val *out) {
    if (!STEP(c, 1)) return false;
    c->line = n->line;
    switch ((node_kind)n->kind) {
    case N_CONST: *out = v_ref(n->k); return true;
    case N_NAME: return lookup_name(c, s, n->s, n->n, out);
    case N_TUPLE: return eval_seq(c, s, n, true, out);
    case N_LIST: return eval_seq(c, s, n, false, out);
    case N_DICT: return eval_dict(c, s, n, out);
    case N_GETATTR: {
        val o;
        if (!tpl_eval(c, s, n->a, &o)) return false;
        c->line = n->line;
        bool ok = op_getattr(c, o, n->s, n->n, out);
        v_unref(o);
        return ok;
    }
    case N_GETITEM: {
        val o, k;
        if (!tpl_eval(c, s, n->a, &o)) return false;
        if (n->b->kind == N_SLICE) {
            val st, sp, sl;
            const tnode *x = n->b;
            if (!eval_slice_part(c, s, x->a, &st)) goto bad_o;
            if (!eval_slice_part(c, s, x->b, &sp)) {
                v_unref(st);
                goto bad_o;
            }
            if (!eval_slice_part(c, s, x->c, &sl)) {
                v_unref(st);
                v_unref(sp);
                goto bad_o;
            }
            c->line = n->line;
            bool ok = op_slice(c, o, st, sp, sl, out);
            v_unref(st);
            v_unref(sp);
            v_unref(sl);
            v_unref(o);
            return ok;
        }
        if (!tpl_eval(c, s, n->b, &k)) goto bad_o;
        c->line = n->line;
        bool ok = op_getitem(c, o, k, out);
        v_unref(k);
        v_unref(o);
        return ok;
    bad_o:
        v_unref(o);
        return false;
    }
    case N_SLICE: return tpl_fail(c, TE_SYNTAX, "a slice outside a subscript");
    case N_CALL: {
        val fn;
        if (!tpl_eval(c, s, n->a, &fn)) return false;
        callargs a;
        bool ok = tpl_eval_args(c, s, n, &a);
        c->line = n->line;
        if (ok) ok = op_call(c, fn, &a, out);
        callargs_free(&a);
        v_unref(fn);
        return ok;
    }
    case N_FILTER:
    case N_TEST: {
        val in;
        if (!n->a) return tpl_fail(c, TE_SYNTAX, "a filter without input");
        if (!tpl_eval(c, s, n->a, &in)) return false;
        bool ok = eval_filter(c, s, n, in, out);
        v_unref(in);
        return ok;
    }
    case N_NEG:
    case N_POS: {
        val a;
        if (!tpl_eval(c, s, n->a, &a)) return false;
        bool ok = op_neg(c, a, n->kind == N_NEG, out);
        v_unref(a);
        return ok;
    }
    case N_NOT: {
        val a;
        if (!tpl_eval(c, s, n->a, &a)) return false;
        *out = v_bool(!v_truthy(a));
        v_unref(a);
        return true;
    }
    case N_BINOP: {
        val a, b;
        if (!tpl_eval(c, s, n->a, &a)) return false;
        if (!tpl_eval(c, s, n->b, &b)) {
            v_unref(a);
            return false;
        }
        c->line = n->line;
        bool ok = op_binary(c, n->op, a, b, out);
        v_unref(a);
        v_unref(b);
        return ok;
    }
    case N_AND:
    case N_OR: {
        val a;
        if (!tpl_eval(c, s, n->a, &a)) return false;
        if (v_truthy(a) == (n->kind == N_OR)) {
            *out = a;
            return true;
        }
        v_unref(a);
        return tpl_eval(c, s, n->b, out);
    }
    case N_COMPARE: return eval_compare(c, s, n, out);
    case N_CONDEXPR: {
        val t;
        if (!tpl_eval(c, s, n->a, &t)) return false;
        bool yes = v_truthy(t);
        v_unref(t);
        if (yes) return tpl_eval(c, s, n->b, out);
        if (n->c) return tpl_eval(c, s, n->c, out);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the inline if-expression on line %d evaluated to false and no else section was defined.", n->line);
        *out = undef_hint(msg);
        return out->u.o || tpl_oom(c);
    }
    case N_CONCAT: return eval_concat(c, s, n, out);
    default: return tpl_fail(c, TE_SYNTAX, "not an expression");
    }
}

