// The element-wise uniform quantizer of the engine's grid-quantize step (Swift:
// GridQuantization), fused with constant padding. Twin: GridQuantization.apply (Swift).
#ifndef QTOOLS_GRID_QUANTIZE_H
#define QTOOLS_GRID_QUANTIZE_H

#ifdef __cplusplus
extern "C" {
#endif

/// One channel's parameters. Per element, in float32 and in this order:
/// `t = x / divisor`; NaN -> `nan_value` unless `keep_nan`, else `t < lo` (`t <= lo` with
/// `lower_inclusive`) -> lo, `t > hi` -> hi; `centered`: `t = (t + 1) / 2`;
/// `t = rint(t * steps) / steps` (half to even); `centered`: `t = t * 2 - 1`;
/// `y = (t * scale) * gain`. With `indices`, `y = rint(t * steps)` instead: the level index
/// (`0...steps` when the clamp range maps onto `[0, 1]`), not its value.
typedef struct {
    float divisor, lo, hi, nan_value, steps, scale, gain;
    int keep_nan, lower_inclusive, centered, indices;
} qk_grid;

/// `y` for one value (the scalar rule the vector path reproduces bit for bit).
float qk_grid_one(const qk_grid *g, float x);

/// One plane: `y` (`(height + pad_top + pad_bottom) x (width + pad_left + pad_right)`) gets
/// the quantized `height x width` plane `x` inside and `border` in the padding.
/// `portable` picks the scalar path even where AVX2 is available.
void qk_grid_quantize_plane(const qk_grid *g, const float *x, long height, long width, float *y, long pad_top,
                            long pad_left, long pad_bottom, long pad_right, float border, int portable);

#ifdef __cplusplus
}
#endif

#endif
