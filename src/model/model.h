/* model.h: an open model: its config, its safetensors mapping, and the weights bound to
 * one transformer description for the whole LLaMA family. */
#ifndef FORGE_MODEL_MODEL_H
#define FORGE_MODEL_MODEL_H

#include <pthread.h>
#include <stdbool.h>

#include "kernels/kernels.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model/safetensors.h"

typedef struct layer_weights {
    const float *attn_norm, *ffn_norm; /* [hidden] */
    const float *q_norm, *k_norm;      /* [head_dim] (qwen3, gemma3) or NULL */
    const float *post_attn_norm, *post_ffn_norm; /* [hidden] Gemma's norms of the attention and MLP outputs, or NULL */
    mm_weight wq, wk, wv, wo, wgate, wup, wdown; /* the dense MLP's unused on a MoE layer */
    bool sliding;
    bool rope; /* false: a NoPE layer (SmolLM3) */
    bool moe;  /* the MLP is a mixture of experts: */
    mm_weight router;                 /* [n_experts, hidden] */
    mm_weight *egate, *eup, *edown; /* [n_experts] each, owned by the model */
} layer_weights;

struct forge_model {
    model_config cfg;
    st_set st;
    layer_weights *layers;
    mm_weight embed;   /* [vocab, hidden] */
    mm_weight lm_head; /* [vocab, hidden]; the embedding when tied */
    const float *final_norm;
    double *rope_inv_freq; /* [head_dim / 2] */
    double *rope_local_inv_freq; /* [head_dim / 2] the sliding layers' (Gemma 3), or NULL */
    double *rope_long_inv_freq;  /* [rope_dim / 2] longrope's beyond the original context, or NULL */
    void **owned;          /* converted copies (norms, biases, realigned weights) */
    int n_owned, cap_owned;
    forge_model_info info;
    char *dir;
    gguf_model *gguf; /* the GGUF file the weights come from, or NULL */
    int n_quantized;  /* matrices bound with quantized rows */
    int quantize_to;  /* forge_model_params.quantize */
    int n_made;       /* matrices quantized at load */
    struct tpool *qpool; /* threads for quantizing at load (during the load only) */
    int n_threads;
    pthread_mutex_t repack_lock; /* model_repack_once */
    bool repacked;
};

/* Gives the quantized matrices the CPU's kernel set multiplies from an r16 copy their copy
 * (kernels/quant.h), once per model, when its first CPU context is made (a model that runs
 * only on a GPU never pays for them); thread-safe. */
void model_repack_once(forge_model *m);

/* Binds the weights of st to the config's transformer; errors name the tensor. Used by
 * forge_model_open and by tests that build a set in memory. */
forge_status model_bind(forge_model *m, forge_error *err);

#endif
