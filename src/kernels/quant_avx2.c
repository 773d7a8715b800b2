/* quant_avx2.c: quant.h's kernels for AVX2 + FMA + F16C (maddubs + madd for u8 x s8). */
#include "base/cpu.h"

#define DOT_U8S8(acc, u, s) _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "kernels/quant_x86.inc"

static const quant_kernels g_avx2 = {"avx2", qx_quantize_act, qx_dot, qx_dot4, qx_dequant, QX_DEQUANT_TYPES, NULL, 0, NULL};

const quant_kernels *quant_avx2(void) { return cpu_detect().avx2 ? &g_avx2 : NULL; }
