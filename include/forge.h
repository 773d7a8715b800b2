/* forge.h: the public API of the Forge inference library.
 *
 * This header is the whole contract: what it does not promise, do not rely on. Build with
 * `pkg-config --cflags --libs forge` (docs/embedding.md has a complete program).
 *
 * ERRORS. Every call that can fail takes a `forge_error *err` (which may be NULL) and
 * returns a status, or NULL for constructors; on failure *err holds the status and a
 * message naming what was wrong (file, field, argument). The library never exits, aborts
 * or prints to stdout; diagnostics go through the log (forge_log_set, default stderr).
 *
 * OWNERSHIP. Objects come from forge_x_open / forge_x_create and go back through the
 * matching forge_x_close / forge_x_free, which accept NULL. Whoever creates frees. A
 * `const char *` or struct pointer returned by a getter is owned by the object it came from
 * and lives as long as that object, unless the function says otherwise; memory the caller
 * must free is marked "malloc'd" and goes back with free(). Strings and arrays passed in
 * params are copied (or used only during the call) unless a field says otherwise.
 *
 * NULL. A pointer argument is required unless its comment says "may be NULL". Passing NULL
 * for a required pointer is an error, never a crash: status functions return
 * FORGE_E_INVALID naming the argument, constructors return NULL, getters return 0, NULL
 * or an empty value as documented, and void functions do nothing. (An array pointer with a
 * zero count may be NULL.)
 *
 * THREADS. Objects that are only read after creation (forge_model, forge_tokenizer,
 * forge_chat_template) may be used by any number of threads at once. forge_engine's
 * submit, cancel, wait, release and stats calls may come from any thread at once.
 * forge_context, forge_detok and forge_server (apart from forge_server_stop) belong to
 * one thread at a time. Closing an object while another thread uses it is a caller bug.
 * Which thread runs a callback is written at each callback type.
 *
 * GROWTH AND ABI. The shared library exports only the FORGE_API functions below; its
 * SONAME is libforge.so.<major> (libforge.so.0.<minor> before 1.0, where a minor release may
 * change the ABI). Compare FORGE_VERSION_NUMBER (what you compiled against) with
 * forge_version_number() (what you run with) to catch a mismatch. Parameter structs that
 * the caller allocates end in a reserved tail, so their size never changes within a SONAME:
 * new fields are carved from the tail, and a zero value in any field (including the
 * reserved ones) means "the default". Zero-initialize a params struct (`= {0}`) or start
 * from its forge_x_default_params(), then set the fields you need; never copy a struct
 * field by field from an older header. Structs the library allocates and returns by
 * pointer (info, events) may gain fields at their end.
 */
#ifndef FORGE_H
#define FORGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported functions; the library is built with -fvisibility=hidden. */
#if defined(_WIN32)
#define FORGE_API
#elif defined(__GNUC__) || defined(__clang__)
#define FORGE_API __attribute__((visibility("default")))
#else
#define FORGE_API
#endif

#define FORGE_VERSION_MAJOR 0
#define FORGE_VERSION_MINOR 2
#define FORGE_VERSION_PATCH 0
#define FORGE_VERSION "0.2.0"
/* major * 10000 + minor * 100 + patch */
#define FORGE_VERSION_NUMBER (FORGE_VERSION_MAJOR * 10000 + FORGE_VERSION_MINOR * 100 + FORGE_VERSION_PATCH)

/* The version of the library running ("0.2.0"); static, never NULL. */
FORGE_API const char *forge_version(void);
/* FORGE_VERSION_NUMBER of the library running. Before 1.0, a program built against one
 * minor version needs the same minor version at run time (the SONAME makes sure of it). */
FORGE_API int forge_version_number(void);

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

/* Short name of a status ("ok", "invalid argument", ...); static, never NULL. */
FORGE_API const char *forge_status_str(forge_status s);

/* ---------------------------------------------------------------------------------------
 * Logging
 *
 * The library logs a few lines (model loaded, KV cache size, device chosen, warnings).
 * By default they go to stderr as "forge: message" at level INFO and above; $FORGE_LOG
 * (error, warn, info, debug) sets the initial level.
 * ------------------------------------------------------------------------------------- */

typedef enum forge_log_level {
    FORGE_LOG_ERROR = 0,
    FORGE_LOG_WARN = 1,
    FORGE_LOG_INFO = 2,
    FORGE_LOG_DEBUG = 3,
} forge_log_level;

/* Receives one message (one line, no trailing newline; valid only during the call). Runs
 * on whichever library thread logs (the caller's, the engine's, a download thread),
 * never two at once: the library serializes calls. It must not call into Forge. */
typedef void (*forge_log_cb)(forge_log_level level, const char *msg, void *user);

/* Sends messages at the current level and above to cb (NULL: back to stderr). Process-
 * wide; safe from any thread; user is passed back untouched. */
FORGE_API void forge_log_set(forge_log_cb cb, void *user);
/* Drops messages above level (FORGE_LOG_WARN: errors and warnings only). Out-of-range
 * levels are clamped. */
FORGE_API void forge_log_set_level(forge_log_level level);

/* Progress of a long operation (model loading, a download): done of total units (bytes for
 * downloads, loading phases for forge_model_open; total 0 when not known yet). Runs on the
 * thread doing the work (a download thread for downloads, serialized). Return true to go
 * on, false to abort: the operation then fails with FORGE_E_CANCELLED. It must not call
 * into Forge. */
typedef bool (*forge_progress_cb)(uint64_t done, uint64_t total, void *user);

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
    /* NULL: none. Called on the opening thread with the phases done (config, weights
     * mapped, weights bound, ready) of 4; false aborts the load (FORGE_E_CANCELLED). */
    forge_progress_cb progress;
    void *progress_user;
    /* FORGE_QUANT_NONE, or quantize F32/F16/BF16 (safetensors) weight matrices once at load
     * into memory the model owns: FORGE_QUANT_Q8_0, _Q4_0, _Q4_K (matrices whose width does not
     * fit Q4_K's 256-value blocks get Q8_0). Quantized GGUF weights stay as stored. */
    int32_t quantize;
    int32_t reserved32; /* zero */
    uint64_t reserved[5]; /* zero */
} forge_model_params;

/* forge_model_params.quantize (the ggml type ids) */
enum { FORGE_QUANT_NONE = 0, FORGE_QUANT_Q4_0 = 2, FORGE_QUANT_Q8_0 = 8, FORGE_QUANT_Q4_K = 12 };

/* All defaults (the same as a zeroed struct). */
FORGE_API forge_model_params forge_model_default_params(void);

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
    size_t weight_bytes;     /* bytes of weights read by one forward token (MoE: its top-k
                              * experts' share of expert_bytes) */
    int n_threads;
    int n_experts, n_experts_used; /* MoE: experts per layer and per token; 0 when dense */
    int moe_intermediate_size;     /* MoE: an expert's intermediate size */
    size_t expert_bytes;     /* MoE: every expert's bytes, all layers (0 when dense) */
} forge_model_info;

/* Loads the HF model folder `dir` (config.json + safetensors; a Hub id goes through
 * forge_model_resolve first). Weights stay in the mmap. params may be NULL (defaults). The
 * model is read-only afterwards: share it between threads, contexts and engines. */
FORGE_API forge_model *forge_model_open(const char *dir, const forge_model_params *params, forge_error *err);
/* Releases the model; contexts and engines made from it must be freed first. NULL is allowed. */
FORGE_API void forge_model_close(forge_model *model);
/* Shape and metadata of an open model, owned by it (the struct and its pointers live as
 * long as the model). NULL when model is NULL. */
FORGE_API const forge_model_info *forge_model_get_info(const forge_model *model);

/* Finds the built-in model (the tiny stories260K, for tests and examples) as installed
 * with the library: $FORGE_BUILTIN_MODEL when set, else <prefix>/share/forge/models/stories260K
 * next to the library file (or the program, when linked statically), else the source
 * tree's models/stories260K beside a build folder. Writes the folder into path (path_size
 * bytes). FORGE_E_NOT_FOUND (naming the places looked at) when there is none. */
FORGE_API forge_status forge_builtin_model_path(char *path, size_t path_size, forge_error *err);

#define FORGE_KV_BLOCK_TOKENS 16

typedef struct forge_context forge_context;

typedef struct forge_context_params {
    int n_kv_blocks;      /* KV pool size in blocks of FORGE_KV_BLOCK_TOKENS; 0: from kv_cache_mb */
    size_t kv_cache_mb;   /* used when n_kv_blocks is 0; 0: enough for one full-length sequence */
    int max_batch_tokens; /* most tokens one forward call may carry; 0: 512 */
    int max_logit_rows;   /* most rows needing logits in one call; 0: 64 */
    forge_dtype kv_dtype; /* F32, BF16 or AUTO (F32 for F32 weights, else BF16) */
    int n_threads;        /* 0: the model's */
    /* "auto": CUDA when libforge-cuda.so loads and finds a GPU, else the CPU (one log line
     * says why); "cpu"; "cuda" (an error when no GPU can be used). NULL: $FORGE_DEVICE, else auto. */
    const char *device;
    /* CUDA: share of the GPU's memory for weights, KV cache and scratch (vLLM's
     * --gpu-memory-utilization); 0: $FORGE_GPU_MEMORY_UTILIZATION, else 0.9 */
    float gpu_memory_utilization;
    uint64_t reserved[8]; /* zero */
} forge_context_params;

/* All defaults (the same as a zeroed struct, kv_dtype F32). */
FORGE_API forge_context_params forge_context_default_params(void);

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

/* Creates a context: the KV block pool, scratch sized once, and the worker threads.
 * params may be NULL (defaults). One thread at a time uses a context. */
FORGE_API forge_context *forge_context_create(forge_model *model, const forge_context_params *params,
                                    forge_error *err);
FORGE_API void forge_context_free(forge_context *ctx);
/* Number of KV blocks in the pool. */
FORGE_API int forge_context_n_kv_blocks(const forge_context *ctx);
/* The device the context runs on: "cpu" or "cuda". */
FORGE_API const char *forge_context_device(const forge_context *ctx);
/* Bytes of KV cache the device that params select can hold beside the model's weights and
 * the scratch for params' batch sizes (gpu_memory_utilization of the GPU, within what is
 * free); 0 when that device is the CPU, whose cache the caller sizes from host memory. */
FORGE_API size_t forge_context_kv_budget(forge_model *model, const forge_context_params *params, forge_error *err);
/* Runs the forward pass of one batch; logits of the rows in logit_rows become readable. */
FORGE_API forge_status forge_context_decode(forge_context *ctx, const forge_batch *batch, forge_error *err);
/* Copies the K/V of the first n_tokens (1 to FORGE_KV_BLOCK_TOKENS) positions of KV block
 * src into block dst, bit for bit, in every layer: how a block that shares only a prefix with
 * cached content reuses it (CPU and CUDA; FORGE_E_UNSUPPORTED from a backend that cannot). */
FORGE_API forge_status forge_context_copy_kv(forge_context *ctx, int src, int dst, int n_tokens, forge_error *err);
/* Logits (vocab_size floats) of output row i of the last successful decode; NULL for a row
 * whose token forge_context_decode_sample chose on the device (and when i is out of range). */
FORGE_API const float *forge_context_logits(const forge_context *ctx, int i);
/* What forge_context_decode_sample needs of an output row. */
typedef struct forge_row_sample {
    int32_t kind;      /* FORGE_ROW_LOGITS (0): its logits; FORGE_ROW_GREEDY: its greedy token;
                          FORGE_ROW_DRAW: a token drawn from softmax(logits / temperature) */
    float temperature; /* DRAW: > 0 */
    float min_p;       /* DRAW: tokens under min_p x the largest probability are dropped; 0: none */
    double u;          /* DRAW: uniform in [0, 1), from the caller's seeded RNG: the token is the
                          first whose cumulative probability (in id order) passes u x the total */
} forge_row_sample;
enum { FORGE_ROW_LOGITS = 0, FORGE_ROW_GREEDY = 1, FORGE_ROW_DRAW = 2 };
/* forge_context_decode, where output rows i with rows[i].kind != FORGE_ROW_LOGITS (rows:
 * n_logits entries, or NULL: all logits) need only their token (forge_context_token). Where
 * the logits are computed on a GPU, the token is chosen there and only it comes back for
 * such rows, not vocab_size floats: what a batch of sampling sequences copies each step. */
FORGE_API forge_status forge_context_decode_sample(forge_context *ctx, const forge_batch *batch,
                                                   const forge_row_sample *rows, forge_error *err);
/* The token of output row i of the last successful decode: the drawn token of a DRAW row,
 * else the greedy token (the first index of the largest logit; a NaN is never chosen unless
 * it is at index 0, as a sequential scan with > finds); -1 when i is out of range. Like
 * every call on a context, from one thread at a time (a host draw uses its scratch). */
FORGE_API int32_t forge_context_token(const forge_context *ctx, int i);
/* The final-norm hidden state (hidden_size floats) of output row i of the last successful
 * decode: the vector its logits were computed from. NULL when the device does not keep it
 * (the CUDA backend), or i is out of range. */
FORGE_API const float *forge_context_hidden(const forge_context *ctx, int i);

/* Machine measurements for benchmarks' rooflines, using n_threads threads (0: default).
 * Read bandwidth in bytes/s over a buffer much larger than the caches; peak f32 FMA rate
 * in FLOP/s (2 per fused multiply-add) of the best kernel this CPU has. */
FORGE_API double forge_measure_read_bandwidth(int n_threads);
FORGE_API double forge_measure_fma_peak(int n_threads);
/* Peak rate of BF16 dot products (vdpbf16ps, 2 FLOPs per bf16 product) in FLOP/s, or 0 when
 * the kernel set in use or the CPU has none. */
FORGE_API double forge_measure_bf16_dot_peak(int n_threads);
/* Name of the kernel set in use ("avx512", "avx2", "scalar"; FORGE_CPU forces one). */
FORGE_API const char *forge_kernels_name(void);

/* ---------------------------------------------------------------------------------------
 * Tokenizer (tokenizer issue)
 * ------------------------------------------------------------------------------------- */

/* A tokenizer loaded from HF's tokenizer.json (+ tokenizer_config.json): ids and text equal
 * to HF tokenizers'. Open once, share between threads: encode, decode and the lookups are
 * thread-safe; a forge_detok belongs to one request (one thread at a time). */
typedef struct forge_tokenizer forge_tokenizer;

/* A caller-owned growable id buffer: encode appends to it (reallocating as needed), so a
 * buffer reused across calls stops allocating once warm. Zero-initialize; free with
 * forge_tokens_free. */
typedef struct forge_tokens {
    int32_t *ids;
    size_t n, cap;
} forge_tokens;

typedef struct forge_tokenizer_info {
    int32_t vocab_size;      /* 1 + the largest id (model vocab and added tokens) */
    int32_t bos_id, eos_id;  /* from tokenizer_config's bos_token / eos_token; -1 when none */
    const char *bos_token;   /* NULL when none */
    const char *eos_token;   /* NULL when none */
    bool add_bos;            /* encode with FORGE_ENCODE_ADD_SPECIAL puts bos_id first */
    bool add_eos;            /* ... and eos_id last */
    bool clean_up_tokenization_spaces; /* tokenizer_config's value (transformers' decode) */
    const char *tokenizer_class;       /* tokenizer_config's tokenizer_class, "" when absent */
} forge_tokenizer_info;

enum {
    FORGE_ENCODE_ADD_SPECIAL = 1,   /* HF add_special_tokens: the post-processor's BOS/EOS */
    FORGE_ENCODE_SPLIT_SPECIAL = 2, /* HF split_special_tokens: special-token text is text */
};
enum {
    FORGE_DECODE_SKIP_SPECIAL = 1,   /* HF skip_special_tokens (non-special added tokens stay) */
    FORGE_DECODE_CLEAN_UP_SPACES = 2, /* transformers' clean_up_tokenization (" ." -> ".", ...) */
};

/* Opens dir/tokenizer.json and, when present, dir/tokenizer_config.json. */
FORGE_API forge_tokenizer *forge_tokenizer_open(const char *dir, forge_error *err);
/* The same from documents in memory; config may be NULL. The texts are not kept. */
FORGE_API forge_tokenizer *forge_tokenizer_load(const char *json, size_t len, const char *config,
                                      size_t config_len, forge_error *err);
/* Releases the tokenizer; detokenizers made from it must be freed first. NULL is allowed. */
FORGE_API void forge_tokenizer_close(forge_tokenizer *tok);
/* Vocabulary size, BOS/EOS and config facts; lives as long as the tokenizer. */
FORGE_API const forge_tokenizer_info *forge_tokenizer_get_info(const forge_tokenizer *tok);

/* Encodes UTF-8 text[0..len) (invalid bytes become U+FFFD first), appending the ids to out
 * as HF's encode(text, add_special_tokens=flags&ADD_SPECIAL) does. */
FORGE_API forge_status forge_tokenizer_encode(const forge_tokenizer *tok, const char *text, size_t len,
                                    unsigned flags, forge_tokens *out, forge_error *err);
/* Frees the buffer's ids and zeroes it. */
FORGE_API void forge_tokens_free(forge_tokens *t);
/* Decodes ids as HF's decode(ids, skip_special_tokens) into a malloc'd NUL-terminated UTF-8
 * string owned by the caller (*len gets its length when len is not NULL). Unknown ids are
 * skipped, as HF does. NULL on allocation failure. */
FORGE_API char *forge_tokenizer_decode(const forge_tokenizer *tok, const int32_t *ids, size_t n,
                             unsigned flags, size_t *len, forge_error *err);

/* The token string of an id as HF's convert_ids_to_tokens gives it ("Ġhello", "▁the",
 * "<0x0A>", "<|im_end|>"), NUL-terminated and owned by the tokenizer, or NULL for an unknown
 * id; len may be NULL. */
FORGE_API const char *forge_tokenizer_id_to_token(const forge_tokenizer *tok, int32_t id, size_t *len);
/* The id of a token string (added tokens first, then the model vocab), -1 when absent. */
FORGE_API int32_t forge_tokenizer_token_to_id(const forge_tokenizer *tok, const char *s, size_t len);
/* True for special added tokens (those skip_special_tokens removes). */
FORGE_API bool forge_tokenizer_is_special(const forge_tokenizer *tok, int32_t id);
/* The raw bytes one token stands for in the middle of a text (for logprobs: byte-level
 * chars mapped back, "▁" as a space, "<0xXX>" as its byte), written to buf (at most cap
 * bytes, never NUL-terminated). Returns the full byte count, or -1 for an unknown id. */
FORGE_API int forge_tokenizer_token_bytes(const forge_tokenizer *tok, int32_t id, char *buf, size_t cap);

/* Streaming detokenizer: fed one id at a time, it returns only whole UTF-8 characters and
 * its outputs concatenated equal forge_tokenizer_decode of all ids fed (with the same
 * flags). After priming with a prompt's ids, the output is decode(prompt + generated)
 * minus decode(prompt) (exact whenever decode(prompt) is a prefix of the former). It does
 * not allocate per token once its buffers have grown. */
typedef struct forge_detok forge_detok;

/* Creates a detokenizer; flags: FORGE_DECODE_SKIP_SPECIAL. */
FORGE_API forge_detok *forge_detok_create(const forge_tokenizer *tok, unsigned flags, forge_error *err);
FORGE_API void forge_detok_free(forge_detok *d);
/* Starts a new request with the same tokenizer, keeping the buffers. */
FORGE_API void forge_detok_reset(forge_detok *d, unsigned flags);
/* Feeds prompt ids whose text is not wanted (the state they leave is kept). */
FORGE_API forge_status forge_detok_prime(forge_detok *d, const int32_t *ids, size_t n, forge_error *err);
/* Feeds one id; text and len get the newly completed text (possibly empty), valid until the
 * next call on d. */
FORGE_API forge_status forge_detok_push(forge_detok *d, int32_t id, const char **text, size_t *len,
                              forge_error *err);
/* Ends the request: flushes held bytes (U+FFFD for incomplete sequences). */
FORGE_API forge_status forge_detok_finish(forge_detok *d, const char **text, size_t *len,
                                forge_error *err);

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
    uint64_t reserved[4]; /* zero */
} forge_template_limits;

/* Loads the chat template of the model folder model_dir: template_file if not NULL, else
 * model_dir/chat_template.jinja, else tokenizer_config.json's "chat_template" (a string, or a
 * list of {"name", "template"}: "tool_use" is used when a request has tools, else
 * "default"). The special tokens (bos_token, eos_token, unk_token, pad_token, ... as strings
 * or {"content": ...} objects; null ones stay undefined) come from model_dir's
 * tokenizer_config.json when there is one. FORGE_E_NOT_FOUND when there is no template,
 * FORGE_E_TEMPLATE (with the line) when it does not parse. */
FORGE_API forge_chat_template *forge_chat_template_load(const char *model_dir, const char *template_file,
                                              forge_error *err);
/* A template from source text (or, when source is NULL, the chat_template of config_json);
 * config_json (may be NULL) is tokenizer_config.json text giving the special tokens. */
FORGE_API forge_chat_template *forge_chat_template_create(const char *source, size_t len,
                                                const char *config_json, size_t config_len,
                                                forge_error *err);
FORGE_API void forge_chat_template_free(forge_chat_template *t);
/* Sets the render limits (NULL or zero fields: the defaults). Not while rendering. */
FORGE_API void forge_chat_template_set_limits(forge_chat_template *t, const forge_template_limits *lim);
/* The file the template came from (template file, chat_template.jinja or
 * tokenizer_config.json path), or "string". */
FORGE_API const char *forge_chat_template_origin(const forge_chat_template *t);

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
FORGE_API forge_status forge_chat_template_render(const forge_chat_template *t, const char *request_json,
                                        size_t len, char **out, size_t *out_len,
                                        forge_error *err);

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
    uint64_t reserved[4]; /* zero */
} forge_sampling_params;
/* A zeroed forge_sampling_params is valid: greedy, top_p and repetition_penalty 0 mean off. */

/* temperature 1, top_p 1, top_k off, min_p 0, penalties off, no seed, no bias (HF's
 * defaults). p NULL: nothing. */
FORGE_API void forge_sampling_params_default(forge_sampling_params *p);
/* The same, returned. */
FORGE_API forge_sampling_params forge_sampling_default_params(void);
/* Checks ranges (naming the field); vocab_size bounds logit_bias token ids. */
FORGE_API forge_status forge_sampling_params_check(const forge_sampling_params *p, int vocab_size, forge_error *err);

/* Constrained decoding (structured output): the generated text must be a sentence of a
 * grammar. Tokens that cannot continue it are masked before every sampler setting; EOS is
 * allowed exactly when the text so far is complete, and a choice ends (FINISH_STOP) as soon
 * as nothing but the end can follow. Each of n choices has its own state. Errors in the
 * constraint (bad schema, grammar or regex, or an unsupported JSON schema keyword, named in
 * the message) come back from forge_engine_submit and forge_constraint_check. docs/
 * structured-output.md lists what each kind supports. */
typedef enum forge_constraint_kind {
    FORGE_CONSTRAINT_NONE = 0,
    FORGE_CONSTRAINT_JSON_SCHEMA = 1, /* text: a JSON schema (JSON text) */
    FORGE_CONSTRAINT_JSON_OBJECT = 2, /* any JSON object; text unused */
    FORGE_CONSTRAINT_GBNF = 3,        /* text: a GBNF grammar (llama.cpp's format) with a rule "root" */
    FORGE_CONSTRAINT_REGEX = 4,       /* text: a regular expression the whole output matches */
    FORGE_CONSTRAINT_CHOICE = 5,      /* text: a JSON array of strings; the output is one of them */
} forge_constraint_kind;

typedef struct forge_constraint {
    int32_t kind;       /* forge_constraint_kind; 0: none */
    int32_t reserved32; /* zero */
    const char *text;   /* copied (used only during the call that takes it) */
    size_t len;
} forge_constraint;

/* Compiles c without running it: FORGE_OK, or the error a submit would give (FORGE_E_INVALID
 * for malformed input, FORGE_E_UNSUPPORTED naming a keyword or construct). */
FORGE_API forge_status forge_constraint_check(const forge_constraint *c, forge_error *err);
/* The GBNF grammar a constraint compiles to, malloc'd and NUL-terminated into *out (the
 * caller frees; out_len may be NULL). */
FORGE_API forge_status forge_constraint_to_gbnf(const forge_constraint *c, char **out, size_t *out_len,
                                                forge_error *err);
/* Reads the structured-output fields of an OpenAI-style JSON request body: response_format
 * ({"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": ...}};
 * "text" is none), vLLM's guided_json, guided_regex, guided_choice, guided_grammar (GBNF) and
 * llama.cpp's grammar and json_schema. *out gets kind NONE when there are none; else its
 * text points into *text (malloc'd, the caller frees it; NULL when none). More than one
 * constraint, or a field of the wrong type, is FORGE_E_INVALID naming the fields. The
 * constraint itself is not compiled here (forge_constraint_check does). */
FORGE_API forge_status forge_request_constraint(const char *body, size_t len, forge_constraint *out, char **text,
                                                forge_error *err);
/* JSON schema text to GBNF (as forge_constraint_to_gbnf with FORGE_CONSTRAINT_JSON_SCHEMA). */
FORGE_API forge_status forge_json_schema_to_gbnf(const char *schema, size_t len, char **out, forge_error *err);

/* Defaults from the model folder's generation_config.json (absent fields keep
 * forge_sampling_params_default's values), and the EOS ids it lists. */
typedef struct forge_generation_config {
    forge_sampling_params sampling;
    bool has_temperature, has_top_p, has_top_k, has_min_p, has_repetition_penalty;
    int n_eos_ids;
    int32_t eos_ids[8];
    uint64_t reserved[4];
} forge_generation_config;

/* Reads dir/generation_config.json into *out (caller-owned; nothing to free); a missing
 * file gives the defaults. */
FORGE_API forge_status forge_generation_config_load(const char *dir, forge_generation_config *out, forge_error *err);

/* ---------------------------------------------------------------------------------------
 * Engine: requests, continuous batching (engine issue)
 *
 * One engine runs one model for many requests. Each step runs every active sequence in
 * one batched forward; requests join and leave between steps.
 *
 * THREADS. forge_engine_submit, forge_request_cancel, _wait, _done, _seed, _release,
 * forge_engine_get_stats and forge_engine_context_len may be called from any thread, at
 * once. forge_engine_free and forge_engine_step belong to the thread that owns the engine.
 *
 * CALLBACKS. A request's events reach its forge_event_cb on the engine's own thread, in
 * order, one at a time. With manual_step (no engine thread) they run inside
 * forge_engine_step, on its caller's thread. forge_engine_free cancels what is left: those
 * final FINISH_CANCELLED events also come from the engine thread (from forge_engine_free's
 * caller with manual_step), before forge_engine_free returns. A callback must return
 * quickly (the whole batch waits for it). Inside a callback you may call
 * forge_request_cancel and forge_request_release (on any request, its own included),
 * forge_request_done, forge_request_seed, forge_engine_get_stats,
 * forge_engine_context_len and forge_engine_submit (a follow-up request), and anything on
 * the model, tokenizer or template. You must not call forge_request_wait (it would wait for
 * the thread it blocks), forge_engine_step or forge_engine_free from a callback.
 *
 * REQUEST LIFECYCLE.
 *   1. forge_engine_submit returns a handle (or NULL and an error; then no callback ever
 *      runs). The engine copies what params point to: they may be freed on return.
 *   2. Events arrive: text (whole UTF-8 characters) and tokens, then one last event per
 *      choice with `finish` set (STOP, LENGTH, CANCELLED or ERROR). Every accepted request
 *      gets its last events, whatever happens (cancel, engine shutdown).
 *   3. forge_request_wait blocks until every choice's last event has returned from the
 *      callback; forge_engine_get_stats read after it counts the request.
 *   4. forge_request_release ends the caller's use of the handle: it cancels the request if
 *      it is still running, and once it returns the callback is never called again for it
 *      (it waits for a callback running on another thread to return). So `user` must live
 *      until release returns, and no longer. Call it exactly once per handle, even after
 *      the engine was freed: the handle's memory lives until then.
 *   The handle stays valid until forge_request_release, whatever happened to the engine:
 *   cancel, wait, done and seed on a finished request, or on one whose engine was freed,
 *   are harmless (cancel does nothing, wait returns at once).
 *
 * EVENT DATA. The forge_event and everything it points to (text, top_ids, top_logprobs,
 * prompt_logprobs, error) belong to the engine and are valid only during the callback:
 * copy what you keep.
 * ------------------------------------------------------------------------------------- */

typedef struct forge_engine forge_engine;
typedef struct forge_request forge_request;

typedef struct forge_engine_params {
    int max_seqs;           /* sequences running at once; 0: 64 */
    int max_batched_tokens; /* token budget of one step; 0: 512 */
    int max_waiting;        /* requests queued before submit answers FORGE_E_BUSY; 0: 1024 */
    size_t kv_cache_mb;     /* KV pool size; 0: a quarter of free memory (on a GPU: what gpu_memory_utilization
                               leaves beside the weights), capped at max_seqs full contexts */
    int n_kv_blocks;        /* exact pool size in blocks (tests); overrides kv_cache_mb */
    forge_dtype kv_dtype;   /* F32, BF16 or AUTO */
    int n_threads;          /* 0: the model's */
    bool no_prefix_caching;
    bool manual_step;       /* no engine thread: the caller drives forge_engine_step (tests) */
    const char *device;     /* as forge_context_params.device: "auto", "cpu", "cuda"; NULL: $FORGE_DEVICE */
    float gpu_memory_utilization; /* as forge_context_params; on a GPU the default KV pool fills it */
    uint64_t reserved[8];         /* zero */
} forge_engine_params;

/* All defaults (the same as a zeroed struct). */
FORGE_API forge_engine_params forge_engine_default_params(void);

typedef enum forge_finish_reason {
    FORGE_FINISH_NONE = 0,
    FORGE_FINISH_STOP,      /* EOS, a stop token or a stop string */
    FORGE_FINISH_LENGTH,    /* max_tokens or the context */
    FORGE_FINISH_CANCELLED, /* forge_request_cancel */
    FORGE_FINISH_ERROR,
} forge_finish_reason;

/* A zeroed struct plus a prompt is a valid request: one greedy choice until EOS or the end
 * of the context. Every pointer is copied by forge_engine_submit. */
typedef struct forge_request_params {
    const char *prompt; /* UTF-8 text (tokenized with add_special_tokens), or NULL ... */
    size_t prompt_len;
    const int32_t *prompt_ids; /* ... token ids */
    int n_prompt_ids;
    bool add_special_tokens;   /* for text prompts (HF encode's flag) */
    forge_sampling_params sampling;
    const char *const *stop; /* stop strings, never part of the output */
    int n_stop;
    const int32_t *stop_token_ids;
    int n_stop_token_ids;
    int n;           /* choices; 0 or 1: one */
    int max_tokens;  /* 0 or < 0: until the context ends */
    int min_tokens;  /* EOS and stop tokens are suppressed before this many */
    bool ignore_eos;
    bool logprobs;       /* report each token's raw logprob (and sampling.top_logprobs) */
    bool prompt_logprobs;
    bool keep_special_tokens; /* text includes special tokens (skip_special_tokens=false) */
    /* An embedding request: the prompt is prefilled and nothing is generated; the one last
     * event carries the final-norm hidden state of the last prompt token, L2-normalized
     * (vLLM's default pooling for decoder models). n must be 1; no logprobs and no
     * constraint; sampling, stops and max_tokens are ignored. */
    bool embedding;
    forge_constraint constraint; /* kind 0: none (see forge_constraint) */
    uint64_t reserved[5];     /* zero */
} forge_request_params;

/* A zeroed struct with sampling = forge_sampling_default_params() (temperature 1). */
FORGE_API forge_request_params forge_request_default_params(void);

/* One event of one choice; owned by the engine, valid only during the callback. */
typedef struct forge_event {
    int choice;
    /* text completed by this event (whole UTF-8 characters, stop strings held back) */
    const char *text;
    size_t text_len;
    int32_t token; /* the token sampled, -1 when none (a final flush, a cancellation) */
    float logprob;
    int n_top;
    const int32_t *top_ids;
    const float *top_logprobs;
    /* prompt logprobs: delivered once, before the first token (n_prompt_logprobs entries,
     * the first is NaN as it has no context) */
    int n_prompt_logprobs;
    const float *prompt_logprobs;
    forge_finish_reason finish; /* set on the choice's last event */
    int stop_index;             /* with FINISH_STOP: the stop string index, or -1 */
    /* on the last event: */
    int prompt_tokens, completion_tokens, cached_tokens;
    double ttft_ms, total_ms;
    const char *error; /* with FINISH_ERROR or FINISH_CANCELLED: why (else NULL) */
    /* an embedding request's last event (FINISH_STOP): n_embedding (hidden_size) floats */
    const float *embedding;
    int n_embedding;
} forge_event;

/* Receives a request's events; see CALLBACKS above for the thread and what it may call.
 * user is the pointer given to forge_engine_submit. */
typedef void (*forge_event_cb)(const forge_event *ev, void *user);

typedef struct forge_engine_stats {
    int running, waiting;
    int kv_blocks_total, kv_blocks_used, kv_blocks_cached;
    long long prefix_queries, prefix_hits; /* prompt tokens looked up / found in the cache */
    long long preemptions, steps, prompt_tokens, generated_tokens, requests_done;
    double step_seconds, forward_seconds; /* totals: overhead = step - forward */
    double tokens_per_second;             /* tokens generated per second over the last steps */
    long long fair_preemptions;           /* of the preemptions, those that gave a waiting
                                             request with nothing running a slot */
    uint64_t reserved[7];
} forge_engine_stats;

/* Creates an engine for model and tok (tok may be NULL for id-only use); both must outlive
 * it. p may be NULL (defaults). Starts the engine thread unless p->manual_step. Fails if
 * the KV pool cannot hold one full-length sequence. */
FORGE_API forge_engine *forge_engine_create(forge_model *model, const forge_tokenizer *tok,
                                            const forge_engine_params *p, forge_error *err);
/* Cancels every request left (their last events arrive before it returns, see CALLBACKS),
 * stops the engine thread and frees the engine. Request handles stay valid until released.
 * NULL is allowed. Not from a callback. */
FORGE_API void forge_engine_free(forge_engine *e);
/* Queues a request. cb may be NULL (no events: use forge_request_wait); user is passed to
 * it untouched (may be NULL). Returns a handle the caller must release with
 * forge_request_release, or NULL with FORGE_E_RANGE (prompt longer than the context),
 * FORGE_E_BUSY (queue full), FORGE_E_CANCELLED (the engine is being freed) or
 * FORGE_E_INVALID (a NULL engine or params, bad parameters; the field is named). */
FORGE_API forge_request *forge_engine_submit(forge_engine *e, const forge_request_params *p, forge_event_cb cb,
                                             void *user, forge_error *err);
/* Asks the engine to stop the request: its choices end with FINISH_CANCELLED (unless they
 * finished first) and its KV blocks are freed at the next step. Returns at once. Harmless
 * on a finished request or one whose engine was freed; NULL: nothing. */
FORGE_API void forge_request_cancel(forge_request *r);
/* Blocks until every choice of the request has delivered its last event. NULL: returns. */
FORGE_API void forge_request_wait(forge_request *r);
/* True once every choice has delivered its last event (non-blocking wait); NULL: true. */
FORGE_API bool forge_request_done(forge_request *r);
/* The seed of choice 0 (drawn when none was given); 0 for NULL. */
FORGE_API uint64_t forge_request_seed(const forge_request *r);
/* Cancels the request if it still runs, detaches its callback (none runs once this
 * returns) and drops the handle, which must not be used again. NULL: nothing. */
FORGE_API void forge_request_release(forge_request *r);
/* Copies the engine's counters into *out (caller-owned). They are published at the end of
 * each step and when a request finishes. e NULL: *out is zeroed; out NULL: nothing. */
FORGE_API void forge_engine_get_stats(forge_engine *e, forge_engine_stats *out);
/* The effective context length (prompt and output); 0 for NULL. */
FORGE_API int forge_engine_context_len(const forge_engine *e);
/* With manual_step: runs one scheduler step on the calling thread (callbacks included);
 * returns the number of tokens it computed (0 when idle), or a negative forge_status
 * (FORGE_E_INVALID for NULL). */
FORGE_API int forge_engine_step(forge_engine *e);

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
    /* NULL: none. Bytes of the files to fetch, called from the download threads (one at a
     * time); false aborts the download (FORGE_E_CANCELLED; what arrived is kept to resume). */
    forge_progress_cb progress_cb;
    void *progress_user;
    uint64_t reserved[6]; /* zero */
} forge_hub_params;

/* All defaults (the same as a zeroed struct). */
FORGE_API forge_hub_params forge_hub_default_params(void);

/* Makes the Hub model `id` ("org/name[@revision]") available in the cache, downloading what is
 * missing, and writes its snapshot folder (<cache>/models--org--name/snapshots/<commit>) into
 * path (path_size bytes). params may be NULL (all defaults, no progress). */
FORGE_API forge_status forge_hub_download(const char *id, const forge_hub_params *params, char *path,
                                size_t path_size, forge_error *err);
/* Resolves a --model value: an existing folder is used as is (copied into path); otherwise it
 * must be a Hub id, handled as forge_hub_download. model NULL or "" means $FORGE_MODEL. */
FORGE_API forge_status forge_model_resolve(const char *model, const forge_hub_params *params, char *path,
                                 size_t path_size, forge_error *err);
/* Writes the cache root that params (may be NULL) and the environment select. */
FORGE_API forge_status forge_hub_cache_dir(const forge_hub_params *params, char *path, size_t path_size,
                                 forge_error *err);

/* ---------------------------------------------------------------------------------------
 * Server: the OpenAI-compatible HTTP API (server issue)
 *
 * One event loop (libevent's evhttp) serves HTTP on the thread that calls
 * forge_server_run; the engine steps on its own thread; the model loads on a third while
 * /health answers 503. Routes: GET /health, GET /metrics (Prometheus), GET /v1/models,
 * POST /v1/completions, POST /v1/chat/completions, POST /tokenize, POST /detokenize, and
 * GET / (a chat page compiled into the library, with its files under /webui/; no_webui
 * turns it off).
 * ------------------------------------------------------------------------------------- */

typedef struct forge_server forge_server;

typedef struct forge_server_params {
    const char *model;             /* model folder or Hub id; NULL or "": $FORGE_MODEL */
    const char *host;              /* address to listen on; NULL: "127.0.0.1" */
    int port;                      /* 0: any free port (forge_server_port tells which);
                                      -1: no socket at all, only forge_server_post */
    const char *api_key;           /* NULL or "": no key; else "Authorization: Bearer KEY" */
    const char *served_model_name; /* the name clients use; NULL: the model argument */
    const char *chat_template;     /* template file overriding the model's; NULL: the model's */
    double request_timeout;        /* seconds a client has to send a whole request; 0: 60 */
    double shutdown_timeout;       /* seconds in-flight requests may still run after a stop;
                                      0: 30; negative: cancel them at once */
    double sse_keepalive;          /* seconds of silence before an SSE comment; 0: 10 */
    size_t max_body_bytes;         /* larger request bodies get 413; 0: 8 MiB */
    bool handle_signals;           /* forge_server_run stops on SIGTERM/SIGINT (a second one
                                      cancels in-flight requests at once) */
    forge_model_params model_params;
    forge_engine_params engine;    /* manual_step is ignored: the engine has its own thread;
                                      device NULL: $FORGE_DEVICE, else auto */
    forge_hub_params hub;          /* how a Hub id is fetched */
    int max_connections;           /* open connections at most; past it the oldest idle one is
                                      closed, else the new one gets 503. 0: from the file
                                      descriptor limit (forge_server_default_max_connections) */
    int max_choices;               /* n x prompts in one request at most (400 beyond); 0: 128 */
    size_t max_response_bytes;     /* a non-streaming answer that could grow past this is
                                      refused up front (400); 0: 256 MiB */
    bool no_webui;                 /* GET / answers 404 instead of the chat page */
    uint8_t reserved_bytes[7];     /* zero */
    /* How chat answers are split into message fields (docs/tools.md). NULL, "" or "auto":
     * from the chat template; else a tool-call format "hermes", "llama3_json", "mistral" or
     * "none" (no tool calls parsed), and a reasoning parser "qwen3" (alias "deepseek_r1")
     * or "none". An unknown name fails forge_server_create. */
    const char *tool_call_parser;
    const char *reasoning_parser;
    uint64_t reserved[3];          /* zero; new fields are carved from here */
} forge_server_params;

/* All defaults (the same as a zeroed struct). */
FORGE_API forge_server_params forge_server_default_params(void);
/* The default connection cap: the file descriptor limit (RLIMIT_NOFILE) less headroom. */
FORGE_API int forge_server_default_max_connections(void);

/* Listens on host:port (errors: FORGE_E_IO when the address cannot be bound) and starts
 * loading the model in the background. params may be NULL (defaults). Strings in params
 * are copied. Only forge_server_post's reply callback runs caller code on the server's
 * threads. */
FORGE_API forge_server *forge_server_create(const forge_server_params *params, forge_error *err);
/* The port listened on; -1 for NULL. */
FORGE_API int forge_server_port(const forge_server *s);
/* Serves until forge_server_stop (or a signal with handle_signals): then stops accepting,
 * lets in-flight requests finish within shutdown_timeout, cancels the rest, and returns
 * FORGE_OK. Fails when the model cannot be loaded (the error says why). Call once. While it
 * runs, SIGPIPE is blocked in the calling thread (writes to closed sockets fail instead). */
FORGE_API forge_status forge_server_run(forge_server *s, forge_error *err);
/* Asks a running server to stop; async-signal-safe and callable from any thread. A second
 * call cancels in-flight requests at once. */
FORGE_API void forge_server_stop(forge_server *s);
/* Frees a server that is not running (after forge_server_run returned, or never run).
 * In-process requests still queued are answered 503 (on the calling thread) first.
 * NULL is allowed. */
FORGE_API void forge_server_free(forge_server *s);

/* In-process requests: the HTTP API's generation routes without a socket or HTTP framing
 * (`forge batch` sends its OpenAI Batch lines through here, so their answers are the
 * server's, byte for byte). path is "/v1/completions" or "/v1/chat/completions"; any other
 * path is answered as HTTP answers an unknown URL (404). body is the JSON request body
 * (copied). No API key is asked for; "stream": true is answered 400 (there is no stream to
 * write to). A request posted while the model loads waits for it; one posted while the
 * server stops is answered 503. Thread-safe; the server must be running (forge_server_run
 * on some thread) for answers to come. On FORGE_OK, cb is called exactly once with the HTTP
 * status and the JSON body (an OpenAI answer or error): on the loop thread, or on the thread
 * of forge_server_free for requests never started. body is valid only during the call;
 * cb must not block and may call forge_server_post again. */
typedef void (*forge_server_reply_cb)(int status, const char *body, size_t len, void *user);
FORGE_API forge_status forge_server_post(forge_server *s, const char *path, const char *body, size_t len,
                                         forge_server_reply_cb cb, void *user, forge_error *err);
/* Blocks until the model has loaded (FORGE_OK) or failed to (its error). Any thread. */
FORGE_API forge_status forge_server_wait_ready(forge_server *s, forge_error *err);
/* The server's engine once the model has loaded (NULL before, or when loading failed);
 * owned by the server and valid until forge_server_free. Requests submitted to it directly
 * share the batch with the HTTP clients'. */
FORGE_API forge_engine *forge_server_engine(forge_server *s);

#ifdef __cplusplus
}
#endif

#endif /* FORGE_H */
