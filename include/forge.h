/* forge.h: the public API of the Forge inference library.
 *
 * Every call that can fail takes a `forge_error *` (which may be NULL) and returns a
 * status; on failure the error holds the status and a message naming what was wrong.
 * The library never exits or aborts on bad input. Objects are created by `forge_x_open`
 * or `forge_x_create` and released by the matching `forge_x_close` / `forge_x_free`;
 * whoever creates an object frees it.
 */
#ifndef FORGE_H
#define FORGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FORGE_VERSION "0.1.0"

/* ---------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------- */

typedef enum forge_status {
    FORGE_OK = 0,
    FORGE_E_INVALID = -1,     /* a caller's argument or request is invalid */
    FORGE_E_IO = -2,          /* a file could not be opened, read or written */
    FORGE_E_FORMAT = -3,      /* a file or document is malformed */
    FORGE_E_UNSUPPORTED = -4, /* well-formed but not supported (model type, dtype, ...) */
    FORGE_E_NOMEM = -5,       /* out of memory */
    FORGE_E_RANGE = -6,       /* a size or length beyond a limit (context, batch, ...) */
    FORGE_E_TEMPLATE = -7,    /* a chat template failed to parse or raised */
    FORGE_E_NOT_FOUND = -8,   /* a file, model or entry does not exist */
    FORGE_E_NETWORK = -9,     /* a network transfer failed */
    FORGE_E_BUSY = -10,       /* a queue is full; try again later */
    FORGE_E_CANCELLED = -11,  /* the operation was cancelled */
    FORGE_E_INTERNAL = -12,   /* an internal invariant failed (a bug) */
} forge_status;

typedef struct forge_error {
    forge_status code;
    char msg[1024];
} forge_error;

/* Short name of a status ("ok", "invalid argument", ...); never NULL. */
const char *forge_status_str(forge_status s);

/* ---------------------------------------------------------------------------------------
 * Models and the batched forward pass (core)
 * ------------------------------------------------------------------------------------- */

typedef enum forge_dtype {
    FORGE_DTYPE_F32 = 0,
    FORGE_DTYPE_F16 = 1,
    FORGE_DTYPE_BF16 = 2,
    FORGE_DTYPE_AUTO = -1, /* only where a parameter says so */
} forge_dtype;

typedef struct forge_model forge_model;

typedef struct forge_model_params {
    int max_model_len; /* 0: the smaller of max_position_embeddings and what memory allows */
    int n_threads;     /* 0: the cores this process may use */
} forge_model_params;

typedef struct forge_model_info {
    const char *model_type; /* "llama", "mistral", "qwen2", "qwen3" */
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int max_position_embeddings;
    int context_len;         /* effective maximum sequence length */
    forge_dtype dtype;       /* dtype of the projection weights */
    int bos_token_id;        /* -1 when absent */
    int n_eos_ids;           /* eos_token_id of config.json (int or list) */
    const int32_t *eos_ids;
    size_t weight_bytes;     /* bytes of weights read by one forward token */
    int n_threads;
} forge_model_info;

/* Loads the HF model folder `dir` (config.json + safetensors). Weights stay in the mmap. */
forge_model *forge_model_open(const char *dir, const forge_model_params *params, forge_error *err);
/* Releases the model; contexts made from it must be freed first. NULL is allowed. */
void forge_model_close(forge_model *model);
/* Shape and metadata of an open model; the pointers live as long as the model. */
const forge_model_info *forge_model_get_info(const forge_model *model);

#define FORGE_KV_BLOCK_TOKENS 16

typedef struct forge_context forge_context;

typedef struct forge_context_params {
    int n_kv_blocks;      /* KV pool size in blocks of FORGE_KV_BLOCK_TOKENS; 0: from kv_cache_mb */
    size_t kv_cache_mb;   /* used when n_kv_blocks is 0; 0: enough for one full-length sequence */
    int max_batch_tokens; /* most tokens one forward call may carry; 0: 512 */
    int max_logit_rows;   /* most rows needing logits in one call; 0: 64 */
    forge_dtype kv_dtype; /* F32, BF16 or AUTO (F32 for F32 weights, else BF16) */
    int n_threads;        /* 0: the model's */
} forge_context_params;

/* One forward call: a flat list of tokens from any number of sequences.
 * Row i carries token tokens[i] at position positions[i] of sequence seq[i]. Each sequence
 * s has a block table (block_tables[s], n_blocks[s] entries) mapping position p to KV block
 * block_tables[s][p / FORGE_KV_BLOCK_TOKENS]; a row's K/V are written there and the row
 * attends to positions 0..p of its sequence already in the cache (or in this batch).
 * logit_rows lists the rows whose logits are computed, in output order. */
typedef struct forge_batch {
    int n_tokens;
    const int32_t *tokens;
    const int32_t *positions;
    const int32_t *seq;
    int n_seqs;
    const int32_t *const *block_tables;
    const int32_t *n_blocks;
    int n_logits;
    const int32_t *logit_rows;
} forge_batch;

/* Creates a context: the KV block pool, scratch sized once, and the worker threads. */
forge_context *forge_context_create(forge_model *model, const forge_context_params *params,
                                    forge_error *err);
void forge_context_free(forge_context *ctx);
/* Number of KV blocks in the pool. */
int forge_context_n_kv_blocks(const forge_context *ctx);
/* Runs the forward pass of one batch; logits of the rows in logit_rows become readable. */
forge_status forge_context_decode(forge_context *ctx, const forge_batch *batch, forge_error *err);
/* Logits (vocab_size floats) of output row i of the last successful decode. */
const float *forge_context_logits(const forge_context *ctx, int i);

/* ---------------------------------------------------------------------------------------
 * Tokenizer (tokenizer issue)
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * Chat templates (template issue)
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * Sampling and generation (generate issue)
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * Engine: requests, continuous batching (engine issue)
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * Hub: model ids and the HF cache (hub issue)
 * ------------------------------------------------------------------------------------- */

/* A model is named by a local folder or by a HuggingFace Hub id, "org/name" or
 * "org/name@revision" (a branch, tag or commit hash; default "main"). Hub models live in the
 * cache huggingface_hub uses ($HF_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub), so transformers, vLLM and
 * huggingface-cli share them with Forge both ways. Only what inference reads is fetched:
 * config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, chat_template.jinja, and model.safetensors or the shards its
 * model.safetensors.index.json names. Online, a cached model costs one request (re-resolving
 * the revision); when the Hub cannot be reached the cached snapshot is used with a warning.
 * Offline ($HF_HUB_OFFLINE=1 or `offline`), no request is made at all. Tuning variables:
 * HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT (connect and stall limits, seconds, 10),
 * FORGE_HUB_RETRIES (5), FORGE_HUB_PARALLEL (files at once, 4). */
typedef struct forge_hub_params {
    const char *endpoint;  /* NULL: $HF_ENDPOINT, else https://huggingface.co */
    const char *token;     /* NULL: $HF_TOKEN, else the file $HF_TOKEN_PATH, else $HF_HOME/token;
                              "": send no token */
    const char *cache_dir; /* NULL: the huggingface_hub cache root from the environment */
    bool offline;          /* true: make no request (also when $HF_HUB_OFFLINE is true) */
    bool progress;         /* true: progress on stderr (a bar on a terminal, lines otherwise) */
} forge_hub_params;

/* Makes the Hub model `id` ("org/name[@revision]") available in the cache, downloading what is
 * missing, and writes its snapshot folder (<cache>/models--org--name/snapshots/<commit>) into
 * path (path_size bytes). params may be NULL (all defaults, no progress). */
forge_status forge_hub_download(const char *id, const forge_hub_params *params, char *path,
                                size_t path_size, forge_error *err);
/* Resolves a --model value: an existing folder is used as is (copied into path); otherwise it
 * must be a Hub id, handled as forge_hub_download. model NULL or "" means $FORGE_MODEL. */
forge_status forge_model_resolve(const char *model, const forge_hub_params *params, char *path,
                                 size_t path_size, forge_error *err);
/* Writes the cache root that params (may be NULL) and the environment select. */
forge_status forge_hub_cache_dir(const forge_hub_params *params, char *path, size_t path_size,
                                 forge_error *err);

#ifdef __cplusplus
}
#endif

#endif /* FORGE_H */
