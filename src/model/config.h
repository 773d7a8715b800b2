/* config.h: config.json of the supported families (llama, mistral, qwen2, qwen3, smollm3,
 * qwen3_moe, mixtral, gemma2, gemma3_text, phi3) into one description, with HF's defaults per model_type. */
#ifndef FORGE_MODEL_CONFIG_H
#define FORGE_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"
#include "forge.h"

typedef enum {
    ARCH_LLAMA, ARCH_MISTRAL, ARCH_QWEN2, ARCH_QWEN3, ARCH_SMOLLM3, ARCH_QWEN3_MOE, ARCH_MIXTRAL, ARCH_GEMMA2, ARCH_GEMMA3, ARCH_PHI3
} model_arch;
typedef enum { ACT_SILU, ACT_GELU_TANH } mlp_act;
typedef enum { ROPE_DEFAULT, ROPE_LINEAR, ROPE_LLAMA3, ROPE_LONGROPE } rope_kind;

enum { CONFIG_MAX_EOS = 8, CONFIG_MAX_HEAD_DIM = 256, CONFIG_MAX_GQA = 32, CONFIG_MAX_EXPERTS = 1024, CONFIG_MAX_TOPK = 64 };

typedef struct model_config {
    model_arch arch;
    char model_type[16];
    int vocab_size, hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim;
    int max_position_embeddings;
    float rms_norm_eps;
    double rope_theta;
    rope_kind rope_type;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    int rope_dim;              /* dimensions rotated (head_dim * partial_rotary_factor, even) */
    double *rope_short_factor; /* longrope: [rope_dim / 2] each, owned */
    double *rope_long_factor;
    double rope_attn_factor;   /* longrope: cos and sin are scaled by it (1 otherwise) */
    bool fused_qkv_gate_up;    /* phi3: qkv_proj and gate_up_proj hold the projections */
    bool q_bias, k_bias, v_bias, o_bias; /* qwen2: q,k,v; llama/qwen3 attention_bias: all four */
    bool mlp_bias;
    bool qk_norm; /* qwen3 */
    bool tie_word_embeddings;
    forge_dtype torch_dtype;
    int sliding_window;     /* 0: none */
    bool *layer_sliding;    /* [n_layers]: this layer uses the window */
    bool *layer_rope;       /* [n_layers]: RoPE applied (false: a SmolLM3 NoPE layer) */
    bool *layer_moe;        /* [n_layers]: the MLP is a mixture of experts */
    /* mixture of experts (qwen3_moe, mixtral): n_experts 0 when the model has none */
    int n_experts, n_experts_used, moe_intermediate_size;
    bool norm_topk_prob; /* renormalize the top-k router probabilities to sum to 1 */
    /* Gemma 2/3 */
    mlp_act act;           /* the MLP's gate activation: SwiGLU or GeGLU (gelu tanh) */
    bool gemma_norms;      /* RMSNorm scales by (1 + w); norms after attention and MLP too */
    float embed_scale;     /* embeddings times this (sqrt(hidden) in the model dtype), 0: none */
    double attn_scale;     /* attention's score scale: head_dim^-0.5, Gemma query_pre_attn_scalar^-0.5 */
    float attn_softcap;    /* > 0: scores tanh-capped (Gemma 2) */
    float final_softcap;   /* > 0: logits tanh-capped */
    double rope_local_theta; /* > 0: the sliding layers' own RoPE base, unscaled (Gemma 3) */
    int bos_token_id;       /* -1: none */
    int n_eos;
    int32_t eos_ids[CONFIG_MAX_EOS];
} model_config;

/* Parses a config.json document; errors name the field. */
forge_status config_parse(model_config *c, const json_value *root, forge_error *err);
/* Reads and parses `path`; errors are prefixed with the path. */
forge_status config_load(model_config *c, const char *path, forge_error *err);
void config_free(model_config *c);

/* RoPE inverse frequencies (rope_dim / 2 of them) with the config's scaling applied; for
 * longrope the short factors'. */
void config_rope_inv_freq(const model_config *c, double *inv_freq);
/* longrope: the long factors' inverse frequencies (rope_dim / 2). */
void config_rope_long_inv_freq(const model_config *c, double *inv_freq);
/* Gemma 3's local layers: rope_local_base_freq, no scaling. */
void config_rope_local_inv_freq(const model_config *c, double *inv_freq);

#endif
