/* parse_stmt.c: Jinja2's statements (for, if, set, macro, call, filter, with, block, print,
 * break/continue, HF's generation block) and the template body (subparse). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/parser_int.h"

static const char *const END_FOR[] = {"endfor", "else", NULL};
static const char *const END_FOR_ONLY[] = {"endfor", NULL};
static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const END_IF_ONLY[] = {"endif", NULL};
static const char *const END_SET[] = {"endset", NULL};
static const char *const END_MACRO[] = {"endmacro", NULL};
static const char *const END_CALL[] = {"endcall", NULL};
static const char *const END_FILTER[] = {"endfilter", NULL};
static const char *const END_WITH[] = {"endwith", NULL};
static const char *const END_BLOCK[] = {"endblock", NULL};
static const char *const END_GEN[] = {"endgeneration", NULL};
static const char *const IN_RULE[] = {"in", NULL};
static const char *const RECURSIVE_RULE[] = {"recursive", NULL};

static tnode *subparse(parser *P, const char *const *end_tokens);

/* Jinja2's _fail_ut_eof: unknown tag (name) or unexpected end (name NULL). */
static void *fail_ut_eof(parser *P, const char *name, const char *const *extra, int line) {
    const char *const *stack[MAX_NEST + 1];
    int n = 0;
    for (int i = 0; i < P->nend; i++) stack[n++] = P->end_stack[i];
    if (extra) stack[n++] = extra;
    char msg[512];
    char b[256];
    if (name) snprintf(msg, sizeof msg, "Encountered unknown tag %s.", p_qrepr(name, b, sizeof b));
    else snprintf(msg, sizeof msg, "Unexpected end of template.");
    if (n) {
        char looking[256] = "";
        for (int i = 0; stack[n - 1][i]; i++) {
            size_t l = strlen(looking);
            snprintf(looking + l, sizeof looking - l, "%s'%s'", i ? " or " : "", stack[n - 1][i]);
        }
        bool expected = false;
        for (int k = 0; name && k < n; k++)
            for (int i = 0; stack[k][i]; i++)
                if (!strcmp(stack[k][i], name)) expected = true;
        size_t l = strlen(msg);
        if (expected)
            snprintf(msg + l, sizeof msg - l,
                     " You probably made a nesting mistake. Jinja is expecting this tag, but currently "
                     "looking for %s.",
                     looking);
        else snprintf(msg + l, sizeof msg - l, " Jinja was looking for the following tags: %s.", looking);
    }
    if (P->ntags) {
        size_t l = strlen(msg);
        snprintf(msg + l, sizeof msg - l, " The innermost block that needs to be closed is %s.",
                 p_qrepr(P->tag_stack[P->ntags - 1], b, sizeof b));
    }
    return p_fail(P, line, "%s", msg);
}

/* parse_statements: optional ':', block end, body up to one of end_tokens (left current). */
static tnode *parse_statements(parser *P, const char *const *end_tokens, bool drop_needle) {
    if (p_is_op(p_cur(P), OP_COLON)) p_advance(P);
    if (!p_expect_type(P, TK_BLOCK_END, "end of statement block")) return NULL;
    tnode *body = subparse(P, end_tokens);
    if (!body) return NULL;
    if (p_cur(P)->type == TK_EOF) return fail_ut_eof(P, NULL, end_tokens, p_cur(P)->line);
    if (drop_needle) p_advance(P);
    return body;
}

static bool can_assign(const tnode *t) {
    if (t->kind == N_NAME) return true;
    if (t->kind == N_NSREF) return true;
    if (t->kind == N_TUPLE) {
        for (int i = 0; i < t->nv; i++)
            if (!can_assign(t->v[i])) return false;
        return true;
    }
    return false;
}

static const char *node_type_name(const tnode *t) {
    switch (t->kind) {
    case N_CONST: return "const";
    case N_TUPLE: return "tuple";
    case N_LIST: return "list";
    case N_DICT: return "dict";
    case N_GETATTR: return "getattr";
    case N_GETITEM: return "getitem";
    case N_CALL: return "call";
    case N_FILTER: return "filter";
    case N_TEST: return "test";
    default: return "expr";
    }
}

static tnode *parse_assign_target(parser *P, bool with_tuple, bool name_only, const char *const *extra,
                                  bool with_namespace) {
    tnode *target;
    const token *k = p_cur(P);
    if (with_namespace && p_is_op(p_look(P), OP_DOT)) {
        if (!p_expect_type(P, TK_NAME, "name")) return NULL;
        p_advance(P);
        const token *attr = p_cur(P);
        if (!p_expect_type(P, TK_NAME, "name")) return NULL;
        target = p_node_new(P, N_NSREF, k->line);
        if (!target) return NULL;
        target->s = p_tok_str(P, k);
        target->n = k->n;
        target->s2 = p_tok_str(P, attr);
        return target;
    }
    if (name_only) {
        if (!p_expect_type(P, TK_NAME, "name")) return NULL;
        target = p_node_new(P, N_NAME, k->line);
        if (!target) return NULL;
        target->s = p_tok_str(P, k);
        target->n = k->n;
    } else {
        target = with_tuple ? p_tuple(P, true, true, extra, false) : p_primary(P);
        if (!target) return NULL;
    }
    if (!can_assign(target)) {
        char b[64];
        return p_fail(P, target->line, "can't assign to %s", p_qrepr(node_type_name(target), b, sizeof b));
    }
    return target;
}

static tnode *parse_for(parser *P, int line) {
    tnode *n = p_node_new(P, N_FOR, line);
    if (!n) return NULL;
    n->a = parse_assign_target(P, true, false, IN_RULE, false);
    if (!n->a || !p_expect_name(P, "in")) return NULL;
    n->b = p_tuple(P, false, false, RECURSIVE_RULE, false);
    if (!n->b) return NULL;
    if (p_is_name(p_cur(P), "if")) {
        p_advance(P);
        n->e = p_expression(P, true);
        if (!n->e) return NULL;
    }
    if (p_is_name(p_cur(P), "recursive")) {
        p_advance(P);
        n->flags |= NF_RECURSIVE;
    }
    bool soft = P->soft;
    P->soft = false;
    P->loop_depth++;
    n->c = parse_statements(P, END_FOR, false);
    P->loop_depth--;
    if (!n->c) return NULL;
    bool is_else = p_is_name(p_cur(P), "else");
    p_advance(P);
    if (is_else) {
        n->d = parse_statements(P, END_FOR_ONLY, true);
        if (!n->d) return NULL;
    }
    P->soft = soft;
    return n;
}

static tnode *parse_if(parser *P, int line) {
    bool soft = P->soft;
    P->soft = true;
    tnode *result = p_node_new(P, N_IF, line), *node = result;
    if (!result) return NULL;
    for (;;) {
        node->a = p_tuple(P, false, false, NULL, false);
        if (!node->a) return NULL;
        node->b = parse_statements(P, END_IF, false);
        if (!node->b) return NULL;
        const token *k = p_cur(P);
        p_advance(P);
        if (p_is_name(k, "elif")) {
            tnode *e = p_node_new(P, N_IF, p_cur(P)->line);
            if (!e) return NULL;
            node->c = e;
            node = e;
            continue;
        }
        if (p_is_name(k, "else")) {
            node->c = parse_statements(P, END_IF_ONLY, true);
            if (!node->c) return NULL;
        }
        break;
    }
    P->soft = soft;
    return result;
}

static tnode *parse_set(parser *P, int line) {
    tnode *target = parse_assign_target(P, true, false, NULL, true);
    if (!target) return NULL;
    if (p_is_op(p_cur(P), OP_ASSIGN)) {
        p_advance(P);
        tnode *n = p_node_new(P, N_SET, line);
        if (!n) return NULL;
        n->a = target;
        n->b = p_tuple(P, false, true, NULL, false);
        return n->b ? n : NULL;
    }
    tnode *n = p_node_new(P, N_SETBLOCK, line);
    if (!n) return NULL;
    n->a = target;
    bool soft = P->soft;
    P->soft = false;
    n->c = p_filter(P, NULL, false);
    if (P->failed) return NULL;
    n->b = parse_statements(P, END_SET, true);
    P->soft = soft;
    return n->b ? n : NULL;
}

/* Which of caller/varargs/kwargs a macro body loads (NF_CALLER, NF_VARARGS, NF_KWARGS). */
static bool special_name_visit(const tnode *t, int edepth, void *arg) {
    (void)edepth;
    uint8_t *flags = arg;
    if (t->kind == N_NAME) {
        if (!strcmp(t->s, "caller")) *flags |= NF_CALLER;
        else if (!strcmp(t->s, "varargs")) *flags |= NF_VARARGS;
        else if (!strcmp(t->s, "kwargs")) *flags |= NF_KWARGS;
    }
    return true;
}

/* (a, b=1, ...) into n->names / n->v (name nodes) and n->w (defaults, right-aligned) */
static bool parse_signature(parser *P, tnode *n) {
    if (!p_expect_op(P, OP_LPAREN)) return false;
    nlist args = {0}, defaults = {0};
    while (!P->failed && !p_is_op(p_cur(P), OP_RPAREN)) {
        if (args.n && !p_expect_op(P, OP_COMMA)) break;
        tnode *arg = parse_assign_target(P, true, true, NULL, false);
        if (!arg) break;
        if (p_is_op(p_cur(P), OP_ASSIGN)) {
            p_advance(P);
            tnode *d = p_expression(P, true);
            if (!d || !p_nl_push(P, &defaults, d)) break;
        } else if (defaults.n) {
            p_fail(P, p_cur(P)->line, "non-default argument follows default argument");
            break;
        }
        if (!p_nl_push(P, &args, arg)) break;
    }
    if (!P->failed) p_expect_op(P, OP_RPAREN);
    n->v = p_nl_finish(P, &args, &n->nv);
    n->w = p_nl_finish(P, &defaults, &n->nw);
    return !P->failed;
}

static bool mark_special_names(parser *P, tnode *n) {
    uint8_t flags = 0;
    if (tpl_walk(n->b, special_name_visit, &flags) < 0) {
        p_fail(P, n->line, "out of memory");
        return false;
    }
    n->flags |= flags;
    return true;
}

static tnode *parse_macro(parser *P, int line) {
    tnode *n = p_node_new(P, N_MACRO, line);
    if (!n) return NULL;
    tnode *name = parse_assign_target(P, true, true, NULL, false);
    if (!name) return NULL;
    n->s = name->s;
    n->n = name->n;
    if (!parse_signature(P, n)) return NULL;
    bool soft = P->soft;
    int loops = P->loop_depth;
    P->soft = false;
    P->loop_depth = 0;
    n->b = parse_statements(P, END_MACRO, true);
    P->soft = soft;
    P->loop_depth = loops;
    if (!n->b || !mark_special_names(P, n)) return NULL;
    return n;
}

static tnode *parse_call_block(parser *P, int line) {
    tnode *n = p_node_new(P, N_CALLBLOCK, line);
    if (!n) return NULL;
    if (p_is_op(p_cur(P), OP_LPAREN) && !parse_signature(P, n)) return NULL;
    tnode *call = p_expression(P, true);
    if (!call) return NULL;
    if (call->kind != N_CALL) return p_fail(P, line, "expected call");
    n->a = call;
    bool soft = P->soft;
    int loops = P->loop_depth;
    P->soft = false;
    P->loop_depth = 0;
    n->b = parse_statements(P, END_CALL, true);
    P->soft = soft;
    P->loop_depth = loops;
    if (!n->b || !mark_special_names(P, n)) return NULL;
    return n;
}

static tnode *parse_filter_block(parser *P, int line) {
    tnode *n = p_node_new(P, N_FILTERBLOCK, line);
    if (!n) return NULL;
    bool soft = P->soft;
    P->soft = false;
    n->a = p_filter(P, NULL, true);
    if (!n->a) return NULL;
    n->b = parse_statements(P, END_FILTER, true);
    P->soft = soft;
    return n->b ? n : NULL;
}

static tnode *parse_with(parser *P, int line) {
    tnode *n = p_node_new(P, N_WITH, line);
    if (!n) return NULL;
    nlist targets = {0}, values = {0};
    while (!P->failed && p_cur(P)->type != TK_BLOCK_END) {
        if (targets.n && !p_expect_op(P, OP_COMMA)) break;
        tnode *t = parse_assign_target(P, true, false, NULL, false);
        if (!t || !p_expect_op(P, OP_ASSIGN)) break;
        tnode *v = p_expression(P, true);
        if (!v || !p_nl_push(P, &targets, t) || !p_nl_push(P, &values, v)) break;
    }
    n->v = p_nl_finish(P, &targets, &n->nv);
    n->w = p_nl_finish(P, &values, &n->nw);
    if (P->failed) return NULL;
    bool soft = P->soft;
    P->soft = false;
    n->b = parse_statements(P, END_WITH, true);
    P->soft = soft;
    return n->b ? n : NULL;
}

static tnode *parse_block(parser *P, int line) {
    tnode *n = p_node_new(P, N_BLOCK, line);
    if (!n) return NULL;
    const token *k = p_cur(P);
    if (!p_expect_type(P, TK_NAME, "name")) return NULL;
    n->s = p_tok_str(P, k);
    n->n = k->n;
    if (p_is_name(p_cur(P), "scoped")) {
        p_advance(P);
        n->flags |= NF_SCOPED;
    }
    if (p_is_name(p_cur(P), "required")) return p_fail(P, line, "required blocks are not supported");
    if (p_is_op(p_cur(P), OP_SUB))
        return p_fail(P, p_cur(P)->line,
                      "Block names in Jinja have to be valid Python identifiers and may not contain "
                      "hyphens, use an underscore instead.");
    bool soft = P->soft;
    int loops = P->loop_depth;
    P->soft = false;
    P->loop_depth = 0;
    n->b = parse_statements(P, END_BLOCK, true);
    P->soft = soft;
    P->loop_depth = loops;
    if (!n->b) return NULL;
    if (p_is_name(p_cur(P), n->s)) p_advance(P);
    return n;
}

static tnode *parse_print(parser *P, int line) {
    tnode *n = p_node_new(P, N_OUTPUT, line);
    if (!n) return NULL;
    nlist items = {0};
    while (!P->failed && p_cur(P)->type != TK_BLOCK_END) {
        if (items.n && !p_expect_op(P, OP_COMMA)) break;
        tnode *x = p_expression(P, true);
        if (!x || !p_nl_push(P, &items, x)) break;
    }
    n->v = p_nl_finish(P, &items, &n->nv);
    return P->failed ? NULL : n;
}

/* extends / include / import / from: parsed loosely, fail when run (there is no loader). */
static tnode *parse_noloader(parser *P, int line) {
    if (!p_expression(P, true)) return NULL;
    while (p_cur(P)->type != TK_BLOCK_END && p_cur(P)->type != TK_EOF) p_advance(P);
    return p_node_new(P, N_NOLOADER, line);
}

static tnode *parse_generation(parser *P, int line) {
    tnode *n = p_node_new(P, N_GENERATION, line);
    if (!n) return NULL;
    bool soft = P->soft;
    int loops = P->loop_depth;
    P->soft = false;
    P->loop_depth = 0;
    n->b = parse_statements(P, END_GEN, true);
    P->soft = soft;
    P->loop_depth = loops;
    return n->b ? n : NULL;
}

static tnode *parse_statement(parser *P) {
    const token *k = p_cur(P);
    if (k->type != TK_NAME) return p_fail(P, k->line, "tag name expected");
    if (P->ntags >= MAX_NEST) return p_fail(P, k->line, "blocks nested too deeply (more than %d)", MAX_NEST);
    const char *name = p_tok_str(P, k);
    if (!name) return NULL;
    int line = k->line;
    static const char *const known[] = {"for", "if", "block", "extends", "print", "macro", "include",
                                        "from", "import", "set", "with", "autoescape", "call", "filter",
                                        "break", "continue", "generation", NULL};
    int which = -1;
    for (int i = 0; known[i]; i++)
        if (!strcmp(name, known[i])) which = i;
    if (which < 0) return fail_ut_eof(P, name, NULL, line);
    P->tag_stack[P->ntags++] = name;
    p_advance(P);
    tnode *r = NULL;
    switch (which) {
    case 0: r = parse_for(P, line); break;
    case 1: r = parse_if(P, line); break;
    case 2: r = parse_block(P, line); break;
    case 4: r = parse_print(P, line); break;
    case 5: r = parse_macro(P, line); break;
    case 3:
    case 6:
    case 7:
    case 8: r = parse_noloader(P, line); break;
    case 9: r = parse_set(P, line); break;
    case 10: r = parse_with(P, line); break;
    case 11: r = p_fail(P, line, "autoescape blocks are not supported"); break;
    case 12: r = parse_call_block(P, line); break;
    case 13: r = parse_filter_block(P, line); break;
    case 14:
    case 15:
        if (!P->loop_depth) r = p_fail(P, line, "'%s' outside loop", name);
        else r = p_node_new(P, which == 14 ? N_BREAK : N_CONTINUE, line);
        break;
    case 16: r = parse_generation(P, line); break;
    }
    P->ntags--;
    return r;
}

static bool flush_output(parser *P, nlist *body, nlist *data) {
    if (!data->n) return true;
    tnode *o = p_node_new(P, N_OUTPUT, data->v[0]->line);
    if (!o) return false;
    o->v = p_nl_finish(P, data, &o->nv);
    return p_nl_push(P, body, o);
}

static bool at_end_token(parser *P, const char *const *end_tokens) {
    if (!end_tokens) return false;
    for (int i = 0; end_tokens[i]; i++)
        if (p_is_name(p_cur(P), end_tokens[i])) return true;
    return false;
}

static tnode *subparse(parser *P, const char *const *end_tokens) {
    nlist body = {0}, data = {0};
    int line = p_cur(P)->line;
    if (end_tokens) {
        if (P->nend >= MAX_NEST) return p_fail(P, line, "blocks nested too deeply");
        P->end_stack[P->nend++] = end_tokens;
    }
    while (!P->failed && p_cur(P)->type != TK_EOF) {
        const token *k = p_cur(P);
        if (k->type == TK_DATA) {
            tnode *d = p_node_new(P, N_DATA, k->line);
            if (!d) break;
            d->s = k->s;
            d->n = k->n;
            if (!p_nl_push(P, &data, d)) break;
            p_advance(P);
        } else if (k->type == TK_VAR_BEGIN) {
            p_advance(P);
            tnode *x = p_tuple(P, false, true, NULL, false);
            if (!x || !p_nl_push(P, &data, x)) break;
            if (!p_expect_type(P, TK_VAR_END, "end of print statement")) break;
        } else if (k->type == TK_BLOCK_BEGIN) {
            if (!flush_output(P, &body, &data)) break;
            p_advance(P);
            if (at_end_token(P, end_tokens)) goto done;
            tnode *s = parse_statement(P);
            if (!s || !p_nl_push(P, &body, s)) break;
            if (!p_expect_type(P, TK_BLOCK_END, "end of statement block")) break;
        } else {
            char b1[64], b2[64];
            p_fail(P, k->line, "unexpected %s", p_qrepr(p_describe(k, b2, sizeof b2), b1, sizeof b1));
            break;
        }
    }
    flush_output(P, &body, &data);
done:
    free(data.v);
    if (end_tokens) P->nend--;
    if (P->failed) {
        free(body.v);
        return NULL;
    }
    tnode *n = p_node_new(P, N_BODY, line);
    if (!n) {
        free(body.v);
        return NULL;
    }
    n->v = p_nl_finish(P, &body, &n->nv);
    return n;
}

/* The first expression node deeper than TPL_MAX_EXPR_DEPTH. */
static bool depth_visit(const tnode *t, int edepth, void *arg) {
    if (edepth <= TPL_MAX_EXPR_DEPTH) return true;
    *(const tnode **)arg = t;
    return false;
}

bool tpl_parse(tpl_arena *A, const token *toks, size_t ntoks, tnode **root, tpl_syntax_error *e) {
    parser P = {.A = A, .t = toks, .n = ntoks, .e = e};
    if (toks[0].type == TK_ERROR) {
        p_fail(&P, toks[0].line, "%s", toks[0].s);
        return false;
    }
    *root = subparse(&P, NULL);
    if (!*root || P.failed) return false;
    /* The chains the parser builds in loops are bounded there; this bounds every expression,
     * whatever mix of brackets, operators and chains made it, so that the evaluator's
     * recursion over a tree is bounded too. */
    const tnode *deep = NULL;
    int r = tpl_walk(*root, depth_visit, &deep);
    if (r < 0) p_fail(&P, 1, "out of memory");
    else if (deep) p_fail(&P, deep->line, "expression nests deeper than %d levels", TPL_MAX_EXPR_DEPTH);
    return !P.failed;
}
