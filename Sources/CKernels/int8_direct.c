// Integer convolution from stride-phase planes of channel quads (see int8_direct.h).
#include "int8_direct.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

enum { MR = 4, LANES = 16, NV = 6, TILE = NV * LANES };

/// The prepared input's geometry.
typedef struct {
    long quads, taps;
    long phases_h, phases_w;  // phase planes per dimension (those some tap reads)
    long rows, width;         // rows and columns of a phase plane
    long virt;                // virtual output positions: out_height * width
    long plane;               // positions per phase plane, with the slack the last tile reads
} layout;

static layout layout_of(const qk_i8_shape *s) {
    layout l;
    l.quads = (s->channels + 3) / 4;
    l.taps = s->kernel_h * s->kernel_w;
    const long reach_h = s->dilation_h * (s->kernel_h - 1), reach_w = s->dilation_w * (s->kernel_w - 1);
    l.phases_h = s->stride_h < reach_h + 1 ? s->stride_h : reach_h + 1;
    l.phases_w = s->stride_w < reach_w + 1 ? s->stride_w : reach_w + 1;
    l.rows = s->out_height + reach_h / s->stride_h;
    l.width = s->out_width + reach_w / s->stride_w;
    l.virt = s->out_height * l.width;
    // The last tile reads up to its rounded end plus the largest tap offset.
    const long end = (l.virt + TILE - 1) / TILE * TILE;
    const long reach = (l.rows - s->out_height) * l.width + (l.width - s->out_width);
    l.plane = (end + reach + LANES - 1) / LANES * LANES;
    return l;
}

size_t qk_i8d_input_bytes(const qk_i8_shape *s) {
    const layout l = layout_of(s);
    return (size_t)(l.quads * l.phases_h * l.phases_w * l.plane * 4);
}

size_t qk_i8d_weight_bytes(const qk_i8_shape *s) {
    const layout l = layout_of(s);
    return (size_t)((s->out_channels + MR - 1) / MR * l.quads * l.taps * MR * 4);
}

long qk_i8d_tiles(const qk_i8_shape *s) { return (layout_of(s).virt + TILE - 1) / TILE; }

void qk_i8d_pack_weights(const qk_i8_shape *s, const int8_t *w, int8_t *dst) {
    const layout l = layout_of(s);
    const long tiles = (s->out_channels + MR - 1) / MR;
    for (long mt = 0; mt < tiles; mt++)
        for (long q = 0; q < l.quads; q++)
            for (long t = 0; t < l.taps; t++)
                for (long r = 0; r < MR; r++)
                    for (long e = 0; e < 4; e++) {
                        const long m = mt * MR + r, c = q * 4 + e;
                        *dst++ = m < s->out_channels && c < s->channels ? w[(m * s->channels + c) * l.taps + t] : 0;
                    }
}

/// The byte offset of tap `t` in the prepared input: its phase plane plus its shift.
static long tap_offset(const qk_i8_shape *s, const layout *l, long t) {
    const long ky = t / s->kernel_w, kx = t % s->kernel_w;
    const long dy = ky * s->dilation_h, dx = kx * s->dilation_w;
    const long phase = (dy % s->stride_h) * l->phases_w + dx % s->stride_w;
    return (phase * l->plane + (dy / s->stride_h) * l->width + dx / s->stride_w) * 4;
}

#if defined(__x86_64__)
#define QK_I8D_FN __attribute__((target("avx512f,avx512bw,avx512vnni")))

int qk_i8d_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
}

QK_I8D_FN static inline __m512i levels16(__m512 v, __m512 hi) {
    // max(v, 0) keeps 0 for NaN (the second operand), as qk_i8_level does.
    return _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), hi));
}

/// The grid quantizer's level indices of 16 values (qk_grid_one with `indices`, bit for bit).
QK_I8D_FN static inline __m512 grid_indices16(const qk_grid *g, __m512 x) {
    const __m512 lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    __m512 t = _mm512_div_ps(x, _mm512_set1_ps(g->divisor));
    const __mmask16 nan = _mm512_cmp_ps_mask(t, t, _CMP_UNORD_Q);
    const __mmask16 below = g->lower_inclusive ? _mm512_cmp_ps_mask(t, lo, _CMP_LE_OQ) : _mm512_cmp_ps_mask(t, lo, _CMP_LT_OQ);
    t = _mm512_mask_blend_ps(below, t, lo);
    t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, hi, _CMP_GT_OQ), t, hi);
    if (!g->keep_nan) t = _mm512_mask_blend_ps(nan, t, _mm512_set1_ps(g->nan_value));
    if (g->centered) t = _mm512_div_ps(_mm512_add_ps(t, _mm512_set1_ps(1.0f)), _mm512_set1_ps(2.0f));
    return _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(g->steps)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/// The grid quantizer's values of 16 inputs (qk_grid_one without `indices`, bit for bit).
QK_I8D_FN static inline __m512 grid_values16(const qk_grid *g, __m512 x) {
    __m512 t = _mm512_div_ps(grid_indices16(g, x), _mm512_set1_ps(g->steps));
    if (g->centered) t = _mm512_sub_ps(_mm512_mul_ps(t, _mm512_set1_ps(2.0f)), _mm512_set1_ps(1.0f));
    return _mm512_mul_ps(_mm512_mul_ps(t, _mm512_set1_ps(g->scale)), _mm512_set1_ps(g->gain));
}

/// `n` (1...16) floats of channel row `p` from column `col` on, every `stride`-th (1 or 2), by
/// masked loads (nothing past the last is read); the other lanes are 0.
QK_I8D_FN static inline __m512 load16(const float *p, long col, long stride, long n) {
    if (stride == 1) return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p + col);
    const long span = 2 * n - 1;  // floats from col to the last one read
    const __mmask16 m0 = (__mmask16)(span >= 16 ? 0xFFFFu : (1u << span) - 1);
    const __mmask16 m1 = (__mmask16)(span > 16 ? (1u << (span - 16)) - 1 : 0);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, p + col), even, _mm512_maskz_loadu_ps(m1, p + col + 16));
}

/// Row `i` of phase plane (py, px) of quad `q`: `dst` holds `l->width` words.
QK_I8D_FN static void prepare_row(const qk_i8_shape *s, const layout *l, const float *x, const qk_grid *grid, long q, long iy,
                                  long px, uint32_t *dst) {
    const uint32_t pad = s->pad_value * 0x01010101u;
    if (iy < 0 || iy >= s->height) {
        for (long j = 0; j < l->width; j++) dst[j] = pad;
        return;
    }
    const float hi = (float)s->max_index;
    const float *rows[4];
    const qk_grid *grids[4];
    for (long e = 0; e < 4; e++) {
        const long c = q * 4 + e;
        rows[e] = c < s->channels ? x + (c * s->height + iy) * s->width : NULL;
        grids[e] = c < s->channels && grid ? grid + c : NULL;
    }
    // Columns j with 0 <= stride_w * j + px - pad_left < width read the input; the rest pad.
    const long first = s->pad_left - px > 0 ? (s->pad_left - px + s->stride_w - 1) / s->stride_w : 0;
    long last = (s->width - 1 + s->pad_left - px) / s->stride_w + 1;  // exclusive
    if (s->width - 1 + s->pad_left - px < 0) last = 0;
    if (last > l->width) last = l->width;
    long j = 0;
    for (; j < first && j < l->width; j++) dst[j] = pad;
    if (s->stride_w <= 2) {
        // Runs of up to 16 columns (narrow planes too: the quantizer is too slow per element).
        const __m512 vhi = _mm512_set1_ps(hi);
        for (; j < last; j += LANES) {
            const long col = s->stride_w * j + px - s->pad_left, n = last - j < LANES ? last - j : LANES;
            __m512i word = _mm512_setzero_si512();
            for (int e = 0; e < 4; e++) {
                if (!rows[e]) continue;
                __m512 v = load16(rows[e], col, s->stride_w, n);
                if (grids[e]) v = grid_indices16(grids[e], v);
                word = _mm512_or_si512(word, _mm512_slli_epi32(levels16(v, vhi), 8 * e));
            }
            _mm512_mask_storeu_epi32(dst + j, (__mmask16)((1u << n) - 1), word);
        }
        if (j > last) j = last;  // the last run's end, or `first` when the row is all padding
    }
    for (; j < last; j++) {
        const long col = s->stride_w * j + px - s->pad_left;
        uint32_t word = 0;
        for (int e = 0; e < 4; e++)
            if (rows[e])
                word |= (uint32_t)qk_i8_level(grids[e] ? qk_grid_one(grids[e], rows[e][col]) : rows[e][col], s->max_index)
                        << (8 * e);
        dst[j] = word;
    }
    for (; j < l->width; j++) dst[j] = pad;
}

void qk_i8d_prepare(const qk_i8_shape *s, const float *x, const qk_grid *grid, long q0, long q1, unsigned char *dst) {
    const layout l = layout_of(s);
    for (long q = q0; q < q1; q++)
        for (long py = 0; py < l.phases_h; py++)
            for (long px = 0; px < l.phases_w; px++) {
                uint32_t *plane = (uint32_t *)(void *)(dst + ((q * l.phases_h + py) * l.phases_w + px) * l.plane * 4);
                for (long i = 0; i < l.rows; i++)
                    prepare_row(s, &l, x, grid, q, s->stride_h * i + py - s->pad_top, px, plane + i * l.width);
                // The slack only feeds dropped positions; zero it so the sums stay deterministic.
                memset(plane + l.rows * l.width, 0, (size_t)(l.plane - l.rows * l.width) * 4);
            }
}

/// `acc[r][j]` += the 4-byte dot products of `nv` 16-position vectors and channel `r`'s
/// weights, over every quad and tap; the sums go to `out` (`[4][TILE]`).
QK_I8D_FN static inline __attribute__((always_inline)) void tile(int nv, const layout *l, const long *offsets,
                                                                 const unsigned char *x, const int8_t *w, int32_t *out) {
    __m512i acc[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < nv; j++) acc[r][j] = _mm512_setzero_si512();
    const long quad_bytes = l->phases_h * l->phases_w * l->plane * 4;
    for (long q = 0; q < l->quads; q++, x += quad_bytes) {
        for (long t = 0; t < l->taps; t++, w += MR * 4) {
            const unsigned char *b = x + offsets[t];
            __m512i v[NV];
            for (int j = 0; j < nv; j++) v[j] = _mm512_loadu_si512((const void *)(b + j * LANES * 4));
            for (int r = 0; r < MR; r++) {
                int32_t wr;
                memcpy(&wr, w + r * 4, 4);
                const __m512i wv = _mm512_set1_epi32(wr);
                for (int j = 0; j < nv; j++) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], v[j], wv);
            }
        }
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < nv; j++) _mm512_storeu_si512((void *)(out + r * TILE + j * LANES), acc[r][j]);
}

QK_I8D_FN static void tile_n(int nv, const layout *l, const long *offsets, const unsigned char *x, const int8_t *w,
                             int32_t *out) {
    switch (nv) {
    case 1: tile(1, l, offsets, x, w, out); break;
    case 2: tile(2, l, offsets, x, w, out); break;
    case 3: tile(3, l, offsets, x, w, out); break;
    case 4: tile(4, l, offsets, x, w, out); break;
    case 5: tile(5, l, offsets, x, w, out); break;
    default: tile(6, l, offsets, x, w, out); break;
    }
}

/// Writes the valid outputs of virtual positions `v0 ..< v1` (`sums` from `v0`, row stride
/// TILE) for channels `m ..< m + rows`: `y = min(max(acc * scale + bias + residual, lo), hi)`
/// in float32, in that order (then the epilogue's grid quantizer, if any), or the sums
/// themselves into `acc`.
QK_I8D_FN static void finish(const qk_i8_shape *s, const layout *l, const int32_t *sums, long v0, long v1, long m, long rows,
                             float *y, long ld, const qk_i8_epilogue *ep, int32_t *acc) {
    for (long oy = v0 / l->width; oy < s->out_height && oy * l->width < v1; oy++) {
        const long a = v0 > oy * l->width ? v0 : oy * l->width;
        const long b = v1 < oy * l->width + s->out_width ? v1 : oy * l->width + s->out_width;
        for (long k = a; k < b; k += LANES) {
            const long n = b - k < LANES ? b - k : LANES;
            const __mmask16 mask = (__mmask16)((1u << n) - 1);
            const long at = oy * s->out_width + (k - oy * l->width);  // output column
            const long yat = ep->row ? oy * ep->row + (k - oy * l->width) : at;
            for (long r = 0; r < rows; r++) {
                const __m512i sum = _mm512_maskz_loadu_epi32(mask, sums + r * TILE + (k - v0));
                if (acc) {
                    _mm512_mask_storeu_epi32(acc + (m + r) * ld + at, mask, sum);
                    continue;
                }
                __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(ep->scale[m + r]));
                v = _mm512_add_ps(v, _mm512_set1_ps(ep->bias[m + r]));
                if (ep->residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, ep->residual + (m + r) * ld + at));
                // max(lo, v) and min(hi, v) return v when it is NaN, as the scalar compares do.
                v = _mm512_min_ps(_mm512_set1_ps(ep->hi), _mm512_max_ps(_mm512_set1_ps(ep->lo), v));
                if (ep->grid) v = grid_values16(&ep->grid[m + r], v);
                _mm512_mask_storeu_ps(y + (m + r) * ld + yat, mask, v);
            }
        }
    }
}

void qk_i8d_conv(const qk_i8_shape *s, const unsigned char *x, const int8_t *pw, long t0, long t1, long m0, long m1, float *y,
                 long ld, const qk_i8_epilogue *ep, int32_t *acc) {
    const layout l = layout_of(s);
    long offsets[l.taps];
    for (long t = 0; t < l.taps; t++) offsets[t] = tap_offset(s, &l, t);
    int32_t sums[MR * TILE] __attribute__((aligned(64)));
    const long weights_per_tile = l.quads * l.taps * MR * 4;
    for (long t = t0; t < t1; t++) {
        const long v0 = t * TILE, v1 = v0 + TILE < l.virt ? v0 + TILE : l.virt;
        const int nv = (int)((v1 - v0 + LANES - 1) / LANES);
        for (long m = m0; m < m1; m += MR) {
            tile_n(nv, &l, offsets, x + v0 * 4, pw + m / MR * weights_per_tile, sums);
            finish(s, &l, sums, v0, v1, m, m1 - m < MR ? m1 - m : MR, y, ld, ep, acc);
        }
    }
}

#else
int qk_i8d_supported(void) { return 0; }
void qk_i8d_prepare(const qk_i8_shape *s, const float *x, const qk_grid *grid, long q0, long q1, unsigned char *dst) {
    (void)s, (void)x, (void)grid, (void)q0, (void)q1, (void)dst;
}
void qk_i8d_conv(const qk_i8_shape *s, const unsigned char *x, const int8_t *pw, long t0, long t1, long m0, long m1, float *y,
                 long ld, const qk_i8_epilogue *ep, int32_t *acc) {
    (void)s, (void)x, (void)pw, (void)t0, (void)t1, (void)m0, (void)m1, (void)y, (void)ld, (void)ep, (void)acc;
}
#endif
