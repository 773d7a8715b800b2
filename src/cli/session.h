/* session.h: what the model-running subcommands share: finding the model (a folder, a Hub
 * id, or the small default model shipped with Forge), opening model, tokenizer and engine,
 * and the sampling defaults of generation_config.json. */
#ifndef FORGE_CLI_SESSION_H
#define FORGE_CLI_SESSION_H

#include "cli/args.h"
#include "forge.h"

typedef struct cli_model_opts {
    const char *model;
    long threads, max_model_len, max_seqs, max_batched_tokens, kv_cache_mb;
    const char *kv_dtype;
    const char *quantize;
} cli_model_opts;

typedef struct cli_session {
    char dir[4096];
    forge_model *model;
    forge_tokenizer *tok;
    forge_engine *engine;
    forge_generation_config gen;
    double load_seconds;
} cli_session;

/* The option table entries for cli_model_opts (model, threads, max-model-len, and with
 * engine_knobs the engine's); returns how many were written to opts. */
int cli_model_options(cli_opt *opts, cli_model_opts *o, bool engine_knobs);
/* The stories260K model shipped with Forge, found relative to the executable; -1 if absent. */
int cli_default_model(char *out, size_t n);
/* Parses a --kv-dtype value (NULL: auto); prints an error and returns -1 when unknown. */
int cli_kv_dtype(const char *name, const char *cmd, forge_dtype *out);
/* Parses a --quantize value (NULL/none: 0, q8_0, q4_0, q4_k); prints an error, returns -1. */
int cli_quantize(const char *name, const char *cmd, int *out);
/* Opens everything; prints "forge CMD: message" and returns -1 on failure. */
int cli_session_open(cli_session *s, const char *cmd, const cli_model_opts *o);
void cli_session_close(cli_session *s);

/* Sampling flags as given on the command line (NAN / LONG_MIN when absent). */
typedef struct cli_sampling_opts {
    double temperature, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty;
    long top_k;
    const char *seed;
} cli_sampling_opts;

int cli_sampling_options(cli_opt *opts, cli_sampling_opts *o);
void cli_sampling_init(cli_sampling_opts *o);
/* generation_config.json's defaults, then the flags given; returns -1 after printing an
 * error for a malformed --seed. */
int cli_sampling_resolve(const cli_session *s, const cli_sampling_opts *o, const char *cmd, forge_sampling_params *out);
/* The same from a generation config and a vocabulary size (bounds logit_bias ids). */
int cli_sampling_apply(const forge_generation_config *gen, int vocab, const cli_sampling_opts *o, const char *cmd,
                       forge_sampling_params *out);
/* One stderr line with the effective sampling values. */
void cli_sampling_print(const forge_sampling_params *p, uint64_t seed);

#endif
