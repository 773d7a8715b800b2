/* forge bench: model-ready time, decode speed at batch 1 (at two context lengths),
 * prefill speed, and batched decode speed, each next to this machine's roofline:
 * decode is bounded by read bandwidth / (weight bytes + KV bytes read per token),
 * prefill by the f32 FMA peak / FLOPs per token. Token ids are random: speed does not
 * depend on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "forge.h"

enum { BATCH_CTX = 128 }; /* default context of the batched decode measurements */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    forge_context *ctx;
    const forge_model_info *in;
    int n_seqs, blocks_per_seq;
    int32_t *tables; /* n_seqs x blocks_per_seq */
    const int32_t **tp;
    int32_t *nb;
    int32_t *tok, *pos, *seq, *rows;
    int max_batch;
    unsigned rng;
} bench;

static int32_t rand_tok(bench *b) {
    b->rng = b->rng * 1103515245u + 12345u;
    return (int32_t)((b->rng >> 8) % (unsigned)b->in->vocab_size);
}

/* Runs one forward: `per_seq` tokens for each of the first n sequences starting at
 * position start; logits for each sequence's last token. */
static int step(bench *b, int n, int start, int per_seq) {
    int k = 0;
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < per_seq; i++, k++) {
            b->tok[k] = rand_tok(b);
            b->pos[k] = start + i;
            b->seq[k] = s;
        }
        b->rows[s] = k - 1;
    }
    forge_batch bt = {.n_tokens = k, .tokens = b->tok, .positions = b->pos, .seq = b->seq, .n_seqs = b->n_seqs,
                      .block_tables = b->tp, .n_blocks = b->nb, .n_logits = n, .logit_rows = b->rows};
    forge_error err;
    if (forge_context_decode(b->ctx, &bt, &err) != FORGE_OK) {
        fprintf(stderr, "forge bench: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Weight bytes one step of n sequences reads: a dense model's all; a MoE's shared weights
 * plus the experts n tokens are expected to pick (each expert missed by all n with
 * probability (1 - k/E)^n, picks taken as independent and uniform). */
static double batch_weight_bytes(const forge_model_info *in, int n) {
    if (!in->n_experts || !in->expert_bytes) return (double)in->weight_bytes;
    double share = (double)in->n_experts_used / in->n_experts, experts = (double)in->expert_bytes;
    double shared = (double)in->weight_bytes - experts * share;
    return shared + experts * (1.0 - pow(1.0 - share, n));
}

/* Prefills sequences [0, n) to length len, in chunks that fit the batch. */
static int prefill(bench *b, int n, int len) {
    for (int s = 0; s < n; s++) {
        for (int at = 0; at < len;) {
            int c = len - at < b->max_batch ? len - at : b->max_batch;
            int k = 0;
            for (int i = 0; i < c; i++, k++) {
                b->tok[k] = rand_tok(b);
                b->pos[k] = at + i;
                b->seq[k] = s;
            }
            b->rows[0] = k - 1;
            forge_batch bt = {.n_tokens = k, .tokens = b->tok, .positions = b->pos, .seq = b->seq, .n_seqs = b->n_seqs,
                              .block_tables = b->tp, .n_blocks = b->nb, .n_logits = 1, .logit_rows = b->rows};
            forge_error err;
            if (forge_context_decode(b->ctx, &bt, &err) != FORGE_OK) {
                fprintf(stderr, "forge bench: %s\n", err.msg);
                return -1;
            }
            at += c;
        }
    }
    return 0;
}

/* decode steps of n sequences at context ctx_len; returns tokens/s */
static double time_decode(bench *b, int n, int ctx_len, int steps) {
    if (prefill(b, n, ctx_len)) return -1;
    if (step(b, n, ctx_len, 1)) return -1; /* warm-up */
    double t0 = now();
    for (int i = 1; i <= steps; i++)
        if (step(b, n, ctx_len + i, 1)) return -1;
    return (double)n * steps / (now() - t0);
}

/* ---- through the engine: C concurrent requests ----------------------------------------- */

typedef struct {
    double first_ms, last_ms, ttft_ms;
    int n;
    double *gaps; /* inter-token gaps, ms */
    int cap;
} conc_req;

static double now_ms(void) { return now() * 1e3; }

static void conc_event(const forge_event *ev, void *user) {
    conc_req *r = user;
    double t = now_ms();
    if (ev->token < 0) return;
    if (r->n == 0) r->first_ms = t;
    else if (r->n - 1 < r->cap) r->gaps[r->n - 1] = t - r->last_ms;
    r->last_ms = t;
    r->n++;
    if (ev->finish) r->ttft_ms = ev->ttft_ms;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs C requests of `prompt` random ids and `gen` greedy tokens each, all submitted at once. */
static int bench_concurrency(forge_model *m, const forge_model_info *in, int C, int prompt, int gen, double peak) {
    forge_error err;
    int blocks = C * ((prompt + gen) / FORGE_KV_BLOCK_TOKENS + 2), ctx_blocks = in->context_len / FORGE_KV_BLOCK_TOKENS + 1;
    if (blocks < ctx_blocks) blocks = ctx_blocks;
    forge_engine *e = forge_engine_create(m, NULL, &(forge_engine_params){.max_seqs = C < 64 ? 64 : C, .kv_dtype = FORGE_DTYPE_AUTO,
                                                                          .n_kv_blocks = blocks,
                                                                          .max_batched_tokens = C > 512 ? C : 512}, &err);
    if (!e) {
        fprintf(stderr, "forge bench: %s\n", err.msg);
        return -1;
    }
    conc_req *rs = calloc((size_t)C, sizeof *rs);
    forge_request **hs = calloc((size_t)C, sizeof *hs);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)prompt);
    /* each request's inter-token gaps in its own slice of all_gaps; their sorted copy in gaps_sorted
     * (a copy: the decode window below walks every request's own gaps) */
    double *all_gaps = malloc(sizeof(double) * (size_t)C * gen), *ttft = malloc(sizeof(double) * (size_t)C);
    double *gaps_sorted = malloc(sizeof(double) * (size_t)C * gen);
    unsigned rng = 12345;
    double t0 = now_ms();
    for (int i = 0; i < C; i++) {
        rs[i].cap = gen;
        rs[i].gaps = all_gaps + (size_t)i * gen;
        for (int k = 0; k < prompt; k++) {
            rng = rng * 1103515245u + 12345u;
            ids[k] = (int32_t)((rng >> 8) % (unsigned)in->vocab_size);
        }
        forge_request_params rp = {.prompt_ids = ids, .n_prompt_ids = prompt, .max_tokens = gen, .ignore_eos = true};
        forge_sampling_params_default(&rp.sampling);
        rp.sampling.temperature = 0;
        hs[i] = forge_engine_submit(e, &rp, conc_event, &rs[i], &err);
        if (!hs[i]) fprintf(stderr, "forge bench: %s\n", err.msg);
    }
    double all_first = 0, end = 0;
    long long total = 0;
    size_t ngaps = 0;
    for (int i = 0; i < C; i++) {
        if (!hs[i]) continue;
        forge_request_wait(hs[i]);
        forge_request_release(hs[i]);
        all_first = rs[i].first_ms > all_first ? rs[i].first_ms : all_first;
        end = rs[i].last_ms > end ? rs[i].last_ms : end;
        total += rs[i].n;
        ttft[i] = rs[i].ttft_ms;
        for (int k = 0; k + 1 < rs[i].n; k++) gaps_sorted[ngaps++] = rs[i].gaps[k];
    }
    forge_engine_stats st;
    forge_engine_get_stats(e, &st);
    forge_engine_free(e);
    /* steady-state decode: tokens emitted while all C requests are generating (after the last
     * first token, before the first request ends), as llama-batched-bench's TG phase */
    double first_end = 1e300;
    for (int i = 0; i < C; i++)
        if (hs[i] && rs[i].last_ms < first_end) first_end = rs[i].last_ms;
    long long after = 0;
    for (int i = 0; i < C; i++) {
        double t = rs[i].first_ms;
        for (int k = 0; k + 1 < rs[i].n; k++) {
            t += rs[i].gaps[k];
            after += t > all_first && t <= first_end;
        }
    }
    qsort(ttft, (size_t)C, sizeof *ttft, cmp_d);
    qsort(gaps_sorted, ngaps, sizeof *gaps_sorted, cmp_d);
    double wall = (end - t0) / 1e3, dec = (first_end - all_first) / 1e3;
    double H = in->hidden_size, qd = (double)in->n_heads * in->head_dim, kvd = (double)in->n_kv_heads * in->head_dim;
    double flops = 2.0 * in->n_layers * (H * qd * 2 + H * kvd * 2 + 3.0 * H * in->intermediate_size) + 2.0 * H * in->vocab_size;
    printf("concurrency %-3d total %8.1f tok/s, decode %8.1f tok/s (%3.0f%% of FMA roofline %.0f), TTFT p50 %6.0f p99 %6.0f ms, "
           "ITL p50 %6.1f p99 %6.1f ms, overhead %.2f%%, preemptions %lld\n",
           C, total / wall, dec > 0 ? after / dec : 0, dec > 0 ? 100.0 * (after / dec) / (peak / flops) : 0, peak / flops,
           ttft[C / 2], ttft[C - 1 - C / 100], ngaps ? gaps_sorted[ngaps / 2] : 0,
           ngaps ? gaps_sorted[ngaps - 1 - ngaps / 100] : 0,
           st.step_seconds > 0 ? 100 * (st.step_seconds - st.forward_seconds) / st.step_seconds : 0, st.preemptions);
    fflush(stdout);
    free(rs), free(hs), free(ids), free(all_gaps), free(gaps_sorted), free(ttft);
    return 0;
}

static void parse_list(const char *s, int *out, int *n, int max) {
    *n = 0;
    while (s && *s && *n < max) {
        out[(*n)++] = atoi(s);
        s = strchr(s, ',');
        if (s) s++;
    }
}

int cmd_bench(int argc, char **argv) {
    const char *model = getenv("FORGE_MODEL"), *ctxs = "128,1024", *batches = "16,64", *kvs = "auto", *conc = NULL, *quant_s = NULL;
    long threads = 0, prompt = 512, steps = 32, batch_ctx = BATCH_CTX, help = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "M: model folder, .gguf file or Hub id (default $FORGE_MODEL)"},
        {"threads", OPT_INT, &threads, "N: threads (default: the cores this process may use)"},
        {"prompt", OPT_INT, &prompt, "N: prefill length to time (default 512)"},
        {"steps", OPT_INT, &steps, "N: decode steps per measurement (default 32)"},
        {"contexts", OPT_STR, &ctxs, "LIST: contexts for batch-1 decode (default 128,1024)"},
        {"batches", OPT_STR, &batches, "LIST: sequence counts for batched decode (default 16,64)"},
        {"batch-ctx", OPT_INT, &batch_ctx, "N: context of the batched decode (default 128)"},
        {"kv-dtype", OPT_STR, &kvs, "auto|f32|bf16: KV cache type"},
        {"quantize", OPT_STR, &quant_s, "q8_0|q4_0|q4_k: quantize a safetensors model's weights at load"},
        {"concurrency", OPT_STR, &conc, "LIST: run LIST concurrent requests (prompt 128, 128 tokens) through the engine instead"},
        {"help", OPT_FLAG, &help, "this help"},
    };
    int nopt = sizeof opts / sizeof opts[0];
    if (cli_parse("bench", argc, argv, opts, nopt, NULL, 0) < 0) return 2;
    if (help || !model) {
        cli_usage("bench", "--model DIR [options]", opts, nopt);
        return help ? 0 : 2;
    }
    if (prompt < 1 || steps < 1 || threads < 0 || batch_ctx < 1 || batch_ctx > 1 << 20) {
        fprintf(stderr, "forge bench: --prompt, --steps and --batch-ctx must be positive (--batch-ctx at most 1048576)\n");
        return 2;
    }
    int quant;
    if (cli_quantize(quant_s, "bench", &quant) != 0) return 2;
    forge_dtype kvd = !strcmp(kvs, "f32") ? FORGE_DTYPE_F32 : !strcmp(kvs, "bf16") ? FORGE_DTYPE_BF16 : FORGE_DTYPE_AUTO;
    int ctx_list[8], n_ctx, bat_list[8], n_bat;
    parse_list(ctxs, ctx_list, &n_ctx, 8);
    parse_list(batches, bat_list, &n_bat, 8);

    forge_error err;
    char dir[4096];
    if (forge_model_resolve(model, &(forge_hub_params){.progress = true}, dir, sizeof dir, &err) != FORGE_OK) {
        fprintf(stderr, "forge bench: %s\n", err.msg);
        return 1;
    }
    model = dir;
    double t0 = now();
    forge_model *m = forge_model_open(model, &(forge_model_params){.n_threads = (int)threads, .quantize = quant}, &err);
    if (!m) {
        fprintf(stderr, "forge bench: %s\n", err.msg);
        return 1;
    }
    const forge_model_info *in = forge_model_get_info(m);
    if (conc) {
        int cl[8], nc;
        parse_list(conc, cl, &nc, 8);
        double peak = forge_measure_fma_peak(in->n_threads);
        printf("model %s, %d threads, kernels %s, f32 FMA peak %.1f GFLOP/s, ready in %.3f s\n", model, in->n_threads,
               forge_kernels_name(), peak / 1e9, now() - t0);
        for (int i = 0; i < nc; i++)
            if (cl[i] > 0 && bench_concurrency(m, in, cl[i], 128, 128, peak) != 0) break;
        forge_model_close(m);
        return 0;
    }
    int max_ctx = (int)prompt;
    for (int i = 0; i < n_ctx; i++) max_ctx = ctx_list[i] > max_ctx ? ctx_list[i] : max_ctx;
    if (n_bat > 0 && max_ctx < batch_ctx) max_ctx = (int)batch_ctx;
    int max_seqs = 1;
    for (int i = 0; i < n_bat; i++) max_seqs = bat_list[i] > max_seqs ? bat_list[i] : max_seqs;
    int blocks_per_seq = (max_ctx + (int)steps + 2) / FORGE_KV_BLOCK_TOKENS + 1;
    int max_batch = (int)prompt > max_seqs ? (int)prompt : max_seqs;
    forge_context *ctx = forge_context_create(m, &(forge_context_params){
        .n_kv_blocks = blocks_per_seq * max_seqs, .max_batch_tokens = max_batch, .max_logit_rows = max_seqs,
        .kv_dtype = kvd, .n_threads = (int)threads}, &err);
    if (!ctx) {
        fprintf(stderr, "forge bench: %s\n", err.msg);
        forge_model_close(m);
        return 1;
    }
    double ready = now() - t0;

    bench b = {.ctx = ctx, .in = in, .n_seqs = max_seqs, .blocks_per_seq = blocks_per_seq, .max_batch = max_batch, .rng = 7};
    b.tables = malloc(sizeof(int32_t) * (size_t)blocks_per_seq * max_seqs);
    b.tp = malloc(sizeof *b.tp * (size_t)max_seqs);
    b.nb = malloc(sizeof(int32_t) * (size_t)max_seqs);
    b.tok = malloc(sizeof(int32_t) * (size_t)max_batch);
    b.pos = malloc(sizeof(int32_t) * (size_t)max_batch);
    b.seq = malloc(sizeof(int32_t) * (size_t)max_batch);
    b.rows = malloc(sizeof(int32_t) * (size_t)max_batch);
    for (int s = 0; s < max_seqs; s++) {
        for (int i = 0; i < blocks_per_seq; i++) b.tables[s * blocks_per_seq + i] = s * blocks_per_seq + i;
        b.tp[s] = b.tables + (size_t)s * blocks_per_seq;
        b.nb[s] = blocks_per_seq;
    }

    int nt = in->n_threads;
    double bw = forge_measure_read_bandwidth(nt), peak = forge_measure_fma_peak(nt), bf16_peak = forge_measure_bf16_dot_peak(nt);
    size_t kv_el = kvd == FORGE_DTYPE_F32 || (kvd == FORGE_DTYPE_AUTO && in->dtype == FORGE_DTYPE_F32) ? 4 : 2;
    double kv_per_pos = (double)in->n_layers * 2 * in->n_kv_heads * in->head_dim * kv_el;
    /* matmul FLOPs per token (lm_head only for rows with logits) */
    double H = in->hidden_size, qd = (double)in->n_heads * in->head_dim, kvd_ = (double)in->n_kv_heads * in->head_dim;
    /* per token: attention projections and the MLP (a MoE's: router and its top-k experts) */
    double mlp = in->n_experts ? 3.0 * H * in->moe_intermediate_size * in->n_experts_used + H * in->n_experts
                               : 3.0 * H * in->intermediate_size;
    double mm_flops = 2.0 * in->n_layers * (H * qd * 2 + H * kvd_ * 2 + mlp);
    double lm_flops = 2.0 * H * in->vocab_size;

    if (in->n_experts)
        printf("model      %s (%s, %d layers, hidden %d, vocab %d, %d experts, top %d), %.1f MB of weights, %.1f MB read "
               "per token\n", model, in->model_type, in->n_layers, in->hidden_size, in->vocab_size, in->n_experts,
               in->n_experts_used, batch_weight_bytes(in, 1 << 20) / 1e6, in->weight_bytes / 1e6);
    else
        printf("model      %s (%s, %d layers, hidden %d, vocab %d), %.1f MB of weights\n", model, in->model_type,
               in->n_layers, in->hidden_size, in->vocab_size, in->weight_bytes / 1e6);
    printf("machine    %d threads, kernels %s, read bandwidth %.1f GB/s, f32 FMA peak %.1f GFLOP/s", nt,
           forge_kernels_name(), bw / 1e9, peak / 1e9);
    if (bf16_peak > 0) printf(", BF16 dot-product peak %.1f GFLOP/s", bf16_peak / 1e9);
    /* every kernel set multiplies in f32 (bf16/f16 weights widened exactly), so the f32 FMA
     * peak bounds prefill and batched decode */
    printf("\nrooflines  decode: read bandwidth; prefill and batched decode: the f32 FMA peak (matmul multiplies in f32)\n");
    printf("ready      %.3f s (model open + context)\n", ready);
    printf("%-28s %12s %12s %8s\n", "test", "tok/s", "roofline", "ratio");

    for (int i = 0; i < n_ctx; i++) {
        double r = time_decode(&b, 1, ctx_list[i], (int)steps);
        if (r < 0) goto done;
        double bytes = (double)in->weight_bytes + kv_per_pos * (ctx_list[i] + steps / 2.0);
        char name[64];
        snprintf(name, sizeof name, "decode batch 1, ctx %d", ctx_list[i]);
        printf("%-28s %12.1f %12.1f %7.0f%%\n", name, r, bw / bytes, 100 * r / (bw / bytes));
        fflush(stdout);
    }
    {
        if (step(&b, 1, 0, (int)prompt)) goto done; /* warm-up */
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t1 = now();
            if (step(&b, 1, 0, (int)prompt)) goto done;
            double dt = now() - t1;
            best = dt < best ? dt : best;
        }
        double r = prompt / best;
        double attn = 2.0 * 2 * in->n_layers * qd * (prompt / 2.0); /* QK and PV at mean context */
        double roof = peak / (mm_flops + attn + lm_flops / prompt);
        char name[64];
        snprintf(name, sizeof name, "prefill %ld", prompt);
        printf("%-28s %12.1f %12.1f %7.0f%%\n", name, r, roof, 100 * r / roof);
        fflush(stdout);
    }
    for (int i = 0; i < n_bat; i++) {
        int n = bat_list[i], c = (int)batch_ctx;
        double r = time_decode(&b, n, c, (int)steps);
        if (r < 0) goto done;
        /* bound: weights once per step + each sequence's KV, or FLOPs, whichever is slower */
        double t_mem = (batch_weight_bytes(in, n) + n * kv_per_pos * (c + steps / 2.0)) / bw;
        double t_fma = n * (mm_flops + lm_flops + 4.0 * in->n_layers * qd * c) / peak;
        double roof = n / (t_mem > t_fma ? t_mem : t_fma);
        char name[64];
        snprintf(name, sizeof name, "decode batch %d, ctx %d", n, c);
        printf("%-28s %12.1f %12.1f %7.0f%%\n", name, r, roof, 100 * r / roof);
        fflush(stdout);
    }
done:
    free(b.tables), free(b.tp), free(b.nb), free(b.tok), free(b.pos), free(b.seq), free(b.rows);
    forge_context_free(ctx);
    forge_model_close(m);
    return 0;
}
