/* Quantized blocks: dequantization equals gguf-py's quants.py exactly (goldens made by
 * scripts/gguf/make_fixtures.py); the reference dot product of every weight type with its
 * quantized activations equals the double-precision dot product of the dequantized values
 * (to f32 rounding); the activation quantization is within half a step of the input; the
 * SIMD variants quantize activations to the same bytes as the reference and give its dot
 * products to f32 summation order, on random blocks and edge lengths; quant_matmul's rows
 * do not depend on how many rows or which columns a call computes. */
#include <math.h>

#include "kernels/quant.h"
#include "test.h"

static const int g_types[] = {QT_Q8_0, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q4_K, QT_Q5_K, QT_Q6_K};
static const char *g_names[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"};
enum { NTYPES = 8 };

TEST(dequant_equals_gguf_py) {
    for (int t = 0; t < NTYPES; t++) {
        char path[128];
        size_t nb, nf;
        snprintf(path, sizeof path, "tests/fixtures/quant/%s.blocks", g_names[t]);
        uint8_t *blocks = t_read_file(path, &nb);
        snprintf(path, sizeof path, "tests/fixtures/quant/%s.f32", g_names[t]);
        float *want = t_read_file(path, &nf);
        CHECKF(blocks && want, "missing golden for %s", g_names[t]);
        if (!blocks || !want) continue;
        int n = (int)(nf / 4);
        CHECK_EQ_INT(nb, quant_row_bytes(g_types[t], n));
        float *got = malloc(nf);
        quant_dequant_row(g_types[t], blocks, got, n);
        int bad = 0, first = -1;
        for (int i = 0; i < n; i++)
            if (memcmp(&got[i], &want[i], 4)) {
                if (first < 0) first = i;
                bad++;
            }
        CHECKF(bad == 0, "%s: %d of %d values differ (first at %d: %g, want %g)", g_names[t], bad, n, first,
               first >= 0 ? got[first] : 0, first >= 0 ? want[first] : 0);
        free(blocks);
        free(want);
        free(got);
    }
}

/* random weight blocks with finite, varied scales */
static void random_row(int qt, uint8_t *row, int n) {
    size_t bytes = quant_row_bytes(qt, n);
    for (size_t i = 0; i < bytes; i++) row[i] = (uint8_t)t_rand64();
    int bb = quant_block_bytes(qt), nbk = n / quant_block_elems(qt);
    int offs[2] = {0, qt == QT_Q6_K ? 208 : 2};
    int nf = qt == QT_Q6_K ? 1 : (qt == QT_Q4_1 || qt == QT_Q5_1 || qt == QT_Q4_K || qt == QT_Q5_K) ? 2 : 1;
    if (qt == QT_Q6_K) offs[0] = 208;
    for (int b = 0; b < nbk; b++)
        for (int f = 0; f < nf; f++) {
            uint16_t h = f32_to_f16(t_randf() * 0.02f);
            memcpy(row + (size_t)b * bb + offs[f], &h, 2);
        }
}

static double dot_ref_double(int qt, const uint8_t *w, const uint8_t *qa, int n, double *mag) {
    int act = quant_act_type(qt);
    float *wf = malloc((size_t)n * 4), *af = malloc((size_t)n * 4);
    quant_dequant_row(qt, w, wf, n);
    if (act == QT_Q8_0) {
        quant_dequant_row(QT_Q8_0, qa, af, n);
    } else {
        for (int b = 0; b < n / 256; b++) {
            blk_q8_k k;
            memcpy(&k, qa + (size_t)b * 292, sizeof k);
            for (int i = 0; i < 256; i++) af[b * 256 + i] = k.d * (float)k.qs[i];
        }
    }
    double s = 0;
    *mag = 0;
    for (int i = 0; i < n; i++) {
        s += (double)wf[i] * af[i];
        *mag += fabs((double)wf[i] * af[i]);
    }
    free(wf);
    free(af);
    return s;
}

static const int g_lens[] = {256, 512, 1024 + 256, 2048, 4096 + 768};

TEST(reference_dot_products) {
    const quant_kernels *r = quant_ref();
    for (int t = 0; t < NTYPES; t++)
        for (size_t li = 0; li < sizeof g_lens / sizeof g_lens[0]; li++) {
            int qt = g_types[t], n = g_lens[li], act = quant_act_type(qt);
            uint8_t *w = malloc(quant_row_bytes(qt, n)), *qa = malloc(quant_row_bytes(act, n));
            float *x = malloc((size_t)n * 4);
            for (int rep = 0; rep < 4; rep++) {
                random_row(qt, w, n);
                for (int i = 0; i < n; i++) x[i] = t_randf() * (rep == 3 ? 100.0f : 1.0f);
                if (rep == 2) memset(x, 0, 64 * sizeof(float)); /* a zero block */
                r->quantize_act(act, x, qa, n);
                double mag, want = dot_ref_double(qt, w, qa, n, &mag);
                float got = r->dot(qt, w, qa, n);
                CHECKF(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s n=%d: %g vs %g (mag %g)", g_names[t], n, got, want, mag);
            }
            free(w);
            free(qa);
            free(x);
        }
}

TEST(activation_quantization) {
    const quant_kernels *r = quant_ref();
    int n = 1024;
    float *x = malloc((size_t)n * 4), *back = malloc((size_t)n * 4);
    uint8_t *q = malloc(quant_row_bytes(QT_Q8_K, n));
    for (int i = 0; i < n; i++) x[i] = t_randf() * 3;
    r->quantize_act(QT_Q8_0, x, q, n);
    quant_dequant_row(QT_Q8_0, q, back, n);
    for (int b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        for (int i = 0; i < 32; i++)
            /* the scale is stored as f16: up to 127 steps of its rounding on top of half a step */
            CHECKF(fabsf(back[b * 32 + i] - x[b * 32 + i]) <= amax / 127 * (0.5f + 127.0f / 2048) * 1.01f, "Q8_0 %d", b * 32 + i);
    }
    r->quantize_act(QT_Q8_K, x, q, n);
    for (int b = 0; b < n / 256; b++) {
        blk_q8_k k;
        memcpy(&k, q + (size_t)b * 292, sizeof k);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += k.qs[j * 16 + i];
            CHECK_EQ_INT(s, k.bsums[j]);
        }
        for (int i = 0; i < 256; i++)
            CHECKF(fabsf(k.d * k.qs[i] - x[b * 256 + i]) <= fabsf(k.d) * 0.5f * 1.01f, "Q8_K %d", i);
    }
    free(x);
    free(back);
    free(q);
}

static void compare_variant(const quant_kernels *v) {
    const quant_kernels *r = quant_ref();
    for (int t = 0; t < NTYPES; t++)
        for (size_t li = 0; li < sizeof g_lens / sizeof g_lens[0]; li++) {
            int qt = g_types[t], n = g_lens[li], act = quant_act_type(qt);
            size_t ab = quant_row_bytes(act, n);
            uint8_t *w = malloc(quant_row_bytes(qt, n)), *qa = malloc(ab), *qb = malloc(ab);
            float *x = malloc((size_t)n * 4);
            for (int rep = 0; rep < 6; rep++) {
                random_row(qt, w, n);
                for (int i = 0; i < n; i++) x[i] = t_randf() * (rep == 5 ? 1e4f : 1.0f);
                if (rep == 1) memset(x, 0, (size_t)n * 4);
                if (rep == 2) x[7] = -40; /* the largest magnitude negative */
                if (rep == 3) { x[3] = 50; x[9] = -50; } /* equal magnitudes: the first wins */
                r->quantize_act(act, x, qa, n);
                v->quantize_act(act, x, qb, n);
                CHECKF(!memcmp(qa, qb, ab), "%s %s n=%d rep %d: activation bytes differ", v->name,
                       act == QT_Q8_0 ? "Q8_0" : "Q8_K", n, rep);
                float a = r->dot(qt, w, qa, n), b = v->dot(qt, w, qa, n);
                double mag;
                dot_ref_double(qt, w, qa, n, &mag);
                CHECKF(fabs((double)a - b) <= 2e-6 * mag + 1e-30, "%s %s n=%d: %g vs %g (mag %g)", v->name, g_names[t], n,
                       b, a, mag);
            }
            free(w);
            free(qa);
            free(qb);
            free(x);
        }
}

TEST(simd_variants_match_reference) {
    if (quant_avx2()) compare_variant(quant_avx2());
    else printf("    (no AVX2 on this CPU)\n");
    if (quant_avx512()) compare_variant(quant_avx512());
    else printf("    (no AVX-512 VNNI on this CPU)\n");
    if (quant_neon()) compare_variant(quant_neon());
    else printf("    (no NEON on this CPU)\n");
    if (quant_neon_dotprod()) compare_variant(quant_neon_dotprod());
    else printf("    (no NEON dotprod on this CPU)\n");
    if (quant_neon_i8mm()) compare_variant(quant_neon_i8mm());
    else printf("    (no NEON i8mm on this CPU)\n");
    /* AVX2 and VNNI sum the same exact integers in the same order: identical bits */
    if (quant_avx2() && quant_avx512())
        for (int t = 0; t < NTYPES; t++) {
            int qt = g_types[t], n = 2048, act = quant_act_type(qt);
            uint8_t *w = malloc(quant_row_bytes(qt, n)), *qa = malloc(quant_row_bytes(act, n));
            float *x = malloc((size_t)n * 4);
            random_row(qt, w, n);
            for (int i = 0; i < n; i++) x[i] = t_randf();
            quant_ref()->quantize_act(act, x, qa, n);
            float a = quant_avx2()->dot(qt, w, qa, n), b = quant_avx512()->dot(qt, w, qa, n);
            CHECKF(!memcmp(&a, &b, 4), "%s: avx2 %g vs avx512 %g", g_names[t], a, b);
            free(w);
            free(qa);
            free(x);
        }
}

/* FORGE_CPU picks the set quant_get() returns (a set the CPU lacks falls back to the next
 * lower one); scripts/ci-aarch64.sh runs this program with each NEON value */
TEST(forge_cpu_selects_the_set) {
    const char *s = getenv("FORGE_CPU");
    const char *want = NULL;
    if (s && !strcmp(s, "scalar")) want = "scalar";
    else if (s && !strcmp(s, "neon") && quant_neon()) want = "neon";
    else if ((!s || !strcmp(s, "neon-i8mm")) && quant_neon_i8mm()) want = "neon-i8mm";
    else if ((!s || !strcmp(s, "neon-dotprod") || !strcmp(s, "neon-i8mm")) && quant_neon_dotprod()) want = "neon-dotprod";
    else if (s && !strcmp(s, "avx2") && quant_avx2()) want = "avx2";
    else if ((!s || !strcmp(s, "avx512")) && quant_avx512()) want = "avx512vnni";
    printf("    FORGE_CPU=%s: %s\n", s ? s : "(unset)", quant_get()->name);
    if (want) CHECKF(!strcmp(quant_get()->name, want), "FORGE_CPU=%s gives %s, want %s", s ? s : "(unset)", quant_get()->name, want);
}

/* NEON keeps the reference's f32 order and exact integer block sums: plain NEON and SDOT
 * give the same bits, on random blocks of every type and on extreme codes (all -128/127) */
TEST(neon_variants_agree) {
    if (!quant_neon() || !quant_neon_dotprod()) {
        printf("    (needs NEON and NEON dotprod)\n");
        return;
    }
    for (int t = 0; t < NTYPES; t++)
        for (int rep = 0; rep < 3; rep++) {
            int qt = g_types[t], n = 2048, act = quant_act_type(qt);
            size_t wb = quant_row_bytes(qt, n);
            uint8_t *w = malloc(wb), *qa = malloc(quant_row_bytes(act, n));
            float *x = malloc((size_t)n * 4);
            random_row(qt, w, n);
            for (int i = 0; i < n; i++) x[i] = t_randf();
            if (rep == 1) /* every weight code at its extreme, activations all +-127 */
                for (int i = 0; i < n; i++) x[i] = i % 3 ? 1.0f : -1.0f;
            if (rep == 1 && qt == QT_Q8_0)
                for (int b = 0; b < n / 32; b++) memset(w + (size_t)b * 34 + 2, 0x80, 32);
            quant_ref()->quantize_act(act, x, qa, n);
            float a = quant_neon()->dot(qt, w, qa, n), b = quant_neon_dotprod()->dot(qt, w, qa, n);
            CHECKF(!memcmp(&a, &b, 4), "%s rep %d: neon %g vs neon-dotprod %g", g_names[t], rep, a, b);
            if (quant_neon_i8mm()) {
                float c = quant_neon_i8mm()->dot(qt, w, qa, n);
                CHECKF(!memcmp(&a, &c, 4), "%s rep %d: neon %g vs neon-i8mm %g", g_names[t], rep, a, c);
            }
            float r = quant_ref()->dot(qt, w, qa, n);
            double mag;
            dot_ref_double(qt, w, qa, n, &mag);
            CHECKF(fabs((double)r - a) <= 2e-6 * mag + 1e-30, "%s rep %d: neon %g vs scalar %g", g_names[t], rep, a, r);
            free(w);
            free(qa);
            free(x);
        }
}

/* dot4 gives dot's bits for each of its four rows, in every variant */
TEST(dot4_equals_dot) {
    const quant_kernels *vs[6] = {quant_ref(), quant_avx2(), quant_avx512(), quant_neon(), quant_neon_dotprod(),
                                  quant_neon_i8mm()};
    for (int v = 0; v < 6; v++) {
        if (!vs[v]) continue;
        for (int t = 0; t < NTYPES; t++) {
            int qt = g_types[t], n = 1024 + 256, act = quant_act_type(qt);
            size_t ab = quant_row_bytes(act, n);
            uint8_t *w = malloc(quant_row_bytes(qt, n)), *qa = malloc(ab * 4);
            float *x = malloc((size_t)n * 4);
            random_row(qt, w, n);
            for (int r = 0; r < 4; r++) {
                for (int i = 0; i < n; i++) x[i] = t_randf() * (float)(r + 1);
                vs[v]->quantize_act(act, x, qa + ab * r, n);
            }
            float out[4];
            vs[v]->dot4(qt, w, qa, ab, n, out);
            for (int r = 0; r < 4; r++) {
                float one = vs[v]->dot(qt, w, qa + ab * r, n);
                CHECKF(!memcmp(&one, &out[r], 4), "%s %s row %d: dot4 %g, dot %g", vs[v]->name, g_names[t], r, out[r], one);
            }
            free(w);
            free(qa);
            free(x);
        }
    }
}

/* dot2x4 (i8mm's 2x2 tiles: two weight rows, four activation rows) gives dot's bits for
 * each of its eight outputs, on random blocks and on extreme codes, every type; and
 * quant_matmul through it equals the dotprod variant's (odd sizes: pairs and leftovers) */
TEST(dot2x4_equals_dot) {
    const quant_kernels *v = quant_neon_i8mm();
    if (!v) {
        printf("    (no variant with dot2x4 on this CPU: NEON i8mm)\n");
        return;
    }
    for (int t = 0; t < NTYPES; t++)
        for (int rep = 0; rep < 3; rep++) {
            int qt = g_types[t], n = 1024 + 256, act = quant_act_type(qt);
            size_t ab = quant_row_bytes(act, n), wb = quant_row_bytes(qt, n);
            uint8_t *w = malloc(wb * 2), *qa = malloc(ab * 4);
            float *x = malloc((size_t)n * 4);
            random_row(qt, w, n);
            random_row(qt, w + wb, n);
            if (rep == 2 && qt == QT_Q8_0)
                for (int b = 0; b < 2 * n / 32; b++) memset(w + (size_t)b * 34 + 2, b % 2 ? 0x7f : 0x80, 32);
            for (int r = 0; r < 4; r++) {
                for (int i = 0; i < n; i++) x[i] = rep == 2 ? (i % 3 ? 1.0f : -1.0f) : t_randf() * (float)(r + 1);
                v->quantize_act(act, x, qa + ab * r, n);
            }
            float out[8];
            v->dot2x4(qt, w, wb, qa, ab, n, out);
            for (int c = 0; c < 2; c++)
                for (int r = 0; r < 4; r++) {
                    float one = v->dot(qt, w + wb * c, qa + ab * r, n);
                    float dp = quant_neon_dotprod()->dot(qt, w + wb * c, qa + ab * r, n);
                    CHECKF(!memcmp(&one, &out[c * 4 + r], 4) && !memcmp(&one, &dp, 4),
                           "%s rep %d w%d a%d: dot2x4 %g, dot %g, dotprod %g", g_names[t], rep, c, r, out[c * 4 + r], one, dp);
                }
            free(w);
            free(qa);
            free(x);
        }
    int rows = 7, cols = 512, m = 11;
    for (int t = 0; t < NTYPES; t++) {
        int qt = g_types[t];
        size_t rb = quant_row_bytes(qt, cols);
        uint8_t *wd = malloc(rb * rows);
        for (int j = 0; j < rows; j++) random_row(qt, wd + rb * j, cols);
        float *bias = malloc(rows * 4), *x = malloc((size_t)m * cols * 4), *y1 = malloc((size_t)m * rows * 4),
              *y2 = malloc((size_t)m * rows * 4);
        for (int j = 0; j < rows; j++) bias[j] = t_randf();
        for (int i = 0; i < m * cols; i++) x[i] = t_randf();
        mm_weight mw = {.data = wd, .dtype = FORGE_DTYPE_BF16, .qtype = qt, .rows = rows, .cols = cols, .bias = bias};
        void *scratch = malloc(mm_pack_floats(&mw) * 4);
        quant_matmul(v, x, cols, m, &mw, 0, rows, y1, rows, scratch);
        quant_matmul(quant_neon_dotprod(), x, cols, m, &mw, 0, rows, y2, rows, scratch);
        CHECKF(!memcmp(y1, y2, (size_t)m * rows * 4), "%s: quant_matmul with i8mm differs from dotprod", g_names[t]);
        free(scratch), free(wd), free(bias), free(x), free(y1), free(y2);
    }
}

/* each output row is the same whatever m, the column range and the bias */
TEST(matmul_batch_invariance) {
    const quant_kernels *k = quant_get();
    int rows = 37, cols = 512, m = 19;
    for (int t = 0; t < NTYPES; t++) {
        int qt = g_types[t];
        size_t rb = quant_row_bytes(qt, cols);
        uint8_t *wd = malloc(rb * rows);
        for (int j = 0; j < rows; j++) random_row(qt, wd + rb * j, cols);
        float *bias = malloc(rows * 4), *x = malloc((size_t)m * cols * 4), *y1 = malloc((size_t)m * rows * 4),
              *y2 = malloc((size_t)m * rows * 4);
        for (int j = 0; j < rows; j++) bias[j] = t_randf();
        for (int i = 0; i < m * cols; i++) x[i] = t_randf();
        mm_weight w = {.data = wd, .dtype = FORGE_DTYPE_BF16, .qtype = qt, .rows = rows, .cols = cols, .bias = bias};
        void *scratch = malloc(mm_pack_floats(&w) * 4);
        quant_matmul(k, x, cols, m, &w, 0, rows, y1, rows, scratch);
        for (int i = 0; i < m; i++) {
            quant_matmul(k, x + (size_t)i * cols, cols, 1, &w, 0, 13, y2 + (size_t)i * rows, rows, scratch);
            quant_matmul(k, x + (size_t)i * cols, cols, 1, &w, 13, rows, y2 + (size_t)i * rows, rows, scratch);
        }
        CHECKF(!memcmp(y1, y2, (size_t)m * rows * 4), "%s: rows depend on the batch", g_names[t]);
        /* and they are the dot products plus the bias */
        uint8_t *qa = malloc(quant_row_bytes(quant_act_type(qt), cols));
        k->quantize_act(quant_act_type(qt), x + 5 * cols, qa, cols);
        float want = k->dot(qt, wd + rb * 7, qa, cols) + bias[7];
        CHECK(!memcmp(&want, &y1[5 * rows + 7], 4));
        free(qa);
        free(scratch);
        free(wd);
        free(bias);
        free(x);
        free(y1);
        free(y2);
    }
}

/* --quantize: Q8_0 and Q4_0 equal gguf-py's quantizers byte for byte; Q4_K's error is
 * that of a 4-bit code (squared error within 1.1x Q4_0's on the same rows) */
TEST(quantizers) {
    size_t nx;
    float *x = t_read_file("tests/fixtures/quant/make_input.f32", &nx);
    CHECK(x != NULL);
    if (!x) return;
    int n = (int)(nx / 4);
    const char *names[2] = {"Q8_0", "Q4_0"};
    int types[2] = {QT_Q8_0, QT_Q4_0};
    for (int t = 0; t < 2; t++) {
        char path[128];
        size_t nb;
        snprintf(path, sizeof path, "tests/fixtures/quant/make_%s.blocks", names[t]);
        uint8_t *want = t_read_file(path, &nb), *got = malloc(quant_row_bytes(types[t], n));
        CHECK(want && nb == quant_row_bytes(types[t], n));
        CHECK(quant_make_row(types[t], x, got, n));
        CHECKF(want && !memcmp(got, want, nb), "%s: bytes differ from gguf-py", names[t]);
        free(want);
        free(got);
    }
    uint8_t *q4 = malloc(quant_row_bytes(QT_Q4_0, n)), *qk = malloc(quant_row_bytes(QT_Q4_K, n));
    float *b4 = malloc(nx), *bk = malloc(nx);
    CHECK(quant_make_row(QT_Q4_0, x, q4, n) && quant_make_row(QT_Q4_K, x, qk, n));
    quant_dequant_row(QT_Q4_0, q4, b4, n);
    quant_dequant_row(QT_Q4_K, qk, bk, n);
    double e4 = 0, ek = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        e4 += (b4[i] - x[i]) * (double)(b4[i] - x[i]);
        ek += (bk[i] - x[i]) * (double)(bk[i] - x[i]);
        ss += x[i] * (double)x[i];
    }
    CHECKF(ek <= e4 * 1.1 && ek < 0.02 * ss, "Q4_K squared error %g, Q4_0 %g, signal %g", ek, e4, ss);
    for (int i = 0; i < 32; i++) CHECKF(bk[i] == 0, "a zero block stays zero: %g", bk[i]);
    CHECK(!quant_make_row(QT_Q4_K, x, qk, 100));
    CHECK(!quant_make_row(QT_Q6_K, x, qk, 256));
    free(q4);
    free(qk);
    free(b4);
    free(bk);
    free(x);
}


/* The f32 path (quant_matmul_f32): each variant's dequant equals the reference's values bit
 * for bit on random rows; with the kernel set that takes the blocks directly for decode, a
 * row's outputs are the same bits computed alone (direct tiles), two or three at a time, or
 * among 19 (dequantized panels, the blocked GEMM), whatever the row range, at two widths; and they are
 * the double-precision dot products of the reference's values (to f32 summation error). */
TEST(f32_path_dequant_and_invariance) {
    const quant_kernels *vs[] = {quant_avx2(), quant_avx512()};
    const kernels *k = kernels_get();
    int tested = 0;
    for (int tt = 0; tt < 2 * NTYPES; tt++) { /* each type at 1024 columns and at more blocks than a tile's
                                                 * chunk of scales (AVX-512: 64), with a partial last chunk */
        int t = tt / 2, qt = g_types[t], rows = 45, m = 19;
        int cols = tt % 2 == 0 ? 1024 : quant_block_elems(qt) == 256 ? 2304 : 2080;
        size_t rb = quant_row_bytes(qt, cols);
        uint8_t *wd = malloc(rb * rows);
        for (int j = 0; j < rows; j++) random_row(qt, wd + rb * j, cols);
        float *ref = malloc((size_t)rows * cols * 4), *got = malloc((size_t)cols * 4);
        for (int j = 0; j < rows; j++) quant_dequant_row(qt, wd + rb * j, ref + (size_t)j * cols, cols);
        for (int v = 0; v < 2; v++) {
            if (!vs[v] || !vs[v]->dequant || !(vs[v]->dequant_types >> qt & 1u)) continue;
            for (int j = 0; j < rows; j++) {
                vs[v]->dequant(qt, wd + rb * j, got, cols);
                CHECKF(!memcmp(got, ref + (size_t)j * cols, (size_t)cols * 4), "%s %s: row %d dequantized differently",
                       vs[v]->name, g_names[t], j);
            }
        }
        const quant_kernels *qk = quant_get();
        if (quant_uses_f32(k, qk, qt)) {
            tested++;
            float *bias = malloc(rows * 4), *x = malloc((size_t)m * cols * 4), *y1 = malloc((size_t)m * rows * 4),
                  *y2 = malloc((size_t)m * rows * 4), *y3 = malloc((size_t)m * rows * 4);
            for (int j = 0; j < rows; j++) bias[j] = t_randf();
            for (int i = 0; i < m * cols; i++) x[i] = t_randf();
            mm_weight w = {.data = wd, .dtype = FORGE_DTYPE_BF16, .qtype = qt, .rows = rows, .cols = cols, .bias = bias};
            float *scratch = malloc(mm_pack_floats(&w) * 4);
            quant_matmul_f32(k, qk, x, cols, m, &w, 0, rows, y1, rows, scratch);
            for (int i = 0; i < m; i++) {
                quant_matmul_f32(k, qk, x + (size_t)i * cols, cols, 1, &w, 0, 13, y2 + (size_t)i * rows, rows, scratch);
                quant_matmul_f32(k, qk, x + (size_t)i * cols, cols, 1, &w, 13, rows, y2 + (size_t)i * rows, rows, scratch);
            }
            for (int i = 0; i < m; i += 3) {
                int n = m - i < 3 ? m - i : 3;
                quant_matmul_f32(k, qk, x + (size_t)i * cols, cols, n, &w, 0, rows, y3 + (size_t)i * rows, rows, scratch);
            }
            CHECKF(!memcmp(y1, y2, (size_t)m * rows * 4), "%s: a row alone differs from the batch of %d", g_names[t], m);
            CHECKF(!memcmp(y1, y3, (size_t)m * rows * 4), "%s: rows three at a time differ from the batch", g_names[t]);
            double worst = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < rows; j++) {
                    double s = bias[j], mag = fabs(bias[j]);
                    for (int c = 0; c < cols; c++) {
                        s += (double)x[(size_t)i * cols + c] * ref[(size_t)j * cols + c];
                        mag += fabs((double)x[(size_t)i * cols + c] * ref[(size_t)j * cols + c]);
                    }
                    double e = fabs(y1[(size_t)i * rows + j] - s) / (mag > 0 ? mag : 1);
                    worst = e > worst ? e : worst;
                }
            CHECKF(worst < 1e-5, "%s: relative error %.3g against the float64 dot products of the values", g_names[t], worst);
            free(scratch);
            free(bias);
            free(x);
            free(y1);
            free(y2);
            free(y3);
        }
        free(wd);
        free(ref);
        free(got);
    }
    printf("    kernels %s, quant %s: %d type and width cases through the f32 path\n", k->name, quant_get()->name, tested);
}


/* The r16 products: the copy holds every stored byte (unpacking it gives the rows back), and
 * each output equals the scalar reference's bits (ref_dot plus the bias): for every row
 * count (decode and the 8/4/2/1-row tiles), column ranges cut inside a 16-row group, a
 * partial last group, extreme codes and activations. */
static void r16_unpack(int qt, const uint8_t *p, int rows, int cols, uint8_t *out) {
    size_t rb = quant_row_bytes(qt, cols), gb = quant_r16_bytes(qt, QR16, cols);
    for (int row = 0; row < rows; row++) {
        const uint8_t *g = p + (size_t)(row / QR16) * gb;
        int r = row % QR16;
        uint8_t *o = out + (size_t)row * rb;
        if (qt == QT_Q8_0)
            for (int b = 0; b < cols / 32; b++) {
                const uint8_t *blk = g + (size_t)b * QR16_Q8_0_BLOCK;
                memcpy(o + 34 * b, blk + 2 * r, 2);
                for (int k = 0; k < 8; k++)
                    for (int i = 0; i < 4; i++) o[34 * b + 2 + 4 * k + i] = blk[32 + 64 * k + 4 * r + i] ^ 0x80;
            }
        else if (qt == QT_Q4_0)
            for (int b = 0; b < cols / 32; b++) {
                const uint8_t *blk = g + (size_t)b * QR16_Q4_0_BLOCK;
                memcpy(o + 18 * b, blk + 2 * r, 2);
                for (int k = 0; k < 4; k++) memcpy(o + 18 * b + 2 + 4 * k, blk + 32 + 64 * k + 4 * r, 4);
            }
        else if (qt == QT_Q6_K)
            for (int b = 0; b < cols / 256; b++) {
                const uint8_t *blk = g + (size_t)b * QR16_Q6_K_BLOCK;
                uint8_t *ob = o + 210 * b;
                memcpy(ob + 208, blk + 2 * r, 2);
                for (int j = 0; j < 16; j++) ob[192 + j] = blk[32 + 16 * j + r];
                for (int h = 0; h < 2; h++)
                    for (int i = 0; i < 8; i++) {
                        const uint8_t *sl = blk + 288 + 192 * (8 * h + i) + 4 * r;
                        memcpy(ob + 64 * h + 4 * i, sl, 4);
                        memcpy(ob + 64 * h + 32 + 4 * i, sl + 64, 4);
                        memcpy(ob + 128 + 32 * h + 4 * i, sl + 128, 4);
                    }
            }
        else
            for (int b = 0; b < cols / 256; b++) {
                const uint8_t *blk = g + (size_t)b * QR16_Q4_K_BLOCK;
                uint8_t *ob = o + 144 * b; /* the 12 packed scale bytes stay (checked unpacked below) */
                memcpy(ob, blk + 2 * r, 2);
                memcpy(ob + 2, blk + 32 + 2 * r, 2);
                for (int P = 0; P < 4; P++)
                    for (int k = 0; k < 8; k++) memcpy(ob + 16 + 32 * P + 4 * k, blk + 320 + 512 * P + 64 * k + 4 * r, 4);
            }
    }
}

TEST(r16_matmul_equals_reference) {
    const quant_kernels *v = quant_get();
    if (!v->matmul_r16) {
        printf("    (no r16 products in the %s set)\n", v->name);
        return;
    }
    const int types[4] = {QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K};
    const char *tn[4] = {"Q8_0", "Q4_0", "Q4_K", "Q6_K"};
    for (int t = 0; t < 4; t++) {
        int qt = types[t];
        CHECK(v->r16_types >> qt & 1u);
        for (int shape = 0; shape < 3; shape++) {
            int rows = shape == 0 ? 37 : shape == 1 ? 64 : 16, cols = shape == 2 ? 2048 : 512;
            size_t rb = quant_row_bytes(qt, cols), pb = quant_r16_bytes(qt, rows, cols);
            uint8_t *wd = malloc(rb * rows), *pk = malloc(pb), *back = malloc(rb * rows);
            for (int j = 0; j < rows; j++) random_row(qt, wd + rb * j, cols);
            if (shape == 1) /* extreme codes */
                for (int j = 0; j < rows; j += 3)
                    for (int b = 0; b < cols / quant_block_elems(qt); b++) {
                        int bb = quant_block_bytes(qt), qo = qt == QT_Q4_0 || qt == QT_Q8_0 ? 2 : qt == QT_Q4_K ? 16 : 0,
                            qn = qt == QT_Q4_0 ? 16 : qt == QT_Q8_0 ? 32 : qt == QT_Q4_K ? 128 : 192;
                        memset(wd + rb * j + (size_t)bb * b + qo, qt == QT_Q8_0 ? (j % 2 ? 0x7f : 0x80) : j % 2 ? 0xff : 0x00, qn);
                        if (qt == QT_Q4_K) memset(wd + rb * j + (size_t)bb * b + 4, 0xff, 12);
                        if (qt == QT_Q6_K) memset(wd + rb * j + (size_t)bb * b + 192, j % 2 ? 0x80 : 0x7f, 16);
                    }
            CHECK(quant_r16_pack(qt, wd, rows, cols, 0, (rows + 15) / 16, pk));
            for (size_t i = 0; i < rb * rows; i++) back[i] = qt == QT_Q4_K && (i % 144) >= 4 && (i % 144) < 16 ? wd[i] : 0;
            r16_unpack(qt, pk, rows, cols, back);
            CHECKF(!memcmp(back, wd, rb * rows), "%s: the r16 copy does not hold the rows", tn[t]);
            /* the scales and mins as the kernels read them */
            if (qt == QT_Q4_K)
                for (int j = 0; j < rows; j++) {
                    uint8_t sc[8], mn[8];
                    quant_k4_scales_mins(wd + rb * j + 4, sc, mn);
                    const uint8_t *blk = pk + (size_t)(j / 16) * quant_r16_bytes(qt, 16, cols);
                    for (int s = 0; s < 8; s++) {
                        CHECK_EQ_INT(sc[s], blk[64 + 16 * s + j % 16]);
                        CHECK_EQ_INT(mn[s], blk[192 + 32 * (s / 2) + 2 * (j % 16) + s % 2]);
                    }
                }
            float *bias = malloc(rows * 4);
            for (int j = 0; j < rows; j++) bias[j] = t_randf();
            for (int use_bias = 0; use_bias < 2; use_bias++) {
                const int ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 70};
                for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
                    int m = ms[mi];
                    float *x = malloc((size_t)m * cols * 4), *y = malloc((size_t)m * rows * 4),
                          *want = malloc((size_t)m * rows * 4);
                    for (int i = 0; i < m * cols; i++) x[i] = mi == 3 && i % 7 == 0 ? 100.0f : t_randf() * (float)(1 + i % 5);
                    mm_weight w = {.data = wd, .dtype = FORGE_DTYPE_BF16, .qtype = qt, .rows = rows, .cols = cols,
                                   .bias = use_bias ? bias : NULL, .r16 = pk};
                    void *scratch = malloc(mm_pack_floats(&w) * 4);
                    quant_matmul(quant_ref(), x, cols, m, &w, 0, rows, want, rows, scratch);
                    for (int i = 0; i < m * rows; i++) y[i] = -1e30f;
                    int cut = mi % 2 ? 5 : 16, cut2 = rows > 21 ? 21 : rows;
                    v->matmul_r16(x, cols, m, &w, 0, cut, y, rows, scratch);
                    v->matmul_r16(x, cols, m, &w, cut, cut2, y, rows, scratch);
                    v->matmul_r16(x, cols, m, &w, cut2, rows, y, rows, scratch);
                    int bad = 0, first = -1;
                    for (int i = 0; i < m * rows; i++)
                        if (memcmp(&y[i], &want[i], 4)) {
                            if (first < 0) first = i;
                            bad++;
                        }
                    CHECKF(!bad, "%s %dx%d m=%d bias %d: %d outputs differ from the reference (first [%d]: %g vs %g)",
                           tn[t], rows, cols, m, use_bias, bad, first,
                           first >= 0 ? y[first] : 0, first >= 0 ? want[first] : 0);
                    free(scratch);
                    free(x);
                    free(y);
                    free(want);
                }
            }
            free(bias);
            free(wd);
            free(pk);
            free(back);
        }
    }
}

int main(void) {
    RUN(quantizers);
    RUN(dequant_equals_gguf_py);
    RUN(reference_dot_products);
    RUN(activation_quantization);
    RUN(simd_variants_match_reference);
    RUN(forge_cpu_selects_the_set);
    RUN(neon_variants_agree);
    RUN(dot4_equals_dot);
    RUN(dot2x4_equals_dot);
    RUN(matmul_batch_invariance);
    RUN(f32_path_dequant_and_invariance);
    RUN(r16_matmul_equals_reference);
    return t_summary();
}
