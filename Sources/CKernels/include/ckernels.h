// qtools compute kernels in C: the packed single-precision GEMM behind convolutions, the
// Winograd F(2x2)/F(4x4) transforms, max pooling and the fully connected layer.
//
// With bitconv.h (the bit-packed binary / ternary convolution) these are the only C kernels
// of the engine. Each has a naive twin in Swift (Sources/Engine/Kernels/Reference) that the
// tests compare it with.
#ifndef QTOOLS_CKERNELS_H
#define QTOOLS_CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Rows per packed A panel, columns per packed B strip, and the blocking sizes.
enum { QK_MR = 6, QK_NR = 16, QK_KC = 256, QK_NC = 384 };

/// Floats of a packed `m x k` A matrix: `ceil(m / QK_MR)` panels of `QK_MR * k` floats.
size_t qk_packed_a_count(long m, long k);

/// Floats of B-packing workspace one `qk_sgemm*` call needs. Callers pass NULL to use a
/// workspace of the calling thread's own (allocated once per thread).
size_t qk_workspace_count(void);

/// Packs row-major `a` (`m x k`, row stride `lda`) into panels of QK_MR rows:
/// panel p holds rows `p*QK_MR ..< p*QK_MR + QK_MR` as `k` groups of QK_MR values
/// (rows past `m` are zero). Row `r` of the matrix therefore starts panel `r / QK_MR`
/// at offset `(r / QK_MR) * QK_MR * k`.
void qk_pack_a(long m, long k, const float *a, long lda, float *dst);

/// What happens to each `m x n` result block after the products are summed.
///
/// `c = clamp(sum + add + bias[row], lo, hi)`, where `add` is `add_src[row * add_ld + col]`
/// when `add_src` is set (a residual; it may be `c` itself) and 0 otherwise, and
/// `bias` may be NULL. Use `lo = -INFINITY, hi = INFINITY` for no activation and
/// `lo = 0` for ReLU.
typedef struct {
    const float *add_src;
    long add_ld;
    const float *bias;
    float lo, hi;
} qk_epilogue;

/// `C (m x n, row stride ldc) = epilogue(A * B)` where `pa` is packed A (from
/// `qk_pack_a`, starting at a panel boundary) and B is row-major `k x n` with row
/// stride `ldb`. `ws` holds `qk_workspace_count()` floats, 32-byte aligned.
void qk_sgemm(long m, long n, long k, const float *pa, const float *b, long ldb, float *c,
              long ldc, const qk_epilogue *ep, float *ws);

/// Floats of a packed `k x n` B matrix: `ceil(n / QK_NR)` strips of `QK_NR * k` floats.
/// Column `j` of row `p` is at `(j / QK_NR) * QK_NR * k + p * QK_NR + j % QK_NR`; lanes past
/// `n` in the last strip may hold anything (their results are never stored).
size_t qk_packed_b_count(long k, long n);

/// `qk_sgemm` with B already packed (see `qk_packed_b_count`), e.g. written in that layout
/// by a Winograd input transform. No workspace is used.
void qk_sgemm_packed_b(long m, long n, long k, const float *pa, const float *pb, float *c, long ldc,
                       const qk_epilogue *ep);

/// Convolution geometry of one image for `qk_sgemm_conv` (NCHW, one group).
typedef struct {
    long channels, height, width;        // input channels (of the group) and size
    long kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
    long out_height, out_width;
} qk_conv_shape;

/// The im2col matrix of columns `n0 ..< n1` (n0 a multiple of QK_NR) gathered into packed
/// B strips of full depth (the layout of `qk_packed_b_count`) at `dst`, for
/// `qk_sgemm_packed_b`: narrow convs pack once and let threads share it.
void qk_pack_conv_b(const qk_conv_shape *s, const float *image, long n0, long n1, float *dst);

/// Convolution as GEMM without an im2col matrix: columns `n0 ..< n1` of
/// `C (m x out_height*out_width, row stride ldc) = epilogue(A * im2col(image))`, where
/// `pa` is the packed `m x channels*kernel_h*kernel_w` weight matrix. The im2col values
/// are gathered straight into the packed B strips (zeros outside the image). `c` points
/// at column 0 of row 0; `ep->add_src` likewise.
void qk_sgemm_conv(long m, long n0, long n1, const float *pa, const qk_conv_shape *s,
                   const float *image, float *c, long ldc, const qk_epilogue *ep, float *ws);

/// One channel plane of a Winograd F(m x m, 3x3) conv (m = `tile`, 2 or 4; α = m + 2).
typedef struct {
    long tile;                  // output tile side m
    long height, width;         // the input plane (qk_wino_input) or output plane (qk_wino_output)
    long pad_top, pad_left;     // input only: zero padding before row 0 / column 0
    long tiles_h, tiles_w;      // tiles per column and per row
    long channels;              // input only: the GEMM depth (V's strip stride is 16 * channels)
    long point_stride;          // floats from point ξ to point ξ+1 (of V, or of M)
} qk_wino_plane;

/// Floats of scratch one qk_wino_input / qk_wino_output call needs.
size_t qk_wino_scratch_count(long tile, long tiles_h, long tiles_w);

/// Input transform of one channel: `V[ξ][tile] = (B^T d B)[ξ]` for every tile `d` of `plane`
/// (`height x width`, zeros outside), written in the packed-B layout: tile `t` of point `ξ`
/// at `v + ξ*point_stride + (t/16)*16*channels + t%16` (`v` already offset to the channel).
void qk_wino_input(const qk_wino_plane *p, const float *plane, float *v, float *scratch, int portable);

/// Output transform of one output channel: `Y = A^T M A` per tile, then
/// `out = clamp(Y + bias + residual, lo, hi)` for the `height x width` output plane; M's
/// point `ξ`, tile `t` is `m[ξ*point_stride + t]`; the vector code reads up to 7 tiles past
/// the last point's last tile. `residual` may be NULL or `out` itself.
void qk_wino_output(const qk_wino_plane *p, const float *m, float bias, const float *residual, float *out,
                    float lo, float hi, float *scratch, int portable);

/// Max-pooling geometry of one `height x width` plane (PyTorch rules, sizes resolved).
typedef struct {
    long height, width, out_height, out_width;
    long kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
} qk_pool_shape;

/// Max pooling of planes `p0 ..< p1`: plane `p` is read at `x + p * height * width` and
/// written at `y + p * out_height * out_width` (x and y must not overlap). Padded positions
/// are skipped and NaN wins, exactly as a row-major scan with `if (v > m || v != v) m = v`
/// from `m = -INFINITY` (bit for bit, signed zeros and NaN payloads included). `portable`
/// picks the scalar path even where AVX2 is available.
void qk_maxpool(const qk_pool_shape *s, const float *x, float *y, long p0, long p1, int portable);

/// Fully connected rows: for `n < batch` and `o0 <= o < o1`,
/// `y[n * ldy + o] = act(dot(x[n * ldx ..< n * ldx + in], w[o * in ..< o * in + in]) + bias[o])`
/// (no bias term when `bias` is NULL), the dot product summed in float in an unspecified
/// order, and `act(v) = min(max(v, lo), hi)` with Swift's `min`/`max` (`lo >= v ? lo : v`,
/// then `hi < v ? hi : v`: NaN passes, -0 becomes +0 under ReLU).
/// `portable` picks the scalar path even where AVX2 is available.
void qk_linear(long batch, long in, long o0, long o1, const float *x, long ldx, const float *w,
               const float *bias, float *y, long ldy, float lo, float hi, int portable);

/// 1 when the AVX2+FMA micro-kernel runs on this CPU, 0 for the portable one.
int qk_uses_avx2(void);

/// Turns the AVX-512 6x32 tiles of the GEMM on (the default where the CPU has AVX-512F) or
/// off (6x16 AVX2 tiles only; tests compare the two). Returns the previous setting.
int qk_gemm_set_avx512(int on);

/// The CPU the calling thread runs on (-1 where unknown).
int qk_current_cpu(void);

/// Keeps the calling thread off `cpu` (its affinity minus that CPU); -1 if not possible.
/// The worker pool uses it when the scheduler has put a worker on its caller's CPU.
int qk_avoid_cpu(int cpu);

/// Lets the calling thread run on every online CPU again.
int qk_allow_all_cpus(void);

/// One micro-kernel call, for tests: `c (QK_MR x QK_NR, row stride ldc) = acc + add`, then
/// bias and clamp when `final`, with `acc = A_panel * B_strip` over `kc` (panel and strip in
/// packed layout). `portable` picks the portable kernel even where AVX2 is available.
void qk_micro_tile(int portable, long kc, const float *a, const float *b, float *c, long ldc,
                   const float *add, const float *bias, float lo, float hi, int final);

#ifdef __cplusplus
}
#endif

#endif
