// Float -> bits packing of activations, the bit im2col and the A-panel packer of the
// bit-packed convolutions (bitconv.h), and the code-path detection.
//
// The sign packer gathers IEEE sign *comparisons* (x < 0), not sign bits, so -0.0 and NaN
// pack as +1 (bit 0), as the sign quantizer's x >= 0 -> +1 and the naive twin do. It has an
// AVX-512 path (a compare into a mask register, then a masked OR of the channel's bit into
// eight pixel words), an AVX2 path (compare, AND with the channel's bit in two 32-bit halves
// of the word) and a portable one; all three give the same bits.
#include "bitconv.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

int qk_bits_isa_supported(int isa) {
    switch (isa) {
    case QK_BITS_PORTABLE:
        return 1;
#if defined(__x86_64__)
    case QK_BITS_POPCNT:
        __builtin_cpu_init();
        return __builtin_cpu_supports("popcnt");
    case QK_BITS_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
    case QK_BITS_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
#endif
    default:
        return 0;
    }
}

int qk_bits_best_isa(void) {
    for (int isa = QK_BITS_AVX512; isa > QK_BITS_PORTABLE; isa--) {
        if (qk_bits_isa_supported(isa)) return isa;
    }
    return QK_BITS_PORTABLE;
}

long qk_bits_pixel_words(const qk_bits_pack_shape *s) { return s->groups * s->terms * s->planes * s->words; }

// ---------------------------------------------------------------------------------------
// Sign packing: one 64-channel word of pixels p0 ..< p1. `x` is the word's first channel
// plane, `n` the channels in this word (1 ... 64); pixel p's word goes to dst[p * stride].

static void pack_sign_word_portable(const float *x, long ps, long n, long p0, long p1, uint64_t *dst, long stride) {
    enum { CHUNK = 64 };
    uint64_t tmp[CHUNK];
    for (long q0 = p0; q0 < p1; q0 += CHUNK) {
        long m = p1 - q0 < CHUNK ? p1 - q0 : CHUNK;
        memset(tmp, 0, sizeof tmp);
        for (long c = 0; c < n; c++) {
            const float *row = x + c * ps + q0;
            for (long j = 0; j < m; j++) tmp[j] |= (uint64_t)(row[j] < 0.0f) << c;
        }
        for (long j = 0; j < m; j++) dst[(q0 + j) * stride] = tmp[j];
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void pack_sign_word_avx2(const float *x, long ps, long n, long p0, long p1,
                                                                uint64_t *dst, long stride) {
    const __m256 zero = _mm256_setzero_ps();
    long p = p0;
    for (; p + 8 <= p1; p += 8) {
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        long c = 0;
        for (; c < n && c < 32; c++) {
            __m256 v = _mm256_loadu_ps(x + c * ps + p);
            __m256i lt = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            lo = _mm256_or_si256(lo, _mm256_and_si256(lt, _mm256_set1_epi32((int)(1u << c))));
        }
        for (; c < n; c++) {
            __m256 v = _mm256_loadu_ps(x + c * ps + p);
            __m256i lt = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            hi = _mm256_or_si256(hi, _mm256_and_si256(lt, _mm256_set1_epi32((int)(1u << (c - 32)))));
        }
        uint32_t l[8], h[8];
        _mm256_storeu_si256((__m256i *)l, lo);
        _mm256_storeu_si256((__m256i *)h, hi);
        for (int j = 0; j < 8; j++) dst[(p + j) * stride] = (uint64_t)l[j] | (uint64_t)h[j] << 32;
    }
    if (p < p1) pack_sign_word_portable(x, ps, n, p, p1, dst, stride);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void pack_sign_word_avx512(const float *x, long ps, long n,
                                                                                      long p0, long p1, uint64_t *dst,
                                                                                      long stride) {
    const __m256 zero = _mm256_setzero_ps();
    long p = p0;
    for (; p + 8 <= p1; p += 8) {
        __m512i w = _mm512_setzero_si512();
        for (long c = 0; c < n; c++) {
            __mmask8 lt = _mm256_cmp_ps_mask(_mm256_loadu_ps(x + c * ps + p), zero, _CMP_LT_OQ);
            w = _mm512_mask_or_epi64(w, lt, w, _mm512_set1_epi64((long long)(1ULL << c)));
        }
        if (stride == 1) {
            _mm512_storeu_si512((void *)(dst + p), w);
        } else {
            uint64_t t[8];
            _mm512_storeu_si512((void *)t, w);
            for (int j = 0; j < 8; j++) dst[(p + j) * stride] = t[j];
        }
    }
    if (p < p1) pack_sign_word_portable(x, ps, n, p, p1, dst, stride);
}
#endif

// ---------------------------------------------------------------------------------------
// Coded activations (ternary, thermometer, unipolar): portable, and an AVX-512 form of the
// same arithmetic (pack_coded_avx512, below).

/// The integer code of x: clamp(rint(x / step), lo, hi), or with thresholds lo + the number
/// of thresholds x reaches; NaN gives lo.
static inline long code_of(float x, float step, long lo, long hi, const float *thresholds) {
    if (thresholds) {
        long q = lo;
        for (long k = 0; k < hi - lo; k++) q += x >= thresholds[k];
        return q;
    }
    float r = rintf(x / step);
    return r >= (float)lo ? (r <= (float)hi ? (long)r : hi) : lo;
}

/// One pixel's sign and mask words of channel word `w`, term `t` (at `pixel`, the pixel's
/// first word): both planes, or for unipolar codes the mask plane only.
static inline void store_coded(const qk_bits_pack_shape *s, uint64_t *pixel, long w, long t, uint64_t sign,
                               uint64_t mask) {
    uint64_t *d = pixel + (t * s->planes) * s->words + w;
    if (s->planes == 2) {
        d[0] = sign;
        d[s->words] = mask;
    } else {
        d[0] = mask;
    }
}

static void pack_coded(const qk_bits_pack_shape *s, const float *x, long g, long p0, long p1, uint64_t *dst,
                       long stride) {
    enum { CHUNK = 64 };
    const long words = s->words, terms = s->terms;
    const long lo = s->encoding == QK_ACT_TERNARY ? -1 : 0;
    const long hi = s->encoding == QK_ACT_TERNARY ? 1 : s->encoding == QK_ACT_THERMO ? 2 : s->levels;
    uint64_t tmp[CHUNK][2];
    for (long w = 0; w < words; w++) {
        const long c0 = w * 64, n = s->channels - c0 < 64 ? s->channels - c0 : 64;
        for (long t = 0; t < terms; t++) {
            for (long q0 = p0; q0 < p1; q0 += CHUNK) {
                long m = p1 - q0 < CHUNK ? p1 - q0 : CHUNK;
                memset(tmp, 0, sizeof tmp);
                for (long c = 0; c < n; c++) {
                    const float *row = x + (g * s->channels + c0 + c) * s->plane_size + q0;
                    for (long j = 0; j < m; j++) {
                        long q = code_of(row[j], s->step, lo, hi, s->thresholds);
                        uint64_t sb, mb;
                        switch (s->encoding) {
                        case QK_ACT_TERNARY: sb = q < 0; mb = q != 0; break;
                        case QK_ACT_THERMO: sb = q == 0; mb = q != 1; break;  // A = q - 1
                        default: sb = 0; mb = (uint64_t)(q >> t) & 1; break;  // unipolar bit t
                        }
                        tmp[j][0] |= sb << c;
                        tmp[j][1] |= mb << c;
                    }
                }
                for (long j = 0; j < m; j++) store_coded(s, dst + (q0 + j) * stride, w, t, tmp[j][0], tmp[j][1]);
            }
        }
    }
}

#if defined(__x86_64__)
/// pack_coded for pixels p0 ..< p0 + 8 * k (the largest such range inside p1), eight pixels at
/// a time: the same code (x / step, rint, clamp to [lo, hi], NaN to lo; or the thresholds
/// reached) and bits as code_of and pack_coded; returns where it stopped.
__attribute__((target("avx512f,avx512bw,avx512vl"))) static long pack_coded_avx512(const qk_bits_pack_shape *s,
                                                                                   const float *x, long g, long p0,
                                                                                   long p1, uint64_t *dst,
                                                                                   long stride) {
    const long words = s->words, terms = s->terms;
    const float lo = s->encoding == QK_ACT_TERNARY ? -1.f : 0.f;
    const float hi = s->encoding == QK_ACT_TERNARY ? 1.f : s->encoding == QK_ACT_THERMO ? 2.f : (float)s->levels;
    const __m256 vstep = _mm256_set1_ps(s->step), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    const long end = p0 + (p1 - p0) / 8 * 8;
    // The fused quantizer's thresholds (hi - lo of them; more than 15 runs portable).
    const long nt = s->thresholds ? (long)(hi - lo) : 0;
    if (nt > 15) return p0;
    __m256 vt[15];
    for (long k = 0; k < nt; k++) vt[k] = _mm256_set1_ps(s->thresholds[k]);
    for (long w = 0; w < words; w++) {
        const long c0 = w * 64, n = s->channels - c0 < 64 ? s->channels - c0 : 64;
        for (long t = 0; t < terms; t++) {
            for (long p = p0; p < end; p += 8) {
                __m512i sw = _mm512_setzero_si512(), mw = _mm512_setzero_si512();
                for (long c = 0; c < n; c++) {
                    const __m256 v = _mm256_loadu_ps(x + (g * s->channels + c0 + c) * s->plane_size + p);
                    __m256 r;
                    if (s->thresholds) {
                        // lo + the thresholds v reaches (a NaN on either side compares false).
                        r = vlo;
                        for (long k = 0; k < nt; k++) {
                            r = _mm256_mask_add_ps(r, _mm256_cmp_ps_mask(v, vt[k], _CMP_GE_OQ), r, one);
                        }
                    } else {
                        r = _mm256_round_ps(_mm256_div_ps(v, vstep), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                        // r >= lo ? min(r, hi) : lo (a NaN compares false: lo).
                        r = _mm256_mask_blend_ps(_mm256_cmp_ps_mask(r, vlo, _CMP_GE_OQ), vlo, _mm256_min_ps(r, vhi));
                    }
                    __mmask8 sb, mb;
                    switch (s->encoding) {
                    case QK_ACT_TERNARY:
                        sb = _mm256_cmp_ps_mask(r, zero, _CMP_LT_OQ);
                        mb = _mm256_cmp_ps_mask(r, zero, _CMP_NEQ_OQ);
                        break;
                    case QK_ACT_THERMO:
                        sb = _mm256_cmp_ps_mask(r, zero, _CMP_EQ_OQ);
                        mb = _mm256_cmp_ps_mask(r, one, _CMP_NEQ_OQ);
                        break;
                    default: {  // unipolar: bit t of the code
                        const __m256i q = _mm256_cvttps_epi32(r);
                        sb = 0;
                        mb = _mm256_test_epi32_mask(q, _mm256_set1_epi32(1 << t));
                    }
                    }
                    const __m512i bit = _mm512_set1_epi64((long long)(1ULL << c));
                    sw = _mm512_mask_or_epi64(sw, sb, sw, bit);
                    mw = _mm512_mask_or_epi64(mw, mb, mw, bit);
                }
                uint64_t sv[8], mv[8];
                _mm512_storeu_si512((void *)sv, sw);
                _mm512_storeu_si512((void *)mv, mw);
                for (long j = 0; j < 8; j++) store_coded(s, dst + (p + j) * stride, w, t, sv[j], mv[j]);
            }
        }
    }
    return end;
}
#endif

void qk_bits_pack(int isa, const qk_bits_pack_shape *s, const float *x, long p0, long p1, uint64_t *dst) {
    const long stride = qk_bits_pixel_words(s);
    for (long g = 0; g < s->groups; g++) {
        uint64_t *dg = dst + g * s->terms * s->planes * s->words;
        if (s->encoding != QK_ACT_SIGN) {
            long p = p0;
#if defined(__x86_64__)
            if (isa == QK_BITS_AVX512) p = pack_coded_avx512(s, x, g, p0, p1, dg, stride);
#endif
            if (p < p1) pack_coded(s, x, g, p, p1, dg, stride);
            continue;
        }
        for (long w = 0; w < s->words; w++) {
            const long c0 = w * 64, n = s->channels - c0 < 64 ? s->channels - c0 : 64;
            const float *xw = x + (g * s->channels + c0) * s->plane_size;
#if defined(__x86_64__)
            if (isa == QK_BITS_AVX512) {
                pack_sign_word_avx512(xw, s->plane_size, n, p0, p1, dg + w, stride);
                continue;
            }
            if (isa == QK_BITS_AVX2) {
                pack_sign_word_avx2(xw, s->plane_size, n, p0, p1, dg + w, stride);
                continue;
            }
#endif
            (void)isa;
            pack_sign_word_portable(xw, s->plane_size, n, p0, p1, dg + w, stride);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bit im2col and A panels.

long qk_bconv_strips(long pixels) { return 2 * ((pixels + 2 * QK_BSTRIP - 1) / (2 * QK_BSTRIP)); }

static long act_planes(const qk_bconv_shape *s) { return s->act_sign + s->act_mask; }

long qk_bconv_strip_words(const qk_bconv_shape *s) {
    return s->terms * s->kernel_h * s->kernel_w * s->words * act_planes(s) * QK_BSTRIP;
}

long qk_bconv_panel_words(const qk_bconv_shape *s) {
    return s->kernel_h * s->kernel_w * s->words * (1 + s->weight_mask) * QK_BPANEL;
}

void qk_bconv_im2col(const qk_bconv_shape *s, const uint64_t *image, long strip0, long strip1, uint64_t *b) {
    const long ap = act_planes(s), words = s->words, taps = s->kernel_h * s->kernel_w, pw = s->pixel_words;
    const long kwords = taps * words, sw = qk_bconv_strip_words(s);
    const long pixels = s->out_height * s->out_width;
    const int simple = ap == 1 && s->terms == 1;  // the words of a tap are contiguous in B
    long tap_offset[taps];                         // of each tap from the window's first pixel
    for (long t = 0; t < taps; t++) {
        tap_offset[t] = ((t / s->kernel_w) * s->dilation_h * s->width + (t % s->kernel_w) * s->dilation_w) * pw;
    }
    for (long st = strip0; st < strip1; st++) {
        uint64_t *dst = b + st * sw;
        // Per lane: the window's first input pixel, and whether the whole window is inside.
        long iy0[QK_BSTRIP], ix0[QK_BSTRIP];
        int inside[QK_BSTRIP];
        const uint64_t *origin[QK_BSTRIP];
        for (long lane = 0; lane < QK_BSTRIP; lane++) {
            const long p = st * QK_BSTRIP + lane;
            // Lanes past the last pixel read the pad pixel: their results are never stored.
            iy0[lane] = p < pixels ? (p / s->out_width) * s->stride_h - s->pad_top : -s->height - 1 - s->dilation_h * s->kernel_h;
            ix0[lane] = p < pixels ? (p % s->out_width) * s->stride_w - s->pad_left : 0;
            inside[lane] = iy0[lane] >= 0 && ix0[lane] >= 0 && iy0[lane] + (s->kernel_h - 1) * s->dilation_h < s->height &&
                           ix0[lane] + (s->kernel_w - 1) * s->dilation_w < s->width;
            origin[lane] = inside[lane] ? image + (iy0[lane] * s->width + ix0[lane]) * pw : 0;
        }
        for (long t = 0; t < taps; t++) {
            const long ky = t / s->kernel_w, kx = t % s->kernel_w, k0 = t * words;
            for (long lane = 0; lane < QK_BSTRIP; lane++) {
                const uint64_t *src;
                if (inside[lane]) {
                    src = origin[lane] + tap_offset[t];
                } else {
                    const long iy = iy0[lane] + ky * s->dilation_h, ix = ix0[lane] + kx * s->dilation_w;
                    src = iy >= 0 && iy < s->height && ix >= 0 && ix < s->width ? image + (iy * s->width + ix) * pw
                                                                               : s->pad_pixel;
                }
                if (simple) {
                    for (long w = 0; w < words; w++) dst[(k0 + w) * QK_BSTRIP + lane] = src[w];
                    continue;
                }
                for (long tt = 0; tt < s->terms; tt++) {
                    for (long q = 0; q < ap; q++) {
                        const uint64_t *from = src + (tt * ap + q) * words;
                        uint64_t *to = dst + ((tt * kwords + k0) * ap + q) * QK_BSTRIP + lane;
                        for (long w = 0; w < words; w++) to[w * ap * QK_BSTRIP] = from[w];
                    }
                }
            }
        }
    }
}

void qk_bconv_pack_a(long rows, long row_words, int nplanes, const uint64_t *sign, const uint64_t *mask, uint64_t *dst) {
    const long panels = (rows + QK_BPANEL - 1) / QK_BPANEL;
    const long panel_words = row_words * nplanes * QK_BPANEL;
    memset(dst, 0, (size_t)(panels * panel_words) * sizeof(uint64_t));
    for (long o = 0; o < rows; o++) {
        uint64_t *d = dst + (o / QK_BPANEL) * panel_words + o % QK_BPANEL;
        for (long k = 0; k < row_words; k++) {
            d[(k * nplanes) * QK_BPANEL] = sign[o * row_words + k];
            if (nplanes == 2) d[(k * nplanes + 1) * QK_BPANEL] = mask[o * row_words + k];
        }
    }
}
