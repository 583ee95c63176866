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
void qk_micro_generic(long kc, const float *a, const float *b, float *c, long ldc,
                      const float *add, const float *bias, float lo, float hi, int final);

#endif
