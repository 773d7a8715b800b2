/* gguf.c: the GGUF reader. A cursor walks the header; every read is checked against the
 * end of the file before it happens, with sizes compared by subtraction (no overflow). */
#include "model/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    GGUF_MAX_KEY = 65535,         /* bytes in a key or tensor name */
    GGUF_MAX_COUNT = 1 << 24,     /* metadata entries, tensors */
    GGUF_MAX_ALIGN = 1 << 20,
};

static const struct { const char *name; int blk, bytes; } g_types[GGML_NTYPES] = {
    [0] = {"F32", 1, 4},       [1] = {"F16", 1, 2},       [2] = {"Q4_0", 32, 18},    [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},    [7] = {"Q5_1", 32, 24},    [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 32, 36},
    [10] = {"Q2_K", 256, 84},  [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 256, 292}, [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18}, [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},     [25] = {"I16", 1, 2},      [26] = {"I32", 1, 4},
    [27] = {"I64", 1, 8},      [28] = {"F64", 1, 8},      [29] = {"IQ1_M", 256, 56}, [30] = {"BF16", 1, 2},
    [34] = {"TQ1_0", 256, 54}, [35] = {"TQ2_0", 256, 66}, [39] = {"MXFP4", 32, 17},  [40] = {"NVFP4", 64, 36},
    [41] = {"Q1_0", 128, 18},  [42] = {"Q2_0", 64, 18},
};

bool ggml_type_info(uint32_t type, int *blk, int *bytes) {
    if (type >= GGML_NTYPES || !g_types[type].name) return false;
    if (blk) *blk = g_types[type].blk;
    if (bytes) *bytes = g_types[type].bytes;
    return true;
}

const char *ggml_type_name(uint32_t type) {
    return type < GGML_NTYPES && g_types[type].name ? g_types[type].name : "unknown";
}

static const char *const g_kv_type_names[GGUF_NTYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                         "bool", "string", "array", "u64", "i64", "f64"};
static const int g_kv_size[GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct cursor {
    const unsigned char *p, *end;
    const char *what;
    forge_error *err;
} cursor;

static size_t left(const cursor *c) { return (size_t)(c->end - c->p); }

static uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* reads n (<= 8) bytes as a little-endian integer; ctx names the field in the error */
static forge_status rd(cursor *c, int n, uint64_t *v, const char *ctx) {
    *v = 0;
    if (left(c) < (size_t)n)
        return err_set(c->err, FORGE_E_FORMAT, "%s: file ends inside %s (offset %zu)", c->what, ctx,
                       (size_t)(c->end - c->p));
    *v = rd_le(c->p, n);
    c->p += n;
    return FORGE_OK;
}

static forge_status rd_str(cursor *c, gguf_str *s, uint64_t max, const char *ctx) {
    uint64_t n = 0;
    forge_status st = rd(c, 8, &n, ctx);
    if (st) return st;
    if (n > max) return err_set(c->err, FORGE_E_FORMAT, "%s: %s is %llu bytes long (at most %llu)", c->what, ctx,
                                (unsigned long long)n, (unsigned long long)max);
    if (n > left(c))
        return err_set(c->err, FORGE_E_FORMAT, "%s: %s of %llu bytes runs past the end of the file", c->what, ctx,
                       (unsigned long long)n);
    s->s = (const char *)c->p;
    s->len = n;
    c->p += n;
    return FORGE_OK;
}

/* Skips over one value of type t (not an array); checks it lies in the file. */
static forge_status skip_value(cursor *c, uint32_t t, const char *key) {
    if (t == GGUF_STRING) {
        gguf_str s;
        char ctx[96];
        snprintf(ctx, sizeof ctx, "a string of key \"%.40s\"", key);
        return rd_str(c, &s, UINT64_MAX, ctx);
    }
    if (left(c) < (size_t)g_kv_size[t])
        return err_set(c->err, FORGE_E_FORMAT, "%s: file ends inside the value of key \"%.200s\"", c->what, key);
    c->p += g_kv_size[t];
    return FORGE_OK;
}

static forge_status parse_kv(cursor *c, gguf_kv *kv, uint64_t index) {
    forge_status st;
    char ctx[64];
    snprintf(ctx, sizeof ctx, "the key of metadata entry %llu", (unsigned long long)index);
    if ((st = rd_str(c, &kv->key, GGUF_MAX_KEY, ctx))) return st;
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.s);
    uint64_t t = 0;
    if ((st = rd(c, 4, &t, "a metadata type"))) return err_prefix(c->err, "key \"%.200s\"", key);
    if (t >= GGUF_NTYPES)
        return err_set(c->err, FORGE_E_FORMAT, "%s: key \"%.200s\" has unknown value type %llu", c->what, key,
                       (unsigned long long)t);
    kv->type = (uint32_t)t;
    if (t != GGUF_ARRAY) {
        kv->val = c->p;
        return skip_value(c, kv->type, key);
    }
    uint64_t at = 0, n = 0;
    if ((st = rd(c, 4, &at, "an array type")) || (st = rd(c, 8, &n, "an array length")))
        return err_prefix(c->err, "key \"%.200s\"", key);
    if (at >= GGUF_NTYPES || at == GGUF_ARRAY)
        return err_set(c->err, FORGE_E_FORMAT, "%s: key \"%.200s\": array element type %llu is not supported",
                       c->what, key, (unsigned long long)at);
    kv->arr_type = (uint32_t)at;
    kv->arr_n = n;
    kv->val = c->p;
    if (at == GGUF_STRING) {
        /* each string takes at least its 8-byte length */
        if (n > left(c) / 8)
            return err_set(c->err, FORGE_E_FORMAT, "%s: key \"%.200s\": %llu strings cannot fit in the file", c->what,
                           key, (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if ((st = skip_value(c, GGUF_STRING, key))) return st;
    } else {
        size_t es = (size_t)g_kv_size[at];
        if (n > left(c) / es)
            return err_set(c->err, FORGE_E_FORMAT, "%s: key \"%.200s\": array of %llu %s runs past the end of the file",
                           c->what, key, (unsigned long long)n, g_kv_type_names[at]);
        c->p += n * es;
    }
    kv->val_bytes = (uint64_t)(c->p - kv->val);
    return FORGE_OK;
}

static forge_status parse_tensor(cursor *c, gguf_tensor *t, uint64_t index) {
    forge_status st;
    char ctx[64];
    snprintf(ctx, sizeof ctx, "the name of tensor %llu", (unsigned long long)index);
    if ((st = rd_str(c, &t->name, GGUF_MAX_KEY, ctx))) return st;
    t->cname = malloc(t->name.len + 1);
    if (!t->cname) return err_set(c->err, FORGE_E_NOMEM, "out of memory");
    memcpy(t->cname, t->name.s, t->name.len);
    t->cname[t->name.len] = 0;
    if (strlen(t->cname) != t->name.len)
        return err_set(c->err, FORGE_E_FORMAT, "%s: tensor %llu: name holds a NUL byte", c->what,
                       (unsigned long long)index);
    uint64_t nd = 0, v = 0;
    if ((st = rd(c, 4, &nd, "a tensor's dimension count"))) return err_prefix(c->err, "tensor \"%.200s\"", t->cname);
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return err_set(c->err, FORGE_E_FORMAT, "%s: tensor \"%.200s\" has %llu dimensions (1 to %d)", c->what,
                       t->cname, (unsigned long long)nd, GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (int d = 0; d < t->n_dims; d++) {
        if ((st = rd(c, 8, &v, "a tensor dimension"))) return err_prefix(c->err, "tensor \"%.200s\"", t->cname);
        if (v > (uint64_t)INT64_MAX)
            return err_set(c->err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": dimension %d (%llu) is out of range",
                           c->what, t->cname, d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
    }
    if ((st = rd(c, 4, &v, "a tensor type"))) return err_prefix(c->err, "tensor \"%.200s\"", t->cname);
    t->type = (uint32_t)v;
    if ((st = rd(c, 8, &t->offset, "a tensor offset"))) return err_prefix(c->err, "tensor \"%.200s\"", t->cname);
    int blk, bytes;
    if (!ggml_type_info(t->type, &blk, &bytes))
        return err_set(c->err, FORGE_E_UNSUPPORTED, "%s: tensor \"%.200s\" has unknown ggml type %u", c->what,
                       t->cname, t->type);
    /* element count and bytes without overflow */
    uint64_t count = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t n = (uint64_t)t->ne[d];
        if (n && count > (uint64_t)INT64_MAX / n)
            return err_set(c->err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": element count overflows", c->what, t->cname);
        count *= n;
    }
    if (t->ne[0] % blk)
        return err_set(c->err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": row length %lld is not a multiple of the %s block (%d)",
                       c->what, t->cname, (long long)t->ne[0], ggml_type_name(t->type), blk);
    uint64_t nblocks = count / (uint64_t)blk;
    if (nblocks > (uint64_t)SIZE_MAX / (uint64_t)bytes)
        return err_set(c->err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": size overflows", c->what, t->cname);
    t->nbytes = (size_t)(nblocks * (uint64_t)bytes);
    return FORGE_OK;
}

static int cmp_extent(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

forge_status gguf_parse(gguf_file *g, const unsigned char *data, size_t size, const char *what, forge_error *err) {
    memset(g, 0, sizeof *g);
    g->base = data;
    g->size = size;
    cursor c = {data, data + size, what, err};
    forge_status st;
    uint64_t ver = 0;
    if (size < 4 || memcmp(data, "GGUF", 4))
        return err_set(err, FORGE_E_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", what);
    c.p += 4;
    if ((st = rd(&c, 4, &ver, "the version"))) return st;
    if (ver != 2 && ver != 3)
        return err_set(err, FORGE_E_UNSUPPORTED, "%s: GGUF version %llu is not supported (2 or 3)", what,
                       (unsigned long long)ver);
    g->version = (uint32_t)ver;
    if ((st = rd(&c, 8, &g->n_tensors, "the tensor count")) || (st = rd(&c, 8, &g->n_kv, "the metadata count")))
        return st;
    /* a metadata entry takes at least 8 + 4 bytes, a tensor info 8 + 4 + 8 + 4 + 8 */
    if (g->n_kv > GGUF_MAX_COUNT || g->n_kv > left(&c) / 12)
        return err_set(err, FORGE_E_FORMAT, "%s: metadata count %llu is impossible for a %zu-byte file", what,
                       (unsigned long long)g->n_kv, size);
    if (g->n_tensors > GGUF_MAX_COUNT || g->n_tensors > left(&c) / 32)
        return err_set(err, FORGE_E_FORMAT, "%s: tensor count %llu is impossible for a %zu-byte file", what,
                       (unsigned long long)g->n_tensors, size);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors || !strmap_init(&g->kv_by_name, g->n_kv + 8) ||
        !strmap_init(&g->t_by_name, g->n_tensors + 8))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        if ((st = parse_kv(&c, kv, i))) return st;
        if (strmap_get(&g->kv_by_name, kv->key.s, kv->key.len) >= 0)
            return err_set(err, FORGE_E_FORMAT, "%s: key \"%.*s\" appears twice", what,
                           (int)(kv->key.len < 200 ? kv->key.len : 200), kv->key.s);
        if (!strmap_put(&g->kv_by_name, kv->key.s, kv->key.len, (int32_t)i))
            return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    g->alignment = 32;
    const gguf_kv *al = gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32)
            return err_set(err, FORGE_E_FORMAT, "%s: key \"general.alignment\" must be a u32, not %s", what,
                           g_kv_type_names[al->type]);
        uint64_t a = rd_le(al->val, 4);
        if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGN)
            return err_set(err, FORGE_E_FORMAT, "%s: general.alignment %llu is not a power of two up to %d", what,
                           (unsigned long long)a, GGUF_MAX_ALIGN);
        g->alignment = (size_t)a;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if ((st = parse_tensor(&c, t, i))) return st;
        if (strmap_get(&g->t_by_name, t->name.s, t->name.len) >= 0)
            return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\" appears twice", what, t->cname);
        if (!strmap_put(&g->t_by_name, t->name.s, t->name.len, (int32_t)i))
            return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    size_t hdr = (size_t)(c.p - data);
    size_t pad = (g->alignment - hdr % g->alignment) % g->alignment;
    if (g->n_tensors && pad > size - hdr)
        return err_set(err, FORGE_E_FORMAT, "%s: file ends before the tensor data", what);
    g->data_offset = hdr + (g->n_tensors ? pad : 0);
    size_t avail = size - g->data_offset;
    gguf_tensor **order = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *order);
    if (!order) return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        order[i] = t;
        if (t->offset % g->alignment) {
            free(order);
            return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": offset %llu is not a multiple of the alignment %zu",
                           what, t->cname, (unsigned long long)t->offset, g->alignment);
        }
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            free(order);
            return err_set(err, FORGE_E_FORMAT,
                           "%s: tensor \"%.200s\": %zu bytes at offset %llu lie outside the %zu data bytes of the file",
                           what, t->cname, t->nbytes, (unsigned long long)t->offset, avail);
        }
        t->data = data + g->data_offset + t->offset;
    }
    /* no two tensors may share bytes */
    qsort(order, g->n_tensors, sizeof *order, cmp_extent);
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        const gguf_tensor *a = order[i - 1], *b = order[i];
        if (a->nbytes && b->nbytes && a->offset + a->nbytes > b->offset) {
            st = err_set(err, FORGE_E_FORMAT, "%s: tensors \"%.100s\" and \"%.100s\" overlap", what, a->cname, b->cname);
            free(order);
            return st;
        }
    }
    free(order);
    return FORGE_OK;
}

forge_status gguf_open(gguf_file *g, const char *path, forge_error *err) {
    mfile m;
    forge_status st = mfile_open(&m, path, err);
    if (st) {
        memset(g, 0, sizeof *g);
        return st;
    }
    st = gguf_parse(g, m.data, m.size, path, err);
    g->map = m;
    return st;
}

void gguf_close(gguf_file *g) {
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].cname);
    free(g->tensors);
    free(g->kv);
    strmap_free(&g->kv_by_name);
    strmap_free(&g->t_by_name);
    mfile_close(&g->map);
    memset(g, 0, sizeof *g);
}

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key) {
    if (!g->kv) return NULL;
    int32_t i = strmap_get(&g->kv_by_name, key, strlen(key));
    return i < 0 ? NULL : &g->kv[i];
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    if (!g->tensors) return NULL;
    int32_t i = strmap_get(&g->t_by_name, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i];
}

static bool scalar_int(uint32_t t, const unsigned char *p, int64_t *out) {
    switch (t) {
    case GGUF_U8: *out = p[0]; return true;
    case GGUF_I8: *out = (int8_t)p[0]; return true;
    case GGUF_U16: *out = (uint16_t)rd_le(p, 2); return true;
    case GGUF_I16: *out = (int16_t)(uint16_t)rd_le(p, 2); return true;
    case GGUF_U32: *out = (uint32_t)rd_le(p, 4); return true;
    case GGUF_I32: *out = (int32_t)(uint32_t)rd_le(p, 4); return true;
    case GGUF_I64: *out = (int64_t)rd_le(p, 8); return true;
    case GGUF_U64: {
        uint64_t v = rd_le(p, 8);
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
        return true;
    }
    default: return false;
    }
}

static double scalar_num(uint32_t t, const unsigned char *p) {
    int64_t i;
    if (t == GGUF_F32) {
        union { uint32_t u; float f; } v = {.u = (uint32_t)rd_le(p, 4)};
        return v.f;
    }
    if (t == GGUF_F64) {
        union { uint64_t u; double d; } v = {.u = rd_le(p, 8)};
        return v.d;
    }
    if (t == GGUF_BOOL) return p[0] != 0;
    if (scalar_int(t, p, &i)) return (double)i;
    return (double)rd_le(p, 8); /* u64 over INT64_MAX */
}

static const char *kv_type_name(const gguf_kv *kv) { return g_kv_type_names[kv->type]; }

forge_status gguf_get_int(const gguf_file *g, const char *key, int64_t *out, forge_error *err) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return FORGE_E_NOT_FOUND;
    if (!scalar_int(kv->type, kv->val, out))
        return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be an integer, not %s", key, kv_type_name(kv));
    return FORGE_OK;
}

forge_status gguf_get_float(const gguf_file *g, const char *key, double *out, forge_error *err) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return FORGE_E_NOT_FOUND;
    if (kv->type == GGUF_STRING || kv->type == GGUF_ARRAY || kv->type == GGUF_BOOL)
        return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be a number, not %s", key, kv_type_name(kv));
    *out = scalar_num(kv->type, kv->val);
    return FORGE_OK;
}

forge_status gguf_get_bool(const gguf_file *g, const char *key, bool *out, forge_error *err) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return FORGE_E_NOT_FOUND;
    if (kv->type != GGUF_BOOL)
        return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be a bool, not %s", key, kv_type_name(kv));
    *out = kv->val[0] != 0;
    return FORGE_OK;
}

forge_status gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, forge_error *err) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return FORGE_E_NOT_FOUND;
    if (kv->type != GGUF_STRING)
        return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be a string, not %s", key, kv_type_name(kv));
    out->len = rd_le(kv->val, 8);
    out->s = (const char *)kv->val + 8;
    return FORGE_OK;
}

forge_status gguf_arr_strings(const gguf_kv *kv, gguf_str *out) {
    if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING) return FORGE_E_FORMAT;
    const unsigned char *p = kv->val; /* already checked by the parse */
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        out[i].len = rd_le(p, 8);
        out[i].s = (const char *)p + 8;
        p += 8 + out[i].len;
    }
    return FORGE_OK;
}

double gguf_arr_num(const gguf_kv *kv, uint64_t i) {
    return scalar_num(kv->arr_type, kv->val + i * (uint64_t)g_kv_size[kv->arr_type]);
}
