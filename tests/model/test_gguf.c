/* GGUF: the reader on malformed files (each fails with a message naming what was wrong,
 * never a crash), the metadata -> config mapping, and the real stories260K GGUF (llama.cpp's
 * layout: Q/K rows permuted for its RoPE) against its HF safetensors twin: identical logits
 * over a whole prompt. */
#include <sys/stat.h>
#include <unistd.h>

#include "forge.h"
#include "model/gguf.h"
#include "model/gguf_model.h"
#include "kernels/quant.h"
#include "model/model.h"
#include "test.h"

#define GGUF_FILE "tests/fixtures/stories260K-gguf/stories260K.f32.gguf"
#define HF_DIR "tests/fixtures/stories260K"

/* ---- a small GGUF writer for hand-made files ------------------------------------------- */

typedef struct { unsigned char *p; size_t n, cap; } buf;
static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void kv_u32(buf *b, const char *k, uint32_t v) { str(b, k); u32(b, GGUF_U32); u32(b, v); }
static void kv_f32(buf *b, const char *k, float v) { str(b, k); u32(b, GGUF_F32); put(b, &v, 4); }
static void kv_str(buf *b, const char *k, const char *v) { str(b, k); u32(b, GGUF_STRING); str(b, v); }
static void tinfo(buf *b, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(b, name);
    u32(b, (uint32_t)nd);
    for (int i = 0; i < nd; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void pad(buf *b, size_t a) {
    static const unsigned char z[64];
    while (b->n % a) put(b, z, 1);
}

/* A valid tiny llama GGUF: hidden 32, 1 layer, 2 heads, vocab 8, F32 weights, tied. */
enum { TH = 32, TI = 64, TV = 8 };
typedef struct { const char *name; int rows, cols; uint32_t type; } tspec;
static const tspec g_tiny[] = {
    {"token_embd.weight", TV, TH, GGML_F32},     {"output_norm.weight", 1, TH, GGML_F32},
    {"blk.0.attn_norm.weight", 1, TH, GGML_F32}, {"blk.0.ffn_norm.weight", 1, TH, GGML_F32},
    {"blk.0.attn_q.weight", TH, TH, GGML_Q8_0},  {"blk.0.attn_k.weight", TH, TH, GGML_F32},
    {"blk.0.attn_v.weight", TH, TH, GGML_F16},   {"blk.0.attn_output.weight", TH, TH, GGML_F32},
    {"blk.0.ffn_gate.weight", TI, TH, GGML_F32}, {"blk.0.ffn_up.weight", TI, TH, GGML_F32},
    {"blk.0.ffn_down.weight", TH, TI, GGML_F32},
};
enum { NT = sizeof g_tiny / sizeof g_tiny[0] };

static size_t tbytes(const tspec *t) {
    int blk, bytes;
    ggml_type_info(t->type, &blk, &bytes);
    return (size_t)t->rows * (size_t)(t->cols / blk) * (size_t)bytes;
}

/* flags alter one thing */
enum { F_NONE = 0, F_OVERLAP = 1, F_MISALIGN = 2, F_OUTSIDE = 4, F_BIGDIM = 8, F_BADTYPE = 16, F_NO_HEADS = 32,
       F_HEADS_STR = 64, F_ARCH = 128, F_DUPKEY = 256, F_NESTED = 512, F_V1 = 1024, F_DUPTENSOR = 2048,
       F_QVEC = 4096 };

static buf make_tiny(int flags) {
    buf b = {0};
    put(&b, "GGUF", 4);
    u32(&b, flags & F_V1 ? 1 : 3);
    u64(&b, NT);
    int nkv = 8 + !!(flags & F_DUPKEY) + !!(flags & F_NESTED) - !!(flags & F_NO_HEADS);
    u64(&b, (uint64_t)nkv);
    kv_str(&b, "general.architecture", flags & F_ARCH ? "gpt2" : "llama");
    kv_u32(&b, "llama.embedding_length", TH);
    kv_u32(&b, "llama.feed_forward_length", TI);
    kv_u32(&b, "llama.block_count", 1);
    if (flags & F_HEADS_STR) kv_str(&b, "llama.attention.head_count", "two");
    else if (!(flags & F_NO_HEADS)) kv_u32(&b, "llama.attention.head_count", 2);
    kv_u32(&b, "llama.context_length", 64);
    kv_f32(&b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_u32(&b, "llama.vocab_size", TV);
    if (flags & F_DUPKEY) kv_u32(&b, "llama.block_count", 2);
    if (flags & F_NESTED) {
        str(&b, "x.nested");
        u32(&b, GGUF_ARRAY);
        u32(&b, GGUF_ARRAY);
        u64(&b, 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < NT; i++) {
        const tspec *t = &g_tiny[i];
        uint64_t ne[2] = {(uint64_t)t->cols, (uint64_t)t->rows};
        uint64_t o = off;
        uint32_t type = t->type;
        if ((flags & F_OVERLAP) && i == 5) o -= 32;
        if ((flags & F_MISALIGN) && i == 5) o += 4;
        if ((flags & F_OUTSIDE) && i == NT - 1) o += 1 << 20;
        if ((flags & F_BIGDIM) && i == 4) ne[1] = (uint64_t)1 << 62;
        if ((flags & F_BADTYPE) && i == 4) type = 99;
        if ((flags & F_QVEC) && i == 2) type = GGML_Q8_0;
        const char *name = (flags & F_DUPTENSOR) && i == 3 ? g_tiny[2].name : t->name;
        tinfo(&b, name, t->rows == 1 ? 1 : 2, ne, type, o);
        tspec ts = *t;
        ts.type = type == 99 ? t->type : type;
        off += (tbytes(&ts) + 31) / 32 * 32;
    }
    pad(&b, 32);
    size_t data = b.n;
    unsigned char *z = calloc(1, off);
    put(&b, z, off);
    free(z);
    /* plausible values: norms 1, small weights; Q8_0 scale 1/64 */
    float one = 1.0f;
    off = 0;
    for (int i = 0; i < NT; i++) {
        const tspec *t = &g_tiny[i];
        unsigned char *p = b.p + data + off;
        if (t->type == GGML_F32)
            for (int k = 0; k < t->rows * t->cols; k++) {
                float v = t->rows == 1 ? one : t_randf() * 0.2f;
                memcpy(p + 4 * k, &v, 4);
            }
        off += (tbytes(t) + 31) / 32 * 32;
    }
    return b;
}

static forge_status parse(const buf *b, char *msg) {
    gguf_file g;
    forge_error err = {0};
    forge_status st = gguf_parse(&g, b->p, b->n, "t.gguf", &err);
    if (st == FORGE_OK) {
        gguf_model gm = {.file = g};
        model_config cfg;
        st_set s;
        memset(&cfg, 0, sizeof cfg);
        st = gguf_model_describe(&gm, &cfg, &s, &err);
        st_close(&s);
        config_free(&cfg);
        for (int i = 0; i < gm.n_names; i++) free(gm.names[i]);
        free(gm.names);
        g = gm.file;
    }
    gguf_close(&g);
    snprintf(msg, 1100, "%s", st ? err.msg : "");
    return st;
}

TEST(tiny_file_parses) {
    buf b = make_tiny(F_NONE);
    char msg[1100];
    CHECKF(parse(&b, msg) == FORGE_OK, "%s", msg);
    gguf_file g;
    forge_error err;
    CHECK(gguf_parse(&g, b.p, b.n, "t", &err) == FORGE_OK);
    CHECK_EQ_INT(g.n_tensors, NT);
    const gguf_tensor *t = gguf_find_tensor(&g, "blk.0.attn_q.weight");
    CHECK(t && t->type == GGML_Q8_0 && t->nbytes == (size_t)TH * (TH / 32) * 34 && t->ne[0] == TH);
    int64_t v = 0;
    CHECK(gguf_get_int(&g, "llama.block_count", &v, &err) == FORGE_OK && v == 1);
    CHECK(gguf_get_int(&g, "no.such.key", &v, &err) == FORGE_E_NOT_FOUND);
    gguf_str s;
    CHECK(gguf_get_int(&g, "general.architecture", &v, &err) == FORGE_E_FORMAT);
    CHECK(strstr(err.msg, "general.architecture") != NULL);
    CHECK(gguf_get_str(&g, "general.architecture", &s, &err) == FORGE_OK && s.len == 5 && !memcmp(s.s, "llama", 5));
    gguf_close(&g);
    free(b.p);
}

/* every strict prefix of a valid file fails cleanly */
TEST(truncated_everywhere) {
    buf b = make_tiny(F_NONE);
    char msg[1100];
    int bad = 0;
    for (size_t n = 0; n < b.n; n += (n < 2048 ? 1 : 97)) {
        buf c = {b.p, n, n};
        if (parse(&c, msg) == FORGE_OK) bad++;
    }
    CHECKF(bad == 0, "%d truncated prefixes parsed", bad);
    free(b.p);
}

static void expect_error(int flags, const char *want) {
    buf b = make_tiny(flags);
    char msg[1100];
    forge_status st = parse(&b, msg);
    CHECKF(st != FORGE_OK && strstr(msg, want), "flags %d: want an error naming \"%s\", got \"%s\"", flags, want, msg);
    free(b.p);
}

TEST(malformed_files_name_the_problem) {
    expect_error(F_OVERLAP, "overlap");
    expect_error(F_MISALIGN, "blk.0.attn_k.weight");
    expect_error(F_OUTSIDE, "blk.0.ffn_down.weight");
    expect_error(F_BIGDIM, "blk.0.attn_q.weight");
    expect_error(F_BADTYPE, "unknown ggml type 99");
    expect_error(F_NO_HEADS, "llama.attention.head_count");
    expect_error(F_HEADS_STR, "llama.attention.head_count");
    expect_error(F_ARCH, "gpt2");
    expect_error(F_DUPKEY, "llama.block_count");
    expect_error(F_NESTED, "x.nested");
    expect_error(F_V1, "version 1");
    expect_error(F_DUPTENSOR, "appears twice");
    /* bad magic, absurd counts */
    buf b = make_tiny(F_NONE);
    char msg[1100];
    b.p[0] = 'X';
    CHECK(parse(&b, msg) == FORGE_E_FORMAT && strstr(msg, "magic"));
    b.p[0] = 'G';
    uint64_t huge = (uint64_t)1 << 60;
    memcpy(b.p + 8, &huge, 8);
    CHECK(parse(&b, msg) == FORGE_E_FORMAT && strstr(msg, "tensor count"));
    memcpy(b.p + 16, &huge, 8);
    huge = NT;
    memcpy(b.p + 8, &huge, 8);
    CHECK(parse(&b, msg) == FORGE_E_FORMAT && strstr(msg, "metadata count"));
    free(b.p);
}

/* a string length that points past the end, and random byte flips: errors, never crashes */
TEST(corrupted_bytes) {
    buf b = make_tiny(F_NONE);
    char msg[1100];
    size_t at = 24; /* the first key's length */
    uint64_t big = (uint64_t)-1 - 5;
    unsigned char save[8];
    memcpy(save, b.p + at, 8);
    memcpy(b.p + at, &big, 8);
    CHECK(parse(&b, msg) == FORGE_E_FORMAT);
    memcpy(b.p + at, save, 8);
    size_t hdr = 0;
    {
        gguf_file g;
        forge_error err;
        CHECK(gguf_parse(&g, b.p, b.n, "t", &err) == FORGE_OK);
        hdr = g.data_offset;
        gguf_close(&g);
    }
    for (int i = 0; i < 3000; i++) {
        size_t pos = (size_t)(t_rand64() % hdr);
        unsigned char old = b.p[pos];
        b.p[pos] ^= (unsigned char)(1u << (t_rand64() % 8));
        (void)parse(&b, msg); /* any status; the sanitizers watch */
        b.p[pos] = old;
    }
    free(b.p);
}

/* a quantized vector (norm) is refused naming the tensor */
TEST(quantized_norm_refused) {
    buf b = make_tiny(F_QVEC);
    /* the whole model: write it to a file and open it */
    char path[] = "/tmp/forge-gguf-XXXXXX";
    CHECK(mkdtemp(path) != NULL);
    char file[256];
    snprintf(file, sizeof file, "%s/m.gguf", path);
    FILE *f = fopen(file, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    forge_error err = {0};
    forge_model *m = forge_model_open(file, NULL, &err);
    CHECKF(!m && strstr(err.msg, "input_layernorm") && strstr(err.msg, "Q8_0"), "%s", err.msg);
    forge_model_close(m);
    free(b.p);
    /* a valid tiny model opens by file and by folder; two GGUFs in a folder are ambiguous */
    b = make_tiny(F_NONE);
    f = fopen(file, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    m = forge_model_open(file, NULL, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (m) {
        const forge_model_info *in = forge_model_get_info(m);
        CHECK_EQ_INT(in->n_layers, 1);
        CHECK_EQ_INT(in->hidden_size, TH);
        CHECK_EQ_INT(in->vocab_size, TV);
        CHECK_EQ_INT(in->n_kv_heads, 2);
    }
    forge_model_close(m);
    m = forge_model_open(path, NULL, &err);
    CHECKF(m != NULL, "%s", err.msg);
    forge_model_close(m);
    char file2[256];
    snprintf(file2, sizeof file2, "%s/n.gguf", path);
    f = fopen(file2, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    m = forge_model_open(path, NULL, &err);
    CHECKF(!m && strstr(err.msg, "m.gguf") && strstr(err.msg, "n.gguf"), "%s", err.msg);
    unlink(file);
    unlink(file2);
    rmdir(path);
    free(b.p);
}

/* ---- the real stories260K --------------------------------------------------------------- */

static float *logits_of(const char *path, int n, const int32_t *toks, char *msg) {
    forge_error err = {0};
    forge_model *m = forge_model_open(path, NULL, &err);
    if (!m) {
        snprintf(msg, 1100, "%s", err.msg);
        return NULL;
    }
    int V = forge_model_get_info(m)->vocab_size;
    forge_context *ctx = forge_context_create(
        m, &(forge_context_params){.n_kv_blocks = 8, .max_batch_tokens = 64, .max_logit_rows = 64}, &err);
    int32_t table[8] = {0, 1, 2, 3, 4, 5, 6, 7}, nb[1] = {8}, pos[64], seq[64] = {0}, rows[64];
    for (int i = 0; i < n; i++) pos[i] = rows[i] = i;
    const int32_t *tp[1] = {table};
    forge_batch b = {.n_tokens = n, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1, .block_tables = tp,
                     .n_blocks = nb, .n_logits = n, .logit_rows = rows};
    float *out = NULL;
    if (ctx && forge_context_decode(ctx, &b, &err) == FORGE_OK) {
        out = malloc((size_t)n * V * sizeof(float));
        for (int i = 0; i < n; i++) memcpy(out + (size_t)i * V, forge_context_logits(ctx, i), V * sizeof(float));
    } else {
        snprintf(msg, 1100, "%s", err.msg);
    }
    forge_context_free(ctx);
    forge_model_close(m);
    return out;
}

TEST(stories260k_gguf_equals_safetensors) {
    int32_t toks[40] = {1, 403, 407, 261, 378};
    for (int i = 5; i < 40; i++) toks[i] = (int32_t)(t_rand64() % 512);
    char msg[1100];
    float *a = logits_of(GGUF_FILE, 40, toks, msg);
    CHECKF(a != NULL, "%s", msg);
    float *b = logits_of(HF_DIR, 40, toks, msg);
    CHECKF(b != NULL, "%s", msg);
    if (a && b) {
        int diff = 0;
        for (int i = 0; i < 40 * 512; i++) diff += a[i] != b[i];
        CHECKF(diff == 0, "%d of %d logits differ", diff, 40 * 512);
    }
    free(a);
    free(b);
    /* the config from the metadata */
    forge_error err;
    forge_model *m = forge_model_open(GGUF_FILE, NULL, &err);
    CHECKF(m != NULL, "%s", m ? "" : err.msg);
    if (m) {
        const forge_model_info *in = forge_model_get_info(m);
        CHECK_EQ_STR(in->model_type, "llama");
        CHECK_EQ_INT(in->n_layers, 5);
        CHECK_EQ_INT(in->n_heads, 8);
        CHECK_EQ_INT(in->n_kv_heads, 4);
        CHECK_EQ_INT(in->vocab_size, 512);
        CHECK_EQ_INT(in->bos_token_id, 1);
    }
    forge_model_close(m);
}

/* llama-gguf-split's shards of the Q8_0 file (tests/fixtures/gguf-split, see its README):
 * the same logits as the whole file, from the first shard or the folder; a shard missing,
 * a later shard named, or shards of another split are errors naming the problem. */
#define SPLIT_DIR "tests/fixtures/gguf-split"
#define SPLIT_1 SPLIT_DIR "/stories260K-Q8_0-00001-of-00003.gguf"
TEST(split_gguf) {
    int32_t toks[24] = {1, 403, 407, 261, 378};
    for (int i = 5; i < 24; i++) toks[i] = (int32_t)(t_rand64() % 512);
    char msg[1100];
    float *a = logits_of("tests/fixtures/stories260K-gguf/stories260K.Q8_0.gguf", 24, toks, msg);
    CHECKF(a != NULL, "%s", msg);
    float *b = logits_of(SPLIT_1, 24, toks, msg);
    CHECKF(b != NULL, "%s", msg);
    float *c = logits_of(SPLIT_DIR, 24, toks, msg);
    CHECKF(c != NULL, "%s", msg);
    if (a && b && c) {
        CHECK(!memcmp(a, b, sizeof(float) * 24 * 512));
        CHECK(!memcmp(a, c, sizeof(float) * 24 * 512));
    }
    free(a);
    free(b);
    free(c);
    forge_error err;
    forge_model *m = forge_model_open(SPLIT_DIR "/stories260K-Q8_0-00002-of-00003.gguf", NULL, &err);
    CHECK(m == NULL);
    if (!m) CHECKF(strstr(err.msg, "shard 2 of a GGUF split in 3") && strstr(err.msg, "-00001-of-00003.gguf"), "%s", err.msg);
    forge_model_close(m);
    /* a copy without shard 2 */
    char dir[] = "/tmp/forge-split-XXXXXX", p1[128], p3[128], cmd[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(p1, sizeof p1, "%s/stories260K-Q8_0-00001-of-00003.gguf", dir);
    snprintf(p3, sizeof p3, "%s/stories260K-Q8_0-00003-of-00003.gguf", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s && cp %s/stories260K-Q8_0-00003-of-00003.gguf %s", SPLIT_1, p1, SPLIT_DIR, p3);
    CHECK(system(cmd) == 0);
    m = forge_model_open(p1, NULL, &err);
    CHECK(m == NULL);
    if (!m) CHECKF(strstr(err.msg, "shard 2 of 3") && strstr(err.msg, "00002-of-00003"), "%s", err.msg);
    forge_model_close(m);
    /* shard 3 of another split in its place: split.no says 2, not 1 */
    snprintf(cmd, sizeof cmd, "cp %s/stories260K-Q8_0-00003-of-00003.gguf %s/stories260K-Q8_0-00002-of-00003.gguf",
             SPLIT_DIR, dir);
    CHECK(system(cmd) == 0);
    m = forge_model_open(p1, NULL, &err);
    CHECK(m == NULL);
    if (!m) CHECKF(strstr(err.msg, "split.no 2") != NULL, "%s", err.msg);
    forge_model_close(m);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* every prefix of the real file's header fails cleanly */
TEST(stories260k_truncated) {
    FILE *f = fopen(GGUF_FILE, "rb");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n);
    CHECK(fread(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    gguf_file g;
    forge_error err;
    CHECK(gguf_parse(&g, p, (size_t)n, "s", &err) == FORGE_OK);
    size_t hdr = g.data_offset;
    gguf_close(&g);
    int bad = 0;
    int step = t_sanitized() ? 13 : 1;
    for (size_t k = 0; k < hdr; k += (size_t)step) bad += gguf_parse(&g, p, k, "s", &err) == FORGE_OK, gguf_close(&g);
    for (long k = (long)hdr; k < n; k += 4099) bad += gguf_parse(&g, p, (size_t)k, "s", &err) == FORGE_OK, gguf_close(&g);
    CHECKF(bad == 0, "%d truncated prefixes parsed", bad);
    free(p);
}

/* ---- K-quants through the forward -------------------------------------------------------- */

/* A qwen2-shaped GGUF (hidden 256, biases) whose matrices have the given types, random
 * contents; with dequant set, the same values written as F32 instead. */
enum { KH = 256, KI = 512, KV = 64 };
static void write_kmodel(const char *path, const uint32_t *types, int dequant) {
    const struct { const char *name; int rows, cols; } ts[] = {
        {"token_embd.weight", KV, KH},       {"output_norm.weight", 1, KH},     {"output.weight", KV, KH},
        {"blk.0.attn_norm.weight", 1, KH},   {"blk.0.ffn_norm.weight", 1, KH},  {"blk.0.attn_q.weight", KH, KH},
        {"blk.0.attn_q.bias", 1, KH},        {"blk.0.attn_k.weight", KH / 2, KH}, {"blk.0.attn_k.bias", 1, KH / 2},
        {"blk.0.attn_v.weight", KH / 2, KH}, {"blk.0.attn_v.bias", 1, KH / 2},  {"blk.0.attn_output.weight", KH, KH},
        {"blk.0.ffn_gate.weight", KI, KH},   {"blk.0.ffn_up.weight", KI, KH},   {"blk.0.ffn_down.weight", KH, KI},
    };
    enum { N = sizeof ts / sizeof ts[0] };
    buf b = {0};
    put(&b, "GGUF", 4);
    u32(&b, 3);
    u64(&b, N);
    u64(&b, 7);
    kv_str(&b, "general.architecture", "qwen2");
    kv_u32(&b, "qwen2.embedding_length", KH);
    kv_u32(&b, "qwen2.feed_forward_length", KI);
    kv_u32(&b, "qwen2.block_count", 1);
    kv_u32(&b, "qwen2.attention.head_count", 4);
    kv_u32(&b, "qwen2.attention.head_count_kv", 2);
    kv_u32(&b, "qwen2.context_length", 64);
    size_t sizes[N];
    uint64_t off = 0;
    for (int i = 0; i < N; i++) {
        uint32_t t = ts[i].rows == 1 || dequant ? GGML_F32 : types[i];
        sizes[i] = t == GGML_F32 ? (size_t)ts[i].rows * ts[i].cols * 4 : quant_row_bytes((int)t, ts[i].cols) * ts[i].rows;
        uint64_t ne[2] = {(uint64_t)ts[i].cols, (uint64_t)ts[i].rows};
        tinfo(&b, ts[i].name, ts[i].rows == 1 ? 1 : 2, ne, t, off);
        off += (sizes[i] + 31) / 32 * 32;
    }
    pad(&b, 32);
    size_t data = b.n;
    unsigned char *z = calloc(1, off);
    put(&b, z, off);
    free(z);
    t_rng_state = 99; /* the same contents for both files */
    off = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *p = b.p + data + off;
        size_t rb = quant_row_bytes((int)types[i] ? (int)types[i] : QT_Q8_0, ts[i].cols);
        uint8_t *q = malloc(rb);
        for (int r = 0; r < ts[i].rows; r++) {
            float row[KI];
            if (ts[i].rows == 1 || types[i] == GGML_F32) {
                for (int k = 0; k < ts[i].cols; k++) row[k] = ts[i].rows == 1 ? 1 + 0.1f * t_randf() : 0.05f * t_randf();
            } else {
                int qt = (int)types[i], bb = quant_block_bytes(qt), nbk = ts[i].cols / quant_block_elems(qt);
                for (size_t k = 0; k < rb; k++) q[k] = (uint8_t)t_rand64();
                for (int k = 0; k < nbk; k++) {
                    uint16_t d = f32_to_f16(0.0005f * (1 + t_randf())), dm = f32_to_f16(0.0005f * (1 + t_randf()));
                    memcpy(q + (size_t)k * bb + (qt == QT_Q6_K ? 208 : 0), &d, 2);
                    if (qt == QT_Q4_K || qt == QT_Q5_K || qt == QT_Q4_1 || qt == QT_Q5_1) memcpy(q + (size_t)k * bb + 2, &dm, 2);
                }
                quant_dequant_row(qt, q, row, ts[i].cols);
            }
            if (dequant || ts[i].rows == 1 || types[i] == GGML_F32) memcpy(p + (size_t)r * ts[i].cols * 4, row, (size_t)ts[i].cols * 4);
            else memcpy(p + (size_t)r * rb, q, rb);
        }
        free(q);
        off += (sizes[i] + 31) / 32 * 32;
    }
    FILE *f = fopen(path, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    free(b.p);
}

static void kquant_case(const uint32_t *types, const char *what) {
    char q[] = "/tmp/forge-kq-XXXXXX.gguf", d[] = "/tmp/forge-kd-XXXXXX.gguf";
    int fq = mkstemps(q, 5), fd = mkstemps(d, 5);
    close(fq);
    close(fd);
    write_kmodel(q, types, 0);
    write_kmodel(d, types, 1);
    int32_t toks[12];
    for (int i = 0; i < 12; i++) toks[i] = (int32_t)(t_rand64() % KV);
    char msg[1100];
    float *a = logits_of(q, 12, toks, msg);
    CHECKF(a != NULL, "%s: %s", what, msg);
    float *b = logits_of(d, 12, toks, msg);
    CHECKF(b != NULL, "%s: %s", what, msg);
    if (a && b) {
        double e = 0, s = 0;
        for (int i = 0; i < 12 * KV; i++) {
            e += (a[i] - b[i]) * (double)(a[i] - b[i]);
            s += b[i] * (double)b[i];
        }
        /* only the activations' 8-bit quantization separates the two (measured: 7e-4 for the
         * K-quants, whose Q8_K activations have one scale per 256 values; 6e-5 for the rest) */
        CHECKF(e < 3e-3 * s && s > 0, "%s: relative squared error %g", what, e / s);
    }
    free(a);
    free(b);
    unlink(q);
    unlink(d);
}

TEST(kquants_in_the_forward) {
    /* order: embd, out_norm, output, attn_norm, ffn_norm, q, qb, k, kb, v, vb, o, gate, up, down */
    const uint32_t km[] = {QT_Q6_K, 0, QT_Q6_K, 0, 0, QT_Q4_K, 0, QT_Q5_K, 0, QT_Q6_K, 0, QT_Q4_K, QT_Q4_K, QT_Q5_K, QT_Q6_K};
    kquant_case(km, "Q4_K/Q5_K/Q6_K");
    const uint32_t legacy[] = {QT_Q8_0, 0, QT_Q4_1, 0, 0, QT_Q4_0, 0, QT_Q5_0, 0, QT_Q5_1, 0, QT_Q8_0, QT_Q4_0, QT_Q4_1, QT_Q5_1};
    kquant_case(legacy, "Q8_0/Q4_0/Q4_1/Q5_0/Q5_1");
}

int main(void) {
    RUN(kquants_in_the_forward);
    RUN(tiny_file_parses);
    RUN(truncated_everywhere);
    RUN(malformed_files_name_the_problem);
    RUN(corrupted_bytes);
    RUN(quantized_norm_refused);
    RUN(stories260k_gguf_equals_safetensors);
    RUN(stories260k_truncated);
    RUN(split_gguf);
    return t_summary();
}
