// The weight gradient of a stride-1 convolution, for training.
#ifndef QTOOLS_CONV_WGRAD_H
#define QTOOLS_CONV_WGRAD_H

#ifdef __cplusplus
extern "C" {
#endif

/// A block of images of a stride-1 convolution, NCHW. `x` is the block's input copied with
/// its vertical padding as zero rows: per image `groups * in_group` planes of `plane` floats,
/// plane row `r` holding input row `r - pad_top` (rows `0 ..< out_height + dilation_h *
/// (kernel_h - 1)` are read), rows of `in_width` floats with no horizontal padding (the
/// columns a tap reads outside a row count as zero). `dy` is `images x groups*out_group x
/// out_height*out_width`.
typedef struct {
    long images, groups, in_group, out_group;
    long kernel_h, kernel_w, dilation_h, dilation_w, pad_left;
    long in_width, out_height, out_width;
    long plane;  // floats per padded input plane
} qk_wgrad_shape;

/// Whether this CPU runs `qk_conv_wgrad` (it needs AVX-512F); callers keep another path for
/// the rest.
int qk_conv_wgrad_available(void);

/// `dw [groups*out_group, in_group*kernel_h*kernel_w] = sum over the block's images and
/// pixels of dy[o, p] * x[i, p + tap]`, summed in float32 in a fixed order (per output,
/// 16 lanes of pixels, images in order, then the lanes added), independent of threads.
void qk_conv_wgrad(const qk_wgrad_shape *s, const float *x, const float *dy, float *dw);

#ifdef __cplusplus
}
#endif

#endif
