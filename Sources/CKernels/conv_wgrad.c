// The weight gradient of a stride-1 convolution as dot products along the pixels
// (conv_wgrad.h): no im2col matrix and no transposes. Both operands are contiguous along
// the pixels (dy's rows, and the input rows shifted by each tap's offset), so a tile of
// 4 output channels x 6 taps keeps 24 zmm accumulators over 16-pixel vectors, with a lane
// mask per vector and kernel column for the columns a tap reads outside the row. When the
// input rows are as wide as the output rows, vectors run across rows (an 8 x 8 plane is
// four full vectors); otherwise each vector stays in one output row. Only an AVX-512 build
// exists; the Swift side (FastConvGradient) keeps im2col + sgemm for the rest.
#include "conv_wgrad.h"

#include <stdint.h>
#include <stdlib.h>

enum { WG_CO = 4, WG_TAPS = 6 };

#if defined(__x86_64__)
#include <immintrin.h>

int qk_conv_wgrad_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/// One 4 x 6 tile summed over the block: `d[i]` the output channels' dy rows (image 0),
/// `x[t]` the taps' shifted input rows (image 0), `kx[t]` their kernel columns.
__attribute__((target("avx512f"))) static void tile(const qk_wgrad_shape *s, const float *const d[WG_CO],
                                                    const float *const x[WG_TAPS], const long kx[WG_TAPS],
                                                    const __mmask16 *masks, const long *offsets, long nv,
                                                    long x_image, long dy_image, float out[WG_CO][WG_TAPS]) {
    __m512 acc[WG_CO][WG_TAPS];
    for (int i = 0; i < WG_CO; i++)
        for (int t = 0; t < WG_TAPS; t++) acc[i][t] = _mm512_setzero_ps();
    long kw = s->kernel_w;
    for (long n = 0; n < s->images; n++) {
        long xo = n * x_image, dyo = n * dy_image;
        for (long v = 0; v < nv; v++) {
            const __mmask16 *mv = masks + v * (kw + 1);  // [kw]: the lanes inside the output
            long qx = xo + offsets[2 * v], qy = dyo + offsets[2 * v + 1];
            __m512 dv[WG_CO];
            for (int i = 0; i < WG_CO; i++) dv[i] = _mm512_maskz_loadu_ps(mv[kw], d[i] + qy);
            for (int t = 0; t < WG_TAPS; t++) {
                __m512 xv = _mm512_maskz_loadu_ps(mv[kx[t]], x[t] + qx);
                for (int i = 0; i < WG_CO; i++) acc[i][t] = _mm512_fmadd_ps(dv[i], xv, acc[i][t]);
            }
        }
    }
    for (int i = 0; i < WG_CO; i++)
        for (int t = 0; t < WG_TAPS; t++) out[i][t] = _mm512_reduce_add_ps(acc[i][t]);
}

void qk_conv_wgrad(const qk_wgrad_shape *s, const float *x, const float *dy, float *dw) {
    long kh = s->kernel_h, kw = s->kernel_w, iw = s->in_width, ow = s->out_width, taps = s->in_group * kh * kw;
    long channels = s->groups * s->in_group, outs = s->groups * s->out_group, pixels = s->out_height * ow;
    // Vectors: 16 consecutive pixels, across rows when input and output rows are as wide,
    // else within one output row. Per vector its input and dy offsets, and lane masks: per
    // kernel column the lanes whose tap reads inside the input row, then the lanes inside
    // the output.
    int across = iw == ow;
    long per_row = (ow + 15) / 16, nv = across ? (pixels + 15) / 16 : s->out_height * per_row;
    long *offsets = malloc((size_t)(2 * nv) * sizeof(long));
    __mmask16 *masks = malloc((size_t)(nv * (kw + 1)) * sizeof(__mmask16));
    if (!offsets || !masks) abort();  // a few KiB
    for (long v = 0; v < nv; v++) {
        long oy = across ? 0 : v / per_row, q0 = across ? v * 16 : v % per_row * 16;  // q0: in row oy
        offsets[2 * v] = oy * iw + q0;
        offsets[2 * v + 1] = oy * ow + q0;
        for (long k = 0; k <= kw; k++) {
            unsigned m = 0;
            for (long j = 0; j < 16; j++) {
                long q = q0 + j, ox = q % ow, ix = ox + k * s->dilation_w - s->pad_left;
                int inside = across ? q < pixels : q < ow;
                if (inside && (k == kw || (ix >= 0 && ix < iw))) m |= 1u << j;
            }
            masks[v * (kw + 1) + k] = (__mmask16)m;
        }
    }
    long x_image = channels * s->plane, dy_image = outs * pixels;
    for (long g = 0; g < s->groups; g++) {
        for (long o0 = 0; o0 < s->out_group; o0 += WG_CO) {
            const float *d[WG_CO];
            for (int i = 0; i < WG_CO; i++) {
                long o = o0 + i < s->out_group ? o0 + i : s->out_group - 1;  // a repeat, not stored
                d[i] = dy + (g * s->out_group + o) * pixels;
            }
            for (long t0 = 0; t0 < taps; t0 += WG_TAPS) {
                const float *xt[WG_TAPS];
                long kx[WG_TAPS];
                for (int t = 0; t < WG_TAPS; t++) {
                    long r = t0 + t < taps ? t0 + t : taps - 1;  // a repeat, not stored
                    long ci = r / (kh * kw), ky = r / kw % kh;
                    kx[t] = r % kw;
                    xt[t] = x + (g * s->in_group + ci) * s->plane + ky * s->dilation_h * iw + kx[t] * s->dilation_w
                            - s->pad_left;
                }
                float out[WG_CO][WG_TAPS];
                tile(s, d, xt, kx, masks, offsets, nv, x_image, dy_image, out);
                for (int i = 0; i < WG_CO && o0 + i < s->out_group; i++)
                    for (int t = 0; t < WG_TAPS && t0 + t < taps; t++)
                        dw[(g * s->out_group + o0 + i) * taps + t0 + t] = out[i][t];
            }
        }
    }
    free(masks);
    free(offsets);
}
#else
int qk_conv_wgrad_available(void) { return 0; }
void qk_conv_wgrad(const qk_wgrad_shape *s, const float *x, const float *dy, float *dw) {
    (void)s, (void)x, (void)dy, (void)dw;
    abort();  // callers check qk_conv_wgrad_available first
}
#endif
