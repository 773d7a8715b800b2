#include "base/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "base/mfile.h"
#include "base/utf8.h"

enum { JSON_MAX_DEPTH = 512, ARENA_CHUNK = 1 << 16 };

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct json_doc {
    arena_chunk *chunks;
    const json_value *root;
};

static void *arena_alloc(json_doc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    arena_chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        /* grow chunk sizes with the document so big files use few chunks */
        if (c && c->cap * 2 > cap && c->cap < (64u << 20)) cap = c->cap * 2;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* ---- parser state --------------------------------------------------------------------- */

typedef struct {
    json_value *container;
    size_t start; /* index into pend of its first child */
} frame;

typedef struct {
    json_doc *doc;
    frame stack[JSON_MAX_DEPTH];
    int depth;
    json_member *pend; /* children of open containers (key NULL inside arrays) */
    size_t pend_len, pend_cap;
    const char *key; /* key waiting for its value */
    size_t key_len;
    const char *fail; /* our own reason for aborting */
} parse_ctx;

static char *arena_strdup(json_doc *d, const unsigned char *s, size_t n) {
    char *p = arena_alloc(d, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static int add_value(parse_ctx *c, json_value *v) {
    if (c->depth == 0) {
        c->doc->root = v;
        return 1;
    }
    if (c->pend_len == c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap * 2 : 256;
        json_member *p = realloc(c->pend, cap * sizeof *p);
        if (!p) {
            c->fail = "out of memory";
            return 0;
        }
        c->pend = p;
        c->pend_cap = cap;
    }
    json_member *m = &c->pend[c->pend_len++];
    m->key = c->key;
    m->key_len = c->key_len;
    m->value = v;
    c->key = NULL;
    return 1;
}

static json_value *new_value(parse_ctx *c, json_type t) {
    json_value *v = arena_alloc(c->doc, sizeof *v);
    if (!v) {
        c->fail = "out of memory";
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

static int cb_null(void *ctx) {
    parse_ctx *c = ctx;
    json_value *v = new_value(c, JSON_NULL);
    return v && add_value(c, v);
}

static int cb_bool(void *ctx, int b) {
    parse_ctx *c = ctx;
    json_value *v = new_value(c, JSON_BOOL);
    if (!v) return 0;
    v->u.b = b != 0;
    return add_value(c, v);
}

/* Integers are parsed in place (most numbers in tokenizer.json are vocab ids); anything with
 * a fraction, an exponent or beyond int64 goes through strtod on a NUL-terminated copy. */
static int cb_number(void *ctx, const char *s, size_t n) {
    parse_ctx *c = ctx;
    json_value *v = new_value(c, JSON_INT);
    if (!v) return 0;
    size_t i = s[0] == '-' ? 1 : 0;
    uint64_t mag = 0;
    bool is_int = i < n && n - i <= 19;
    for (size_t k = i; is_int && k < n; k++) {
        if (s[k] < '0' || s[k] > '9') is_int = false;
        else mag = mag * 10 + (uint64_t)(s[k] - '0');
    }
    if (is_int && mag <= (uint64_t)INT64_MAX) {
        v->u.i = i ? -(int64_t)mag : (int64_t)mag;
        return add_value(c, v);
    }
    bool fraction = memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n);
    char buf[64];
    char *tmp = n < sizeof buf ? buf : malloc(n + 1);
    if (!tmp) {
        c->fail = "out of memory";
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (!fraction && i && mag == (uint64_t)INT64_MAX + 1 && n - i <= 19) {
        v->u.i = INT64_MIN;
    } else {
        v->type = JSON_DOUBLE;
        v->u.d = strtod(tmp, NULL);
    }
    if (tmp != buf) free(tmp);
    return add_value(c, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n) {
    parse_ctx *c = ctx;
    json_value *v = new_value(c, JSON_STRING);
    if (!v) return 0;
    char *p = arena_strdup(c->doc, s, n);
    if (!p) {
        c->fail = "out of memory";
        return 0;
    }
    v->u.s = p;
    v->n = n;
    return add_value(c, v);
}

static int open_container(parse_ctx *c, json_type t) {
    if (c->depth >= JSON_MAX_DEPTH) {
        c->fail = "nesting deeper than 512 levels";
        return 0;
    }
    json_value *v = new_value(c, t);
    if (!v || !add_value(c, v)) return 0;
    c->stack[c->depth].container = v;
    c->stack[c->depth].start = c->pend_len;
    c->depth++;
    return 1;
}

static int close_container(parse_ctx *c) {
    frame *f = &c->stack[--c->depth];
    size_t n = c->pend_len - f->start;
    json_value *v = f->container;
    v->n = n;
    if (v->type == JSON_ARRAY) {
        const json_value **items = arena_alloc(c->doc, (n ? n : 1) * sizeof *items);
        if (!items) {
            c->fail = "out of memory";
            return 0;
        }
        for (size_t i = 0; i < n; i++) items[i] = c->pend[f->start + i].value;
        v->u.items = items;
    } else {
        json_member *m = arena_alloc(c->doc, (n ? n : 1) * sizeof *m);
        if (!m) {
            c->fail = "out of memory";
            return 0;
        }
        if (n) memcpy(m, c->pend + f->start, n * sizeof *m);
        v->u.members = m;
    }
    c->pend_len = f->start;
    return 1;
}

static int cb_start_map(void *ctx) { return open_container(ctx, JSON_OBJECT); }
static int cb_end_map(void *ctx) { return close_container(ctx); }
static int cb_start_array(void *ctx) { return open_container(ctx, JSON_ARRAY); }
static int cb_end_array(void *ctx) { return close_container(ctx); }

static int cb_map_key(void *ctx, const unsigned char *s, size_t n) {
    parse_ctx *c = ctx;
    char *p = arena_strdup(c->doc, s, n);
    if (!p) {
        c->fail = "out of memory";
        return 0;
    }
    c->key = p;
    c->key_len = n;
    return 1;
}

static const yajl_callbacks g_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

void json_free(json_doc *d) {
    if (!d) return;
    arena_chunk *c = d->chunks;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(d);
}

json_doc *json_parse(const char *text, size_t len, forge_error *err) {
    json_doc *d = calloc(1, sizeof *d);
    parse_ctx *c = calloc(1, sizeof *c);
    yajl_handle h = NULL;
    if (!d || !c) goto nomem;
    c->doc = d;
    h = yajl_alloc(&g_callbacks, NULL, c);
    if (!h) goto nomem;
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(h);
    if (st != yajl_status_ok || !d->root) {
        size_t at = yajl_get_bytes_consumed(h);
        if (c->fail) {
            err_set(err, strcmp(c->fail, "out of memory") ? FORGE_E_FORMAT : FORGE_E_NOMEM,
                    "invalid JSON at byte %zu: %s", at, c->fail);
        } else {
            unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
            char m[256];
            snprintf(m, sizeof m, "%s", msg ? (const char *)msg : "parse error");
            if (msg) yajl_free_error(h, msg);
            /* yajl ends its messages with a newline */
            size_t ml = strlen(m);
            while (ml && (m[ml - 1] == '\n' || m[ml - 1] == ' ')) m[--ml] = 0;
            if (!d->root && st == yajl_status_ok) snprintf(m, sizeof m, "empty document");
            err_set(err, FORGE_E_FORMAT, "invalid JSON at byte %zu: %s", at, m);
        }
        yajl_free(h);
        free(c->pend);
        free(c);
        json_free(d);
        return NULL;
    }
    yajl_free(h);
    free(c->pend);
    free(c);
    return d;
nomem:
    if (h) yajl_free(h);
    free(c);
    json_free(d);
    err_set(err, FORGE_E_NOMEM, "out of memory parsing JSON");
    return NULL;
}

json_doc *json_parse_file(const char *path, size_t max_size, forge_error *err) {
    mfile f;
    if (mfile_open(&f, path, err) != FORGE_OK) return NULL;
    if (f.size > max_size) {
        err_set(err, FORGE_E_RANGE, "%s: file is %zu bytes, more than the %zu allowed", path, f.size, max_size);
        mfile_close(&f);
        return NULL;
    }
    json_doc *d = json_parse(f.data ? (const char *)f.data : "", f.size, err);
    mfile_close(&f);
    if (!d) err_prefix(err, "%s", path);
    return d;
}

const json_value *json_root(const json_doc *d) { return d->root; }

const json_value *json_get(const json_value *v, const char *key) {
    if (!v || v->type != JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = v->n; i-- > 0;) {
        const json_member *m = &v->u.members[i];
        if (m->key_len == kl && !memcmp(m->key, key, kl)) return m->value;
    }
    return NULL;
}

const json_value *json_at(const json_value *v, size_t i) {
    if (!v || v->type != JSON_ARRAY || i >= v->n) return NULL;
    return v->u.items[i];
}

double json_number(const json_value *v) {
    if (!v) return 0;
    if (v->type == JSON_INT) return (double)v->u.i;
    if (v->type == JSON_DOUBLE) return v->u.d;
    return 0;
}

const char *json_string(const json_value *v) { return v && v->type == JSON_STRING ? v->u.s : NULL; }

const char *json_type_name(json_type t) {
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "boolean";
    case JSON_INT: return "integer";
    case JSON_DOUBLE: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "unknown";
}

/* ---- writing -------------------------------------------------------------------------- */

void json_write_string(strbuf *sb, const char *s, size_t n, bool ensure_ascii) {
    static const char hex[] = "0123456789abcdef";
    sb_reserve(sb, n + 2);
    sb_putc(sb, '"');
    size_t run = 0; /* start of bytes copied verbatim */
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[16];
        size_t adv = 1;
        if (ch == '"') esc = "\\\"";
        else if (ch == '\\') esc = "\\\\";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch == '\b') esc = "\\b";
        else if (ch == '\f') esc = "\\f";
        else if (ch < 0x20) {
            snprintf(ubuf, sizeof ubuf, "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
            esc = ubuf;
        } else if (ch >= 0x80 && ensure_ascii) {
            uint32_t cp;
            int l = utf8_decode(s + i, n - i, &cp);
            if (!l) {
                cp = 0xFFFD;
                l = 1;
            }
            adv = (size_t)l;
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                unsigned hi = 0xD800 + (v >> 10), lo = 0xDC00 + (v & 0x3FF);
                snprintf(ubuf, sizeof ubuf, "\\u%04x\\u%04x", hi, lo);
            } else {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", (unsigned)cp);
            }
            esc = ubuf;
        }
        if (esc) {
            sb_append(sb, s + run, i - run);
            sb_puts(sb, esc);
            i += adv;
            run = i;
        } else {
            i++;
        }
    }
    sb_append(sb, s + run, n - run);
    sb_putc(sb, '"');
}

int fmt_double_repr(char out[32], double d) {
    if (isnan(d)) return snprintf(out, 32, "nan");
    if (isinf(d)) return snprintf(out, 32, d < 0 ? "-inf" : "inf");
    if (d == 0) return snprintf(out, 32, signbit(d) ? "-0.0" : "0.0");
    /* shortest precision that round-trips */
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    /* e is [-]D[.DDD]e[+-]XX: collect digits and the decimal exponent */
    const char *q = e;
    int neg = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    char digits[24];
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int exp10 = atoi(q + 1);
    int decpt = exp10 + 1; /* value = 0.DIGITS x 10^decpt */
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -decpt; i++) *o++ = '0';
            for (int i = 0; i < nd; i++) *o++ = digits[i];
        } else {
            for (int i = 0; i < decpt; i++) *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > decpt)
                for (int i = decpt; i < nd; i++) *o++ = digits[i];
            else
                *o++ = '0';
        }
        *o = 0;
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++) *o++ = digits[i];
        }
        int x = decpt - 1;
        o += sprintf(o, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
    return (int)(o - out);
}

void json_write_double(strbuf *sb, double d) {
    if (isnan(d)) {
        sb_puts(sb, "NaN");
        return;
    }
    if (isinf(d)) {
        sb_puts(sb, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char buf[32];
    int n = fmt_double_repr(buf, d);
    sb_append(sb, buf, (size_t)n);
}

void json_write_value(strbuf *sb, const json_value *v) {
    if (!v) {
        sb_puts(sb, "null");
        return;
    }
    switch (v->type) {
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_BOOL: sb_puts(sb, v->u.b ? "true" : "false"); break;
    case JSON_INT: sb_printf(sb, "%lld", (long long)v->u.i); break;
    case JSON_DOUBLE:
        /* A number beyond double range parses as an infinity; written as 1e999 it stays JSON
         * and reads back as the same infinity in every parser (Python's Infinity is not
         * JSON: a client's JSON.parse of a tool call's arguments would throw). */
        if (isinf(v->u.d)) sb_puts(sb, v->u.d < 0 ? "-1e999" : "1e999");
        else if (isnan(v->u.d)) sb_puts(sb, "null");
        else json_write_double(sb, v->u.d);
        break;
    case JSON_STRING: json_write_string(sb, v->u.s, v->n, false); break;
    case JSON_ARRAY:
        sb_putc(sb, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_putc(sb, ',');
            json_write_value(sb, v->u.items[i]);
        }
        sb_putc(sb, ']');
        break;
    case JSON_OBJECT:
        sb_putc(sb, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_putc(sb, ',');
            json_write_string(sb, v->u.members[i].key, v->u.members[i].key_len, false);
            sb_putc(sb, ':');
            json_write_value(sb, v->u.members[i].value);
        }
        sb_putc(sb, '}');
        break;
    }
}
