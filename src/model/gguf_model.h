/* gguf_model.h: a GGUF file as a Forge model: its metadata as the config, its tensors
 * under their HF names (so model_bind binds them like safetensors), and which of them
 * llama.cpp stored with the Q/K rows permuted for its interleaved RoPE. */
#ifndef FORGE_MODEL_GGUF_MODEL_H
#define FORGE_MODEL_GGUF_MODEL_H

#include <stdbool.h>

#include "model/config.h"
#include "model/gguf.h"
#include "model/safetensors.h"

typedef struct gguf_model {
    gguf_file file;      /* the file named, or the first shard of a split model */
    gguf_file *more;     /* a split model's other shards, in order (split.no 1..) */
    int n_more;
    char **names; /* the HF names the st_set points to */
    int n_names;
    bool qk_permuted;         /* llama: rows of q_proj/k_proj in llama.cpp's order */
    const float *rope_freqs;  /* llama3 rope_freqs.weight (head_dim / 2) or NULL */
    bool norms_hold_one;      /* gemma2: the converter stored Gemma's norms as 1 + w already */
} gguf_model;

/* True when path names a GGUF file (by its name), or a folder that holds no safetensors
 * but .gguf files; *file (size n) gets the file to open. A folder with several .gguf
 * files is an error naming them (FORGE_E_INVALID) unless they are one model's shards. */
forge_status gguf_model_find(const char *path, char *file, size_t n, bool *is_gguf, forge_error *err);

/* Opens path: config from the metadata, st filled with the tensors under HF names. A split
 * model (llama-gguf-split: split.count > 1) is opened from its first shard,
 * NAME-00001-of-0000N.gguf; the others are found beside it by that pattern and checked
 * (split.no, split.count, split.tensors.count). */
forge_status gguf_model_open(gguf_model *gm, const char *path, model_config *cfg, st_set *st, forge_error *err);
/* Fills cfg from an already parsed file and st with its tensors (the fuzzer's entry). */
forge_status gguf_model_describe(gguf_model *gm, model_config *cfg, st_set *st, forge_error *err);
void gguf_model_close(gguf_model *gm);

#endif
