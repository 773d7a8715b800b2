/* GGUF files of issue 18's families. Gemma 2 (llama.cpp's gemma2: norms stored as 1 + w,
 * post_attention_norm / ffn_norm / post_ffw_norm, soft-capping and window keys): the F32 file
 * written by scripts/ref/write_gguf.py gives the safetensors' logits bit for bit; so does
 * SmolLM3's (llama.cpp's smollm3).
 * Mixture-of-experts GGUF files (llama.cpp's qwen3moe: router ffn_gate_inp, 3-D expert stacks
 * ffn_{gate,up,down}_exps split into per-expert views of the mapping): the F32 file written by
 * scripts/ref/write_gguf.py gives bit-identical logits to the same weights as safetensors,
 * and on llama.cpp's own Q8_0 / Q4_0 quantizations of it (llama-quantize, so the experts are
 * quantized by llama.cpp, not by Forge) Forge's logits stay near the golden and its greedy
 * steps agree with llama.cpp's (scripts/ref/make_moe_quant_fixture.py recorded them). */
#include <math.h>
#include <stdlib.h>

#include "base/json.h"
#include "forge.h"
#include "test.h"

#define DIR "tests/fixtures/parity/qwen3_moe_norm"
enum { MAXT = 64 };

/* Logits of every position of toks (n of them) into out[n][V]; false on failure (msg). */
static bool run(const char *path, const int32_t *toks, int n, float *out, int *V, char *msg) {
    forge_error err = {0};
    forge_model *m = forge_model_open(path, NULL, &err);
    if (!m) {
        snprintf(msg, 1100, "%s", err.msg);
        return false;
    }
    *V = forge_model_get_info(m)->vocab_size;
    forge_context *ctx = forge_context_create(
        m, &(forge_context_params){.n_kv_blocks = 4, .max_batch_tokens = MAXT, .max_logit_rows = MAXT, .kv_dtype = FORGE_DTYPE_F32}, &err);
    int32_t table[4] = {2, 0, 3, 1}, nb[1] = {4}, pos[MAXT], seq[MAXT] = {0}, rows[MAXT];
    for (int i = 0; i < n; i++) pos[i] = rows[i] = i;
    const int32_t *tp[1] = {table};
    forge_batch b = {.n_tokens = n, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1, .block_tables = tp,
                     .n_blocks = nb, .n_logits = n, .logit_rows = rows};
    bool ok = ctx && forge_context_decode(ctx, &b, &err) == FORGE_OK;
    if (ok)
        for (int i = 0; i < n; i++) memcpy(out + (size_t)i * *V, forge_context_logits(ctx, i), (size_t)*V * sizeof(float));
    else
        snprintf(msg, 1100, "%s", err.msg);
    forge_context_free(ctx);
    forge_model_close(m);
    return ok;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* The folder's model.f32.gguf (written by scripts/ref/write_gguf.py) gives the folder's
 * safetensors' logits bit for bit on 40 random tokens, and reads as model_type. */
static void gguf_equals_safetensors(const char *dir, const char *model_type) {
    static float a[MAXT * 512], b[MAXT * 512];
    int32_t toks[40];
    for (int i = 0; i < 40; i++) toks[i] = (int32_t)(4 + t_rand64() % 316);
    char gguf[256], msg[1100];
    snprintf(gguf, sizeof gguf, "%s/model.f32.gguf", dir);
    int Va = 0, Vb = 0;
    CHECKF(run(gguf, toks, 40, a, &Va, msg), "%s", msg);
    CHECKF(run(dir, toks, 40, b, &Vb, msg), "%s", msg);
    CHECK(Va == 320 && Vb == 320);
    int diff = 0;
    for (int i = 0; i < 40 * 320; i++) diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    CHECKF(diff == 0, "%s: %d of %d logits differ between the GGUF and the safetensors", dir, diff, 40 * 320);
    forge_error err;
    forge_model *m = forge_model_open(gguf, NULL, &err);
    CHECKF(m, "%s", m ? "" : err.msg);
    if (m) CHECK_EQ_STR(forge_model_get_info(m)->model_type, model_type);
    forge_model_close(m);
}

TEST(gemma2_gguf_equals_safetensors) { gguf_equals_safetensors("tests/fixtures/parity/gemma2_softcap", "gemma2"); }

/* llama.cpp's smollm3 (q/k rows permuted as for llama, every 4th layer without RoPE, no key
 * for it): the F32 file of smollm3_interval (NoPE on layer 3 by no_rope_layer_interval) gives
 * the safetensors' logits bit for bit, and the model is a smollm3 */
TEST(smollm3_gguf_equals_safetensors) {
    gguf_equals_safetensors("tests/fixtures/parity/smollm3_interval", "smollm3");
}

/* llama.cpp's gemma3 (norms stored as 1 + w, q/k norms included; rope.freq_base_swa for the
 * local layers, sliding_window and sliding_window_pattern, linear scaling on the global layers):
 * gemma3_pattern6's F32 file gives the safetensors' logits bit for bit */
TEST(gemma3_gguf_equals_safetensors) {
    gguf_equals_safetensors("tests/fixtures/parity/gemma3_pattern6", "gemma3_text");
}

/* llama.cpp's phi3 (attn_qkv, ffn_up = gate_up, rope.dimension_count for the partial rotary,
 * longrope factors as F32 tensors, the attention factor as a key): the GGUF stores the factors
 * in f32 where config.json has decimals, so the logits match the float64 golden within the
 * parity tolerance rather than the safetensors' bit for bit (measured 1.3e-5 apart). */
TEST(phi3_gguf_matches_golden) {
    static float a[MAXT * 512];
    forge_error err;
    json_doc *gd = json_parse_file("tests/fixtures/parity/phi3_longrope/golden.json", 16 << 20, &err);
    CHECKF(gd, "%s", err.msg);
    if (!gd) return;
    double worst = 0;
    for (size_t si = 0; si < 3; si++) {
        const json_value *s = json_at(json_get(json_root(gd), "sequences"), si), *pids = json_get(s, "prompt_ids");
        const json_value *lg = json_get(s, "logits");
        int32_t toks[MAXT];
        int n = (int)pids->n, V = 0;
        for (int i = 0; i < n; i++) toks[i] = (int32_t)json_at(pids, (size_t)i)->u.i;
        char msg[1100];
        if (!run("tests/fixtures/parity/phi3_longrope/model.f32.gguf", toks, n, a, &V, msg)) {
            CHECKF(0, "%s", msg);
            break;
        }
        for (int t = 0; t < n; t++)
            for (int v = 0; v < V; v++) {
                double d = fabs(a[(size_t)t * V + v] - json_number(json_at(json_at(lg, (size_t)t), (size_t)v)));
                if (d > worst) worst = d;
            }
    }
    printf("    phi3 GGUF: max |logit - golden| %.3g\n", worst);
    CHECKF(worst < 5e-5, "phi3 GGUF: max |logit diff| %.3g", worst);
    json_free(gd);
}

/* llama.cpp's llama arch with experts (Mixtral): q/k rows unpermuted, experts split */
TEST(mixtral_gguf_equals_safetensors) { gguf_equals_safetensors("tests/fixtures/gguf-moe/tiny-mixtral", "mixtral"); }

TEST(f32_gguf_equals_safetensors) { gguf_equals_safetensors(DIR, "qwen3_moe"); }

/* Forge on llama.cpp's quantized files: logits near the float64 golden of the unquantized
 * weights, and greedy steps equal to llama.cpp's, teacher-forced (at each step Forge's argmax
 * over the prompt plus llama.cpp's ids so far against llama.cpp's id). */
TEST(quantized_experts_agree_with_llamacpp) {
    forge_error err;
    json_doc *d = json_parse_file(DIR "/llamacpp-quant.json", 1 << 20, &err);
    CHECKF(d, "%s", err.msg);
    if (!d) return;
    json_doc *gd = json_parse_file(DIR "/golden.json", 16 << 20, &err);
    CHECKF(gd, "%s", err.msg);
    if (!gd) {
        json_free(d);
        return;
    }
    const char *files[] = {"model.Q8_0.gguf", "model.Q4_0.gguf"};
    static float lg[MAXT * 512];
    for (int f = 0; f < 2; f++) {
        const json_value *seqs = json_get(json_get(json_root(d), "files"), files[f]);
        CHECKF(json_is(seqs, JSON_ARRAY) && seqs->n == 3, "%s: no sequences", files[f]);
        char path[256];
        snprintf(path, sizeof path, DIR "/%s", files[f]);
        int steps = 0, equal = 0;
        double worst = 0;
        for (size_t s = 0; seqs && s < seqs->n; s++) {
            const json_value *p = json_get(json_at(seqs, s), "prompt_ids"), *g = json_get(json_at(seqs, s), "greedy_ids");
            int32_t toks[MAXT];
            int n = 0;
            for (size_t i = 0; i < p->n && n < MAXT; i++) toks[n++] = (int32_t)json_at(p, i)->u.i;
            int np = n;
            for (size_t i = 0; i + 1 < g->n && n < MAXT; i++) toks[n++] = (int32_t)json_at(g, i)->u.i;
            char msg[1100];
            int V = 0;
            if (!run(path, toks, n, lg, &V, msg)) {
                CHECKF(0, "%s: %s", files[f], msg);
                continue;
            }
            /* prompt positions against the float64 golden of the unquantized weights */
            const json_value *gl = json_get(json_at(json_get(json_root(gd), "sequences"), s), "logits");
            for (int t = 0; t < np; t++)
                for (int v = 0; v < V; v++) {
                    double df = fabs(lg[(size_t)t * V + v] - json_number(json_at(json_at(gl, (size_t)t), (size_t)v)));
                    if (df > worst) worst = df;
                }
            for (size_t i = 0; i < g->n; i++, steps++) {
                const float *row = lg + (size_t)(np - 1 + (int)i) * V;
                int am = argmax(row, V), want = (int)json_at(g, i)->u.i;
                equal += am == want;
                if (am != want && getenv("DEBUG_MOE"))
                    printf("      seq %zu step %zu: forge %d (%.5f) llama.cpp %d (%.5f)\n", s, i, am, row[am], want, row[want]);
            }
        }
        printf("    %s: %d of %d greedy steps equal llama.cpp's; max |logit - f64 golden| %.3g\n", files[f], equal,
               steps, worst);
        /* quantization moves these logits (|logit| <= 1.75) by up to max_diff[f]. Forge and llama.cpp quantize the activations the
         * same way but not bit for bit: on this low-margin random model they part at a few
         * near-ties (measured 52/60 for Q8_0, 59/60 for Q4_0; the dense qwen3_qknorm model's
         * Q8_0 file gives 57/60, so it is not the experts) */
        const double max_diff[2] = {0.3, 4.0}; /* measured 0.10 and 1.8 (Q4_0 flips routing choices) */
        const int min_equal[2] = {52, 58};
        CHECKF(worst < max_diff[f], "%s: max |logit diff| %.3g to the golden", files[f], worst);
        CHECKF(equal >= min_equal[f] && steps == 60, "%s: %d of %d steps equal", files[f], equal, steps);
    }
    json_free(d);
    json_free(gd);
}

int main(void) {
    RUN(gemma2_gguf_equals_safetensors);
    RUN(smollm3_gguf_equals_safetensors);
    RUN(gemma3_gguf_equals_safetensors);
    RUN(mixtral_gguf_equals_safetensors);
    RUN(phi3_gguf_matches_golden);
    RUN(f32_gguf_equals_safetensors);
    RUN(quantized_experts_agree_with_llamacpp);
    return t_summary();
}
