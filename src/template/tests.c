/* tests.c: Jinja2's builtin tests (`x is defined`, `x is string`, `x is equalto y`, ...)
 * with jinja2/tests.py's definitions (bool counts as a number, Undefined is iterable, ...). */
#include <string.h>

#include "template/eval.h"
#include "template/pystr.h"
#include "template/strmeth.h"

static bool no_args(rctx *c, callargs *a, const char *fname) {
    bool given;
    return args_bind(c, a, fname, 1, 0, NULL, 0, NULL, &given);
}

static bool one_arg(rctx *c, callargs *a, const char *fname, const char *pname, val *arg) {
    const char *names[1] = {pname};
    bool given;
    return args_bind(c, a, fname, 1, 1, names, 1, arg, &given);
}

typedef enum {
    T_ODD, T_EVEN, T_DIVISIBLEBY, T_DEFINED, T_UNDEFINED, T_FILTER, T_TEST, T_NONE, T_BOOLEAN, T_FALSE,
    T_TRUE, T_INTEGER, T_FLOAT, T_LOWER, T_UPPER, T_STRING, T_MAPPING, T_NUMBER, T_SEQUENCE,
    T_ITERABLE, T_CALLABLE, T_SAMEAS, T_ESCAPED, T_IN, T_EQ, T_NE, T_GT, T_GE, T_LT, T_LE,
} test_id;

static const struct {
    const char *name;
    test_id id;
} g_tests[] = {
    {"odd", T_ODD},         {"even", T_EVEN},         {"divisibleby", T_DIVISIBLEBY}, {"defined", T_DEFINED},
    {"undefined", T_UNDEFINED}, {"filter", T_FILTER}, {"test", T_TEST},           {"none", T_NONE},
    {"boolean", T_BOOLEAN}, {"false", T_FALSE},       {"true", T_TRUE},           {"integer", T_INTEGER},
    {"float", T_FLOAT},     {"lower", T_LOWER},       {"upper", T_UPPER},         {"string", T_STRING},
    {"mapping", T_MAPPING}, {"number", T_NUMBER},     {"sequence", T_SEQUENCE},   {"iterable", T_ITERABLE},
    {"callable", T_CALLABLE}, {"sameas", T_SAMEAS},   {"escaped", T_ESCAPED},     {"in", T_IN},
    {"==", T_EQ},           {"eq", T_EQ},             {"equalto", T_EQ},          {"!=", T_NE},
    {"ne", T_NE},           {">", T_GT},              {"gt", T_GT},               {"greaterthan", T_GT},
    {"ge", T_GE},           {">=", T_GE},             {"<", T_LT},                {"lt", T_LT},
    {"lessthan", T_LT},     {"<=", T_LE},             {"le", T_LE},
};
enum { N_TESTS = sizeof g_tests / sizeof g_tests[0] };

int tpl_test_index(const char *name) {
    for (int i = 0; i < N_TESTS; i++)
        if (!strcmp(g_tests[i].name, name)) return i;
    return -1;
}

/* value % n == r, with Python's arithmetic */
static bool mod_eq(rctx *c, val v, val n, int64_t r, bool *out) {
    val m;
    if (!op_binary(c, OP_MOD, v, n, &m)) return false;
    *out = v_eq(m, v_int(r));
    v_unref(m);
    return true;
}

static bool case_test(rctx *c, val in, bool upper, bool *out) {
    val s;
    if (!py_str_val(c, in, &s)) return false;
    val r;
    callargs none = {0};
    bool ok = strmeth_call(c, strmeth_lookup(upper ? "isupper" : "islower", 7), V_S(s), &none, &r);
    v_unref(s);
    if (ok) *out = r.u.b;
    return ok;
}

bool tpl_call_test(rctx *c, int idx, const char *name, val in, callargs *a, bool *out) {
    if (idx < 0 || idx >= N_TESTS) return tpl_fail(c, TE_RUNTIME, "No test named '%s' found.", name);
    if (!STEP(c, 1 + (in.t == V_STR ? V_S(in)->len / 64 : 0))) return false;
    val arg;
    switch (g_tests[idx].id) {
    case T_ODD:
    case T_EVEN:
        if (!no_args(c, a, g_tests[idx].id == T_ODD ? "test_odd" : "test_even")) return false;
        return mod_eq(c, in, v_int(2), g_tests[idx].id == T_ODD ? 1 : 0, out);
    case T_DIVISIBLEBY:
        if (!one_arg(c, a, "test_divisibleby", "num", &arg)) return false;
        return mod_eq(c, in, arg, 0, out);
    case T_DEFINED:
    case T_UNDEFINED:
        if (!no_args(c, a, "test_defined")) return false;
        *out = (in.t == V_UNDEF) == (g_tests[idx].id == T_UNDEFINED);
        return true;
    case T_FILTER:
    case T_TEST:
        if (!no_args(c, a, "test_filter")) return false;
        *out = in.t == V_STR &&
               (g_tests[idx].id == T_FILTER ? tpl_filter_index(V_S(in)->s) : tpl_test_index(V_S(in)->s)) >= 0;
        return true;
    case T_NONE: *out = in.t == V_NONE; break;
    case T_BOOLEAN: *out = in.t == V_BOOL; break;
    case T_FALSE: *out = in.t == V_BOOL && !in.u.b; break;
    case T_TRUE: *out = in.t == V_BOOL && in.u.b; break;
    case T_INTEGER: *out = in.t == V_INT; break;
    case T_FLOAT: *out = in.t == V_FLOAT; break;
    case T_LOWER:
    case T_UPPER:
        if (!no_args(c, a, "test_lower")) return false;
        return case_test(c, in, g_tests[idx].id == T_UPPER, out);
    case T_STRING: *out = in.t == V_STR; break;
    case T_MAPPING: *out = in.t == V_DICT; break;
    case T_NUMBER: *out = in.t == V_INT || in.t == V_FLOAT || in.t == V_BOOL; break;
    case T_SEQUENCE: *out = in.t == V_STR || in.t == V_LIST || in.t == V_DICT || in.t == V_UNDEF; break;
    case T_ITERABLE:
        *out = in.t == V_STR || in.t == V_LIST || in.t == V_DICT || in.t == V_UNDEF || in.t == V_ITER || in.t == V_LOOP;
        break;
    case T_CALLABLE: *out = in.t == V_MACRO || in.t == V_FUNC || in.t == V_LOOP || in.t == V_UNDEF; break;
    case T_ESCAPED: *out = in.t == V_STR && (in.u.o->flags & OBJ_MARKUP); break;
    case T_SAMEAS:
        if (!one_arg(c, a, "test_sameas", "other", &arg)) return false;
        if (in.t != arg.t) *out = false;
        else if (in.t == V_NONE) *out = true;
        else if (in.t == V_BOOL) *out = in.u.b == arg.u.b;
        else if (in.t == V_INT) *out = in.u.i == arg.u.i && in.u.i >= -5 && in.u.i <= 256; /* CPython's small ints */
        else if (in.t == V_FLOAT) *out = false;
        else *out = in.u.o == arg.u.o;
        return true;
    case T_IN:
        if (!one_arg(c, a, "test_in", "seq", &arg)) return false;
        return op_contains(c, arg, in, out);
    case T_EQ:
    case T_NE:
    case T_GT:
    case T_GE:
    case T_LT:
    case T_LE: {
        static const char *const opnames[] = {[T_EQ] = "eq", [T_NE] = "ne", [T_GT] = "gt",
                                              [T_GE] = "ge", [T_LT] = "lt", [T_LE] = "le"};
        const char *opn = opnames[g_tests[idx].id];
        if (a->nk) return tpl_fail(c, TE_TYPE, "%s() takes no keyword arguments", opn);
        if (a->n != 1) return tpl_fail(c, TE_TYPE, "%s expected 2 arguments, got %d", opn, 1 + a->n);
        static const int ops[] = {[T_EQ] = OP_EQ, [T_NE] = OP_NE, [T_GT] = OP_GT,
                                  [T_GE] = OP_GTEQ, [T_LT] = OP_LT, [T_LE] = OP_LTEQ};
        return op_compare(c, ops[g_tests[idx].id], in, a->pos[0], out);
    }
    }
    /* the type tests take no arguments */
    if (a->n || a->nk) {
        *out = false;
        return tpl_fail(c, TE_TYPE, "test_%s() takes 1 positional argument but %d were given", g_tests[idx].name, 1 + a->n + a->nk);
    }
    return true;
}
