/* ast.h: tokens, the syntax tree of a chat template, and the lexer and parser that build it.
 *
 * The grammar and the lexing rules are Jinja2 3.1's, with HuggingFace's settings:
 * trim_blocks and lstrip_blocks on, keep_trailing_newline off, the loopcontrols extension
 * (break/continue) and the `generation` block. Nodes live in an arena owned by the parsed
 * template; constants in them are immortal values shared by all renders. */
#ifndef FORGE_TEMPLATE_AST_H
#define FORGE_TEMPLATE_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "template/value.h"

typedef enum tok_type {
    TK_EOF,
    TK_DATA,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
    TK_ERROR, /* a lexing error, raised when the parser reaches it (Jinja2 lexes lazily) */
} tok_type;

typedef enum op {
    OP_NONE,
    OP_ADD, OP_SUB, OP_DIV, OP_FLOORDIV, OP_MUL, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_GT, OP_GTEQ, OP_LT, OP_LTEQ, OP_ASSIGN, OP_DOT, OP_COLON, OP_PIPE,
    OP_COMMA, OP_SEMICOLON,
    /* comparison pseudo-operators (not tokens) */
    OP_IN, OP_NOTIN,
} op;

typedef struct token {
    uint8_t type;
    uint8_t op;
    int line;
    const char *s; /* DATA, NAME, STRING (decoded): arena text */
    size_t n;
    int64_t i;
    double f;
} token;

typedef enum node_kind {
    /* expressions */
    N_CONST,    /* k */
    N_NAME,     /* s */
    N_TUPLE,    /* v[nv] */
    N_LIST,     /* v[nv] */
    N_DICT,     /* v: keys, w: values */
    N_GETATTR,  /* a . s */
    N_GETITEM,  /* a [ b ] */
    N_SLICE,    /* a : b : c (each may be NULL) */
    N_CALL,     /* a ( v, names=w, *c, **d ) */
    N_FILTER,   /* a | s ( v, names=w, *c, **d ); a NULL inside a filter block */
    N_TEST,     /* a is s ( v, names=w, *c, **d ) */
    N_NEG,      /* - a */
    N_POS,      /* + a */
    N_NOT,      /* not a */
    N_BINOP,    /* a op b */
    N_AND,      /* a and b */
    N_OR,       /* a or b */
    N_COMPARE,  /* a, then (ops[i], v[i]) */
    N_CONDEXPR, /* b if a else c (c may be NULL) */
    N_CONCAT,   /* v[0] ~ v[1] ~ ... */
    N_NSREF,    /* s . s2 (assignment target only) */
    /* statements */
    N_BODY,      /* v[nv] statements */
    N_DATA,      /* s, n: literal text */
    N_OUTPUT,    /* v[nv]: N_DATA or expressions */
    N_IF,        /* a: test, b: body, c: elif/else (N_IF or N_BODY) */
    N_FOR,       /* a: target, b: iter, c: body, d: else, e: filter; flag: recursive */
    N_SET,       /* a: target, b: value */
    N_SETBLOCK,  /* a: target, b: body, c: filter (N_FILTER with a NULL) */
    N_MACRO,     /* s: name, names/v: params, w: defaults (aligned right), b: body */
    N_CALLBLOCK, /* a: N_CALL, names/v: params, w: defaults, b: body */
    N_FILTERBLOCK, /* a: filter chain, b: body */
    N_WITH,      /* v: targets, w: values, b: body */
    N_BLOCK,     /* s: name, b: body; flag: scoped */
    N_GENERATION, /* b: body */
    N_BREAK,
    N_CONTINUE,
    N_NOLOADER,  /* extends/include/import/from: fails at run time as Jinja2 does */
} node_kind;

typedef struct tnode tnode;
struct tnode {
    uint8_t kind;
    uint8_t op;    /* N_BINOP: the operator */
    uint8_t flags; /* NF_* */
    int line;
    tnode *a, *b, *c, *d, *e;
    tnode **v;
    int nv;
    tnode **w;
    int nw;
    const char **names; /* keyword argument names (aligned with w), macro parameters */
    uint8_t *ops;       /* N_COMPARE operators */
    const char *s;
    size_t n;
    const char *s2;
    int fn;             /* N_FILTER / N_TEST: builtin index, -1 unknown */
    val k;              /* N_CONST */
};

enum {
    NF_RECURSIVE = 1,    /* for ... recursive */
    NF_SCOPED = 2,       /* block ... scoped */
    NF_SOFT_UNKNOWN = 4, /* unknown filter/test inside an if: fails when evaluated */
    NF_CALLER = 8,       /* macro body uses `caller` */
    NF_VARARGS = 16,     /* macro body uses `varargs` */
    NF_KWARGS = 32,      /* macro body uses `kwargs` */
};

/* Limits on a parsed template, far above what real chat templates use (the deepest
 * expression among the fixture templates is a few dozen levels, the largest has a few thousand
 * nodes), so that a hostile template fails to load with a message instead of building a tree
 * the evaluator could not walk. */
enum {
    TPL_MAX_EXPR_DEPTH = 256,   /* expression nodes on a path (chains like 1+1+1 included) */
    TPL_MAX_NODES = 1 << 18,    /* syntax nodes in one template */
};

static inline bool tpl_node_is_expr(const tnode *n) { return n && n->kind <= N_NSREF; }

/* Visits every node under root in source order without recursion (a tree of any depth).
 * edepth is the node's expression depth: the expression nodes on its path from the nearest
 * statement, itself included (0 for a statement). visit returns false to stop. Returns 1
 * when every node was visited, 0 when visit stopped the walk, -1 when out of memory. */
int tpl_walk(const tnode *root, bool (*visit)(const tnode *n, int edepth, void *arg), void *arg);

typedef struct tpl_arena tpl_arena;

/* A parse error: the line and Jinja2's TemplateSyntaxError (or TemplateAssertionError)
 * message. */
typedef struct tpl_syntax_error {
    int line;
    bool assertion; /* TemplateAssertionError (unknown filter/test) */
    char msg[512];
} tpl_syntax_error;

/* Splits src[0..len) into tokens (arena-owned). False with *e filled on a lexing error. */
bool tpl_lex(tpl_arena *A, const char *src, size_t len, token **toks, size_t *ntoks,
             tpl_syntax_error *e);
/* Parses tokens into a statement list. False with *e filled on a syntax error. */
bool tpl_parse(tpl_arena *A, const token *toks, size_t ntoks, tnode **root, tpl_syntax_error *e);

tpl_arena *arena_create(void);
void *arena_alloc(tpl_arena *A, size_t n); /* zeroed; NULL when out of memory */
char *arena_strndup(tpl_arena *A, const char *s, size_t n);
/* Registers an immortal object to be freed with the arena. */
bool arena_own(tpl_arena *A, obj *o);
void arena_free(tpl_arena *A);

/* Builtin lookup used by the parser (filters.c / tests.c): index or -1. */
int tpl_filter_index(const char *name);
int tpl_test_index(const char *name);

#endif
