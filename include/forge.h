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
 *
 * A model's Jinja2 chat template, rendered byte for byte as HF's apply_chat_template does
 * (sandboxed Jinja2, trim_blocks, lstrip_blocks, loopcontrols, HF's tojson, raise_exception,
 * strftime_now) from an OpenAI chat request handled as vLLM's chat endpoint does. A loaded
 * template is immutable: any number of threads may render with it at once.
 * strftime_now uses the clock, or the UTC time SOURCE_DATE_EPOCH names when that is set.
 * ------------------------------------------------------------------------------------- */

typedef struct forge_chat_template forge_chat_template;

/* Bounds on one render (the sandbox); a render past one fails with FORGE_E_RANGE. */
typedef struct forge_template_limits {
    size_t max_output;  /* bytes of rendered text (and of any one string); 0: 32 MiB */
    uint64_t max_steps; /* evaluation steps (nodes, loop iterations); 0: 20 million */
    int max_depth;      /* nested macro calls and recursive loops; 0: 100 */
} forge_template_limits;

/* Loads the chat template of the model folder model_dir: template_file if not NULL, else
 * model_dir/chat_template.jinja, else tokenizer_config.json's "chat_template" (a string, or a
 * list of {"name", "template"}: "tool_use" is used when a request has tools, else
 * "default"). The special tokens (bos_token, eos_token, unk_token, pad_token, ... as strings
 * or {"content": ...} objects; null ones stay undefined) come from model_dir's
 * tokenizer_config.json when there is one. FORGE_E_NOT_FOUND when there is no template,
 * FORGE_E_TEMPLATE (with the line) when it does not parse. */
forge_chat_template *forge_chat_template_load(const char *model_dir, const char *template_file,
                                              forge_error *err);
/* A template from source text (or, when source is NULL, the chat_template of config_json);
 * config_json (may be NULL) is tokenizer_config.json text giving the special tokens. */
forge_chat_template *forge_chat_template_create(const char *source, size_t len,
                                                const char *config_json, size_t config_len,
                                                forge_error *err);
void forge_chat_template_free(forge_chat_template *t);
/* Sets the render limits (NULL or zero fields: the defaults). Not while rendering. */
void forge_chat_template_set_limits(forge_chat_template *t, const forge_template_limits *lim);
/* The file the template came from (template file, chat_template.jinja or
 * tokenizer_config.json path), or "string". */
const char *forge_chat_template_origin(const forge_chat_template *t);

/* Renders an OpenAI chat request (JSON text of an object): "messages" (required; content as
 * a string, text parts or null; assistant tool_calls with arguments as a JSON string or an
 * object), optional "tools", "documents", "add_generation_prompt" (default true, as vLLM),
 * "continue_final_message" (default false) and "chat_template_kwargs" (extra template
 * variables such as enable_thinking). On success *out is the NUL-terminated prompt (malloc'd,
 * the caller frees) and *out_len its length. Errors: FORGE_E_FORMAT for text that is not JSON,
 * FORGE_E_INVALID for a malformed request (the message names the field), FORGE_E_UNSUPPORTED
 * for non-text content parts or a Jinja2 feature Forge leaves out, FORGE_E_RANGE past a limit,
 * FORGE_E_TEMPLATE when the template fails: "chat template line N: MSG", where MSG is
 * raise_exception's message verbatim or "UndefinedError: 'x' is undefined" and the like. */
forge_status forge_chat_template_render(const forge_chat_template *t, const char *request_json,
                                        size_t len, char **out, size_t *out_len,
                                        forge_error *err);

/* ---------------------------------------------------------------------------------------
 * Sampling and generation (generate issue)
 * ------------------------------------------------------------------------------------- */

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
