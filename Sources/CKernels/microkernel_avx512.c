// The AVX-512 6x32 micro-kernel: two adjacent 16-column B strips at once (12 zmm
// accumulators; per depth step two B loads, six A broadcasts, twelve FMAs). Compiled for
// AVX-512F by function attribute; qk_sgemm calls it only when the CPU has AVX-512F, for
// whole 6x32 tiles; qk_micro_avx512 takes the rest when the pair kernel is on.
#include "ckernels.h"
#include "microkernel.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
void qk_micro_avx512_pair(long kc, const float *a, const float *b, const float *b2, float *c, long ldc,
                          const float *add, const float *bias, float lo, float hi, int final) {
    __m512 acc[QK_MR][2];
    for (int r = 0; r < QK_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m512 v0 = _mm512_loadu_ps(b), v1 = _mm512_loadu_ps(b2);
        for (int r = 0; r < QK_MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(ar, v0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(ar, v1, acc[r][1]);
        }
        a += QK_MR;
        b += QK_NR;
        b2 += QK_NR;
    }
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int r = 0; r < QK_MR; r++) {
        float *q = c + r * ldc;
        __m512 x0 = acc[r][0], x1 = acc[r][1];
        if (add) {
            const float *s = add + r * ldc;
            x0 = _mm512_add_ps(x0, _mm512_loadu_ps(s));
            x1 = _mm512_add_ps(x1, _mm512_loadu_ps(s + 16));
        }
        if (final) {
            if (bias) {
                __m512 br = _mm512_set1_ps(bias[r]);
                x0 = _mm512_add_ps(x0, br);
                x1 = _mm512_add_ps(x1, br);
            }
            // max/min return their second operand when one is NaN: NaN passes through.
            x0 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, x0));
            x1 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, x1));
        }
        _mm512_storeu_ps(q, x0);
        _mm512_storeu_ps(q + 16, x1);
    }
}

/// The epilogue of the 16-wide kernels: row r is `acc[r] + add[r]`, and when `final`
/// `clamp(. + bias[r], lo, hi)`, stored at `c + r * ldc`.
__attribute__((target("avx512f"), always_inline)) static inline void store_rows16(const __m512 *acc, int rows, float *c,
                                                                                  long ldc, const float *add,
                                                                                  const float *bias, float lo, float hi,
                                                                                  int final) {
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int r = 0; r < rows; r++) {
        __m512 x0 = acc[r];
        if (add) x0 = _mm512_add_ps(x0, _mm512_loadu_ps(add + r * ldc));
        if (final) {
            if (bias) x0 = _mm512_add_ps(x0, _mm512_set1_ps(bias[r]));
            // max/min return their second operand when one is NaN: NaN passes through.
            x0 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, x0));
        }
        _mm512_storeu_ps(c + r * ldc, x0);
    }
}

/// The 6x16 tile on one zmm per row (6 accumulators): the strips that have no pair (n not a
/// multiple of 32, the Winograd GEMMs' few tiles) and the partial tiles. The same FMAs in
/// the same order as the AVX2 kernel and the pair kernel, so every tiling gives the same bits;
/// on this CPU it runs at 1.3x the AVX2 kernel (171 against 127 GFLOP/s on one core).
__attribute__((target("avx512f")))
void qk_micro_avx512(long kc, const float *a, const float *b, float *c, long ldc, const float *add,
                     const float *bias, float lo, float hi, int final) {
    __m512 acc[QK_MR];
    for (int r = 0; r < QK_MR; r++) acc[r] = _mm512_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m512 v0 = _mm512_loadu_ps(b);
        for (int r = 0; r < QK_MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), v0, acc[r]);
        a += QK_MR;
        b += QK_NR;
    }
    store_rows16(acc, QK_MR, c, ldc, add, bias, lo, hi, final);
}

/// Two 6x16 tiles one above the other: rows 0..<6 from panel `a`, rows 6..<12 from panel
/// `a2` (12 accumulators, one B load per depth step): a lone strip's tiles at 1.2x the 6x16
/// kernel. Same FMAs in the same order; `c`, `add` and `bias` cover all 12 rows.
__attribute__((target("avx512f")))
void qk_micro_avx512_tall(long kc, const float *a, const float *a2, const float *b, float *c, long ldc,
                          const float *add, const float *bias, float lo, float hi, int final) {
    __m512 acc[2 * QK_MR];
    for (int r = 0; r < 2 * QK_MR; r++) acc[r] = _mm512_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m512 v0 = _mm512_loadu_ps(b);
        for (int r = 0; r < QK_MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), v0, acc[r]);
        for (int r = 0; r < QK_MR; r++) acc[QK_MR + r] = _mm512_fmadd_ps(_mm512_set1_ps(a2[r]), v0, acc[QK_MR + r]);
        a += QK_MR;
        a2 += QK_MR;
        b += QK_NR;
    }
    store_rows16(acc, 2 * QK_MR, c, ldc, add, bias, lo, hi, final);
}
#else
void qk_micro_avx512_tall(long kc, const float *a, const float *a2, const float *b, float *c, long ldc,
                          const float *add, const float *bias, float lo, float hi, int final) {
    qk_micro_generic(kc, a, b, c, ldc, add, bias, lo, hi, final);
    qk_micro_generic(kc, a2, b, c + QK_MR * ldc, ldc, add ? add + QK_MR * ldc : 0, bias ? bias + QK_MR : 0, lo, hi,
                     final);
}

void qk_micro_avx512(long kc, const float *a, const float *b, float *c, long ldc, const float *add,
                     const float *bias, float lo, float hi, int final) {
    qk_micro_generic(kc, a, b, c, ldc, add, bias, lo, hi, final);
}

void qk_micro_avx512_pair(long kc, const float *a, const float *b, const float *b2, float *c, long ldc,
                          const float *add, const float *bias, float lo, float hi, int final) {
    qk_micro_generic(kc, a, b, c, ldc, add, bias, lo, hi, final);
    qk_micro_generic(kc, a, b2, c + QK_NR, ldc, add ? add + QK_NR : 0, bias, lo, hi, final);
}
#endif
