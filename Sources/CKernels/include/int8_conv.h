// Integer convolution: unsigned 8-bit activation level indices times signed 8-bit weights,
// summed in int32, then a float output transform. Twin: ReferenceKernels.integerConv (Swift).
#ifndef QTOOLS_INT8_CONV_H
#define QTOOLS_INT8_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "grid_quantize.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Which inner loop runs: the AVX-512 VNNI `vpdpbusd` one, the AVX2 `vpmaddubsw` + `vpmaddwd`
/// one (with activations split into nibbles when a pair of products could saturate int16),
/// or the portable C one.
enum { QK_I8_PORTABLE = 0, QK_I8_AVX2 = 1, QK_I8_VNNI = 2 };

/// The best path this CPU runs.
int qk_i8_best_path(void);

/// One group of an NCHW convolution on one image.
typedef struct {
    long channels, height, width;        // input channels of the group, input plane
    long kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
    long out_height, out_width;
    long out_channels;                    // of the group
    unsigned char pad_value;              // the level index padded positions hold
    unsigned char max_index;              // inputs are clamped to 0...max_index
    int maddubs_safe;                     // qk_i8_maddubs_safe(max_index, max |weight|)
} qk_i8_shape;

/// Bytes of packed weights of one group: `out_channels x depth4`, `depth4` =
/// `channels * kernel_h * kernel_w` rounded up to a multiple of 4 (zero-filled).
size_t qk_i8_packed_weight_bytes(const qk_i8_shape *s);

/// Packs `w` (`[out_channels, channels, kernel_h, kernel_w]` int8 values) into `dst`.
void qk_i8_pack_weights(const qk_i8_shape *s, const int8_t *w, int8_t *dst);

/// Output transform: `y = min(max((float)acc * scale[m] + bias[m] + add, lo), hi)`, each
/// operation rounded in float32 in that order, `add` = `residual[m * ld + p]` when `residual`
/// is set (it may be `y` itself), else nothing; then, when `grid` is set (one per output
/// channel, value form), `y = qk_grid_one(&grid[m], y)`: the following quantize step fused.
/// `row` (0: `out_width`) is the row stride of `y` when it is the interior of a padded plane
/// (`ld` then its plane size; `residual` and `acc` are not used with it).
typedef struct {
    const float *scale, *bias, *residual;
    float lo, hi;
    const qk_grid *grid;
    long row;
} qk_i8_epilogue;

/// One level index as qk_i8_levels converts it. Branch-free (max, min, truncate): the indices
/// of real activations are unpredictable, and two mispredicted branches per gathered tap cost
/// more than the whole int8 dot product.
static inline unsigned char qk_i8_level(float v, unsigned char max_index) {
    const float hi = (float)max_index;
    float c = v > 0.0f ? v : 0.0f;  // negative and NaN -> 0
    c = c < hi ? c : hi;
    return (unsigned char)(int)c;
}

/// The level indices of `n` floats as bytes: clamped to 0...max_index and truncated, NaN
/// reads as 0 (what qk_i8_conv's input holds).
void qk_i8_levels(const float *x, long n, unsigned char max_index, unsigned char *dst);

/// Output columns (pixels) `p0 ..< p1` of one image and group: `x` holds the group's input
/// level indices as bytes (qk_i8_levels), `pw` the packed weights, `y` the
/// `out_channels x out_height*out_width` output (row stride `ld`). `acc`, when not NULL,
/// receives the int32 sums instead (row stride `ld`; the epilogue is skipped). `path` is one
/// of QK_I8_*; a path this CPU lacks falls back to the portable loop.
void qk_i8_conv(const qk_i8_shape *s, const unsigned char *x, const int8_t *pw, long p0, long p1, float *y, long ld,
                const qk_i8_epilogue *ep, int32_t *acc, int path);

/// Whether a path may use `vpmaddubsw` on whole bytes: `2 * max_index * max|w| <= 32767`.
int qk_i8_maddubs_safe(int max_index, int max_abs_weight);

#ifdef __cplusplus
}
#endif

#endif
