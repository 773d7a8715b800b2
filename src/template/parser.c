/* parser.c: Jinja2's recursive-descent parser (jinja2/parser.py), producing the tree in
 * ast.h. Operator precedence, the tuple/condexpr rules, filter and test syntax, and the
 * statement set are Jinja2's; error messages follow its TemplateSyntaxError texts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/ast.h"
#include "template/parser_int.h"
#include "template/pystr.h"


const token *p_cur(parser *P) { return &P->t[P->i]; }
static void lex_error(parser *P, const token *k) {
    if (k->type == TK_ERROR) p_fail(P, k->line, "%s", k->s);
}

const token *p_look(parser *P) {
    const token *k = &P->t[P->i + 1 < P->n ? P->i + 1 : P->n - 1];
    lex_error(P, k);
    return k;
}

void p_advance(parser *P) {
    if (P->i + 1 < P->n) P->i++;
    lex_error(P, &P->t[P->i]);
}

void *p_fail(parser *P, int line, const char *fmt, ...) {
    if (P->failed) return NULL;
    P->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->e->msg, sizeof P->e->msg, fmt, ap);
    va_end(ap);
    P->e->line = line;
    P->e->assertion = false;
    return NULL;
}

bool p_is_name(const token *k, const char *name) {
    return k->type == TK_NAME && k->n == strlen(name) && !memcmp(k->s, name, k->n);
}
bool p_is_op(const token *k, int op) { return k->type == TK_OP && k->op == op; }

static const char *op_text(int op) {
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MUL: return "*";
    case OP_MOD: return "%";
    case OP_POW: return "**";
    case OP_TILDE: return "~";
    case OP_LBRACKET: return "[";
    case OP_RBRACKET: return "]";
    case OP_LPAREN: return "(";
    case OP_RPAREN: return ")";
    case OP_LBRACE: return "{";
    case OP_RBRACE: return "}";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_GT: return ">";
    case OP_GTEQ: return ">=";
    case OP_LT: return "<";
    case OP_LTEQ: return "<=";
    case OP_ASSIGN: return "=";
    case OP_DOT: return ".";
    case OP_COLON: return ":";
    case OP_PIPE: return "|";
    case OP_COMMA: return ",";
    case OP_SEMICOLON: return ";";
    default: return "?";
    }
}

/* describe_token, written into buf */
const char *p_describe(const token *k, char *buf, size_t cap) {
    switch ((tok_type)k->type) {
    case TK_NAME: snprintf(buf, cap, "%.*s", (int)(k->n < 200 ? k->n : 200), k->s); return buf;
    case TK_OP: return op_text(k->op);
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data / text";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_BLOCK_END: return "end of statement block";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_ERROR: return "error";
    }
    return "?";
}

/* Python repr of a short ASCII/UTF-8 description */
const char *p_qrepr(const char *s, char *buf, size_t cap) {
    strbuf sb = STRBUF_INIT;
    py_repr_string(&sb, s, strlen(s));
    snprintf(buf, cap, "%s", sb_str(&sb));
    sb_free(&sb);
    return buf;
}

static bool expect_fail(parser *P, const char *what) {
    char b1[256], b2[256], b3[256];
    if (p_cur(P)->type == TK_EOF)
        p_fail(P, p_cur(P)->line, "unexpected end of template, expected %s.", p_qrepr(what, b1, sizeof b1));
    else
        p_fail(P, p_cur(P)->line, "expected token %s, got %s", p_qrepr(what, b1, sizeof b1),
             p_qrepr(p_describe(p_cur(P), b3, sizeof b3), b2, sizeof b2));
    return false;
}

bool p_expect_op(parser *P, int op) {
    if (P->failed) return false;
    if (!p_is_op(p_cur(P), op)) return expect_fail(P, op_text(op));
    p_advance(P);
    return true;
}

bool p_expect_type(parser *P, tok_type t, const char *what) {
    if (P->failed) return false;
    if (p_cur(P)->type != t) return expect_fail(P, what);
    p_advance(P);
    return true;
}

bool p_expect_name(parser *P, const char *name) {
    if (P->failed) return false;
    if (!p_is_name(p_cur(P), name)) return expect_fail(P, name);
    p_advance(P);
    return true;
}

tnode *p_node_new(parser *P, node_kind k, int line) {
    if (++P->nodes > TPL_MAX_NODES)
        return p_fail(P, line, "the template has more than %d syntax nodes", TPL_MAX_NODES);
    tnode *n = arena_alloc(P->A, sizeof *n);
    if (!n) return p_fail(P, line, "out of memory");
    n->kind = (uint8_t)k;
    n->line = line;
    n->fn = -1;
    n->k = v_undef();
    return n;
}


bool p_nl_push(parser *P, nlist *l, tnode *x) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        tnode **p = realloc(l->v, (size_t)cap * sizeof *p);
        if (!p) {
            p_fail(P, p_cur(P)->line, "out of memory");
            return false;
        }
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return true;
}

tnode **p_nl_finish(parser *P, nlist *l, int *count) {
    *count = l->n;
    tnode **out = NULL;
    if (l->n) {
        out = arena_alloc(P->A, (size_t)l->n * sizeof *out);
        if (out) memcpy(out, l->v, (size_t)l->n * sizeof *out);
        else p_fail(P, p_cur(P)->line, "out of memory");
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
    return out;
}

const char *p_tok_str(parser *P, const token *k) {
    char *s = arena_strndup(P->A, k->s, k->n);
    if (!s) p_fail(P, k->line, "out of memory");
    return s;
}

static tnode *const_node(parser *P, int line, val v) {
    /* a constant is never undefined: that is v_str or v_str_take out of memory */
    if (v.t == V_UNDEF) return p_fail(P, line, "out of memory");
    tnode *n = p_node_new(P, N_CONST, line);
    if (!n) {
        v_unref(v);
        return NULL;
    }
    if (v_is_obj(v)) {
        if (!arena_own(P->A, v.u.o)) {
            v_unref(v);
            return p_fail(P, line, "out of memory");
        }
    }
    n->k = v;
    return n;
}

/* ---- expressions ---------------------------------------------------------------------- */

static tnode *parse_unary(parser *P, bool with_filter);
static tnode *parse_postfix(parser *P, tnode *node);
static tnode *parse_filter_expr(parser *P, tnode *node);

bool p_enter(parser *P) {
    if (++P->depth > MAX_NEST) {
        p_fail(P, p_cur(P)->line, "expression nests deeper than %d levels of brackets or operators", MAX_NEST);
        return false;
    }
    return true;
}

bool p_chain_link(parser *P, int *links) {
    if (++*links < TPL_MAX_EXPR_DEPTH) return true;
    p_fail(P, p_cur(P)->line, "expression nests deeper than %d levels", TPL_MAX_EXPR_DEPTH);
    return false;
}

static tnode *parse_or(parser *P);

static tnode *parse_condexpr(parser *P) {
    int line = p_cur(P)->line, links = 0;
    tnode *expr1 = parse_or(P);
    while (expr1 && p_is_name(p_cur(P), "if")) {
        if (!p_chain_link(P, &links)) return NULL;
        p_advance(P);
        bool soft = P->soft;
        P->soft = true;
        tnode *expr2 = parse_or(P);
        tnode *expr3 = NULL;
        if (expr2 && p_is_name(p_cur(P), "else")) {
            p_advance(P);
            if (!p_enter(P)) return NULL; /* `a if x else b if y else ...` nests to the right */
            expr3 = parse_condexpr(P);
            P->depth--;
            if (!expr3) return NULL;
        }
        P->soft = soft;
        if (!expr2) return NULL;
        tnode *n = p_node_new(P, N_CONDEXPR, line);
        if (!n) return NULL;
        n->a = expr2;
        n->b = expr1;
        n->c = expr3;
        expr1 = n;
        line = p_cur(P)->line;
    }
    return expr1;
}

tnode *p_expression(parser *P, bool with_condexpr) {
    if (!p_enter(P)) return NULL;
    tnode *r = with_condexpr ? parse_condexpr(P) : parse_or(P);
    P->depth--;
    return r;
}

static tnode *parse_not(parser *P);
static tnode *parse_and(parser *P);

/* A left-associative chain `operand (word operand)*` of nodes of kind k. */
static tnode *parse_chain(parser *P, const char *word, node_kind k, tnode *(*operand)(parser *)) {
    int line = p_cur(P)->line, links = 0;
    tnode *left = operand(P);
    while (left && p_is_name(p_cur(P), word)) {
        if (!p_chain_link(P, &links)) return NULL;
        p_advance(P);
        tnode *right = operand(P);
        if (!right) return NULL;
        tnode *n = p_node_new(P, k, line);
        if (!n) return NULL;
        n->a = left;
        n->b = right;
        left = n;
        line = p_cur(P)->line;
    }
    return left;
}

static tnode *parse_and(parser *P) { return parse_chain(P, "and", N_AND, parse_not); }
static tnode *parse_or(parser *P) { return parse_chain(P, "or", N_OR, parse_and); }

static tnode *parse_compare(parser *P);
static tnode *parse_not(parser *P) {
    if (p_is_name(p_cur(P), "not")) {
        int line = p_cur(P)->line;
        p_advance(P);
        if (!p_enter(P)) return NULL;
        tnode *x = parse_not(P);
        P->depth--;
        if (!x) return NULL;
        tnode *n = p_node_new(P, N_NOT, line);
        if (n) n->a = x;
        return n;
    }
    return parse_compare(P);
}

static tnode *parse_math1(parser *P);

static tnode *parse_compare(parser *P) {
    int line = p_cur(P)->line;
    tnode *expr = parse_math1(P);
    if (!expr) return NULL;
    nlist operands = {0};
    uint8_t ops[64];
    int nops = 0;
    for (;;) {
        const token *k = p_cur(P);
        int op = OP_NONE;
        if (k->type == TK_OP && (k->op == OP_EQ || k->op == OP_NE || k->op == OP_LT || k->op == OP_LTEQ ||
                                 k->op == OP_GT || k->op == OP_GTEQ)) {
            op = k->op;
            p_advance(P);
        } else if (p_is_name(k, "in")) {
            op = OP_IN;
            p_advance(P);
        } else if (p_is_name(k, "not") && p_is_name(p_look(P), "in")) {
            op = OP_NOTIN;
            p_advance(P);
            p_advance(P);
        } else break;
        if (nops == 64) {
            free(operands.v);
            return p_fail(P, k->line, "too many chained comparisons");
        }
        tnode *x = parse_math1(P);
        if (!x || !p_nl_push(P, &operands, x)) {
            free(operands.v);
            return NULL;
        }
        ops[nops++] = (uint8_t)op;
        line = p_cur(P)->line;
    }
    if (!nops) return expr;
    tnode *n = p_node_new(P, N_COMPARE, line);
    if (!n) {
        free(operands.v);
        return NULL;
    }
    n->a = expr;
    n->v = p_nl_finish(P, &operands, &n->nv);
    n->ops = arena_alloc(P->A, (size_t)nops);
    if (!n->ops) return p_fail(P, line, "out of memory");
    memcpy(n->ops, ops, (size_t)nops);
    return n;
}

static tnode *binop(parser *P, int op, tnode *a, tnode *b, int line) {
    if (!a || !b) return NULL;
    tnode *n = p_node_new(P, N_BINOP, line);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static tnode *parse_concat(parser *P);
static tnode *parse_math1(parser *P) {
    int line = p_cur(P)->line, links = 0;
    tnode *left = parse_concat(P);
    while (left && (p_is_op(p_cur(P), OP_ADD) || p_is_op(p_cur(P), OP_SUB))) {
        if (!p_chain_link(P, &links)) return NULL;
        int op = p_cur(P)->op;
        p_advance(P);
        left = binop(P, op, left, parse_concat(P), line);
        line = p_cur(P)->line;
    }
    return left;
}

static tnode *parse_math2(parser *P);
static tnode *parse_concat(parser *P) {
    int line = p_cur(P)->line;
    tnode *first = parse_math2(P);
    if (!first || !p_is_op(p_cur(P), OP_TILDE)) return first;
    nlist args = {0};
    p_nl_push(P, &args, first);
    while (p_is_op(p_cur(P), OP_TILDE)) {
        p_advance(P);
        tnode *x = parse_math2(P);
        if (!x || !p_nl_push(P, &args, x)) {
            free(args.v);
            return NULL;
        }
    }
    tnode *n = p_node_new(P, N_CONCAT, line);
    if (!n) {
        free(args.v);
        return NULL;
    }
    n->v = p_nl_finish(P, &args, &n->nv);
    return n;
}

static tnode *parse_pow(parser *P);
static tnode *parse_math2(parser *P) {
    int line = p_cur(P)->line, links = 0;
    tnode *left = parse_pow(P);
    while (left && (p_is_op(p_cur(P), OP_MUL) || p_is_op(p_cur(P), OP_DIV) || p_is_op(p_cur(P), OP_FLOORDIV) ||
                    p_is_op(p_cur(P), OP_MOD))) {
        if (!p_chain_link(P, &links)) return NULL;
        int op = p_cur(P)->op;
        p_advance(P);
        left = binop(P, op, left, parse_pow(P), line);
        line = p_cur(P)->line;
    }
    return left;
}

static tnode *parse_pow(parser *P) {
    int line = p_cur(P)->line, links = 0;
    tnode *left = parse_unary(P, true);
    while (left && p_is_op(p_cur(P), OP_POW)) {
        if (!p_chain_link(P, &links)) return NULL;
        p_advance(P);
        left = binop(P, OP_POW, left, parse_unary(P, true), line);
        line = p_cur(P)->line;
    }
    return left;
}

static tnode *parse_unary(parser *P, bool with_filter) {
    const token *k = p_cur(P);
    int line = k->line;
    tnode *node;
    if (!p_enter(P)) return NULL;
    if (p_is_op(k, OP_SUB) || p_is_op(k, OP_ADD)) {
        bool neg = k->op == OP_SUB;
        p_advance(P);
        tnode *x = parse_unary(P, false);
        if (!x) return NULL;
        node = p_node_new(P, neg ? N_NEG : N_POS, line);
        if (!node) return NULL;
        node->a = x;
    } else {
        node = p_primary(P);
    }
    P->depth--;
    if (!node) return NULL;
    node = parse_postfix(P, node);
    if (node && with_filter) node = parse_filter_expr(P, node);
    return node;
}

static tnode *parse_list(parser *P) {
    int line = p_cur(P)->line;
    p_expect_op(P, OP_LBRACKET);
    nlist items = {0};
    while (!P->failed && !p_is_op(p_cur(P), OP_RBRACKET)) {
        if (items.n && !p_expect_op(P, OP_COMMA)) break;
        if (p_is_op(p_cur(P), OP_RBRACKET)) break;
        tnode *x = p_expression(P, true);
        if (!x || !p_nl_push(P, &items, x)) break;
    }
    if (P->failed || !p_expect_op(P, OP_RBRACKET)) {
        free(items.v);
        return NULL;
    }
    tnode *n = p_node_new(P, N_LIST, line);
    if (!n) {
        free(items.v);
        return NULL;
    }
    n->v = p_nl_finish(P, &items, &n->nv);
    return n;
}

static tnode *parse_dict(parser *P) {
    int line = p_cur(P)->line;
    p_expect_op(P, OP_LBRACE);
    nlist keys = {0}, vals = {0};
    while (!P->failed && !p_is_op(p_cur(P), OP_RBRACE)) {
        if (keys.n && !p_expect_op(P, OP_COMMA)) break;
        if (p_is_op(p_cur(P), OP_RBRACE)) break;
        tnode *k = p_expression(P, true);
        if (!k || !p_expect_op(P, OP_COLON)) break;
        tnode *v = p_expression(P, true);
        if (!v || !p_nl_push(P, &keys, k) || !p_nl_push(P, &vals, v)) break;
    }
    if (P->failed || !p_expect_op(P, OP_RBRACE)) {
        free(keys.v);
        free(vals.v);
        return NULL;
    }
    tnode *n = p_node_new(P, N_DICT, line);
    if (!n) {
        free(keys.v);
        free(vals.v);
        return NULL;
    }
    n->v = p_nl_finish(P, &keys, &n->nv);
    n->w = p_nl_finish(P, &vals, &n->nw);
    return n;
}

tnode *p_primary(parser *P) {
    const token *k = p_cur(P);
    char b1[256], b2[256];
    switch ((tok_type)k->type) {
    case TK_NAME:
        p_advance(P);
        if (p_is_name(k, "true") || p_is_name(k, "True")) return const_node(P, k->line, v_bool(true));
        if (p_is_name(k, "false") || p_is_name(k, "False")) return const_node(P, k->line, v_bool(false));
        if (p_is_name(k, "none") || p_is_name(k, "None")) return const_node(P, k->line, v_none());
        {
            tnode *n = p_node_new(P, N_NAME, k->line);
            if (!n) return NULL;
            n->s = p_tok_str(P, k);
            n->n = k->n;
            return n;
        }
    case TK_STRING: {
        p_advance(P);
        if (p_cur(P)->type != TK_STRING) return const_node(P, k->line, v_str(k->s, k->n));
        strbuf sb = STRBUF_INIT;
        sb_append(&sb, k->s, k->n);
        while (p_cur(P)->type == TK_STRING) {
            sb_append(&sb, p_cur(P)->s, p_cur(P)->n);
            p_advance(P);
        }
        return const_node(P, k->line, v_str_take(&sb));
    }
    case TK_INT: p_advance(P); return const_node(P, k->line, v_int(k->i));
    case TK_FLOAT: p_advance(P); return const_node(P, k->line, v_float(k->f));
    case TK_OP:
        if (k->op == OP_LPAREN) {
            p_advance(P);
            tnode *n = p_tuple(P, false, true, NULL, true);
            if (!n || !p_expect_op(P, OP_RPAREN)) return NULL;
            return n;
        }
        if (k->op == OP_LBRACKET) return parse_list(P);
        if (k->op == OP_LBRACE) return parse_dict(P);
        break;
    default: break;
    }
    return p_fail(P, k->line, "unexpected %s", p_qrepr(p_describe(k, b2, sizeof b2), b1, sizeof b1));
}

static bool in_rules(const token *k, const char *const *rules) {
    if (!rules) return false;
    for (int i = 0; rules[i]; i++)
        if (p_is_name(k, rules[i])) return true;
    return false;
}

static bool is_tuple_end(parser *P, const char *const *extra) {
    const token *k = p_cur(P);
    if (k->type == TK_VAR_END || k->type == TK_BLOCK_END || p_is_op(k, OP_RPAREN)) return true;
    return in_rules(k, extra);
}

tnode *p_tuple(parser *P, bool simplified, bool with_condexpr, const char *const *extra_end,
                          bool explicit_parens) {
    int line = p_cur(P)->line;
    nlist args = {0};
    bool is_tuple = false;
    for (;;) {
        if (args.n && !p_expect_op(P, OP_COMMA)) goto bad;
        if (is_tuple_end(P, extra_end)) break;
        tnode *x = simplified ? p_primary(P) : p_expression(P, with_condexpr);
        if (!x || !p_nl_push(P, &args, x)) goto bad;
        if (p_is_op(p_cur(P), OP_COMMA)) is_tuple = true;
        else break;
        line = p_cur(P)->line;
    }
    if (!is_tuple) {
        if (args.n) {
            tnode *r = args.v[0];
            free(args.v);
            return r;
        }
        if (!explicit_parens) {
            char b1[256], b2[256];
            p_fail(P, p_cur(P)->line, "Expected an expression, got %s",
                 p_qrepr(p_describe(p_cur(P), b2, sizeof b2), b1, sizeof b1));
            goto bad;
        }
    }
    tnode *n = p_node_new(P, N_TUPLE, line);
    if (!n) goto bad;
    n->v = p_nl_finish(P, &args, &n->nv);
    return n;
bad:
    free(args.v);
    return NULL;
}

/* (args, kwargs, *dyn_args, **dyn_kwargs) into n->v, n->names/n->w, n->c, n->d */
static bool parse_call_args(parser *P, tnode *n) {
    int line = p_cur(P)->line;
    if (!p_expect_op(P, OP_LPAREN)) return false;
    nlist args = {0}, kwvals = {0};
    const char *names[256];
    int nnames = 0;
    bool require_comma = false;
    while (!P->failed && !p_is_op(p_cur(P), OP_RPAREN)) {
        if (require_comma) {
            if (!p_expect_op(P, OP_COMMA)) break;
            if (p_is_op(p_cur(P), OP_RPAREN)) break;
        }
        if (p_is_op(p_cur(P), OP_MUL)) {
            if (n->c || n->d) goto bad_call;
            p_advance(P);
            n->c = p_expression(P, true);
        } else if (p_is_op(p_cur(P), OP_POW)) {
            if (n->d) goto bad_call;
            p_advance(P);
            n->d = p_expression(P, true);
        } else if (p_cur(P)->type == TK_NAME && p_is_op(p_look(P), OP_ASSIGN)) {
            if (n->d) goto bad_call;
            if (nnames == 256) {
                p_fail(P, line, "too many keyword arguments");
                break;
            }
            const char *key = p_tok_str(P, p_cur(P));
            p_advance(P);
            p_advance(P);
            tnode *v = p_expression(P, true);
            if (!v || !p_nl_push(P, &kwvals, v)) break;
            names[nnames++] = key;
        } else {
            if (n->c || n->d || kwvals.n) goto bad_call;
            tnode *v = p_expression(P, true);
            if (!v || !p_nl_push(P, &args, v)) break;
        }
        require_comma = true;
    }
    if (!P->failed) p_expect_op(P, OP_RPAREN);
    n->v = p_nl_finish(P, &args, &n->nv);
    n->w = p_nl_finish(P, &kwvals, &n->nw);
    if (nnames) {
        n->names = arena_alloc(P->A, (size_t)nnames * sizeof *n->names);
        if (n->names) memcpy(n->names, names, (size_t)nnames * sizeof *names);
        else p_fail(P, line, "out of memory");
    }
    return !P->failed;
bad_call:
    free(args.v);
    free(kwvals.v);
    p_fail(P, line, "invalid syntax for function call expression");
    return false;
}

static tnode *parse_call(parser *P, tnode *node) {
    tnode *n = p_node_new(P, N_CALL, p_cur(P)->line);
    if (!n) return NULL;
    n->a = node;
    if (!parse_call_args(P, n)) return NULL;
    return n;
}

static tnode *parse_subscribed(parser *P) {
    int line = p_cur(P)->line;
    tnode *args[3] = {NULL, NULL, NULL};
    if (p_is_op(p_cur(P), OP_COLON)) {
        p_advance(P);
    } else {
        tnode *node = p_expression(P, true);
        if (!node) return NULL;
        if (!p_is_op(p_cur(P), OP_COLON)) return node;
        p_advance(P);
        args[0] = node;
    }
    if (p_is_op(p_cur(P), OP_COLON)) {
        /* stop is None */
    } else if (!p_is_op(p_cur(P), OP_RBRACKET) && !p_is_op(p_cur(P), OP_COMMA)) {
        args[1] = p_expression(P, true);
        if (!args[1]) return NULL;
    }
    if (p_is_op(p_cur(P), OP_COLON)) {
        p_advance(P);
        if (!p_is_op(p_cur(P), OP_RBRACKET) && !p_is_op(p_cur(P), OP_COMMA)) {
            args[2] = p_expression(P, true);
            if (!args[2]) return NULL;
        }
    }
    tnode *n = p_node_new(P, N_SLICE, line);
    if (!n) return NULL;
    n->a = args[0];
    n->b = args[1];
    n->c = args[2];
    return n;
}

static tnode *parse_subscript(parser *P, tnode *node) {
    const token *k = p_cur(P);
    p_advance(P);
    if (k->op == OP_DOT) {
        const token *attr = p_cur(P);
        p_advance(P);
        if (attr->type == TK_NAME) {
            tnode *n = p_node_new(P, N_GETATTR, k->line);
            if (!n) return NULL;
            n->a = node;
            n->s = p_tok_str(P, attr);
            n->n = attr->n;
            return n;
        }
        if (attr->type != TK_INT) return p_fail(P, attr->line, "expected name or number");
        tnode *n = p_node_new(P, N_GETITEM, k->line);
        if (!n) return NULL;
        n->a = node;
        n->b = const_node(P, attr->line, v_int(attr->i));
        return n->b ? n : NULL;
    }
    int line = p_cur(P)->line;
    nlist args = {0};
    while (!P->failed && !p_is_op(p_cur(P), OP_RBRACKET)) {
        if (args.n && !p_expect_op(P, OP_COMMA)) break;
        tnode *x = parse_subscribed(P);
        if (!x || !p_nl_push(P, &args, x)) break;
    }
    if (P->failed || !p_expect_op(P, OP_RBRACKET)) {
        free(args.v);
        return NULL;
    }
    tnode *arg;
    if (args.n == 1) {
        arg = args.v[0];
        free(args.v);
    } else {
        arg = p_node_new(P, N_TUPLE, line);
        if (!arg) {
            free(args.v);
            return NULL;
        }
        arg->v = p_nl_finish(P, &args, &arg->nv);
    }
    tnode *n = p_node_new(P, N_GETITEM, k->line);
    if (!n) return NULL;
    n->a = node;
    n->b = arg;
    return n;
}

static tnode *parse_postfix(parser *P, tnode *node) {
    int links = 0;
    while (node) {
        if ((p_is_op(p_cur(P), OP_DOT) || p_is_op(p_cur(P), OP_LBRACKET) || p_is_op(p_cur(P), OP_LPAREN)) &&
            !p_chain_link(P, &links))
            return NULL;
        if (p_is_op(p_cur(P), OP_DOT) || p_is_op(p_cur(P), OP_LBRACKET)) node = parse_subscript(P, node);
        else if (p_is_op(p_cur(P), OP_LPAREN)) node = parse_call(P, node);
        else break;
    }
    return node;
}

/* dotted name of a filter or test */
static const char *parse_dotted(parser *P) {
    const token *k = p_cur(P);
    if (!p_expect_type(P, TK_NAME, "name")) return NULL;
    strbuf sb = STRBUF_INIT;
    sb_append(&sb, k->s, k->n);
    while (p_is_op(p_cur(P), OP_DOT)) {
        p_advance(P);
        const token *x = p_cur(P);
        if (!p_expect_type(P, TK_NAME, "name")) {
            sb_free(&sb);
            return NULL;
        }
        sb_putc(&sb, '.');
        sb_append(&sb, x->s, x->n);
    }
    char *s = sb_failed(&sb) ? NULL : arena_strndup(P->A, sb_str(&sb), sb.len);
    sb_free(&sb);
    if (!s) p_fail(P, k->line, "out of memory");
    return s;
}

static bool resolve_builtin(parser *P, tnode *n, bool filter) {
    n->fn = filter ? tpl_filter_index(n->s) : tpl_test_index(n->s);
    if (n->fn >= 0) return true;
    if (P->soft) {
        n->flags |= NF_SOFT_UNKNOWN;
        return true;
    }
    char b[256];
    p_fail(P, n->line, "No %s named %s.", filter ? "filter" : "test", p_qrepr(n->s, b, sizeof b));
    P->e->assertion = true;
    return false;
}

tnode *p_filter(parser *P, tnode *node, bool start_inline) {
    int links = 0;
    while (p_is_op(p_cur(P), OP_PIPE) || start_inline) {
        if (!p_chain_link(P, &links)) return NULL;
        if (!start_inline) p_advance(P);
        int line = p_cur(P)->line;
        const char *name = parse_dotted(P);
        if (!name) return NULL;
        tnode *n = p_node_new(P, N_FILTER, line);
        if (!n) return NULL;
        n->a = node;
        n->s = name;
        if (p_is_op(p_cur(P), OP_LPAREN) && !parse_call_args(P, n)) return NULL;
        if (!resolve_builtin(P, n, true)) return NULL;
        node = n;
        start_inline = false;
    }
    return node;
}

static tnode *parse_test(parser *P, tnode *node) {
    int line = p_cur(P)->line;
    p_advance(P); /* is */
    bool negated = false;
    if (p_is_name(p_cur(P), "not")) {
        p_advance(P);
        negated = true;
    }
    const char *name = parse_dotted(P);
    if (!name) return NULL;
    tnode *n = p_node_new(P, N_TEST, line);
    if (!n) return NULL;
    n->a = node;
    n->s = name;
    const token *k = p_cur(P);
    if (p_is_op(k, OP_LPAREN)) {
        if (!parse_call_args(P, n)) return NULL;
    } else if ((k->type == TK_NAME || k->type == TK_STRING || k->type == TK_INT || k->type == TK_FLOAT ||
                p_is_op(k, OP_LPAREN) || p_is_op(k, OP_LBRACKET) || p_is_op(k, OP_LBRACE)) &&
               !p_is_name(k, "else") && !p_is_name(k, "or") && !p_is_name(k, "and")) {
        if (p_is_name(k, "is")) return p_fail(P, k->line, "You cannot chain multiple tests with is");
        tnode *arg = parse_postfix(P, p_primary(P));
        if (!arg) return NULL;
        n->v = arena_alloc(P->A, sizeof *n->v);
        if (!n->v) return p_fail(P, line, "out of memory");
        n->v[0] = arg;
        n->nv = 1;
    }
    if (!resolve_builtin(P, n, false)) return NULL;
    if (!negated) return n;
    tnode *x = p_node_new(P, N_NOT, line);
    if (x) x->a = n;
    return x;
}

static tnode *parse_filter_expr(parser *P, tnode *node) {
    int links = 0;
    while (node) {
        if ((p_is_op(p_cur(P), OP_PIPE) || p_is_name(p_cur(P), "is") || p_is_op(p_cur(P), OP_LPAREN)) &&
            !p_chain_link(P, &links))
            return NULL;
        if (p_is_op(p_cur(P), OP_PIPE)) node = p_filter(P, node, false);
        else if (p_is_name(p_cur(P), "is")) node = parse_test(P, node);
        else if (p_is_op(p_cur(P), OP_LPAREN)) node = parse_call(P, node);
        else break;
    }
    return node;
}

