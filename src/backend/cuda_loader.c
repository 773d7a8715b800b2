/* cuda_loader.c: finds libforge-cuda.so at run time (dlopen), checks its ABI version, and
 * wraps it as a backend. libforge itself never links CUDA, so one binary runs on machines
 * with and without a GPU; the CUDA library links cudart statically and cuBLAS dynamically,
 * never libcuda (the driver is loaded by cudart itself when present).
 *
 * Search order: $FORGE_CUDA_LIB alone when set; else libforge-cuda.so next to the module
 * holding this code (libforge.so, or the executable that links libforge.a), next to the
 * executable, in ../lib from either, then the dynamic linker's own search path. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_abi.h"
#include "kernels/quant.h"
#include "base/error.h"
#include "base/port.h"

#define CUDA_LIB_NAME "libforge-cuda.so"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const fcuda_api *g_api;
static char g_why[1536];
static char g_path[PATH_MAX];

/* dir of path (without the trailing slash) into out; false when there is none */
static bool dir_of(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= n) return false;
    memcpy(out, path, (size_t)(slash - path));
    out[slash - path] = 0;
    return true;
}

/* Tries one file; returns true when it was loaded (g_api set) or failed for a reason worth
 * reporting (g_why set); false when it is simply not there. */
static bool try_lib(const char *path) {
    bool by_name = !strchr(path, '/');
    if (!by_name && access(path, F_OK) != 0) return false;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        if (by_name && e && strstr(e, CUDA_LIB_NAME ": cannot open shared object file")) return false;
        snprintf(g_why, sizeof g_why, "%s cannot be loaded: %s", path, e ? e : "unknown dlopen error");
        return true;
    }
    fcuda_entry_fn entry = (fcuda_entry_fn)dlsym(h, FCUDA_ENTRY);
    const fcuda_api *api = entry ? entry(FCUDA_ABI_VERSION) : NULL;
    if (!api || api->api_size != sizeof(fcuda_api)) {
        snprintf(g_why, sizeof g_why, "%s does not match this libforge (ABI %d): rebuild both with make CUDA=1",
                 path, FCUDA_ABI_VERSION);
        dlclose(h);
        return true;
    }
    g_api = api; /* kept loaded for the life of the process */
    snprintf(g_path, sizeof g_path, "%s", path);
    return true;
}

static void load_once(void) {
    const char *env = getenv("FORGE_CUDA_LIB");
    if (env && *env) {
        if (!try_lib(env)) snprintf(g_why, sizeof g_why, "FORGE_CUDA_LIB=%s: no such file", env);
        return;
    }
    char dirs[4][PATH_MAX];
    int nd = 0;
    Dl_info info;
    char real[PATH_MAX];
    if (dladdr((void *)load_once, &info) && info.dli_fname && realpath(info.dli_fname, real) &&
        dir_of(real, dirs[nd], sizeof dirs[nd]))
        nd++;
    if (port_exe_path(real, sizeof real) == 0) {
        if (dir_of(real, dirs[nd], sizeof dirs[nd]) && (nd == 0 || strcmp(dirs[0], dirs[nd]))) nd++;
    }
    char tried[1024] = "";
    size_t at = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nd; i++) {
            char path[PATH_MAX + 32];
            int k = snprintf(path, sizeof path, "%s/%s%s", dirs[i], pass ? "../lib/" : "", CUDA_LIB_NAME);
            if (k < 0 || (size_t)k >= sizeof path) continue;
            if (try_lib(path)) return;
            if (at < sizeof tried)
                at += (size_t)snprintf(tried + at, sizeof tried - at, "%s%s", at ? ", " : "", path);
        }
    if (try_lib(CUDA_LIB_NAME)) return;
    snprintf(g_why, sizeof g_why,
             "no CUDA backend: " CUDA_LIB_NAME " not found (looked at %s and the library path; build it with "
             "make CUDA=1, or set FORGE_CUDA_LIB)",
             tried[0] ? tried : "nothing");
}

const fcuda_api *cuda_api_get(forge_error *err) {
    pthread_once(&g_once, load_once);
    if (!g_api) err_set(err, FORGE_E_UNSUPPORTED, "%s", g_why);
    return g_api;
}

const char *cuda_lib_path(void) {
    pthread_once(&g_once, load_once);
    return g_api ? g_path : NULL;
}

forge_status backend_cuda_probe(fcuda_device_info *info, forge_error *err) {
    const fcuda_api *api = cuda_api_get(err);
    if (!api) return FORGE_E_UNSUPPORTED;
    return api->probe(info, err);
}

/* ---- the backend wrapper ---------------------------------------------------------------- */

typedef struct cuda_backend {
    backend base;
    const fcuda_api *api;
    fcuda_backend *impl;
} cuda_backend;

static forge_status cb_forward(backend *be, const forge_batch *batch, float *logits, forge_error *err) {
    cuda_backend *b = (cuda_backend *)be;
    return b->api->forward(b->impl, batch, NULL, logits, NULL, err);
}

/* the public row description is the ABI's, field for field */
_Static_assert(sizeof(forge_row_sample) == sizeof(fcuda_row_sample) &&
                   offsetof(forge_row_sample, kind) == offsetof(fcuda_row_sample, kind) &&
                   offsetof(forge_row_sample, temperature) == offsetof(fcuda_row_sample, temperature) &&
                   offsetof(forge_row_sample, min_p) == offsetof(fcuda_row_sample, min_p) &&
                   offsetof(forge_row_sample, u) == offsetof(fcuda_row_sample, u) &&
                   (int)FORGE_ROW_LOGITS == (int)FCUDA_ROW_LOGITS && (int)FORGE_ROW_GREEDY == (int)FCUDA_ROW_GREEDY &&
                   (int)FORGE_ROW_DRAW == (int)FCUDA_ROW_DRAW,
               "forge_row_sample must match fcuda_row_sample");

static forge_status cb_forward_sample(backend *be, const forge_batch *batch, const forge_row_sample *rows,
                                      float *logits, int32_t *ids, forge_error *err) {
    cuda_backend *b = (cuda_backend *)be;
    return b->api->forward(b->impl, batch, (const fcuda_row_sample *)rows, logits, ids, err);
}

static forge_status cb_copy_kv(backend *be, int src, int dst, int n, forge_error *err) {
    cuda_backend *b = (cuda_backend *)be;
    return b->api->copy_kv(b->impl, src, dst, n, err);
}

static void cb_destroy(backend *be) {
    cuda_backend *b = (cuda_backend *)be;
    if (!b) return;
    b->api->destroy(b->impl);
    free(b);
}

static fcuda_weight weight_of(const mm_weight *w) {
    return (fcuda_weight){.data = w->data, .dtype = w->dtype, .rows = w->rows, .cols = w->cols, .bias = w->bias,
                          .qtype = w->qtype};
}

/* the ABI's quantized types are ggml's, as quant.h numbers them */
_Static_assert((int)FCUDA_Q4_0 == (int)QT_Q4_0 && (int)FCUDA_Q4_1 == (int)QT_Q4_1 && (int)FCUDA_Q5_0 == (int)QT_Q5_0 && (int)FCUDA_Q5_1 == (int)QT_Q5_1 &&
                   (int)FCUDA_Q8_0 == (int)QT_Q8_0 && (int)FCUDA_Q4_K == (int)QT_Q4_K && (int)FCUDA_Q5_K == (int)QT_Q5_K && (int)FCUDA_Q6_K == (int)QT_Q6_K,
               "FCUDA_Q* must be ggml's type numbers");

bool backend_cuda_get_stats(const backend *be, fcuda_stats *out) {
    if (!be || strcmp(be->name, "cuda")) return false;
    const cuda_backend *b = (const cuda_backend *)be;
    b->api->get_stats(b->impl, out);
    return true;
}

/* Fills the ABI's description of m (layers allocated; free with free(fm->layers)). */
static forge_status describe(const forge_model *m, fcuda_model *fm, forge_error *err) {
    const model_config *c = &m->cfg;
    fcuda_layer *layers = calloc((size_t)c->n_layers, sizeof *layers);
    if (!layers) return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *L = &m->layers[l];
        if (L->moe || !L->rope || c->gemma_norms || c->act != ACT_SILU || c->rope_dim != c->head_dim ||
            c->rope_type == ROPE_LONGROPE) { /* features of the CPU forward only */
            free(layers);
            return err_set(err, FORGE_E_UNSUPPORTED, "the CUDA backend does not run %s models (%s); use the CPU",
                           c->model_type, L->moe ? "mixture of experts" : !L->rope ? "layers without RoPE"
                                                                        : "Gemma's norms, GeGLU and soft-capping, partial RoPE or longrope");
        }
        layers[l] = (fcuda_layer){.attn_norm = L->attn_norm, .ffn_norm = L->ffn_norm, .q_norm = L->q_norm,
                                  .k_norm = L->k_norm, .wq = weight_of(&L->wq), .wk = weight_of(&L->wk),
                                  .wv = weight_of(&L->wv), .wo = weight_of(&L->wo), .wgate = weight_of(&L->wgate),
                                  .wup = weight_of(&L->wup), .wdown = weight_of(&L->wdown), .sliding = L->sliding};
    }
    *fm = (fcuda_model){.vocab = c->vocab_size, .hidden = c->hidden_size, .inter = c->intermediate_size,
                        .n_layers = c->n_layers, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                        .head_dim = c->head_dim, .sliding_window = c->sliding_window, .eps = c->rms_norm_eps,
                        .rope_inv_freq = m->rope_inv_freq, .embed = weight_of(&m->embed),
                        .lm_head = weight_of(&m->lm_head), .final_norm = m->final_norm, .layers = layers};
    return FORGE_OK;
}

static void fill_params(const backend_params *p, fcuda_params *fp) {
    *fp = (fcuda_params){.n_kv_blocks = p->n_kv_blocks, .max_batch_tokens = p->max_batch_tokens,
                         .max_logit_rows = p->max_logit_rows, .kv_dtype = p->kv_dtype,
                         .mem_fraction = p->gpu_mem_fraction, .gemv_max_rows = -1, .graph_max_rows = -1,
                         .host_logits = p->logits};
}

size_t backend_cuda_scratch_bytes(const forge_model *m, const backend_params *p) {
    const fcuda_api *api = cuda_api_get(NULL);
    fcuda_model fm;
    if (!api || describe(m, &fm, NULL)) return 0;
    fcuda_params fp;
    fill_params(p, &fp);
    size_t n = api->scratch_bytes(&fm, &fp);
    free((void *)fm.layers);
    return n;
}

backend *backend_cuda_create(const forge_model *m, const backend_params *p, forge_error *err) {
    const fcuda_api *api = cuda_api_get(err);
    if (!api) return NULL;
    cuda_backend *b = calloc(1, sizeof *b);
    if (!b) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    fcuda_model fm;
    if (describe(m, &fm, err)) {
        free(b);
        return NULL;
    }
    fcuda_params fp;
    fill_params(p, &fp);
    b->impl = api->create(&fm, &fp, err);
    free((void *)fm.layers);
    if (!b->impl) {
        free(b);
        return NULL;
    }
    b->api = api;
    b->base.name = "cuda";
    b->base.forward = cb_forward;
    b->base.forward_sample = cb_forward_sample;
    b->base.hidden = NULL; /* the CUDA ABI returns logits only: embeddings run on the CPU */
    b->base.copy_kv = cb_copy_kv;
    b->base.destroy = cb_destroy;
    return &b->base;
}
