/* The real trained stories260K model: from the prompt ids of expected-greedy.json, 200
 * greedy steps give exactly its greedy_ids (made by llama2.c's run.c on the original
 * checkpoint and by an independent float32 reference of HF's forward). Run once with the
 * SIMD kernels and once with the scalar reference kernels. */
#include "base/cpu.h"
#include "base/json.h"
#include "forge.h"
#include "test.h"

#define DIR "tests/fixtures/stories260K"

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void run_greedy(void) {
    forge_error err = {0};
    json_doc *d = json_parse_file(DIR "/expected-greedy.json", 1 << 20, &err);
    CHECKF(d, "%s", err.msg);
    if (!d) return;
    const json_value *pids = json_get(json_root(d), "prompt_ids"), *gids = json_get(json_root(d), "greedy_ids");
    forge_model *m = forge_model_open(DIR, NULL, &err);
    CHECKF(m, "%s", err.msg);
    if (!m) {
        json_free(d);
        return;
    }
    const forge_model_info *in = forge_model_get_info(m);
    forge_context *ctx = forge_context_create(m, &(forge_context_params){.n_kv_blocks = 32, .max_batch_tokens = 64, .max_logit_rows = 1, .kv_dtype = FORGE_DTYPE_F32}, &err);
    CHECKF(ctx, "%s", err.msg);
    int32_t blocks[32];
    for (int i = 0; i < 32; i++) blocks[i] = 31 - i; /* any order works */
    const int32_t *tables[1] = {blocks};
    int32_t nblocks[1] = {32};
    int32_t toks[64], pos[64], seq[64] = {0}, row;
    int n = (int)pids->n;
    for (int i = 0; i < n; i++) {
        toks[i] = (int32_t)json_at(pids, (size_t)i)->u.i;
        pos[i] = i;
    }
    row = n - 1;
    forge_batch b = {.n_tokens = n, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1,
                     .block_tables = tables, .n_blocks = nblocks, .n_logits = 1, .logit_rows = &row};
    int mismatches = 0, at = n, first_bad = -1;
    for (size_t g = 0; g < gids->n; g++) {
        forge_status st = forge_context_decode(ctx, &b, &err);
        CHECKF(st == FORGE_OK, "%s", err.msg);
        if (st) break;
        int next = argmax(forge_context_logits(ctx, 0), in->vocab_size);
        if (next != json_at(gids, g)->u.i) {
            if (first_bad < 0) first_bad = (int)g;
            mismatches++;
        }
        toks[0] = (int32_t)json_at(gids, g)->u.i; /* teacher-force the expected id */
        pos[0] = at++;
        row = 0;
        b.n_tokens = 1;
    }
    CHECKF(mismatches == 0, "%d of %zu greedy ids differ (first at step %d)", mismatches, gids->n, first_bad);
    forge_context_free(ctx);
    forge_model_close(m);
    json_free(d);
}

TEST(stories_greedy_simd) { run_greedy(); }

TEST(stories_greedy_scalar) {
    cpu_features old = cpu_set((cpu_features){0});
    run_greedy();
    cpu_set(old);
}

int main(void) {
    RUN(stories_greedy_simd);
    RUN(stories_greedy_scalar);
    return t_summary();
}
