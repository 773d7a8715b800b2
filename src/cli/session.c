#include "cli/session.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cli_model_options(cli_opt *opts, cli_model_opts *o, bool engine_knobs) {
    int n = 0;
    opts[n++] = (cli_opt){"model", OPT_STR, &o->model, "DIR|ORG/NAME[@REV]: model folder or Hub id (default $FORGE_MODEL, else the built-in stories260K)"};
    opts[n++] = (cli_opt){"threads", OPT_INT, &o->threads, "N: threads (default: the cores this process may use)"};
    opts[n++] = (cli_opt){"max-model-len", OPT_INT, &o->max_model_len, "N: context length (default: the model's, as memory allows)"};
    opts[n++] = (cli_opt){"quantize", OPT_STR, &o->quantize, "q8_0|q4_0|q4_k: quantize a safetensors model's weights at load"};
    if (engine_knobs) {
        opts[n++] = (cli_opt){"max-seqs", OPT_INT, &o->max_seqs, "N: sequences running at once (default 64)"};
        opts[n++] = (cli_opt){"max-batched-tokens", OPT_INT, &o->max_batched_tokens, "N: token budget per step (default 512)"};
        opts[n++] = (cli_opt){"kv-cache-mb", OPT_INT, &o->kv_cache_mb, "MB: KV cache size (default: a quarter of free memory)"};
        opts[n++] = (cli_opt){"kv-dtype", OPT_STR, &o->kv_dtype, "auto|f32|bf16: KV cache type"};
    }
    return n;
}

int cli_default_model(char *out, size_t n) {
    return forge_builtin_model_path(out, n, NULL) == FORGE_OK ? 0 : -1;
}

int cli_quantize(const char *name, const char *cmd, int *out) {
    *out = FORGE_QUANT_NONE;
    if (!name || !strcmp(name, "none")) return 0;
    if (!strcasecmp(name, "q8_0")) *out = FORGE_QUANT_Q8_0;
    else if (!strcasecmp(name, "q4_0")) *out = FORGE_QUANT_Q4_0;
    else if (!strcasecmp(name, "q4_k")) *out = FORGE_QUANT_Q4_K;
    else {
        fprintf(stderr, "forge %s: --quantize must be q8_0, q4_0 or q4_k\n", cmd);
        return -1;
    }
    return 0;
}

int cli_kv_dtype(const char *name, const char *cmd, forge_dtype *out) {
    *out = FORGE_DTYPE_AUTO;
    if (!name || !strcmp(name, "auto")) return 0;
    if (!strcmp(name, "f32")) *out = FORGE_DTYPE_F32;
    else if (!strcmp(name, "bf16")) *out = FORGE_DTYPE_BF16;
    else {
        fprintf(stderr, "forge %s: --kv-dtype must be auto, f32 or bf16\n", cmd);
        return -1;
    }
    return 0;
}

int cli_session_open(cli_session *s, const char *cmd, const cli_model_opts *o) {
    memset(s, 0, sizeof *s);
    forge_error err;
    double t0 = now_s();
    const char *model = o->model && *o->model ? o->model : getenv("FORGE_MODEL");
    if (!model || !*model) {
        if (cli_default_model(s->dir, sizeof s->dir) != 0) {
            fprintf(stderr, "forge %s: no --model given, FORGE_MODEL unset, and the built-in model is missing\n", cmd);
            return -1;
        }
    } else if (forge_model_resolve(model, &(forge_hub_params){.progress = true}, s->dir, sizeof s->dir, &err) != FORGE_OK) {
        fprintf(stderr, "forge %s: %s\n", cmd, err.msg);
        return -1;
    }
    if (o->threads < 0 || o->max_model_len < 0 || o->max_seqs < 0 || o->max_batched_tokens < 0 || o->kv_cache_mb < 0 ||
        o->threads > 1024 || o->max_model_len > INT_MAX || o->max_seqs > 4096 || o->max_batched_tokens > 65536) {
        fprintf(stderr, "forge %s: --threads, --max-model-len, --max-seqs, --max-batched-tokens and --kv-cache-mb must be "
                        "positive and sensible\n", cmd);
        return -1;
    }
    forge_dtype kvd;
    int quant;
    if (cli_kv_dtype(o->kv_dtype, cmd, &kvd) != 0 || cli_quantize(o->quantize, cmd, &quant) != 0) return -1;
    s->tok = forge_tokenizer_open(s->dir, &err);
    if (!s->tok) {
        fprintf(stderr, "forge %s: %s\n", cmd, err.msg);
        return -1;
    }
    s->model = forge_model_open(s->dir, &(forge_model_params){.max_model_len = (int)o->max_model_len, .n_threads = (int)o->threads, .quantize = quant}, &err);
    if (!s->model || forge_generation_config_load(s->dir, &s->gen, &err) != FORGE_OK) {
        fprintf(stderr, "forge %s: %s\n", cmd, err.msg);
        cli_session_close(s);
        return -1;
    }
    forge_engine_params ep = {.max_seqs = (int)o->max_seqs, .max_batched_tokens = (int)o->max_batched_tokens,
                              .kv_cache_mb = (size_t)o->kv_cache_mb, .kv_dtype = kvd, .n_threads = (int)o->threads};
    s->engine = forge_engine_create(s->model, s->tok, &ep, &err);
    if (!s->engine) {
        fprintf(stderr, "forge %s: %s\n", cmd, err.msg);
        cli_session_close(s);
        return -1;
    }
    s->load_seconds = now_s() - t0;
    return 0;
}

void cli_session_close(cli_session *s) {
    forge_engine_free(s->engine);
    forge_model_close(s->model);
    forge_tokenizer_close(s->tok);
    memset(s, 0, sizeof *s);
}

int cli_sampling_options(cli_opt *opts, cli_sampling_opts *o) {
    int n = 0;
    opts[n++] = (cli_opt){"temperature", OPT_DOUBLE, &o->temperature, "T: 0 is greedy (default: generation_config.json, else 1)"};
    opts[n++] = (cli_opt){"top-p", OPT_DOUBLE, &o->top_p, "P: nucleus sampling (default 1: off)"};
    opts[n++] = (cli_opt){"top-k", OPT_INT, &o->top_k, "K: keep the K most likely tokens (default 0: off)"};
    opts[n++] = (cli_opt){"min-p", OPT_DOUBLE, &o->min_p, "P: keep tokens at least P times the top one (default 0: off)"};
    opts[n++] = (cli_opt){"repetition-penalty", OPT_DOUBLE, &o->repetition_penalty, "R: HF repetition penalty (default 1: off)"};
    opts[n++] = (cli_opt){"presence-penalty", OPT_DOUBLE, &o->presence_penalty, "X: OpenAI presence penalty (default 0)"};
    opts[n++] = (cli_opt){"frequency-penalty", OPT_DOUBLE, &o->frequency_penalty, "X: OpenAI frequency penalty (default 0)"};
    opts[n++] = (cli_opt){"seed", OPT_STR, &o->seed, "N: sampling seed (default: drawn and printed)"};
    return n;
}

void cli_sampling_init(cli_sampling_opts *o) {
    o->temperature = o->top_p = o->min_p = o->repetition_penalty = o->presence_penalty = o->frequency_penalty = NAN;
    o->top_k = LONG_MIN;
    o->seed = NULL;
}

int cli_sampling_resolve(const cli_session *s, const cli_sampling_opts *o, const char *cmd, forge_sampling_params *p) {
    return cli_sampling_apply(&s->gen, forge_model_get_info(s->model)->vocab_size, o, cmd, p);
}

int cli_sampling_apply(const forge_generation_config *gen, int vocab, const cli_sampling_opts *o, const char *cmd,
                       forge_sampling_params *p) {
    *p = gen->sampling; /* generation_config.json over the defaults, as vLLM */
    if (!isnan(o->temperature)) p->temperature = (float)o->temperature;
    if (!isnan(o->top_p)) p->top_p = (float)o->top_p;
    if (!isnan(o->min_p)) p->min_p = (float)o->min_p;
    if (!isnan(o->repetition_penalty)) p->repetition_penalty = (float)o->repetition_penalty;
    if (!isnan(o->presence_penalty)) p->presence_penalty = (float)o->presence_penalty;
    if (!isnan(o->frequency_penalty)) p->frequency_penalty = (float)o->frequency_penalty;
    if (o->top_k != LONG_MIN) {
        if (o->top_k < -1 || o->top_k > INT_MAX) {
            fprintf(stderr, "forge %s: --top-k must be -1, 0 (off) or positive\n", cmd);
            return -1;
        }
        p->top_k = (int)o->top_k;
    }
    if (o->seed) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(o->seed, &end, 10);
        if (errno || end == o->seed || *end || o->seed[0] == '-') {
            fprintf(stderr, "forge %s: --seed expects a non-negative integer, got '%s'\n", cmd, o->seed);
            return -1;
        }
        p->has_seed = true;
        p->seed = v;
    }
    forge_error err;
    if (forge_sampling_params_check(p, vocab, &err) != FORGE_OK) {
        fprintf(stderr, "forge %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}

void cli_sampling_print(const forge_sampling_params *p, uint64_t seed) {
    fprintf(stderr, "forge: sampling: temperature %g, top_p %g, top_k %d, min_p %g, repetition_penalty %g, "
                    "presence_penalty %g, frequency_penalty %g, seed %llu%s\n",
            p->temperature, p->top_p, p->top_k, p->min_p, p->repetition_penalty, p->presence_penalty,
            p->frequency_penalty, (unsigned long long)seed, p->has_seed ? "" : " (drawn)");
}
