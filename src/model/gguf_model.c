/* gguf_model.c: GGUF metadata -> model_config (through config_parse, so a GGUF gets the
 * same checks as a config.json), GGUF tensor names -> HF names. */
#include "model/gguf_model.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "kernels/kernels.h"

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* True when the sorted names are the shards of one split model: PREFIX-0000k-of-0000N.gguf
 * for k = 1..N, all there. */
static bool one_split(char *const *names, int count) {
    size_t n0 = strlen(names[0]);
    if (n0 < 20) return false;
    const char *t0 = names[0] + n0 - 20; /* "-00001-of-00003.gguf" */
    int k, total;
    char rest[8];
    if (sscanf(t0, "-%5d-of-%5d%7s", &k, &total, rest) != 3 || strcmp(rest, ".gguf") || k != 1 || total != count)
        return false;
    for (int i = 1; i < count; i++) {
        size_t n = strlen(names[i]);
        char want[32];
        snprintf(want, sizeof want, "-%05d-of-%05d.gguf", i + 1, total);
        if (n != n0 || strncmp(names[i], names[0], n0 - 20) || strcmp(names[i] + n - 20, want)) return false;
    }
    return true;
}

forge_status gguf_model_find(const char *path, char *file, size_t n, bool *is_gguf, forge_error *err) {
    *is_gguf = false;
    if (path_is_file(path)) {
        if (!ends_with(path, ".gguf")) return FORGE_OK;
        if (snprintf(file, n, "%s", path) >= (int)n) return err_set(err, FORGE_E_INVALID, "model path is too long");
        *is_gguf = true;
        return FORGE_OK;
    }
    if (!path_is_dir(path)) return FORGE_OK;
    char probe[4096];
    if (path_join(probe, sizeof probe, path, "model.safetensors") == 0 && path_is_file(probe)) return FORGE_OK;
    if (path_join(probe, sizeof probe, path, "model.safetensors.index.json") == 0 && path_is_file(probe))
        return FORGE_OK;
    DIR *d = opendir(path);
    if (!d) return FORGE_OK;
    char *names[256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 256)
        if (e->d_name[0] != '.' && ends_with(e->d_name, ".gguf") && !strstr(e->d_name, "mmproj")) {
            if (!(names[count] = strdup(e->d_name))) break;
            count++;
        }
    closedir(d);
    forge_status st = FORGE_OK;
    int n_names = count;
    if (count == 0) goto done;
    qsort(names, (size_t)count, sizeof *names, cmp_str);
    if (count > 1 && one_split(names, count)) count = 1; /* names[0] is its first shard */
    if (count > 1) {
        strbuf sb = STRBUF_INIT;
        for (int i = 0; i < count; i++) sb_printf(&sb, "%s%s", i ? ", " : "", names[i]);
        st = err_set(err, FORGE_E_INVALID, "%s holds several GGUF files (%s): name the one to load", path,
                     sb_failed(&sb) ? "?" : sb_str(&sb));
        sb_free(&sb);
        goto done;
    }
    if (path_join(file, n, path, names[0])) {
        st = err_set(err, FORGE_E_INVALID, "model path is too long");
        goto done;
    }
    *is_gguf = true;
done:
    for (int i = 0; i < n_names; i++) free(names[i]);
    return st;
}

/* ---- metadata -> config.json ------------------------------------------------------------ */

static forge_status put_int(strbuf *sb, const gguf_file *g, const char *arch, const char *suffix, const char *field,
                            bool required, forge_error *err) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    forge_status st = gguf_get_int(g, key, &v, err);
    if (st == FORGE_E_NOT_FOUND) {
        if (required) return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" is missing", key);
        return FORGE_OK;
    }
    if (st) return st;
    if (v < 0 || v > 2000000000) return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" = %lld is out of range", key, (long long)v);
    sb_printf(sb, ",\"%s\":%lld", field, (long long)v);
    return FORGE_OK;
}

static forge_status put_float(strbuf *sb, const gguf_file *g, const char *key, const char *field, forge_error *err) {
    double v;
    forge_status st = gguf_get_float(g, key, &v, err);
    if (st == FORGE_E_NOT_FOUND) return FORGE_OK;
    if (st) return st;
    if (!(v == v) || v > 1e300 || v < -1e300) return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" is not a finite number", key);
    sb_printf(sb, ",\"%s\":%.17g", field, v);
    return FORGE_OK;
}

static bool has_tensor(const gguf_file *g, const char *name) { return gguf_find_tensor(g, name) != NULL; }

/* Phi-3's window (0: none), original context and longrope (conversion/phi.py writes the
 * factors as F32 tensors rope_factors_long / rope_factors_short of rotary dims / 2, and the
 * attention factor as a key) as config.json fields. */
static forge_status phi3_longrope(const gguf_file *g, strbuf *sb, int64_t rdim, forge_error *err) {
    int64_t swa = 0, orig = 0;
    forge_status st;
    if ((st = gguf_get_int(g, "phi3.attention.sliding_window", &swa, err)) && st != FORGE_E_NOT_FOUND) return st;
    if ((st = gguf_get_int(g, "phi3.rope.scaling.original_context_length", &orig, err)) && st != FORGE_E_NOT_FOUND)
        return st;
    if (swa < 0 || swa > 2000000000 || orig < 0 || orig > 2000000000)
        return err_set(err, FORGE_E_FORMAT, "GGUF phi3 sliding_window or original_context_length is out of range");
    sb_printf(sb, ",\"sliding_window\":%lld", (long long)swa);
    if (orig > 0) sb_printf(sb, ",\"original_max_position_embeddings\":%lld", (long long)orig);
    const gguf_tensor *fl = gguf_find_tensor(g, "rope_factors_long.weight"), *fs = gguf_find_tensor(g, "rope_factors_short.weight");
    if (!fl && !fs) return FORGE_OK;
    const gguf_tensor *both[2] = {fs, fl};
    for (int i = 0; i < 2; i++)
        if (!both[i] || both[i]->type != GGML_F32 || both[i]->n_dims != 1 || both[i]->ne[0] != rdim / 2)
            return err_set(err, FORGE_E_FORMAT, "GGUF phi3: rope_factors_long.weight and rope_factors_short.weight must "
                           "both be F32 [%lld]", (long long)(rdim / 2));
    sb_puts(sb, ",\"rope_scaling\":{\"type\":\"longrope\"");
    for (int i = 0; i < 2; i++) {
        sb_printf(sb, ",\"%s\":[", i ? "long_factor" : "short_factor");
        for (int64_t k = 0; k < rdim / 2; k++) {
            float f;
            memcpy(&f, both[i]->data + 4 * k, 4); /* the data is 32-aligned; memcpy keeps it simple */
            if (!(f > 0 && f < 1e30f)) return err_set(err, FORGE_E_FORMAT, "GGUF phi3: a rope factor is not a positive number");
            sb_printf(sb, "%s%.9g", k ? "," : "", (double)f);
        }
        sb_putc(sb, ']');
    }
    double af = 0;
    if ((st = gguf_get_float(g, "phi3.rope.scaling.attn_factor", &af, err)) && st != FORGE_E_NOT_FOUND) return st;
    if (af > 0 && af < 1e30) sb_printf(sb, ",\"attention_factor\":%.9g", af);
    sb_putc(sb, '}');
    return FORGE_OK;
}

/* llama.cpp's gemma3 (src/models/gemma3.cpp): the window when attention.sliding_window is set
 * and positive, global layers every attention.sliding_window_pattern-th (6 when absent; a bool
 * array of sliding layers in newer files), the local layers' RoPE base from rope.freq_base_swa
 * (10000 when absent, what llama.cpp assumed before the key), the final soft-capping if set,
 * and the attention scale as llama.cpp takes it: head_dim, hidden/heads for the 62-layer 27B. */
static forge_status gemma3_config(const gguf_file *g, strbuf *sb, int64_t hidden, int64_t heads, int64_t hd,
                                  forge_error *err) {
    forge_status st;
    double fcap = 0, base_swa = 10000;
    int64_t swa = 0, layers = 0, pattern = 6;
    if ((st = gguf_get_float(g, "gemma3.final_logit_softcapping", &fcap, err)) && st != FORGE_E_NOT_FOUND) return st;
    if ((st = gguf_get_float(g, "gemma3.rope.freq_base_swa", &base_swa, err)) && st != FORGE_E_NOT_FOUND) return st;
    if ((st = gguf_get_int(g, "gemma3.attention.sliding_window", &swa, err)) && st != FORGE_E_NOT_FOUND) return st;
    gguf_get_int(g, "gemma3.block_count", &layers, NULL);
    if (!(fcap >= 0 && fcap < 1e30) || !(base_swa > 0 && base_swa < 1e30) || swa < 0 || swa > 2000000000 ||
        layers <= 0 || layers > 100000)
        return err_set(err, FORGE_E_FORMAT, "GGUF gemma3 soft-capping, rope.freq_base_swa, sliding_window or "
                       "block_count is out of range");
    sb_printf(sb, ",\"attn_logit_softcapping\":null,\"final_logit_softcapping\":%.17g,\"rope_local_base_freq\":%.17g",
              fcap, base_swa);
    sb_printf(sb, ",\"query_pre_attn_scalar\":%lld", (long long)(layers == 62 ? hidden / heads : hd));
    const gguf_kv *pk = gguf_find_kv(g, "gemma3.attention.sliding_window_pattern");
    if (swa <= 0) { /* no window: every layer global */
        sb_printf(sb, ",\"sliding_window\":null,\"layer_types\":[");
        for (int64_t i = 0; i < layers; i++) sb_printf(sb, "%s\"full_attention\"", i ? "," : "");
        sb_putc(sb, ']');
        return FORGE_OK;
    }
    sb_printf(sb, ",\"sliding_window\":%lld", (long long)swa);
    if (pk && pk->type == GGUF_ARRAY) {
        if (pk->arr_type != GGUF_BOOL || pk->arr_n != (uint64_t)layers)
            return err_set(err, FORGE_E_FORMAT, "GGUF key \"gemma3.attention.sliding_window_pattern\" must be an int or "
                           "a bool per layer (%lld)", (long long)layers);
        sb_printf(sb, ",\"layer_types\":[");
        for (int64_t i = 0; i < layers; i++) {
            bool v = gguf_arr_num(pk, (uint64_t)i) != 0;
            sb_printf(sb, "%s\"%s\"", i ? "," : "", v ? "sliding_attention" : "full_attention");
        }
        sb_putc(sb, ']');
        return FORGE_OK;
    }
    if (pk && (st = gguf_get_int(g, "gemma3.attention.sliding_window_pattern", &pattern, err))) return st;
    if (pattern <= 0 || pattern > 100000)
        return err_set(err, FORGE_E_FORMAT, "GGUF key \"gemma3.attention.sliding_window_pattern\" = %lld is out of range",
                       (long long)pattern);
    sb_printf(sb, ",\"sliding_window_pattern\":%lld", (long long)pattern);
    return FORGE_OK;
}

static forge_status build_config(gguf_model *gm, model_config *cfg, forge_error *err) {
    const gguf_file *g = &gm->file;
    gguf_str a;
    forge_status st = gguf_get_str(g, "general.architecture", &a, err);
    if (st == FORGE_E_NOT_FOUND) return err_set(err, FORGE_E_FORMAT, "GGUF key \"general.architecture\" is missing");
    if (st) return st;
    char arch[32];
    if (a.len >= sizeof arch || memchr(a.s, 0, a.len) || memchr(a.s, '"', a.len) || memchr(a.s, '\\', a.len))
        return err_set(err, FORGE_E_UNSUPPORTED,
                       "general.architecture \"%.*s\" is not supported (llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3, smollm3)",
                       (int)(a.len < 64 ? a.len : 64), a.s);
    memcpy(arch, a.s, a.len);
    arch[a.len] = 0;
    if (strcmp(arch, "llama") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3") && strcmp(arch, "qwen3moe") &&
        strcmp(arch, "gemma2") && strcmp(arch, "gemma3") && strcmp(arch, "phi3") && strcmp(arch, "smollm3"))
        return err_set(err, FORGE_E_UNSUPPORTED,
                       "general.architecture \"%s\" is not supported (llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3, smollm3)",
                       arch);
    bool gemma2 = !strcmp(arch, "gemma2"), gemma3 = !strcmp(arch, "gemma3"), phi3 = !strcmp(arch, "phi3");
    gm->norms_hold_one = gemma2 || gemma3; /* conversion/gemma.py stores every norm as 1 + w */
    bool smollm3 = !strcmp(arch, "smollm3");
    gm->qk_permuted = !strcmp(arch, "llama") || smollm3; /* convert_hf_to_gguf: SmolLM3 is a LlamaModel */
    /* experts: llama.cpp's qwen3moe, and its llama arch with experts (Mixtral) */
    char key[160];
    int64_t n_exp = 0, n_used = 0, exp_ff = 0;
    snprintf(key, sizeof key, "%s.expert_count", arch);
    if ((st = gguf_get_int(g, key, &n_exp, err)) && st != FORGE_E_NOT_FOUND) return st;
    snprintf(key, sizeof key, "%s.expert_used_count", arch);
    if ((st = gguf_get_int(g, key, &n_used, err)) && st != FORGE_E_NOT_FOUND) return st;
    snprintf(key, sizeof key, "%s.expert_feed_forward_length", arch);
    if ((st = gguf_get_int(g, key, &exp_ff, err)) && st != FORGE_E_NOT_FOUND) return st;
    if (n_exp < 0 || n_exp > 100000 || n_used < 0 || n_used > 100000 || exp_ff < 0 || exp_ff > 2000000000)
        return err_set(err, FORGE_E_FORMAT, "GGUF keys %s.expert_count / expert_used_count / expert_feed_forward_length "
                       "are out of range", arch);
    bool qwen_moe = !strcmp(arch, "qwen3moe"), mixtral = !strcmp(arch, "llama") && n_exp > 0;
    if (qwen_moe && n_exp <= 0) return err_set(err, FORGE_E_FORMAT, "GGUF key \"qwen3moe.expert_count\" is missing or 0");
    const char *model_type = qwen_moe ? "qwen3_moe" : mixtral ? "mixtral" : gemma3 ? "gemma3_text" : arch;
    int64_t splits = 1;
    if ((st = gguf_get_int(g, "split.count", &splits, err)) && st != FORGE_E_NOT_FOUND) return st;
    if (splits > 1 && splits - 1 != gm->n_more)
        return err_set(err, FORGE_E_INVALID, "a split GGUF (split.count = %lld) with %d of its shards open",
                       (long long)splits, gm->n_more + 1);

    strbuf sb = STRBUF_INIT;
    sb_printf(&sb, "{\"model_type\":\"%s\",\"hidden_act\":\"%s\"", model_type,
              gemma2 || gemma3 ? "gelu_pytorch_tanh" : "silu");
    if (qwen_moe || mixtral) {
        /* llama.cpp renormalizes the top k for both (build_moe_ffn's norm_w), as Qwen3-MoE's
         * releases (norm_topk_prob true) and Mixtral do */
        sb_printf(&sb, ",\"%s\":%lld,\"num_experts_per_tok\":%lld", qwen_moe ? "num_experts" : "num_local_experts",
                  (long long)n_exp, (long long)n_used);
        if (qwen_moe)
            sb_printf(&sb, ",\"norm_topk_prob\":true,\"moe_intermediate_size\":%lld", (long long)exp_ff);
    }
    /* vocabulary: the arch key, else the token list, else the embedding's rows */
    snprintf(key, sizeof key, "%s.vocab_size", arch);
    const gguf_kv *toks = gguf_find_kv(g, "tokenizer.ggml.tokens");
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (gguf_find_kv(g, key)) {
        if ((st = put_int(&sb, g, arch, "vocab_size", "vocab_size", true, err))) goto out;
    } else if (toks && toks->type == GGUF_ARRAY) {
        sb_printf(&sb, ",\"vocab_size\":%llu", (unsigned long long)toks->arr_n);
    } else if (emb && emb->n_dims == 2) {
        sb_printf(&sb, ",\"vocab_size\":%lld", (long long)emb->ne[1]);
    }
    if ((st = put_int(&sb, g, arch, "embedding_length", "hidden_size", true, err)) ||
        (st = put_int(&sb, g, arch, "feed_forward_length", "intermediate_size", !qwen_moe, err)) ||
        (st = put_int(&sb, g, arch, "block_count", "num_hidden_layers", true, err)) ||
        (st = put_int(&sb, g, arch, "attention.head_count", "num_attention_heads", true, err)) ||
        (st = put_int(&sb, g, arch, "attention.head_count_kv", "num_key_value_heads", false, err)) ||
        (st = put_int(&sb, g, arch, "context_length", "max_position_embeddings", true, err)))
        goto out;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if ((st = put_float(&sb, g, key, "rms_norm_eps", err))) goto out;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if ((st = put_float(&sb, g, key, "rope_theta", err))) goto out;

    /* head_dim: attention.key_length, else hidden / heads (llama.cpp's default, also for qwen3) */
    int64_t hidden = 0, heads = 0, hd = 0, vlen = 0, rdim = 0;
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    gguf_get_int(g, key, &hidden, NULL);
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    gguf_get_int(g, key, &heads, NULL);
    if (heads <= 0) {
        st = err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be positive", key);
        goto out;
    }
    hd = hidden / heads;
    snprintf(key, sizeof key, "%s.attention.key_length", arch);
    if ((st = gguf_get_int(g, key, &hd, err)) && st != FORGE_E_NOT_FOUND) goto out;
    vlen = hd;
    snprintf(key, sizeof key, "%s.attention.value_length", arch);
    if ((st = gguf_get_int(g, key, &vlen, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if (vlen != hd) {
        st = err_set(err, FORGE_E_UNSUPPORTED, "GGUF key \"%s\" (%lld) differs from the key length (%lld)", key,
                     (long long)vlen, (long long)hd);
        goto out;
    }
    rdim = hd;
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    if ((st = gguf_get_int(g, key, &rdim, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if (rdim != hd && !(phi3 && rdim > 0 && rdim < hd && rdim % 2 == 0)) {
        st = err_set(err, FORGE_E_UNSUPPORTED, "GGUF key \"%s\" = %lld: partial RoPE (head dim %lld) is supported for phi3 only",
                     key, (long long)rdim, (long long)hd);
        goto out;
    }
    /* HF takes int(head_dim * factor): half a dimension over keeps the division's rounding out */
    if (rdim != hd) sb_printf(&sb, ",\"partial_rotary_factor\":%.17g", ((double)rdim + 0.5) / (double)hd);
    if (phi3 && (st = phi3_longrope(g, &sb, rdim, err))) goto out;
    if (hd <= 0 || hd > 100000) {
        st = err_set(err, FORGE_E_FORMAT, "head dimension %lld is out of range", (long long)hd);
        goto out;
    }
    sb_printf(&sb, ",\"head_dim\":%lld", (long long)hd);

    /* RoPE scaling */
    gguf_str stype = {0};
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if ((st = gguf_get_str(g, key, &stype, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if (stype.s && !(stype.len == 4 && !memcmp(stype.s, "none", 4))) {
        if (stype.len == 6 && !memcmp(stype.s, "linear", 6)) {
            double f = 1;
            snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
            if ((st = gguf_get_float(g, key, &f, err)) && st != FORGE_E_NOT_FOUND) goto out;
            if (!(f > 0) || f > 1e6) {
                st = err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be positive", key);
                goto out;
            }
            sb_printf(&sb, ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":%.17g}", f);
        } else {
            st = err_set(err, FORGE_E_UNSUPPORTED, "GGUF key \"%s.rope.scaling.type\" = \"%.*s\" is not supported (none, linear)",
                         arch, (int)(stype.len < 32 ? stype.len : 32), stype.s);
            goto out;
        }
    }
    st = FORGE_OK;
    sb_printf(&sb, ",\"tie_word_embeddings\":%s", has_tensor(g, "output.weight") ? "false" : "true");
    if (!strcmp(arch, "llama"))
        sb_printf(&sb, ",\"attention_bias\":%s", has_tensor(g, "blk.0.attn_q.bias") ? "true" : "false");
    /* llama.cpp's smollm3: every 4th layer without RoPE ((il + 1) % 4 == 0, no key says
     * otherwise), no attention biases */
    if (smollm3) sb_puts(&sb, ",\"no_rope_layer_interval\":4,\"attention_bias\":false");
    if (!strcmp(arch, "qwen2") || !strcmp(arch, "qwen3") || qwen_moe) sb_puts(&sb, ",\"use_sliding_window\":false");
    if (gemma2) {
        /* soft-capping and the window from the metadata (0: none); the attention scale as
         * llama.cpp takes it: head_dim, but hidden/heads for the 46-layer 27B */
        double acap = 0, fcap = 0;
        int64_t swa = 4096, layers = 0;
        if ((st = gguf_get_float(g, "gemma2.attn_logit_softcapping", &acap, err)) && st != FORGE_E_NOT_FOUND) goto out;
        if ((st = gguf_get_float(g, "gemma2.final_logit_softcapping", &fcap, err)) && st != FORGE_E_NOT_FOUND) goto out;
        if ((st = gguf_get_int(g, "gemma2.attention.sliding_window", &swa, err)) && st != FORGE_E_NOT_FOUND) goto out;
        gguf_get_int(g, "gemma2.block_count", &layers, NULL);
        if (!(acap >= 0 && acap < 1e30) || !(fcap >= 0 && fcap < 1e30) || swa < 0 || swa > 2000000000) {
            st = err_set(err, FORGE_E_FORMAT, "GGUF gemma2 soft-capping or sliding_window is out of range");
            goto out;
        }
        sb_printf(&sb, ",\"attn_logit_softcapping\":%.17g,\"final_logit_softcapping\":%.17g,\"sliding_window\":%lld",
                  acap, fcap, (long long)swa);
        sb_printf(&sb, ",\"query_pre_attn_scalar\":%lld", (long long)(layers == 46 ? hidden / heads : hd));
    }
    if (gemma3 && (st = gemma3_config(g, &sb, hidden, heads, hd, err))) goto out;
    if (qwen_moe) {
        /* a dense MLP width is unused when every layer is sparse; config_parse wants one */
        snprintf(key, sizeof key, "%s.feed_forward_length", arch);
        if (!gguf_find_kv(g, key)) sb_printf(&sb, ",\"intermediate_size\":%lld", (long long)(exp_ff > 0 ? exp_ff : 1));
    }

    /* the dtype of the attention weights, for the KV cache's automatic dtype */
    const gguf_tensor *wq = gguf_find_tensor(g, "blk.0.attn_q.weight");
    sb_printf(&sb, ",\"torch_dtype\":\"%s\"", wq && wq->type == GGML_F32 ? "float32" : wq && wq->type == GGML_F16 ? "float16" : "bfloat16");

    int64_t id;
    if ((st = gguf_get_int(g, "tokenizer.ggml.bos_token_id", &id, err)) == FORGE_OK) sb_printf(&sb, ",\"bos_token_id\":%lld", (long long)id);
    else if (st != FORGE_E_NOT_FOUND) goto out;
    int64_t eos = -1, eot = -1;
    if ((st = gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if ((st = gguf_get_int(g, "tokenizer.ggml.eot_token_id", &eot, err)) && st != FORGE_E_NOT_FOUND) goto out;
    st = FORGE_OK;
    if (eos > INT32_MAX || eot > INT32_MAX) {
        st = err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.eos_token_id / eot_token_id is out of range");
        goto out;
    }
    if (eos >= 0 && eot >= 0 && eot != eos) sb_printf(&sb, ",\"eos_token_id\":[%lld,%lld]", (long long)eos, (long long)eot);
    else if (eos >= 0 || eot >= 0) sb_printf(&sb, ",\"eos_token_id\":%lld", (long long)(eos >= 0 ? eos : eot));
    sb_putc(&sb, '}');
    if (sb_failed(&sb)) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    json_doc *doc = json_parse(sb_str(&sb), sb.len, err);
    if (!doc) {
        st = err ? err->code : FORGE_E_FORMAT;
        goto out;
    }
    st = config_parse(cfg, json_root(doc), err);
    json_free(doc);
    if (st) err_prefix(err, "GGUF metadata");
out:
    sb_free(&sb);
    return st;
}

/* ---- tensors under HF names --------------------------------------------------------------- */

static const struct { const char *gguf, *hf; } g_layer_names[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},     {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},     {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},     {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_output.bias", "self_attn.o_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},      {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

/* A MoE layer's tensors: the router and the experts' 3-D stacks, [expert][rows][cols]. */
static const char *const g_exps[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"};

/* The layer of a "blk.N.rest" name and its rest, or -1. */
static long blk_layer(const char *name, const char **rest) {
    if (strncmp(name, "blk.", 4)) return -1;
    char *end;
    long l = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || l < 0 || l > 100000 || (name[4] == '0' && end != name + 5)) return -1;
    *rest = end + 1;
    return l;
}

/* Which expert stack (0 gate, 1 up, 2 down) a tensor is, or -1. */
static int exps_kind(const char *name) {
    const char *rest;
    if (blk_layer(name, &rest) < 0) return -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(rest, g_exps[i])) return i;
    return -1;
}

/* The HF name of expert e's matrix of a stack (Qwen3-MoE's or Mixtral's names). */
static void hf_expert_name(const model_config *cfg, long l, int kind, long e, char *out, size_t n) {
    static const char *const qwen[3] = {"gate_proj", "up_proj", "down_proj"}, *const mix[3] = {"w1", "w3", "w2"};
    bool mixtral = cfg->arch == ARCH_MIXTRAL;
    snprintf(out, n, "model.layers.%ld.%s.experts.%ld.%s.weight", l, mixtral ? "block_sparse_moe" : "mlp", e,
             mixtral ? mix[kind] : qwen[kind]);
}

/* The HF name of a GGUF tensor into out, or false for tensors Forge does not bind. */
static bool hf_name(const model_config *cfg, const char *name, char *out, size_t n) {
    const char *rest;
    long bl = blk_layer(name, &rest);
    if (bl >= 0 && cfg->fused_qkv_gate_up) { /* Phi-3's fused projections */
        if (!strcmp(rest, "attn_qkv.weight")) return snprintf(out, n, "model.layers.%ld.self_attn.qkv_proj.weight", bl) > 0;
        if (!strcmp(rest, "ffn_up.weight")) return snprintf(out, n, "model.layers.%ld.mlp.gate_up_proj.weight", bl) > 0;
    }
    if (bl >= 0 && cfg->gemma_norms) { /* Gemma's four norms of a layer */
        static const struct { const char *gguf, *hf; } gn[] = {
            {"post_attention_norm.weight", "post_attention_layernorm.weight"},
            {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
            {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
        };
        for (size_t i = 0; i < sizeof gn / sizeof gn[0]; i++)
            if (!strcmp(rest, gn[i].gguf)) return snprintf(out, n, "model.layers.%ld.%s", bl, gn[i].hf) > 0;
    }
    if (bl >= 0 && !strcmp(rest, "ffn_gate_inp.weight"))
        return snprintf(out, n, "model.layers.%ld.%s.gate.weight", bl,
                        cfg->arch == ARCH_MIXTRAL ? "block_sparse_moe" : "mlp") > 0;
    if (!strcmp(name, "token_embd.weight")) return snprintf(out, n, "model.embed_tokens.weight") > 0;
    if (!strcmp(name, "output_norm.weight")) return snprintf(out, n, "model.norm.weight") > 0;
    if (!strcmp(name, "output.weight")) return snprintf(out, n, "lm_head.weight") > 0;
    if (strncmp(name, "blk.", 4)) return false;
    char *end;
    long l = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || l < 0 || l > 100000 || (name[4] == '0' && end != name + 5)) return false;
    for (size_t i = 0; i < sizeof g_layer_names / sizeof g_layer_names[0]; i++)
        if (!strcmp(end + 1, g_layer_names[i].gguf))
            return snprintf(out, n, "model.layers.%ld.%s", l, g_layer_names[i].hf) > 0;
    return false;
}

/* Adds the tensor named name (owned copy) with t's type, a 2-D shape and the given bytes. */
static forge_status add_tensor(gguf_model *gm, st_set *st, const gguf_tensor *t, const char *name, int ndim,
                               const int64_t *shape, const unsigned char *data, size_t nbytes, forge_error *err) {
    if (!(gm->names[gm->n_names] = strdup(name))) return err_set(err, FORGE_E_NOMEM, "out of memory");
    st_tensor *o = &st->tensors[st->n_tensors];
    o->name = gm->names[gm->n_names++];
    snprintf(o->dtype_name, sizeof o->dtype_name, "%s", ggml_type_name(t->type));
    o->dtype = t->type == GGML_F32 ? FORGE_DTYPE_F32 : t->type == GGML_F16 ? FORGE_DTYPE_F16
             : t->type == GGML_BF16 ? FORGE_DTYPE_BF16 : -1;
    o->qtype = o->dtype < 0 ? (int)t->type : 0;
    o->ndim = ndim;
    for (int d = 0; d < ndim; d++) o->shape[d] = shape[d];
    o->data = data;
    o->nbytes = nbytes;
    if (strmap_get(&st->by_name, o->name, strlen(o->name)) >= 0)
        return err_set(err, FORGE_E_FORMAT, "tensor \"%s\" appears twice", t->cname);
    if (!strmap_put(&st->by_name, o->name, strlen(o->name), st->n_tensors))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    st->n_tensors++;
    return FORGE_OK;
}

/* An expert stack (ggml ne = [cols, rows, experts]) as one [rows, cols] view per expert into
 * the mapping: each expert's rows are contiguous, quantized rows included. */
static forge_status add_experts(gguf_model *gm, const model_config *cfg, st_set *st, const gguf_tensor *t, int kind,
                                forge_error *err) {
    const char *rest;
    long l = blk_layer(t->cname, &rest);
    int64_t E = t->ne[2];
    if (E <= 0 || t->nbytes % (uint64_t)E)
        return err_set(err, FORGE_E_FORMAT, "tensor \"%s\": %zu bytes do not split into %lld experts", t->cname,
                       t->nbytes, (long long)E);
    size_t per = t->nbytes / (size_t)E;
    int64_t shape[2] = {t->ne[1], t->ne[0]};
    for (int64_t e = 0; e < E; e++) {
        char name[256];
        hf_expert_name(cfg, l, kind, (long)e, name, sizeof name);
        forge_status s = add_tensor(gm, st, t, name, 2, shape, t->data + (size_t)e * per, per, err);
        if (s) return s;
    }
    return FORGE_OK;
}

/* Tensor j of the model: the first file's, then each further shard's in order. */
static const gguf_tensor *tensor_at(const gguf_model *gm, uint64_t j) {
    const gguf_file *f = &gm->file;
    for (int k = 0; j >= f->n_tensors && k < gm->n_more; k++) {
        j -= f->n_tensors;
        f = &gm->more[k];
    }
    return &f->tensors[j];
}

forge_status gguf_model_describe(gguf_model *gm, model_config *cfg, st_set *st, forge_error *err) {
    const gguf_file *g = &gm->file;
    memset(st, 0, sizeof *st);
    forge_status s = build_config(gm, cfg, err);
    if (s) return s;
    uint64_t total = g->n_tensors;
    for (int k = 0; k < gm->n_more; k++) total += gm->more[k].n_tensors;
    int64_t declared;
    if ((s = gguf_get_int(g, "split.tensors.count", &declared, err)) && s != FORGE_E_NOT_FOUND) return s;
    if (s == FORGE_OK && gm->n_more > 0 && (uint64_t)declared != total)
        return err_set(err, FORGE_E_FORMAT, "split.tensors.count is %lld but the %d shards hold %llu tensors",
                       (long long)declared, gm->n_more + 1, (unsigned long long)total);
    /* each 3-D expert stack becomes one 2-D tensor per expert */
    uint64_t n_out = total;
    for (uint64_t j = 0; j < total; j++) {
        const gguf_tensor *t = tensor_at(gm, j);
        if (exps_kind(t->cname) >= 0) {
            if (t->n_dims != 3 || t->ne[2] != cfg->n_experts)
                return err_set(err, FORGE_E_FORMAT, "tensor \"%s\" must have 3 dimensions, the last %d (experts)",
                               t->cname, cfg->n_experts);
            n_out += (uint64_t)t->ne[2] - 1;
        }
    }
    gm->names = calloc(n_out ? n_out : 1, sizeof *gm->names);
    st->tensors = calloc(n_out ? n_out : 1, sizeof *st->tensors);
    if (!gm->names || !st->tensors || !strmap_init(&st->by_name, n_out + 8))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (uint64_t j = 0; j < total; j++) {
        const gguf_tensor *t = tensor_at(gm, j);
        if (!strcmp(t->cname, "rope_freqs.weight")) {
            if (t->type != GGML_F32 || t->n_dims != 1 || t->ne[0] != cfg->head_dim / 2)
                return err_set(err, FORGE_E_FORMAT, "tensor \"rope_freqs.weight\" must be F32 [%d], is %s [%lld]",
                               cfg->head_dim / 2, ggml_type_name(t->type), (long long)t->ne[0]);
            gm->rope_freqs = (const float *)t->data; /* the data start and offsets are 32-aligned */
            continue;
        }
        char name[256];
        int kind = exps_kind(t->cname);
        if (kind >= 0) {
            if ((s = add_experts(gm, cfg, st, t, kind, err))) return s;
            continue;
        }
        if (!hf_name(cfg, t->cname, name, sizeof name)) continue;
        int64_t shape[GGUF_MAX_DIMS];
        for (int d = 0; d < t->n_dims; d++) shape[d] = t->ne[t->n_dims - 1 - d];
        if ((s = add_tensor(gm, st, t, name, t->n_dims, shape, t->data, t->nbytes, err))) return s;
    }
    return FORGE_OK;
}

/* A split model's other shards, beside the first: NAME-00001-of-0000N.gguf -> NAME-0000k-of-... */
static forge_status open_shards(gguf_model *gm, const char *path, forge_error *err) {
    int64_t count = 1, no = 0;
    forge_status s = gguf_get_int(&gm->file, "split.count", &count, err);
    if (s == FORGE_E_NOT_FOUND) return FORGE_OK;
    if (s) return s;
    if (count <= 1) return FORGE_OK;
    if (count > 9999) return err_set(err, FORGE_E_FORMAT, "split.count %lld is absurd", (long long)count);
    if ((s = gguf_get_int(&gm->file, "split.no", &no, err)) && s != FORGE_E_NOT_FOUND) return s;
    size_t n = strlen(path);
    char tail[32];
    snprintf(tail, sizeof tail, "-%05d-of-%05d.gguf", 1, (int)count);
    size_t tl = strlen(tail);
    if (no != 0 || n < tl || strcmp(path + n - tl, tail))
        return err_set(err, FORGE_E_INVALID,
                       "this is shard %lld of a GGUF split in %lld: open the first one, named like NAME%s", (long long)no + 1,
                       (long long)count, tail);
    if (!(gm->more = calloc((size_t)count - 1, sizeof *gm->more))) return err_set(err, FORGE_E_NOMEM, "out of memory");
    char *name = malloc(n + 1);
    if (!name) return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (int k = 2; k <= count; k++) {
        memcpy(name, path, n - tl);
        snprintf(name + n - tl, tl + 1, "-%05d-of-%05d.gguf", k, (int)count);
        if ((s = gguf_open(&gm->more[k - 2], name, err))) {
            gguf_close(&gm->more[k - 2]);
            err_prefix(err, "shard %d of %lld", k, (long long)count);
            break;
        }
        gm->n_more++;
        int64_t c2 = 0, no2 = -1;
        gguf_get_int(&gm->more[k - 2], "split.count", &c2, NULL);
        gguf_get_int(&gm->more[k - 2], "split.no", &no2, NULL);
        if (c2 != count || no2 != k - 1) {
            s = err_set(err, FORGE_E_FORMAT, "%s: split.no %lld and split.count %lld, expected %d and %lld", name,
                        (long long)no2, (long long)c2, k - 1, (long long)count);
            break;
        }
    }
    free(name);
    return s;
}

forge_status gguf_model_open(gguf_model *gm, const char *path, model_config *cfg, st_set *st, forge_error *err) {
    memset(gm, 0, sizeof *gm);
    forge_status s = gguf_open(&gm->file, path, err);
    if (s) return s;
    if ((s = open_shards(gm, path, err))) {
        err_prefix(err, "%s", path);
        return s;
    }
    s = gguf_model_describe(gm, cfg, st, err);
    if (s) err_prefix(err, "%s", path);
    return s;
}

void gguf_model_close(gguf_model *gm) {
    for (int i = 0; i < gm->n_names; i++) free(gm->names[i]);
    free(gm->names);
    for (int k = 0; k < gm->n_more; k++) gguf_close(&gm->more[k]);
    free(gm->more);
    gguf_close(&gm->file);
    memset(gm, 0, sizeof *gm);
}
