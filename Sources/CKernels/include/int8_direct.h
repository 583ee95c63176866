// Integer convolution without im2col (AVX-512 VNNI): the contract of qk_i8_conv (int8_conv.h),
// computed from a prepared copy of the input. Twin: ReferenceKernels.integerConv (Swift), and
// qk_i8_conv's portable path.
//
// The prepared input of one image and group holds the level indices as bytes, four channels per
// 32-bit word ("quads"), in padded planes split by stride phase: plane (py, px) holds padded
// rows py, py + stride_h, ... and padded columns px, px + stride_w, ..., padded positions
// holding pad_value. Output pixel (oy, ox) is computed at the virtual position
// `oy * phase_width + ox`, and kernel tap (ky, kx) reads the same virtual position shifted by a
// constant in one phase plane, so every tap's operand for 16 consecutive outputs is one 64-byte
// load and `vpdpbusd` multiplies it with the broadcast weights of 4 channels. The virtual
// positions past each row's last output are computed and dropped.
#ifndef QTOOLS_INT8_DIRECT_H
#define QTOOLS_INT8_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "grid_quantize.h"
#include "int8_conv.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Whether this CPU runs the direct path (AVX-512 BW + VNNI).
int qk_i8d_supported(void);

/// Bytes of one image and group's prepared input.
size_t qk_i8d_input_bytes(const qk_i8_shape *s);

/// Bytes of one group's packed weights: 4-channel tiles of `[quad][tap][4 channels][4 bytes]`.
size_t qk_i8d_weight_bytes(const qk_i8_shape *s);

/// Packs `w` (`[out_channels, channels, kernel_h, kernel_w]` int8 values) into `dst`.
void qk_i8d_pack_weights(const qk_i8_shape *s, const int8_t *w, int8_t *dst);

/// Writes quads `q0 ..< q1` of the prepared input of one image and group: `x` holds the
/// group's input channels (`channels x height*width`). Without `grid` they are float level
/// indices; with it (one per channel of the group, `indices` set) they are the values a grid
/// quantizer turns into indices first, exactly as qk_grid_one does (the quantize step fused).
/// The indices are then converted as qk_i8_levels does (clamped to 0...max_index, truncated,
/// NaN reads as 0).
void qk_i8d_prepare(const qk_i8_shape *s, const float *x, const qk_grid *grid, long q0, long q1, unsigned char *dst);

/// Output tiles (runs of 96 virtual positions) of one image.
long qk_i8d_tiles(const qk_i8_shape *s);

/// Output tiles `t0 ..< t1` and channels `m0 ..< m1` (`m0` a multiple of 4) of one image and
/// group, from its prepared input `x`: as qk_i8_conv (output `y` with row stride `ld`, the
/// epilogue, or the int32 sums in `acc` when it is not NULL).
void qk_i8d_conv(const qk_i8_shape *s, const unsigned char *x, const int8_t *pw, long t0, long t1, long m0, long m1, float *y,
                 long ld, const qk_i8_epilogue *ep, int32_t *acc);

#ifdef __cplusplus
}
#endif

#endif
