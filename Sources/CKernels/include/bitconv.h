// Bit-packed binary and ternary convolution kernels: float -> bits packing of activations,
// bit im2col, and XOR/AND + popcount GEMMs with the output transform fused.
//
// Conventions (docs/engine.md, "Binary and ternary convolutions"; ../shared/spec/bitpacking.md
// §0-3): channels are packed along 64-bit words, channel c of a pixel in word c >> 6, bit
// c & 63 (LSB-first); bit 1 means -1 in a sign plane and "nonzero" in a mask plane; the bits
// past the last channel of a row are 0 in every operand, so they never count.
//
// A value is a *code* times a per-layer scale. Activation codes come from the float input:
//   QK_ACT_SIGN       a = x < 0 ? -1 : +1 (+0, -0 and NaN give +1)          planes: s
//   QK_ACT_TERNARY    a = clamp(rint(x / step), -1, 1)                        planes: s, m
//   QK_ACT_THERMO     q = clamp(rint(x / step), 0, 2), stored as A = q - 1 in planes s, m
//                     (q = 1 + A, so sum(q w) = sum(w) + sum(A w): one ternary pass)
//   QK_ACT_UNIPOLAR   q = clamp(rint(x / step), 0, levels), one plane per bit of q (terms)
// (NaN gives the lowest code in the last three; with thresholds, the code counts the ones x
// reaches: an input quantizer fused into the packing.) Weight codes are binary (plane s) or
// ternary (planes s, m with s & ~m = 0).
//
// Every kernel takes an `isa` (QK_BITS_*): the popcount code path. The portable one uses no
// popcount instruction; each is checked bit for bit against the others and the naive twin.
#ifndef QTOOLS_BITCONV_H
#define QTOOLS_BITCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Popcount code paths: portable C (SWAR popcount), scalar POPCNT, AVX2 (nibble table with
/// vpshufb), AVX-512 (VPOPCNTDQ + BW + VL).
enum { QK_BITS_PORTABLE = 0, QK_BITS_POPCNT = 1, QK_BITS_AVX2 = 2, QK_BITS_AVX512 = 3 };

/// 1 when this CPU can run code path `isa`.
int qk_bits_isa_supported(int isa);

/// The fastest code path this CPU runs.
int qk_bits_best_isa(void);

/// Activation encodings (see above).
enum { QK_ACT_SIGN = 0, QK_ACT_TERNARY = 1, QK_ACT_THERMO = 2, QK_ACT_UNIPOLAR = 3 };

/// How one NCHW image is packed: `groups * channels` planes of `plane_size` floats.
typedef struct {
    int encoding;     // QK_ACT_*
    long levels;      // QK_ACT_UNIPOLAR: the top code (>= 1); QK_ACT_THERMO: 2
    float step;       // QK_ACT_TERNARY / THERMO / UNIPOLAR: the quantization step
    long channels;    // channels per group
    long groups;
    long words;       // ceil(channels / 64)
    long terms;       // 1, or the number of bit planes of QK_ACT_UNIPOLAR
    long planes;      // planes per term: 2 for TERNARY / THERMO, else 1
    long plane_size;  // H * W
    // NULL, or the input quantizer fused in: the ascending thresholds t_1 .. t_n (n = hi - lo,
    // the encoding's code range) and code = lo + #{k : x >= t_k} instead of rint(x / step)
    // (NaN: lo). A NaN threshold is never reached.
    const float *thresholds;
} qk_bits_pack_shape;

/// Words per pixel of a packed image: `groups * terms * planes * words`.
long qk_bits_pixel_words(const qk_bits_pack_shape *s);

/// Packs pixels `p0 ..< p1` of the NCHW image `x`: pixel p, group g, term t, plane q, word w
/// at `dst[p * pixel_words + ((g * terms + t) * planes + q) * words + w]`.
void qk_bits_pack(int isa, const qk_bits_pack_shape *s, const float *x, long p0, long p1, uint64_t *dst);

/// One group of one image of a bit-packed convolution (the planner's geometry).
typedef struct {
    long height, width, out_height, out_width;
    long kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
    long words;        // words per plane per tap: ceil(channels per group / 64)
    long terms;        // activation terms (bit planes of QK_ACT_UNIPOLAR, else 1)
    int act_sign;      // the activation has a sign plane (SIGN, TERNARY, THERMO)
    int act_mask;      // the activation has a mask plane (TERNARY, THERMO, UNIPOLAR)
    int weight_mask;   // ternary weights (a mask plane)
    long pixel_words;  // words between pixels of the packed image (qk_bits_pixel_words)
    const uint64_t *pad_pixel;  // the `terms * planes * words` words read for taps outside the image
} qk_bconv_shape;

/// Output pixels per B strip and rows per A panel.
enum { QK_BSTRIP = 8, QK_BPANEL = 4 };

/// Strips of B for `pixels` output pixels: an even number (the kernels take strips in pairs).
long qk_bconv_strips(long pixels);

/// Words of one B strip: `terms * K * planes * 8`, K = kernel_h * kernel_w * words.
long qk_bconv_strip_words(const qk_bconv_shape *s);

/// Words of one A panel: `K * weight_planes * 4`.
long qk_bconv_panel_words(const qk_bconv_shape *s);

/// Bit im2col of strips `strip0 ..< strip1`: strip j covers output pixels `8j ..< 8j + 8`
/// and is written at `b + j * strip_words` as `[term][k][plane][8 lanes]`, k = tap * words + w
/// (tap = ky * kernel_w + kx); lanes past the last pixel read the pad pixel (their results are
/// never stored). `image` is the group's word 0 of pixel 0 in the packed image.
void qk_bconv_im2col(const qk_bconv_shape *s, const uint64_t *image, long strip0, long strip1, uint64_t *b);

/// The output transform of one group: for row (output channel) o and pixel p, with the
/// exact integer `acc = offset * sum_w[o] + sum_t coef[t] * dot_t(o, p) - correction(o, p)`,
///   y = act(float(acc) * mul[o] + bias[o] + residual[o][p]),   act(v) = min(max(v, lo), hi)
/// evaluated in this order in float (no fused multiply-add), with Swift's min/max. dot_t is
/// the ±1/ternary dot product of term t; `correction(o, p)` subtracts, for taps outside the
/// image, what the +1 pad codes contributed, which turns one-padding into zero padding for sign
/// activations: `correction[o * classes + y_class[oy] * x_classes + x_class[ox]]`, the pixel's
/// padding class (class 0, every tap inside, is 0).
typedef struct {
    const float *mul, *bias;      // [rows]
    const int32_t *base;          // [rows]: bits per row (binary weights) or nonzeros (ternary); when the activation has no mask
    const int32_t *sum_w;         // [rows] or NULL (offset 0)
    long offset;
    const int32_t *correction;    // [rows * classes] or NULL: no correction
    long classes, x_classes;
    const int32_t *y_class;       // [out_height]
    const int32_t *x_class;       // [out_width]
    const long *coef;             // [terms]
    const float *residual;        // [rows][pixels] or NULL
    float lo, hi;
    float *out;                   // [rows][pixels]
} qk_bconv_epilogue;

/// The GEMM and output transform of panels `panel0 ..< panel1` (rows 4 per panel, `rows`
/// valid in all) and strip pairs `pair0 ..< pair1`: `a` holds the group's panels (panel p at
/// `a + p * panel_words`, `[k][weight plane][4 rows]`, rows past `rows` zero), `b` the strips.
void qk_bconv_gemm(int isa, const qk_bconv_shape *s, long rows, const uint64_t *a, const uint64_t *b, long panel0,
                   long panel1, long pair0, long pair1, const qk_bconv_epilogue *e);

/// Packs weight rows into A panels: row o (of `rows`), word k of plane q
/// (`planes[q][o * row_words + k]`) goes to `dst[(o / 4) * panel_words + (k * nplanes + q) * 4 + o % 4]`.
void qk_bconv_pack_a(long rows, long row_words, int nplanes, const uint64_t *sign, const uint64_t *mask, uint64_t *dst);

#ifdef __cplusplus
}
#endif

#endif
