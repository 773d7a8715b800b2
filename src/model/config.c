#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* f32 rounded to bf16 / f16 and back (round to nearest even), for Gemma's embedding scale */
static float bf16_round(float f) {
    union { float f; uint32_t u; } v = {.f = f};
    v.u = (v.u + 0x7fff + ((v.u >> 16) & 1)) & 0xffff0000u;
    return v.f;
}
static float f16_round(float f) {
    /* |f| in the normal f16 range here (sqrt of a hidden size): keep 11 significant bits */
    int e;
    double m = frexp((double)f, &e);
    return (float)ldexp(nearbyint(ldexp(m, 11)), e - 11);
}

/* Reads an optional integer field; a present field of another type is an error. */
static forge_status get_int(const json_value *o, const char *key, int *out, int dflt, forge_error *err) {
    const json_value *v = json_get(o, key);
    if (!v || v->type == JSON_NULL) {
        *out = dflt;
        return FORGE_OK;
    }
    if (v->type == JSON_DOUBLE && v->u.d == floor(v->u.d) && fabs(v->u.d) < 2e9) {
        *out = (int)v->u.d;
        return FORGE_OK;
    }
    if (v->type != JSON_INT || v->u.i < -2000000000LL || v->u.i > 2000000000LL)
        return err_set(err, FORGE_E_FORMAT, "field \"%s\" must be an integer, got %s", key,
                       json_type_name(v->type));
    *out = (int)v->u.i;
    return FORGE_OK;
}

static forge_status get_num(const json_value *o, const char *key, double *out, double dflt, forge_error *err) {
    const json_value *v = json_get(o, key);
    if (!v || v->type == JSON_NULL) {
        *out = dflt;
        return FORGE_OK;
    }
    if (!json_is_number(v))
        return err_set(err, FORGE_E_FORMAT, "field \"%s\" must be a number, got %s", key, json_type_name(v->type));
    *out = json_number(v);
    return FORGE_OK;
}

static forge_status get_bool(const json_value *o, const char *key, bool *out, bool dflt, forge_error *err) {
    const json_value *v = json_get(o, key);
    if (!v || v->type == JSON_NULL) {
        *out = dflt;
        return FORGE_OK;
    }
    if (v->type != JSON_BOOL)
        return err_set(err, FORGE_E_FORMAT, "field \"%s\" must be true or false, got %s", key,
                       json_type_name(v->type));
    *out = v->u.b;
    return FORGE_OK;
}

/* A list of rope_dim / 2 positive numbers (longrope's short_factor / long_factor), owned. */
static forge_status parse_factors(const model_config *c, const json_value *rs, const char *key, double **out,
                                  forge_error *err) {
    const json_value *v = json_get(rs, key);
    int half = c->rope_dim / 2;
    if (!json_is(v, JSON_ARRAY) || v->n != (size_t)half)
        return err_set(err, FORGE_E_FORMAT, "rope_scaling.%s must be a list of %d numbers (rotary dimensions / 2)", key, half);
    *out = calloc((size_t)half, sizeof **out);
    if (!*out) return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (int i = 0; i < half; i++) {
        const json_value *e = json_at(v, (size_t)i);
        if (!json_is_number(e) || !(json_number(e) > 0) || json_number(e) > 1e30)
            return err_set(err, FORGE_E_FORMAT, "rope_scaling.%s[%d] must be a positive number", key, i);
        (*out)[i] = json_number(e);
    }
    return FORGE_OK;
}

/* longrope (Phi-3 / Phi-4-mini, transformers' _compute_longrope_parameters): per-frequency
 * divisors, short below the original context and long beyond it; factor is
 * max_position_embeddings / original_max_position_embeddings (the top-level field, else
 * rope_scaling's), and cos/sin are scaled by attention_factor, by default
 * sqrt(1 + ln(factor) / ln(original)) when factor > 1. */
static forge_status parse_longrope(model_config *c, const json_value *root, const json_value *rs, forge_error *err) {
    forge_status st;
    c->rope_type = ROPE_LONGROPE;
    int orig;
    const json_value *top = json_get(root, "original_max_position_embeddings");
    if (top && top->type != JSON_NULL) st = get_int(root, "original_max_position_embeddings", &orig, 0, err);
    else st = get_int(rs, "original_max_position_embeddings", &orig, c->max_position_embeddings, err);
    if (st) return err_prefix(err, "rope_scaling (longrope)");
    if (orig <= 0) return err_set(err, FORGE_E_FORMAT, "original_max_position_embeddings must be positive");
    c->rope_original_max_pos = orig;
    if ((st = parse_factors(c, rs, "short_factor", &c->rope_short_factor, err)) ||
        (st = parse_factors(c, rs, "long_factor", &c->rope_long_factor, err)))
        return st;
    double factor = (double)c->max_position_embeddings / orig, af;
    if ((st = get_num(rs, "attention_factor", &af, 0, err))) return err_prefix(err, "rope_scaling");
    if (af > 0) c->rope_attn_factor = af;
    else c->rope_attn_factor = factor <= 1.0 ? 1.0 : sqrt(1 + log(factor) / log((double)orig));
    return FORGE_OK;
}

static forge_status parse_rope_scaling(model_config *c, const json_value *root, const json_value *rs, forge_error *err) {
    c->rope_type = ROPE_DEFAULT;
    if (!rs || rs->type == JSON_NULL) return FORGE_OK;
    if (rs->type != JSON_OBJECT)
        return err_set(err, FORGE_E_FORMAT, "field \"rope_scaling\" must be an object or null");
    const char *type = json_string(json_get(rs, "rope_type"));
    if (!type) type = json_string(json_get(rs, "type"));
    if (!type)
        return err_set(err, FORGE_E_FORMAT, "rope_scaling has neither \"rope_type\" nor \"type\"");
    if (!strcmp(type, "default")) return FORGE_OK;
    /* Phi3Config renames the legacy "su" to longrope */
    if (!strcmp(type, "longrope") || (c->arch == ARCH_PHI3 && !strcmp(type, "su"))) return parse_longrope(c, root, rs, err);
    forge_status st;
    if ((st = get_num(rs, "factor", &c->rope_factor, 1.0, err))) return err_prefix(err, "rope_scaling");
    if (!(c->rope_factor > 0)) return err_set(err, FORGE_E_FORMAT, "rope_scaling.factor must be positive");
    if (!strcmp(type, "linear")) {
        c->rope_type = ROPE_LINEAR;
        return FORGE_OK;
    }
    if (!strcmp(type, "llama3")) {
        c->rope_type = ROPE_LLAMA3;
        if ((st = get_num(rs, "low_freq_factor", &c->rope_low_freq_factor, 1.0, err)) ||
            (st = get_num(rs, "high_freq_factor", &c->rope_high_freq_factor, 4.0, err)) ||
            (st = get_int(rs, "original_max_position_embeddings", &c->rope_original_max_pos, 8192, err)))
            return err_prefix(err, "rope_scaling");
        if (!(c->rope_high_freq_factor > c->rope_low_freq_factor) || c->rope_original_max_pos <= 0)
            return err_set(err, FORGE_E_FORMAT,
                           "rope_scaling (llama3): need high_freq_factor > low_freq_factor and a positive "
                           "original_max_position_embeddings");
        return FORGE_OK;
    }
    return err_set(err, FORGE_E_UNSUPPORTED,
                   "rope_scaling type \"%s\" is not supported (supported: default, linear, llama3, longrope)", type);
}

static forge_status parse_eos(model_config *c, const json_value *v, forge_error *err) {
    c->n_eos = 0;
    if (!v || v->type == JSON_NULL) return FORGE_OK;
    if (v->type == JSON_INT) {
        c->eos_ids[c->n_eos++] = (int)v->u.i;
        return FORGE_OK;
    }
    if (v->type != JSON_ARRAY) return err_set(err, FORGE_E_FORMAT, "field \"eos_token_id\" must be an integer or a list");
    for (size_t i = 0; i < v->n && c->n_eos < CONFIG_MAX_EOS; i++) {
        const json_value *e = json_at(v, i);
        if (e->type != JSON_INT) return err_set(err, FORGE_E_FORMAT, "eos_token_id[%zu] must be an integer", i);
        c->eos_ids[c->n_eos++] = (int)e->u.i;
    }
    return FORGE_OK;
}

/* layer_types: "sliding_attention" or "full_attention" per layer, into layer_sliding. */
static forge_status parse_layer_types(model_config *c, const json_value *lt, forge_error *err) {
    if (lt->n != (size_t)c->n_layers)
        return err_set(err, FORGE_E_FORMAT, "layer_types has %zu entries for %d layers", lt->n, c->n_layers);
    for (int i = 0; i < c->n_layers; i++) {
        const char *t = json_string(json_at(lt, (size_t)i));
        if (!t) return err_set(err, FORGE_E_FORMAT, "layer_types[%d] is not a string", i);
        c->layer_sliding[i] = false;
        if (!strcmp(t, "sliding_attention")) c->layer_sliding[i] = true;
        else if (strcmp(t, "full_attention"))
            return err_set(err, FORGE_E_UNSUPPORTED, "layer_types[%d] \"%.32s\" is not supported", i, t);
    }
    return FORGE_OK;
}

/* SmolLM3: no_rope_layers[i] is 1 where layer i applies RoPE, 0 on a NoPE layer; when the
 * list is absent SmolLM3Config derives it: layer i is NoPE iff (i + 1) % no_rope_layer_interval == 0. */
static forge_status parse_no_rope(model_config *c, const json_value *root, forge_error *err) {
    const json_value *nr = json_get(root, "no_rope_layers");
    if (nr && nr->type != JSON_NULL) {
        if (nr->type != JSON_ARRAY) return err_set(err, FORGE_E_FORMAT, "field \"no_rope_layers\" must be a list");
        if (nr->n < (size_t)c->n_layers)
            return err_set(err, FORGE_E_FORMAT, "no_rope_layers has %zu entries for %d layers", nr->n, c->n_layers);
        for (int i = 0; i < c->n_layers; i++) {
            const json_value *e = json_at(nr, (size_t)i);
            if (e->type != JSON_INT && e->type != JSON_BOOL)
                return err_set(err, FORGE_E_FORMAT, "no_rope_layers[%d] must be 0 or 1", i);
            c->layer_rope[i] = e->type == JSON_BOOL ? e->u.b : e->u.i != 0;
        }
        return FORGE_OK;
    }
    int interval;
    forge_status st = get_int(root, "no_rope_layer_interval", &interval, 4, err);
    if (st) return st;
    if (interval <= 0) return err_set(err, FORGE_E_FORMAT, "field \"no_rope_layer_interval\" must be positive");
    for (int i = 0; i < c->n_layers; i++) c->layer_rope[i] = (i + 1) % interval != 0;
    return FORGE_OK;
}

/* Mixture of experts: Qwen3-MoE (num_experts, num_experts_per_tok, moe_intermediate_size,
 * norm_topk_prob, decoder_sparse_step, mlp_only_layers) and Mixtral (num_local_experts,
 * num_experts_per_tok; every layer sparse, top-k always renormalized). */
static forge_status parse_moe(model_config *c, const json_value *root, forge_error *err) {
    forge_status st;
    bool qwen = c->arch == ARCH_QWEN3_MOE;
    int step = 1;
    if (qwen) {
        if ((st = get_int(root, "num_experts", &c->n_experts, 128, err)) ||
            (st = get_int(root, "num_experts_per_tok", &c->n_experts_used, 8, err)) ||
            (st = get_int(root, "moe_intermediate_size", &c->moe_intermediate_size, 768, err)) ||
            (st = get_bool(root, "norm_topk_prob", &c->norm_topk_prob, false, err)) ||
            (st = get_int(root, "decoder_sparse_step", &step, 1, err)))
            return st;
    } else {
        if ((st = get_int(root, "num_local_experts", &c->n_experts, 8, err)) ||
            (st = get_int(root, "num_experts_per_tok", &c->n_experts_used, 2, err)))
            return st;
        c->moe_intermediate_size = c->intermediate_size;
        c->norm_topk_prob = true;
    }
    if (c->n_experts < 0 || c->n_experts > CONFIG_MAX_EXPERTS)
        return err_set(err, FORGE_E_UNSUPPORTED, "%d experts: at most %d are supported", c->n_experts, CONFIG_MAX_EXPERTS);
    if (c->n_experts == 0) return FORGE_OK; /* HF: a dense model then */
    if (c->n_experts_used <= 0 || c->n_experts_used > c->n_experts || c->n_experts_used > CONFIG_MAX_TOPK)
        return err_set(err, FORGE_E_UNSUPPORTED, "num_experts_per_tok %d is not supported (1 to min(experts %d, %d))",
                       c->n_experts_used, c->n_experts, CONFIG_MAX_TOPK);
    if (c->moe_intermediate_size <= 0 || c->moe_intermediate_size > 262144)
        return err_set(err, FORGE_E_FORMAT, "field \"moe_intermediate_size\" must be positive and plausible");
    if (step <= 0) return err_set(err, FORGE_E_FORMAT, "field \"decoder_sparse_step\" must be positive");
    for (int i = 0; i < c->n_layers; i++) c->layer_moe[i] = (i + 1) % step == 0;
    const json_value *only = json_get(root, "mlp_only_layers");
    if (qwen && only && only->type != JSON_NULL) {
        if (only->type != JSON_ARRAY) return err_set(err, FORGE_E_FORMAT, "field \"mlp_only_layers\" must be a list");
        for (size_t i = 0; i < only->n; i++) {
            const json_value *e = json_at(only, i);
            if (e->type != JSON_INT) return err_set(err, FORGE_E_FORMAT, "mlp_only_layers[%zu] must be an integer", i);
            if (e->u.i >= 0 && e->u.i < c->n_layers) c->layer_moe[e->u.i] = false;
        }
    }
    return FORGE_OK;
}

/* Gemma 2/3: (1 + w) norms and post-norms, embedding scale, attention scale and soft-capping,
 * Gemma 3's local RoPE base (its configs' defaults: query_pre_attn_scalar 256; soft-capping
 * 50 and 30 for Gemma 2, none for Gemma 3; rope_local_base_freq 10000). */
static forge_status parse_gemma(model_config *c, const json_value *root, forge_error *err) {
    forge_status st;
    bool g2 = c->arch == ARCH_GEMMA2;
    double qpas, acap, fcap;
    if ((st = get_num(root, "query_pre_attn_scalar", &qpas, 256, err)) ||
        (st = get_num(root, "attn_logit_softcapping", &acap, g2 ? 50.0 : 0.0, err)) ||
        (st = get_num(root, "final_logit_softcapping", &fcap, g2 ? 30.0 : 0.0, err)))
        return st;
    /* an explicit null means "none", as it does in HF */
    const json_value *v = json_get(root, "attn_logit_softcapping");
    if (v && v->type == JSON_NULL) acap = 0;
    v = json_get(root, "final_logit_softcapping");
    if (v && v->type == JSON_NULL) fcap = 0;
    if (!(qpas > 0) || acap < 0 || fcap < 0)
        return err_set(err, FORGE_E_FORMAT, "query_pre_attn_scalar must be positive and soft-capping values not negative");
    c->attn_scale = 1.0 / sqrt(qpas);
    c->attn_softcap = (float)acap;
    c->final_softcap = (float)fcap;
    c->gemma_norms = true;
    /* HF: hidden * tensor(hidden_size ** 0.5, dtype=the model's dtype) */
    float es = (float)sqrt((double)c->hidden_size);
    if (c->torch_dtype == FORGE_DTYPE_BF16) es = bf16_round(es);
    else if (c->torch_dtype == FORGE_DTYPE_F16) es = f16_round(es);
    c->embed_scale = es;
    if (c->arch == ARCH_GEMMA3) {
        if ((st = get_num(root, "rope_local_base_freq", &c->rope_local_theta, 10000.0, err))) return st;
        if (!(c->rope_local_theta > 0)) return err_set(err, FORGE_E_FORMAT, "field \"rope_local_base_freq\" must be positive");
    }
    return FORGE_OK;
}

forge_status config_parse(model_config *c, const json_value *root, forge_error *err) {
    memset(c, 0, sizeof *c);
    if (!json_is(root, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "config is not a JSON object");
    const char *mt = json_string(json_get(root, "model_type"));
    if (!mt) return err_set(err, FORGE_E_FORMAT, "field \"model_type\" is missing or not a string");
    if (!strcmp(mt, "llama")) c->arch = ARCH_LLAMA;
    else if (!strcmp(mt, "mistral")) c->arch = ARCH_MISTRAL;
    else if (!strcmp(mt, "qwen2")) c->arch = ARCH_QWEN2;
    else if (!strcmp(mt, "qwen3")) c->arch = ARCH_QWEN3;
    else if (!strcmp(mt, "smollm3")) c->arch = ARCH_SMOLLM3;
    else if (!strcmp(mt, "qwen3_moe")) c->arch = ARCH_QWEN3_MOE;
    else if (!strcmp(mt, "mixtral")) c->arch = ARCH_MIXTRAL;
    else if (!strcmp(mt, "gemma2")) c->arch = ARCH_GEMMA2;
    else if (!strcmp(mt, "gemma3_text")) c->arch = ARCH_GEMMA3;
    else if (!strcmp(mt, "phi3")) c->arch = ARCH_PHI3;
    else
        return err_set(err, FORGE_E_UNSUPPORTED,
                       "model_type \"%.64s\" is not supported (supported: llama, mistral, qwen2, qwen3, smollm3, "
                       "qwen3_moe, mixtral, gemma2, gemma3_text, phi3)", mt);
    bool gemma = c->arch == ARCH_GEMMA2 || c->arch == ARCH_GEMMA3;
    snprintf(c->model_type, sizeof c->model_type, "%s", mt);

    if (gemma) {
        /* Gemma2/3 configs read hidden_activation (hidden_act is a legacy alias) */
        const char *act = json_string(json_get(root, "hidden_activation"));
        if (!act) act = json_string(json_get(root, "hidden_act"));
        if (act && strcmp(act, "gelu_pytorch_tanh") != 0)
            return err_set(err, FORGE_E_UNSUPPORTED, "hidden_activation \"%.64s\" is not supported (only gelu_pytorch_tanh)",
                           act);
        c->act = ACT_GELU_TANH;
    } else {
        const char *act = json_string(json_get(root, "hidden_act"));
        if (act && strcmp(act, "silu") != 0)
            return err_set(err, FORGE_E_UNSUPPORTED, "hidden_act \"%.64s\" is not supported (only silu)", act);
        c->act = ACT_SILU;
    }

    forge_status st;
    double eps, theta;
    int dflt_maxpos = c->arch == ARCH_MISTRAL || c->arch == ARCH_MIXTRAL ? 4096 * 32
                    : c->arch == ARCH_LLAMA ? 2048 : c->arch == ARCH_PHI3 ? 4096
                    : c->arch == ARCH_GEMMA2 ? 8192 : c->arch == ARCH_GEMMA3 ? 131072 : 32768;
    /* the config classes' defaults where they differ from llama's */
    double dflt_theta = c->arch == ARCH_SMOLLM3 ? 2000000.0
                      : c->arch == ARCH_MIXTRAL || c->arch == ARCH_GEMMA3 ? 1000000.0 : 10000.0;
    bool dflt_tied = c->arch == ARCH_SMOLLM3 || gemma;
    if ((st = get_int(root, "vocab_size", &c->vocab_size, c->arch == ARCH_PHI3 ? 32064 : 32000, err)) ||
        (st = get_int(root, "hidden_size", &c->hidden_size, 0, err)) ||
        (st = get_int(root, "intermediate_size", &c->intermediate_size, 0, err)) ||
        (st = get_int(root, "num_hidden_layers", &c->n_layers, 0, err)) ||
        (st = get_int(root, "num_attention_heads", &c->n_heads, 0, err)) ||
        (st = get_int(root, "num_key_value_heads", &c->n_kv_heads, c->n_heads, err)) ||
        (st = get_int(root, "max_position_embeddings", &c->max_position_embeddings, dflt_maxpos, err)) ||
        (st = get_num(root, "rms_norm_eps", &eps, 1e-6, err)) ||
        (st = get_num(root, "rope_theta", &theta, dflt_theta, err)) ||
        (st = get_bool(root, "tie_word_embeddings", &c->tie_word_embeddings, dflt_tied, err)) ||
        (st = get_int(root, "bos_token_id", &c->bos_token_id, -1, err)))
        return st;
    if (c->hidden_size <= 0 || c->intermediate_size <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->vocab_size <= 0 || c->n_kv_heads <= 0 || c->max_position_embeddings <= 0)
        return err_set(err, FORGE_E_FORMAT,
                       "hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, "
                       "num_key_value_heads, vocab_size and max_position_embeddings must all be positive");
    if (c->hidden_size > 65536 || c->intermediate_size > 262144 || c->n_layers > 1024 ||
        c->vocab_size > 4000000 || c->n_heads > 1024)
        return err_set(err, FORGE_E_RANGE, "model dimensions are implausibly large");
    c->rms_norm_eps = (float)eps;
    c->rope_theta = theta;
    if (!(theta > 0)) return err_set(err, FORGE_E_FORMAT, "field \"rope_theta\" must be positive");

    /* head_dim: explicit, else hidden / heads; Qwen3's config class defaults it to 128 */
    int dflt_hd = c->arch == ARCH_QWEN3 ? 128 : gemma ? 256 : c->hidden_size / c->n_heads;
    if ((st = get_int(root, "head_dim", &c->head_dim, dflt_hd, err))) return st;
    if (c->head_dim <= 0 || c->head_dim % 2 || c->head_dim > CONFIG_MAX_HEAD_DIM)
        return err_set(err, FORGE_E_UNSUPPORTED, "head_dim %d is not supported (even, at most %d)", c->head_dim,
                       CONFIG_MAX_HEAD_DIM);
    if (c->n_heads % c->n_kv_heads)
        return err_set(err, FORGE_E_FORMAT, "num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                       c->n_heads, c->n_kv_heads);
    if (c->n_heads / c->n_kv_heads > CONFIG_MAX_GQA)
        return err_set(err, FORGE_E_UNSUPPORTED, "more than %d query heads per KV head", CONFIG_MAX_GQA);

    /* dtype: "torch_dtype" (older) or "dtype" (newer transformers) */
    const char *dt = json_string(json_get(root, "torch_dtype"));
    if (!dt) dt = json_string(json_get(root, "dtype"));
    c->torch_dtype = FORGE_DTYPE_F32;
    if (dt) {
        if (!strcmp(dt, "bfloat16")) c->torch_dtype = FORGE_DTYPE_BF16;
        else if (!strcmp(dt, "float16")) c->torch_dtype = FORGE_DTYPE_F16;
        else if (!strcmp(dt, "float32")) c->torch_dtype = FORGE_DTYPE_F32;
        else return err_set(err, FORGE_E_UNSUPPORTED, "torch_dtype \"%.32s\" is not supported", dt);
    }

    /* partial rotary (phi3): the first head_dim * partial_rotary_factor dimensions rotate */
    double prf;
    if ((st = get_num(root, "partial_rotary_factor", &prf, 1.0, err))) return st;
    if (!(prf > 0 && prf <= 1)) return err_set(err, FORGE_E_FORMAT, "field \"partial_rotary_factor\" must be in (0, 1]");
    c->rope_dim = (int)(c->head_dim * prf); /* HF: int(head_dim * partial_rotary_factor) */
    if (c->rope_dim < 2 || c->rope_dim % 2)
        return err_set(err, FORGE_E_UNSUPPORTED, "partial_rotary_factor %g gives %d rotary dimensions (need an even number)",
                       prf, c->rope_dim);
    if (prf != 1.0 && c->arch != ARCH_PHI3)
        return err_set(err, FORGE_E_UNSUPPORTED, "partial_rotary_factor is supported for phi3 only");
    c->rope_attn_factor = 1.0;
    if ((st = parse_rope_scaling(c, root, json_get(root, "rope_scaling"), err))) return st;
    c->fused_qkv_gate_up = c->arch == ARCH_PHI3;
    if ((st = parse_eos(c, json_get(root, "eos_token_id"), err))) return st;

    /* biases and norms per family */
    bool attn_bias;
    if ((st = get_bool(root, "attention_bias", &attn_bias, false, err)) ||
        (st = get_bool(root, "mlp_bias", &c->mlp_bias, false, err)))
        return st;
    if (c->arch == ARCH_QWEN2) {
        c->q_bias = c->k_bias = c->v_bias = true; /* Qwen2's attention always has q/k/v biases */
        c->mlp_bias = false;
    } else if (c->arch == ARCH_MISTRAL) {
        c->mlp_bias = false;
    } else if (c->arch == ARCH_MIXTRAL || c->arch == ARCH_PHI3) {
        c->mlp_bias = false; /* Mixtral's and Phi-3's projections have no biases */
    } else if (gemma) {
        c->q_bias = c->k_bias = c->v_bias = c->o_bias = attn_bias;
        c->mlp_bias = false;
    } else {
        /* llama, smollm3 (o_proj included), qwen3, qwen3_moe */
        c->q_bias = c->k_bias = c->v_bias = c->o_bias = attn_bias;
        if (c->arch == ARCH_QWEN3 || c->arch == ARCH_QWEN3_MOE) c->mlp_bias = false;
    }
    c->qk_norm = c->arch == ARCH_QWEN3 || c->arch == ARCH_QWEN3_MOE || c->arch == ARCH_GEMMA3;
    c->attn_scale = 1.0 / sqrt((double)c->head_dim);
    if (gemma && (st = parse_gemma(c, root, err))) return st;

    c->layer_sliding = calloc((size_t)c->n_layers, sizeof *c->layer_sliding);
    c->layer_rope = calloc((size_t)c->n_layers, sizeof *c->layer_rope);
    c->layer_moe = calloc((size_t)c->n_layers, sizeof *c->layer_moe);
    if (!c->layer_sliding || !c->layer_rope || !c->layer_moe) return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (int i = 0; i < c->n_layers; i++) c->layer_rope[i] = true;
    if (c->arch == ARCH_SMOLLM3 && (st = parse_no_rope(c, root, err))) return st;
    if ((c->arch == ARCH_QWEN3_MOE || c->arch == ARCH_MIXTRAL) && (st = parse_moe(c, root, err))) return st;

    /* sliding window */
    int window = 0;
    if (c->arch == ARCH_MISTRAL || c->arch == ARCH_MIXTRAL || c->arch == ARCH_PHI3) {
        /* Phi3Attention passes config.sliding_window to every layer, as Mistral's does */
        const json_value *sw = json_get(root, "sliding_window");
        if (!sw && c->arch == ARCH_MISTRAL) window = 4096; /* MistralConfig's default (Mixtral's: none) */
        else if ((st = get_int(root, "sliding_window", &window, 0, err))) return st;
        for (int i = 0; i < c->n_layers; i++) c->layer_sliding[i] = window > 0;
    } else if (gemma) {
        /* Gemma2Config / Gemma3TextConfig: layer_types, else Gemma 2's even layers or every layer
         * but each sliding_window_pattern-th for Gemma 3 */
        if ((st = get_int(root, "sliding_window", &window, 4096, err))) return st;
        int pattern = 2;
        if (c->arch == ARCH_GEMMA3 && (st = get_int(root, "sliding_window_pattern", &pattern, 6, err))) return st;
        if (pattern <= 0) return err_set(err, FORGE_E_FORMAT, "field \"sliding_window_pattern\" must be positive");
        const json_value *lt = json_get(root, "layer_types");
        if (json_is(lt, JSON_ARRAY)) {
            if ((st = parse_layer_types(c, lt, err))) return st;
        } else {
            for (int i = 0; i < c->n_layers; i++) c->layer_sliding[i] = (i + 1) % pattern != 0;
        }
        if (window <= 0)
            for (int i = 0; i < c->n_layers; i++) c->layer_sliding[i] = false;
    } else if (c->arch == ARCH_SMOLLM3) {
        /* SmolLM3Config: layer_types as given, else sliding on the NoPE layers; the window only
         * with use_sliding_window */
        bool use;
        if ((st = get_bool(root, "use_sliding_window", &use, false, err))) return st;
        if (use && (st = get_int(root, "sliding_window", &window, 0, err))) return st;
        if (!use) window = 0;
        const json_value *lt = json_get(root, "layer_types");
        if (window > 0 && json_is(lt, JSON_ARRAY)) {
            if ((st = parse_layer_types(c, lt, err))) return st;
        } else {
            for (int i = 0; i < c->n_layers; i++) c->layer_sliding[i] = window > 0 && !c->layer_rope[i];
        }
    } else if (c->arch == ARCH_QWEN2 || c->arch == ARCH_QWEN3 || c->arch == ARCH_QWEN3_MOE) {
        bool use;
        int mwl;
        if ((st = get_bool(root, "use_sliding_window", &use, false, err)) ||
            (st = get_int(root, "max_window_layers", &mwl, 28, err)))
            return st;
        if (use && (st = get_int(root, "sliding_window", &window, 4096, err))) return st;
        if (!use) window = 0;
        const json_value *lt = json_get(root, "layer_types");
        if (window > 0 && json_is(lt, JSON_ARRAY)) {
            if ((st = parse_layer_types(c, lt, err))) return st;
        } else {
            for (int i = 0; i < c->n_layers; i++) c->layer_sliding[i] = window > 0 && i >= mwl;
        }
    } else {
        const json_value *lt = json_get(root, "layer_types");
        if (json_is(lt, JSON_ARRAY))
            for (size_t i = 0; i < lt->n; i++) {
                const char *t = json_string(json_at(lt, i));
                if (t && strcmp(t, "full_attention"))
                    return err_set(err, FORGE_E_UNSUPPORTED, "layer_types[%zu] \"%.32s\" is not supported for llama", i, t);
            }
    }
    if (window < 0) return err_set(err, FORGE_E_FORMAT, "field \"sliding_window\" must not be negative");
    c->sliding_window = window;
    return FORGE_OK;
}

forge_status config_load(model_config *c, const char *path, forge_error *err) {
    memset(c, 0, sizeof *c);
    json_doc *d = json_parse_file(path, 16u << 20, err);
    if (!d) return err ? err->code : FORGE_E_FORMAT;
    forge_status st = config_parse(c, json_root(d), err);
    json_free(d);
    if (st) {
        config_free(c);
        err_prefix(err, "%s", path);
    }
    return st;
}

void config_free(model_config *c) {
    free(c->layer_sliding);
    free(c->layer_rope);
    free(c->layer_moe);
    c->layer_sliding = NULL;
    c->layer_rope = c->layer_moe = NULL;
    free(c->rope_short_factor);
    free(c->rope_long_factor);
    c->rope_short_factor = c->rope_long_factor = NULL;
}

void config_rope_local_inv_freq(const model_config *c, double *inv) {
    for (int i = 0; i < c->rope_dim / 2; i++) inv[i] = 1.0 / pow(c->rope_local_theta, (double)(2 * i) / c->rope_dim);
}

void config_rope_long_inv_freq(const model_config *c, double *inv) {
    for (int i = 0; i < c->rope_dim / 2; i++)
        inv[i] = 1.0 / (c->rope_long_factor[i] * pow(c->rope_theta, (double)(2 * i) / c->rope_dim));
}

void config_rope_inv_freq(const model_config *c, double *inv) {
    int half = c->rope_dim / 2;
    for (int i = 0; i < half; i++) {
        /* HF: 1 / base^(arange(0, dim, 2) / dim), dim the rotary dimensions */
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / c->rope_dim);
        if (c->rope_type == ROPE_LONGROPE) {
            f = 1.0 / (c->rope_short_factor[i] * pow(c->rope_theta, (double)(2 * i) / c->rope_dim));
        } else if (c->rope_type == ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_type == ROPE_LLAMA3) {
            /* transformers' _compute_llama3_parameters */
            double low_wl = c->rope_original_max_pos / c->rope_low_freq_factor;
            double high_wl = c->rope_original_max_pos / c->rope_high_freq_factor;
            double wl = 2 * M_PI / f;
            if (wl > low_wl) {
                f = f / c->rope_factor;
            } else if (wl >= high_wl) {
                double smooth = (c->rope_original_max_pos / wl - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv[i] = f;
    }
}
