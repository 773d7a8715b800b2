/* walk.c: visits a syntax tree without recursion, so that static passes over a template (the
 * depth check, vLLM's content-format detection, a macro's use of caller/varargs/kwargs) hold
 * for a tree of any shape: templates are untrusted input, and a chain like `1+1+...+1` is a
 * tree as deep as it is long. */
#include <stdlib.h>

#include "template/ast.h"

typedef struct walk_item {
    const tnode *n;
    int edepth;
} walk_item;

static bool push(walk_item **st, size_t *n, size_t *cap, const tnode *x, int edepth) {
    if (!x) return true;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        walk_item *p = realloc(*st, c * sizeof *p);
        if (!p) return false;
        *st = p;
        *cap = c;
    }
    (*st)[(*n)++] = (walk_item){x, edepth};
    return true;
}

int tpl_walk(const tnode *root, bool (*visit)(const tnode *n, int edepth, void *arg), void *arg) {
    walk_item *st = NULL;
    size_t n = 0, cap = 0;
    int r = 1;
    if (!push(&st, &n, &cap, root, tpl_node_is_expr(root) ? 1 : 0)) return -1;
    while (n) {
        walk_item it = st[--n];
        const tnode *t = it.n;
        if (!visit(t, it.edepth, arg)) {
            r = 0;
            break;
        }
        /* children in reverse so that they are visited in source order */
        bool ok = true;
        for (int i = t->nw - 1; ok && i >= 0; i--)
            ok = push(&st, &n, &cap, t->w[i], tpl_node_is_expr(t->w[i]) ? it.edepth + 1 : 0);
        for (int i = t->nv - 1; ok && i >= 0; i--)
            ok = push(&st, &n, &cap, t->v[i], tpl_node_is_expr(t->v[i]) ? it.edepth + 1 : 0);
        const tnode *kids[] = {t->e, t->d, t->c, t->b, t->a};
        for (int i = 0; ok && i < 5; i++)
            ok = push(&st, &n, &cap, kids[i], kids[i] && tpl_node_is_expr(kids[i]) ? it.edepth + 1 : 0);
        if (!ok) {
            r = -1;
            break;
        }
    }
    free(st);
    return r;
}
