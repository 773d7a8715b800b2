/* eval.h: the render context shared by the evaluator, filters, tests, methods and the
 * Python string functions: errors (Python exception classes with Jinja2's messages),
 * variable scopes, call arguments, limits. */
#ifndef FORGE_TEMPLATE_EVAL_H
#define FORGE_TEMPLATE_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "template/ast.h"
#include "template/value.h"

/* The Python exception a render failed with; its class name prefixes messages except for
 * TemplateError (raise_exception's message is reported verbatim). */
typedef enum tpl_errkind {
    TE_NONE,
    TE_TEMPLATE,   /* TemplateError: raise_exception(msg) */
    TE_UNDEFINED,  /* UndefinedError */
    TE_SECURITY,   /* SecurityError */
    TE_SYNTAX,     /* TemplateSyntaxError */
    TE_ASSERTION,  /* TemplateAssertionError */
    TE_RUNTIME,    /* TemplateRuntimeError */
    TE_FILTERARG,  /* FilterArgumentError */
    TE_TYPE,       /* TypeError */
    TE_VALUE,      /* ValueError */
    TE_ZERODIV,    /* ZeroDivisionError */
    TE_OVERFLOW,   /* OverflowError */
    TE_KEY,        /* KeyError */
    TE_INDEX,      /* IndexError */
    TE_ATTRIBUTE,  /* AttributeError */
    TE_RECURSION,  /* RecursionError */
    TE_LIMIT,      /* Forge's sandbox limits (output size, steps, depth) */
    TE_UNSUPPORTED, /* a Jinja2 feature Forge does not implement */
    TE_NOMEM,
} tpl_errkind;

const char *tpl_errkind_name(tpl_errkind k);

/* The evaluator walks the tree recursively: each expression or statement under evaluation is
 * a level (a few C frames). A parsed expression is at most TPL_MAX_EXPR_DEPTH deep and blocks
 * nest at most 200 deep, but macro calls and recursive loops re-enter the tree, so the levels
 * are counted and capped here, whatever max_depth allows. Measured with recursive macros,
 * call blocks, loops and filters: at most 330 bytes of stack a level in the -O2 build, 530 at
 * -O0, 1.3 KB under ASan, so TPL_MAX_NEST levels take under 3 MB even under ASan; the deepest
 * render in the test suite (every fixture template and golden) reaches 35 levels. */
enum { TPL_MAX_NEST = 2000 };

typedef struct tpl_limits {
    size_t max_output;  /* bytes of rendered text and of any one string value */
    uint64_t max_steps; /* evaluation steps: nodes evaluated, loop iterations, items sorted */
    int max_depth;      /* nested macro calls, recursive loops, call blocks */
} tpl_limits;

/* A variable scope: a for-loop iteration, a macro call, a with block, the template's top
 * level. Reference-counted (macros keep their defining scope alive) and registered with the
 * render so that cycles are broken at its end. */
typedef struct scope_var {
    const char *name;
    size_t len;
    uint64_t hash;
    val v;
} scope_var;

typedef struct scope {
    obj h;
    struct scope *parent; /* strong */
    size_t n, cap;
    scope_var *vars;
} scope;

typedef struct rctx {
    strbuf *out;          /* where output goes now (swapped for captures) */
    scope *globals_scope; /* render variables (messages, tools, special tokens, kwargs) */
    scope *root;          /* the template's top-level scope */
    tpl_limits lim;
    uint64_t steps;
    int depth;            /* macro/loop recursion */
    int nest;             /* expressions and statements being evaluated (TPL_MAX_NEST) */
    int line;             /* line of the node being evaluated */
    tpl_errkind err;
    char *errmsg;         /* malloc'd */
    int errline;
    obj reg;              /* registry sentinel of cycle-capable objects */
    int64_t now;          /* seconds since the epoch for strftime_now; < 0: live clock */
    bool now_utc;
} rctx;

/* Sets the render's error (the first one wins) and returns false. */
bool tpl_fail(rctx *c, tpl_errkind k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool tpl_oom(rctx *c);
/* Raises the error an Undefined value carries (UndefinedError, or SecurityError). */
bool tpl_fail_undef(rctx *c, val u);
/* Counts n steps; fails with TE_LIMIT beyond the budget. */
static inline bool tpl_step(rctx *c, uint64_t n) {
    c->steps += n;
    if (c->steps > c->lim.max_steps) return false;
    return true;
}
bool tpl_fail_steps(rctx *c);
/* Counts a level of evaluation (c->nest; the caller decrements it); fails with TE_LIMIT past
 * TPL_MAX_NEST. */
bool tpl_nest_enter(rctx *c);
#define STEP(c, n) (tpl_step((c), (n)) || tpl_fail_steps(c))
/* Charges n steps for a result already in *out; on failure drops it (the caller owns nothing). */
static inline bool out_step(rctx *c, val *out, uint64_t n) {
    if (STEP(c, n)) return true;
    v_unref(*out);
    *out = v_undef();
    return false;
}

void registry_add(rctx *c, obj *o);
void registry_unlink(obj *o);

/* scopes (eval.c) */
scope *scope_new(rctx *c, scope *parent);
/* Binds name (borrowed: must outlive the scope) to v (taken). */
bool scope_set(rctx *c, scope *s, const char *name, size_t len, val v);
/* The variable's value (borrowed) or NULL, searching parents. */
val *scope_lookup(scope *s, const char *name, size_t len, uint64_t hash);
void scope_children(scope *s, void (*fn)(val *v, void *arg), void *arg);
void scope_dealloc(scope *s);
void scope_clear_vars(scope *s);
int cmp_int_float(int64_t i, double f);

/* Call arguments: positional then keyword (names borrowed). Values are owned. */
typedef struct callargs {
    int n;
    val *pos;
    int nk;
    const char **kn;
    val *kv;
    val hold; /* keeps the names of **kwargs alive */
} callargs;

void callargs_free(callargs *a);
/* Binds arguments to parameters as Python does for a function `fname(p0, p1, ...)`:
 * out[i] is borrowed from a (or v_undef() with *given[i] false). nreq parameters are
 * required. Fails with a TypeError naming fname on extra, duplicate or unknown arguments:
 * lead = 0 words it as a builtin does, lead > 0 as a Python function with lead positional
 * parameters before these (the filtered value, the environment). */
bool args_bind(rctx *c, const callargs *a, const char *fname, int lead, int nparams,
               const char *const *names, int nreq, val *out, bool *given);

/* ---- operations (ops.c) ---------------------------------------------------------------- */
bool op_binary(rctx *c, int op, val a, val b, val *out);
bool op_neg(rctx *c, val a, bool neg, val *out);
/* Python's a < b (and the others through it); TypeError for unorderable types. */
bool op_compare(rctx *c, int op, val a, val b, bool *res);
bool op_contains(rctx *c, val container, val item, bool *res);
/* Jinja2 sandbox getattr (`x.name`) and getitem (`x[key]`). */
bool op_getattr(rctx *c, val obj, const char *name, size_t n, val *out);
bool op_getitem(rctx *c, val obj, val key, val *out);
bool op_slice(rctx *c, val obj, val start, val stop, val step, val *out);
/* Python's len(); TypeError when the value has none. */
bool op_len(rctx *c, val v, int64_t *n);
/* Python's iter() fully drained into a new list (consuming a one-shot iterator). */
bool op_iterate(rctx *c, val v, vlist **out);
/* Calls a callable value. */
bool op_call(rctx *c, val fn, callargs *a, val *out);
/* A new undefined carrying "'<type> object' has no attribute 'name'". */
val undef_attr(val obj, const char *name, size_t n);
val undef_element(val obj, val key);
val undef_hint(const char *msg);
/* Sorts items in place by Python's `<` on keys[i] (stable; reverse keeps stability). */
bool py_sort(rctx *c, val *items, val *keys, size_t n, bool reverse);

/* ---- builtins (filters.c, tests.c, methods.c) ------------------------------------------ */
typedef bool (*filter_fn)(rctx *c, val in, callargs *a, val *out);
typedef bool (*test_fn)(rctx *c, val in, callargs *a, bool *out);
bool tpl_call_filter(rctx *c, int idx, const char *name, val in, callargs *a, val *out);
bool tpl_call_test(rctx *c, int idx, const char *name, val in, callargs *a, bool *out);
/* Looks up a filter or test by a runtime name (map/select) */
int tpl_filter_index(const char *name);
int tpl_test_index(const char *name);

/* Method or attribute of a builtin type: sets *out and returns 1 when found, 0 when the type
 * has no such attribute, -1 on error. */
int method_lookup(rctx *c, val self, const char *name, size_t n, val *out);
/* Calls a builtin function (V_FUNC). */
bool func_call(rctx *c, vfunc *f, callargs *a, val *out);
/* Global functions by name (range, dict, namespace, ...): 1 found, 0 not. */
int global_lookup(rctx *c, const char *name, size_t n, val *out);
val func_new(int id, const char *name, val self); /* takes self */

/* make_attrgetter("a.b.0") applied to item: Jinja2's environment.getitem per part. */
bool attr_path_get(rctx *c, val item, val attr, val *out);

/* ---- evaluation (eval.c, exec.c) -------------------------------------------------------- */
uint64_t tpl_name_hash(const char *name, size_t len);
/* Evaluates an expression node into *out (a new reference). */
bool tpl_eval(rctx *c, scope *s, const tnode *n, val *out);
bool tpl_eval_args(rctx *c, scope *s, const tnode *n, callargs *a);
/* Applies a filter chain (N_FILTER nodes whose innermost input is NULL) to input. */
bool tpl_eval_filter_chain(rctx *c, scope *s, const tnode *f, val input, val *out);
bool tpl_out_append(rctx *c, const char *s, size_t n);
bool tpl_out_value(rctx *c, val v);
bool eval_macro_call(rctx *c, vmacro *m, callargs *a, val *out);
bool eval_loop_call(rctx *c, vloop *l, callargs *a, val *out);

#endif
