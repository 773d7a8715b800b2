/* Model loading: a tiny model written here loads from one file, from shards, and with
 * unaligned tensor data (same logits); every kind of broken file gives a clear error that
 * names the file and tensor, and nothing crashes (this suite also runs under ASan). */
#include <sys/stat.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "forge.h"
#include "kernels/kernels.h"
#include "test.h"

enum { H = 16, I = 32, V = 32, HD = 8, NH = 2, NKV = 1 };

typedef struct {
    char name[96];
    int rows, cols; /* cols 0: a vector */
    uint16_t *data; /* bf16 */
} tensor;

static tensor g_t[16];
static int g_n;
static char g_dir[64];

static void add(const char *name, int rows, int cols, float scale, float bias) {
    tensor *t = &g_t[g_n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    size_t n = (size_t)rows * (cols ? cols : 1);
    t->data = malloc(n * 2);
    for (size_t i = 0; i < n; i++) t->data[i] = f32_to_bf16(bias + scale * t_randf());
}

static void make_tensors(void) {
    add("model.embed_tokens.weight", V, H, 1.0f, 0);
    add("model.layers.0.self_attn.q_proj.weight", NH * HD, H, 0.3f, 0);
    add("model.layers.0.self_attn.k_proj.weight", NKV * HD, H, 0.3f, 0);
    add("model.layers.0.self_attn.v_proj.weight", NKV * HD, H, 0.3f, 0);
    add("model.layers.0.self_attn.o_proj.weight", H, NH * HD, 0.3f, 0);
    add("model.layers.0.mlp.gate_proj.weight", I, H, 0.3f, 0);
    add("model.layers.0.mlp.up_proj.weight", I, H, 0.3f, 0);
    add("model.layers.0.mlp.down_proj.weight", H, I, 0.3f, 0);
    add("model.layers.0.input_layernorm.weight", H, 0, 0.1f, 1);
    add("model.layers.0.post_attention_layernorm.weight", H, 0, 0.1f, 1);
    add("model.norm.weight", H, 0, 0.1f, 1);
}

/* Mutations of one tensor's header entry or of the file. */
typedef struct {
    const char *tensor;   /* which entry to change (NULL: none) */
    const char *dtype;    /* replaces "BF16" */
    const char *shape;    /* replaces the shape list */
    long off_delta;       /* added to the end offset */
    long begin_delta;     /* added to the begin offset */
    int skip;             /* leave the tensor out */
    int misalign;         /* pad the header so data starts at an odd offset */
    long truncate;        /* cut this many bytes off the end */
    long hlen_delta;      /* lie about the header length */
} mutation;

static void write_st(const char *path, int first, int last, const mutation *mu) {
    strbuf h = STRBUF_INIT;
    sb_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = first; i < last; i++) {
        tensor *t = &g_t[i];
        int hit = mu && mu->tensor && !strcmp(mu->tensor, t->name);
        if (hit && mu->skip) continue;
        size_t bytes = (size_t)t->rows * (t->cols ? t->cols : 1) * 2;
        char shape[64];
        if (t->cols) snprintf(shape, sizeof shape, "[%d,%d]", t->rows, t->cols);
        else snprintf(shape, sizeof shape, "[%d]", t->rows);
        sb_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%ld,%ld]}", t->name,
                  hit && mu->dtype ? mu->dtype : "BF16", hit && mu->shape ? mu->shape : shape,
                  (long)off + (hit ? mu->begin_delta : 0), (long)(off + bytes) + (hit ? mu->off_delta : 0));
        off += bytes;
    }
    sb_putc(&h, '}');
    /* safetensors pads the header with spaces to a multiple of 8; misalign on purpose */
    while (h.len % 8 != (mu && mu->misalign ? 1 : 0)) sb_putc(&h, ' ');
    FILE *f = fopen(path, "wb");
    uint64_t hl = h.len + (mu ? (uint64_t)mu->hlen_delta : 0);
    fwrite(&hl, 8, 1, f);
    fwrite(h.data, 1, h.len, f);
    size_t total = 8 + h.len;
    for (int i = first; i < last; i++) {
        if (mu && mu->tensor && mu->skip && !strcmp(mu->tensor, g_t[i].name)) continue;
        size_t bytes = (size_t)g_t[i].rows * (g_t[i].cols ? g_t[i].cols : 1) * 2;
        fwrite(g_t[i].data, 1, bytes, f);
        total += bytes;
    }
    fclose(f);
    if (mu && mu->truncate) CHECK(truncate(path, (off_t)(total - (size_t)mu->truncate)) == 0);
    sb_free(&h);
}

static void write_config(const char *extra) {
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"model_type\":\"llama\",\"hidden_size\":%d,\"intermediate_size\":%d,\"num_hidden_layers\":1,"
               "\"num_attention_heads\":%d,\"num_key_value_heads\":%d,\"vocab_size\":%d,\"tie_word_embeddings\":true,"
               "\"max_position_embeddings\":64,\"torch_dtype\":\"bfloat16\"%s}",
            H, I, NH, NKV, V, extra ? extra : "");
    fclose(f);
}

static void clean_dir(void) {
    const char *files[] = {"config.json", "model.safetensors", "model.safetensors.index.json", "a.safetensors", "b.safetensors"};
    char path[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, files[i]);
        unlink(path);
    }
}

/* Loads the folder and returns the logits of a 5-token prompt (NULL on error, with msg). */
static float *run(char *msg) {
    forge_error err = {0};
    forge_model *m = forge_model_open(g_dir, NULL, &err);
    if (!m) {
        snprintf(msg, 1024, "%s", err.msg);
        return NULL;
    }
    forge_context *ctx = forge_context_create(m, &(forge_context_params){.n_kv_blocks = 4, .max_batch_tokens = 8, .max_logit_rows = 1}, &err);
    int32_t table[4] = {0, 1, 2, 3}, nb[1] = {4}, toks[5] = {3, 7, 1, 30, 9}, pos[5] = {0, 1, 2, 3, 4}, seq[5] = {0}, row[1] = {4};
    const int32_t *tp[1] = {table};
    forge_batch b = {.n_tokens = 5, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1, .block_tables = tp,
                     .n_blocks = nb, .n_logits = 1, .logit_rows = row};
    float *out = NULL;
    if (ctx && forge_context_decode(ctx, &b, &err) == FORGE_OK) {
        out = malloc(V * sizeof(float));
        memcpy(out, forge_context_logits(ctx, 0), V * sizeof(float));
    } else {
        snprintf(msg, 1024, "%s", err.msg);
    }
    forge_context_free(ctx);
    forge_model_close(m);
    return out;
}

static float *g_ref;

TEST(loads_single_unaligned_and_sharded) {
    char msg[1024] = "", path[160];
    write_config(NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    write_st(path, 0, g_n, NULL);
    g_ref = run(msg);
    CHECKF(g_ref, "%s", msg);
    if (!g_ref) return;
    /* data at odd offsets: same logits */
    write_st(path, 0, g_n, &(mutation){.misalign = 1});
    float *got = run(msg);
    CHECKF(got && !memcmp(got, g_ref, V * sizeof(float)), "unaligned: %s", msg);
    free(got);
    /* sharded */
    unlink(path);
    char a[160], b[160];
    snprintf(a, sizeof a, "%s/a.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/b.safetensors", g_dir);
    write_st(a, 0, 5, NULL);
    write_st(b, 5, g_n, NULL);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", g_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"metadata\":{},\"weight_map\":{");
    for (int i = 0; i < g_n; i++) fprintf(f, "%s\"%s\":\"%s\"", i ? "," : "", g_t[i].name, i < 5 ? "a.safetensors" : "b.safetensors");
    fprintf(f, "}}");
    fclose(f);
    got = run(msg);
    CHECKF(got && !memcmp(got, g_ref, V * sizeof(float)), "sharded: %s", msg);
    free(got);
    /* an index that names a shard that is not there */
    f = fopen(path, "w");
    fprintf(f, "{\"weight_map\":{\"model.norm.weight\":\"c.safetensors\"}}");
    fclose(f);
    got = run(msg);
    CHECKF(!got && strstr(msg, "c.safetensors"), "%s", msg);
    free(got);
    /* an index that puts a tensor in the wrong shard */
    f = fopen(path, "w");
    fprintf(f, "{\"weight_map\":{\"model.norm.weight\":\"a.safetensors\",\"model.embed_tokens.weight\":\"b.safetensors\"}}");
    fclose(f);
    got = run(msg);
    CHECKF(!got && strstr(msg, "not in"), "%s", msg);
    free(got);
    clean_dir();
}

TEST(broken_files_give_clear_errors) {
    char path[160];
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    struct { mutation mu; const char *config_extra; const char *want1, *want2; } cases[] = {
        {{.truncate = 100}, NULL, "model.safetensors", "outside"},
        {{.hlen_delta = 100000}, NULL, "header length", "exceeds"},
        {{.tensor = "model.layers.0.mlp.up_proj.weight", .off_delta = 2}, NULL, "up_proj", "bytes"},
        {{.tensor = "model.norm.weight", .begin_delta = -100000}, NULL, "model.norm.weight", "outside"},
        {{.tensor = "model.layers.0.self_attn.q_proj.weight", .shape = "[8,32]"}, NULL, "q_proj", "shape"},
        {{.tensor = "model.layers.0.self_attn.k_proj.weight", .skip = 1}, NULL, "k_proj", "missing"},
        {{.tensor = "model.norm.weight", .dtype = "Q4_K"}, NULL, "model.norm.weight", "unknown dtype"},
        {{.tensor = "model.layers.0.mlp.down_proj.weight", .dtype = "I16"}, NULL, "down_proj", "I16"},
        {{.tensor = "model.layers.0.mlp.gate_proj.weight", .shape = "[-32,16]"}, NULL, "gate_proj", "shape"},
        {{.tensor = "model.embed_tokens.weight", .shape = "[32]"}, NULL, "embed_tokens", "bytes"},
        {{0}, ",\"tie_word_embeddings\":false", "lm_head", "missing"},
        {{0}, ",\"attention_bias\":true", "q_proj.bias", "missing"},
        {{0}, ",\"num_attention_heads\":\"two\"", "config.json", "num_attention_heads"},
        {{.hlen_delta = -20}, NULL, "model.safetensors", "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[1024] = "";
        write_config(cases[i].config_extra);
        write_st(path, 0, g_n, &cases[i].mu);
        float *got = run(msg);
        CHECKF(!got && strstr(msg, cases[i].want1) && strstr(msg, cases[i].want2), "case %zu: %s", i, msg);
        free(got);
    }
    /* not a safetensors file at all, and an empty one */
    write_config(NULL);
    FILE *f = fopen(path, "w");
    fputs("hello", f);
    fclose(f);
    char msg[1024] = "";
    float *got = run(msg);
    CHECKF(!got && strstr(msg, "too short"), "%s", msg);
    free(got);
    f = fopen(path, "w");
    fclose(f);
    got = run(msg);
    CHECKF(!got && strstr(msg, "too short"), "%s", msg);
    free(got);
    /* malformed config.json */
    char cpath[160];
    snprintf(cpath, sizeof cpath, "%s/config.json", g_dir);
    f = fopen(cpath, "w");
    fputs("{\"model_type\": \"llama\", \"hidden_size\": 16", f);
    fclose(f);
    got = run(msg);
    CHECKF(!got && strstr(msg, "config.json") && strstr(msg, "byte"), "%s", msg);
    free(got);
    /* no folder / no weights */
    clean_dir();
    write_config(NULL);
    got = run(msg);
    CHECKF(!got && strstr(msg, "no model.safetensors"), "%s", msg);
    free(got);
    clean_dir();
}

/* A MoE's byte counts from its config (tests/fixtures/parity/qwen3_moe: 3 layers, layer 1
 * dense by mlp_only_layers; hidden 64, 8 experts of intermediate 48, top 3; f32):
 * expert_bytes holds every expert, weight_bytes the shared weights and a token's 3 of 8. */
TEST(moe_weight_bytes) {
    forge_error err;
    forge_model *m = forge_model_open("tests/fixtures/parity/qwen3_moe", NULL, &err);
    CHECKF(m, "%s", err.msg);
    if (!m) return;
    const forge_model_info *in = forge_model_get_info(m);
    size_t expert = 3 * 64 * 48 * 4, experts = 2 * 8 * expert;
    CHECK(in->n_experts == 8 && in->n_experts_used == 3 && in->moe_intermediate_size == 48);
    CHECK_EQ_INT((long long)in->expert_bytes, (long long)experts);
    /* shared: embeddings and lm_head 320 x 64, per layer q 64x64 (4 heads x 16), k/v 64x32,
     * o 64x64; the dense layer's MLP 3 x 64 x 128; two routers 8 x 64 */
    size_t shared = 4 * (2 * 320 * 64 + 3 * (64 * 64 * 2 + 64 * 32 * 2) + 3 * 64 * 128 + 2 * 8 * 64);
    CHECK_EQ_INT((long long)in->weight_bytes, (long long)(shared + 2 * 3 * expert));
    forge_model_close(m);
}

TEST(max_model_len) {
    char path[160], msg[1024] = "";
    write_config(NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    write_st(path, 0, g_n, NULL);
    forge_error err;
    forge_model *m = forge_model_open(g_dir, &(forge_model_params){.max_model_len = 32}, &err);
    CHECK(m && forge_model_get_info(m)->context_len == 32);
    forge_model_close(m);
    m = forge_model_open(g_dir, &(forge_model_params){.max_model_len = 65}, &err);
    CHECK(!m && strstr(err.msg, "max_position_embeddings"));
    m = forge_model_open(g_dir, NULL, &err);
    CHECK(m && forge_model_get_info(m)->context_len == 64 && forge_model_get_info(m)->dtype == FORGE_DTYPE_BF16);
    forge_model_close(m);
    (void)msg;
    clean_dir();
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/forge-load-XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    make_tensors();
    RUN(loads_single_unaligned_and_sharded);
    RUN(moe_weight_bytes);
    RUN(broken_files_give_clear_errors);
    RUN(max_model_len);
    clean_dir();
    rmdir(g_dir);
    for (int i = 0; i < g_n; i++) free(g_t[i].data);
    free(g_ref);
    return t_summary();
}
