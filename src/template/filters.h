/* filters.h: filters implemented in filters_more.c, for the table in filters.c. */
#ifndef FORGE_TEMPLATE_FILTERS_H
#define FORGE_TEMPLATE_FILTERS_H

#include "template/eval.h"

/* A one-shot iterator over items (taken) that reports tname as its type. */
bool flt_ret_iter(rctx *c, vlist *items, const char *tname, val *out);

bool flt_attr(rctx *c, val in, callargs *a, val *out);
bool flt_batch(rctx *c, val in, callargs *a, val *out);
bool flt_escape(rctx *c, val in, callargs *a, val *out);
bool flt_float(rctx *c, val in, callargs *a, val *out);
bool flt_format(rctx *c, val in, callargs *a, val *out);
bool flt_indent(rctx *c, val in, callargs *a, val *out);
bool flt_int(rctx *c, val in, callargs *a, val *out);
bool flt_round(rctx *c, val in, callargs *a, val *out);
bool flt_safe(rctx *c, val in, callargs *a, val *out);
bool flt_slice(rctx *c, val in, callargs *a, val *out);
bool flt_truncate(rctx *c, val in, callargs *a, val *out);
bool flt_wordcount(rctx *c, val in, callargs *a, val *out);
bool flt_tojson(rctx *c, val in, callargs *a, val *out);

#endif
