// The AVX2+FMA 6x16 micro-kernel: 12 ymm accumulators, B strip loaded as two vectors per
// k step, A values broadcast. Compiled for AVX2 by function attribute; qk_sgemm calls it
// only when the CPU has AVX2 and FMA.
#include "ckernels.h"
#include "microkernel.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma")))
void qk_micro_avx2(long kc, const float *a, const float *b, float *c, long ldc, const float *add,
                   const float *bias, float lo, float hi, int final) {
    __m256 acc[QK_MR][2];
    for (int r = 0; r < QK_MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        for (int r = 0; r < QK_MR; r++) {
            __m256 ar = _mm256_broadcast_ss(a + r);
            acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
        }
        a += QK_MR;
        b += QK_NR;
    }
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (int r = 0; r < QK_MR; r++) {
        float *q = c + r * ldc;
        __m256 x0 = acc[r][0], x1 = acc[r][1];
        if (add) {
            const float *s = add + r * ldc;
            x0 = _mm256_add_ps(x0, _mm256_loadu_ps(s));
            x1 = _mm256_add_ps(x1, _mm256_loadu_ps(s + 8));
        }
        if (final) {
            if (bias) {
                __m256 br = _mm256_broadcast_ss(bias + r);
                x0 = _mm256_add_ps(x0, br);
                x1 = _mm256_add_ps(x1, br);
            }
            // max/min return their second operand when one is NaN: NaN passes through.
            x0 = _mm256_min_ps(vhi, _mm256_max_ps(vlo, x0));
            x1 = _mm256_min_ps(vhi, _mm256_max_ps(vlo, x1));
        }
        _mm256_storeu_ps(q, x0);
        _mm256_storeu_ps(q + 8, x1);
    }
}
#else
void qk_micro_avx2(long kc, const float *a, const float *b, float *c, long ldc, const float *add,
                   const float *bias, float lo, float hi, int final) {
    qk_micro_generic(kc, a, b, c, ldc, add, bias, lo, hi, final);
}
#endif
