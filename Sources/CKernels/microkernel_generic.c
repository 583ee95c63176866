// The portable 6x16 micro-kernel (any CPU; the compiler vectorizes what it can).
#include "ckernels.h"
#include "microkernel.h"

void qk_micro_generic(long kc, const float *a, const float *b, float *c, long ldc,
                      const float *add, const float *bias, float lo, float hi, int final) {
    float acc[QK_MR][QK_NR] = {{0}};
    for (long p = 0; p < kc; p++) {
        for (int r = 0; r < QK_MR; r++) {
            float ar = a[r];
            for (int j = 0; j < QK_NR; j++) acc[r][j] += ar * b[j];
        }
        a += QK_MR;
        b += QK_NR;
    }
    for (int r = 0; r < QK_MR; r++) {
        for (int j = 0; j < QK_NR; j++) {
            float x = acc[r][j];
            if (add) x += add[r * ldc + j];
            if (final) {
                if (bias) x += bias[r];
                x = x < lo ? lo : x;
                x = x > hi ? hi : x;
            }
            c[r * ldc + j] = x;
        }
    }
}
