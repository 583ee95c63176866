// Grid quantization of activation planes (see grid_quantize.h): the fake-quant step of a
// uniform quantizer, fused with the zero padding of the conv that reads it.
#include "grid_quantize.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// The operation order is the quantizer's own: no contraction into fused multiply-adds.
#pragma STDC FP_CONTRACT OFF

float qk_grid_one(const qk_grid *g, float x) {
    float t = x / g->divisor;
    if (t != t) {
        if (!g->keep_nan) t = g->nan_value;
    } else if (g->lower_inclusive ? t <= g->lo : t < g->lo) {
        t = g->lo;
    } else if (t > g->hi) {
        t = g->hi;
    }
    if (g->centered) t = (t + 1.0f) / 2.0f;
    if (g->indices) return rintf(t * g->steps);
    t = rintf(t * g->steps) / g->steps;
    if (g->centered) t = t * 2.0f - 1.0f;
    return (t * g->scale) * g->gain;
}

static void row_scalar(const qk_grid *g, const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = qk_grid_one(g, x[i]);
}

#if defined(__x86_64__)
#define QK_GRID_AVX2 __attribute__((target("avx2")))

QK_GRID_AVX2 static void row_avx2(const qk_grid *g, const float *x, float *y, long n) {
    const __m256 d = _mm256_set1_ps(g->divisor), lo = _mm256_set1_ps(g->lo), hi = _mm256_set1_ps(g->hi);
    const __m256 nanv = _mm256_set1_ps(g->nan_value), steps = _mm256_set1_ps(g->steps);
    const __m256 scale = _mm256_set1_ps(g->scale), gain = _mm256_set1_ps(g->gain);
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_div_ps(_mm256_loadu_ps(x + i), d);
        __m256 isnan = _mm256_cmp_ps(t, t, _CMP_UNORD_Q);
        __m256 below = g->lower_inclusive ? _mm256_cmp_ps(t, lo, _CMP_LE_OQ) : _mm256_cmp_ps(t, lo, _CMP_LT_OQ);
        t = _mm256_blendv_ps(t, lo, below);
        t = _mm256_blendv_ps(t, hi, _mm256_cmp_ps(t, hi, _CMP_GT_OQ));
        if (!g->keep_nan) t = _mm256_blendv_ps(t, nanv, isnan);
        if (g->centered) t = _mm256_div_ps(_mm256_add_ps(t, one), two);
        t = _mm256_round_ps(_mm256_mul_ps(t, steps), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (g->indices) {
            _mm256_storeu_ps(y + i, t);
            continue;
        }
        t = _mm256_div_ps(t, steps);
        if (g->centered) t = _mm256_sub_ps(_mm256_mul_ps(t, two), one);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(t, scale), gain));
    }
    row_scalar(g, x + i, y + i, n - i);
}
#endif

static void fill(float *y, long n, float v) {
    for (long i = 0; i < n; i++) y[i] = v;
}

void qk_grid_quantize_plane(const qk_grid *g, const float *x, long height, long width, float *y, long pad_top,
                            long pad_left, long pad_bottom, long pad_right, float border, int portable) {
    void (*row)(const qk_grid *, const float *, float *, long) = row_scalar;
#if defined(__x86_64__)
    if (!portable && __builtin_cpu_supports("avx2")) row = row_avx2;
#endif
    const long ow = width + pad_left + pad_right;
    fill(y, pad_top * ow, border);
    float *r = y + pad_top * ow;
    // Unpadded planes are one contiguous row.
    if (pad_left == 0 && pad_right == 0) {
        row(g, x, r, height * width);
        r += height * width;
    } else {
        for (long iy = 0; iy < height; iy++, r += ow) {
            fill(r, pad_left, border);
            row(g, x + iy * width, r + pad_left, width);
            fill(r + pad_left + width, pad_right, border);
        }
    }
    fill(r, pad_bottom * ow, border);
}
