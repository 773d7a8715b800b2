/* Batch invariance of issue 18's families (the parity models of SmolLM3, Qwen3-MoE, Mixtral,
 * Gemma 2 and 3): a sequence's logits are bit-identical computed alone, inside a batch of 64
 * mixed sequences (for the MoE models: its tokens share experts with many others), with its
 * prompt in uneven chunks, token by token, with 1, 2 or 3 threads, with each kernel set; and
 * for the MoE models with experts run token by token (FORGE_MOE_UNGROUPED=1) instead of
 * grouped. */
#include <stdlib.h>

#include "base/cpu.h"
#include "forge.h"
#include "kernels/kernels.h"
#include "test.h"

enum { LEN = 40, NSEQ = 64, BLK = 16, SEQ_BLOCKS = 4, VOCAB = 320 };

static const char *g_name;
static forge_model *g_model;
static int32_t g_prompt[NSEQ][LEN];

/* Runs sequence 0's prompt through ctx in chunks of the given sizes; stores the logits of
 * every position in out[LEN][VOCAB]. Blocks of sequence s are s*SEQ_BLOCKS.. */
static void run_alone(forge_context *ctx, const int *chunks, float *out) {
    int32_t table[SEQ_BLOCKS];
    for (int i = 0; i < SEQ_BLOCKS; i++) table[i] = i;
    const int32_t *tables[1] = {table};
    int32_t nb[1] = {SEQ_BLOCKS}, toks[LEN], pos[LEN], seq[LEN] = {0}, rows[LEN];
    forge_error err;
    for (int at = 0, c = 0; at < LEN; c++) {
        int n = chunks[c] < LEN - at ? chunks[c] : LEN - at;
        for (int i = 0; i < n; i++) {
            toks[i] = g_prompt[0][at + i];
            pos[i] = at + i;
            rows[i] = i;
        }
        forge_batch b = {.n_tokens = n, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1,
                         .block_tables = tables, .n_blocks = nb, .n_logits = n, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
        for (int i = 0; i < n; i++) memcpy(out + (size_t)(at + i) * VOCAB, forge_context_logits(ctx, i), VOCAB * 4);
        at += n;
    }
}

/* Sequence 0 advances one chunk per step among 63 others: some prefill chunks of random
 * length, some decoding one token, in shuffled row order. */
static void run_mixed(forge_context *ctx, float *out) {
    static int32_t tables[NSEQ][SEQ_BLOCKS];
    const int32_t *tp[NSEQ];
    int32_t nb[NSEQ], progress[NSEQ] = {0};
    for (int s = 0; s < NSEQ; s++) {
        for (int i = 0; i < SEQ_BLOCKS; i++) tables[s][i] = s * SEQ_BLOCKS + i;
        tp[s] = tables[s];
        nb[s] = SEQ_BLOCKS;
    }
    static int32_t toks[NSEQ * LEN], pos[NSEQ * LEN], seq[NSEQ * LEN], rows[NSEQ * LEN];
    forge_error err;
    while (progress[0] < LEN) {
        int n = 0;
        for (int s = 0; s < NSEQ; s++) {
            int want = s == 0 ? 3 + (int)(t_rand64() % 9) : (s % 3 == 0 ? 1 : (int)(t_rand64() % 6));
            for (int i = 0; i < want && progress[s] < LEN; i++, n++) {
                toks[n] = g_prompt[s][progress[s]];
                pos[n] = progress[s]++;
                seq[n] = s;
            }
        }
        /* shuffle rows: the order of rows in a batch must not matter either */
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(t_rand64() % (uint64_t)(i + 1));
            int32_t a = toks[i], b = pos[i], c = seq[i];
            toks[i] = toks[j], pos[i] = pos[j], seq[i] = seq[j];
            toks[j] = a, pos[j] = b, seq[j] = c;
        }
        int nr = 0;
        for (int i = 0; i < n; i++)
            if (seq[i] == 0) rows[nr++] = i;
        forge_batch b = {.n_tokens = n, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = NSEQ,
                         .block_tables = tp, .n_blocks = nb, .n_logits = nr, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
        for (int r = 0; r < nr; r++)
            memcpy(out + (size_t)pos[rows[r]] * VOCAB, forge_context_logits(ctx, r), VOCAB * 4);
    }
}

/* 2 threads; 1 under qemu-user, where a thread pool's spinning waiters on a shared CPU take
 * minutes (the thread-count invariance itself is architecture-independent, tested natively) */
static int t_threads(void) { return t_emulated() ? 1 : 2; }

static void check_kv(forge_dtype kv) {
    static float ref[LEN * VOCAB], got[LEN * VOCAB];
    forge_error err;
    forge_context_params p = {.n_kv_blocks = NSEQ * SEQ_BLOCKS, .max_batch_tokens = NSEQ * LEN,
                              .max_logit_rows = LEN, .kv_dtype = kv, .n_threads = t_threads()};
    forge_context *ctx = forge_context_create(g_model, &p, &err);
    CHECKF(ctx, "%s", err.msg);
    if (!ctx) return;
    const int whole[] = {LEN}, uneven[] = {7, 1, 13, 2, 17}, ones[LEN] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                        1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    run_alone(ctx, whole, ref);
    run_alone(ctx, uneven, got);
    CHECKF(!memcmp(ref, got, sizeof ref), "%s kv %d: chunked prompt differs", g_name, kv);
    run_alone(ctx, ones, got);
    CHECKF(!memcmp(ref, got, sizeof ref), "%s kv %d: token-by-token differs", g_name, kv);
    memset(got, 0, sizeof got);
    run_mixed(ctx, got);
    CHECKF(!memcmp(ref, got, sizeof ref), "%s kv %d: inside a batch of 64 differs", g_name, kv);
    forge_context_free(ctx);
    for (int nt = 1; nt <= 3 && !t_emulated(); nt += 2) {
        p.n_threads = nt;
        ctx = forge_context_create(g_model, &p, &err);
        run_alone(ctx, uneven, got);
        CHECKF(!memcmp(ref, got, sizeof ref), "%s kv %d: %d threads differ from 2", g_name, kv, nt);
        forge_context_free(ctx);
    }
}

static void check_model(const char *name) {
    forge_error err;
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/parity/%s", name);
    g_name = name;
    g_model = forge_model_open(dir, NULL, &err);
    CHECKF(g_model, "%s", err.msg);
    if (!g_model) return;
    CHECK(forge_model_get_info(g_model)->vocab_size == VOCAB);
    for (int s = 0; s < NSEQ; s++)
        for (int i = 0; i < LEN; i++) g_prompt[s][i] = (int32_t)(4 + t_rand64() % (VOCAB - 4));
    check_kv(FORGE_DTYPE_F32);
    check_kv(FORGE_DTYPE_BF16);
    forge_model_close(g_model);
}

static const char *g_models[] = {"qwen3_moe", "mixtral_window", "smollm3_nope", "gemma2_softcap", "gemma3_local", "phi3_longrope"};
enum { N_MODELS = sizeof g_models / sizeof g_models[0] };

TEST(invariance) {
    for (int i = 0; i < N_MODELS; i++) check_model(g_models[i]);
}

/* the same with each kernel set this CPU has, forced (scalar, AVX2, AVX-512) */
TEST(invariance_each_set) {
    cpu_features real = cpu_detect(), old = cpu_get()[0];
    cpu_features sets[] = {{0}, {.avx2 = real.avx2}, real};
    for (int i = 0; i < 3; i++) {
        if ((i == 1 && !real.avx2) || (i == 2 && !real.avx512)) continue;
        cpu_set(sets[i]);
        printf("    set %s\n", kernels_get()->name);
        for (int m = 0; m < N_MODELS; m++) check_model(g_models[m]);
    }
    cpu_set(old);
}

/* grouped experts against one token at a time: the same bits */
TEST(grouped_equals_ungrouped) {
    static float a[LEN * VOCAB], b[LEN * VOCAB];
    const char *names[] = {"qwen3_moe", "mixtral_window"};
    for (int n = 0; n < 2; n++) {
        forge_error err;
        char dir[256];
        snprintf(dir, sizeof dir, "tests/fixtures/parity/%s", names[n]);
        g_model = forge_model_open(dir, NULL, &err);
        CHECKF(g_model, "%s", err.msg);
        if (!g_model) continue;
        forge_context_params p = {.n_kv_blocks = NSEQ * SEQ_BLOCKS, .max_batch_tokens = NSEQ * LEN,
                                  .max_logit_rows = LEN, .kv_dtype = FORGE_DTYPE_F32, .n_threads = t_threads()};
        const int whole[] = {LEN};
        for (int u = 0; u < 2; u++) {
            setenv("FORGE_MOE_UNGROUPED", u ? "1" : "0", 1);
            forge_context *ctx = forge_context_create(g_model, &p, &err);
            CHECKF(ctx, "%s", err.msg);
            if (ctx) run_alone(ctx, whole, u ? b : a);
            forge_context_free(ctx);
        }
        unsetenv("FORGE_MOE_UNGROUPED");
        CHECKF(!memcmp(a, b, sizeof a), "%s: grouped and ungrouped experts differ", names[n]);
        forge_model_close(g_model);
    }
}

int main(void) {
    RUN(invariance);
    RUN(invariance_each_set);
    RUN(grouped_equals_ungrouped);
    return t_summary();
}
