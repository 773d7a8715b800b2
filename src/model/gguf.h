/* gguf.h: GGUF files (versions 2 and 3), mapped read-only. Every header field, string,
 * array and tensor extent is checked against the file without overflow before anything
 * points into it; errors name the key or the tensor.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count;
 * metadata (string key, u32 type, value)*; tensor infos (string name, u32 n_dims,
 * u64 ne[n_dims] (innermost first), u32 ggml type, u64 offset)*; padding to
 * general.alignment (default 32); tensor data, each tensor at data start + offset. */
#ifndef FORGE_MODEL_GGUF_H
#define FORGE_MODEL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/hashmap.h"
#include "base/mfile.h"

/* metadata value types */
enum {
    GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
    GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_NTYPES
};

/* ggml tensor types (the ids GGUF stores) */
enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12, GGML_Q5_K = 13,
    GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_BF16 = 30, GGML_NTYPES = 43
};

enum { GGUF_MAX_DIMS = 4 };

typedef struct gguf_str {
    const char *s; /* inside the mapping: not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;      /* GGUF_* */
    uint32_t arr_type;  /* element type for arrays */
    uint64_t arr_n;     /* element count for arrays */
    const unsigned char *val; /* the value (for arrays: the first element) */
    uint64_t val_bytes;        /* bytes of the whole value (array elements only) */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    char *cname; /* NUL-terminated copy of the name */
    uint32_t type; /* GGML_* */
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* innermost first; unused dims are 1 */
    uint64_t offset;            /* from the data start */
    const unsigned char *data;
    size_t nbytes;
} gguf_tensor;

typedef struct gguf_file {
    mfile map;
    const unsigned char *base;
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    strmap kv_by_name, t_by_name;
    size_t alignment;
    size_t data_offset;
} gguf_file;

/* Block geometry of a ggml type: elements per block and bytes per block; false for types
 * GGUF may hold that Forge does not know. */
bool ggml_type_info(uint32_t type, int *block_elems, int *block_bytes);
const char *ggml_type_name(uint32_t type);

/* Parses a GGUF held in (data, size); everything points into data. `what` names it in
 * errors. g is zeroed first; gguf_close frees it (also after a failure). */
forge_status gguf_parse(gguf_file *g, const unsigned char *data, size_t size, const char *what, forge_error *err);
/* Maps path and parses it. */
forge_status gguf_open(gguf_file *g, const char *path, forge_error *err);
void gguf_close(gguf_file *g);

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* Typed getters. Each returns FORGE_OK and sets *out when the key is present with a
 * compatible type; when absent, FORGE_E_NOT_FOUND (no message) and *out untouched; a
 * present key of the wrong type or out of range is FORGE_E_FORMAT naming the key. */
forge_status gguf_get_int(const gguf_file *g, const char *key, int64_t *out, forge_error *err);
forge_status gguf_get_float(const gguf_file *g, const char *key, double *out, forge_error *err);
forge_status gguf_get_bool(const gguf_file *g, const char *key, bool *out, forge_error *err);
forge_status gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, forge_error *err);

/* Array access: elements of arrays of strings are found by walking; gguf_arr_strings
 * fills out[0..n) (n = the array's length) with the strings of a string array. */
forge_status gguf_arr_strings(const gguf_kv *kv, gguf_str *out);
/* Element i of a numeric array as a double / int64. */
double gguf_arr_num(const gguf_kv *kv, uint64_t i);

#endif
