/* parser_int.h: the parser state and helpers shared by parser.c (expressions) and
 * parse_stmt.c (statements). Internal to the template layer. */
#ifndef FORGE_TEMPLATE_PARSER_INT_H
#define FORGE_TEMPLATE_PARSER_INT_H

#include "template/ast.h"

enum { MAX_NEST = 200 };

typedef struct parser {
    tpl_arena *A;
    const token *t;
    size_t n, i;
    tpl_syntax_error *e;
    bool failed;
    int depth;
    int nodes;       /* syntax nodes made (TPL_MAX_NODES) */
    bool soft;       /* inside an if test/body or a conditional expression */
    int loop_depth;  /* for break/continue */
    const char *tag_stack[MAX_NEST];
    int ntags;
    const char *const *end_stack[MAX_NEST]; /* NULL-terminated name lists */
    int nend;
} parser;

/* growable node list */
typedef struct nlist {
    tnode **v;
    int n, cap;
} nlist;

const token *p_cur(parser *P);
const token *p_look(parser *P);
void p_advance(parser *P);
void *p_fail(parser *P, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool p_is_name(const token *k, const char *name);
bool p_is_op(const token *k, int op);
const char *p_describe(const token *k, char *buf, size_t cap);
const char *p_qrepr(const char *s, char *buf, size_t cap);
bool p_expect_op(parser *P, int op);
bool p_expect_type(parser *P, tok_type t, const char *what);
bool p_expect_name(parser *P, const char *name);
tnode *p_node_new(parser *P, node_kind k, int line);
bool p_nl_push(parser *P, nlist *l, tnode *x);
tnode **p_nl_finish(parser *P, nlist *l, int *count);
const char *p_tok_str(parser *P, const token *k);
bool p_enter(parser *P);
/* Counts one more link of a left-associative chain (1+1+..., x.a.a..., 'a'|f|f...): each
 * adds a level to the tree, so a chain longer than TPL_MAX_EXPR_DEPTH fails here, before
 * its tree is built (tpl_parse checks the exact depth of every expression afterwards). */
bool p_chain_link(parser *P, int *links);
tnode *p_expression(parser *P, bool with_condexpr);
tnode *p_tuple(parser *P, bool simplified, bool with_condexpr, const char *const *extra_end,
               bool explicit_parens);
tnode *p_primary(parser *P);
tnode *p_filter(parser *P, tnode *node, bool start_inline);

#endif
