// Direct depthwise convolution (one input channel per group, any channel multiplier), NCHW.
#ifndef QTOOLS_DEPTHWISE_H
#define QTOOLS_DEPTHWISE_H

#ifdef __cplusplus
extern "C" {
#endif

/// Geometry of a depthwise conv call (whole batch). Output channel `oc` of image `n` reads
/// input plane `n * in_channels + oc / (out_channels / in_channels)`. Rows and columns
/// outside the input are zeros (`pad_top`/`pad_left` before, as many as the output needs after).
typedef struct {
    long in_channels, height, width;
    long out_channels, out_height, out_width;
    long kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
} qk_dw_shape;

/// Output planes `p0 ..< p1` (plane `p` = image `p / out_channels`, channel
/// `p % out_channels`) of `y = clamp(dwconv(x, w) + bias[oc] + res, lo, hi)`.
/// `w` is `[out_channels, kernel_h, kernel_w]`; `bias` and `res` may be NULL; `res` (laid out
/// like `y`) may be `y` itself. NaN passes the clamp. A few KiB of scratch come from malloc
/// (abort when even that fails, as the GEMM's workspace does).
///
/// Each input row is copied once per plane into a zero-padded row (split by column phase
/// when strided), so the output loop has no bounds checks; 3x3 kernels accumulate all nine
/// taps in registers. On AVX-512, a stride-1 "same" conv with rows narrower than 16 runs
/// each plane as one run of 16-pixel vectors across its rows instead (conv_direct.h's plan).
/// Compiled for AVX-512, AVX2+FMA and portable C, chosen at run time;
/// `portable` = 1 forces the portable build, 2 the AVX2 one where AVX-512 would be chosen
/// (tests compare them all).
void qk_dwconv(const qk_dw_shape *s, const float *x, const float *w, const float *bias, const float *res,
               float *y, long p0, long p1, float lo, float hi, int portable);

#ifdef __cplusplus
}
#endif

#endif
