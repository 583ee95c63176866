// Stride-1 convolution computed straight from the input rows (no im2col matrix, no packing):
// the forward and the weight gradient, for training's small channel counts, where packing
// B strips costs as much as the GEMM itself.
#ifndef QTOOLS_CONV_DIRECT_H
#define QTOOLS_CONV_DIRECT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A block of images of a stride-1 convolution, NCHW. `x` is the block's input copied with
/// its vertical padding as zero rows: per image `groups * in_group` planes of `plane` floats,
/// plane row `r` holding input row `r - pad_top` (rows `0 ..< out_height + dilation_h *
/// (kernel_h - 1)` are read), rows of `in_width` floats with no horizontal padding (the
/// columns a tap reads outside a row count as zero). The output side (`y` of the forward,
/// `dy` of the weight gradient) is `images x groups*out_group x out_height x out_stride`
/// (`out_stride >= out_width`; columns past `out_width` are neither read nor written).
/// When `out_stride == in_width`, 16-pixel vectors run across rows (an 8 x 8 plane is four
/// full vectors); otherwise each vector stays in one output row.
typedef struct {
    long images, groups, in_group, out_group;
    long kernel_h, kernel_w, dilation_h, dilation_w, pad_left;
    long in_width, out_height, out_width, out_stride;
    long plane;  // floats per padded input plane
} qk_direct_shape;

/// Whether this CPU runs the kernels below (they need AVX-512F); callers keep another path
/// for the rest.
int qk_conv_direct_available(void);

/// The 16-pixel vectors of one output plane of `s`.
long qk_conv_direct_vectors(const qk_direct_shape *s);

/// The kernels' plan of `s` (independent of `s->images`), made once per geometry: `offsets`
/// holds `2 * vectors + 2 * taps` longs (per vector its input and output offset in a plane, per
/// tap `(input channel, ky, kx)` its input offset and kernel column), `masks` `vectors *
/// (kernel_w + 1)` lane masks (per vector and kernel column the lanes whose tap reads inside
/// the input row, then the lanes inside the output), with `taps = in_group * kernel_h * kernel_w`.
void qk_conv_direct_plan(const qk_direct_shape *s, long *offsets, uint16_t *masks);

/// `dw [groups*out_group, in_group*kernel_h*kernel_w] = sum over the block's images and
/// pixels of dy[o, p] * x[i, p + tap]`, summed in float32 in a fixed order (per output,
/// 16 lanes of pixels, images in order, then the lanes added), independent of threads.
void qk_conv_wgrad(const qk_direct_shape *s, const long *offsets, const uint16_t *masks, const float *x,
                   const float *dy, float *dw);

/// `y[o, p] = sum over taps of w[o, tap] * x[tap's input at p] (+ bias[o])` for the block's
/// images; `w` is `[groups*out_group, in_group*kernel_h*kernel_w]`, `bias` may be NULL. Each
/// output is summed over the taps in order in float32.
void qk_conv_direct(const qk_direct_shape *s, const long *offsets, const uint16_t *masks, const float *x,
                    const float *w, const float *bias, float *y);

#ifdef __cplusplus
}
#endif

#endif
