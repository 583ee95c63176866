// The fully connected layer as dot products: `y[n][o] = act(dot(x[n], W[o]) + bias[o])`
// with W stored `[out, in]` (rows of W are contiguous, so no transposition or packing).
//
// With AVX2+FMA a block of weight rows times a group of batch rows is summed in 8-wide FMA
// accumulators (8 rows x 1 batch row for batch 1, 4 x 3 / 4 x 2 otherwise: at most 12 ymm
// accumulators), each weight vector loaded once per block and used for every batch row of
// the group. The block's weights (8 rows: 8 * in floats) stay in L1 while the batch groups
// pass over them, so W is streamed from memory once per call whatever the batch. The last
// partial vector of a row is read with a masked load (nothing past the row is touched).
// The accumulators are reduced with horizontal adds into one vector of outputs, which gets
// the bias and the activation and is stored in one go.
#include "ckernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// Swift's `min(max(v, lo), hi)`: `lo >= v ? lo : v`, then `hi < v ? hi : v`.
static inline float activate(float v, float lo, float hi) {
    v = lo >= v ? lo : v;
    return hi < v ? hi : v;
}

static void linear_scalar(long batch, long in, long o0, long o1, const float *x, long ldx, const float *w,
                          const float *bias, float *y, long ldy, float lo, float hi) {
    for (long o = o0; o < o1; o++) {
        const float *wo = w + o * in;
        for (long n = 0; n < batch; n++) {
            const float *xn = x + n * ldx;
            float s = 0;
            for (long i = 0; i < in; i++) s += xn[i] * wo[i];
            if (bias) s += bias[o];
            y[n * ldy + o] = activate(s, lo, hi);
        }
    }
}

#if defined(__x86_64__)
#define QK_AVX2 __attribute__((target("avx2,fma")))
#define QK_INLINE __attribute__((always_inline)) static inline

/// Lanes `< k` set (k in 0...8).
QK_AVX2 QK_INLINE __m256i tail_mask(long k) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), lanes);
}

/// `acc[b * R + r] = lane sums of x[b] * w[r]` over the whole depth, R weight rows from
/// `w` (row stride `in`) and B batch rows from `x` (row stride `ldx`). R and B are
/// constants at every call site, so the arrays live in registers.
QK_AVX2 QK_INLINE void dots(const int R, const int B, long in, const float *x, long ldx, const float *w,
                            __m256 *acc) {
    for (int j = 0; j < R * B; j++) acc[j] = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= in; i += 8) {
        __m256 xv[3];
        for (int b = 0; b < B; b++) xv[b] = _mm256_loadu_ps(x + b * ldx + i);
        for (int r = 0; r < R; r++) {
            __m256 wv = _mm256_loadu_ps(w + r * in + i);
            for (int b = 0; b < B; b++) acc[b * R + r] = _mm256_fmadd_ps(xv[b], wv, acc[b * R + r]);
        }
    }
    if (i < in) {
        __m256i m = tail_mask(in - i);
        __m256 xv[3];
        for (int b = 0; b < B; b++) xv[b] = _mm256_maskload_ps(x + b * ldx + i, m);
        for (int r = 0; r < R; r++) {
            __m256 wv = _mm256_maskload_ps(w + r * in + i, m);
            for (int b = 0; b < B; b++) acc[b * R + r] = _mm256_fmadd_ps(xv[b], wv, acc[b * R + r]);
        }
    }
}

/// `(sum a[0], ..., sum a[7])`.
QK_AVX2 QK_INLINE __m256 hsum8(const __m256 *a) {
    __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    // u0 = (a0..a3 over lanes 0-3 | a0..a3 over lanes 4-7), u1 likewise for a4..a7.
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/// `(sum a[0], ..., sum a[3])`.
QK_AVX2 QK_INLINE __m128 hsum4(const __m256 *a) {
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

QK_AVX2 QK_INLINE float hsum1(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

QK_AVX2 QK_INLINE __m256 activate8(__m256 v, __m256 lo, __m256 hi) {
    v = _mm256_blendv_ps(v, lo, _mm256_cmp_ps(lo, v, _CMP_GE_OQ));
    return _mm256_blendv_ps(v, hi, _mm256_cmp_ps(hi, v, _CMP_LT_OQ));
}

QK_AVX2 QK_INLINE __m128 activate4(__m128 v, __m128 lo, __m128 hi) {
    v = _mm_blendv_ps(v, lo, _mm_cmp_ps(lo, v, _CMP_GE_OQ));
    return _mm_blendv_ps(v, hi, _mm_cmp_ps(hi, v, _CMP_LT_OQ));
}

/// Outputs `o ..< o + R` of batch rows `n ..< n + B` (R is 8, 4 or 1).
QK_AVX2 QK_INLINE void block(const int R, const int B, long in, long n, long o, const float *x, long ldx,
                             const float *w, const float *bias, float *y, long ldy, float lo, float hi) {
    __m256 acc[12];
    dots(R, B, in, x + n * ldx, ldx, w + o * in, acc);
    for (int b = 0; b < B; b++) {
        float *out = y + (n + b) * ldy + o;
        if (R == 8) {
            __m256 v = hsum8(acc + b * R);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + o));
            _mm256_storeu_ps(out, activate8(v, _mm256_set1_ps(lo), _mm256_set1_ps(hi)));
        } else if (R == 4) {
            __m128 v = hsum4(acc + b * R);
            if (bias) v = _mm_add_ps(v, _mm_loadu_ps(bias + o));
            _mm_storeu_ps(out, activate4(v, _mm_set1_ps(lo), _mm_set1_ps(hi)));
        } else {
            for (int r = 0; r < R; r++) {
                float v = hsum1(acc[b * R + r]);
                if (bias) v += bias[o + r];
                out[r] = activate(v, lo, hi);
            }
        }
    }
}

QK_AVX2 static void linear_avx2(long batch, long in, long o0, long o1, const float *x, long ldx, const float *w,
                                const float *bias, float *y, long ldy, float lo, float hi) {
    long o = o0;
    for (; o + 8 <= o1; o += 8) {
        long n = 0;
        for (; n + 3 <= batch; n += 3) {
            block(4, 3, in, n, o, x, ldx, w, bias, y, ldy, lo, hi);
            block(4, 3, in, n, o + 4, x, ldx, w, bias, y, ldy, lo, hi);
        }
        if (batch - n == 2) {
            block(4, 2, in, n, o, x, ldx, w, bias, y, ldy, lo, hi);
            block(4, 2, in, n, o + 4, x, ldx, w, bias, y, ldy, lo, hi);
        } else if (batch - n == 1) {
            block(8, 1, in, n, o, x, ldx, w, bias, y, ldy, lo, hi);
        }
    }
    for (; o + 4 <= o1; o += 4) {
        for (long n = 0; n < batch; n++) block(4, 1, in, n, o, x, ldx, w, bias, y, ldy, lo, hi);
    }
    for (; o < o1; o++) {
        for (long n = 0; n < batch; n++) block(1, 1, in, n, o, x, ldx, w, bias, y, ldy, lo, hi);
    }
}
#endif

void qk_linear(long batch, long in, long o0, long o1, const float *x, long ldx, const float *w,
               const float *bias, float *y, long ldy, float lo, float hi, int portable) {
#if defined(__x86_64__)
    if (!portable && qk_uses_avx2()) {
        linear_avx2(batch, in, o0, o1, x, ldx, w, bias, y, ldy, lo, hi);
        return;
    }
#endif
    linear_scalar(batch, in, o0, o1, x, ldx, w, bias, y, ldy, lo, hi);
}
