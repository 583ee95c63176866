// Direct depthwise convolution (see depthwise.h). Per output plane, each input row the
// plane needs is copied once into a zero-padded row, split into `stride_w` column phases
// (phase q holds padded columns q, q + s, q + 2s, ...), in a ring of (kernel_h - 1) *
// dilation_h + 1 rows. Tap (ky, kx) of output column ox then reads phase (kx * dw) % s of
// row ky at index ox + (kx * dw) / s: a contiguous run, whatever the stride, with no bounds
// checks (rows above or below the image are skipped). Every output vector accumulates
// all taps in a register, then gets bias, residual and clamp, and is stored once.
#include "depthwise.h"

#include "conv_direct.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// Vector width every padded row is rounded to (the widest build's).
enum { DW_VEC = 16 };

typedef struct {
    long phase_len;   // floats per phase of one padded row
    long row_len;     // stride_w * phase_len
    long slots;       // rows in the ring
} dw_layout;

static dw_layout dw_make_layout(const qk_dw_shape *s) {
    dw_layout l;
    long ow_r = (s->out_width + DW_VEC - 1) / DW_VEC * DW_VEC;
    l.phase_len = ow_r + ((s->kernel_w - 1) * s->dilation_w) / s->stride_w + 1;
    l.row_len = s->stride_w * l.phase_len;
    l.slots = (s->kernel_h - 1) * s->dilation_h + 1;
    return l;
}

/// Input row `row` (width `s->width`) as a padded, phase-split row at `dst`.
static void dw_fill_row(const qk_dw_shape *s, const dw_layout *l, const float *row, float *dst) {
    long sw = s->stride_w, pl = s->pad_left, w = s->width, n = l->phase_len;
    for (long q = 0; q < sw; q++) {
        float *d = dst + q * n;
        // Padded column j = q + sw * i is input column j - pl.
        long lo = pl - q <= 0 ? 0 : (pl - q + sw - 1) / sw;
        long hi = w + pl - q <= 0 ? 0 : (w + pl - q + sw - 1) / sw;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        if (hi < lo) hi = lo;
        if (lo > 0) memset(d, 0, (size_t)lo * sizeof(float));
        const float *src = row + q + sw * lo - pl;
        if (sw == 1) {
            memcpy(d + lo, src, (size_t)(hi - lo) * sizeof(float));
        } else {
            for (long i = lo; i < hi; i++) d[i] = src[(i - lo) * sw];
        }
        if (hi < n) memset(d + hi, 0, (size_t)(n - hi) * sizeof(float));
    }
}

/// One output row from `nt` taps: `y[ox] = clamp(b + res[ox] + sum_i k[i] * t[i][ox])`.
typedef void (*dw_row_fn)(long nt, const float *const *t, const float *k, float b, const float *res, float *y,
                          long ow, float lo, float hi);

static void dw_row_portable(long nt, const float *const *t, const float *k, float b, const float *res, float *y,
                            long ow, float lo, float hi) {
    for (long ox = 0; ox < ow; ox++) {
        float acc = res ? b + res[ox] : b;
        for (long i = 0; i < nt; i++) acc += k[i] * t[i][ox];
        // Comparisons are false for NaN: it passes through.
        if (acc < lo) acc = lo;
        if (acc > hi) acc = hi;
        y[ox] = acc;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void dw_row_avx512(long nt, const float *const *t, const float *k, float b,
                                                             const float *res, float *y, long ow, float lo, float hi) {
    __m512 vb = _mm512_set1_ps(b), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    if (nt == 9) {
        // 3x3: the taps' weights stay in registers.
        __m512 k0 = _mm512_set1_ps(k[0]), k1 = _mm512_set1_ps(k[1]), k2 = _mm512_set1_ps(k[2]);
        __m512 k3 = _mm512_set1_ps(k[3]), k4 = _mm512_set1_ps(k[4]), k5 = _mm512_set1_ps(k[5]);
        __m512 k6 = _mm512_set1_ps(k[6]), k7 = _mm512_set1_ps(k[7]), k8 = _mm512_set1_ps(k[8]);
        for (long ox = 0; ox < ow; ox += 16) {
            __mmask16 m = ow - ox >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ow - ox)) - 1);
            __m512 a = res ? _mm512_add_ps(vb, _mm512_maskz_loadu_ps(m, res + ox)) : vb;
            // Padded rows are long enough to read whole vectors past `ow`.
            __m512 c = _mm512_mul_ps(k0, _mm512_loadu_ps(t[0] + ox));
            a = _mm512_fmadd_ps(k1, _mm512_loadu_ps(t[1] + ox), a);
            c = _mm512_fmadd_ps(k2, _mm512_loadu_ps(t[2] + ox), c);
            a = _mm512_fmadd_ps(k3, _mm512_loadu_ps(t[3] + ox), a);
            c = _mm512_fmadd_ps(k4, _mm512_loadu_ps(t[4] + ox), c);
            a = _mm512_fmadd_ps(k5, _mm512_loadu_ps(t[5] + ox), a);
            c = _mm512_fmadd_ps(k6, _mm512_loadu_ps(t[6] + ox), c);
            a = _mm512_fmadd_ps(k7, _mm512_loadu_ps(t[7] + ox), a);
            c = _mm512_fmadd_ps(k8, _mm512_loadu_ps(t[8] + ox), c);
            a = _mm512_add_ps(a, c);
            // max/min return their second operand when one is NaN: NaN passes through.
            a = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a));
            _mm512_mask_storeu_ps(y + ox, m, a);
        }
        return;
    }
    for (long ox = 0; ox < ow; ox += 16) {
        __mmask16 m = ow - ox >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ow - ox)) - 1);
        __m512 a = res ? _mm512_add_ps(vb, _mm512_maskz_loadu_ps(m, res + ox)) : vb;
        for (long i = 0; i < nt; i++) a = _mm512_fmadd_ps(_mm512_set1_ps(k[i]), _mm512_loadu_ps(t[i] + ox), a);
        a = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a));
        _mm512_mask_storeu_ps(y + ox, m, a);
    }
}

__attribute__((target("avx2,fma"))) static void dw_row_avx2(long nt, const float *const *t, const float *k, float b,
                                                            const float *res, float *y, long ow, float lo, float hi) {
    __m256 vb = _mm256_set1_ps(b), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (long ox = 0; ox < ow; ox += 8) {
        long left = ow - ox;
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), lane);
        __m256 a = res ? _mm256_add_ps(vb, _mm256_maskload_ps(res + ox, m)) : vb;
        __m256 c = _mm256_setzero_ps();
        long i = 0;
        for (; i + 1 < nt; i += 2) {
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(k + i), _mm256_loadu_ps(t[i] + ox), a);
            c = _mm256_fmadd_ps(_mm256_broadcast_ss(k + i + 1), _mm256_loadu_ps(t[i + 1] + ox), c);
        }
        if (i < nt) a = _mm256_fmadd_ps(_mm256_broadcast_ss(k + i), _mm256_loadu_ps(t[i] + ox), a);
        a = _mm256_add_ps(a, c);
        a = _mm256_min_ps(vhi, _mm256_max_ps(vlo, a));
        if (left >= 8) {
            _mm256_storeu_ps(y + ox, a);
        } else {
            _mm256_maskstore_ps(y + ox, m, a);
        }
    }
}

/// Output planes `p0 ..< p1` of a stride-1 conv with narrow output rows, each as runs of
/// 16-pixel vectors (across its rows when the output is as wide as the input, as for "same"
/// convs; else one vector per row, as for a conv of an input padded before it; conv_direct.h's
/// plan: lane masks zero the columns a tap reads outside its row). Per plane the input is copied
/// once into a vertically padded plane; per vector all taps accumulate in a register, then
/// bias, residual and clamp, one masked store. The row kernel fills 7 of 16 lanes of a 7-wide
/// row and sets up its taps per row; this fills the vectors and sets up once per plane.
__attribute__((target("avx512f"))) static void dw_planes_avx512(const qk_dw_shape *s, const float *x, const float *w,
                                                                const float *bias, const float *res, float *y,
                                                                long p0, long p1, float lo, float hi) {
    long kh = s->kernel_h, kw = s->kernel_w, taps = kh * kw, h = s->height, wd = s->width;
    long oh = s->out_height, ow = s->out_width, out_plane = oh * ow;
    long rows = oh + (kh - 1) * s->dilation_h, plane = rows * wd, mult = s->out_channels / s->in_channels;
    qk_direct_shape d = {1, 1, 1, 1, kh, kw, s->dilation_h, s->dilation_w, s->pad_left, wd, oh, ow, ow, plane};
    long nv = qk_conv_direct_vectors(&d), margin = kw * s->dilation_w + 16;
    long *offsets = malloc((size_t)(2 * nv + 2 * taps) * sizeof(long));
    uint16_t *masks = malloc((size_t)(nv * (kw + 1)) * sizeof(uint16_t));
    float *padded = malloc((size_t)(plane + 2 * margin) * sizeof(float));
    if (!offsets || !masks || !padded) abort();  // a few KiB
    qk_conv_direct_plan(&d, offsets, masks);
    const long *tap_offset = offsets + 2 * nv, *tap_column = tap_offset + taps;
    float *xp = padded + margin;
    // Plane rows [top, top + h) hold the input rows; the rest are zero.
    long top = s->pad_top < rows ? s->pad_top : rows, inside = rows - top < h ? rows - top : h;
    memset(xp, 0, (size_t)top * (size_t)wd * sizeof(float));
    memset(xp + (top + inside) * wd, 0, (size_t)(rows - top - inside) * (size_t)wd * sizeof(float));
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (long p = p0; p < p1; p++) {
        long n = p / s->out_channels, oc = p % s->out_channels;
        memcpy(xp + top * wd, x + (n * s->in_channels + oc / mult) * h * wd, (size_t)(inside * wd) * sizeof(float));
        const float *ker = w + oc * taps;
        float *dst = y + p * out_plane;
        const float *rsd = res ? res + p * out_plane : NULL;
        __m512 vb = _mm512_set1_ps(bias ? bias[oc] : 0.0f);
        for (long v = 0; v < nv; v++) {
            const __mmask16 *mv = (const __mmask16 *)masks + v * (kw + 1);
            long in = offsets[2 * v], out = offsets[2 * v + 1];
            __m512 a = rsd ? _mm512_add_ps(vb, _mm512_maskz_loadu_ps(mv[kw], rsd + out)) : vb;
            for (long t = 0; t < taps; t++)
                a = _mm512_fmadd_ps(_mm512_set1_ps(ker[t]),
                                    _mm512_maskz_loadu_ps(mv[tap_column[t]], xp + in + tap_offset[t]), a);
            // max/min return their second operand when one is NaN: NaN passes through.
            a = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a));
            _mm512_mask_storeu_ps(dst + out, mv[kw], a);
        }
    }
    free(offsets);
    free(masks);
    free(padded);
}

static dw_row_fn dw_chosen;

static dw_row_fn dw_row_kernel(void) {
    if (!dw_chosen) {
        __builtin_cpu_init();
        dw_chosen = __builtin_cpu_supports("avx512f")                                   ? dw_row_avx512
                    : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? dw_row_avx2
                                                                                      : dw_row_portable;
    }
    return dw_chosen;
}
#else
static dw_row_fn dw_row_kernel(void) { return dw_row_portable; }
#endif

void qk_dwconv(const qk_dw_shape *s, const float *x, const float *w, const float *bias, const float *res,
               float *y, long p0, long p1, float lo, float hi, int portable) {
    if (p1 <= p0) return;
    dw_row_fn row_fn = portable == 1 ? dw_row_portable : dw_row_kernel();
#if defined(__x86_64__)
    if (portable == 2 && row_fn == dw_row_avx512) row_fn = dw_row_avx2;
#endif
#if defined(__x86_64__)
    // Narrow stride-1 planes (MobileNets' 14x14 and 7x7 stages, padded in the conv or before
    // it) as runs of vectors.
    if (row_fn == dw_row_avx512 && s->stride_h == 1 && s->stride_w == 1 && s->out_width < 16) {
        dw_planes_avx512(s, x, w, bias, res, y, p0, p1, lo, hi);
        return;
    }
#endif
    dw_layout l = dw_make_layout(s);
    long kh = s->kernel_h, kw = s->kernel_w, nt_max = kh * kw;
    long h = s->height, wd = s->width, oh = s->out_height, ow = s->out_width;
    long mult = s->out_channels / s->in_channels;
    // Ring rows, then the taps' pointers, ring tags and weights.
    size_t floats = ((size_t)l.slots * (size_t)l.row_len + 15) / 16 * 16;
    size_t bytes = floats * sizeof(float) + (size_t)nt_max * (sizeof(const float *) + sizeof(float))
                   + (size_t)(l.slots + kw + h) * sizeof(long);
    float *ring = malloc(bytes);
    if (!ring) abort();  // a few KiB; nothing sensible is left to do without it
    const float **taps = (const float **)(ring + floats);
    long *tag = (long *)(taps + nt_max);
    // Per call, not per row (small planes have few columns per row): each tap column's
    // offset in a padded row, and each input row's ring slot.
    long *xoff = tag + l.slots, *slot_of = xoff + kw;
    float *kv = (float *)(slot_of + h);
    for (long kx = 0; kx < kw; kx++) {
        long off = kx * s->dilation_w;
        xoff[kx] = (off % s->stride_w) * l.phase_len + off / s->stride_w;
    }
    for (long iy = 0; iy < h; iy++) slot_of[iy] = iy % l.slots;
    for (long p = p0; p < p1; p++) {
        long n = p / s->out_channels, oc = p % s->out_channels;
        const float *src = x + (n * s->in_channels + oc / mult) * h * wd;
        const float *ker = w + oc * nt_max;
        float b = bias ? bias[oc] : 0.0f;
        float *dst = y + p * oh * ow;
        const float *rsd = res ? res + p * oh * ow : NULL;
        for (long i = 0; i < l.slots; i++) tag[i] = -1;
        for (long oy = 0; oy < oh; oy++) {
            long nt = 0;
            for (long ky = 0; ky < kh; ky++) {
                long iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
                if (iy < 0 || iy >= h) continue;  // rows outside the image add nothing
                long slot = slot_of[iy];
                const float *r = ring + slot * l.row_len;
                if (tag[slot] != iy) {
                    dw_fill_row(s, &l, src + iy * wd, ring + slot * l.row_len);
                    tag[slot] = iy;
                }
                for (long kx = 0; kx < kw; kx++, nt++) {
                    taps[nt] = r + xoff[kx];
                    kv[nt] = ker[ky * kw + kx];
                }
            }
            row_fn(nt, taps, kv, b, rsd ? rsd + oy * ow : NULL, dst + oy * ow, ow, lo, hi);
        }
    }
    free(ring);
}
