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

/* Machine measurements for benchmarks' rooflines, using n_threads threads (0: default).
 * Read bandwidth in bytes/s over a buffer much larger than the caches; peak f32 FMA rate
 * in FLOP/s (2 per fused multiply-add) of the best kernel this CPU has. */
double forge_measure_read_bandwidth(int n_threads);
double forge_measure_fma_peak(int n_threads);
/* Name of the kernel variant in use ("avx2", "scalar"). */
const char *forge_kernels_name(void);

/* ---------------------------------------------------------------------------------------
 * Tokenizer (tokenizer issue)
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * Chat templates (template issue)
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * Sampling and generation (generate issue)
 * ------------------------------------------------------------------------------------- */

typedef struct forge_logit_bias {
    int32_t token;
    float bias; /* added to the raw logit; -100..100 as OpenAI */
} forge_logit_bias;

/* Logits processors, then samplers, in this order: logit_bias, repetition penalty (HF: over
 * prompt and generated ids, positive logits divided, negative multiplied), presence and
 * frequency penalties (OpenAI/vLLM: logit - count * freq - [count > 0] * pres, over the
 * generated ids), temperature, top-k, top-p, min-p. Temperature 0 is greedy. */
typedef struct forge_sampling_params {
    float temperature;        /* >= 0; 0: greedy (argmax, lowest id on ties) */
    float top_p;              /* (0, 1]; 1: off */
    int top_k;                /* <= 0: off */
    float min_p;              /* [0, 1]; 0: off */
    float repetition_penalty; /* > 0; 1: off */
    float presence_penalty;   /* [-2, 2]; 0: off */
    float frequency_penalty;  /* [-2, 2]; 0: off */
    bool has_seed;            /* false: a seed is drawn from the system */
    uint64_t seed;
    const forge_logit_bias *logit_bias;
    int n_logit_bias;
    int top_logprobs; /* report the N (0..20) most likely tokens' raw logprobs */
} forge_sampling_params;

/* temperature 1, top_p 1, top_k off, min_p 0, penalties off, no seed, no bias. */
void forge_sampling_params_default(forge_sampling_params *p);
/* Checks ranges (naming the field); vocab_size bounds logit_bias token ids. */
forge_status forge_sampling_params_check(const forge_sampling_params *p, int vocab_size, forge_error *err);

/* ---------------------------------------------------------------------------------------
 * Engine: requests, continuous batching (engine issue)
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * Hub: model ids and the HF cache (hub issue)
 * ------------------------------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* FORGE_H */
