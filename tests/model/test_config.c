/* config.json: every real config parses with the values HF derives from it; rope scaling,
 * sliding-window rules and errors. Expected inverse frequencies for Llama 3.2's llama3
 * scaling were computed with transformers' _compute_llama3_parameters formula in Python. */
#include "model/config.h"
#include "test.h"

#define CFG "tests/fixtures/configs/"

static int load(model_config *c, const char *path) {
    forge_error err = {0};
    forge_status st = config_load(c, path, &err);
    if (st) printf("    %s\n", err.msg);
    return st;
}

static forge_status parse_str(model_config *c, const char *json, forge_error *err) {
    json_doc *d = json_parse(json, strlen(json), err);
    if (!d) return FORGE_E_FORMAT;
    forge_status st = config_parse(c, json_root(d), err);
    json_free(d);
    return st;
}

TEST(all_real_configs_parse) {
    const char *names[] = {"HuggingFaceTB--SmolLM2-135M", "HuggingFaceTB--SmolLM2-135M-Instruct",
                           "HuggingFaceTB--SmolLM2-360M-Instruct", "Qwen--Qwen2-0.5B", "Qwen--Qwen2.5-0.5B-Instruct",
                           "Qwen--Qwen3-0.6B", "Qwen--Qwen3-1.7B", "TinyLlama--TinyLlama-1.1B-Chat-v1.0",
                           "meta-llama--Llama-3.2-1B", "meta-llama--Llama-3.2-1B-Instruct",
                           "mistralai--Mistral-7B-Instruct-v0.2", "mistralai--Mistral-7B-v0.1",
                           "Qwen--Qwen3-30B-A3B", "mistralai--Mixtral-8x7B-v0.1", "HuggingFaceTB--SmolLM3-3B",
                           "google--gemma-2-2b-it", "google--gemma-3-1b-it", "microsoft--Phi-4-mini-instruct"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, CFG "%s/config.json", names[i]);
        model_config c;
        CHECKF(load(&c, path) == FORGE_OK, "%s", names[i]);
        config_free(&c);
    }
}

/* issue 18's families: MoE routing fields, SmolLM3's NoPE layers */
TEST(moe_and_nope_details) {
    model_config c;
    CHECK(load(&c, CFG "Qwen--Qwen3-30B-A3B/config.json") == 0);
    CHECK(c.arch == ARCH_QWEN3_MOE && c.n_experts == 128 && c.n_experts_used == 8 && c.moe_intermediate_size == 768);
    CHECK(c.norm_topk_prob && c.qk_norm && c.head_dim == 128 && !c.tie_word_embeddings && c.sliding_window == 0);
    CHECK(c.layer_moe[0] && c.layer_moe[47] && c.layer_rope[10]);
    config_free(&c);
    CHECK(load(&c, CFG "mistralai--Mixtral-8x7B-v0.1/config.json") == 0);
    CHECK(c.arch == ARCH_MIXTRAL && c.n_experts == 8 && c.n_experts_used == 2 && c.moe_intermediate_size == 14336);
    CHECK(c.norm_topk_prob && c.sliding_window == 0 && !c.layer_sliding[0] && c.layer_moe[31] && c.head_dim == 128);
    config_free(&c);
    CHECK(load(&c, CFG "HuggingFaceTB--SmolLM3-3B/config.json") == 0);
    CHECK(c.arch == ARCH_SMOLLM3 && c.tie_word_embeddings && c.rope_theta == 5000000.0 && c.n_experts == 0);
    for (int i = 0; i < 36; i++) CHECKF(c.layer_rope[i] == ((i + 1) % 4 != 0), "layer %d", i);
    CHECK(!c.layer_moe[0] && c.sliding_window == 0);
    config_free(&c);

    forge_error err;
    /* SmolLM3 without the list: derived from the interval; with a window on the NoPE layers */
    CHECK(parse_str(&c, "{\"model_type\":\"smollm3\",\"hidden_size\":64,\"intermediate_size\":128,"
                        "\"num_hidden_layers\":6,\"num_attention_heads\":4,\"no_rope_layer_interval\":3,"
                        "\"use_sliding_window\":true,\"sliding_window\":16}", &err) == 0);
    CHECK(c.layer_rope[0] && c.layer_rope[1] && !c.layer_rope[2] && !c.layer_rope[5] && c.rope_theta == 2000000.0);
    CHECK(c.sliding_window == 16 && c.layer_sliding[2] && !c.layer_sliding[0]);
    config_free(&c);
    /* Qwen3-MoE: decoder_sparse_step and mlp_only_layers */
    CHECK(parse_str(&c, "{\"model_type\":\"qwen3_moe\",\"hidden_size\":64,\"intermediate_size\":128,"
                        "\"num_hidden_layers\":6,\"num_attention_heads\":4,\"num_experts\":4,"
                        "\"num_experts_per_tok\":2,\"decoder_sparse_step\":2,\"mlp_only_layers\":[3]}", &err) == 0);
    CHECK(!c.layer_moe[0] && c.layer_moe[1] && !c.layer_moe[2] && !c.layer_moe[3] && c.layer_moe[5]);
    CHECK(!c.norm_topk_prob && c.head_dim == 16);
    config_free(&c);
    /* unsupported values are named */
    CHECK(parse_str(&c, "{\"model_type\":\"qwen3_moe\",\"hidden_size\":64,\"intermediate_size\":128,"
                        "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_experts\":4,"
                        "\"num_experts_per_tok\":5}", &err) != 0);
    CHECK(strstr(err.msg, "num_experts_per_tok") != NULL);
    config_free(&c);
    CHECK(parse_str(&c, "{\"model_type\":\"smollm3\",\"hidden_size\":64,\"intermediate_size\":128,"
                        "\"num_hidden_layers\":4,\"num_attention_heads\":4,\"no_rope_layers\":[1,0]}", &err) != 0);
    CHECK(strstr(err.msg, "no_rope_layers") != NULL);
    config_free(&c);
}

TEST(gemma_details) {
    model_config c;
    CHECK(load(&c, CFG "google--gemma-2-2b-it/config.json") == 0);
    CHECK(c.arch == ARCH_GEMMA2 && c.act == ACT_GELU_TANH && c.gemma_norms && c.tie_word_embeddings);
    CHECK(c.attn_softcap == 50.0f && c.final_softcap == 30.0f && c.head_dim == 256 && c.sliding_window == 4096);
    CHECK(c.layer_sliding[0] && !c.layer_sliding[1] && c.layer_sliding[24] && !c.layer_sliding[25]);
    CHECK(fabs(c.attn_scale - 1.0 / 16) < 1e-15 && c.embed_scale == (float)sqrt(2304.0) && c.rope_local_theta == 0);
    config_free(&c);
    CHECK(load(&c, CFG "google--gemma-3-1b-it/config.json") == 0);
    CHECK(c.arch == ARCH_GEMMA3 && c.qk_norm && c.attn_softcap == 0 && c.final_softcap == 0 && c.sliding_window == 512);
    for (int i = 0; i < 26; i++) CHECKF(c.layer_sliding[i] == ((i + 1) % 6 != 0), "layer %d", i);
    CHECK(c.rope_local_theta == 10000.0 && c.rope_theta == 1000000.0 && c.n_kv_heads == 1);
    /* sqrt(1152) = 33.941..., rounded to bf16 as HF's normalizer is: 34.0 */
    CHECK(c.embed_scale == 34.0f);
    config_free(&c);
    forge_error err;
    CHECK(parse_str(&c, "{\"model_type\":\"gemma2\",\"hidden_size\":64,\"intermediate_size\":128,"
                        "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"hidden_activation\":\"gelu\"}", &err) != 0);
    CHECK(strstr(err.msg, "hidden_activation") != NULL);
    config_free(&c);
}

TEST(phi3_details) {
    model_config c;
    CHECK(load(&c, CFG "microsoft--Phi-4-mini-instruct/config.json") == 0);
    CHECK(c.arch == ARCH_PHI3 && c.fused_qkv_gate_up && c.head_dim == 128 && c.rope_dim == 96 && c.tie_word_embeddings);
    CHECK(c.rope_type == ROPE_LONGROPE && c.rope_original_max_pos == 4096 && c.sliding_window == 262144);
    /* sqrt(1 + ln(131072 / 4096) / ln(4096)) */
    CHECK(fabs(c.rope_attn_factor - sqrt(1 + log(32.0) / log(4096.0))) < 1e-12);
    double inv[48], lng[48];
    config_rope_inv_freq(&c, inv);
    config_rope_long_inv_freq(&c, lng);
    CHECK(inv[0] == 1.0 && fabs(inv[47] - pow(10000.0, -94.0 / 96)) < 1e-18);
    CHECK(fabs(lng[47] - pow(10000.0, -94.0 / 96) / 47.77) < 1e-18 && lng[0] == 1.0);
    config_free(&c);
    forge_error err;
    /* factors of the wrong length, partial rotary outside phi3 */
    CHECK(parse_str(&c, "{\"model_type\":\"phi3\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
                        "\"num_attention_heads\":2,\"partial_rotary_factor\":0.5,\"rope_scaling\":{\"type\":\"longrope\","
                        "\"short_factor\":[1,1],\"long_factor\":[1,1]}}", &err) != 0);
    CHECK(strstr(err.msg, "short_factor") != NULL);
    config_free(&c);
    CHECK(parse_str(&c, "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
                        "\"num_attention_heads\":2,\"partial_rotary_factor\":0.5}", &err) != 0);
    CHECK(strstr(err.msg, "partial_rotary_factor") != NULL);
    config_free(&c);
}

TEST(family_details) {
    model_config c;
    CHECK(load(&c, CFG "HuggingFaceTB--SmolLM2-135M/config.json") == 0);
    CHECK(c.arch == ARCH_LLAMA && c.hidden_size == 576 && c.n_kv_heads == 3 && c.head_dim == 64);
    CHECK(c.tie_word_embeddings && !c.q_bias && !c.mlp_bias && c.sliding_window == 0);
    CHECK(c.torch_dtype == FORGE_DTYPE_BF16 && c.vocab_size == 49152);
    config_free(&c);

    CHECK(load(&c, CFG "Qwen--Qwen2.5-0.5B-Instruct/config.json") == 0);
    CHECK(c.arch == ARCH_QWEN2 && c.q_bias && c.k_bias && c.v_bias && !c.o_bias && !c.qk_norm);
    CHECK(c.sliding_window == 0 && !c.layer_sliding[23]); /* use_sliding_window is false */
    CHECK(c.n_eos == 1 && c.eos_ids[0] == 151645 && c.rope_theta == 1000000.0);
    config_free(&c);

    CHECK(load(&c, CFG "Qwen--Qwen3-0.6B/config.json") == 0);
    CHECK(c.arch == ARCH_QWEN3 && c.qk_norm && c.head_dim == 128 && c.hidden_size == 1024 && !c.q_bias);
    config_free(&c);

    CHECK(load(&c, CFG "mistralai--Mistral-7B-v0.1/config.json") == 0);
    CHECK(c.arch == ARCH_MISTRAL && c.sliding_window == 4096 && c.layer_sliding[0] && c.layer_sliding[31]);
    config_free(&c);
    CHECK(load(&c, CFG "mistralai--Mistral-7B-Instruct-v0.2/config.json") == 0);
    CHECK(c.sliding_window == 0 && !c.layer_sliding[0]);
    config_free(&c);

    CHECK(load(&c, CFG "meta-llama--Llama-3.2-1B/config.json") == 0);
    CHECK(c.rope_type == ROPE_LLAMA3 && c.rope_factor == 32.0 && c.rope_original_max_pos == 8192);
    CHECK(c.n_eos == 1 && c.bos_token_id == 128000);
    double inv[32];
    config_rope_inv_freq(&c, inv);
    const struct { int i; double v; } want[] = {{0, 1.0}, {5, 0.12868737343265052}, {10, 0.016560440080994446},
                                                {12, 0.0072926647372171085}, {13, 0.004839421345719893},
                                                {14, 0.0032114459947525913}, {15, 0.001290547928209264},
                                                {20, 8.570255489881478e-06}, {31, 9.418306725434909e-08}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        CHECKF(fabs(inv[want[k].i] - want[k].v) <= 1e-12 * want[k].v, "inv_freq[%d] = %.17g, want %.17g", want[k].i,
               inv[want[k].i], want[k].v);
    config_free(&c);
    CHECK(load(&c, CFG "meta-llama--Llama-3.2-1B-Instruct/config.json") == 0);
    CHECK(c.n_eos == 3 && c.eos_ids[0] == 128001 && c.eos_ids[2] == 128009);
    config_free(&c);
}

TEST(windows_per_layer) {
    model_config c;
    forge_error err;
    const char *q = "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":4,"
                    "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"use_sliding_window\":true,"
                    "\"sliding_window\":8,\"max_window_layers\":2}";
    CHECK(parse_str(&c, q, &err) == 0);
    CHECK(c.sliding_window == 8 && !c.layer_sliding[0] && !c.layer_sliding[1] && c.layer_sliding[2] && c.layer_sliding[3]);
    config_free(&c);
    const char *lt = "{\"model_type\":\"qwen3\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":3,"
                     "\"num_attention_heads\":4,\"head_dim\":16,\"use_sliding_window\":true,\"sliding_window\":8,"
                     "\"layer_types\":[\"sliding_attention\",\"full_attention\",\"sliding_attention\"]}";
    CHECK(parse_str(&c, lt, &err) == 0);
    CHECK(c.layer_sliding[0] && !c.layer_sliding[1] && c.layer_sliding[2] && c.head_dim == 16);
    config_free(&c);
    /* mistral without the key: MistralConfig's default window 4096 */
    CHECK(parse_str(&c, "{\"model_type\":\"mistral\",\"hidden_size\":64,\"intermediate_size\":128,"
                        "\"num_hidden_layers\":1,\"num_attention_heads\":4}", &err) == 0);
    CHECK(c.sliding_window == 4096);
    config_free(&c);
}

TEST(rope_scaling_forms) {
    model_config c;
    forge_error err;
    const char *base = "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":4,\"rope_scaling\":%s,\"dtype\":\"float16\"}";
    char buf[512];
    snprintf(buf, sizeof buf, base, "{\"type\":\"linear\",\"factor\":2.0}");
    CHECK(parse_str(&c, buf, &err) == 0 && c.rope_type == ROPE_LINEAR && c.torch_dtype == FORGE_DTYPE_F16);
    double inv[8];
    config_rope_inv_freq(&c, inv);
    CHECK(inv[0] == 0.5);
    config_free(&c);
    snprintf(buf, sizeof buf, base, "{\"rope_type\":\"yarn\",\"factor\":4.0}");
    CHECK(parse_str(&c, buf, &err) == FORGE_E_UNSUPPORTED && strstr(err.msg, "yarn"));
    config_free(&c);
    snprintf(buf, sizeof buf, base, "{\"type\":\"dynamic\",\"factor\":4.0}");
    CHECK(parse_str(&c, buf, &err) == FORGE_E_UNSUPPORTED && strstr(err.msg, "dynamic"));
    config_free(&c);
    snprintf(buf, sizeof buf, base, "{\"factor\":4.0}");
    CHECK(parse_str(&c, buf, &err) == FORGE_E_FORMAT && strstr(err.msg, "rope_type"));
    config_free(&c);
}

TEST(errors_name_the_field) {
    model_config c;
    forge_error err;
    struct { const char *json; forge_status st; const char *want; } cases[] = {
        {"{\"model_type\":\"gpt2\"}", FORGE_E_UNSUPPORTED, "gpt2"},
        {"{\"hidden_size\":64}", FORGE_E_FORMAT, "model_type"},
        {"[1]", FORGE_E_FORMAT, "object"},
        {"{\"model_type\":\"llama\",\"hidden_size\":\"64\"}", FORGE_E_FORMAT, "hidden_size"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":6,\"num_key_value_heads\":4}", FORGE_E_FORMAT, "multiple"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":0,"
         "\"num_attention_heads\":4}", FORGE_E_FORMAT, "positive"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":4,\"hidden_act\":\"gelu\"}", FORGE_E_UNSUPPORTED, "gelu"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":4,\"torch_dtype\":\"int8\"}", FORGE_E_UNSUPPORTED, "int8"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":4,\"eos_token_id\":\"x\"}", FORGE_E_FORMAT, "eos_token_id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        forge_status st = parse_str(&c, cases[i].json, &err);
        CHECKF(st == cases[i].st && strstr(err.msg, cases[i].want), "case %zu: %d %s", i, st, err.msg);
        config_free(&c);
    }
    /* malformed JSON in a file: the path and byte offset are named */
    char path[] = "/tmp/forge-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("{\"model_type\": \"llama\",,}", f);
    fclose(f);
    CHECK(config_load(&c, path, &err) != 0 && strstr(err.msg, path) && strstr(err.msg, "byte"));
    remove(path);
}

int main(void) {
    RUN(all_real_configs_parse);
    RUN(moe_and_nope_details);
    RUN(gemma_details);
    RUN(phi3_details);
    RUN(family_details);
    RUN(windows_per_layer);
    RUN(rope_scaling_forms);
    RUN(errors_name_the_field);
    return t_summary();
}
