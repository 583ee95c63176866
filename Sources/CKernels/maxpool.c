// Max pooling over NCHW planes, PyTorch semantics: padded positions are skipped and NaN
// wins. The reference rule scans each window row-major with `if (v > m || v != v) m = v`
// from `m = -inf`, so among equal values (+0 and -0) the first in that order wins, and among
// NaNs the last one does.
//
// Planes without NaN take a fast path that reproduces this bit for bit: each window row is
// reduced left to right, then the row results top to bottom, always keeping the earlier
// value on ties (`later > earlier ? later : earlier`, which is what _mm256_max_ps(later,
// earlier) computes). That keeps the first maximal element of the first row holding one:
// the element the row-major scan keeps.
//
// With AVX2, strides 1 and 2 along the width do 8 outputs at a time: a horizontal pass
// reduces each input row once (stride 2 deinterleaves with in-lane shuffles and keeps that
// lane order), then a vertical pass reduces the window rows of each output row and fixes the
// lane order on the store. In general the horizontal pass fills a buffer for a block of input
// rows; the 3x3 stride-2 pool (ResNet's stem) streams instead, keeping only the last row's
// maxima, which the next output row shares. The last group of 8 in a row is moved back to end
// at the last interior output (it recomputes a few outputs, with the same result). Loads
// never leave a window, so nothing outside a plane is read. Outputs whose window reaches into
// the padding along the width take the reference rule over their valid taps; padding rows are
// left out of the vertical pass. A plane holding NaN (each row is checked as it is first
// read) takes the exact per-element rule.
#include "ckernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// The reference rule for one output: row-major scan, padded positions skipped.
static float window_exact(const qk_pool_shape *s, const float *x, long oy, long ox) {
    float m = -INFINITY;
    for (long ky = 0; ky < s->kernel_h; ky++) {
        long iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
        if (iy < 0 || iy >= s->height) continue;
        for (long kx = 0; kx < s->kernel_w; kx++) {
            long ix = ox * s->stride_w - s->pad_left + kx * s->dilation_w;
            if (ix < 0 || ix >= s->width) continue;
            float v = x[iy * s->width + ix];
            if (v > m || v != v) m = v;
        }
    }
    return m;
}

#if defined(__x86_64__)
/// Outputs `[lo, hi)` along one axis whose whole window lies inside the input.
static void interior(long n, long size, long stride, long pad, long k, long d, long *lo, long *hi) {
    long a = (pad + stride - 1) / stride;
    long last = size - 1 - (k - 1) * d + pad;  // largest window start (padded coordinates) that fits
    long b = last < 0 ? 0 : last / stride + 1;
    if (b > n) b = n;
    if (a >= b) a = b = 0;
    *lo = a;
    *hi = b;
}
#endif

/// The window taps `[*lo, *hi)` of output `o` that fall inside the input (a contiguous range).
static void valid_taps(long o, long stride, long pad, long k, long d, long size, long *lo, long *hi) {
    long base = o * stride - pad, a = 0, b = k;
    while (a < b && base + a * d < 0) a++;
    while (b > a && base + (b - 1) * d >= size) b--;
    *lo = a;
    *hi = b;
}

static int has_nan_scalar(const float *x, long n) {
    // NaN iff |bits| > +inf's bits; an unsigned max reduction vectorizes.
    uint32_t largest = 0;
    for (long i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        b &= 0x7fffffffu;
        largest = b > largest ? b : largest;
    }
    return largest > 0x7f800000u;
}

/// Output `(oy, ox)` of a NaN-free plane from its window rows `[ky_lo, ky_hi)` (non-empty):
/// the reference rule without the NaN test.
static float window_clean(const qk_pool_shape *s, const float *x, long oy, long ox, long ky_lo, long ky_hi) {
    long kx_lo, kx_hi;
    valid_taps(ox, s->stride_w, s->pad_left, s->kernel_w, s->dilation_w, s->width, &kx_lo, &kx_hi);
    if (kx_lo == kx_hi) return -INFINITY;
    long w = s->width, ix0 = ox * s->stride_w - s->pad_left, iy0 = oy * s->stride_h - s->pad_top;
    float m = x[(iy0 + ky_lo * s->dilation_h) * w + ix0 + kx_lo * s->dilation_w];
    for (long ky = ky_lo; ky < ky_hi; ky++) {
        const float *line = x + (iy0 + ky * s->dilation_h) * w;
        for (long kx = kx_lo; kx < kx_hi; kx++) {
            float v = line[ix0 + kx * s->dilation_w];
            m = v > m ? v : m;
        }
    }
    return m;
}

/// A NaN-free plane, one output at a time (any geometry; the portable path).
static void plane_scalar(const qk_pool_shape *s, const float *x, float *y) {
    for (long oy = 0; oy < s->out_height; oy++) {
        long ky_lo, ky_hi;
        valid_taps(oy, s->stride_h, s->pad_top, s->kernel_h, s->dilation_h, s->height, &ky_lo, &ky_hi);
        float *out = y + oy * s->out_width;
        for (long ox = 0; ox < s->out_width; ox++)
            out[ox] = ky_lo == ky_hi ? -INFINITY : window_clean(s, x, oy, ox, ky_lo, ky_hi);
    }
}

#if defined(__x86_64__)
#define QK_AVX2 __attribute__((target("avx2,fma")))

QK_AVX2 static int has_nan_avx2(const float *x, long n) {
    __m256 acc = _mm256_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        acc = _mm256_or_ps(acc, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        acc = _mm256_or_ps(acc, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
    return _mm256_movemask_ps(acc) != 0 || has_nan_scalar(x + i, n - i);
}

/// The even elements `p[0], p[2], ..., p[14]` in the lane order (0 2 8 10 | 4 6 12 14);
/// reads `p[0 ..< 15]` only.
QK_AVX2 static inline __m256 evens(const float *p) {
    // Lanes (a0 a2 b1 b3 | a4 a6 b5 b7) of a = p[0 ..< 8], b = p[7 ..< 15].
    return _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 7), 0xD8);
}

enum { BUFFER_FLOATS = 8192 };  // the row-maxima buffer on the stack (32 KiB, an L1's worth)

/// The output columns of a row: vector groups of 8 outputs from `starts[g]` for
/// `g < groups`, covering the interior columns `[c0, c1)` (the last group moved back to end
/// at `c1`); the other columns `border[b]` for `b < borders`, whose window taps inside the
/// row are `taps[b]` from input column `first_tap[b]`.
typedef struct {
    long groups, borders;
    long *starts, *border, *first_tap, *taps;
} columns;

/// The maxima of `p[2j], p[2j + 1], p[2j + 2]` for `j < 8` (a row of 8 windows of 3, stride
/// 2) in `evens` lane order; reads `p[0 ..< 17]`.
QK_AVX2 static inline __m256 three_s2(const float *p) {
    // p[0 ..< 16] as evens and odds (the lane order of `evens`), then p[2], ..., p[16].
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    __m256 even = _mm256_shuffle_ps(a, b, 0x88), odd = _mm256_shuffle_ps(a, b, 0xDD);
    return _mm256_max_ps(evens(p + 2), _mm256_max_ps(odd, even));
}

/// (0 2 8 10 | 4 6 12 14) -> (0 2 4 6 8 10 12 14): the middle 64-bit pairs swapped.
QK_AVX2 static inline __m256 in_order(__m256 m) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8));
}

/// Horizontal pass over one input row: slot `g` of `dst` (8 floats) gets the row maxima of
/// vector group `g`, in `evens` lane order for stride 2.
QK_AVX2 static void row_pass(const qk_pool_shape *s, const columns *c, const float *row, float *dst) {
    long kw = s->kernel_w, dw = s->dilation_w, pl = s->pad_left;
    const long *starts = c->starts;
    if (s->stride_w == 1) {
        for (long g = 0; g < c->groups; g++) {
            const float *p = row + starts[g] - pl;
            __m256 m = _mm256_loadu_ps(p);
            for (long kx = 1; kx < kw; kx++) m = _mm256_max_ps(_mm256_loadu_ps(p + kx * dw), m);
            _mm256_storeu_ps(dst + 8 * g, m);
        }
    } else if (kw == 3 && dw == 1) {
        for (long g = 0; g < c->groups; g++) _mm256_storeu_ps(dst + 8 * g, three_s2(row + 2 * starts[g] - pl));
    } else {
        for (long g = 0; g < c->groups; g++) {
            const float *p = row + 2 * starts[g] - pl;
            __m256 m = evens(p);
            for (long kx = 1; kx < kw; kx++) m = _mm256_max_ps(evens(p + kx * dw), m);
            _mm256_storeu_ps(dst + 8 * g, m);
        }
    }
}

/// Vertical pass of one output row: group `g`'s maxima over `rows` buffer rows from
/// `first + 8 * g`, `step` floats apart, stored at `out + starts[g]` (`s2`: lanes put back
/// in order). Inlined with constant `rows` and `s2` where it matters.
QK_AVX2 __attribute__((always_inline)) static inline void column_pass(const columns *c, const float *first,
                                                                     long step, long rows, int s2, float *out) {
    for (long g = 0; g < c->groups; g++) {
        const float *p = first + 8 * g;
        __m256 m = _mm256_loadu_ps(p);
        for (long r = 1; r < rows; r++) m = _mm256_max_ps(_mm256_loadu_ps(p + r * step), m);
        if (s2) m = in_order(m);
        _mm256_storeu_ps(out + c->starts[g], m);
    }
}

/// The border columns of one output row whose window rows inside the input are `rows` rows
/// from `top`: the reference rule over the valid taps (no NaN here).
static inline void border_columns(const qk_pool_shape *s, const columns *c, const float *top, long rows, float *out) {
    long step = s->dilation_h * s->width;
    for (long b = 0; b < c->borders; b++) {
        const float *corner = top + c->first_tap[b];
        float m = c->taps[b] ? corner[0] : -INFINITY;
        for (long r = 0; r < rows; r++) {
            for (long k = 0; k < c->taps[b]; k++) {
                float v = corner[r * step + k * s->dilation_w];
                m = v > m ? v : m;
            }
        }
        out[c->border[b]] = m;
    }
}

/// The 3x3 stride-2 pool (ResNet's stem; any padding, ceil mode) in one pass over the rows:
/// output row `oy` reads input rows `a = 2 oy - pad_top`, `a + 1`, `a + 2`, and row `a`'s
/// maxima were computed for the row before, so they are kept in `prev` (one slot of 8 per
/// group) rather than recomputed. Each row is checked for NaN when it is first read;
/// returns 0, with the output partly written, on finding one.
QK_AVX2 static int plane_s2k3(const qk_pool_shape *s, const columns *c, const float *x, float *y) {
    long h = s->height, w = s->width, oh = s->out_height, ow = s->out_width, pl = s->pad_left;
    long slots = 8 * c->groups;
    float stack_prev[1024];
    float *prev = slots <= 1024 ? stack_prev : malloc((size_t)slots * sizeof(float));
    if (!prev) abort();
    const long *starts = c->starts;
    long have = -1;  // the input row whose maxima `prev` holds
    int nan = 0;
    for (long oy = 0; oy < oh && !nan; oy++) {
        float *out = y + oy * ow;
        long a = 2 * oy - s->pad_top, ky_lo, ky_hi;
        valid_taps(oy, 2, s->pad_top, 3, 1, h, &ky_lo, &ky_hi);
        if (ky_lo == ky_hi) {
            for (long ox = 0; ox < ow; ox++) out[ox] = -INFINITY;
            continue;
        }
        for (long ky = ky_lo; ky < ky_hi && !nan; ky++) {
            if (a + ky == have) continue;
            nan = has_nan_avx2(x + (a + ky) * w, w);
        }
        if (nan) break;
        border_columns(s, c, x + (a + ky_lo) * w, ky_hi - ky_lo, out);
        if (ky_lo == 0 && ky_hi == 3 && have == a) {
            const float *r1 = x + (a + 1) * w, *r2 = r1 + w;
            for (long g = 0; g < c->groups; g++) {
                long q = 2 * starts[g] - pl;
                __m256 m = _mm256_loadu_ps(prev + 8 * g);
                m = _mm256_max_ps(three_s2(r1 + q), m);
                __m256 last = three_s2(r2 + q);
                _mm256_storeu_ps(prev + 8 * g, last);
                _mm256_storeu_ps(out + starts[g], in_order(_mm256_max_ps(last, m)));
            }
        } else {
            for (long g = 0; g < c->groups; g++) {
                long q = 2 * starts[g] - pl;
                __m256 m = _mm256_setzero_ps();
                for (long ky = ky_lo; ky < ky_hi; ky++) {
                    __m256 v = a + ky == have ? _mm256_loadu_ps(prev + 8 * g) : three_s2(x + (a + ky) * w + q);
                    m = ky == ky_lo ? v : _mm256_max_ps(v, m);
                    if (ky == 2) _mm256_storeu_ps(prev + 8 * g, v);
                }
                _mm256_storeu_ps(out + starts[g], in_order(m));
            }
        }
        have = ky_hi == 3 ? a + 2 : -1;
    }
    if (prev != stack_prev) free(prev);
    return !nan;
}

/// A plane by the vector path (stride 1 or 2 along the width, at least 8 interior columns):
/// the horizontal pass over a block of input rows into a buffer, then the vertical pass per
/// output row; border columns by the reference rule. Each input row is checked for NaN just
/// before its horizontal pass (every row a window reads gets one); returns 0, with the
/// output partly written, on finding one.
QK_AVX2 static int plane_avx2(const qk_pool_shape *s, const columns *c, const float *x, float *y) {
    long h = s->height, w = s->width, oh = s->out_height, ow = s->out_width;
    long sh = s->stride_h, dh = s->dilation_h, span = (s->kernel_h - 1) * dh + 1;
    long slots = 8 * c->groups;
    // Output rows per block: the maxima of their input rows fill at most the buffer.
    float stack_buffer[BUFFER_FLOATS];
    float *buffer = stack_buffer;
    long capacity = BUFFER_FLOATS / slots, block = 1;
    if (capacity >= span) {
        block = (capacity - span) / sh + 1;
    } else {
        buffer = malloc((size_t)(span * slots) * sizeof(float));
        if (!buffer) abort();
    }
    int s2 = s->stride_w == 2, nan = 0;
    for (long b0 = 0; b0 < oh && !nan; b0 += block) {
        long b1 = b0 + block < oh ? b0 + block : oh;
        long r0 = b0 * sh - s->pad_top, r1 = (b1 - 1) * sh - s->pad_top + span;
        if (r0 < 0) r0 = 0;
        if (r1 > h) r1 = h;
        for (long iy = r0; iy < r1 && !nan; iy++) {
            nan = has_nan_avx2(x + iy * w, w);
            if (!nan) row_pass(s, c, x + iy * w, buffer + (iy - r0) * slots);
        }
        for (long oy = b0; oy < b1 && !nan; oy++) {
            float *out = y + oy * ow;
            long ky_lo, ky_hi;
            valid_taps(oy, sh, s->pad_top, s->kernel_h, dh, h, &ky_lo, &ky_hi);
            if (ky_lo == ky_hi) {
                for (long ox = 0; ox < ow; ox++) out[ox] = -INFINITY;
                continue;
            }
            long rows = ky_hi - ky_lo;
            border_columns(s, c, x + (oy * sh - s->pad_top + ky_lo * dh) * w, rows, out);
            const float *first = buffer + (oy * sh - s->pad_top + ky_lo * dh - r0) * slots;
            long step = dh * slots;
            if (s2 && rows == 3) {
                column_pass(c, first, step, 3, 1, out);
            } else if (s2) {
                column_pass(c, first, step, rows, 1, out);
            } else {
                column_pass(c, first, step, rows, 0, out);
            }
        }
    }
    if (buffer != stack_buffer) free(buffer);
    return !nan;
}
#endif

void qk_maxpool(const qk_pool_shape *s, const float *x, float *y, long p0, long p1, int portable) {
    long in_plane = s->height * s->width, out_plane = s->out_height * s->out_width;
#if defined(__x86_64__)
    int avx2 = !portable && qk_uses_avx2();
    long c0 = 0, c1 = 0, ow = s->out_width;
    if (avx2 && (s->stride_w == 1 || s->stride_w == 2))
        interior(ow, s->width, s->stride_w, s->pad_left, s->kernel_w, s->dilation_w, &c0, &c1);
    int vector = c1 - c0 >= 8;
    int stem = s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 2 && s->stride_w == 2 && s->dilation_h == 1 &&
               s->dilation_w == 1;
    columns c = {0};
    long small[128];
    if (vector) {
        c.groups = (c1 - c0 + 7) / 8;
        c.borders = ow - (c1 - c0);
        long need = c.groups + 3 * c.borders;
        c.starts = need <= 128 ? small : malloc((size_t)need * sizeof(long));
        if (!c.starts) abort();
        c.border = c.starts + c.groups;
        c.first_tap = c.border + c.borders;
        c.taps = c.first_tap + c.borders;
        for (long g = 0; g < c.groups; g++) c.starts[g] = c0 + 8 * g < c1 - 8 ? c0 + 8 * g : c1 - 8;
        for (long ox = 0, b = 0; ox < ow; ox++) {
            if (ox >= c0 && ox < c1) continue;
            long lo, hi;
            valid_taps(ox, s->stride_w, s->pad_left, s->kernel_w, s->dilation_w, s->width, &lo, &hi);
            c.border[b] = ox;
            c.first_tap[b] = lo < hi ? ox * s->stride_w - s->pad_left + lo * s->dilation_w : 0;
            c.taps[b] = hi - lo;
            b++;
        }
    }
#else
    (void)portable;
#endif
    for (long p = p0; p < p1; p++) {
        const float *xp = x + p * in_plane;
        float *yp = y + p * out_plane;
#if defined(__x86_64__)
        if (vector && (stem ? plane_s2k3(s, &c, xp, yp) : plane_avx2(s, &c, xp, yp))) continue;
        if (!vector && !(avx2 ? has_nan_avx2(xp, in_plane) : has_nan_scalar(xp, in_plane))) {
            plane_scalar(s, xp, yp);
            continue;
        }
#else
        if (!has_nan_scalar(xp, in_plane)) {
            plane_scalar(s, xp, yp);
            continue;
        }
#endif
        for (long oy = 0; oy < s->out_height; oy++) {
            for (long ox = 0; ox < s->out_width; ox++) yp[oy * s->out_width + ox] = window_exact(s, xp, oy, ox);
        }
    }
#if defined(__x86_64__)
    if (c.starts && c.starts != small) free(c.starts);
#endif
}
