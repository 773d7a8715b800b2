/* filters.c: Jinja2 3.1's builtin filters (jinja2/filters.py) with HF's tojson. Filters that
 * return generators in Jinja2 (map, select, unique, items, ...) return one-shot iterators
 * here too, so `|length` on them fails and a second iteration is empty, as in Jinja2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/eval.h"
#include "template/pystr.h"
#include "template/filters.h"
#include "template/strmeth.h"

#define BIND(fname, lead, ...)                                                              \
    static const char *const names_[] = {__VA_ARGS__};                                     \
    enum { NP_ = sizeof names_ / sizeof names_[0] };                                       \
    val arg[NP_];                                                                          \
    bool has[NP_];                                                                         \
    if (!args_bind(c, a, fname, lead, NP_, names_, 0, arg, has)) return false

#define NOARGS(fname, lead)                                                                 \
    do {                                                                                    \
        bool given_;                                                                        \
        if (!args_bind(c, a, fname, lead, 0, NULL, 0, NULL, &given_)) return false;        \
    } while (0)

bool flt_ret_iter(rctx *c, vlist *items, const char *tname, val *out) {
    viter *it = malloc(sizeof *it);
    if (!it) {
        obj_unref(items);
        return tpl_oom(c);
    }
    it->h.rc = 1;
    it->h.type = V_ITER;
    it->h.flags = 0;
    it->h.reg_prev = it->h.reg_next = NULL;
    it->items = items;
    it->pos = 0;
    it->tname = tname;
    *out = v_obj(V_ITER, it);
    return true;
}

/* soft_str: str(v) for anything (Undefined prints as "") */
static bool soft_str(rctx *c, val v, vstr **out) {
    val s;
    if (!py_str_val(c, v, &s)) return false;
    *out = V_S(s);
    return true;
}

static bool f_string(rctx *c, val in, callargs *a, val *out) {
    NOARGS("soft_str", 1);
    return py_str_val(c, in, out);
}

static bool str_filter(rctx *c, val in, callargs *a, val *out, int mode, const char *fname) {
    NOARGS(fname, 1);
    vstr *s;
    if (!soft_str(c, in, &s)) return false;
    bool ok = str_case(c, s, mode, out);
    obj_unref(s);
    return ok;
}
static bool f_upper(rctx *c, val in, callargs *a, val *out) { return str_filter(c, in, a, out, 0, "do_upper"); }
static bool f_lower(rctx *c, val in, callargs *a, val *out) { return str_filter(c, in, a, out, 1, "do_lower"); }
static bool f_capitalize(rctx *c, val in, callargs *a, val *out) { return str_filter(c, in, a, out, 3, "do_capitalize"); }

/* Jinja2's title: word starts after runs of [-\s({[<] (not Python's str.title) */
static bool f_title(rctx *c, val in, callargs *a, val *out) {
    NOARGS("do_title", 1);
    vstr *s;
    if (!soft_str(c, in, &s)) return false;
    strbuf sb = STRBUF_INIT;
    size_t i = 0;
    bool start = true;
    while (i < s->len) {
        uint32_t cp = u8_next(s->s, s->len, &i);
        bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || py_isspace(cp);
        if (sep) {
            u8_put(&sb, cp);
            start = true;
        } else if (start) {
            py_upper_cp(&sb, cp);
            start = false;
        } else py_lower_cp(&sb, cp);
    }
    obj_unref(s);
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

static bool f_trim(rctx *c, val in, callargs *a, val *out) {
    BIND("do_trim", 1, "chars");
    if (has[0] && arg[0].t != V_NONE && arg[0].t != V_STR) return tpl_fail(c, TE_TYPE, "strip arg must be None or str");
    vstr *s;
    if (!soft_str(c, in, &s)) return false;
    bool ok = str_strip(c, s, has[0] && arg[0].t == V_STR ? V_S(arg[0]) : NULL, 0, out);
    obj_unref(s);
    return ok;
}

static bool f_replace(rctx *c, val in, callargs *a, val *out) {
    static const char *const names[] = {"old", "new", "count"};
    val arg[3];
    bool has[3];
    if (!args_bind(c, a, "do_replace", 2, 3, names, 2, arg, has)) return false;
    int64_t count = -1;
    if (has[2] && arg[2].t != V_NONE) {
        if (arg[2].t != V_INT && arg[2].t != V_BOOL)
            return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(arg[2]));
        count = arg[2].t == V_BOOL ? arg[2].u.b : arg[2].u.i;
    }
    vstr *s = NULL, *o = NULL, *r = NULL;
    bool ok = soft_str(c, in, &s) && soft_str(c, arg[0], &o) && soft_str(c, arg[1], &r) &&
              str_replace(c, s, o, r, count, out);
    obj_unref(s);
    obj_unref(o);
    obj_unref(r);
    return ok;
}

static bool f_center(rctx *c, val in, callargs *a, val *out) {
    BIND("do_center", 1, "width");
    int64_t w = 80;
    if (has[0]) {
        if (arg[0].t != V_INT && arg[0].t != V_BOOL)
            return tpl_fail(c, TE_TYPE, "'%s' object cannot be interpreted as an integer", v_type_name(arg[0]));
        w = arg[0].t == V_BOOL ? arg[0].u.b : arg[0].u.i;
    }
    vstr *s;
    if (!soft_str(c, in, &s)) return false;
    bool ok = str_center(c, s, w, ' ', out);
    obj_unref(s);
    return ok;
}

static bool f_default(rctx *c, val in, callargs *a, val *out) {
    BIND("do_default", 1, "default_value", "boolean");
    bool boolean = has[1] && v_truthy(arg[1]);
    if (in.t == V_UNDEF || (boolean && !v_truthy(in))) *out = has[0] ? v_ref(arg[0]) : v_str("", 0);
    else *out = v_ref(in);
    return out->t != V_UNDEF || has[0] || tpl_oom(c);
}

static bool f_length(rctx *c, val in, callargs *a, val *out) {
    if (a->nk) return tpl_fail(c, TE_TYPE, "len() takes no keyword arguments");
    if (a->n) return tpl_fail(c, TE_TYPE, "len() takes exactly one argument (%d given)", 1 + a->n);
    int64_t n;
    if (!op_len(c, in, &n)) return false;
    *out = v_int(n);
    return true;
}

static bool f_list(rctx *c, val in, callargs *a, val *out) {
    NOARGS("sync_do_list", 1);
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    *out = v_obj(V_LIST, l);
    return true;
}

static bool f_first(rctx *c, val in, callargs *a, val *out) {
    NOARGS("sync_do_first", 2);
    if (in.t == V_ITER) {
        viter *it = (viter *)in.u.o;
        if (it->items && it->pos < it->items->n) {
            *out = v_ref(it->items->items[it->pos++]);
            return true;
        }
    } else {
        vlist *l;
        if (!op_iterate(c, in, &l)) return false;
        bool any = l->n > 0;
        if (any) *out = v_ref(l->items[0]);
        obj_unref(l);
        if (any) return true;
    }
    *out = undef_hint("No first item, sequence was empty.");
    return out->u.o || tpl_oom(c);
}

static bool f_last(rctx *c, val in, callargs *a, val *out) {
    NOARGS("do_last", 2);
    if (in.t == V_ITER) return tpl_fail(c, TE_TYPE, "'%s' object is not reversible", ((viter *)in.u.o)->tname);
    if (in.t != V_LIST && in.t != V_STR && in.t != V_DICT && in.t != V_UNDEF)
        return tpl_fail(c, TE_TYPE, "'%s' object is not reversible", v_type_name(in));
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    bool any = l->n > 0;
    if (any) *out = v_ref(l->items[l->n - 1]);
    obj_unref(l);
    if (any) return true;
    *out = undef_hint("No last item, sequence was empty.");
    return out->u.o || tpl_oom(c);
}

static bool f_reverse(rctx *c, val in, callargs *a, val *out) {
    NOARGS("do_reverse", 1);
    if (in.t == V_STR) {
        vstr *s = V_S(in);
        strbuf sb = STRBUF_INIT;
        for (size_t i = s->len; i > 0;) {
            size_t p = u8_prev(s->s, i);
            sb_append(&sb, s->s + p, i - p);
            i = p;
        }
        *out = v_str_take(&sb);
        sb_free(&sb);
        return out->t == V_STR || tpl_oom(c);
    }
    if (in.t != V_LIST && in.t != V_DICT && in.t != V_UNDEF && in.t != V_ITER && in.t != V_LOOP)
        return tpl_fail(c, TE_FILTERARG, "argument must be iterable");
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
        val t = l->items[i];
        l->items[i] = l->items[j];
        l->items[j] = t;
    }
    switch ((vtype)in.t) {
    case V_LIST: return flt_ret_iter(c, l, v_is_tuple(in) ? "reversed" : "list_reverseiterator", out);
    case V_DICT: return flt_ret_iter(c, l, "dict_reversekeyiterator", out);
    case V_UNDEF: return flt_ret_iter(c, l, "reversed", out);
    default: *out = v_obj(V_LIST, l); return true; /* list(value) reversed */
    }
}

static bool f_items(rctx *c, val in, callargs *a, val *out) {
    NOARGS("do_items", 1);
    vlist *l = list_new(in.t == V_DICT ? V_D(in)->n : 0);
    if (!l) return tpl_oom(c);
    if (in.t == V_DICT) {
        vdict *d = V_D(in);
        for (size_t i = 0; i < d->n; i++) {
            vlist *t = list_new(2);
            if (!t) {
                obj_unref(l);
                return tpl_oom(c);
            }
            t->h.flags |= OBJ_TUPLE;
            t->items[t->n++] = v_ref(d->keys[i]);
            t->items[t->n++] = v_ref(d->vals[i]);
            l->items[l->n++] = v_obj(V_LIST, t);
        }
    } else if (in.t != V_UNDEF) {
        obj_unref(l);
        return tpl_fail(c, TE_TYPE, "Can only get item pairs from a mapping.");
    }
    return flt_ret_iter(c, l, "generator", out);
}

/* ignore_case: lower-cased strings for comparisons */
static bool lower_key(rctx *c, val v, val *out) {
    if (v.t != V_STR) {
        *out = v_ref(v);
        return true;
    }
    return str_case(c, V_S(v), 1, out);
}

/* key of item per make_attrgetter(attribute) with optional lower-casing */
static bool item_key(rctx *c, val item, val attr, bool has_attr, bool icase, val *out) {
    val k;
    if (has_attr && attr.t != V_NONE) {
        if (!attr_path_get(c, item, attr, &k)) return false;
    } else k = v_ref(item);
    if (!icase) {
        *out = k;
        return true;
    }
    bool ok = lower_key(c, k, out);
    v_unref(k);
    return ok;
}

/* sort keys: multi-attribute "a,b" gives a list per item */
static bool sort_key(rctx *c, val item, val attr, bool has_attr, bool icase, val *out) {
    if (!has_attr || attr.t != V_STR || !memchr(V_S(attr)->s, ',', V_S(attr)->len))
        return item_key(c, item, attr, has_attr, icase, out);
    vstr *s = V_S(attr);
    vlist *l = list_new(0);
    if (!l) return tpl_oom(c);
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < s->len && s->s[j] != ',') j++;
        val part = v_str(s->s + i, j - i), k;
        bool ok = part.t == V_STR && item_key(c, item, part, true, icase, &k);
        v_unref(part);
        if (!ok || !list_push(l, k)) {
            obj_unref(l);
            return c->err ? false : tpl_oom(c);
        }
        if (j >= s->len) break;
        i = j + 1;
    }
    *out = v_obj(V_LIST, l);
    return true;
}

static bool sort_list(rctx *c, vlist *l, val attr, bool has_attr, bool icase, bool reverse) {
    val *keys = calloc(l->n ? l->n : 1, sizeof *keys);
    if (!keys) return tpl_oom(c);
    bool ok = true;
    for (size_t i = 0; i < l->n && ok; i++) ok = sort_key(c, l->items[i], attr, has_attr, icase, &keys[i]);
    if (ok) ok = py_sort(c, l->items, keys, l->n, reverse);
    for (size_t i = 0; i < l->n; i++) v_unref(keys[i]);
    free(keys);
    return ok;
}

static bool f_sort(rctx *c, val in, callargs *a, val *out) {
    BIND("do_sort", 2, "reverse", "case_sensitive", "attribute");
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    if (!sort_list(c, l, arg[2], has[2], !(has[1] && v_truthy(arg[1])), has[0] && v_truthy(arg[0]))) {
        obj_unref(l);
        return false;
    }
    *out = v_obj(V_LIST, l);
    return true;
}

static bool f_dictsort(rctx *c, val in, callargs *a, val *out) {
    BIND("do_dictsort", 1, "case_sensitive", "by", "reverse");
    int pos = 0;
    if (has[1]) {
        if (arg[1].t == V_STR && !strcmp(V_S(arg[1])->s, "value")) pos = 1;
        else if (!(arg[1].t == V_STR && !strcmp(V_S(arg[1])->s, "key")))
            return tpl_fail(c, TE_FILTERARG, "You can only sort by either \"key\" or \"value\"");
    }
    if (in.t != V_DICT) return tpl_fail(c, TE_ATTRIBUTE, "'%s' object has no attribute 'items'", v_type_name(in));
    vdict *d = V_D(in);
    vlist *l = list_new(d->n);
    val *keys = calloc(d->n ? d->n : 1, sizeof *keys);
    if (!l || !keys) {
        obj_unref(l);
        free(keys);
        return tpl_oom(c);
    }
    bool ok = true, icase = !(has[0] && v_truthy(arg[0]));
    for (size_t i = 0; i < d->n && ok; i++) {
        vlist *t = list_new(2);
        if (!t) {
            ok = tpl_oom(c);
            break;
        }
        t->h.flags |= OBJ_TUPLE;
        t->items[t->n++] = v_ref(d->keys[i]);
        t->items[t->n++] = v_ref(d->vals[i]);
        l->items[l->n++] = v_obj(V_LIST, t);
        ok = item_key(c, pos ? d->vals[i] : d->keys[i], v_undef(), false, icase, &keys[i]);
    }
    if (ok) ok = py_sort(c, l->items, keys, l->n, has[2] && v_truthy(arg[2]));
    for (size_t i = 0; i < d->n; i++) v_unref(keys[i]);
    free(keys);
    if (!ok) {
        obj_unref(l);
        return false;
    }
    *out = v_obj(V_LIST, l);
    return true;
}

static bool f_unique(rctx *c, val in, callargs *a, val *out) {
    BIND("do_unique", 2, "case_sensitive", "attribute");
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    vlist *r = list_new(l->n);
    vdict *seen = dict_new(0);
    bool ok = r && seen;
    if (!ok) tpl_oom(c);
    for (size_t i = 0; ok && i < l->n; i++) {
        val k;
        ok = item_key(c, l->items[i], arg[1], has[1], !(has[0] && v_truthy(arg[0])), &k);
        if (!ok) break;
        uint64_t h;
        if (!v_hash(k, &h)) {
            ok = tpl_fail(c, TE_TYPE, "unhashable type: '%s'", v_type_name(k));
            v_unref(k);
            break;
        }
        if (dict_get(seen, k)) {
            v_unref(k);
            continue;
        }
        if (!dict_set(seen, k, v_none())) ok = tpl_oom(c);
        else r->items[r->n++] = v_ref(l->items[i]);
    }
    obj_unref(l);
    obj_unref(seen);
    if (!ok) {
        obj_unref(r);
        return false;
    }
    return flt_ret_iter(c, r, "generator", out);
}

static bool min_max(rctx *c, val in, callargs *a, val *out, bool is_max, const char *fname) {
    BIND(fname, 2, "case_sensitive", "attribute");
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    if (!l->n) {
        obj_unref(l);
        *out = undef_hint("No aggregated item, sequence was empty.");
        return out->u.o || tpl_oom(c);
    }
    bool icase = !(has[0] && v_truthy(arg[0]));
    size_t best = 0;
    val bk;
    bool ok = item_key(c, l->items[0], arg[1], has[1], icase, &bk);
    for (size_t i = 1; ok && i < l->n; i++) {
        val k;
        bool better = false;
        ok = item_key(c, l->items[i], arg[1], has[1], icase, &k) &&
             op_compare(c, is_max ? OP_GT : OP_LT, k, bk, &better);
        if (!ok) {
            if (c->err == TE_NONE) tpl_oom(c);
            v_unref(k);
            break;
        }
        if (better) {
            v_unref(bk);
            bk = k;
            best = i;
        } else v_unref(k);
    }
    if (ok) *out = v_ref(l->items[best]);
    v_unref(bk);
    obj_unref(l);
    return ok;
}
static bool f_min(rctx *c, val in, callargs *a, val *out) { return min_max(c, in, a, out, false, "do_min"); }
static bool f_max(rctx *c, val in, callargs *a, val *out) { return min_max(c, in, a, out, true, "do_max"); }

static bool f_join(rctx *c, val in, callargs *a, val *out) {
    BIND("sync_do_join", 2, "d", "attribute");
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    strbuf sb = STRBUF_INIT, sep = STRBUF_INIT;
    bool ok = !has[0] || py_str(c, &sep, arg[0]);
    for (size_t i = 0; ok && i < l->n; i++) {
        if (i) sb_append(&sb, sep.data ? sep.data : "", sep.len);
        if (has[1] && arg[1].t != V_NONE) {
            val x;
            ok = attr_path_get(c, l->items[i], arg[1], &x) && py_str(c, &sb, x);
            if (ok) v_unref(x);
        } else ok = py_str(c, &sb, l->items[i]);
        if (ok && sb.len > c->lim.max_output)
            ok = tpl_fail(c, TE_LIMIT, "a string would exceed the output limit of %zu bytes", c->lim.max_output);
    }
    obj_unref(l);
    sb_free(&sep);
    if (!ok) {
        sb_free(&sb);
        return false;
    }
    *out = v_str_take(&sb);
    sb_free(&sb);
    return out->t == V_STR || tpl_oom(c);
}

/* select / reject / selectattr / rejectattr / map */
static bool sel(rctx *c, val in, callargs *a, val *out, bool attr, bool keep_if, const char *fname) {
    if (attr && a->n < 1) return tpl_fail(c, TE_FILTERARG, "Missing parameter for attribute name");
    int off = attr ? 1 : 0;
    int test = -1;
    const char *tname = NULL;
    if (a->n > off) {
        if (a->pos[off].t != V_STR) return tpl_fail(c, TE_RUNTIME, "No test named %s.", "(not a string)");
        tname = V_S(a->pos[off])->s;
        test = tpl_test_index(tname);
        if (test < 0) {
            strbuf b = STRBUF_INIT;
            py_repr_string(&b, tname, strlen(tname));
            bool r = tpl_fail(c, TE_RUNTIME, "No test named %s.", sb_str(&b));
            sb_free(&b);
            return r;
        }
    }
    (void)fname;
    callargs rest = {.n = a->n > off + 1 ? a->n - off - 1 : 0, .pos = a->n > off + 1 ? a->pos + off + 1 : NULL,
                     .nk = a->nk, .kn = a->kn, .kv = a->kv};
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    vlist *r = list_new(l->n);
    if (!r) {
        obj_unref(l);
        return tpl_oom(c);
    }
    bool ok = true;
    for (size_t i = 0; ok && i < l->n; i++) {
        val x;
        if (attr) ok = attr_path_get(c, l->items[i], a->pos[0], &x);
        else x = v_ref(l->items[i]);
        if (!ok) break;
        bool t;
        if (test >= 0) ok = tpl_call_test(c, test, tname, x, &rest, &t);
        else t = v_truthy(x);
        v_unref(x);
        if (ok && t == keep_if) r->items[r->n++] = v_ref(l->items[i]);
    }
    obj_unref(l);
    if (!ok) {
        obj_unref(r);
        return false;
    }
    return flt_ret_iter(c, r, "generator", out);
}
static bool f_select(rctx *c, val in, callargs *a, val *out) { return sel(c, in, a, out, false, true, "select"); }
static bool f_reject(rctx *c, val in, callargs *a, val *out) { return sel(c, in, a, out, false, false, "reject"); }
static bool f_selectattr(rctx *c, val in, callargs *a, val *out) { return sel(c, in, a, out, true, true, "selectattr"); }
static bool f_rejectattr(rctx *c, val in, callargs *a, val *out) { return sel(c, in, a, out, true, false, "rejectattr"); }

static bool f_map(rctx *c, val in, callargs *a, val *out) {
    val attr = v_undef(), def = v_none();
    bool by_attr = false;
    int filter = -1;
    const char *fname = NULL;
    if (!a->n) {
        for (int i = 0; i < a->nk; i++) {
            if (!strcmp(a->kn[i], "attribute")) {
                attr = a->kv[i];
                by_attr = true;
            } else if (!strcmp(a->kn[i], "default")) def = a->kv[i];
        }
        if (by_attr)
            for (int i = 0; i < a->nk; i++)
                if (strcmp(a->kn[i], "attribute") && strcmp(a->kn[i], "default"))
                    return tpl_fail(c, TE_FILTERARG, "Unexpected keyword argument '%s'", a->kn[i]);
    }
    if (!by_attr) {
        if (!a->n) return tpl_fail(c, TE_FILTERARG, "map requires a filter argument");
        if (a->pos[0].t != V_STR) return tpl_fail(c, TE_RUNTIME, "No filter named %s.", "(not a string)");
        fname = V_S(a->pos[0])->s;
        filter = tpl_filter_index(fname);
        if (filter < 0) {
            strbuf b = STRBUF_INIT;
            py_repr_string(&b, fname, strlen(fname));
            bool r = tpl_fail(c, TE_RUNTIME, "No filter named %s.", sb_str(&b));
            sb_free(&b);
            return r;
        }
    }
    callargs rest = {.n = a->n > 1 ? a->n - 1 : 0, .pos = a->n > 1 ? a->pos + 1 : NULL, .nk = a->nk, .kn = a->kn,
                     .kv = a->kv};
    vlist *l;
    if (!op_iterate(c, in, &l)) return false;
    vlist *r = list_new(l->n);
    if (!r) {
        obj_unref(l);
        return tpl_oom(c);
    }
    bool ok = true;
    for (size_t i = 0; ok && i < l->n; i++) {
        val x;
        if (by_attr) {
            ok = attr_path_get(c, l->items[i], attr, &x);
            if (ok && x.t == V_UNDEF && def.t != V_NONE) {
                v_unref(x);
                x = v_ref(def);
            }
        } else ok = tpl_call_filter(c, filter, fname, l->items[i], &rest, &x);
        if (ok) r->items[r->n++] = x;
    }
    obj_unref(l);
    if (!ok) {
        obj_unref(r);
        return false;
    }
    return flt_ret_iter(c, r, "generator", out);
}

static bool add(rctx *c, val *acc, val x) {
    val r;
    if (!op_binary(c, OP_ADD, *acc, x, &r)) return false;
    v_unref(*acc);
    *acc = r;
    return true;
}

static bool f_sum(rctx *c, val in, callargs *a, val *out) {
    BIND("sync_do_sum", 2, "attribute", "start");
    val acc = has[1] ? v_ref(arg[1]) : v_int(0);
    if (acc.t == V_STR) {
        v_unref(acc);
        return tpl_fail(c, TE_TYPE, "sum() can't sum strings [use ''.join(seq) instead]");
    }
    vlist *l;
    if (!op_iterate(c, in, &l)) {
        v_unref(acc);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < l->n; i++) {
        if (has[0] && arg[0].t != V_NONE) {
            val x;
            ok = attr_path_get(c, l->items[i], arg[0], &x) && add(c, &acc, x);
            if (ok) v_unref(x);
        } else ok = add(c, &acc, l->items[i]);
    }
    obj_unref(l);
    if (!ok) {
        v_unref(acc);
        return false;
    }
    *out = acc;
    return true;
}

static bool f_abs(rctx *c, val in, callargs *a, val *out) {
    if (a->n || a->nk) return tpl_fail(c, TE_TYPE, "abs() takes exactly one argument (%d given)", 1 + a->n + a->nk);
    if (in.t == V_INT || in.t == V_BOOL) {
        int64_t x = in.t == V_BOOL ? in.u.b : in.u.i;
        if (x == INT64_MIN) return tpl_fail(c, TE_OVERFLOW, "integer result beyond 64 bits");
        *out = v_int(x < 0 ? -x : x);
    } else if (in.t == V_FLOAT) *out = v_float(fabs(in.u.f));
    else if (in.t == V_UNDEF) return tpl_fail_undef(c, in);
    else return tpl_fail(c, TE_TYPE, "bad operand type for abs(): '%s'", v_type_name(in));
    return true;
}

/* ---- the table ------------------------------------------------------------------------------- */

static bool f_unsupported(rctx *c, val in, callargs *a, val *out);

static const struct {
    const char *name;
    filter_fn fn;
} g_filters[] = {
    {"abs", f_abs},           {"attr", flt_attr},         {"batch", flt_batch},
    {"capitalize", f_capitalize}, {"center", f_center},   {"count", f_length},
    {"d", f_default},         {"default", f_default},     {"dictsort", f_dictsort},
    {"e", flt_escape},        {"escape", flt_escape},     {"filesizeformat", f_unsupported},
    {"first", f_first},       {"float", flt_float},       {"forceescape", flt_escape},
    {"format", flt_format},   {"groupby", f_unsupported}, {"indent", flt_indent},
    {"int", flt_int},         {"join", f_join},           {"last", f_last},
    {"length", f_length},     {"list", f_list},           {"lower", f_lower},
    {"items", f_items},       {"map", f_map},             {"min", f_min},
    {"max", f_max},           {"pprint", f_unsupported},  {"random", f_unsupported},
    {"reject", f_reject},     {"rejectattr", f_rejectattr}, {"replace", f_replace},
    {"reverse", f_reverse},   {"round", flt_round},       {"safe", flt_safe},
    {"select", f_select},     {"selectattr", f_selectattr}, {"slice", flt_slice},
    {"sort", f_sort},         {"string", f_string},       {"striptags", f_unsupported},
    {"sum", f_sum},           {"title", f_title},         {"trim", f_trim},
    {"truncate", flt_truncate}, {"unique", f_unique},     {"upper", f_upper},
    {"urlencode", f_unsupported}, {"urlize", f_unsupported}, {"wordcount", flt_wordcount},
    {"wordwrap", f_unsupported}, {"xmlattr", f_unsupported}, {"tojson", flt_tojson},
};
enum { N_FILTERS = sizeof g_filters / sizeof g_filters[0] };

static bool f_unsupported(rctx *c, val in, callargs *a, val *out) {
    (void)in;
    (void)a;
    (void)out;
    return tpl_fail(c, TE_UNSUPPORTED, "this filter is not supported by Forge");
}

int tpl_filter_index(const char *name) {
    for (int i = 0; i < N_FILTERS; i++)
        if (!strcmp(g_filters[i].name, name)) return i;
    return -1;
}

bool tpl_call_filter(rctx *c, int idx, const char *name, val in, callargs *a, val *out) {
    if (idx < 0 || idx >= N_FILTERS) return tpl_fail(c, TE_RUNTIME, "No filter named '%s' found.", name);
    if (!STEP(c, 1 + (in.t == V_STR ? V_S(in)->len / 64 : 0))) return false;
    if (g_filters[idx].fn == f_unsupported)
        return tpl_fail(c, TE_UNSUPPORTED, "the filter '%s' is not supported by Forge", g_filters[idx].name);
    return g_filters[idx].fn(c, in, a, out);
}
