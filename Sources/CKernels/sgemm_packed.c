// The packed GEMM driver: BLIS-style blocking around the 6x16 micro-kernels.
//
// Loops: columns in blocks of QK_NC, depth in blocks of QK_KC (B block packed into the
// workspace as 16-column strips), rows in blocks of MC, then strips, then 6-row panels of
// the pre-packed A. Partial tiles go through a 6x16 (or 6x32) buffer, so the micro-kernel only ever
// sees whole tiles. The first depth block adds the epilogue's `add_src`, later blocks add
// the partial sums already in C, and the last block applies bias and clamp.
#include "ckernels.h"
#include "microkernel.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>  // SSE2 only here (the x86-64 baseline)
#endif

enum { MC = 120 };  // rows per A block (20 panels; about 120 KB of A at QK_KC)

size_t qk_packed_a_count(long m, long k) {
    return (size_t)((m + QK_MR - 1) / QK_MR) * QK_MR * (size_t)k;
}

size_t qk_packed_b_count(long k, long n) {
    return (size_t)((n + QK_NR - 1) / QK_NR) * QK_NR * (size_t)k;
}

size_t qk_workspace_count(void) { return (size_t)QK_KC * QK_NC; }

void qk_pack_a(long m, long k, const float *a, long lda, float *dst) {
    for (long p = 0; p < m; p += QK_MR) {
        for (long kk = 0; kk < k; kk++) {
            for (long r = 0; r < QK_MR; r++) *dst++ = p + r < m ? a[(p + r) * lda + kk] : 0.f;
        }
    }
}

// The micro-kernel this CPU runs, chosen once (pthread_once: no race between threads).
static qk_micro_fn chosen_micro = 0;
static pthread_once_t micro_once = PTHREAD_ONCE_INIT;

static void choose_micro(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    chosen_micro = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? qk_micro_avx2
                                                                                   : qk_micro_generic;
#else
    chosen_micro = qk_micro_generic;
#endif
}

static qk_micro_fn micro_kernel(void) {
    pthread_once(&micro_once, choose_micro);
    return chosen_micro;
}

// 1 when whole 6x32 tiles run on the AVX-512 pair kernel and the other tiles on its 6x16
// kernel (qk_gemm_set_avx512 may turn both off: AVX2 tiles only).
static int use_pair = -1;

static int pair_kernel(void) {
    if (use_pair < 0) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        use_pair = __builtin_cpu_supports("avx512f") && micro_kernel() == qk_micro_avx2;
#else
        use_pair = 0;
#endif
    }
    return use_pair;
}

int qk_gemm_set_avx512(int on) {
    int was = pair_kernel();
#if defined(__x86_64__)
    __builtin_cpu_init();
    use_pair = on && __builtin_cpu_supports("avx512f") && micro_kernel() == qk_micro_avx2;
#endif
    return was;
}

int qk_uses_avx2(void) { return micro_kernel() == qk_micro_avx2; }

void qk_micro_tile(int portable, long kc, const float *a, const float *b, float *c, long ldc,
                   const float *add, const float *bias, float lo, float hi, int final) {
    (portable ? qk_micro_generic : micro_kernel())(kc, a, b, c, ldc, add, bias, lo, hi, final);
}

// One B-packing workspace per thread, made on first use and freed when the thread ends.
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static void ws_make_key(void) { pthread_key_create(&ws_key, free); }

static float *thread_workspace(void) {
    pthread_once(&ws_once, ws_make_key);
    float *ws = pthread_getspecific(ws_key);
    if (!ws) {
        ws = aligned_alloc(64, qk_workspace_count() * sizeof(float));
        if (!ws) abort();  // 384 KiB; nothing sensible is left to do without it
        pthread_setspecific(ws_key, ws);
    }
    return ws;
}

/// Packs rows `pc ..< pc+kc`, columns `jc ..< jc+nc` of B into strips `[s][kc][QK_NR]`.
typedef void (*pack_b_fn)(const void *ctx, long pc, long kc, long jc, long nc, float *dst);

typedef struct {
    const float *b;
    long ldb;
} plain_b;

static void pack_plain(const void *ctx, long pc, long kc, long jc, long nc, float *dst) {
    const plain_b *p = ctx;
    for (long j = 0; j < nc; j += QK_NR) {
        long w = nc - j < QK_NR ? nc - j : QK_NR;
        const float *src = p->b + pc * p->ldb + jc + j;
        for (long kk = 0; kk < kc; kk++, src += p->ldb, dst += QK_NR) {
            memcpy(dst, src, (size_t)w * sizeof(float));
            if (w < QK_NR) memset(dst + w, 0, (size_t)(QK_NR - w) * sizeof(float));
        }
    }
}

/// One `mr x nr` tile (or a whole one whose `add` has another row stride) through a
/// zero-padded buffer, so the micro-kernels only ever see whole tiles: 6x16 on `micro`, or,
/// with a second strip `bs2` (nr > 16), 6x32 on the AVX-512 pair kernel, which computes the
/// empty lanes of the second strip for less than a 6x16 tile of its own (twice the FLOP rate).
static void partial_tile(qk_micro_fn micro, long kc, const float *ap, const float *bs, const float *bs2, float *cp,
                         long ldc, const float *add, long add_ld, const float *bias, long mr, long nr,
                         const qk_epilogue *ep, int final) {
    const long width = bs2 ? 2 * QK_NR : QK_NR;
    float tmp[QK_MR * 2 * QK_NR] __attribute__((aligned(64)));
    float tbias[QK_MR];
    memset(tmp, 0, (size_t)(QK_MR * width) * sizeof(float));
    if (add) {
        for (long r = 0; r < mr; r++) memcpy(tmp + r * width, add + r * add_ld, (size_t)nr * sizeof(float));
    }
    if (bias) {
        for (long r = 0; r < QK_MR; r++) tbias[r] = r < mr ? bias[r] : 0.f;
    }
    if (bs2) {
        qk_micro_avx512_pair(kc, ap, bs, bs2, tmp, width, add ? tmp : 0, bias ? tbias : 0, ep->lo, ep->hi, final);
    } else {
        micro(kc, ap, bs, tmp, width, add ? tmp : 0, bias ? tbias : 0, ep->lo, ep->hi, final);
    }
    for (long r = 0; r < mr; r++) memcpy(cp + r * ldc, tmp + r * width, (size_t)nr * sizeof(float));
}

/// Prefetches `count` floats at `p` into the caches, one request per 64-byte line.
static inline void prefetch_slice(const float *p, long count) {
    for (long i = 0; i < count; i += 16) __builtin_prefetch(p + i, 0, 3);
}

/// The blocked loops. B comes from `pack` (into the workspace, one depth block at a time)
/// or, when `pb` is set, is already packed as whole-depth strips `[n/16][k][16]`.
static void run(long m, long n, long k, const float *pa, pack_b_fn pack, const void *ctx,
                const float *pb, float *c, long ldc, const qk_epilogue *ep, float *ws) {
    if (!ws && !pb) ws = thread_workspace();
    const int pair = pair_kernel();
    // With AVX-512 on, the tiles that are not whole pairs run on its 6x16 kernel too.
    qk_micro_fn micro = pair ? qk_micro_avx512 : micro_kernel();
    // With all rows in one block, B is packed a few strips at a time: each strip is still in
    // L1 when the micro-kernel reads it (a whole QK_NC block would go out to L2 first).
    const long nc_step = !pb && m <= MC ? 2 * QK_NR : QK_NC;
    for (long jc = 0; jc < n; jc += nc_step) {
        long nc = n - jc < nc_step ? n - jc : nc_step;
        for (long pc = 0; pc < k; pc += QK_KC) {
            long kc = k - pc < QK_KC ? k - pc : QK_KC;
            int first = pc == 0, final = pc + kc >= k;
            if (!pb) pack(ctx, pc, kc, jc, nc, ws);
            for (long ic = 0; ic < m; ic += MC) {
                long mc = m - ic < MC ? m - ic : MC;
                for (long jr = 0; jr < nc;) {
                    long nr = nc - jr < QK_NR ? nc - jr : QK_NR;
                    const float *bs = pb ? pb + ((jc + jr) / QK_NR) * k * QK_NR + pc * QK_NR
                                         : ws + (jr / QK_NR) * kc * QK_NR;
                    // Two strips (the second possibly partial): 6x32 tiles on the AVX-512 kernel.
                    const long pair_nr = nc - jr < 2 * QK_NR ? nc - jr : 2 * QK_NR;
                    const float *bs2 = pair && pair_nr > QK_NR ? bs + (pb ? k : kc) * QK_NR : 0;
                    for (long ir = 0; ir < mc; ir += QK_MR) {
                        long row = ic + ir, mr = mc - ir < QK_MR ? mc - ir : QK_MR;
                        const float *ap = pa + row * k + pc * QK_MR;  // panel row/QK_MR, depth pc
                        // The first strip brings the block's A panels in: ask for the next
                        // panel's slice now (it lies k * 6 floats on, where the hardware
                        // prefetchers do not look), so it arrives while this tile computes.
                        if (jr == 0 && ir + QK_MR < mc) prefetch_slice(ap + QK_MR * k, kc * QK_MR);
                        float *cp = c + row * ldc + jc + jr;
                        const float *add = first ? (ep->add_src ? ep->add_src + row * ep->add_ld + jc + jr : 0) : cp;
                        long add_ld = first ? ep->add_ld : ldc;
                        const float *bias = ep->bias ? ep->bias + row : 0;
                        if (bs2) {
                            if (mr == QK_MR && pair_nr == 2 * QK_NR && (!add || add_ld == ldc)) {
                                qk_micro_avx512_pair(kc, ap, bs, bs2, cp, ldc, add, bias, ep->lo, ep->hi, final);
                            } else {
                                partial_tile(micro, kc, ap, bs, bs2, cp, ldc, add, add_ld, bias, mr, pair_nr, ep, final);
                            }
                            continue;
                        }
                        if (mr == QK_MR && nr == QK_NR && (!add || add_ld == ldc)) {
                            if (pair && mc - ir >= 2 * QK_MR) {
                                // A lone strip: two panels at a time.
                                qk_micro_avx512_tall(kc, ap, ap + QK_MR * k, bs, cp, ldc, add, bias, ep->lo, ep->hi,
                                                     final);
                                ir += QK_MR;
                                continue;
                            }
                            micro(kc, ap, bs, cp, ldc, add, bias, ep->lo, ep->hi, final);
                            continue;
                        }
                        partial_tile(micro, kc, ap, bs, 0, cp, ldc, add, add_ld, bias, mr, nr, ep, final);
                    }
                    jr += bs2 ? pair_nr : QK_NR;
                }
            }
        }
    }
}

void qk_sgemm(long m, long n, long k, const float *pa, const float *b, long ldb, float *c,
              long ldc, const qk_epilogue *ep, float *ws) {
    plain_b ctx = {b, ldb};
    run(m, n, k, pa, pack_plain, &ctx, 0, c, ldc, ep, ws);
}

void qk_sgemm_packed_b(long m, long n, long k, const float *pa, const float *pb, float *c, long ldc,
                       const qk_epilogue *ep) {
    run(m, n, k, pa, 0, 0, pb, c, ldc, ep, 0);
}

typedef struct {
    const qk_conv_shape *s;
    const float *image;
    long n0;  // first output pixel of this call
} conv_b;

/// `out[q] = src[2 * q]` for `q < n`. `whole` says `src[2 * n - 1]` may be read too, which
/// lets the last group of 4 use the vector path (its odd elements are loaded, then dropped).
static inline void gather_stride2(const float *src, float *out, long n, int whole) {
    long q = 0;
#if defined(__x86_64__)
    long vec = whole ? n & ~3L : (n - 1) & ~3L;  // groups whose loads stay in bounds
    for (; q < vec; q += 4) {
        __m128 a = _mm_loadu_ps(src + 2 * q), b = _mm_loadu_ps(src + 2 * q + 4);
        _mm_storeu_ps(out + q, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
    }
#else
    (void)whole;
#endif
    for (; q < n; q++) out[q] = src[2 * q];
}

/// The `kernel_w` taps (stride 2) of one input row `y` for 16 outputs whose first tap is
/// column `x`, as `kernel_w` rows of 16 at `out`: returns 0 (nothing written) when the row
/// segment is not wholly inside the image, so the caller takes the per-tap path.
static int deinterleaved_taps(const float *img, const qk_conv_shape *s, long y, long x, float *out) {
    long kw = s->kernel_w;
    if (y < 0 || y >= s->height) {
        memset(out, 0, (size_t)(kw * QK_NR) * sizeof(float));
        return 1;
    }
    long len = ((kw - 1) / 2 + QK_NR + 3) & ~3L;  // even/odd entries, whole groups of 4
    if (x < 0 || x + 2 * len > s->width) return 0;
    const float *src = img + y * s->width + x;
    float even[24], odd[24];  // len <= 20 for kernel_w <= 9
    gather_stride2(src, even, len, 1);      // src[2 * len - 1] is inside the row (checked above)
    gather_stride2(src + 1, odd, len, 0);   // src[2 * len] may not be
    for (long t = 0; t < kw; t++) memcpy(out + t * QK_NR, (t & 1 ? odd : even) + t / 2, QK_NR * sizeof(float));
    return 1;
}

#if defined(__x86_64__)
/// Bit q set for the first `w` lanes whose coordinate `origin[q] + offset` lies in [0, size).
static inline __mmask16 lanes_inside(const long *origin, long w, long offset, long size) {
    __mmask16 m = 0;
    for (long q = 0; q < w; q++) m |= (__mmask16)((origin[q] + offset >= 0 && origin[q] + offset < size) << q);
    return m;
}

/// pack_conv on AVX-512: per strip, each tap's 16 lane offsets into a channel plane and the
/// mask of lanes inside the image (and the strip) are computed once; every row (channel,
/// tap) is then one masked load (stride 1, the strip in one output row; two and a permute at
/// stride 2) or one masked gather, zeros elsewhere.
/// The same values as pack_conv's copies (bit for bit: loads, no arithmetic). Returns 0,
/// having written nothing, for a kernel of more than 64 taps.
__attribute__((target("avx512f"))) static int pack_conv_gather(const conv_b *p, long pc, long kc, long jc,
                                                                long nc, float *dst) {
    const qk_conv_shape *s = p->s;
    const long taps = s->kernel_h * s->kernel_w, plane = s->height * s->width;
    if (taps > 64) return 0;
    int32_t off[64][QK_NR] __attribute__((aligned(64)));
    __mmask16 inside[64];
    for (long j0 = 0; j0 < nc; j0 += QK_NR, dst += kc * QK_NR) {
        const long w = nc - j0 < QK_NR ? nc - j0 : QK_NR;
        long oy0[QK_NR], ox0[QK_NR];
        for (long q = 0; q < w; q++) {
            const long col = p->n0 + jc + j0 + q;
            oy0[q] = (col / s->out_width) * s->stride_h - s->pad_top;
            ox0[q] = (col % s->out_width) * s->stride_w - s->pad_left;
        }
        // The lanes inside the image: those whose row is inside for tap row ky and whose
        // column is inside for tap column kx.
        __mmask16 rows_in[64], cols_in[64];
        for (long ky = 0; ky < s->kernel_h; ky++) rows_in[ky] = lanes_inside(oy0, w, ky * s->dilation_h, s->height);
        for (long kx = 0; kx < s->kernel_w; kx++) cols_in[kx] = lanes_inside(ox0, w, kx * s->dilation_w, s->width);
        for (long t = 0; t < taps; t++) inside[t] = rows_in[t / s->kernel_w] & cols_in[t % s->kernel_w];
        long ci = pc / taps, t = pc % taps;
        float *o = dst;
        // Stride 1 and the strip in one output row: every tap's lanes are consecutive floats
        // of one input row, one masked load (masked lanes neither read nor fault; lane 0's
        // address may lie before the row, or the image, when it is masked). Stride 2
        // likewise: two masked loads of 32 floats, the even ones kept.
        const long col0 = p->n0 + jc + j0;
        if ((s->stride_w == 1 || s->stride_w == 2) && col0 % s->out_width + w <= s->out_width) {
            long first[64];
            __mmask32 pairs[64];
            for (long t2 = 0; t2 < taps; t2++) {
                first[t2] = (oy0[0] + (t2 / s->kernel_w) * s->dilation_h) * s->width + ox0[0] +
                            (t2 % s->kernel_w) * s->dilation_w;
                __mmask32 m = 0;
                for (long q = 0; q < QK_NR && s->stride_w == 2; q++) m |= (__mmask32)((inside[t2] >> q) & 1) << (2 * q);
                pairs[t2] = m;
            }
            const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            for (long kk = 0; kk < kc; kk++, o += QK_NR) {
                const float *src = p->image + ci * plane + first[t];
                if (s->stride_w == 1) {
                    _mm512_storeu_ps(o, _mm512_maskz_loadu_ps(inside[t], src));
                } else {
                    const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)pairs[t], src);
                    const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(pairs[t] >> 16), src + 16);
                    _mm512_storeu_ps(o, _mm512_permutex2var_ps(lo, evens, hi));
                }
                if (++t == taps) {
                    t = 0;
                    ci++;
                }
            }
            continue;
        }
        for (long t2 = 0; t2 < taps; t2++) {
            const long dy = (t2 / s->kernel_w) * s->dilation_h, dx = (t2 % s->kernel_w) * s->dilation_w;
            for (long q = 0; q < QK_NR; q++) {
                off[t2][q] = (inside[t2] >> q) & 1 ? (int32_t)((oy0[q] + dy) * s->width + ox0[q] + dx) : 0;
            }
        }
        for (long kk = 0; kk < kc; kk++, o += QK_NR) {
            const __m512i idx = _mm512_load_si512((const void *)off[t]);
            _mm512_storeu_ps(o, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), inside[t], idx, p->image + ci * plane, 4));
            if (++t == taps) {
                t = 0;
                ci++;
            }
        }
    }
    return 1;
}
#endif

/// im2col straight into strips, one strip (16 output pixels) at a time so the writes are
/// sequential: row `pc + kk` is (channel, ky, kx); column j is output pixel `n0 + jc + j`.
/// A strip is cut into runs that lie in one output row; the taps of a run that fall inside
/// the image row are a strided copy (a plain copy at stride 1, SSE2 shuffles at stride 2),
/// the ones in the padding at either end are zeros.
static void pack_conv(const void *ctx, long pc, long kc, long jc, long nc, float *dst) {
    const conv_b *p = ctx;
    const qk_conv_shape *s = p->s;
#if defined(__x86_64__)
    // Masked loads and gathers on AVX-512 (the stem too: 0.43 -> 0.33 ms against the
    // deinterleaved copies below, which the other CPUs keep).
    if (pair_kernel() && pack_conv_gather(p, pc, kc, jc, nc, dst)) return;
#endif
    long taps = s->kernel_h * s->kernel_w, plane = s->height * s->width, sw = s->stride_w;
    for (long j0 = 0; j0 < nc; j0 += QK_NR, dst += kc * QK_NR) {
        long w = nc - j0 < QK_NR ? nc - j0 : QK_NR;
        // Runs: lanes [start[r], start[r+1]) share input row origin iy[r]; lane q reads
        // input column ix[r] + (q - start[r]) * stride_w.
        long start[QK_NR + 1], iy[QK_NR], ix[QK_NR], runs = 0;
        long col = p->n0 + jc + j0, oy = col / s->out_width, ox = col % s->out_width;
        for (long q = 0; q < w;) {
            long len = s->out_width - ox < w - q ? s->out_width - ox : w - q;
            start[runs] = q;
            iy[runs] = oy * s->stride_h - s->pad_top;
            ix[runs] = ox * sw - s->pad_left;
            runs++;
            q += len;
            ox = 0;
            oy++;
        }
        start[runs] = w;
        long ci = pc / taps, t = pc % taps, ky = t / s->kernel_w, kx = t % s->kernel_w;
        // Wide stride-2 kernels (the 7x7 stem): a whole strip in one output row shares, per
        // (channel, ky), one input row segment; it is deinterleaved once into even and odd
        // columns, and each tap kx is then a plain 16-float copy from one of them.
        const int row_taps = runs == 1 && w == QK_NR && sw == 2 && s->dilation_w == 1 &&
                             s->kernel_w >= 5 && s->kernel_w <= 9;
        float *o = dst;
        for (long kk = 0; kk < kc; kk++, o += QK_NR) {
            const float *img = p->image + ci * plane;
            long dy = ky * s->dilation_h, dx = kx * s->dilation_w;
            if (row_taps && kx == 0 && kk + s->kernel_w <= kc &&
                deinterleaved_taps(img, s, iy[0] + dy, ix[0], o)) {
                kk += s->kernel_w - 1;
                o += (s->kernel_w - 1) * QK_NR;
                if (++ky == s->kernel_h) { ky = 0; ci++; }
                continue;
            }
            for (long r = 0; r < runs; r++) {
                long y = iy[r] + dy, x0 = ix[r] + dx, n = start[r + 1] - start[r];
                float *out = o + start[r];
                if (y < 0 || y >= s->height) {
                    memset(out, 0, (size_t)n * sizeof(float));
                    continue;
                }
                const float *src = img + y * s->width;
                // Lanes [lo, hi) read inside the row; the others are padding (zeros).
                long lo = 0, hi = n;
                if (x0 < 0) lo = (-x0 + sw - 1) / sw;
                if (x0 + (n - 1) * sw >= s->width) hi = x0 >= s->width ? 0 : (s->width - 1 - x0) / sw + 1;
                if (lo > hi) lo = hi;
                for (long q = 0; q < lo; q++) out[q] = 0.f;
                for (long q = hi; q < n; q++) out[q] = 0.f;
                long m = hi - lo;
                const float *first = src + x0 + lo * sw;
                if (sw == 1) {
                    if (m == QK_NR) {
                        memcpy(out, first, QK_NR * sizeof(float));  // inlined: constant size
                    } else {
                        memcpy(out + lo, first, (size_t)m * sizeof(float));
                    }
                } else if (sw == 2) {
                    gather_stride2(first, out + lo, m, x0 + 2 * hi <= s->width);
                } else {
                    for (long q = 0; q < m; q++) out[lo + q] = first[q * sw];
                }
            }
            if (w < QK_NR) memset(o + w, 0, (size_t)(QK_NR - w) * sizeof(float));
            if (++kx == s->kernel_w) {
                kx = 0;
                if (++ky == s->kernel_h) { ky = 0; ci++; }
            }
        }
    }
}

void qk_pack_conv_b(const qk_conv_shape *s, const float *image, long n0, long n1, float *dst) {
    conv_b ctx = {s, image, n0};
    pack_conv(&ctx, 0, s->channels * s->kernel_h * s->kernel_w, 0, n1 - n0, dst);
}

void qk_sgemm_conv(long m, long n0, long n1, const float *pa, const qk_conv_shape *s,
                   const float *image, float *c, long ldc, const qk_epilogue *ep, float *ws) {
    conv_b ctx = {s, image, n0};
    long k = s->channels * s->kernel_h * s->kernel_w;
    qk_epilogue e = *ep;
    if (e.add_src) e.add_src += n0;
    run(m, n1 - n0, k, pa, pack_conv, &ctx, 0, c + n0, ldc, &e, ws);
}
