/* exec.c: statements (output, if, for, set, macro, call, filter/with/generation blocks),
 * macro and recursive-loop calls, and the render entry point that breaks reference cycles
 * when it is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/eval.h"
#include "template/pystr.h"
#include "template/template.h"

typedef enum { FLOW_OK, FLOW_BREAK, FLOW_CONTINUE, FLOW_ERR } flow;

static flow exec(rctx *c, scope *s, const tnode *n);

/* Binds a for/set/with target (name, tuple of targets, or ns.attr) to v, which it takes. */
static bool assign(rctx *c, scope *s, const tnode *t, val v) {
    if (t->kind == N_NAME) return scope_set(c, s, t->s, t->n, v);
    if (t->kind == N_NSREF) {
        val *ns = scope_lookup(s, t->s, t->n, tpl_name_hash(t->s, t->n));
        if (!ns || ns->t != V_NS) {
            v_unref(v);
            return tpl_fail(c, TE_RUNTIME, "cannot assign attribute on non-namespace object");
        }
        val key = v_cstr(t->s2);
        if (key.t != V_STR) {
            v_unref(v);
            return tpl_oom(c);
        }
        return dict_set(V_D(*ns), key, v) || tpl_oom(c);
    }
    /* tuple unpacking */
    if (v.t != V_LIST && v.t != V_STR && v.t != V_DICT && v.t != V_ITER && v.t != V_UNDEF) {
        bool r = tpl_fail(c, TE_TYPE, "cannot unpack non-iterable %s object", v_type_name(v));
        v_unref(v);
        return r;
    }
    vlist *items;
    bool ok = op_iterate(c, v, &items);
    v_unref(v);
    if (!ok) return false;
    if ((int)items->n != t->nv) {
        if ((int)items->n > t->nv) tpl_fail(c, TE_VALUE, "too many values to unpack (expected %d)", t->nv);
        else tpl_fail(c, TE_VALUE, "not enough values to unpack (expected %d, got %zu)", t->nv, items->n);
        obj_unref(items);
        return false;
    }
    for (int i = 0; i < t->nv && ok; i++) ok = assign(c, s, t->v[i], v_ref(items->items[i]));
    obj_unref(items);
    return ok;
}

/* Runs body with output captured into a new string value. */
static flow capture(rctx *c, scope *s, const tnode *body, val *out) {
    strbuf buf = STRBUF_INIT, *saved = c->out;
    c->out = &buf;
    flow f = exec(c, s, body);
    c->out = saved;
    if (f == FLOW_ERR) {
        sb_free(&buf);
        return f;
    }
    *out = v_str_take(&buf);
    sb_free(&buf);
    if (out->t != V_STR) {
        tpl_oom(c);
        return FLOW_ERR;
    }
    return f;
}

/* ---- loops ------------------------------------------------------------------------------------ */

static flow run_loop(rctx *c, scope *s, const tnode *n, vlist *items, int depth0) {
    vloop *L = calloc(1, sizeof *L);
    if (!L) {
        obj_unref(items);
        tpl_oom(c);
        return FLOW_ERR;
    }
    L->h.rc = 1;
    L->h.type = V_LOOP;
    L->items = items;
    L->depth0 = depth0;
    L->fornode = n;
    L->outer = obj_ref(s);
    L->last_changed = v_undef();
    registry_add(c, &L->h);
    flow result = FLOW_OK;
    bool completed = false; /* an iteration ran to its end (Jinja2 runs else only if none did) */
    for (size_t i = 0; i < items->n; i++) {
        if (!STEP(c, 1)) {
            result = FLOW_ERR;
            break;
        }
        L->index0 = i;
        scope *it = scope_new(c, s);
        if (!it || !assign(c, it, n->a, v_ref(items->items[i])) ||
            !scope_set(c, it, "loop", 4, v_obj(V_LOOP, obj_ref(L)))) {
            obj_unref(it);
            result = FLOW_ERR;
            break;
        }
        flow f = exec(c, it, n->c);
        obj_unref(it);
        if (f == FLOW_ERR) {
            result = FLOW_ERR;
            break;
        }
        if (f == FLOW_BREAK) break;
        if (f == FLOW_OK) completed = true;
    }
    if (result == FLOW_OK && !completed && n->d) {
        scope *es = scope_new(c, s);
        result = es ? exec(c, es, n->d) : FLOW_ERR;
        obj_unref(es);
        if (result != FLOW_ERR) result = FLOW_OK;
    }
    obj_unref(L);
    return result;
}

/* Iterates the for statement's iterable, applying its `if` filter. */
static bool loop_items(rctx *c, scope *s, const tnode *n, val iterable, vlist **out) {
    vlist *items;
    if (!op_iterate(c, iterable, &items)) return false;
    if (!n->e) {
        *out = items;
        return true;
    }
    vlist *kept = list_new(items->n);
    if (!kept) {
        obj_unref(items);
        return tpl_oom(c);
    }
    for (size_t i = 0; i < items->n; i++) {
        scope *fs = scope_new(c, s);
        val t;
        bool ok = fs && assign(c, fs, n->a, v_ref(items->items[i])) && tpl_eval(c, fs, n->e, &t);
        obj_unref(fs);
        if (!ok) {
            obj_unref(items);
            obj_unref(kept);
            return false;
        }
        if (v_truthy(t)) kept->items[kept->n++] = v_ref(items->items[i]);
        v_unref(t);
    }
    obj_unref(items);
    *out = kept;
    return true;
}

static flow exec_for(rctx *c, scope *s, const tnode *n) {
    val iterable;
    if (!tpl_eval(c, s, n->b, &iterable)) return FLOW_ERR;
    vlist *items;
    bool ok = loop_items(c, s, n, iterable, &items);
    v_unref(iterable);
    if (!ok) return FLOW_ERR;
    return run_loop(c, s, n, items, 0);
}

bool eval_loop_call(rctx *c, vloop *l, callargs *a, val *out) {
    if (!(l->fornode->flags & NF_RECURSIVE))
        return tpl_fail(c, TE_TYPE, "The loop must have the 'recursive' marker to be called recursively.");
    if (a->n != 1 || a->nk)
        return tpl_fail(c, TE_TYPE, "loop() takes 1 positional argument but %d were given", a->n + a->nk);
    if (++c->depth > c->lim.max_depth) {
        c->depth--;
        return tpl_fail(c, TE_LIMIT, "recursive loops nested deeper than %d", c->lim.max_depth);
    }
    vlist *items;
    bool ok = loop_items(c, l->outer, l->fornode, a->pos[0], &items);
    if (ok) {
        strbuf buf = STRBUF_INIT, *saved = c->out;
        c->out = &buf;
        ok = run_loop(c, l->outer, l->fornode, items, l->depth0 + 1) != FLOW_ERR;
        c->out = saved;
        if (ok) {
            *out = v_str_take(&buf);
            ok = out->t == V_STR || tpl_oom(c);
        }
        sb_free(&buf);
    }
    c->depth--;
    return ok;
}

/* ---- macros ------------------------------------------------------------------------------------ */

static bool bind_macro_args(rctx *c, vmacro *m, scope *ms, callargs *a) {
    const tnode *def = m->def;
    int np = def->nv, ndef = def->nw;
    bool *used = calloc((size_t)a->nk + 1, sizeof *used);
    if (!used) return tpl_oom(c);
    bool ok = true;
    int npos = a->n < np ? a->n : np;
    for (int i = 0; i < npos && ok; i++) ok = scope_set(c, ms, def->v[i]->s, def->v[i]->n, v_ref(a->pos[i]));
    for (int i = npos; i < np && ok; i++) {
        const char *pname = def->v[i]->s;
        int k = -1;
        for (int j = 0; j < a->nk; j++)
            if (!used[j] && !strcmp(a->kn[j], pname)) k = j;
        if (k >= 0) {
            used[k] = true;
            ok = scope_set(c, ms, pname, def->v[i]->n, v_ref(a->kv[k]));
        } else if (i >= np - ndef) {
            val d;
            ok = tpl_eval(c, ms, def->w[i - (np - ndef)], &d) && scope_set(c, ms, pname, def->v[i]->n, d);
        } else {
            char msg[300];
            snprintf(msg, sizeof msg, "parameter '%.200s' was not provided", pname);
            val u = undef_hint(msg);
            ok = u.u.o ? scope_set(c, ms, pname, def->v[i]->n, u) : tpl_oom(c);
        }
    }
    if (ok && (def->flags & NF_CALLER)) {
        int k = -1;
        for (int j = 0; j < a->nk; j++)
            if (!used[j] && !strcmp(a->kn[j], "caller")) k = j;
        val cv;
        if (k >= 0) {
            used[k] = true;
            cv = v_ref(a->kv[k]);
        } else {
            cv = undef_hint("No caller defined");
            if (!cv.u.o) ok = tpl_oom(c);
        }
        if (ok) ok = scope_set(c, ms, "caller", 6, cv);
    }
    if (ok && (def->flags & NF_KWARGS)) {
        vdict *kw = dict_new(0);
        if (!kw) ok = tpl_oom(c);
        for (int j = 0; ok && j < a->nk; j++)
            if (!used[j]) {
                val key = v_cstr(a->kn[j]);
                ok = key.t == V_STR && dict_set(kw, key, v_ref(a->kv[j]));
                if (!ok) tpl_oom(c);
            }
        if (kw) ok = ok ? scope_set(c, ms, "kwargs", 6, v_obj(V_DICT, kw)) : (obj_unref(kw), false);
    } else if (ok) {
        for (int j = 0; j < a->nk; j++)
            if (!used[j]) {
                for (int q = j; q < a->nk; q++)
                    if (!used[q] && !strcmp(a->kn[q], "caller")) {
                        free(used);
                        return tpl_fail(c, TE_TYPE,
                                        "macro '%s' was invoked with two values for the special caller argument. "
                                        "This is most likely a bug.",
                                        m->name);
                    }
                tpl_fail(c, TE_TYPE, "macro '%s' takes no keyword argument '%s'", m->name, a->kn[j]);
                ok = false;
                break;
            }
    }
    free(used);
    if (!ok) return false;
    if (def->flags & NF_VARARGS) {
        vlist *va = list_new(a->n > np ? (size_t)(a->n - np) : 0);
        if (!va) return tpl_oom(c);
        va->h.flags |= OBJ_TUPLE;
        for (int i = np; i < a->n; i++) va->items[va->n++] = v_ref(a->pos[i]);
        return scope_set(c, ms, "varargs", 7, v_obj(V_LIST, va));
    }
    if (a->n > np) return tpl_fail(c, TE_TYPE, "macro '%s' takes not more than %d argument(s)", m->name, np);
    return true;
}

bool eval_macro_call(rctx *c, vmacro *m, callargs *a, val *out) {
    if (++c->depth > c->lim.max_depth) {
        c->depth--;
        return tpl_fail(c, TE_LIMIT, "macro calls nested deeper than %d", c->lim.max_depth);
    }
    scope *ms = scope_new(c, m->closure);
    bool ok = ms && bind_macro_args(c, m, ms, a);
    if (ok) ok = capture(c, ms, m->def->b, out) != FLOW_ERR;
    obj_unref(ms);
    c->depth--;
    return ok;
}

static vmacro *macro_new(rctx *c, const tnode *def, scope *closure, const char *name) {
    vmacro *m = calloc(1, sizeof *m);
    if (!m) {
        tpl_oom(c);
        return NULL;
    }
    m->h.rc = 1;
    m->h.type = V_MACRO;
    m->def = def;
    m->closure = obj_ref(closure);
    m->name = name;
    return m;
}

static flow exec_callblock(rctx *c, scope *s, const tnode *n) {
    const tnode *call = n->a;
    val fn;
    if (!tpl_eval(c, s, call->a, &fn)) return FLOW_ERR;
    callargs a;
    bool ok = tpl_eval_args(c, s, call, &a);
    vmacro *caller = ok ? macro_new(c, n, s, "caller") : NULL;
    if (caller) {
        const char **kn = realloc(a.kn, (size_t)(a.nk + 1) * sizeof *kn);
        if (kn) a.kn = kn;
        val *kv = kn ? realloc(a.kv, (size_t)(a.nk + 1) * sizeof *kv) : NULL;
        if (kv) {
            a.kv = kv;
            a.kn[a.nk] = "caller";
            a.kv[a.nk++] = v_obj(V_MACRO, caller);
        } else {
            obj_unref(caller);
            ok = tpl_oom(c);
        }
    } else ok = false;
    val r = v_undef();
    c->line = n->line;
    if (ok) ok = op_call(c, fn, &a, &r);
    callargs_free(&a);
    v_unref(fn);
    if (ok) ok = tpl_out_value(c, r);
    v_unref(r);
    return ok ? FLOW_OK : FLOW_ERR;
}

/* ---- statements ---------------------------------------------------------------------------------- */

static flow exec_in_new_scope(rctx *c, scope *parent, const tnode *body) {
    scope *ns = scope_new(c, parent);
    if (!ns) return FLOW_ERR;
    flow f = exec(c, ns, body);
    obj_unref(ns);
    return f;
}

static flow exec_node(rctx *c, scope *s, const tnode *n);

static flow exec(rctx *c, scope *s, const tnode *n) {
    if (!tpl_nest_enter(c)) return FLOW_ERR;
    flow f = exec_node(c, s, n);
    c->nest--;
    return f;
}

static flow exec_node(rctx *c, scope *s, const tnode *n) {
    if (!STEP(c, 1)) return FLOW_ERR;
    c->line = n->line;
    switch ((node_kind)n->kind) {
    case N_BODY:
        for (int i = 0; i < n->nv; i++) {
            flow f = exec(c, s, n->v[i]);
            if (f != FLOW_OK) return f;
        }
        return FLOW_OK;
    case N_OUTPUT:
        for (int i = 0; i < n->nv; i++) {
            const tnode *x = n->v[i];
            if (x->kind == N_DATA) {
                if (!tpl_out_append(c, x->s, x->n)) return FLOW_ERR;
                continue;
            }
            val v;
            if (!tpl_eval(c, s, x, &v)) return FLOW_ERR;
            bool ok = tpl_out_value(c, v);
            v_unref(v);
            if (!ok) return FLOW_ERR;
        }
        return FLOW_OK;
    case N_IF: {
        for (const tnode *b = n; b;) {
            val t;
            if (!tpl_eval(c, s, b->a, &t)) return FLOW_ERR;
            bool yes = v_truthy(t);
            v_unref(t);
            if (yes) return exec(c, s, b->b);
            if (!b->c) break;
            if (b->c->kind != N_IF) return exec(c, s, b->c);
            b = b->c;
        }
        return FLOW_OK;
    }
    case N_FOR: return exec_for(c, s, n);
    case N_SET: {
        val v;
        if (!tpl_eval(c, s, n->b, &v)) return FLOW_ERR;
        return assign(c, s, n->a, v) ? FLOW_OK : FLOW_ERR;
    }
    case N_SETBLOCK: {
        scope *bs = scope_new(c, s);
        if (!bs) return FLOW_ERR;
        val v;
        flow f = capture(c, bs, n->b, &v);
        obj_unref(bs);
        if (f == FLOW_ERR) return f;
        if (n->c) {
            val r;
            bool ok = tpl_eval_filter_chain(c, s, n->c, v, &r);
            v_unref(v);
            if (!ok) return FLOW_ERR;
            v = r;
        }
        return assign(c, s, n->a, v) ? FLOW_OK : FLOW_ERR;
    }
    case N_MACRO: {
        vmacro *m = macro_new(c, n, s, n->s);
        if (!m) return FLOW_ERR;
        return scope_set(c, s, n->s, n->n, v_obj(V_MACRO, m)) ? FLOW_OK : FLOW_ERR;
    }
    case N_CALLBLOCK: return exec_callblock(c, s, n);
    case N_FILTERBLOCK: {
        scope *bs = scope_new(c, s);
        if (!bs) return FLOW_ERR;
        val v, r;
        flow f = capture(c, bs, n->b, &v);
        obj_unref(bs);
        if (f == FLOW_ERR) return f;
        bool ok = tpl_eval_filter_chain(c, s, n->a, v, &r);
        v_unref(v);
        if (!ok) return FLOW_ERR;
        ok = tpl_out_value(c, r);
        v_unref(r);
        return ok ? FLOW_OK : FLOW_ERR;
    }
    case N_WITH: {
        scope *ws = scope_new(c, s);
        if (!ws) return FLOW_ERR;
        bool ok = true;
        for (int i = 0; i < n->nv && ok; i++) {
            val v;
            ok = tpl_eval(c, s, n->w[i], &v) && assign(c, ws, n->v[i], v);
        }
        flow f = ok ? exec(c, ws, n->b) : FLOW_ERR;
        obj_unref(ws);
        return f;
    }
    case N_BLOCK: return exec_in_new_scope(c, (n->flags & NF_SCOPED) ? s : c->root, n->b);
    case N_GENERATION: return exec_in_new_scope(c, s, n->b);
    case N_BREAK: return FLOW_BREAK;
    case N_CONTINUE: return FLOW_CONTINUE;
    case N_NOLOADER: tpl_fail(c, TE_TYPE, "no loader for this environment specified"); return FLOW_ERR;
    default: tpl_fail(c, TE_SYNTAX, "not a statement"); return FLOW_ERR;
    }
}

/* ---- templates and rendering --------------------------------------------------------------------- */

/* vLLM's content-format detection: does the template loop over a message's `content`?
 * (A visitor for tpl_walk: stops at the first such loop.) */
static bool content_loop_visit(const tnode *t, int edepth, void *arg) {
    (void)edepth;
    if (t->kind == N_FOR) {
        const tnode *it = t->b;
        if (it->kind == N_FILTER && it->a) it = it->a;
        if ((it->kind == N_GETATTR && !strcmp(it->s, "content")) ||
            (it->kind == N_GETITEM && it->b->kind == N_CONST && it->b->k.t == V_STR &&
             !strcmp(V_S(it->b->k)->s, "content"))) {
            *(bool *)arg = true;
            return false;
        }
    }
    return true;
}

tpl_template *tpl_compile(const char *src, size_t len, tpl_syntax_error *e) {
    memset(e, 0, sizeof *e);
    tpl_template *t = calloc(1, sizeof *t);
    if (!t || !(t->A = arena_create())) {
        free(t);
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return NULL;
    }
    token *toks = NULL;
    size_t ntoks = 0;
    bool ok = tpl_lex(t->A, src, len, &toks, &ntoks, e) && tpl_parse(t->A, toks, ntoks, &t->root, e);
    free(toks);
    if (!ok) {
        tpl_template_free(t);
        return NULL;
    }
    bool found = false;
    if (tpl_walk(t->root, content_loop_visit, &found) < 0) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        tpl_template_free(t);
        return NULL;
    }
    t->content_as_list = found;
    return t;
}

void tpl_template_free(tpl_template *t) {
    if (!t) return;
    arena_free(t->A);
    free(t);
}

/* Breaks every cycle among the render's namespaces, scopes and loops, then frees them. */
static void registry_sweep(rctx *c) {
    size_t n = 0;
    for (obj *o = c->reg.reg_next; o != &c->reg; o = o->reg_next) n++;
    obj **all = malloc((n ? n : 1) * sizeof *all);
    if (!all) {
        /* cannot sweep: unlink so nothing points at the dead sentinel (leaks what cycles) */
        while (c->reg.reg_next != &c->reg) registry_unlink(c->reg.reg_next);
        return;
    }
    size_t k = 0;
    for (obj *o = c->reg.reg_next; o != &c->reg; o = o->reg_next) all[k++] = obj_ref(o);
    for (size_t i = 0; i < k; i++) obj_clear(all[i]);
    for (size_t i = 0; i < k; i++) obj_unref(all[i]);
    free(all);
}

bool tpl_render(const tpl_template *t, const vdict *vars, const tpl_limits *lim, int64_t now, strbuf *out,
                tpl_error *err) {
    rctx c;
    memset(&c, 0, sizeof c);
    c.reg.reg_next = c.reg.reg_prev = &c.reg;
    c.lim = *lim;
    c.out = out;
    c.now = now;
    c.line = 1;
    bool ok = true;
    c.globals_scope = scope_new(&c, NULL);
    if (!c.globals_scope) ok = false;
    for (size_t i = 0; ok && vars && i < vars->n; i++)
        if (vars->keys[i].t == V_STR)
            ok = scope_set(&c, c.globals_scope, V_S(vars->keys[i])->s, V_S(vars->keys[i])->len, v_ref(vars->vals[i]));
    if (ok) {
        c.root = scope_new(&c, c.globals_scope);
        ok = c.root && exec(&c, c.root, t->root) != FLOW_ERR;
    }
    obj_unref(c.root);
    obj_unref(c.globals_scope);
    registry_sweep(&c);
    if (!ok && c.err == TE_NONE) tpl_oom(&c);
    if (ok && sb_failed(out)) {
        ok = false;
        tpl_oom(&c);
    }
    if (err) {
        err->kind = c.err;
        err->line = c.errline;
        snprintf(err->msg, sizeof err->msg, "%s", c.errmsg ? c.errmsg : "out of memory");
    }
    free(c.errmsg);
    return ok;
}
