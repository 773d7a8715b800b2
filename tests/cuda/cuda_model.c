/* cuda_model: whole-model checks of the CUDA backend through the public API.
 *
 *  - parity: the parity models (tests/fixtures/parity/<name>/golden.json, float64
 *    references) give the golden greedy ids, and logits within tolerance at every prompt
 *    position. F32 models run with f32 GEMMs (Forge's GEMV/GEMM by default, cuBLAS without
 *    TF32 when opted in); the BF16 model is checked on the default path (f32 activations, f32
 *    KV: ids must match) and on the cuBLAS opt-in (bf16 activations, bf16 KV: logit
 *    tolerance). The real stories260K model must give its 200 greedy ids.
 *  - batch invariance: a sequence's logits alone, with its prompt in uneven chunks, token by
 *    token, and inside batches of 64 mixed sequences: required bit for bit on the default
 *    path, reported for the cuBLAS opt-in (FORGE_CUDA_BLAS=1: cuBLAS picks kernels by shape).
 *  - graphs: decode steps with CUDA graphs equal those without, bit for bit.
 *  - memory: a share of GPU memory too small for the weights is a clear error.
 *
 *   cuda_model [--device cuda|cpu|auto] [--only MODEL] [--skip TESTS] [PARITY_DIR]
 *   (default tests/fixtures/parity; --skip takes test names, e.g. "stories_greedy,batch"). --device cpu runs the same checks on the CPU backend (a dry run
 *   of this program). Exit 0 when all pass, 1 on a failure, 77 when no GPU can be used. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "backend/backend.h"
#include "base/json.h"
#include "forge.h"
#include "kernels/quant.h"
#include "sampling/sampler.h"
#include "test.h"

static const char *g_device = "cuda";

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static forge_context *make_ctx(forge_model *m, forge_dtype kv, int max_batch, int max_rows, int n_blocks,
                               forge_error *err) {
    forge_context_params p = {.n_kv_blocks = n_blocks, .max_batch_tokens = max_batch, .max_logit_rows = max_rows,
                              .kv_dtype = kv, .device = g_device};
    return forge_context_create(m, &p, err);
}

/* The default (every batch through Forge's f32 GEMV/GEMM: batch invariant) or the cuBLAS
 * opt-in (batches over one row through cuBLAS) */
static void set_mode(bool blas) {
    unsetenv("FORGE_CUDA_GEMV_MAX");
    if (blas)
        setenv("FORGE_CUDA_BLAS", "1", 1);
    else
        unsetenv("FORGE_CUDA_BLAS");
}

enum { MAXB = 16 };

/* One sequence in slot s of a context: blocks s*MAXB.. */
typedef struct seqrun {
    forge_context *ctx;
    int vocab, slot;
    int32_t table[MAXB];
} seqrun;

/* Runs tokens[0..n) at positions from start; logits of every row into out (may be NULL). */
static forge_status feed(seqrun *r, const int32_t *tokens, int n, int start, float *out, forge_error *err) {
    int32_t pos[256], seq[256] = {0}, rows[256];
    for (int i = 0; i < n; i++) pos[i] = start + i, rows[i] = i;
    const int32_t *tables[1] = {r->table};
    int32_t nb[1] = {MAXB};
    forge_batch b = {.n_tokens = n, .tokens = tokens, .positions = pos, .seq = seq, .n_seqs = 1,
                     .block_tables = tables, .n_blocks = nb, .n_logits = out ? n : 1, .logit_rows = out ? rows : rows + n - 1};
    forge_status st = forge_context_decode(r->ctx, &b, err);
    if (st == FORGE_OK && out)
        for (int i = 0; i < n; i++) memcpy(out + (size_t)i * r->vocab, forge_context_logits(r->ctx, i), (size_t)r->vocab * 4);
    return st;
}

/* ---- parity ------------------------------------------------------------------------------ */

typedef struct parity_mode {
    const char *name;
    bool blas;
    forge_dtype kv;
    bool need_ids;  /* greedy ids must equal the golden ones */
    double tol_rel; /* logit tolerance: tol_rel * max(1, max |golden logit|), or ... */
    double tol_f32; /* ... this multiple of the reference's own f32-vs-f64 difference */
} parity_mode;

static void parity_one(const char *dir, const json_value *g, const parity_mode *mode) {
    forge_error err;
    set_mode(mode->blas);
    forge_model *m = forge_model_open(dir, NULL, &err);
    CHECKF(m, "%s: %s", dir, err.msg);
    if (!m) return;
    const forge_model_info *in = forge_model_get_info(m);
    const json_value *seqs = json_get(g, "sequences");
    double f32diff = json_number(json_get(g, "f32_max_abs_diff"));
    forge_context *ctx = make_ctx(m, mode->kv, 128, 128, MAXB, &err);
    /* families the CUDA backend does not run (mixture of experts, Gemma, NoPE layers,
     * longrope) must be refused with a clear FORGE_E_UNSUPPORTED, never run wrong */
    if (!ctx && err.code == FORGE_E_UNSUPPORTED && !strcmp(g_device, "cuda") && strstr(err.msg, "use the CPU")) {
        printf("    %-18s not run on the device: %s\n", json_string(json_get(g, "model")), err.msg);
        forge_model_close(m);
        return;
    }
    CHECKF(ctx, "%s: %s", dir, err.msg);
    if (!ctx) {
        forge_model_close(m);
        return;
    }
    int V = in->vocab_size;
    double worst = 0, max_logit = 0;
    int ids_ok = 0, n_seq = (int)seqs->n, first_bad = -1;
    float *logits = malloc((size_t)128 * V * 4);
    for (int s = 0; s < n_seq; s++) {
        const json_value *sq = json_at(seqs, (size_t)s), *pid = json_get(sq, "prompt_ids");
        const json_value *gl = json_get(sq, "logits"), *gid = json_get(sq, "greedy_ids");
        seqrun r = {.ctx = ctx, .vocab = V};
        for (int i = 0; i < MAXB; i++) r.table[i] = MAXB - 1 - i; /* any order */
        int n = (int)pid->n, ng = (int)gid->n;
        int32_t toks[128];
        for (int i = 0; i < n; i++) toks[i] = (int32_t)json_number(json_at(pid, (size_t)i));
        if (feed(&r, toks, n, 0, logits, &err)) {
            CHECKF(0, "%s: %s", dir, err.msg);
            break;
        }
        for (int p = 0; p < n; p++) {
            const json_value *row = json_at(gl, (size_t)p);
            for (int v = 0; v < V; v++) {
                double want = json_number(json_at(row, (size_t)v)), d = fabs(logits[(size_t)p * V + v] - want);
                if (!(d <= worst)) worst = d; /* NaN sticks */
                if (fabs(want) > max_logit) max_logit = fabs(want);
            }
        }
        int next = argmax(logits + (size_t)(n - 1) * V, V), step = 0;
        for (; step < ng; step++) {
            if (next != (int)json_number(json_at(gid, (size_t)step))) break;
            int32_t t = next;
            if (feed(&r, &t, 1, n + step, logits, &err)) {
                CHECKF(0, "%s: %s", dir, err.msg);
                break;
            }
            next = argmax(logits, V);
        }
        if (step == ng)
            ids_ok++;
        else if (first_bad < 0)
            first_bad = s * 1000 + step;
    }
    double tol = fmax(mode->tol_rel * fmax(1.0, max_logit), mode->tol_f32 * f32diff);
    printf("    %-18s %-30s ids %d/%d  max |logit - golden| %.3g (tolerance %.3g)\n", json_string(json_get(g, "model")),
           mode->name, ids_ok, n_seq, worst, tol);
    if (mode->need_ids)
        CHECKF(ids_ok == n_seq, "%s %s: sequence %d differs at greedy step %d", dir, mode->name, first_bad / 1000,
               first_bad % 1000);
    CHECKF(worst <= tol, "%s %s: logits differ by %.3g > %.3g", dir, mode->name, worst, tol);
    free(logits);
    forge_context_free(ctx);
    forge_model_close(m);
}

static const char *g_parity_dir = "tests/fixtures/parity", *g_only, *g_skip;

TEST(parity) {
    DIR *d = opendir(g_parity_dir);
    CHECKF(d, "cannot open %s", g_parity_dir);
    if (!d) return;
    char names[32][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 32)
        if (e->d_name[0] != '.' && (!g_only || !strcmp(e->d_name, g_only))) snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    int ran = 0;
    for (int i = 0; i < n; i++) {
        char dir[4096], path[4096 + 16];
        int k = snprintf(dir, sizeof dir, "%s/%s", g_parity_dir, names[i]);
        if (k < 0 || k >= (int)sizeof dir) continue;
        snprintf(path, sizeof path, "%s/golden.json", dir);
        forge_error err;
        json_doc *doc = json_parse_file(path, 64 << 20, &err);
        if (!doc) continue; /* not a model folder */
        const json_value *g = json_root(doc);
        ran++;
        /* f32: 10x the reference's own f32 error, as the fixtures' README suggests, and at
         * least 1e-4 (the golden logits themselves are rounded to float32) */
        if (!strcmp(json_string(json_get(g, "dtype")), "F32")) {
            parity_mode f32 = {"f32 (default path)", false, FORGE_DTYPE_F32, true, 1e-4, 10};
            parity_one(dir, g, &f32);
            parity_mode blas = {"f32 (cuBLAS opt-in)", true, FORGE_DTYPE_F32, true, 1e-4, 10};
            parity_one(dir, g, &blas);
            /* large models: norm and SwiGLU as their own kernels, not GEMV prologues */
            setenv("FORGE_CUDA_FUSE_MAX", "0", 1);
            parity_mode split = {"f32 (default, unfused)", false, FORGE_DTYPE_F32, true, 1e-4, 10};
            parity_one(dir, g, &split);
            unsetenv("FORGE_CUDA_FUSE_MAX");
        } else {
            parity_mode exact = {"bf16 weights, default, f32 KV", false, FORGE_DTYPE_F32, true, 1e-4, 10};
            parity_one(dir, g, &exact);
            parity_mode dflt = {"bf16 default, bf16 KV", false, FORGE_DTYPE_AUTO, false, 0.05, 0};
            parity_one(dir, g, &dflt);
            parity_mode blas = {"bf16 cuBLAS (bf16 acts, bf16 KV)", true, FORGE_DTYPE_AUTO, false, 0.05, 0};
            parity_one(dir, g, &blas);
        }
        json_free(doc);
    }
    CHECKF(ran > 0, "no parity models under %s", g_parity_dir);
    set_mode(false);
}

TEST(stories_greedy) {
    forge_error err;
    const char *dir = "tests/fixtures/stories260K";
    json_doc *d = json_parse_file("tests/fixtures/stories260K/expected-greedy.json", 1 << 20, &err);
    forge_model *m = d ? forge_model_open(dir, NULL, &err) : NULL;
    CHECKF(d && m, "%s", err.msg);
    forge_context *ctx = m ? make_ctx(m, FORGE_DTYPE_F32, 64, 64, 16, &err) : NULL;
    CHECKF(!m || ctx, "%s", err.msg);
    if (ctx) {
        const json_value *pids = json_get(json_root(d), "prompt_ids"), *gids = json_get(json_root(d), "greedy_ids");
        seqrun r = {.ctx = ctx, .vocab = forge_model_get_info(m)->vocab_size};
        for (int i = 0; i < MAXB; i++) r.table[i] = i;
        int32_t toks[16];
        int n = (int)pids->n, same = 0;
        for (int i = 0; i < n; i++) toks[i] = (int32_t)json_number(json_at(pids, (size_t)i));
        float *lg = malloc((size_t)16 * r.vocab * 4);
        forge_status st = feed(&r, toks, n, 0, lg, &err);
        int next = argmax(lg + (size_t)(n - 1) * r.vocab, r.vocab);
        for (size_t k = 0; !st && k < gids->n && n + (int)k < MAXB * 16; k++) {
            if (next != (int)json_number(json_at(gids, k))) break;
            same++;
            int32_t t = next;
            st = feed(&r, &t, 1, n + (int)k, lg, &err);
            next = argmax(lg, r.vocab);
        }
        printf("    stories260K: %d of %zu greedy ids equal\n", same, gids->n);
        CHECKF(!st, "%s", err.msg);
        CHECKF(same == (int)gids->n, "stories260K greedy differs at step %d", same);
        free(lg);
    }
    forge_context_free(ctx);
    forge_model_close(m);
    json_free(d);
}

/* ---- batch invariance, graphs, memory ----------------------------------------------------- */

enum { ILEN = 40, INSEQ = 64, IBLK = 4 };
static int32_t g_prompt[INSEQ][ILEN];

static forge_model *open_stories(void) {
    forge_error err;
    forge_model *m = forge_model_open("tests/fixtures/stories260K", NULL, &err);
    CHECKF(m, "%s", err.msg);
    return m;
}

/* Sequence 0's prompt in chunks; logits of every position into out[ILEN][V]. */
static void run_alone(forge_context *ctx, int V, const int *chunks, float *out) {
    int32_t table[IBLK], toks[ILEN], pos[ILEN], seq[ILEN] = {0}, rows[ILEN], nb[1] = {IBLK};
    for (int i = 0; i < IBLK; i++) table[i] = i;
    const int32_t *tables[1] = {table};
    forge_error err;
    for (int at = 0, c = 0; at < ILEN; c++) {
        int n = chunks[c] < ILEN - at ? chunks[c] : ILEN - at;
        for (int i = 0; i < n; i++) toks[i] = g_prompt[0][at + i], pos[i] = at + i, rows[i] = i;
        forge_batch b = {.n_tokens = n, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1,
                         .block_tables = tables, .n_blocks = nb, .n_logits = n, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
        for (int i = 0; i < n; i++) memcpy(out + (size_t)(at + i) * V, forge_context_logits(ctx, i), (size_t)V * 4);
        at += n;
    }
}

/* Sequence 0 advances among 63 others (prefill chunks and single decode tokens), rows shuffled. */
static void run_mixed(forge_context *ctx, int V, float *out) {
    static int32_t tables[INSEQ][IBLK], toks[INSEQ * ILEN], pos[INSEQ * ILEN], seq[INSEQ * ILEN], rows[INSEQ * ILEN];
    const int32_t *tp[INSEQ];
    int32_t nb[INSEQ], progress[INSEQ] = {0};
    for (int s = 0; s < INSEQ; s++) {
        for (int i = 0; i < IBLK; i++) tables[s][i] = s * IBLK + i;
        tp[s] = tables[s], nb[s] = IBLK;
    }
    forge_error err;
    while (progress[0] < ILEN) {
        int n = 0;
        for (int s = 0; s < INSEQ; s++) {
            int want = s == 0 ? 3 + (int)(t_rand64() % 9) : (s % 3 == 0 ? 1 : (int)(t_rand64() % 6));
            for (int i = 0; i < want && progress[s] < ILEN; i++, n++)
                toks[n] = g_prompt[s][progress[s]], pos[n] = progress[s]++, seq[n] = s;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(t_rand64() % (uint64_t)(i + 1));
            int32_t a = toks[i], b = pos[i], c = seq[i];
            toks[i] = toks[j], pos[i] = pos[j], seq[i] = seq[j];
            toks[j] = a, pos[j] = b, seq[j] = c;
        }
        int nr = 0;
        for (int i = 0; i < n; i++)
            if (seq[i] == 0) rows[nr++] = i;
        forge_batch b = {.n_tokens = n, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = INSEQ,
                         .block_tables = tp, .n_blocks = nb, .n_logits = nr, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
        for (int r = 0; r < nr; r++) memcpy(out + (size_t)pos[rows[r]] * V, forge_context_logits(ctx, r), (size_t)V * 4);
    }
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e;
    }
    return d;
}

TEST(batch_invariance) {
    forge_model *m = open_stories();
    if (!m) return;
    int V = forge_model_get_info(m)->vocab_size;
    for (int s = 0; s < INSEQ; s++)
        for (int i = 0; i < ILEN; i++) g_prompt[s][i] = (int32_t)(3 + t_rand64() % (uint64_t)(V - 3));
    float *ref = malloc((size_t)ILEN * V * 4), *got = malloc((size_t)ILEN * V * 4);
    static const int whole[] = {ILEN}, uneven[] = {7, 1, 13, 2, 17};
    int ones[ILEN];
    for (int i = 0; i < ILEN; i++) ones[i] = 1;
    for (int mode = 0; mode < 2; mode++)
        for (int kv = 0; kv < 2; kv++) {
            set_mode(mode == 1);
            forge_error err;
            forge_dtype kvd = kv ? FORGE_DTYPE_BF16 : FORGE_DTYPE_F32;
            forge_context *ctx = make_ctx(m, kvd, INSEQ * ILEN, ILEN, INSEQ * IBLK, &err);
            CHECKF(ctx, "%s", err.msg);
            if (!ctx) continue;
            run_alone(ctx, V, whole, ref);
            const char *what[3] = {"uneven chunks", "token by token", "among 63 others"};
            double d[3];
            for (int k = 0; k < 3; k++) {
                memset(got, 0, (size_t)ILEN * V * 4);
                if (k == 0) run_alone(ctx, V, uneven, got);
                if (k == 1) run_alone(ctx, V, ones, got);
                if (k == 2) run_mixed(ctx, V, got);
                d[k] = max_diff(ref, got, (size_t)ILEN * V);
            }
            printf("    %s path, %s KV: vs whole prompt: %s %s, %s %s, %s %s\n", mode ? "cuBLAS opt-in" : "default",
                   kv ? "bf16" : "f32", what[0], d[0] == 0 ? "identical" : "differs", what[1],
                   d[1] == 0 ? "identical" : "differs", what[2], d[2] == 0 ? "identical" : "differs");
            if (d[0] || d[1] || d[2]) printf("      max |diff| %.3g, %.3g, %.3g\n", d[0], d[1], d[2]);
            if (mode == 0 || strcmp(g_device, "cuda"))
                CHECKF(d[0] == 0 && d[1] == 0 && d[2] == 0, "%s KV: not batch invariant (%.3g %.3g %.3g)",
                       kv ? "bf16" : "f32", d[0], d[1], d[2]);
            else /* the cuBLAS opt-in differs by summation order only */
                CHECKF(d[0] < 1e-3 && d[1] < 1e-3 && d[2] < 1e-3, "cuBLAS path: logits differ by %.3g %.3g %.3g",
                       d[0], d[1], d[2]);
            forge_context_free(ctx);
        }
    set_mode(false);
    free(ref), free(got);
    forge_model_close(m);
}

/* forge_context_copy_kv on the device (the engine's partial-block reuse): sequence 0's first
 * 20 tokens in blocks 4 and 5, block 5's 4 tokens copied into block 8, the rest run on the
 * table {4, 8, 9}: the later logits equal the uncopied run's (the default path: the same bits). */
TEST(copied_kv) {
    forge_model *m = open_stories();
    if (!m) return;
    int V = forge_model_get_info(m)->vocab_size;
    for (int i = 0; i < ILEN; i++) g_prompt[0][i] = (int32_t)(3 + t_rand64() % (uint64_t)(V - 3));
    float *ref = malloc((size_t)ILEN * V * 4), *got = malloc((size_t)ILEN * V * 4);
    set_mode(false);
    for (int kv = 0; kv < 2; kv++) {
        forge_error err;
        forge_context *ctx = make_ctx(m, kv ? FORGE_DTYPE_BF16 : FORGE_DTYPE_F32, ILEN, ILEN, 16, &err);
        CHECKF(ctx, "%s", err.msg);
        if (!ctx) continue;
        run_alone(ctx, V, (const int[]){ILEN}, ref);
        int32_t t1[2] = {4, 5}, t2[3] = {4, 8, 9}, toks[ILEN], pos[ILEN], seq[ILEN] = {0}, rows[ILEN];
        for (int i = 0; i < ILEN; i++) toks[i] = g_prompt[0][i], pos[i] = i, rows[i] = i;
        forge_batch b = {.n_tokens = 20, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 1,
                         .block_tables = (const int32_t *[]){t1}, .n_blocks = (int32_t[]){2}, .n_logits = 0, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
        CHECKF(forge_context_copy_kv(ctx, 5, 8, 4, &err) == FORGE_OK, "%s", err.msg);
        forge_batch c = {.n_tokens = ILEN - 20, .tokens = toks + 20, .positions = pos + 20, .seq = seq, .n_seqs = 1,
                         .block_tables = (const int32_t *[]){t2}, .n_blocks = (int32_t[]){3}, .n_logits = ILEN - 20,
                         .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &c, &err) == FORGE_OK, "%s", err.msg);
        for (int i = 0; i < ILEN - 20; i++) memcpy(got + (size_t)i * V, forge_context_logits(ctx, i), (size_t)V * 4);
        double d = max_diff(ref + (size_t)20 * V, got, (size_t)(ILEN - 20) * V);
        printf("    %s KV, %s: after a copied block: max |diff| %.3g\n", kv ? "bf16" : "f32", forge_context_device(ctx), d);
        CHECKF(d == 0, "%s KV: logits after a copied block differ by %.3g", kv ? "bf16" : "f32", d);
        forge_context_free(ctx);
    }
    set_mode(false);
    free(ref), free(got);
    forge_model_close(m);
}

/* Three sequences decode together (3 rows: graph bucket 4) after 8-token prompts. */
static void decode3(forge_model *m, float *out, int steps, bool graphs, fcuda_stats *st) {
    if (graphs)
        unsetenv("FORGE_CUDA_GRAPHS");
    else
        setenv("FORGE_CUDA_GRAPHS", "0", 1);
    forge_error err;
    int V = forge_model_get_info(m)->vocab_size;
    forge_context *ctx = make_ctx(m, FORGE_DTYPE_AUTO, 64, 8, 3 * IBLK, &err);
    CHECKF(ctx, "%s", err.msg);
    if (!ctx) return;
    int32_t tables[3][IBLK], toks[8], pos[8], seq[8], rows[8], nb[3] = {IBLK, IBLK, IBLK};
    const int32_t *tp[3] = {tables[0], tables[1], tables[2]};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < IBLK; i++) tables[s][i] = s * IBLK + i;
    for (int s = 0; s < 3; s++) { /* prompts */
        for (int i = 0; i < 8; i++) toks[i] = g_prompt[s][i], pos[i] = i, seq[i] = s;
        rows[0] = 7;
        forge_batch b = {.n_tokens = 8, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 3,
                         .block_tables = tp, .n_blocks = nb, .n_logits = 1, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
    }
    for (int k = 0; k < steps; k++) {
        for (int s = 0; s < 3; s++) toks[s] = g_prompt[s][8 + k], pos[s] = 8 + k, seq[s] = s, rows[s] = s;
        forge_batch b = {.n_tokens = 3, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = 3,
                         .block_tables = tp, .n_blocks = nb, .n_logits = 3, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
        for (int s = 0; s < 3; s++)
            memcpy(out + ((size_t)k * 3 + s) * V, forge_context_logits(ctx, s), (size_t)V * 4);
    }
    memset(st, 0, sizeof *st);
    backend_cuda_get_stats(context_backend(ctx), st);
    forge_context_free(ctx);
    unsetenv("FORGE_CUDA_GRAPHS");
}

TEST(graphs_equal_eager) {
    forge_model *m = open_stories();
    if (!m) return;
    int V = forge_model_get_info(m)->vocab_size, steps = 24;
    float *a = calloc((size_t)steps * 3 * V, 4), *b = calloc((size_t)steps * 3 * V, 4);
    fcuda_stats sa, sb;
    decode3(m, a, steps, true, &sa);
    decode3(m, b, steps, false, &sb);
    printf("    graphs: %d captured in %.3f s, %lld graph and %lld eager forwards; without: %d graphs, %lld eager\n",
           sa.n_graphs, sa.capture_seconds, sa.graph_forwards, sa.eager_forwards, sb.n_graphs, sb.eager_forwards);
    if (sa.note[0]) printf("    note: %s\n", sa.note);
    CHECKF(!memcmp(a, b, (size_t)steps * 3 * V * 4), "decode logits with graphs differ from eager (max %.3g)",
           max_diff(a, b, (size_t)steps * 3 * V));
    if (!strcmp(g_device, "cuda")) {
        CHECKF(sa.n_graphs >= 2 && sa.graph_forwards >= steps - 1, "graphs were not used (%d graphs, %lld replays)",
               sa.n_graphs, sa.graph_forwards);
        CHECK(sb.n_graphs == 0 && sb.graph_forwards == 0);
    }
    free(a), free(b);
    forge_model_close(m);
}

/* Quantized GGUF files (stories260K in Q8_0 and Q4_0; the kernels of every type are in
 * cuda_ops against gguf-py's values): the device's logits for a prompt and 40 greedy steps
 * equal the CPU's on the same file, where the CPU multiplies these types with f32
 * activations against the exact weights as the GPU does (AVX-512: quant_matmul_f32, no r16
 * copies); elsewhere (integer dot products of Q8 activations) only within that rounding. */
TEST(quantized_gguf) {
    static const char *files[] = {"tests/fixtures/stories260K-gguf/stories260K.Q8_0.gguf",
                                  "tests/fixtures/stories260K-gguf/stories260K.Q4_0.gguf"};
    static const int qtypes[] = {QT_Q8_0, QT_Q4_0};
    setenv("FORGE_REPACK", "0", 1);
    for (int f = 0; f < 2; f++) {
        forge_error err;
        forge_model *m = forge_model_open(files[f], NULL, &err);
        CHECKF(m, "%s: %s", files[f], err.msg);
        if (!m) continue;
        int V = forge_model_get_info(m)->vocab_size, n = 12, steps = 40;
        bool exact = quant_uses_f32(kernels_get(), quant_get(), qtypes[f]);
        float *lg[2];
        int32_t ids[2][64];
        for (int dev = 0; dev < 2; dev++) {
            const char *saved = g_device;
            if (dev == 0) g_device = "cpu";
            forge_context *ctx = make_ctx(m, FORGE_DTYPE_F32, 64, 64, MAXB, &err);
            g_device = saved;
            CHECKF(ctx, "%s: %s", files[f], err.msg);
            lg[dev] = calloc((size_t)(n + steps) * V, 4);
            if (!ctx) continue;
            seqrun r = {.ctx = ctx, .vocab = V};
            for (int i = 0; i < MAXB; i++) r.table[i] = i;
            int32_t toks[16];
            for (int i = 0; i < n; i++) toks[i] = (int32_t)(1 + (i * 37) % (V - 1));
            forge_status st = feed(&r, toks, n, 0, lg[dev], &err);
            for (int k = 0; !st && k < steps; k++) {
                int32_t t = ids[dev][k] = argmax(lg[dev] + (size_t)(n - 1 + k) * V, V);
                st = feed(&r, &t, 1, n + k, lg[dev] + (size_t)(n + k) * V, &err);
            }
            CHECKF(!st, "%s: %s", files[f], err.msg);
            forge_context_free(ctx);
        }
        double d = max_diff(lg[0], lg[1], (size_t)(n + steps) * V), big = 0;
        for (size_t i = 0; i < (size_t)(n + steps) * V; i++) big = fmax(big, fabs(lg[0][i]));
        int same = 0;
        while (same < steps && ids[0][same] == ids[1][same]) same++;
        printf("    %s: %d of %d greedy ids equal the CPU's, max |logit diff| %.3g (max |logit| %.3g, CPU %s)\n",
               strrchr(files[f], '/') + 1, same, steps, d, big, exact ? "f32 activations" : "Q8 activations");
        if (exact) {
            CHECKF(same == steps, "%s: greedy differs from the CPU at step %d", files[f], same);
            CHECKF(d <= 1e-4 * fmax(1, big), "%s: logits differ from the CPU by %.3g", files[f], d);
        } else {
            CHECKF(d <= 0.05 * fmax(1, big), "%s: logits differ from the CPU by %.3g", files[f], d);
        }
        free(lg[0]), free(lg[1]);
        forge_model_close(m);
    }
    unsetenv("FORGE_REPACK");
}

/* Tokens chosen on the device (forge_context_decode_sample): 64 sequences decode together;
 * each step runs with every logit row copied back, then again (the same K/V rewritten) with
 * every row greedy, with every third row greedy, and with every row drawn (temperature,
 * min-p, uniforms). The greedy ids equal a scan of the copied logits and the draws the CPU
 * sampler's draw from them; such rows have no host logits (only their ids came back: the
 * backend's counters say so), the other rows' logits are the same bits. Then the engine:
 * greedy and seeded temperature requests on the device give the CPU engine's tokens. */
static void on_tok(const forge_event *ev, void *user) {
    int32_t *out = user; /* out[0]: count, then the tokens */
    if (ev->token >= 0 && out[0] < 63) out[1 + out[0]++] = ev->token;
}

TEST(device_sampling) {
    forge_model *m = open_stories();
    if (!m) return;
    int V = forge_model_get_info(m)->vocab_size;
    enum { S = INSEQ, P = 8, STEPS = 4 };
    forge_error err;
    forge_context *ctx = make_ctx(m, FORGE_DTYPE_AUTO, S * P, S, S * IBLK, &err);
    CHECKF(ctx, "%s", err.msg);
    if (!ctx) {
        forge_model_close(m);
        return;
    }
    static int32_t tables[S][IBLK], toks[S * P], pos[S * P], seq[S * P], rows[S * P], nb[S];
    const int32_t *tp[S];
    for (int s = 0; s < S; s++) {
        for (int i = 0; i < IBLK; i++) tables[s][i] = s * IBLK + i;
        tp[s] = tables[s], nb[s] = IBLK;
        for (int i = 0; i < P; i++) {
            int r = s * P + i;
            toks[r] = (int32_t)(3 + (s * 31 + i * 7) % (V - 3)), pos[r] = i, seq[r] = s;
        }
    }
    forge_batch pre = {.n_tokens = S * P, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = S,
                       .block_tables = tp, .n_blocks = nb, .n_logits = 0, .logit_rows = rows};
    CHECKF(forge_context_decode(ctx, &pre, &err) == FORGE_OK, "%s", err.msg);
    float *full = malloc((size_t)S * V * 4);
    forge_row_sample all[S], third[S], draw[S];
    for (int s = 0; s < S; s++) {
        all[s] = (forge_row_sample){.kind = FORGE_ROW_GREEDY};
        third[s] = (forge_row_sample){.kind = s % 3 == 0 ? FORGE_ROW_GREEDY : FORGE_ROW_LOGITS};
        toks[s] = (int32_t)(3 + s % (V - 3));
    }
    sampler_ws *ws = sampler_ws_create(V);
    fcuda_stats st0, st1;
    memset(&st0, 0, sizeof st0), memset(&st1, 0, sizeof st1);
    backend_cuda_get_stats(context_backend(ctx), &st0);
    int bad_ids = 0, bad_null = 0, bad_bits = 0, bad_draws = 0;
    for (int k = 0; k < STEPS; k++) {
        for (int s = 0; s < S; s++) pos[s] = P + k, seq[s] = s, rows[s] = s;
        forge_batch b = {.n_tokens = S, .tokens = toks, .positions = pos, .seq = seq, .n_seqs = S,
                         .block_tables = tp, .n_blocks = nb, .n_logits = S, .logit_rows = rows};
        CHECKF(forge_context_decode(ctx, &b, &err) == FORGE_OK, "%s", err.msg);
        int32_t want[S], want_draw[S];
        for (int s = 0; s < S; s++) {
            memcpy(full + (size_t)s * V, forge_context_logits(ctx, s), (size_t)V * 4);
            want[s] = argmax(full + (size_t)s * V, V);
            draw[s] = (forge_row_sample){.kind = FORGE_ROW_DRAW, .temperature = s % 2 ? 0.8f : 1.3f,
                                         .min_p = s % 4 == 0 ? 0.1f : 0, .u = (double)(t_rand64() >> 11) * 0x1.0p-53};
            want_draw[s] = sampler_draw_plain(ws, full + (size_t)s * V, draw[s].temperature, draw[s].min_p, draw[s].u);
        }
        for (int pass = 0; pass < 3; pass++) {
            const forge_row_sample *rs = pass == 0 ? all : pass == 1 ? third : draw;
            CHECKF(forge_context_decode_sample(ctx, &b, rs, &err) == FORGE_OK, "%s", err.msg);
            for (int s = 0; s < S; s++) {
                if (pass == 2) bad_draws += forge_context_token(ctx, s) != want_draw[s];
                else bad_ids += forge_context_token(ctx, s) != want[s];
                const float *l = forge_context_logits(ctx, s);
                if (rs[s].kind && !strcmp(g_device, "cuda")) bad_null += l != NULL;
                else bad_bits += !l || memcmp(l, full + (size_t)s * V, (size_t)V * 4);
            }
        }
        for (int s = 0; s < S; s++) toks[s] = want[s];
    }
    backend_cuda_get_stats(context_backend(ctx), &st1);
    long long ids_back = st1.id_rows_copied - st0.id_rows_copied, rows_back = st1.logit_rows_copied - st0.logit_rows_copied;
    printf("    %d sequences x %d steps: greedy ids %s, draws %s, %lld rows came back as ids only, %lld as logits\n", S,
           STEPS, bad_ids ? "DIFFER" : "equal the host scan", bad_draws ? "DIFFER" : "equal the CPU sampler's", ids_back,
           rows_back);
    CHECKF(bad_ids == 0, "%d greedy ids differ from the scan of the logits", bad_ids);
    CHECKF(bad_draws == 0, "%d draws differ from the CPU sampler's", bad_draws);
    CHECKF(bad_null == 0, "%d greedy rows still have host logits", bad_null);
    CHECKF(bad_bits == 0, "%d logit rows differ from the full run", bad_bits);
    if (!strcmp(g_device, "cuda")) {
        int per_step = S + S / 3 + (S % 3 != 0) + S;
        CHECK(ids_back == (long long)STEPS * per_step);
        CHECK(rows_back == (long long)STEPS * (S + S - (S / 3 + (S % 3 != 0))));
    }
    free(full);
    sampler_ws_free(ws);
    forge_context_free(ctx);

    /* the engine: greedy and seeded temperature requests (chosen on the device) against the
     * CPU engine */
    static int32_t out[2][8][64];
    memset(out, 0, sizeof out);
    for (int dev = 0; dev < 2; dev++) {
        forge_engine_params ep = {.manual_step = true, .max_seqs = 8, .n_threads = 1, .n_kv_blocks = 64,
                                  .device = dev ? g_device : "cpu"};
        forge_engine *e = forge_engine_create(m, NULL, &ep, &err);
        CHECKF(e, "%s", err.msg);
        if (!e) continue;
        forge_request *r[8];
        for (int q = 0; q < 8; q++) {
            int32_t prompt[6];
            for (int i = 0; i < 6; i++) prompt[i] = (int32_t)(3 + (q * 13 + i * 5) % (V - 3));
            forge_request_params rp = {.prompt_ids = prompt, .n_prompt_ids = 6, .max_tokens = 40, .n = 1,
                                       .ignore_eos = true};
            forge_sampling_params_default(&rp.sampling);
            rp.sampling.temperature = q < 3 ? 0 : q < 6 ? 0.9f : 1.2f;
            rp.sampling.min_p = q == 4 ? 0.05f : 0;
            rp.sampling.has_seed = true;
            rp.sampling.seed = 1000 + (uint64_t)q;
            r[q] = forge_engine_submit(e, &rp, on_tok, out[dev][q], &err);
            CHECKF(r[q], "%s", err.msg);
        }
        for (int guard = 0; guard < 100000 && forge_engine_step(e) > 0; guard++) {
        }
        for (int q = 0; q < 8; q++) forge_request_release(r[q]);
        forge_engine_free(e);
    }
    int same = 0;
    for (int q = 0; q < 8; q++) same += out[0][q][0] == 40 && !memcmp(out[0][q], out[1][q], sizeof out[0][q]);
    printf("    engine, 3 greedy and 5 seeded temperature requests of 40 tokens: %d of 8 equal the CPU engine's\n", same);
    CHECKF(same == 8, "engine output on %s differs from the CPU's (%d of 8 equal)", g_device, same);
    forge_model_close(m);
}

TEST(too_big_is_an_error) {
    if (strcmp(g_device, "cuda")) return;
    forge_model *m = open_stories();
    if (!m) return;
    forge_error err;
    forge_context_params p = {.n_kv_blocks = 16, .max_batch_tokens = 16, .max_logit_rows = 1,
                              .device = "cuda", .gpu_memory_utilization = 1e-8f}; /* about a KB of any card */
    forge_context *ctx = forge_context_create(m, &p, &err);
    CHECKF(!ctx && err.code == FORGE_E_NOMEM && strstr(err.msg, "the weights") && strstr(err.msg, "do not fit"),
           "%s", ctx ? "created" : err.msg);
    if (!ctx) printf("    %s\n", err.msg);
    forge_context_free(ctx);
    p.gpu_memory_utilization = 0;
    p.n_kv_blocks = 20000000; /* about 200 GB of KV cache */
    ctx = forge_context_create(m, &p, &err);
    CHECKF(!ctx && err.code == FORGE_E_NOMEM && strstr(err.msg, "KV cache"), "%s", ctx ? "created" : err.msg);
    if (!ctx) printf("    %s\n", err.msg);
    forge_context_free(ctx);
    forge_model_close(m);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) g_device = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = argv[++i];
        else if (!strcmp(argv[i], "--skip") && i + 1 < argc) g_skip = argv[++i];
        else g_parity_dir = argv[i];
    }
    if (!strcmp(g_device, "cuda")) {
        fcuda_device_info info;
        forge_error err;
        if (backend_cuda_probe(&info, &err)) {
            printf("cuda_model: no GPU can be used: %s\n", err.msg);
            return 77;
        }
        printf("cuda_model: %s, %s\n", info.name, cuda_lib_path());
    }
    unsetenv("FORGE_CUDA_GRAPHS");
    struct { const char *name; void (*fn)(void); } tests[] = {
        {"parity", parity}, {"stories_greedy", stories_greedy}, {"batch_invariance", batch_invariance}, {"quantized_gguf", quantized_gguf}, {"device_sampling", device_sampling},
        {"graphs_equal_eager", graphs_equal_eager}, {"too_big_is_an_error", too_big_is_an_error},
        {"copied_kv", copied_kv}};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (g_skip && strstr(g_skip, tests[i].name)) continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        t_run(tests[i].name, tests[i].fn);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("     (%.1f s)\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    return t_summary();
}
