/* Batch invariance of the whole forward: a sequence's logits are bit-identical computed
 * alone, inside a batch of 64 mixed sequences (prefills and decodes), with its prompt split
 * into uneven chunks, and with 1, 2 or 3 threads; for f32 and bf16 KV caches. Under
 * emulation (t_emulated(): qemu-user, where the thread pool's spinning waits can take
 * minutes) everything runs on one thread; the thread-count comparison is left to native runs. */
#include "base/cpu.h"
#include "forge.h"
#include "kernels/kernels.h"
#include "test.h"

#define DIR "tests/fixtures/stories260K"
enum { LEN = 40, NSEQ = 64, BLK = 16, SEQ_BLOCKS = 4, VOCAB = 512 };

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

static void check_kv(forge_dtype kv) {
    static float ref[LEN * VOCAB], got[LEN * VOCAB];
    forge_error err;
    forge_context_params p = {.n_kv_blocks = NSEQ * SEQ_BLOCKS, .max_batch_tokens = NSEQ * LEN,
                              .max_logit_rows = LEN, .kv_dtype = kv, .n_threads = t_emulated() ? 1 : 2};
    forge_context *ctx = forge_context_create(g_model, &p, &err);
    CHECKF(ctx, "%s", err.msg);
    if (!ctx) return;
    const int whole[] = {LEN}, uneven[] = {7, 1, 13, 2, 17}, ones[LEN] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                        1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    run_alone(ctx, whole, ref);
    run_alone(ctx, uneven, got);
    CHECKF(!memcmp(ref, got, sizeof ref), "kv %d: chunked prompt differs", kv);
    run_alone(ctx, ones, got);
    CHECKF(!memcmp(ref, got, sizeof ref), "kv %d: token-by-token differs", kv);
    memset(got, 0, sizeof got);
    run_mixed(ctx, got);
    CHECKF(!memcmp(ref, got, sizeof ref), "kv %d: inside a batch of 64 differs", kv);
    forge_context_free(ctx);
    for (int nt = 1; nt <= 3 && !t_emulated(); nt += 2) {
        p.n_threads = nt;
        ctx = forge_context_create(g_model, &p, &err);
        run_alone(ctx, uneven, got);
        CHECKF(!memcmp(ref, got, sizeof ref), "kv %d: %d threads differ from 2", kv, nt);
        forge_context_free(ctx);
    }
}

TEST(invariance_f32_kv) { check_kv(FORGE_DTYPE_F32); }
TEST(invariance_bf16_kv) { check_kv(FORGE_DTYPE_BF16); }

/* the same with each kernel set this CPU has, forced (scalar, AVX2 or NEON, AVX-512 or NEON+dotprod) */
TEST(invariance_each_set) {
    cpu_features real = cpu_detect(), old = cpu_get()[0];
    cpu_features sets[] = {{0}, {.avx2 = real.avx2, .neon = real.neon}, real};
    for (int i = 0; i < 3; i++) {
        if ((i == 1 && !real.avx2 && !real.neon) || (i == 2 && !real.avx512 && !real.neon_dotprod)) continue;
        cpu_set(sets[i]);
        printf("    set %s\n", kernels_get()->name);
        check_kv(FORGE_DTYPE_F32);
        check_kv(FORGE_DTYPE_BF16);
    }
    cpu_set(old);
}

/* forge_context_copy_kv: sequence 0's first 20 tokens in blocks 0 and 1, block 1's 4
 * tokens copied into block 8, and the rest of the prompt run on the table {0, 8, 9}: every
 * later logit equals the run that never copied (f32 and bf16 caches); bad arguments refused. */
static void check_copy(forge_dtype kv) {
    static float ref[LEN * VOCAB], got[LEN * VOCAB];
    forge_error err;
    forge_context_params p = {.n_kv_blocks = 16, .max_batch_tokens = 64, .max_logit_rows = LEN, .kv_dtype = kv, .n_threads = 1};
    forge_context *ctx = forge_context_create(g_model, &p, &err);
    CHECKF(ctx, "%s", err.msg);
    if (!ctx) return;
    run_alone(ctx, (const int[]){LEN}, ref);
    int32_t t1[2] = {4, 5}, t2[3] = {4, 8, 9}, toks[LEN], pos[LEN], seq[LEN] = {0}, rows[LEN];
    for (int i = 0; i < LEN; i++) toks[i] = g_prompt[0][i], pos[i] = i, rows[i] = i;
    forge_batch b = {.n_tokens = 20, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1,
                     .block_tables = (const int32_t *[]){t1}, .n_blocks = (int32_t[]){2}, .n_logits = 0, .logit_rows = rows};
    CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
    CHECKF(forge_context_copy_kv(ctx, 5, 8, 4, &err) == FORGE_OK, "%s", err.msg);
    forge_batch c = {.n_tokens = LEN - 20, .tokens = toks + 20, .positions = pos + 20, .seq = seq, .n_seqs = 1,
                     .block_tables = (const int32_t *[]){t2}, .n_blocks = (int32_t[]){3}, .n_logits = LEN - 20, .logit_rows = rows};
    CHECKF(forge_context_decode(ctx, &c, &err) == FORGE_OK, "%s", err.msg);
    for (int i = 0; i < LEN - 20; i++) memcpy(got + (size_t)(20 + i) * VOCAB, forge_context_logits(ctx, i), VOCAB * 4);
    CHECKF(!memcmp(got + 20 * VOCAB, ref + 20 * VOCAB, sizeof(float) * (LEN - 20) * VOCAB), "logits after a copied block differ");
    int bad[][3] = {{5, 5, 4}, {-1, 8, 4}, {5, 16, 4}, {5, 8, 0}, {5, 8, BLK + 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(forge_context_copy_kv(ctx, bad[i][0], bad[i][1], bad[i][2], &err) == FORGE_E_INVALID, "bad copy %zu accepted", i);
    CHECK(forge_context_copy_kv(NULL, 0, 1, 1, &err) == FORGE_E_INVALID);
    forge_context_free(ctx);
}

TEST(copied_kv_continues_bit_exactly) {
    check_copy(FORGE_DTYPE_F32);
    check_copy(FORGE_DTYPE_BF16);
}

TEST(bad_batches_are_refused) {
    forge_error err;
    forge_context *ctx = forge_context_create(g_model, &(forge_context_params){.n_kv_blocks = 4, .max_batch_tokens = 8, .max_logit_rows = 2}, &err);
    int32_t table[2] = {0, 1}, bad_table[1] = {9};
    const int32_t *tp[1] = {table}, *btp[1] = {bad_table};
    int32_t nb[1] = {2}, nb1[1] = {1}, tok[2] = {5, 600}, pos[2] = {0, 40}, seq[2] = {0, 0}, row[1] = {3};
    struct { forge_batch b; const char *want; } cases[] = {
        {{.n_tokens = 0}, "empty"},
        {{.n_tokens = 9, .tokens = tok}, "exceeds"},
        {{.n_tokens = 2, .tokens = tok, .positions = (int32_t[]){0, 1}, .seq = seq, .n_seqs = 1, .block_tables = tp, .n_blocks = nb}, "vocabulary"},
        {{.n_tokens = 1, .tokens = tok, .positions = pos + 1, .seq = seq, .n_seqs = 1, .block_tables = tp, .n_blocks = nb}, "block table"},
        {{.n_tokens = 1, .tokens = tok, .positions = pos, .seq = seq, .n_seqs = 1, .block_tables = btp, .n_blocks = nb1}, "outside the pool"},
        {{.n_tokens = 1, .tokens = tok, .positions = pos, .seq = (int32_t[]){1}, .n_seqs = 1, .block_tables = tp, .n_blocks = nb}, "sequence"},
        {{.n_tokens = 1, .tokens = tok, .positions = (int32_t[]){-1}, .seq = seq, .n_seqs = 1, .block_tables = tp, .n_blocks = nb}, "position"},
        {{.n_tokens = 1, .tokens = tok, .positions = pos, .seq = seq, .n_seqs = 1, .block_tables = tp, .n_blocks = nb, .n_logits = 1, .logit_rows = row}, "logit row"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        forge_status st = forge_context_decode(ctx, &cases[i].b, &err);
        CHECKF(st != FORGE_OK && strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
    }
    CHECK(forge_context_logits(ctx, 0) == NULL);
    forge_context_free(ctx);
}

/* A plain draw written out naively (double exp, no blocks): softmax(l / t), drop what is under
 * min_p x the largest probability, the first id in id order whose cumulative sum passes u x
 * the total. */
static int32_t draw_ref(const float *l, int n, float t, float min_p, double u) {
    double m = -INFINITY, total = 0, acc = 0;
    for (int i = 0; i < n; i++) {
        double v = l[i] / t;
        if (v > m) m = v;
    }
    for (int i = 0; i < n; i++) {
        double p = exp(l[i] / t - m);
        if (p >= min_p) total += p;
    }
    int32_t last = 0;
    for (int i = 0; i < n; i++) {
        double p = exp(l[i] / t - m);
        if (p < min_p) continue;
        last = i;
        if ((acc += p) > u * total) return i;
    }
    return last;
}

/* forge_context_decode_sample on the CPU: the tokens are chosen on the host from the logits
 * (which stay readable): greedy = the first index of the largest, a draw = the naive draw's;
 * rows asking for nonsense are refused, naming the row. */
TEST(sampled_rows) {
    forge_error err;
    forge_context *ctx = forge_context_create(g_model, &(forge_context_params){.n_kv_blocks = 4, .max_batch_tokens = 8, .max_logit_rows = 3}, &err);
    CHECKF(ctx, "%s", err.msg);
    if (!ctx) return;
    int32_t table[1] = {0}, nb[1] = {1}, tok[3] = {5, 77, 300}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0}, rows[3] = {0, 1, 2};
    const int32_t *tp[1] = {table};
    forge_batch b = {.n_tokens = 3, .tokens = tok, .positions = pos, .seq = seq, .n_seqs = 1, .block_tables = tp,
                     .n_blocks = nb, .n_logits = 3, .logit_rows = rows};
    static const double us[] = {0.03, 0.61, 0.97};
    for (int k = 0; k < 3; k++) { /* the same batch (the same K/V rewritten), three draws */
        forge_row_sample rs[3] = {{.kind = FORGE_ROW_LOGITS}, {.kind = FORGE_ROW_GREEDY},
                                  {.kind = FORGE_ROW_DRAW, .temperature = k ? 0.9f : 1.0f, .min_p = k == 1 ? 0.02f : 0,
                                   .u = us[k]}};
        CHECKF(forge_context_decode_sample(ctx, &b, rs, &err) == FORGE_OK, "%s", err.msg);
        for (int r = 0; r < 3; r++) {
            const float *l = forge_context_logits(ctx, r);
            CHECK(l != NULL);
            if (!l) continue;
            int best = 0;
            for (int i = 1; i < VOCAB; i++)
                if (l[i] > l[best]) best = i;
            int32_t want = r == 2 ? draw_ref(l, VOCAB, rs[2].temperature, rs[2].min_p, rs[2].u) : best;
            CHECK_EQ_INT(forge_context_token(ctx, r), want);
        }
    }
    CHECK_EQ_INT(forge_context_token(ctx, 3), -1);
    forge_row_sample bad[][1] = {{{.kind = 3}}, {{.kind = FORGE_ROW_DRAW, .temperature = 0, .u = 0.5}},
                                 {{.kind = FORGE_ROW_DRAW, .temperature = 1, .u = 1.0}},
                                 {{.kind = FORGE_ROW_DRAW, .temperature = 1, .min_p = 2, .u = 0.5}}};
    b.n_tokens = 1, b.n_logits = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        forge_status st = forge_context_decode_sample(ctx, &b, bad[i], &err);
        CHECKF(st == FORGE_E_INVALID && strstr(err.msg, "row 0"), "case %zu: %s", i, err.msg);
    }
    forge_context_free(ctx);
}

int main(void) {
    forge_error err;
    g_model = forge_model_open(DIR, NULL, &err);
    if (!g_model) {
        printf("cannot open %s: %s\n", DIR, err.msg);
        return 1;
    }
    for (int s = 0; s < NSEQ; s++)
        for (int i = 0; i < LEN; i++) g_prompt[s][i] = (int32_t)(3 + t_rand64() % (VOCAB - 3));
    RUN(invariance_f32_kv);
    RUN(invariance_bf16_kv);
    RUN(invariance_each_set);
    RUN(bad_batches_are_refused);
    RUN(copied_kv_continues_bit_exactly);
    RUN(sampled_rows);
    forge_model_close(g_model);
    return t_summary();
}
