#include "model/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

enum { ST_MAX_HEADER = 100 << 20, ST_MAX_SHARDS = 1024 };

static int dtype_from_name(const char *s, size_t *elsize) {
    static const struct { const char *name; int dtype; size_t size; } t[] = {
        {"F32", FORGE_DTYPE_F32, 4}, {"F16", FORGE_DTYPE_F16, 2}, {"BF16", FORGE_DTYPE_BF16, 2},
        {"F64", -1, 8}, {"I64", -1, 8}, {"I32", -1, 4}, {"I16", -1, 2}, {"I8", -1, 1},
        {"U8", -1, 1}, {"U16", -1, 2}, {"U32", -1, 4}, {"U64", -1, 8}, {"BOOL", -1, 1},
        {"F8_E4M3", -1, 1}, {"F8_E5M2", -1, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].name)) {
            *elsize = t[i].size;
            return t[i].dtype;
        }
    *elsize = 0;
    return -2; /* unknown name */
}

static forge_status add_tensor(st_set *s, const st_tensor *t, forge_error *err) {
    if (s->n_tensors % 256 == 0) {
        st_tensor *p = realloc(s->tensors, (size_t)(s->n_tensors + 256) * sizeof *p);
        if (!p) return err_set(err, FORGE_E_NOMEM, "out of memory");
        s->tensors = p;
    }
    s->tensors[s->n_tensors++] = *t;
    return FORGE_OK;
}

forge_status st_parse(st_set *s, int file, const unsigned char *data, size_t size, const char *path,
                      forge_error *err) {
    if (size < 8) return err_set(err, FORGE_E_FORMAT, "%s: %zu bytes is too short for a safetensors file", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    if (hlen > ST_MAX_HEADER || hlen > size - 8)
        return err_set(err, FORGE_E_FORMAT, "%s: header length %llu exceeds the file (%zu bytes)", path,
                       (unsigned long long)hlen, size);
    json_doc *doc = json_parse((const char *)data + 8, (size_t)hlen, err);
    if (!doc) return err_prefix(err, "%s: header", path);
    s->headers[file] = doc;
    const json_value *root = json_root(doc);
    if (!json_is(root, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "%s: header is not a JSON object", path);
    const unsigned char *base = data + 8 + hlen;
    size_t avail = size - 8 - (size_t)hlen;
    for (size_t i = 0; i < root->n; i++) {
        const json_member *m = &root->u.members[i];
        if (!strcmp(m->key, "__metadata__")) continue;
        const json_value *e = m->value;
        st_tensor t;
        memset(&t, 0, sizeof t);
        t.name = m->key;
        t.file = file;
        if (!json_is(e, JSON_OBJECT))
            return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": entry is not an object", path, t.name);
        const char *dt = json_string(json_get(e, "dtype"));
        if (!dt) return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": no \"dtype\"", path, t.name);
        size_t elsize;
        t.dtype = dtype_from_name(dt, &elsize);
        if (t.dtype == -2)
            return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": unknown dtype \"%.16s\"", path, t.name, dt);
        snprintf(t.dtype_name, sizeof t.dtype_name, "%s", dt);
        const json_value *shape = json_get(e, "shape");
        if (!json_is(shape, JSON_ARRAY) || shape->n > ST_MAX_DIMS)
            return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": \"shape\" must be a list of at most %d sizes",
                           path, t.name, ST_MAX_DIMS);
        t.ndim = (int)shape->n;
        uint64_t count = 1;
        for (int d = 0; d < t.ndim; d++) {
            const json_value *v = json_at(shape, (size_t)d);
            if (v->type != JSON_INT || v->u.i < 0 || v->u.i > (1LL << 40))
                return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": shape[%d] is not a valid size", path, t.name, d);
            t.shape[d] = v->u.i;
            if (t.shape[d] && count > (UINT64_MAX >> 1) / (uint64_t)t.shape[d])
                return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": shape overflows", path, t.name);
            count *= (uint64_t)t.shape[d];
        }
        const json_value *off = json_get(e, "data_offsets");
        if (!json_is(off, JSON_ARRAY) || off->n != 2 || json_at(off, 0)->type != JSON_INT ||
            json_at(off, 1)->type != JSON_INT)
            return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\": \"data_offsets\" must be [begin, end]", path, t.name);
        int64_t b = json_at(off, 0)->u.i, en = json_at(off, 1)->u.i;
        if (b < 0 || en < b || (uint64_t)en > avail)
            return err_set(err, FORGE_E_FORMAT,
                           "%s: tensor \"%.200s\": data_offsets [%lld, %lld] lie outside the %zu data bytes", path,
                           t.name, (long long)b, (long long)en, avail);
        if (count > UINT64_MAX / (elsize ? elsize : 1) || count * elsize != (uint64_t)(en - b))
            return err_set(err, FORGE_E_FORMAT,
                           "%s: tensor \"%.200s\": %lld bytes for shape of %llu %s elements (want %llu)", path,
                           t.name, (long long)(en - b), (unsigned long long)count, dt,
                           (unsigned long long)(count * elsize));
        t.data = base + b;
        t.nbytes = (size_t)(en - b);
        if (strmap_get(&s->by_name, t.name, strlen(t.name)) >= 0)
            return err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\" appears twice", path, t.name);
        forge_status st = add_tensor(s, &t, err);
        if (st) return st;
        if (!strmap_put(&s->by_name, t.name, strlen(t.name), s->n_tensors - 1))
            return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    return FORGE_OK;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static forge_status alloc_files(st_set *s, int n, forge_error *err) {
    s->n_files = n;
    s->maps = calloc((size_t)n, sizeof *s->maps);
    s->paths = calloc((size_t)n, sizeof *s->paths);
    s->headers = calloc((size_t)n, sizeof *s->headers);
    if (!s->maps || !s->paths || !s->headers || !strmap_init(&s->by_name, 1024))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    return FORGE_OK;
}

static forge_status open_file(st_set *s, int i, const char *path, forge_error *err) {
    s->paths[i] = strdup(path);
    if (!s->paths[i]) return err_set(err, FORGE_E_NOMEM, "out of memory");
    forge_status st = mfile_open(&s->maps[i], path, err);
    if (st) return st;
    mfile_advise_hugepages(&s->maps[i]);
    return st_parse(s, i, s->maps[i].data, s->maps[i].size, path, err);
}

forge_status st_open_dir(st_set *s, const char *dir, forge_error *err) {
    memset(s, 0, sizeof *s);
    char path[4096], index_path[4096];
    forge_status st;
    if (path_join(path, sizeof path, dir, "model.safetensors") || path_join(index_path, sizeof index_path, dir, "model.safetensors.index.json"))
        return err_set(err, FORGE_E_INVALID, "model path is too long");
    if (path_is_file(path)) {
        if ((st = alloc_files(s, 1, err)) || (st = open_file(s, 0, path, err))) goto fail;
        return FORGE_OK;
    }
    if (!path_is_file(index_path)) {
        st = err_set(err, FORGE_E_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json", dir);
        goto fail;
    }
    json_doc *idx = json_parse_file(index_path, 64u << 20, err);
    if (!idx) {
        st = err ? err->code : FORGE_E_FORMAT;
        goto fail;
    }
    const json_value *wm = json_get(json_root(idx), "weight_map");
    if (!json_is(wm, JSON_OBJECT)) {
        json_free(idx);
        st = err_set(err, FORGE_E_FORMAT, "%s: no \"weight_map\" object", index_path);
        goto fail;
    }
    /* distinct shard names, in order of first appearance */
    const char *names[ST_MAX_SHARDS];
    int n = 0;
    for (size_t i = 0; i < wm->n; i++) {
        const char *f = json_string(wm->u.members[i].value);
        if (!f || strchr(f, '/') || !strcmp(f, "..") || !*f) {
            json_free(idx);
            st = err_set(err, FORGE_E_FORMAT, "%s: weight_map[\"%.200s\"] is not a file name in the folder", index_path,
                         wm->u.members[i].key);
            goto fail;
        }
        int seen = 0;
        for (int j = 0; j < n && !seen; j++) seen = !strcmp(names[j], f);
        if (seen) continue;
        if (n == ST_MAX_SHARDS) {
            json_free(idx);
            st = err_set(err, FORGE_E_RANGE, "%s: more than %d shards", index_path, ST_MAX_SHARDS);
            goto fail;
        }
        names[n++] = f;
    }
    if ((st = alloc_files(s, n, err))) {
        json_free(idx);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        if (path_join(path, sizeof path, dir, names[i])) {
            st = err_set(err, FORGE_E_INVALID, "shard path is too long");
            break;
        }
        if ((st = open_file(s, i, path, err))) break;
    }
    /* every tensor the index names must be in the shard it names */
    for (size_t i = 0; !st && i < wm->n; i++) {
        const char *tn = wm->u.members[i].key;
        const st_tensor *t = st_find(s, tn);
        if (!t) {
            st = err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\" is not in shard %s", index_path, tn,
                         json_string(wm->u.members[i].value));
        } else if (strcmp(base_name(s->paths[t->file]), json_string(wm->u.members[i].value))) {
            st = err_set(err, FORGE_E_FORMAT, "%s: tensor \"%.200s\" is in %s, not in %s as the index says", index_path,
                         tn, s->paths[t->file], json_string(wm->u.members[i].value));
        }
    }
    json_free(idx);
    if (st) goto fail;
    return FORGE_OK;
fail:
    st_close(s);
    return st;
}

const st_tensor *st_find(const st_set *s, const char *name) {
    int32_t i = strmap_get(&s->by_name, name, strlen(name));
    return i < 0 ? NULL : &s->tensors[i];
}

void st_close(st_set *s) {
    for (int i = 0; i < s->n_files; i++) {
        if (s->maps) mfile_close(&s->maps[i]);
        if (s->paths) free(s->paths[i]);
        if (s->headers) json_free(s->headers[i]);
    }
    free(s->maps);
    free(s->paths);
    free(s->headers);
    free(s->tensors);
    strmap_free(&s->by_name);
    memset(s, 0, sizeof *s);
}
