// The Winograd F(2x2, 3x3) and F(4x4, 3x3) input and output transforms of one channel.
//
// Input, per tile row: the α input rows are copied into zero-padded row buffers, combined
// vertically (B^T over rows, on whole contiguous rows), then each of the α resulting rows is
// transformed horizontally (B over the strided tile windows) into α² plane-wide arrays of
// tiles; at the end these are copied into V as whole 16-tile strips of the packed-B layout.
// Output, per output channel: the α² rows of M (contiguous over all tiles) are transformed
// horizontally (A over each tile's α values) into α plane-wide rows, then combined
// vertically (A^T over rows), with bias, residual and clamp, into each output row.
// Working plane-wide keeps the vector passes on long runs even for 7x7 maps.
//
// The strided horizontal passes are AVX2 deinterleave/interleave code, 8 tiles at a time,
// with scalar tails; the contiguous passes are plain loops compiled twice (portable, and for
// AVX2+FMA by function attribute, where the compiler vectorizes them).
#include "ckernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma")))
#endif

// ---- strided horizontal passes, scalar ------------------------------------------------

// F(4x4): o_k[tx] = (B^T d)_k with d = t[4*tx ..< 4*tx + 6].
static void in4_scalar(const float *t, long from, long tw, float *const o[6]) {
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

// F(2x2): o_k[tx] = (B^T d)_k with d = t[2*tx ..< 2*tx + 4].
static void in2_scalar(const float *t, long from, long tw, float *const o[4]) {
    for (long tx = from; tx < tw; tx++) {
        const float *x = t + 2 * tx;
        float d0 = x[0], d1 = x[1], d2 = x[2], d3 = x[3];
        o[0][tx] = d0 - d2;
        o[1][tx] = d1 + d2;
        o[2][tx] = d2 - d1;
        o[3][tx] = d1 - d3;
    }
}

// F(4x4): y[4*tx + j] = (A^T q)_j with q = (s_0[tx], ..., s_5[tx]).
static void out4_scalar(const float *const s[6], long from, long tw, float *y) {
    for (long tx = from; tx < tw; tx++) {
        float q0 = s[0][tx], q1 = s[1][tx], q2 = s[2][tx], q3 = s[3][tx], q4 = s[4][tx], q5 = s[5][tx];
        float a = q1 + q2, b = q1 - q2, c = q3 + q4, d = q3 - q4;
        float *o = y + 4 * tx;
        o[0] = q0 + a + c;
        o[1] = b + 2 * d;
        o[2] = a + 4 * c;
        o[3] = b + 8 * d + q5;
    }
}

// F(2x2): y[2*tx + j] = (A^T q)_j with q = (s_0[tx], ..., s_3[tx]).
static void out2_scalar(const float *const s[4], long from, long tw, float *y) {
    for (long tx = from; tx < tw; tx++) {
        float q0 = s[0][tx], q1 = s[1][tx], q2 = s[2][tx], q3 = s[3][tx];
        y[2 * tx] = q0 + q1 + q2;
        y[2 * tx + 1] = q1 - q2 - q3;
    }
}

// ---- strided horizontal passes, AVX2 ----------------------------------------------------

#if defined(__x86_64__)
// Two 128-bit groups (4 floats each) as one vector: low half at p, high half at q.
AVX2_FN static inline __m256 pair(const float *p, const float *q) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(q), 1);
}

// Reads t up to t[4*tw + 3].
AVX2_FN static long in4_avx2(const float *t, long tw, float *const o[6]) {
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

// Even and odd elements of the 16 floats at p, in order.
AVX2_FN static inline void deinterleave2(const float *p, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

// Reads t up to t[2*tw + 1].
AVX2_FN static long in2_avx2(const float *t, long tw, float *const o[4]) {
    long tx = 0;
    for (; tx + 8 <= tw; tx += 8) {
        __m256 d0, d1, d2, d3;
        deinterleave2(t + 2 * tx, &d0, &d1);
        deinterleave2(t + 2 * tx + 2, &d2, &d3);
        _mm256_storeu_ps(o[0] + tx, _mm256_sub_ps(d0, d2));
        _mm256_storeu_ps(o[1] + tx, _mm256_add_ps(d1, d2));
        _mm256_storeu_ps(o[2] + tx, _mm256_sub_ps(d2, d1));
        _mm256_storeu_ps(o[3] + tx, _mm256_sub_ps(d1, d3));
    }
    return tx;
}

AVX2_FN static long out4_avx2(const float *const s[6], long tw, float *y) {
    const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), eight = _mm256_set1_ps(8);
    long tx = 0;
    for (; tx + 8 <= tw; tx += 8) {
        __m256 q0 = _mm256_loadu_ps(s[0] + tx), q1 = _mm256_loadu_ps(s[1] + tx), q2 = _mm256_loadu_ps(s[2] + tx);
        __m256 q3 = _mm256_loadu_ps(s[3] + tx), q4 = _mm256_loadu_ps(s[4] + tx), q5 = _mm256_loadu_ps(s[5] + tx);
        __m256 a = _mm256_add_ps(q1, q2), b = _mm256_sub_ps(q1, q2);
        __m256 c = _mm256_add_ps(q3, q4), d = _mm256_sub_ps(q3, q4);
        __m256 y0 = _mm256_add_ps(_mm256_add_ps(q0, a), c);
        __m256 y1 = _mm256_fmadd_ps(two, d, b);
        __m256 y2 = _mm256_fmadd_ps(four, c, a);
        __m256 y3 = _mm256_add_ps(_mm256_fmadd_ps(eight, d, b), q5);
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

AVX2_FN static long out2_avx2(const float *const s[4], long tw, float *y) {
    long tx = 0;
    for (; tx + 8 <= tw; tx += 8) {
        __m256 q0 = _mm256_loadu_ps(s[0] + tx), q1 = _mm256_loadu_ps(s[1] + tx);
        __m256 q2 = _mm256_loadu_ps(s[2] + tx), q3 = _mm256_loadu_ps(s[3] + tx);
        __m256 y0 = _mm256_add_ps(_mm256_add_ps(q0, q1), q2);
        __m256 y1 = _mm256_sub_ps(_mm256_sub_ps(q1, q2), q3);
        __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
        _mm256_storeu_ps(y + 2 * tx, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(y + 2 * tx + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    return tx;
}
#endif

// ---- contiguous vertical passes, compiled twice ------------------------------------------

// B^T over α rows: o_j[x] = sum_r B^T[j][r] d_r[x] for x < n.
#define VERTICAL_IN4(NAME, ATTR)                                                             \
    ATTR static void NAME(const float *const d[6], float *const o[6], long n) {              \
        const float *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2];            \
        const float *restrict d3 = d[3], *restrict d4 = d[4], *restrict d5 = d[5];            \
        float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2];                  \
        float *restrict o3 = o[3], *restrict o4 = o[4], *restrict o5 = o[5];                  \
        for (long x = 0; x < n; x++) {                                                        \
            float a = d0[x], b = d1[x], c = d2[x], e = d3[x], f = d4[x], g = d5[x];           \
            o0[x] = 4 * a - 5 * c + f;                                                        \
            o1[x] = (e + f) - 4 * (b + c);                                                    \
            o2[x] = (f - e) + 4 * (b - c);                                                    \
            o3[x] = (f - c) + 2 * (e - b);                                                    \
            o4[x] = (f - c) - 2 * (e - b);                                                    \
            o5[x] = 4 * b - 5 * e + g;                                                        \
        }                                                                                     \
    }

#define VERTICAL_IN2(NAME, ATTR)                                                             \
    ATTR static void NAME(const float *const d[4], float *const o[4], long n) {              \
        const float *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2];            \
        const float *restrict d3 = d[3];                                                      \
        float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2];                  \
        float *restrict o3 = o[3];                                                            \
        for (long x = 0; x < n; x++) {                                                        \
            float a = d0[x], b = d1[x], c = d2[x], e = d3[x];                                 \
            o0[x] = a - c;                                                                    \
            o1[x] = b + c;                                                                    \
            o2[x] = c - b;                                                                    \
            o3[x] = b - e;                                                                    \
        }                                                                                     \
    }

// Output row k of a tile row: y = clamp(sum_r A^T[k][r] h_r + bias + add, lo, hi), where
// `add` may be NULL or alias `y` (each element is read before it is written). NaN passes
// the clamp (as in the GEMM micro-kernel). The loop is written out twice, with and without
// `add`: a single loop with `if (add)` inside is vectorized into masked loads, which fault
// (and are replayed by microcode, very slowly) on a NULL `add`.
// `add` may equal `y`: every element is read and then written by the same iteration, so
// that loop is vectorized without the compiler's overlap checks.
#if defined(__clang__)
#define ASSUME_SAFE _Pragma("clang loop vectorize(assume_safety)")
#else
#define ASSUME_SAFE
#endif
#define CLAMP_STORE                                                                           \
    v = lo > v ? lo : v;                                                                      \
    v = hi < v ? hi : v;                                                                      \
    y[x] = v;
#define EPILOGUE_LOOP(x_expr)                                                                 \
    if (add) {                                                                                \
        ASSUME_SAFE for (long x = 0; x < n; x++) {                                            \
            float v = (x_expr) + bias;                                                        \
            v += add[x];                                                                      \
            CLAMP_STORE                                                                       \
        }                                                                                     \
    } else {                                                                                  \
        for (long x = 0; x < n; x++) {                                                        \
            float v = (x_expr) + bias;                                                        \
            CLAMP_STORE                                                                       \
        }                                                                                     \
    }

#define VERTICAL_OUT4(NAME, ATTR)                                                            \
    ATTR static void NAME(const float *const h[6], int k, long n, float bias, const float *add, \
                          float *y, float lo, float hi) {                                     \
        const float *restrict h0 = h[0], *restrict h1 = h[1], *restrict h2 = h[2];            \
        const float *restrict h3 = h[3], *restrict h4 = h[4], *restrict h5 = h[5];            \
        switch (k) {                                                                          \
        case 0: EPILOGUE_LOOP(h0[x] + (h1[x] + h2[x]) + (h3[x] + h4[x])) break;               \
        case 1: EPILOGUE_LOOP((h1[x] - h2[x]) + 2 * (h3[x] - h4[x])) break;                   \
        case 2: EPILOGUE_LOOP((h1[x] + h2[x]) + 4 * (h3[x] + h4[x])) break;                   \
        default: EPILOGUE_LOOP((h1[x] - h2[x]) + 8 * (h3[x] - h4[x]) + h5[x]) break;          \
        }                                                                                     \
    }

#define VERTICAL_OUT2(NAME, ATTR)                                                            \
    ATTR static void NAME(const float *const h[4], int k, long n, float bias, const float *add, \
                          float *y, float lo, float hi) {                                     \
        const float *restrict h0 = h[0], *restrict h1 = h[1], *restrict h2 = h[2];            \
        const float *restrict h3 = h[3];                                                      \
        if (k == 0) {                                                                         \
            EPILOGUE_LOOP(h0[x] + h1[x] + h2[x])                                              \
        } else {                                                                              \
            EPILOGUE_LOOP(h1[x] - h2[x] - h3[x])                                              \
        }                                                                                     \
    }

VERTICAL_IN4(vin4_portable, )
VERTICAL_IN2(vin2_portable, )
VERTICAL_OUT4(vout4_portable, )
VERTICAL_OUT2(vout2_portable, )
#if defined(__x86_64__)
VERTICAL_IN4(vin4_avx2, AVX2_FN)
VERTICAL_IN2(vin2_avx2, AVX2_FN)
VERTICAL_OUT4(vout4_avx2, AVX2_FN)
VERTICAL_OUT2(vout2_avx2, AVX2_FN)
#endif

// ---- drivers -----------------------------------------------------------------------------

static long round_up(long n, long k) { return (n + k - 1) / k * k; }

/// Row-buffer width: every tile's window plus what the 8-tile vector passes read past the
/// last tile of a row.
static long row_width(long tile, long tw) { return round_up(tile * (tw + 8) + 4, 8); }

/// Floats per point of the plane-wide tile arrays: whole 16-tile strips, and room for the
/// vector passes' last 8 tiles.
static long tile_stride(long tiles) { return round_up(tiles + 8, 16); }

size_t qk_wino_scratch_count(long tile, long tiles_h, long tiles_w) {
    long a = tile + 2, t = tiles_h * tiles_w;
    size_t in = (size_t)(2 * a * row_width(tile, tiles_w) + a * a * tile_stride(t));
    size_t out = (size_t)(a * tile * tile_stride(t));
    return in > out ? in : out;
}

static int use_avx2(int portable) {
#if defined(__x86_64__)
    return !portable && qk_uses_avx2();
#else
    (void)portable;
    return 0;
#endif
}

// The horizontal input pass over `n` tiles (the vector code may compute up to 7 more).
static void in_pass(long m, int vec, const float *src, long n, float *const o[6]) {
    long done = 0;
#if defined(__x86_64__)
    if (vec) done = m == 4 ? in4_avx2(src, round_up(n, 8), o) : in2_avx2(src, round_up(n, 8), o);
#else
    (void)vec;
#endif
    if (m == 4) in4_scalar(src, done, n, o); else in2_scalar(src, done, n, o);
}

// The horizontal output pass over `n` tiles (the vector code may compute up to 7 more).
static void out_pass(long m, int vec, const float *const s[6], long n, float *y) {
    long done = 0;
#if defined(__x86_64__)
    if (vec) done = m == 4 ? out4_avx2(s, round_up(n, 8), y) : out2_avx2(s, round_up(n, 8), y);
#else
    (void)vec;
#endif
    if (m == 4) out4_scalar(s, done, n, y); else out2_scalar(s, done, n, y);
}

void qk_wino_input(const qk_wino_plane *p, const float *plane, float *v, float *scratch, int portable) {
    const long m = p->tile, a = m + 2, tw = p->tiles_w, width = row_width(m, tw);
    const long tiles = p->tiles_h * tw, ts = tile_stride(tiles);
    const int vec = use_avx2(portable);
    const float *rows[6];
    float *trans[6];
    for (long r = 0; r < a; r++) {
        rows[r] = scratch + r * width;
        trans[r] = scratch + (a + r) * width;
    }
    float *tmp = scratch + 2 * a * width;  // point ξ's tiles at tmp[ξ * ts + t]
    // Buffer column X holds input column X - pad_left.
    const long lo = p->pad_left > 0 ? p->pad_left : 0;
    long hi = p->pad_left + p->width;
    if (hi > width) hi = width;
    for (long ty = 0; ty < p->tiles_h; ty++) {
        for (long r = 0; r < a; r++) {
            float *row = scratch + r * width;
            long iy = m * ty - p->pad_top + r;
            if (iy < 0 || iy >= p->height || hi <= lo) {
                memset(row, 0, (size_t)width * sizeof(float));
                continue;
            }
            memset(row, 0, (size_t)lo * sizeof(float));
            memcpy(row + lo, plane + iy * p->width + (lo - p->pad_left), (size_t)(hi - lo) * sizeof(float));
            memset(row + hi, 0, (size_t)(width - hi) * sizeof(float));
        }
#if defined(__x86_64__)
        if (vec) {
            if (m == 4) vin4_avx2(rows, trans, width); else vin2_avx2(rows, trans, width);
        } else
#endif
        {
            if (m == 4) vin4_portable(rows, trans, width); else vin2_portable(rows, trans, width);
        }
        // Horizontal: tile row ty is tiles ty*tw ..< ty*tw + tw of every point's array (the
        // vector tail spills into the next row's tiles, which that row then overwrites).
        for (long j = 0; j < a; j++) {
            float *o[6];
            for (long k = 0; k < a; k++) o[k] = tmp + (j * a + k) * ts + ty * tw;
            in_pass(m, vec, trans[j], tw, o);
        }
    }
    // Into V: whole 16-tile strips. Lanes past the last tile are never read back as results;
    // they are zeroed so that no garbage (denormals, NaN) slows the GEMM down.
    const long strips = (tiles + 15) / 16;
    for (long xi = 0; xi < a * a; xi++) {
        float *src = tmp + xi * ts;
        memset(src + tiles, 0, (size_t)(strips * 16 - tiles) * sizeof(float));
        float *dst = v + xi * p->point_stride;
        for (long s = 0; s < strips; s++) memcpy(dst + s * 16 * p->channels, src + 16 * s, 16 * sizeof(float));
    }
}

void qk_wino_output(const qk_wino_plane *p, const float *mat, float bias, const float *residual, float *out,
                    float lo, float hi, float *scratch, int portable) {
    const long m = p->tile, a = m + 2, tw = p->tiles_w;
    const long tiles = p->tiles_h * tw, hs = m * tile_stride(tiles);
    const int vec = use_avx2(portable);
    // Horizontal, plane-wide: h_r[m*t + j] = (A^T (M[r*α + c][t])_c)_j for every tile t, so
    // output row m*ty + k, column x reads h_r[m*ty*tw + x].
    const float *h[6];
    for (long r = 0; r < a; r++) {
        const float *s[6];
        for (long c = 0; c < a; c++) s[c] = mat + (r * a + c) * p->point_stride;
        out_pass(m, vec, s, tiles, scratch + r * hs);
    }
    for (long ty = 0; ty < p->tiles_h; ty++) {
        for (long r = 0; r < a; r++) h[r] = scratch + r * hs + m * ty * tw;
        for (int k = 0; k < m && m * ty + k < p->height; k++) {
            long off = (m * ty + k) * p->width;
            const float *add = residual ? residual + off : 0;
#if defined(__x86_64__)
            if (vec) {
                if (m == 4) vout4_avx2(h, k, p->width, bias, add, out + off, lo, hi);
                else vout2_avx2(h, k, p->width, bias, add, out + off, lo, hi);
                continue;
            }
#endif
            if (m == 4) vout4_portable(h, k, p->width, bias, add, out + off, lo, hi);
            else vout2_portable(h, k, p->width, bias, add, out + off, lo, hi);
        }
    }
}
