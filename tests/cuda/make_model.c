/* make_model: writes a random-weight model of a real shape (HF layout: config.json +
 * model.safetensors) for the GPU benchmarks, in C so the GPU machine needs no Python.
 * Speed does not depend on the values, only on shape and dtype; values are still sane
 * (finite activations through many layers): linear weights U(-a, a) with a =
 * gain * sqrt(3 / fan_in) (gain 0.5 for o_proj/down_proj), embeddings U(+-0.087) (sd
 * 0.05), norms 1 + U(+-0.05), biases U(+-0.035). Each 1 MiB chunk of a tensor has its own
 * seed (the run's seed, the tensor's name, the chunk), so the output does not depend on
 * the thread count.
 *
 *   make_model --like CONFIG.json --dtype bf16|f16|f32 --out DIR [--seed N] [--threads N]
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/mfile.h"
#include "base/strbuf.h"
#include "base/threadpool.h"
#include "kernels/kernels.h"
#include "model/config.h"

enum { CHUNK = 1 << 20 }; /* elements */

typedef enum { K_LINEAR, K_LINEAR_OUT, K_EMBED, K_NORM, K_BIAS } tensor_kind;

typedef struct spec {
    char name[96];
    long long rows, cols; /* cols 0: a vector */
    tensor_kind kind;
} spec;

typedef struct gen_job {
    const spec *s;
    forge_dtype dt;
    unsigned long long seed;
    long long first, n; /* elements of this batch */
    unsigned char *out;
} gen_job;

static unsigned long long mix(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned long long name_hash(const char *s) {
    unsigned long long h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void gen_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    gen_job *j = ctx;
    long long c0 = (long long)chunk * CHUNK, c1 = c0 + CHUNK;
    if (c1 > j->n) c1 = j->n;
    long long global = (j->first + c0) / CHUNK;
    unsigned long long st = mix(j->seed ^ name_hash(j->s->name) ^ mix((unsigned long long)global + 1));
    double fan = j->s->cols > 0 ? (double)j->s->cols : 1;
    float lo = 0, span = 1, base = 0;
    switch (j->s->kind) {
    case K_LINEAR: span = (float)sqrt(3.0 / fan); break;
    case K_LINEAR_OUT: span = (float)(0.5 * sqrt(3.0 / fan)); break;
    case K_EMBED: span = 0.0866f; break;
    case K_NORM: span = 0.05f, base = 1; break;
    case K_BIAS: span = 0.035f; break;
    }
    lo = base - span;
    size_t esz = dtype_size(j->dt);
    for (long long i = c0; i < c1; i++) {
        st += 0x9E3779B97F4A7C15ull;
        float u = (float)(mix(st) >> 40) * (1.0f / 16777216.0f); /* [0, 1) */
        float v = lo + 2 * span * u;
        unsigned char *o = j->out + (size_t)i * esz;
        if (j->dt == FORGE_DTYPE_F32) {
            memcpy(o, &v, 4);
        } else {
            uint16_t h = j->dt == FORGE_DTYPE_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
            memcpy(o, &h, 2);
        }
    }
}

static int add(spec *s, int n, const char *name, long long rows, long long cols, tensor_kind k) {
    snprintf(s[n].name, sizeof s[n].name, "%s", name);
    s[n].rows = rows;
    s[n].cols = cols;
    s[n].kind = k;
    return n + 1;
}

/* The tensors model_bind (src/model/model.c) expects for this config. */
static int specs_of(const model_config *c, spec *s) {
    int n = 0, H = c->hidden_size, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    int I = c->intermediate_size;
    char nm[96];
    n = add(s, n, "model.embed_tokens.weight", c->vocab_size, H, K_EMBED);
    for (int l = 0; l < c->n_layers; l++) {
        struct { const char *p; int rows, cols; bool bias; tensor_kind k; } lin[] = {
            {"self_attn.q_proj", qd, H, c->q_bias, K_LINEAR}, {"self_attn.k_proj", kvd, H, c->k_bias, K_LINEAR},
            {"self_attn.v_proj", kvd, H, c->v_bias, K_LINEAR}, {"self_attn.o_proj", H, qd, c->o_bias, K_LINEAR_OUT},
            {"mlp.gate_proj", I, H, c->mlp_bias, K_LINEAR},    {"mlp.up_proj", I, H, c->mlp_bias, K_LINEAR},
            {"mlp.down_proj", H, I, c->mlp_bias, K_LINEAR_OUT},
        };
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, lin[i].p);
            n = add(s, n, nm, lin[i].rows, lin[i].cols, lin[i].k);
            if (lin[i].bias) {
                snprintf(nm, sizeof nm, "model.layers.%d.%s.bias", l, lin[i].p);
                n = add(s, n, nm, lin[i].rows, 0, K_BIAS);
            }
        }
        if (c->qk_norm) {
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_norm.weight", l);
            n = add(s, n, nm, hd, 0, K_NORM);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_norm.weight", l);
            n = add(s, n, nm, hd, 0, K_NORM);
        }
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        n = add(s, n, nm, H, 0, K_NORM);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        n = add(s, n, nm, H, 0, K_NORM);
    }
    n = add(s, n, "model.norm.weight", H, 0, K_NORM);
    if (!c->tie_word_embeddings) n = add(s, n, "lm_head.weight", c->vocab_size, H, K_EMBED);
    return n;
}

static long long elems(const spec *s) { return s->rows * (s->cols > 0 ? s->cols : 1); }

static int usage(void) {
    fprintf(stderr, "usage: make_model --like CONFIG.json --dtype bf16|f16|f32 --out DIR [--seed N] [--threads N]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *like = NULL, *dts = "bf16", *out = NULL;
    unsigned long long seed = 1;
    int threads = cpu_default_threads();
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage();
        if (!strcmp(argv[i], "--like")) like = argv[++i];
        else if (!strcmp(argv[i], "--dtype")) dts = argv[++i];
        else if (!strcmp(argv[i], "--out")) out = argv[++i];
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else return usage();
    }
    forge_dtype dt = !strcmp(dts, "bf16") ? FORGE_DTYPE_BF16 : !strcmp(dts, "f16") ? FORGE_DTYPE_F16
                     : !strcmp(dts, "f32") ? FORGE_DTYPE_F32 : FORGE_DTYPE_AUTO;
    if (!like || !out || dt == FORGE_DTYPE_AUTO || threads < 1) return usage();
    forge_error err;
    model_config c;
    if (config_load(&c, like, &err)) {
        fprintf(stderr, "make_model: %s\n", err.msg);
        return 1;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "make_model: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    char *cfg_text;
    size_t cfg_len;
    char path[4096];
    if (file_read_all(like, 1 << 20, &cfg_text, &cfg_len, &err)) {
        fprintf(stderr, "make_model: %s\n", err.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/config.json", out);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(cfg_text, 1, cfg_len, f) != cfg_len || fclose(f)) {
        fprintf(stderr, "make_model: cannot write %s\n", path);
        return 1;
    }
    free(cfg_text);

    int max_specs = 16 + 20 * c.n_layers, n = 0;
    spec *s = calloc((size_t)max_specs, sizeof *s);
    n = specs_of(&c, s);
    const char *dname = dt == FORGE_DTYPE_BF16 ? "BF16" : dt == FORGE_DTYPE_F16 ? "F16" : "F32";
    size_t esz = dtype_size(dt), off = 0;
    strbuf hdr = {0};
    sb_puts(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)elems(&s[i]) * esz;
        if (s[i].cols > 0)
            sb_printf(&hdr, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}", s[i].name,
                      dname, s[i].rows, s[i].cols, off, off + bytes);
        else
            sb_printf(&hdr, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}", s[i].name, dname,
                      s[i].rows, off, off + bytes);
        off += bytes;
    }
    sb_puts(&hdr, "}");
    while (hdr.len % 8) sb_putc(&hdr, ' ');
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    f = fopen(path, "wb");
    uint64_t hlen = hdr.len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hlen >> (8 * i));
    if (!f || fwrite(le, 1, 8, f) != 8 || fwrite(hdr.data, 1, hdr.len, f) != hdr.len) {
        fprintf(stderr, "make_model: cannot write %s\n", path);
        return 1;
    }
    tpool *pool = tpool_create(threads);
    const long long batch = 64LL * CHUNK; /* elements generated per write */
    unsigned char *buf = malloc((size_t)batch * esz);
    if (!pool || !buf) {
        fprintf(stderr, "make_model: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        long long total = elems(&s[i]);
        for (long long at = 0; at < total; at += batch) {
            gen_job j = {.s = &s[i], .dt = dt, .seed = seed, .first = at, .n = total - at < batch ? total - at : batch,
                         .out = buf};
            tpool_run(pool, (int)((j.n + CHUNK - 1) / CHUNK), gen_chunk, &j);
            if (fwrite(buf, esz, (size_t)j.n, f) != (size_t)j.n) {
                fprintf(stderr, "make_model: write error on %s: %s\n", path, strerror(errno));
                return 1;
            }
        }
    }
    if (fclose(f)) {
        fprintf(stderr, "make_model: write error on %s\n", path);
        return 1;
    }
    printf("make_model: %s: %d tensors, %.2f GB of %s (%s, %d layers, hidden %d, vocab %d)\n", out, n, off / 1e9,
           dname, c.model_type, c.n_layers, c.hidden_size, c.vocab_size);
    tpool_free(pool);
    free(buf);
    free(s);
    sb_free(&hdr);
    config_free(&c);
    return 0;
}
