/* safetensors.h: safetensors files (single, or sharded with model.safetensors.index.json),
 * mapped read-only. Every header entry is checked: dtype, shape, and that its byte range
 * lies inside the file and matches the shape, without overflow. */
#ifndef FORGE_MODEL_SAFETENSORS_H
#define FORGE_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/hashmap.h"
#include "base/json.h"
#include "base/mfile.h"
#include "forge.h"

enum { ST_MAX_DIMS = 8 };

typedef struct st_tensor {
    const char *name;    /* owned by the set's header documents */
    char dtype_name[16]; /* as written ("BF16", "I64", ...) */
    int dtype;           /* a forge_dtype, or -1 for dtypes Forge cannot compute with */
    int qtype;           /* GGUF: the ggml type of a quantized tensor (dtype -1), else 0 */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const unsigned char *data; /* inside the file mapping; may be unaligned */
    size_t nbytes;
    int file; /* index into the set's files */
} st_tensor;

typedef struct st_set {
    int n_files;
    mfile *maps;
    char **paths;
    json_doc **headers;
    st_tensor *tensors;
    int n_tensors;
    strmap by_name;
} st_set;

/* Parses one file's header from its bytes (data, size) and appends its tensors; the
 * tensors point into data. Used by st_open_dir and by the fuzzer. */
forge_status st_parse(st_set *s, int file, const unsigned char *data, size_t size, const char *path,
                      forge_error *err);
/* Opens dir/model.safetensors, or the shards model.safetensors.index.json names. */
forge_status st_open_dir(st_set *s, const char *dir, forge_error *err);
/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_set *s, const char *name);
void st_close(st_set *s);

#endif
