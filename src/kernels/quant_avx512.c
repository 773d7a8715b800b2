/* quant_avx512.c: quant.h's kernels with AVX-512 VNNI's vpdpbusd on 256-bit vectors
 * (AVX512VL) for u8 x s8 sums; needs AVX-512 F/BW/VL + VNNI (checked at run time). */
#include "base/cpu.h"

#define DOT_U8S8(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "kernels/quant_x86.inc"

/* the r16 products (quant_r16_avx512.c) */
void quant_r16_avx512_matmul(const float *x, int ldx, int m, const mm_weight *w, int j0, int j1, float *y, int ldy,
                             void *scratch);

static const quant_kernels g_avx512 = {"avx512vnni", qx_quantize_act, qx_dot, qx_dot4, qx_dequant, QX_DEQUANT_TYPES,
                                       NULL, 1u << QT_Q8_0 | 1u << QT_Q4_0 | 1u << QT_Q4_K | 1u << QT_Q6_K,
                                       quant_r16_avx512_matmul};

const quant_kernels *quant_avx512(void) {
    static int ok = -1;
    if (ok < 0)
        ok = cpu_detect().avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    return ok ? &g_avx512 : NULL;
}
