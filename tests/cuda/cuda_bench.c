/* cuda_bench: speed of the CUDA backend next to the card's memory-bandwidth roofline,
 * measured in the same run: the first request's warm-up (model open, upload, first prefill,
 * first decode step with graph capture), single-stream decode, batched decode (1, 8, 64
 * sequences by default) and prefill. Decode is bound by reading the weights (and the KV
 * cache) once per step, so the roofline of a step is bandwidth / (weight bytes + KV bytes
 * read), times the sequences it serves. Token ids are random: speed does not depend on them.
 *
 *   cuda_bench --model DIR [--device cuda|cpu] [--ctx 128] [--steps 64] [--batches 1,8,64]
 *              [--prompt 512] [--quantize q8_0|q4_0|q4_k] [--device-greedy 1]
 * (--quantize: the model's matrices quantized at load, forge_model_params.quantize, to
 * measure the quantized GEMV without a GGUF file; FORGE_CUDA_BLAS=1 in the environment
 * measures the cuBLAS opt-in instead of the batch-invariant default; --device-greedy 1: decode
 * steps ask for greedy tokens, forge_context_decode_sample, so only ids come back, as the
 * engine does for greedy requests, instead of every row's logits).
 * Prints a table and one "RESULT {json}" line. Exit 77 when no GPU can be used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "forge.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct bench {
    forge_context *ctx;
    int vocab, max_seqs, blocks_per_seq, max_batch;
    int32_t *tables, *nb, *tok, *pos, *seq, *rows;
    const int32_t **tp;
    unsigned rng;
    forge_row_sample *greedy; /* decode steps: tokens chosen on the device (NULL: logits back) */
} bench;

static int32_t rand_tok(bench *b) {
    b->rng = b->rng * 1103515245u + 12345u;
    return (int32_t)((b->rng >> 8) % (unsigned)b->vocab);
}

static int run(bench *b, int n, int n_logits, const forge_row_sample *rows) {
    forge_batch bt = {.n_tokens = n, .tokens = b->tok, .positions = b->pos, .seq = b->seq, .n_seqs = b->max_seqs,
                      .block_tables = b->tp, .n_blocks = b->nb, .n_logits = n_logits, .logit_rows = b->rows};
    forge_error err;
    if (forge_context_decode_sample(b->ctx, &bt, rows, &err) != FORGE_OK) {
        fprintf(stderr, "cuda_bench: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Prefills sequences [s0, s0 + n) to len tokens, in batches of at most max_batch tokens. */
static int prefill(bench *b, int s0, int n, int len) {
    for (int s = s0; s < s0 + n; s++)
        for (int at = 0; at < len;) {
            int c = len - at < b->max_batch ? len - at : b->max_batch;
            for (int i = 0; i < c; i++) b->tok[i] = rand_tok(b), b->pos[i] = at + i, b->seq[i] = s;
            b->rows[0] = c - 1;
            if (run(b, c, 1, NULL)) return -1;
            at += c;
        }
    return 0;
}

/* One decode step of sequences [0, n) at position p, logits for each. */
static int step(bench *b, int n, int p) {
    for (int s = 0; s < n; s++) b->tok[s] = rand_tok(b), b->pos[s] = p, b->seq[s] = s, b->rows[s] = s;
    return run(b, n, n, b->greedy);
}

static void parse_list(const char *s, int *out, int *n, int max) {
    for (*n = 0; s && *s && *n < max;) {
        out[(*n)++] = atoi(s);
        s = strchr(s, ',');
        if (s) s++;
    }
}

int main(int argc, char **argv) {
    const char *model = NULL, *device = "cuda", *batches = "1,8,64";
    int ctx_len = 128, steps = 64, prompt = 512, quantize = FORGE_QUANT_NONE;
    const char *qname = "as stored";
    int device_greedy = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--ctx")) ctx_len = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batches")) batches = argv[i + 1];
        else if (!strcmp(argv[i], "--prompt")) prompt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--device-greedy"))
            device_greedy = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--quantize") && (qname = argv[i + 1]))
            quantize = !strcmp(argv[i + 1], "q8_0")   ? FORGE_QUANT_Q8_0
                       : !strcmp(argv[i + 1], "q4_0") ? FORGE_QUANT_Q4_0
                       : !strcmp(argv[i + 1], "q4_k") ? FORGE_QUANT_Q4_K
                                                      : -1;
        else model = NULL, i = argc;
    }
    if (!model || ctx_len < 1 || steps < 1 || prompt < 1 || quantize < 0) {
        fprintf(stderr, "usage: cuda_bench --model DIR [--device cuda|cpu] [--ctx 128] [--steps 64] "
                        "[--batches 1,8,64] [--prompt 512] [--quantize q8_0|q4_0|q4_k] [--device-greedy 1]\n");
        return 2;
    }
    int bl[8], nbat;
    parse_list(batches, bl, &nbat, 8);
    int max_seqs = 1;
    for (int i = 0; i < nbat; i++) max_seqs = bl[i] > max_seqs ? bl[i] : max_seqs;

    forge_error err;
    bool cuda = !strcmp(device, "cuda");
    fcuda_device_info info = {0};
    double bw;
    if (cuda) {
        const fcuda_api *api = cuda_api_get(&err);
        if (!api || api->probe(&info, &err)) {
            printf("cuda_bench: no GPU can be used: %s\n", err.msg);
            return 77;
        }
        bw = api->measure_bandwidth((size_t)2 << 30, &err);
    } else {
        snprintf(info.name, sizeof info.name, "CPU (%s kernels)", forge_kernels_name());
        bw = forge_measure_read_bandwidth(0);
    }
    if (bw <= 0) {
        fprintf(stderr, "cuda_bench: bandwidth probe failed: %s\n", err.msg);
        return 1;
    }

    double t0 = now();
    forge_model_params mp = forge_model_default_params();
    mp.quantize = quantize;
    forge_model *m = forge_model_open(model, &mp, &err);
    if (!m) {
        fprintf(stderr, "cuda_bench: %s\n", err.msg);
        return 1;
    }
    double t_open = now() - t0;
    const forge_model_info *in = forge_model_get_info(m);
    int blocks_per_seq = (ctx_len + steps + 2) / FORGE_KV_BLOCK_TOKENS + 1;
    int pblocks = (prompt + 1) / FORGE_KV_BLOCK_TOKENS + 1;
    if (pblocks > blocks_per_seq) blocks_per_seq = pblocks;
    int max_batch = prompt > max_seqs ? prompt : max_seqs;
    double t1 = now();
    forge_context *ctx = forge_context_create(
        m, &(forge_context_params){.n_kv_blocks = blocks_per_seq * max_seqs, .max_batch_tokens = max_batch,
                                   .max_logit_rows = max_seqs, .kv_dtype = FORGE_DTYPE_AUTO, .device = device},
        &err);
    if (!ctx) {
        fprintf(stderr, "cuda_bench: %s\n", err.msg);
        forge_model_close(m);
        return 1;
    }
    double t_ctx = now() - t1;

    bench b = {.ctx = ctx, .vocab = in->vocab_size, .max_seqs = max_seqs, .blocks_per_seq = blocks_per_seq,
               .max_batch = max_batch, .rng = 7};
    b.tables = malloc(sizeof(int32_t) * (size_t)blocks_per_seq * max_seqs);
    b.tp = malloc(sizeof *b.tp * (size_t)max_seqs);
    b.nb = malloc(sizeof(int32_t) * (size_t)max_seqs);
    b.tok = malloc(sizeof(int32_t) * (size_t)max_batch);
    b.pos = malloc(sizeof(int32_t) * (size_t)max_batch);
    b.seq = malloc(sizeof(int32_t) * (size_t)max_batch);
    b.rows = malloc(sizeof(int32_t) * (size_t)max_batch);
    if (device_greedy) {
        b.greedy = calloc((size_t)max_seqs, sizeof *b.greedy);
        for (int s = 0; s < max_seqs; s++) b.greedy[s].kind = FORGE_ROW_GREEDY;
    }
    for (int s = 0; s < max_seqs; s++) {
        for (int i = 0; i < blocks_per_seq; i++) b.tables[s * blocks_per_seq + i] = s * blocks_per_seq + i;
        b.tp[s] = b.tables + (size_t)s * blocks_per_seq;
        b.nb[s] = blocks_per_seq;
    }

    /* the first request: prefill ctx_len tokens, then one decode step */
    double t2 = now();
    if (prefill(&b, 0, 1, ctx_len)) return 1;
    double t_first_prefill = now() - t2;
    t2 = now();
    if (step(&b, 1, ctx_len)) return 1;
    double t_first_step = now() - t2;
    double warm = t_open + t_ctx + t_first_prefill + t_first_step;

    size_t kv_el = in->dtype == FORGE_DTYPE_F32 ? 4 : 2;
    double kv_per_pos = (double)in->n_layers * 2 * in->n_kv_heads * in->head_dim * kv_el;
    printf("device     %s, %.1f GB/s read bandwidth (measured)\n", info.name, bw / 1e9);
    const char *blas = getenv("FORGE_CUDA_BLAS");
    const char *gemm = cuda && blas && atoi(blas) ? "cuBLAS opt-in" : "batch-invariant default";
    printf("model      %s (%s, %d layers, hidden %d, vocab %d), %.1f MB of weights (%s), %s GEMM, decode "
           "returns %s\n",
           model, in->model_type, in->n_layers, in->hidden_size, in->vocab_size, in->weight_bytes / 1e6, qname, gemm,
           device_greedy ? "greedy ids (chosen on the device)" : "every row's logits");
    printf("warm-up    %.3f s to the first token: open %.3f, context (upload) %.3f, prefill %d %.3f, first "
           "step %.3f\n",
           warm, t_open, t_ctx, ctx_len, t_first_prefill, t_first_step);
    printf("%-34s %12s %12s %8s\n", "test", "tok/s", "roofline", "ratio");
    char json[4096];
    int jl = snprintf(json, sizeof json,
                      "{\"device\":\"%s\",\"model\":\"%s\",\"weights\":\"%s\",\"gemm\":\"%s\",\"device_greedy\":%d,"
                      "\"bandwidth_gbs\":%.1f,"
                      "\"weight_mb\":%.1f,\"warmup_s\":%.3f,\"upload_s\":%.3f,\"first_step_s\":%.4f",
                      info.name, model, qname, gemm, device_greedy, bw / 1e9, in->weight_bytes / 1e6, warm, t_ctx, t_first_step);

    for (int i = 0; i < nbat; i++) {
        int n = bl[i];
        if (n > 1 && prefill(&b, 1, n - 1, ctx_len)) return 1; /* sequence 0 is already there */
        for (int w = 0; w < 2; w++)                            /* warm-up: graph capture for this size */
            if (step(&b, n, ctx_len + 1 + w)) return 1;
        double ts = now();
        for (int k = 0; k < steps; k++)
            if (step(&b, n, ctx_len + 3 + k)) return 1;
        double el = now() - ts, tps = (double)n * steps / el;
        double bytes = (double)in->weight_bytes + n * kv_per_pos * (ctx_len + 3 + steps / 2.0);
        double roof = bw / bytes * n;
        char name[64];
        snprintf(name, sizeof name, "decode %d seq%s, ctx %d", n, n > 1 ? "s" : "", ctx_len);
        printf("%-34s %12.1f %12.1f %7.0f%%\n", name, tps, roof, 100 * tps / roof);
        jl += snprintf(json + jl, sizeof json - (size_t)jl, ",\"decode_%d_tps\":%.1f,\"decode_%d_roofline\":%.1f", n,
                       tps, n, roof);
        fflush(stdout);
        /* sequences restart at ctx_len for the next batch size: positions are rewritten */
    }
    {
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            for (int i = 0; i < prompt; i++) b.tok[i] = rand_tok(&b), b.pos[i] = i, b.seq[i] = 0;
            b.rows[0] = prompt - 1;
            double ts = now();
            if (run(&b, prompt, 1, NULL)) return 1;
            double el = now() - ts;
            if (el < best) best = el;
        }
        char name[64];
        snprintf(name, sizeof name, "prefill %d", prompt);
        printf("%-34s %12.1f\n", name, prompt / best);
        jl += snprintf(json + jl, sizeof json - (size_t)jl, ",\"prefill_%d_tps\":%.1f", prompt, prompt / best);
    }
    fcuda_stats st;
    if (backend_cuda_get_stats(context_backend(ctx), &st)) {
        printf("backend    GEMV up to %d rows, graphs up to %d rows: %d captured in %.3f s, %lld graph / %lld eager "
               "forwards; logits buffer %s%s%s\n",
               st.gemv_max_rows, st.graph_max_rows, st.n_graphs, st.capture_seconds, st.graph_forwards,
               st.eager_forwards, st.logits_pinned ? "pinned" : "staged", st.note[0] ? "; " : "", st.note);
        jl += snprintf(json + jl, sizeof json - (size_t)jl, ",\"graphs\":%d,\"capture_s\":%.3f", st.n_graphs,
                       st.capture_seconds);
    }
    snprintf(json + jl, sizeof json - (size_t)jl, "}");
    printf("RESULT %s\n", json);
    forge_context_free(ctx);
    forge_model_close(m);
    free(b.tables), free(b.tp), free(b.nb), free(b.tok), free(b.pos), free(b.seq), free(b.rows), free(b.greedy);
    return 0;
}
