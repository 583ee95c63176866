// Internal: the 6x16 micro-kernels behind qk_sgemm (one AVX2+FMA, one portable).
#ifndef QTOOLS_MICROKERNEL_H
#define QTOOLS_MICROKERNEL_H

/// Computes one QK_MR x QK_NR tile: `acc = A_panel (kc x 6) * B_strip (kc x 16)`, then
/// `c = acc + add` (add may be NULL, or equal c), and when `final`:
/// `c = clamp(c + bias[r], lo, hi)` (bias may be NULL). `c` and `add` have row stride `ldc`.
typedef void (*qk_micro_fn)(long kc, const float *a, const float *b, float *c, long ldc,
                            const float *add, const float *bias, float lo, float hi, int final);

void qk_micro_avx2(long kc, const float *a, const float *b, float *c, long ldc, const float *add,
                   const float *bias, float lo, float hi, int final);
/// Two tiles side by side (QK_MR x 2*QK_NR): columns 0..<16 from strip `b`, 16..<32 from
/// strip `b2`; `c` and `add` cover all 32 columns. AVX-512F only (the caller checks).
void qk_micro_avx512_pair(long kc, const float *a, const float *b, const float *b2, float *c, long ldc,
                          const float *add, const float *bias, float lo, float hi, int final);
/// The 6x16 tile on AVX-512F (one zmm per row; the caller checks the CPU).
void qk_micro_avx512(long kc, const float *a, const float *b, float *c, long ldc, const float *add,
                     const float *bias, float lo, float hi, int final);
/// Two 6x16 tiles stacked (12 x QK_NR): rows 0..<6 from panel `a`, 6..<12 from panel `a2`;
/// `c`, `add` (row stride ldc) and `bias` cover all 12 rows. AVX-512F only.
void qk_micro_avx512_tall(long kc, const float *a, const float *a2, const float *b, float *c, long ldc,
                          const float *add, const float *bias, float lo, float hi, int final);
void qk_micro_generic(long kc, const float *a, const float *b, float *c, long ldc,
                      const float *add, const float *bias, float lo, float hi, int final);

#endif
