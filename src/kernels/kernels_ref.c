/* kernels_ref.c: scalar reference kernels (portable C, the fallback on CPUs without a SIMD
 * variant) and the shared helpers: dtype conversions, RoPE, dispatch. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "base/cpu.h"
#include "base/port.h"
#include "base/error.h"
#include "kernels/kernels.h"

size_t dtype_size(forge_dtype dt) { return dt == FORGE_DTYPE_F32 ? 4 : 2; }

const char *dtype_name(forge_dtype dt) {
    switch (dt) {
    case FORGE_DTYPE_F32: return "F32";
    case FORGE_DTYPE_F16: return "F16";
    case FORGE_DTYPE_BF16: return "BF16";
    default: return "auto";
    }
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000 | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff);
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into the exponent */
    return (uint16_t)half;
}

static inline float load_w(const void *row, forge_dtype dt, int k) {
    switch (dt) {
    case FORGE_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, (const char *)row + 2 * (size_t)k, 2);
        return bf16_to_f32(h);
    }
    case FORGE_DTYPE_F16: {
        uint16_t h;
        memcpy(&h, (const char *)row + 2 * (size_t)k, 2);
        return f16_to_f32(h);
    }
    default: {
        float f;
        memcpy(&f, (const char *)row + 4 * (size_t)k, 4);
        return f;
    }
    }
}

/* f32 weights per packed panel: 3/8 of this core's L2, so that a panel and the streamed
 * activation rows share it (a prefill reads every activation row once per panel: with
 * 256 KB panels on a 2 MB L2 the 1B-class prefill waited on L3 for them; 768 KB panels
 * made it 12-18% faster). At least 64K floats (256 KB), the size before; at most 1M. Fixed
 * per process, and a row's bits never depend on the panel (kernels.h). */
static int g_panel_floats;
static pthread_once_t g_panel_once = PTHREAD_ONCE_INIT;

static void panel_init(void) {
    size_t floats = port_l2_bytes() / 4 * 3 / 8;
    g_panel_floats = floats < 64 * 1024 ? 64 * 1024 : floats > (1 << 20) ? 1 << 20 : (int)floats;
}

int mm_panel_rows(int cols) {
    pthread_once(&g_panel_once, panel_init);
    int np = g_panel_floats / (cols > 0 ? cols : 1);
    np = np / 12 * 12;
    if (np < 12) np = 12;
    if (np > 96) np = 96;
    return np;
}

size_t mm_pack_floats(const mm_weight *w) { return (size_t)mm_panel_rows(w->cols) * (size_t)w->cols; }

/* The reference dot product, in the canonical order (8 lanes, pairwise lane sum, tail). */
static void ref_matmul(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y,
                       int ldy, float *pack) {
    (void)pack;
    int K = w->cols, K8 = K & ~7;
    size_t row_bytes = (size_t)K * dtype_size(w->dtype);
    for (int j = j0; j < j1; j++) {
        const void *wr = (const char *)w->data + (size_t)j * row_bytes;
        for (int i = 0; i < m; i++) {
            const float *xr = x + (size_t)i * ldx;
            float acc[8] = {0};
            for (int k = 0; k < K8; k += 8)
                for (int l = 0; l < 8; l++) acc[l] += xr[k + l] * load_w(wr, w->dtype, k + l);
            float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (int k = K8; k < K; k++) s += xr[k] * load_w(wr, w->dtype, k);
            if (w->bias) s += w->bias[j];
            y[(size_t)i * ldy + j] = s;
        }
    }
}

static void ref_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) out[i] = (x[i] * inv) * w[i];
}

static void ref_swiglu(float *out, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void ref_to_f32(float *out, const void *in, forge_dtype dt, int n) {
    for (int i = 0; i < n; i++) out[i] = load_w(in, dt, i);
}

static void ref_from_f32(void *out, forge_dtype dt, const float *in, int n) {
    if (dt == FORGE_DTYPE_F32) {
        memcpy(out, in, (size_t)n * 4);
    } else {
        for (int i = 0; i < n; i++) {
            uint16_t h = dt == FORGE_DTYPE_BF16 ? f32_to_bf16(in[i]) : f32_to_f16(in[i]);
            memcpy((char *)out + 2 * (size_t)i, &h, 2);
        }
    }
}

/* Two-pass softmax over all visible keys: the plain formulation, independent of the
 * online (tiled) one the SIMD variant uses. */
static void ref_attention(const attn_args *a) {
    const int B = FORGE_KV_BLOCK_TOKENS, hd = a->head_dim;
    size_t esz = dtype_size(a->kv_dtype);
    size_t block_elems = (size_t)a->n_kv_heads * B * hd;
    FORGE_ASSERT(hd <= 512 && a->first <= a->last);
    for (int r = 0; r < a->n_rep; r++) {
        const float *q = a->q + (size_t)r * hd;
        float *o = a->out + (size_t)r * hd;
        double mx = -INFINITY;
        for (int p = a->first; p <= a->last; p++) {
            size_t off = (size_t)a->blocks[p / B] * block_elems + ((size_t)a->kv_head * B + p % B) * hd;
            const char *k = (const char *)a->k_cache + off * esz;
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[d] * load_w(k, a->kv_dtype, d);
            s *= a->scale;
            if (a->softcap > 0) s = tanh(s / a->softcap) * a->softcap;
            if (s > mx) mx = s;
        }
        double sum = 0;
        double acc[512];
        for (int d = 0; d < hd; d++) acc[d] = 0;
        for (int p = a->first; p <= a->last; p++) {
            size_t off = (size_t)a->blocks[p / B] * block_elems + ((size_t)a->kv_head * B + p % B) * hd;
            const char *k = (const char *)a->k_cache + off * esz;
            const char *v = (const char *)a->v_cache + off * esz;
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[d] * load_w(k, a->kv_dtype, d);
            s *= a->scale;
            if (a->softcap > 0) s = tanh(s / a->softcap) * a->softcap;
            double e = exp(s - mx);
            sum += e;
            for (int d = 0; d < hd; d++) acc[d] += e * load_w(v, a->kv_dtype, d);
        }
        for (int d = 0; d < hd; d++) o[d] = (float)(acc[d] / sum);
    }
}

static float ref_max(const float *x, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

static float ref_sum_exp(const float *x, int n, float shift) {
    double s = 0;
    for (int i = 0; i < n; i++) s += expf(x[i] - shift);
    return (float)s;
}

static void ref_exp_shift(float *out, const float *x, int n, float shift) {
    for (int i = 0; i < n; i++) out[i] = expf(x[i] - shift);
}

void gelu_tanh_mul(float *out, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) {
        float x = g[i];
        out[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * u[i];
    }
}

void rope_apply(float *x, int n_heads, int head_dim, const float *cos, const float *sin) {
    rope_apply_partial(x, n_heads, head_dim, head_dim, cos, sin);
}

void rope_apply_partial(float *x, int n_heads, int head_dim, int rot_dim, const float *cos, const float *sin) {
    int half = rot_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cos[i] - b * sin[i];
            v[i + half] = b * cos[i] + a * sin[i];
        }
    }
}

static double ref_fma_loop(long iters) {
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++) a[i] = a[i] * 0.999999f + 1e-7f;
    volatile float sink = a[0] + a[7];
    (void)sink;
    return (double)iters * 8 * 2;
}

static const kernels g_ref = {
    .name = "scalar",
    .matmul = ref_matmul,
    .rmsnorm = ref_rmsnorm,
    .swiglu = ref_swiglu,
    .to_f32 = ref_to_f32,
    .from_f32 = ref_from_f32,
    .attention = ref_attention,
    .max = ref_max,
    .sum_exp = ref_sum_exp,
    .exp_shift = ref_exp_shift,
    .fma_loop = ref_fma_loop,
};

const kernels *kernels_ref(void) { return &g_ref; }

#if !defined(__x86_64__)
const kernels *kernels_avx2(void) { return NULL; }
const kernels *kernels_avx512(void) { return NULL; }
#endif
#if !defined(__aarch64__)
const kernels *kernels_neon(void) { return NULL; }
#endif

const kernels *kernels_get(void) {
    const cpu_features *f = cpu_get();
    if (f->avx512 && kernels_avx512()) return kernels_avx512();
    if (f->avx2 && kernels_avx2()) return kernels_avx2();
    if (f->neon && kernels_neon()) return kernels_neon();
    return &g_ref;
}
