// Stride-1 convolution straight from the input rows (conv_direct.h): no im2col matrix, no
// packing, no transposes. For every tap (input channel, ky, kx) and output pixel p, the input
// value is x[p + the tap's offset] in the vertically padded copy, a contiguous run along the
// pixels; lane masks per 16-pixel vector and kernel column zero the columns a tap reads
// outside its row. Two kernels here share that plan (and depthwise.c's narrow planes):
//   weight gradient  dot products along the pixels: a tile of 4 output channels x 6 taps keeps
//                    24 zmm accumulators over the block's images and pixels;
//   forward          a tile of 4 output channels x 4 pixel vectors (16 accumulators) summed
//                    over the taps: per tap four masked input loads, four weight broadcasts.
// Only an AVX-512 build exists; the Swift side (StrideOneConv) keeps the GEMM paths for the rest.
#include "conv_direct.h"

#include <stdint.h>
#include <stdlib.h>

enum { WG_CO = 4, WG_TAPS = 6, FW_CO = 4, FW_V = 4 };

long qk_conv_direct_vectors(const qk_direct_shape *s) {
    long out_plane = s->out_height * s->out_stride;
    return s->in_width == s->out_stride ? (out_plane + 15) / 16 : s->out_height * ((s->out_width + 15) / 16);
}

void qk_conv_direct_plan(const qk_direct_shape *s, long *offsets, uint16_t *masks) {
    long kh = s->kernel_h, kw = s->kernel_w, iw = s->in_width, ow = s->out_width, os = s->out_stride;
    long out_plane = s->out_height * os, nv = qk_conv_direct_vectors(s), taps = s->in_group * kh * kw;
    int across = iw == os;
    long per_row = (ow + 15) / 16;
    for (long v = 0; v < nv; v++) {
        long oy = across ? 0 : v / per_row, q0 = across ? v * 16 : v % per_row * 16;  // q0: in row oy
        offsets[2 * v] = oy * iw + q0;
        offsets[2 * v + 1] = oy * os + q0;
        for (long k = 0; k <= kw; k++) {
            unsigned m = 0;
            for (long j = 0; j < 16; j++) {
                long q = q0 + j, ox = across ? q % os : q, ix = ox + k * s->dilation_w - s->pad_left;
                int inside = ox < ow && (!across || q < out_plane);
                if (inside && (k == kw || (ix >= 0 && ix < iw))) m |= 1u << j;
            }
            masks[v * (kw + 1) + k] = (uint16_t)m;
        }
    }
    long *tap_offset = offsets + 2 * nv, *tap_column = tap_offset + taps;
    for (long r = 0; r < taps; r++) {
        long ci = r / (kh * kw), ky = r / kw % kh, kx = r % kw;
        tap_column[r] = kx;
        tap_offset[r] = ci * s->plane + ky * s->dilation_h * iw + kx * s->dilation_w - s->pad_left;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

int qk_conv_direct_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/// The plan of conv_direct.h, unpacked: per vector its input and output offsets, per tap its
/// input offset and kernel column, and the masks.
typedef struct {
    long nv, taps;
    const long *offsets, *tap_offset, *tap_column;
    const __mmask16 *masks;
} plan;

static plan unpack(const qk_direct_shape *s, const long *offsets, const uint16_t *masks) {
    plan p;
    p.nv = qk_conv_direct_vectors(s);
    p.taps = s->in_group * s->kernel_h * s->kernel_w;
    p.offsets = offsets;
    p.tap_offset = offsets + 2 * p.nv;
    p.tap_column = p.tap_offset + p.taps;
    p.masks = (const __mmask16 *)masks;
    return p;
}

/// One weight-gradient tile summed over the block: `d[i]` the output channels' dy planes
/// (image 0), `x[t]` the taps' shifted input planes (image 0), `kx[t]` their kernel columns.
__attribute__((target("avx512f"))) static void wgrad_tile(const plan *p, long kw, const float *const d[WG_CO],
                                                          const float *const x[WG_TAPS], const long kx[WG_TAPS],
                                                          long images, long x_image, long dy_image,
                                                          float out[WG_CO][WG_TAPS]) {
    __m512 acc[WG_CO][WG_TAPS];
    for (int i = 0; i < WG_CO; i++)
        for (int t = 0; t < WG_TAPS; t++) acc[i][t] = _mm512_setzero_ps();
    for (long n = 0; n < images; n++) {
        long xo = n * x_image, dyo = n * dy_image;
        for (long v = 0; v < p->nv; v++) {
            const __mmask16 *mv = p->masks + v * (kw + 1);
            long qx = xo + p->offsets[2 * v], qy = dyo + p->offsets[2 * v + 1];
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

void qk_conv_wgrad(const qk_direct_shape *s, const long *offsets, const uint16_t *masks, const float *x,
                   const float *dy, float *dw) {
    plan p = unpack(s, offsets, masks);
    long kw = s->kernel_w, taps = p.taps, out_plane = s->out_height * s->out_stride;
    long x_image = s->groups * s->in_group * s->plane, dy_image = s->groups * s->out_group * out_plane;
    for (long g = 0; g < s->groups; g++) {
        for (long o0 = 0; o0 < s->out_group; o0 += WG_CO) {
            const float *d[WG_CO];
            for (int i = 0; i < WG_CO; i++) {
                long o = o0 + i < s->out_group ? o0 + i : s->out_group - 1;  // a repeat, not stored
                d[i] = dy + (g * s->out_group + o) * out_plane;
            }
            for (long t0 = 0; t0 < taps; t0 += WG_TAPS) {
                const float *xt[WG_TAPS];
                long kx[WG_TAPS];
                for (int t = 0; t < WG_TAPS; t++) {
                    long r = t0 + t < taps ? t0 + t : taps - 1;  // a repeat, not stored
                    kx[t] = p.tap_column[r];
                    xt[t] = x + g * s->in_group * s->plane + p.tap_offset[r];
                }
                float out[WG_CO][WG_TAPS];
                wgrad_tile(&p, kw, d, xt, kx, s->images, x_image, dy_image, out);
                for (int i = 0; i < WG_CO && o0 + i < s->out_group; i++)
                    for (int t = 0; t < WG_TAPS && t0 + t < taps; t++)
                        dw[(g * s->out_group + o0 + i) * taps + t0 + t] = out[i][t];
            }
        }
    }
}

/// One forward tile: output channels `w[i]` (their weight rows) at the vectors `vs[j]` of one
/// image and group (`x` its first input plane, `y[i]` the output planes), bias added, the
/// lanes inside the output stored.
__attribute__((target("avx512f"))) static void forward_tile(const plan *p, long kw, const float *x,
                                                            const float *const w[FW_CO], const long vs[FW_V],
                                                            const float bias[FW_CO], float *const y[FW_CO],
                                                            int rows, int vectors) {
    __m512 acc[FW_CO][FW_V];
    for (int i = 0; i < FW_CO; i++)
        for (int j = 0; j < FW_V; j++) acc[i][j] = _mm512_set1_ps(bias[i]);
    const __mmask16 *mv[FW_V];
    const float *xv[FW_V];
    for (int j = 0; j < FW_V; j++) {
        mv[j] = p->masks + vs[j] * (kw + 1);
        xv[j] = x + p->offsets[2 * vs[j]];
    }
    for (long r = 0; r < p->taps; r++) {
        long off = p->tap_offset[r], kx = p->tap_column[r];
        __m512 in[FW_V];
        for (int j = 0; j < FW_V; j++) in[j] = _mm512_maskz_loadu_ps(mv[j][kx], xv[j] + off);
        for (int i = 0; i < FW_CO; i++) {
            __m512 wv = _mm512_set1_ps(w[i][r]);
            for (int j = 0; j < FW_V; j++) acc[i][j] = _mm512_fmadd_ps(wv, in[j], acc[i][j]);
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < vectors; j++)
            _mm512_mask_storeu_ps(y[i] + p->offsets[2 * vs[j] + 1], mv[j][kw], acc[i][j]);
}

void qk_conv_direct(const qk_direct_shape *s, const long *offsets, const uint16_t *masks, const float *x,
                    const float *w, const float *bias, float *y) {
    plan p = unpack(s, offsets, masks);
    long kw = s->kernel_w, taps = p.taps, out_plane = s->out_height * s->out_stride;
    long x_image = s->groups * s->in_group * s->plane, y_image = s->groups * s->out_group * out_plane;
    for (long n = 0; n < s->images; n++) {
        for (long g = 0; g < s->groups; g++) {
            const float *xg = x + n * x_image + g * s->in_group * s->plane;
            for (long o0 = 0; o0 < s->out_group; o0 += FW_CO) {
                const float *wr[FW_CO];
                float b[FW_CO];
                float *yr[FW_CO];
                for (int i = 0; i < FW_CO; i++) {
                    long o = g * s->out_group + (o0 + i < s->out_group ? o0 + i : s->out_group - 1);  // a repeat
                    wr[i] = w + o * taps;
                    b[i] = bias ? bias[o] : 0;
                    yr[i] = y + n * y_image + o * out_plane;
                }
                int rows = (int)(s->out_group - o0 < FW_CO ? s->out_group - o0 : FW_CO);
                for (long v0 = 0; v0 < p.nv; v0 += FW_V) {
                    long vs[FW_V];
                    for (int j = 0; j < FW_V; j++) vs[j] = v0 + j < p.nv ? v0 + j : p.nv - 1;  // a repeat
                    int vectors = (int)(p.nv - v0 < FW_V ? p.nv - v0 : FW_V);
                    forward_tile(&p, kw, xg, wr, vs, b, yr, rows, vectors);
                }
            }
        }
    }
}
#else
int qk_conv_direct_available(void) { return 0; }
void qk_conv_wgrad(const qk_direct_shape *s, const long *offsets, const uint16_t *masks, const float *x,
                   const float *dy, float *dw) {
    (void)s, (void)offsets, (void)masks, (void)x, (void)dy, (void)dw;
    abort();  // callers check qk_conv_direct_available first
}
void qk_conv_direct(const qk_direct_shape *s, const long *offsets, const uint16_t *masks, const float *x,
                    const float *w, const float *bias, float *y) {
    (void)s, (void)offsets, (void)masks, (void)x, (void)w, (void)bias, (void)y;
    abort();
}
#endif
