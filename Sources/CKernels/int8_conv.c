// Integer convolution (see int8_conv.h): per block of output pixels, the im2col matrix of
// level indices is gathered as bytes into 16-column strips (4 consecutive depth values per
// 32-bit lane), and a micro-kernel multiplies it with packed int8 weight rows in int32.
#include "int8_conv.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

enum { NR = 16, MR = 4, BLOCK = 64 /* columns per packed block: 4 strips */ };

static long depth4(const qk_i8_shape *s) { return (s->channels * s->kernel_h * s->kernel_w + 3) & ~3L; }

size_t qk_i8_packed_weight_bytes(const qk_i8_shape *s) { return (size_t)(s->out_channels * depth4(s)); }

void qk_i8_pack_weights(const qk_i8_shape *s, const int8_t *w, int8_t *dst) {
    const long k = s->channels * s->kernel_h * s->kernel_w, k4 = depth4(s);
    for (long m = 0; m < s->out_channels; m++) {
        memcpy(dst + m * k4, w + m * k, (size_t)k);
        memset(dst + m * k4 + k, 0, (size_t)(k4 - k));
    }
}

int qk_i8_maddubs_safe(int max_index, int max_abs_weight) { return 2L * max_index * max_abs_weight <= 32767; }

int qk_i8_best_path(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) return QK_I8_VNNI;
    if (__builtin_cpu_supports("avx2")) return QK_I8_AVX2;
#endif
    return QK_I8_PORTABLE;
}


void qk_i8_levels(const float *x, long n, unsigned char max_index, unsigned char *dst) {
    for (long i = 0; i < n; i++) dst[i] = qk_i8_level(x[i], max_index);
}

/// Packs columns `p0 ..< p0 + n` (n <= BLOCK) of the im2col matrix into strips: strip `t`
/// (columns `16t ..< 16t + 16`), depth group `q` (rows `4q ..< 4q + 4`) at
/// `dst + t * k4 * 16 + q * 64`, column `j`'s 4 bytes at `+ 4j`. Columns past `n` and rows past
/// the depth are zero.
static void pack_block(const qk_i8_shape *s, const unsigned char *x, long p0, long n, unsigned char *dst) {
    const long k = s->channels * s->kernel_h * s->kernel_w, k4 = depth4(s);
    const long strips = (n + NR - 1) / NR;
    memset(dst, 0, (size_t)(strips * k4 * NR));
    for (long j = 0; j < n; j++) {
        const long p = p0 + j, oy = p / s->out_width, ox = p % s->out_width;
        unsigned char *col = dst + (j / NR) * k4 * NR + (j % NR) * 4;
        long r = 0;
        for (long c = 0; c < s->channels; c++) {
            const unsigned char *plane = x + c * s->height * s->width;
            for (long ky = 0; ky < s->kernel_h; ky++) {
                const long iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
                for (long kx = 0; kx < s->kernel_w; kx++, r++) {
                    const long ix = ox * s->stride_w - s->pad_left + kx * s->dilation_w;
                    unsigned char v = s->pad_value;
                    if (iy >= 0 && iy < s->height && ix >= 0 && ix < s->width) v = plane[iy * s->width + ix];
                    col[(r >> 2) * 64 + (r & 3)] = v;
                }
            }
        }
        (void)k;
    }
}

static inline float finish(int32_t acc, long m, long col, const qk_i8_epilogue *ep, long ld) {
    float v = (float)acc * ep->scale[m];
    v = v + ep->bias[m];
    if (ep->residual) v = v + ep->residual[m * ld + col];
    v = v < ep->lo ? ep->lo : v;
    v = v > ep->hi ? ep->hi : v;
    return ep->grid ? qk_grid_one(&ep->grid[m], v) : v;
}

/// Stores a `rows x cols` tile of int32 sums (`t`, row stride NR) at output column `col0`.
static void store_tile(const int32_t *t, long m0, long rows, long col0, long cols, float *y, long ld, long width,
                       const qk_i8_epilogue *ep, int32_t *acc) {
    for (long r = 0; r < rows; r++) {
        for (long j = 0; j < cols; j++) {
            const long m = m0 + r, col = col0 + j;
            if (acc)
                acc[m * ld + col] = t[r * NR + j];
            else if (ep->row)
                y[m * ld + col / width * ep->row + col % width] = finish(t[r * NR + j], m, col, ep, ld);
            else
                y[m * ld + col] = finish(t[r * NR + j], m, col, ep, ld);
        }
    }
}

static void tile_portable(long rows, long k4, const int8_t *a, const unsigned char *b, int32_t *t) {
    for (long r = 0; r < rows; r++) {
        for (long j = 0; j < NR; j++) {
            int32_t sum = 0;
            for (long q = 0; q < k4 / 4; q++)
                for (int e = 0; e < 4; e++) sum += (int32_t)a[r * k4 + 4 * q + e] * (int32_t)b[q * 64 + 4 * j + e];
            t[r * NR + j] = sum;
        }
    }
}

#if defined(__x86_64__)
#define QK_I8_AVX2_FN __attribute__((target("avx2")))
#define QK_I8_VNNI_FN __attribute__((target("avx512f,avx512bw,avx512vnni")))

static inline int32_t load4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

QK_I8_VNNI_FN static void tile_vnni(long rows, long k4, const int8_t *a, const unsigned char *b, int32_t *t) {
    __m512i acc[MR];
    for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_si512();
    for (long q = 0; q < k4 / 4; q++) {
        const __m512i bv = _mm512_loadu_si512((const void *)(b + q * 64));
        for (int r = 0; r < MR; r++)
            if (r < rows) acc[r] = _mm512_dpbusd_epi32(acc[r], bv, _mm512_set1_epi32(load4(a + r * k4 + 4 * q)));
    }
    for (int r = 0; r < MR; r++)
        if (r < rows) _mm512_storeu_si512((void *)(t + r * NR), acc[r]);
}

/// `u8 x s8` sums of 4 bytes per int32 lane through vpmaddubsw (int16 pairs) and vpmaddwd.
QK_I8_AVX2_FN static inline __m256i dot4(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

QK_I8_AVX2_FN static void tile_avx2(long rows, long k4, const int8_t *a, const unsigned char *b, int32_t *t, int safe) {
    __m256i lo[MR], hi[MR];
    for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm256_setzero_si256();
    const __m256i nib = _mm256_set1_epi8(0x0F);
    for (long q = 0; q < k4 / 4; q++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + q * 64));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + q * 64 + 32));
        if (safe) {
            for (int r = 0; r < MR; r++) {
                if (r >= rows) continue;
                const __m256i w = _mm256_set1_epi32(load4(a + r * k4 + 4 * q));
                lo[r] = _mm256_add_epi32(lo[r], dot4(b0, w));
                hi[r] = _mm256_add_epi32(hi[r], dot4(b1, w));
            }
        } else {
            // A pair 255 x -128 + 255 x -128 overflows int16: split each index into nibbles
            // (x = 16 h + l, each pair then at most 2 x 15 x 128), and sum 16 x high + low.
            const __m256i l0 = _mm256_and_si256(b0, nib), h0 = _mm256_and_si256(_mm256_srli_epi16(b0, 4), nib);
            const __m256i l1 = _mm256_and_si256(b1, nib), h1 = _mm256_and_si256(_mm256_srli_epi16(b1, 4), nib);
            for (int r = 0; r < MR; r++) {
                if (r >= rows) continue;
                const __m256i w = _mm256_set1_epi32(load4(a + r * k4 + 4 * q));
                lo[r] = _mm256_add_epi32(lo[r], _mm256_add_epi32(_mm256_slli_epi32(dot4(h0, w), 4), dot4(l0, w)));
                hi[r] = _mm256_add_epi32(hi[r], _mm256_add_epi32(_mm256_slli_epi32(dot4(h1, w), 4), dot4(l1, w)));
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        if (r >= rows) continue;
        _mm256_storeu_si256((__m256i *)(t + r * NR), lo[r]);
        _mm256_storeu_si256((__m256i *)(t + r * NR + 8), hi[r]);
    }
}
#endif

void qk_i8_conv(const qk_i8_shape *s, const unsigned char *x, const int8_t *pw, long p0, long p1, float *y, long ld,
                const qk_i8_epilogue *ep, int32_t *acc, int path) {
    if (path > qk_i8_best_path()) path = qk_i8_best_path();
    const long k4 = depth4(s);
    unsigned char *block = malloc((size_t)(k4 * BLOCK));
    if (!block) abort();
    int32_t t[MR * NR];
    for (long c0 = p0; c0 < p1; c0 += BLOCK) {
        const long n = p1 - c0 < BLOCK ? p1 - c0 : BLOCK;
        pack_block(s, x, c0, n, block);
        for (long strip = 0; strip * NR < n; strip++) {
            const unsigned char *b = block + strip * k4 * NR;
            const long cols = n - strip * NR < NR ? n - strip * NR : NR;
            for (long m0 = 0; m0 < s->out_channels; m0 += MR) {
                const long rows = s->out_channels - m0 < MR ? s->out_channels - m0 : MR;
                const int8_t *a = pw + m0 * k4;
#if defined(__x86_64__)
                if (path == QK_I8_VNNI)
                    tile_vnni(rows, k4, a, b, t);
                else if (path == QK_I8_AVX2)
                    tile_avx2(rows, k4, a, b, t, s->maddubs_safe);
                else
#endif
                    tile_portable(rows, k4, a, b, t);
                store_tile(t, m0, rows, c0 + strip * NR, cols, y, ld, s->out_width, ep, acc);
            }
        }
    }
    free(block);
}
