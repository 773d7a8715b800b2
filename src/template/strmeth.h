/* strmeth.h: Python's str methods for templates (`s.strip()`, `s.split(',')`, ...),
 * indexing in code points as Python does. */
#ifndef FORGE_TEMPLATE_STRMETH_H
#define FORGE_TEMPLATE_STRMETH_H

#include "template/eval.h"

enum { S_FIRST = 1000 }; /* builtin ids of str methods are S_FIRST + index */

/* Index of a str method, or -1. */
int strmeth_lookup(const char *name, size_t n);
const char *strmeth_name(int id);
bool strmeth_call(rctx *c, int id, vstr *self, callargs *a, val *out);

/* Helpers shared with the filters. */
/* s.strip(chars) / lstrip / rstrip: which = 0 both, 1 left, 2 right; chars NULL: whitespace */
bool str_strip(rctx *c, vstr *s, vstr *chars, int which, val *out);
/* s.replace(old, new, count) (count < 0: all) */
bool str_replace(rctx *c, vstr *s, vstr *old, vstr *rep, int64_t count, val *out);
/* case conversions: 0 upper, 1 lower, 2 title (Python's str.title), 3 capitalize, 4 swapcase */
bool str_case(rctx *c, vstr *s, int mode, val *out);
/* s.center(width, fill) */
bool str_center(rctx *c, vstr *s, int64_t width, uint32_t fill, val *out);
/* s.splitlines(keepends) as a list */
bool str_splitlines(rctx *c, vstr *s, bool keepends, vlist **out);

#endif
