// The XOR/AND + popcount GEMM of the bit-packed convolutions and its fused output transform
// (bitconv.h).
//
// A micro-kernel computes one tile of 4 output channels (an A panel, `[k][weight plane][4]`)
// by 16 output pixels (two B strips, `[k][activation plane][8]`), over the K words of one
// activation term. Per word pair it forms
//     M = m_a & m_w    (each mask only when the operand has one)
//     X = (s_a ^ s_w) & M
// and counts c2 += popcount(X), and c1 += popcount(M) when the activation has a mask. The
// driver turns the counts into the ±1/ternary dot product `base - 2 * c2` (base = c1, or
// the row's bit count / nonzero count from the epilogue when only the weights may be zero).
//
// Four code paths, one generic body each, specialised by always-inlining for the six operand
// kinds (sign/ternary/unipolar activations x binary/ternary weights):
//   portable  scalar, SWAR popcount (what a CPU without POPCNT runs)
//   popcnt    scalar, POPCNT
//   avx2      weight words broadcast, 4 pixels per ymm; popcount by nibble table (vpshufb)
//             into byte counters, widened with vpsadbw every 31 words (8 bits per byte each)
//   avx512    weight words broadcast, 8 pixels per zmm; VPOPCNTQ into 64-bit counters
// All four give the same counts; tests force each one.
#include "bitconv.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// The transform is specified operation by operation (no fused multiply-add).
#pragma STDC FP_CONTRACT OFF

#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))

typedef void (*bmicro_fn)(long kw, const uint64_t *a, const uint64_t *b, long bstride, int32_t c1[4][16],
                          int32_t c2[4][16]);

// ---------------------------------------------------------------------------------------
// Scalar bodies.

QK_ALWAYS_INLINE uint64_t popc_swar(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (x * 0x0101010101010101ULL) >> 56;
}

#define SCALAR_BODY(POPC)                                                                       \
    const int ap = as + am, wp = 1 + wm;                                                        \
    for (int st = 0; st < 2; st++) {                                                            \
        const uint64_t *bs = b + st * bstride;                                                  \
        for (int j0 = 0; j0 < QK_BSTRIP; j0 += 2) {                                             \
            uint64_t x2[4][2] = {{0}}, x1[4][2] = {{0}};                                        \
            for (long k = 0; k < kw; k++) {                                                     \
                const uint64_t *bk = bs + k * ap * QK_BSTRIP + j0;                              \
                const uint64_t *ak = a + k * wp * QK_BPANEL;                                    \
                for (int j = 0; j < 2; j++) {                                                   \
                    const uint64_t sa = as ? bk[j] : 0;                                         \
                    const uint64_t ma = am ? bk[as * QK_BSTRIP + j] : ~0ULL;                    \
                    for (int r = 0; r < 4; r++) {                                               \
                        const uint64_t mw = wm ? ak[QK_BPANEL + r] : ~0ULL;                     \
                        const uint64_t m = ma & mw;                                             \
                        uint64_t x = sa ^ ak[r];                                                \
                        if (am || wm) x &= m;                                                   \
                        x2[r][j] += POPC(x);                                                    \
                        if (am) x1[r][j] += POPC(m);                                            \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
            for (int r = 0; r < 4; r++) {                                                       \
                for (int j = 0; j < 2; j++) {                                                   \
                    c2[r][st * QK_BSTRIP + j0 + j] = (int32_t)x2[r][j];                         \
                    c1[r][st * QK_BSTRIP + j0 + j] = (int32_t)x1[r][j];                         \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

QK_ALWAYS_INLINE void body_portable(long kw, const uint64_t *a, const uint64_t *b, long bstride, int32_t c1[4][16],
                                    int32_t c2[4][16], const int as, const int am, const int wm) {
    SCALAR_BODY(popc_swar)
}

#if defined(__x86_64__)
__attribute__((target("popcnt"), always_inline)) static inline void body_popcnt(long kw, const uint64_t *a,
                                                                                 const uint64_t *b, long bstride,
                                                                                 int32_t c1[4][16], int32_t c2[4][16],
                                                                                 const int as, const int am,
                                                                                 const int wm) {
    SCALAR_BODY(__builtin_popcountll)
}

// ---------------------------------------------------------------------------------------
// AVX2: 4 rows (2 when the activation has a mask: two counters per product) x 8 pixels
// (two ymm) per pass; byte counters flushed into 64-bit lanes every 31 words.

__attribute__((target("avx2"), always_inline)) static inline __m256i pc_bytes(__m256i x, __m256i lut, __m256i m4) {
    __m256i lo = _mm256_and_si256(x, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

__attribute__((target("avx2"), always_inline)) static inline void body_avx2(long kw, const uint64_t *a,
                                                                            const uint64_t *b, long bstride,
                                                                            int32_t c1[4][16], int32_t c2[4][16],
                                                                            const int as, const int am, const int wm) {
    const int ap = as + am, wp = 1 + wm;
    enum { R4 = 4, R2 = 2 };
    const int R = am ? R2 : R4;
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                         2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    for (int st = 0; st < 2; st++) {
        const uint64_t *bs = b + st * bstride;
        for (int r0 = 0; r0 < 4; r0 += R) {
            __m256i t2[4][2], t1[4][2];
            for (int r = 0; r < R; r++) t2[r][0] = t2[r][1] = t1[r][0] = t1[r][1] = zero;
            for (long k0 = 0; k0 < kw; k0 += 31) {
                const long k1 = k0 + 31 < kw ? k0 + 31 : kw;
                __m256i y2[4][2], y1[4][2];
                for (int r = 0; r < R; r++) y2[r][0] = y2[r][1] = y1[r][0] = y1[r][1] = zero;
                for (long k = k0; k < k1; k++) {
                    const uint64_t *bk = bs + k * ap * QK_BSTRIP;
                    __m256i sa[2] = {zero, zero}, ma[2] = {zero, zero};
                    if (as) {
                        sa[0] = _mm256_loadu_si256((const __m256i *)bk);
                        sa[1] = _mm256_loadu_si256((const __m256i *)(bk + 4));
                    }
                    if (am) {
                        ma[0] = _mm256_loadu_si256((const __m256i *)(bk + as * QK_BSTRIP));
                        ma[1] = _mm256_loadu_si256((const __m256i *)(bk + as * QK_BSTRIP + 4));
                    }
                    const uint64_t *ak = a + k * wp * QK_BPANEL + r0;
                    for (int r = 0; r < R; r++) {
                        const __m256i sw = _mm256_set1_epi64x((long long)ak[r]);
                        const __m256i mw = wm ? _mm256_set1_epi64x((long long)ak[QK_BPANEL + r]) : zero;
                        for (int v = 0; v < 2; v++) {
                            __m256i x = as ? _mm256_xor_si256(sa[v], sw) : sw;
                            __m256i m = am && wm ? _mm256_and_si256(ma[v], mw) : am ? ma[v] : mw;
                            if (am || wm) x = _mm256_and_si256(x, m);
                            y2[r][v] = _mm256_add_epi8(y2[r][v], pc_bytes(x, lut, m4));
                            if (am) y1[r][v] = _mm256_add_epi8(y1[r][v], pc_bytes(m, lut, m4));
                        }
                    }
                }
                for (int r = 0; r < R; r++) {
                    for (int v = 0; v < 2; v++) {
                        t2[r][v] = _mm256_add_epi64(t2[r][v], _mm256_sad_epu8(y2[r][v], zero));
                        if (am) t1[r][v] = _mm256_add_epi64(t1[r][v], _mm256_sad_epu8(y1[r][v], zero));
                    }
                }
            }
            for (int r = 0; r < R; r++) {
                for (int v = 0; v < 2; v++) {
                    uint64_t u2[4], u1[4];
                    _mm256_storeu_si256((__m256i *)u2, t2[r][v]);
                    _mm256_storeu_si256((__m256i *)u1, t1[r][v]);
                    for (int i = 0; i < 4; i++) {
                        c2[r0 + r][st * QK_BSTRIP + v * 4 + i] = (int32_t)u2[i];
                        c1[r0 + r][st * QK_BSTRIP + v * 4 + i] = (int32_t)u1[i];
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// AVX-512: 4 rows x 16 pixels (one zmm per strip) in 64-bit counters.

#define QK_AVX512 "avx512f,avx512bw,avx512vl,avx512vpopcntdq"

__attribute__((target(QK_AVX512), always_inline)) static inline void body_avx512(long kw, const uint64_t *a,
                                                                                 const uint64_t *b, long bstride,
                                                                                 int32_t c1[4][16], int32_t c2[4][16],
                                                                                 const int as, const int am,
                                                                                 const int wm) {
    const int ap = as + am, wp = 1 + wm;
    const __m512i zero = _mm512_setzero_si512();
    __m512i t2[4][2], t1[4][2];
    for (int r = 0; r < 4; r++) t2[r][0] = t2[r][1] = t1[r][0] = t1[r][1] = zero;
    for (long k = 0; k < kw; k++) {
        __m512i sa[2] = {zero, zero}, ma[2] = {zero, zero};
        for (int v = 0; v < 2; v++) {
            const uint64_t *bk = b + v * bstride + k * ap * QK_BSTRIP;
            if (as) sa[v] = _mm512_loadu_si512((const void *)bk);
            if (am) ma[v] = _mm512_loadu_si512((const void *)(bk + as * QK_BSTRIP));
        }
        const uint64_t *ak = a + k * wp * QK_BPANEL;
        for (int r = 0; r < 4; r++) {
            const __m512i sw = _mm512_set1_epi64((long long)ak[r]);
            const __m512i mw = wm ? _mm512_set1_epi64((long long)ak[QK_BPANEL + r]) : zero;
            for (int v = 0; v < 2; v++) {
                __m512i x = as ? _mm512_xor_si512(sa[v], sw) : sw;
                __m512i m = am && wm ? _mm512_and_si512(ma[v], mw) : am ? ma[v] : mw;
                if (am || wm) x = _mm512_and_si512(x, m);
                t2[r][v] = _mm512_add_epi64(t2[r][v], _mm512_popcnt_epi64(x));
                if (am) t1[r][v] = _mm512_add_epi64(t1[r][v], _mm512_popcnt_epi64(m));
            }
        }
    }
    // One 512-bit store per row: the driver reads each row back as one vector, which two
    // 256-bit stores could not forward to it.
    for (int r = 0; r < 4; r++) {
        _mm512_storeu_si512((void *)c2[r], _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(t2[r][0])),
                                                              _mm512_cvtepi64_epi32(t2[r][1]), 1));
        if (am) {
            _mm512_storeu_si512((void *)c1[r], _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(t1[r][0])),
                                                                  _mm512_cvtepi64_epi32(t1[r][1]), 1));
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------
// The 6 operand kinds x 4 code paths.

#define KINDS(PREFIX, ATTR, BODY)                                                                              \
    ATTR static void PREFIX##_bb(long kw, const uint64_t *a, const uint64_t *b, long bs, int32_t c1[4][16],   \
                                 int32_t c2[4][16]) { BODY(kw, a, b, bs, c1, c2, 1, 0, 0); }                   \
    ATTR static void PREFIX##_bt(long kw, const uint64_t *a, const uint64_t *b, long bs, int32_t c1[4][16],   \
                                 int32_t c2[4][16]) { BODY(kw, a, b, bs, c1, c2, 1, 0, 1); }                   \
    ATTR static void PREFIX##_tb(long kw, const uint64_t *a, const uint64_t *b, long bs, int32_t c1[4][16],   \
                                 int32_t c2[4][16]) { BODY(kw, a, b, bs, c1, c2, 1, 1, 0); }                   \
    ATTR static void PREFIX##_tt(long kw, const uint64_t *a, const uint64_t *b, long bs, int32_t c1[4][16],   \
                                 int32_t c2[4][16]) { BODY(kw, a, b, bs, c1, c2, 1, 1, 1); }                   \
    ATTR static void PREFIX##_ub(long kw, const uint64_t *a, const uint64_t *b, long bs, int32_t c1[4][16],   \
                                 int32_t c2[4][16]) { BODY(kw, a, b, bs, c1, c2, 0, 1, 0); }                   \
    ATTR static void PREFIX##_ut(long kw, const uint64_t *a, const uint64_t *b, long bs, int32_t c1[4][16],   \
                                 int32_t c2[4][16]) { BODY(kw, a, b, bs, c1, c2, 0, 1, 1); }                   \
    static const bmicro_fn PREFIX##_kinds[6] = {PREFIX##_bb, PREFIX##_bt, PREFIX##_tb,                         \
                                                PREFIX##_tt, PREFIX##_ub, PREFIX##_ut};

KINDS(portable, , body_portable)
#if defined(__x86_64__)
KINDS(popcnt, __attribute__((target("popcnt"))), body_popcnt)
KINDS(avx2, __attribute__((target("avx2"))), body_avx2)
KINDS(avx512, __attribute__((target(QK_AVX512))), body_avx512)
#endif

static bmicro_fn micro_for(int isa, const qk_bconv_shape *s) {
    const int kind = (s->act_mask ? (s->act_sign ? 2 : 4) : 0) + (s->weight_mask ? 1 : 0);
#if defined(__x86_64__)
    switch (isa) {
    case QK_BITS_AVX512: return avx512_kinds[kind];
    case QK_BITS_AVX2: return avx2_kinds[kind];
    case QK_BITS_POPCNT: return popcnt_kinds[kind];
    default: break;
    }
#endif
    (void)isa;
    return portable_kinds[kind];
}

// ---------------------------------------------------------------------------------------
// Driver and output transform.

/// y = act(float(acc + off) * mul + bias [+ res]) for n pixels of one row. `res` may be
/// `out` itself: it is copied first, so that the loop vectorises without an overlap check.
QK_ALWAYS_INLINE void transform_row(const int32_t *acc, long n, int32_t off, float mul, float bias, const float *res,
                                    float lo, float hi, float *out) {
    if (res) {
        float r[2 * QK_BSTRIP];
        for (long j = 0; j < n; j++) r[j] = res[j];
        for (long j = 0; j < n; j++) {
            float y = (float)(acc[j] + off) * mul;
            y = y + bias;
            y = y + r[j];
            y = lo >= y ? lo : y;
            out[j] = hi < y ? hi : y;
        }
    } else {
        for (long j = 0; j < n; j++) {
            float y = (float)(acc[j] + off) * mul;
            y = y + bias;
            y = lo >= y ? lo : y;
            out[j] = hi < y ? hi : y;
        }
    }
}

#if defined(__x86_64__)
/// `acc[j] -= corr[cls[j]]` for one row of 16 pixels and at most 16 classes: one permute
/// (a gather, which the loop compiles to, is several times slower on this path).
__attribute__((target(QK_AVX512))) static inline void correct_avx512(int32_t *acc, const int32_t *corr, long classes,
                                                                      const int32_t *cls) {
    const __m512i table = _mm512_maskz_loadu_epi32((__mmask16)((1u << classes) - 1), corr);
    const __m512i fix = _mm512_permutexvar_epi32(_mm512_loadu_si512((const void *)cls), table);
    _mm512_storeu_si512((void *)acc, _mm512_sub_epi32(_mm512_loadu_si512((const void *)acc), fix));
}
#endif

/// The driver, compiled once per code path so that the transform is vectorised for it
/// (`avx512`: the path's own correction).
QK_ALWAYS_INLINE void gemm_driver(const bmicro_fn micro, const qk_bconv_shape *s, long rows, const uint64_t *a,
                                  const uint64_t *b, long panel0, long panel1, long pair0, long pair1,
                                  const qk_bconv_epilogue *e, const int avx512) {
    enum { NP = 2 * QK_BSTRIP };
    const long taps = s->kernel_h * s->kernel_w, kwords = taps * s->words;
    const long ap = s->act_sign + s->act_mask;
    const long strip_words = qk_bconv_strip_words(s), panel_words = qk_bconv_panel_words(s);
    const long pixels = s->out_height * s->out_width;
    int32_t c1[4][16], c2[4][16], acc[4][16];
    for (long pair = pair0; pair < pair1; pair++) {
        const uint64_t *bp = b + 2 * pair * strip_words;
        const long p0 = pair * NP;
        const long np = pixels - p0 < NP ? pixels - p0 : NP;
        if (np <= 0) continue;
        // The padding class of each pixel (0: every tap inside; lanes past np stay 0).
        int32_t cls[NP] = {0}, any_border = 0;
        if (e->correction) {
            long oy = p0 / s->out_width, ox = p0 % s->out_width;
            for (long j = 0; j < np; j++) {
                cls[j] = e->y_class[oy] * (int32_t)e->x_classes + e->x_class[ox];
                any_border |= cls[j];
                if (++ox == s->out_width) ox = 0, oy++;
            }
        }
        for (long panel = panel0; panel < panel1; panel++) {
            const long r0 = panel * QK_BPANEL;
            const long nr = rows - r0 < QK_BPANEL ? rows - r0 : QK_BPANEL;
            if (nr <= 0) continue;
            for (long t = 0; t < s->terms; t++) {
                micro(kwords, a + panel * panel_words, bp + t * kwords * ap * QK_BSTRIP, strip_words, c1, c2);
                const int32_t coef = (int32_t)e->coef[t];
                for (long r = 0; r < QK_BPANEL; r++) {
                    const int32_t base = e->base && r < nr ? e->base[r0 + r] : 0;
                    if (s->act_mask) {
                        for (long j = 0; j < NP; j++) acc[r][j] = (t == 0 ? 0 : acc[r][j]) + coef * (c1[r][j] - 2 * c2[r][j]);
                    } else {
                        for (long j = 0; j < NP; j++) acc[r][j] = (t == 0 ? 0 : acc[r][j]) + coef * (base - 2 * c2[r][j]);
                    }
                }
            }
            for (long r = 0; r < nr; r++) {
                const long o = r0 + r;
                if (any_border) {
                    const int32_t *corr = e->correction + o * e->classes;
#if defined(__x86_64__)
                    if (avx512 && e->classes <= 16) {
                        correct_avx512(acc[r], corr, e->classes, cls);
                    } else
#endif
                    {
                        for (long j = 0; j < NP; j++) acc[r][j] -= corr[cls[j]];
                    }
                }
                const int32_t off = e->sum_w ? (int32_t)e->offset * e->sum_w[o] : 0;
                const float *res = e->residual ? e->residual + o * pixels + p0 : 0;
                float *out = e->out + o * pixels + p0;
                if (np == NP) {
                    transform_row(acc[r], NP, off, e->mul[o], e->bias[o], res, e->lo, e->hi, out);
                } else {
                    transform_row(acc[r], np, off, e->mul[o], e->bias[o], res, e->lo, e->hi, out);
                }
            }
        }
    }
}

static void gemm_portable(const bmicro_fn micro, const qk_bconv_shape *s, long rows, const uint64_t *a,
                          const uint64_t *b, long panel0, long panel1, long pair0, long pair1,
                          const qk_bconv_epilogue *e) {
    gemm_driver(micro, s, rows, a, b, panel0, panel1, pair0, pair1, e, 0);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void gemm_avx2(const bmicro_fn micro, const qk_bconv_shape *s, long rows,
                                                      const uint64_t *a, const uint64_t *b, long panel0,
                                                      long panel1, long pair0, long pair1,
                                                      const qk_bconv_epilogue *e) {
    gemm_driver(micro, s, rows, a, b, panel0, panel1, pair0, pair1, e, 0);
}

__attribute__((target(QK_AVX512))) static void gemm_avx512(const bmicro_fn micro, const qk_bconv_shape *s, long rows,
                                                           const uint64_t *a, const uint64_t *b, long panel0,
                                                           long panel1, long pair0, long pair1,
                                                           const qk_bconv_epilogue *e) {
    gemm_driver(micro, s, rows, a, b, panel0, panel1, pair0, pair1, e, 1);
}
#endif

void qk_bconv_gemm(int isa, const qk_bconv_shape *s, long rows, const uint64_t *a, const uint64_t *b, long panel0,
                   long panel1, long pair0, long pair1, const qk_bconv_epilogue *e) {
    const bmicro_fn micro = micro_for(isa, s);
#if defined(__x86_64__)
    if (isa == QK_BITS_AVX512) return gemm_avx512(micro, s, rows, a, b, panel0, panel1, pair0, pair1, e);
    if (isa == QK_BITS_AVX2) return gemm_avx2(micro, s, rows, a, b, panel0, panel1, pair0, pair1, e);
#endif
    gemm_portable(micro, s, rows, a, b, panel0, panel1, pair0, pair1, e);
}
