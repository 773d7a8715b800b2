/* forge perplexity: llama-perplexity's measurement. The text is tokenized once (with BOS
 * when the tokenizer adds one), cut into chunks of --ctx tokens (a trailing partial chunk
 * is dropped), each chunk's first token replaced by BOS and evaluated from an empty cache;
 * only the second half of each chunk is scored: the negative log-likelihood of token j+1
 * given tokens 0..j for first = ctx/2 <= j < ctx - 1. Prints the running estimate after each
 * chunk as "[i]ppl," and last "PPL = <value>" (with llama.cpp's +/- spread). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mfile.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "forge.h"

static const char SYNOPSIS[] =
    "--model M --file TEXT [--ctx N] [--chunks N] [--batch N] [--threads N] [--kv-dtype f32|bf16]\n"
    "Perplexity of a model on a text, by llama-perplexity's convention (chunks of N tokens\n"
    "starting with BOS, the second half of each chunk scored). The last line is \"PPL = <value>\".";

int cmd_perplexity(int argc, char **argv) {
    const char *model_arg = NULL, *file = NULL, *kv = "f32", *quant_s = NULL;
    long n_ctx = 0, chunks = -1, batch = 512, threads = 0;
    int help = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model_arg, "M: model folder, .gguf file or Hub id"},
        {"file", OPT_STR, &file, "TEXT: the text file"},
        {"ctx", OPT_INT, &n_ctx, "N: tokens per chunk (default: the model's context, at most 4096)"},
        {"chunks", OPT_INT, &chunks, "N: score at most N chunks (default: all)"},
        {"batch", OPT_INT, &batch, "N: tokens per forward call (default 512)"},
        {"threads", OPT_INT, &threads, "N: threads (default: the cores this process may use)"},
        {"kv-dtype", OPT_STR, &kv, "f32|bf16: KV cache (default f32)"},
        {"quantize", OPT_STR, &quant_s, "q8_0|q4_0|q4_k: quantize a safetensors model's weights at load"},
        {"help", OPT_FLAG, &help, ": this help"},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[4];
    int np = cli_parse("perplexity", argc, argv, opts, n_opts, pos, 4);
    if (np < 0) return 2;
    if (help) {
        cli_usage("perplexity", SYNOPSIS, opts, n_opts);
        return 0;
    }
    if (!file || np > 0 || n_ctx < 0 || n_ctx > 1 << 20 || batch < 1 || batch > 65536 || threads < 0) {
        cli_usage("perplexity", SYNOPSIS, opts, n_opts);
        return 2;
    }
    forge_dtype kvd;
    if (cli_kv_dtype(kv, "perplexity", &kvd) != 0) return 2;
    if (kvd == FORGE_DTYPE_AUTO) kvd = FORGE_DTYPE_F32;
    int quant;
    if (cli_quantize(quant_s, "perplexity", &quant) != 0) return 2;

    forge_error err;
    char *text = NULL;
    size_t text_len = 0;
    if (file_read_all(file, (size_t)1 << 31, &text, &text_len, &err)) {
        fprintf(stderr, "forge perplexity: %s\n", err.msg);
        return 1;
    }
    char dir[4096];
    const char *model = model_arg && *model_arg ? model_arg : getenv("FORGE_MODEL");
    if (!model || !*model) {
        if (cli_default_model(dir, sizeof dir) != 0) {
            fprintf(stderr, "forge perplexity: no --model given\n");
            free(text);
            return 2;
        }
    } else if (forge_model_resolve(model, &(forge_hub_params){.progress = true}, dir, sizeof dir, &err) != FORGE_OK) {
        fprintf(stderr, "forge perplexity: %s\n", err.msg);
        free(text);
        return 1;
    }
    int rc = 1;
    forge_tokens toks = {0};
    forge_context *ctx = NULL;
    int32_t *ids = NULL, *posn = NULL, *seq = NULL, *rows = NULL, *table = NULL;
    forge_tokenizer *tok = forge_tokenizer_open(dir, &err);
    forge_model *m = tok ? forge_model_open(dir, &(forge_model_params){.n_threads = (int)threads, .quantize = quant}, &err) : NULL;
    if (!m) goto fail;
    const forge_model_info *in = forge_model_get_info(m);
    const forge_tokenizer_info *ti = forge_tokenizer_get_info(tok);
    if (n_ctx == 0) n_ctx = in->context_len < 4096 ? in->context_len : 4096;
    if (n_ctx < 4 || n_ctx > in->context_len) {
        fprintf(stderr, "forge perplexity: --ctx must be between 4 and the model's context (%d)\n", in->context_len);
        goto out;
    }
    if (forge_tokenizer_encode(tok, text, text_len, FORGE_ENCODE_ADD_SPECIAL, &toks, &err)) goto fail;
    if ((long)toks.n < 2 * n_ctx) {
        fprintf(stderr, "forge perplexity: the text is %zu tokens; a context of %ld needs at least %ld\n", toks.n, n_ctx,
                2 * n_ctx);
        goto out;
    }
    long n_chunk = (long)toks.n / n_ctx;
    if (chunks >= 0 && chunks < n_chunk) n_chunk = chunks;
    int B = (int)(batch < n_ctx ? batch : n_ctx);
    int n_blocks = (int)((n_ctx + FORGE_KV_BLOCK_TOKENS - 1) / FORGE_KV_BLOCK_TOKENS);
    ctx = forge_context_create(m, &(forge_context_params){.n_kv_blocks = n_blocks, .max_batch_tokens = B,
                                                          .max_logit_rows = B, .kv_dtype = kvd,
                                                          .n_threads = (int)threads},
                               &err);
    if (!ctx) goto fail;
    ids = malloc((size_t)B * sizeof *ids);
    posn = malloc((size_t)B * sizeof *posn);
    seq = calloc((size_t)B, sizeof *seq);
    rows = malloc((size_t)B * sizeof *rows);
    table = malloc((size_t)n_blocks * sizeof *table);
    if (!ids || !posn || !seq || !rows || !table) {
        fprintf(stderr, "forge perplexity: out of memory\n");
        goto out;
    }
    for (int i = 0; i < n_blocks; i++) table[i] = i;
    const int32_t *tables[1] = {table};
    int32_t nb[1] = {n_blocks};
    fprintf(stderr, "forge perplexity: %zu tokens, %ld chunks of %ld, batch %d, kv %s\n", toks.n, n_chunk, n_ctx, B,
            kvd == FORGE_DTYPE_F32 ? "f32" : "bf16");
    int V = in->vocab_size, first = (int)(n_ctx / 2);
    double nll = 0, nll2 = 0;
    long count = 0;
    for (long c = 0; c < n_chunk; c++) {
        const int32_t *ct = toks.ids + c * n_ctx;
        for (int at = 0; at < n_ctx; at += B) {
            int n = (int)(n_ctx - at < B ? n_ctx - at : B), nl = 0;
            for (int i = 0; i < n; i++) {
                ids[i] = ct[at + i];
                posn[i] = at + i;
                if (at + i >= first && at + i < n_ctx - 1) rows[nl++] = i;
            }
            if (at == 0 && ti->add_bos && ti->bos_id >= 0) ids[0] = ti->bos_id;
            forge_batch b = {.n_tokens = n, .tokens = ids, .positions = posn, .seq = seq, .n_seqs = 1,
                             .block_tables = tables, .n_blocks = nb, .n_logits = nl, .logit_rows = rows};
            if (forge_context_decode(ctx, &b, &err)) goto fail;
            for (int r = 0; r < nl; r++) {
                const float *lg = forge_context_logits(ctx, r);
                int j = at + rows[r];
                float mx = lg[0];
                for (int v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
                double se = 0;
                for (int v = 0; v < V; v++) se += expf(lg[v] - mx);
                int target = ct[j + 1];
                double lp = (double)(lg[target] - mx) - log(se);
                nll -= lp;
                nll2 += lp * lp;
                count++;
            }
        }
        printf("[%ld]%.4f,", c + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\n");
    double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
    double ppl = exp(mean);
    double spread = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) * ppl : 0;
    printf("PPL = %.4f +/- %.5f\n", ppl, spread);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "forge perplexity: %s\n", err.msg);
out:
    free(ids);
    free(posn);
    free(seq);
    free(rows);
    free(table);
    forge_context_free(ctx);
    forge_model_close(m);
    forge_tokenizer_close(tok);
    forge_tokens_free(&toks);
    free(text);
    return rc;
}
