/* batch_resume.c: what an earlier run of forge batch wrote to --output (for --resume), and
 * counting input lines for the progress display. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli/batch.h"

/* ---- resume ------------------------------------------------------------------------------ */



bool batch_done_has(const done_set *d, const slot *it, const json_value *cid) {
    if (it->openai) return cid && json_is(cid, JSON_STRING) && d->ids.slots && strmap_get(&d->ids, cid->u.s, cid->n) >= 0;
    return (size_t)it->index < d->n_index && (d->index[it->index >> 3] >> (it->index & 7) & 1);
}

void batch_done_free(done_set *d) {
    strmap_free(&d->ids);
    for (size_t i = 0; i < d->n_keys; i++) free(d->keys[i]);
    free(d->keys);
    free(d->index);
}

/* Reads what an earlier run wrote to path; drops a torn last line. */
int batch_load_done(const char *path, done_set *d, long *n_lines) {
    *n_lines = 0;
    FILE *f = fopen(path, "r+");
    if (!f) return errno == ENOENT ? 0 : -1;
    if (!strmap_init(&d->ids, 1024)) {
        fclose(f);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    off_t good = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') break; /* torn by an interruption */
        forge_error err;
        json_doc *doc = json_parse(line, (size_t)len, &err);
        if (!doc) {
            fprintf(stderr, "forge batch: --resume: line %ld of %s is not JSON; not appending to it\n", *n_lines + 1, path);
            rc = -1;
            break;
        }
        const json_value *o = json_root(doc);
        const json_value *cid = json_get(o, "custom_id"), *idx = json_get(o, "index");
        if (json_is(cid, JSON_STRING)) {
            if (d->n_keys == d->cap_keys) {
                size_t nc = d->cap_keys ? d->cap_keys * 2 : 1024;
                char **k = realloc(d->keys, nc * sizeof *k);
                if (!k) rc = -1;
                else d->keys = k, d->cap_keys = nc;
            }
            char *key = rc ? NULL : malloc(cid->n + 1);
            if (key) {
                memcpy(key, cid->u.s, cid->n);
                key[cid->n] = 0;
                d->keys[d->n_keys++] = key;
                if (!strmap_put(&d->ids, key, cid->n, 1)) rc = -1;
            } else {
                rc = -1;
            }
        } else if (json_is(idx, JSON_INT) && idx->u.i >= 0 && idx->u.i < (1LL << 40)) {
            size_t i = (size_t)idx->u.i;
            if (i >= d->n_index) {
                size_t nb = (i + 1) * 2;
                uint8_t *m = realloc(d->index, (nb + 7) / 8);
                if (!m) rc = -1;
                else {
                    memset(m + (d->n_index + 7) / 8, 0, (nb + 7) / 8 - (d->n_index + 7) / 8);
                    d->index = m;
                    d->n_index = nb;
                }
            }
            if (!rc) d->index[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
        json_free(doc);
        if (rc) break;
        good += len;
        (*n_lines)++;
    }
    free(line);
    if (!rc && ftruncate(fileno(f), good) != 0) rc = -1;
    fclose(f);
    return rc;
}

long batch_count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long n = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        ssize_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) i++;
        if (i < len) n++;
    }
    free(line);
    fclose(f);
    return n;
}
