/* value.h: the values a chat template computes with, with Python's semantics.
 *
 * A `val` is a small tagged struct passed by value. Scalars (undefined without a hint, None,
 * bool, int, float) live inside it; everything else points to a reference-counted heap
 * object. Ownership: a function returning a `val` hands the caller one reference; a
 * function taking a `val` borrows it unless its contract says it "takes" it. `v_ref`
 * adds a reference, `v_unref` drops one.
 *
 * Objects whose refcount is negative are immortal: constants in a parsed template and the
 * special tokens. They are shared by every render (and so by several threads at once), so
 * their counts are never touched; they are freed with the template.
 *
 * Why reference counting and not an arena per render: a template loop that grows a string
 * (`{% set ns.s = ns.s ~ x %}`) would keep every intermediate alive in an arena, quadratic
 * memory. Cycles can only form through mutable containers (namespaces, scopes, loop
 * contexts), which register themselves with the render; it breaks them all at the end. */
#ifndef FORGE_TEMPLATE_VALUE_H
#define FORGE_TEMPLATE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

typedef enum vtype {
    V_UNDEF, /* Jinja2's Undefined; u.o is NULL or an undef object with the hint */
    V_NONE,
    V_BOOL,
    V_INT,
    V_FLOAT,
    V_STR,
    V_LIST,  /* list, or tuple when the object's TUPLE flag is set */
    V_DICT,
    V_NS,    /* namespace(): a dict of attributes that `set ns.x` may change */
    V_MACRO, /* a macro, or the `caller` of a call block */
    V_FUNC,  /* a built-in callable: global function, bound method, loop.cycle, ... */
    V_LOOP,  /* the `loop` variable of a for loop */
    V_ITER,  /* a one-shot iterator (what Jinja2's map/select/reverse/... return) */
    V_SCOPE, /* internal: a variable scope (never seen by templates) */
} vtype;

enum {
    OBJ_TUPLE = 1,    /* a V_LIST that prints as a tuple */
    OBJ_ASCII = 2,    /* V_STR: every byte < 0x80 */
    OBJ_CPKNOWN = 4,  /* V_STR: ncp holds the code point count */
    OBJ_REGISTERED = 8, /* on the render's list of cycle-capable objects */
    OBJ_MARKUP = 16,  /* V_STR: a Markup (from |safe, |escape): repr prints Markup('...') */
};

typedef struct obj obj;
struct obj {
    int32_t rc; /* < 0: immortal */
    uint8_t type;
    uint8_t flags;
    obj *reg_prev, *reg_next; /* render registry links (cycle-capable objects only) */
};

typedef struct val {
    uint8_t t;
    union {
        bool b;
        int64_t i;
        double f;
        obj *o;
    } u;
} val;

typedef struct vstr {
    obj h;
    size_t len;
    size_t ncp; /* code points (valid when OBJ_CPKNOWN) */
    char s[];   /* NUL-terminated */
} vstr;

typedef struct vlist {
    obj h;
    size_t n, cap;
    val *items;
} vlist;

typedef struct vdict {
    obj h;
    size_t n, cap;
    val *keys, *vals;
    uint32_t *idx; /* hash index (slot -> entry + 1) once n > DICT_LINEAR */
    size_t idx_cap;
} vdict;

typedef enum undef_kind {
    UNDEF_NAME,    /* 'x' is undefined */
    UNDEF_ATTR,    /* 'dict object' has no attribute 'x' */
    UNDEF_ELEMENT, /* list object has no element 3 */
    UNDEF_HINT,    /* the hint verbatim */
    UNDEF_UNSAFE,  /* a SecurityError hint: raised when used */
} undef_kind;

typedef struct vundef {
    obj h;
    uint8_t kind;
    const char *objtype; /* static type name for ATTR / ELEMENT */
    val name;            /* the name or key (owned) */
    vstr *hint;          /* HINT / UNSAFE message */
} vundef;

struct tnode;
struct scope;

typedef struct vmacro {
    obj h;
    const struct tnode *def; /* N_MACRO or N_CALLBLOCK */
    struct scope *closure;   /* strong */
    const char *name;        /* "caller" for call blocks */
} vmacro;

typedef struct vfunc {
    obj h;
    int id;        /* builtin id (eval.h) */
    const char *name;
    val self;      /* bound object (owned) or undefined */
} vfunc;

typedef struct vloop {
    obj h;
    vlist *items;  /* strong */
    size_t index0;
    int depth0;
    val last_changed; /* for loop.changed() */
    bool has_changed;
    const struct tnode *fornode; /* for recursive loop(...) calls */
    struct scope *outer;         /* strong: the scope the for statement ran in */
} vloop;

typedef struct viter {
    obj h;
    vlist *items; /* strong */
    size_t pos;
    const char *tname; /* "generator", "list_reverseiterator", ... */
} viter;

/* ---- construction ---------------------------------------------------------------------- */

static inline val v_undef(void) { val v = {.t = V_UNDEF}; v.u.o = NULL; return v; }
static inline val v_none(void) { val v = {.t = V_NONE}; v.u.i = 0; return v; }
static inline val v_bool(bool b) { val v = {.t = V_BOOL}; v.u.i = 0; v.u.b = b; return v; }
static inline val v_int(int64_t i) { val v = {.t = V_INT}; v.u.i = i; return v; }
static inline val v_float(double f) { val v = {.t = V_FLOAT}; v.u.f = f; return v; }
static inline val v_obj(vtype t, void *o) { val v = {.t = (uint8_t)t}; v.u.o = (obj *)o; return v; }
static inline bool v_is_obj(val v) { return v.t >= V_STR || (v.t == V_UNDEF && v.u.o); }

/* The allocation functions return NULL (or a V_UNDEF val for v_str*) only when memory is
 * exhausted; callers report FORGE_E_NOMEM. */
vstr *str_new(const char *s, size_t n);
vstr *str_new_uninit(size_t n); /* contents to be filled by the caller */
val v_str(const char *s, size_t n);
val v_cstr(const char *s);
val v_str_take(strbuf *sb); /* the buffer's contents as a string; sb is freed */
vlist *list_new(size_t cap);
bool list_push(vlist *l, val v); /* takes v */
vdict *dict_new(size_t cap);
/* Sets d[key] = value (taking both), keeping the first position of an existing key as
 * Python does. False only on allocation failure. */
bool dict_set(vdict *d, val key, val value);
/* Pointer to the value of key, or NULL. */
val *dict_get(const vdict *d, val key);
val *dict_get_str(const vdict *d, const char *key, size_t n);
vundef *undef_new(undef_kind kind, const char *objtype, val name, vstr *hint);

/* ---- references ------------------------------------------------------------------------ */

void obj_free(obj *o); /* frees o and releases its children, iteratively */
static inline val v_ref(val v) {
    if (v_is_obj(v) && v.u.o->rc >= 0) v.u.o->rc++;
    return v;
}
static inline void v_unref(val v) {
    if (v_is_obj(v) && v.u.o->rc > 0 && --v.u.o->rc == 0) obj_free(v.u.o);
}
static inline void *obj_ref(void *p) {
    obj *o = p;
    if (o && o->rc >= 0) o->rc++;
    return p;
}
static inline void obj_unref(void *p) {
    obj *o = p;
    if (o && o->rc > 0 && --o->rc == 0) obj_free(o);
}
/* Makes o and everything reachable from it immortal (for constants shared across renders). */
void obj_make_immortal(obj *o);
/* Frees an immortal object graph made by obj_make_immortal (each object once). */
void obj_free_immortal(obj *o);
/* Drops every child reference o holds (breaking cycles) without freeing o. */
void obj_clear(obj *o);

/* ---- accessors ------------------------------------------------------------------------- */

static inline vstr *V_S(val v) { return (vstr *)v.u.o; }
static inline vlist *V_L(val v) { return (vlist *)v.u.o; }
static inline vdict *V_D(val v) { return (vdict *)v.u.o; }
static inline bool v_is_tuple(val v) { return v.t == V_LIST && (v.u.o->flags & OBJ_TUPLE); }
/* Code point count of a string (computed once). */
size_t str_ncp(vstr *s);
static inline bool str_ascii(const vstr *s) { return s->h.flags & OBJ_ASCII; }

/* Python's type name of a value ("str", "int", "NoneType", "dict", "Undefined", ...). */
const char *v_type_name(val v);
/* Jinja2's object_type_repr: "dict object", "None", ... (for undefined messages) */
const char *v_objtype_repr(val v);

/* Python truthiness. Undefined is false. */
bool v_truthy(val v);
/* Python ==; containers nested deeper than VAL_MAX_DEPTH compare unequal. */
bool v_eq(val a, val b);
/* Python hash-compatible key hash; false if the value is unhashable (list, dict, ...). */
bool v_hash(val v, uint64_t *h);

#define DICT_LINEAR 8
#define VAL_MAX_DEPTH 400

#endif
