// The strided passes of the Winograd F(4x4, 3x3) transforms, 8 tiles at a time with AVX2
// (4-way deinterleave / interleave by 128-bit lane shuffles), a scalar loop otherwise.
// The contiguous passes stay in Swift (Sources/Inference/Kernels/WinogradF4.swift), where
// they vectorize on their own.
#include "ckernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void rows_in_scalar(const float *t, long from, long tw, float *const o[6]) {
    for (long tx = from; tx < tw; tx++) {
        const float *x = t + 4 * tx;
        float d0 = x[0], d1 = x[1], d2 = x[2], d3 = x[3], d4 = x[4], d5 = x[5];
        o[0][tx] = 4 * d0 - 5 * d2 + d4;
        o[1][tx] = (d3 + d4) - 4 * (d1 + d2);
        o[2][tx] = (d4 - d3) + 4 * (d1 - d2);
        o[3][tx] = (d4 - d2) + 2 * (d3 - d1);
        o[4][tx] = (d4 - d2) - 2 * (d3 - d1);
        o[5][tx] = 4 * d1 - 5 * d3 + d5;
    }
}

static void rows_out_scalar(const float *const s[6], long from, long tw, float bias, float *y) {
    for (long tx = from; tx < tw; tx++) {
        float q0 = s[0][tx], q1 = s[1][tx], q2 = s[2][tx], q3 = s[3][tx], q4 = s[4][tx], q5 = s[5][tx];
        float a = q1 + q2, b = q1 - q2, c = q3 + q4, d = q3 - q4;
        float *o = y + 4 * tx;
        o[0] = q0 + a + c + bias;
        o[1] = b + 2 * d + bias;
        o[2] = a + 4 * c + bias;
        o[3] = b + 8 * d + q5 + bias;
    }
}

#if defined(__x86_64__)
// Two 128-bit groups (4 floats each) as one vector: low half at p, high half at q.
__attribute__((target("avx2,fma"))) static inline __m256 pair(const float *p, const float *q) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(q), 1);
}

__attribute__((target("avx2,fma"))) static long rows_in_avx2(const float *t, long tw, float *const o[6]) {
    const __m256 four = _mm256_set1_ps(4), five = _mm256_set1_ps(5), two = _mm256_set1_ps(2);
    long tx = 0;
    for (; tx + 8 <= tw; tx += 8) {
        // Group g = the 4 floats of tile tx+g: lanes (g, g+4) side by side.
        const float *x = t + 4 * tx;
        __m256 g04 = pair(x, x + 16), g15 = pair(x + 4, x + 20), g26 = pair(x + 8, x + 24),
               g37 = pair(x + 12, x + 28), g48 = pair(x + 16, x + 32);
        __m256 lo01 = _mm256_unpacklo_ps(g04, g15), hi01 = _mm256_unpackhi_ps(g04, g15);
        __m256 lo23 = _mm256_unpacklo_ps(g26, g37), hi23 = _mm256_unpackhi_ps(g26, g37);
        __m256 d0 = _mm256_shuffle_ps(lo01, lo23, 0x44), d1 = _mm256_shuffle_ps(lo01, lo23, 0xEE);
        __m256 d2 = _mm256_shuffle_ps(hi01, hi23, 0x44), d3 = _mm256_shuffle_ps(hi01, hi23, 0xEE);
        __m256 lo12 = _mm256_unpacklo_ps(g15, g26), lo34 = _mm256_unpacklo_ps(g37, g48);
        __m256 d4 = _mm256_shuffle_ps(lo12, lo34, 0x44), d5 = _mm256_shuffle_ps(lo12, lo34, 0xEE);
        __m256 s12 = _mm256_add_ps(d1, d2), m12 = _mm256_sub_ps(d1, d2);
        __m256 m31 = _mm256_sub_ps(d3, d1), m42 = _mm256_sub_ps(d4, d2);
        _mm256_storeu_ps(o[0] + tx, _mm256_add_ps(_mm256_fnmadd_ps(five, d2, _mm256_mul_ps(four, d0)), d4));
        _mm256_storeu_ps(o[1] + tx, _mm256_fnmadd_ps(four, s12, _mm256_add_ps(d3, d4)));
        _mm256_storeu_ps(o[2] + tx, _mm256_fmadd_ps(four, m12, _mm256_sub_ps(d4, d3)));
        _mm256_storeu_ps(o[3] + tx, _mm256_fmadd_ps(two, m31, m42));
        _mm256_storeu_ps(o[4] + tx, _mm256_fnmadd_ps(two, m31, m42));
        _mm256_storeu_ps(o[5] + tx, _mm256_add_ps(_mm256_fnmadd_ps(five, d3, _mm256_mul_ps(four, d1)), d5));
    }
    return tx;
}

__attribute__((target("avx2,fma"))) static long rows_out_avx2(const float *const s[6], long tw, float bias, float *y) {
    const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), eight = _mm256_set1_ps(8);
    const __m256 vb = _mm256_set1_ps(bias);
    long tx = 0;
    for (; tx + 8 <= tw; tx += 8) {
        __m256 q0 = _mm256_loadu_ps(s[0] + tx), q1 = _mm256_loadu_ps(s[1] + tx), q2 = _mm256_loadu_ps(s[2] + tx);
        __m256 q3 = _mm256_loadu_ps(s[3] + tx), q4 = _mm256_loadu_ps(s[4] + tx), q5 = _mm256_loadu_ps(s[5] + tx);
        __m256 a = _mm256_add_ps(q1, q2), b = _mm256_sub_ps(q1, q2);
        __m256 c = _mm256_add_ps(q3, q4), d = _mm256_sub_ps(q3, q4);
        __m256 y0 = _mm256_add_ps(_mm256_add_ps(q0, a), _mm256_add_ps(c, vb));
        __m256 y1 = _mm256_add_ps(_mm256_fmadd_ps(two, d, b), vb);
        __m256 y2 = _mm256_add_ps(_mm256_fmadd_ps(four, c, a), vb);
        __m256 y3 = _mm256_add_ps(_mm256_add_ps(_mm256_fmadd_ps(eight, d, b), q5), vb);
        // Interleave: output group g (4 floats, tile tx+g) = (y0[g], y1[g], y2[g], y3[g]).
        __m256 lo01 = _mm256_unpacklo_ps(y0, y1), hi01 = _mm256_unpackhi_ps(y0, y1);
        __m256 lo23 = _mm256_unpacklo_ps(y2, y3), hi23 = _mm256_unpackhi_ps(y2, y3);
        __m256 g04 = _mm256_shuffle_ps(lo01, lo23, 0x44), g15 = _mm256_shuffle_ps(lo01, lo23, 0xEE);
        __m256 g26 = _mm256_shuffle_ps(hi01, hi23, 0x44), g37 = _mm256_shuffle_ps(hi01, hi23, 0xEE);
        float *o = y + 4 * tx;
        _mm256_storeu_ps(o, _mm256_permute2f128_ps(g04, g15, 0x20));
        _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(g26, g37, 0x20));
        _mm256_storeu_ps(o + 16, _mm256_permute2f128_ps(g04, g15, 0x31));
        _mm256_storeu_ps(o + 24, _mm256_permute2f128_ps(g26, g37, 0x31));
    }
    return tx;
}
#endif

void qk_wino4_rows_in(const float *t, long tw, float *o0, float *o1, float *o2, float *o3, float *o4,
                      float *o5, int portable) {
    float *const o[6] = {o0, o1, o2, o3, o4, o5};
    long done = 0;
#if defined(__x86_64__)
    if (!portable && qk_uses_avx2()) done = rows_in_avx2(t, tw, o);
#endif
    rows_in_scalar(t, done, tw, o);
}

void qk_wino4_rows_out(const float *s0, const float *s1, const float *s2, const float *s3,
                       const float *s4, const float *s5, long tw, float bias, float *y, int portable) {
    const float *const s[6] = {s0, s1, s2, s3, s4, s5};
    long done = 0;
#if defined(__x86_64__)
    if (!portable && qk_uses_avx2()) done = rows_out_avx2(s, tw, bias, y);
#endif
    rows_out_scalar(s, done, tw, bias, y);
}
