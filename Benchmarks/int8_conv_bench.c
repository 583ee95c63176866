// integerConv kernels alone, one thread: a KxK conv (stride S, "same" padding) of C channels at
// HxH to M channels, 2-bit indices (0...3), ternary weights. Times the gathering kernel
// (qk_i8_conv) on each path (0 portable, 1 AVX2, 2 VNNI) and the direct one (int8_direct.c:
// input preparation, and the conv with its epilogue, separately).
// Build: clang -O2 -ISources/CKernels/include Benchmarks/int8_conv_bench.c Sources/CKernels/int8_conv.c \
//          Sources/CKernels/int8_direct.c Sources/CKernels/grid_quantize.c -lm -o /tmp/i8bench
// Run:   /tmp/i8bench C H M [K S] [--direct-only]     e.g. /tmp/i8bench 128 28 128 3 1
#include "int8_conv.h"
#include "int8_direct.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(int argc, char **argv) {
    if (argc < 4) return fprintf(stderr, "usage: %s C H M [K S] [--direct-only]\n", argv[0]), 2;
    long C = atol(argv[1]), H = atol(argv[2]), M = atol(argv[3]);
    long K = argc > 4 ? atol(argv[4]) : 3, S = argc > 5 ? atol(argv[5]) : 1;
    int directOnly = argc > 6 && strcmp(argv[6], "--direct-only") == 0;
    long O = (H + 2 * (K / 2) - K) / S + 1;
    qk_i8_shape s = {C, H, H, K, K, S, S, K / 2, K / 2, 1, 1, O, O, M, 0, 3, 0};
    s.maddubs_safe = qk_i8_maddubs_safe(3, 1);
    long KK = C * K * K, P = O * O;
    float *xf = malloc(sizeof(float) * C * H * H);
    for (long i = 0; i < C * H * H; i++) xf[i] = rand() % 4;
    unsigned char *x = malloc(C * H * H);
    qk_i8_levels(xf, C * H * H, 3, x);
    int8_t *w = malloc(M * KK);
    for (long i = 0; i < M * KK; i++) w[i] = (i % 3) - 1;
    float *y = malloc(sizeof(float) * M * P), *sc = malloc(4 * M), *b = calloc(M, 4);
    for (int i = 0; i < M; i++) sc[i] = 0.01f;
    qk_i8_epilogue ep = {sc, b, 0, 0, 1e30f};
    double macs = (double)M * KK * P;
    if (!directOnly) {
        int8_t *pw = malloc(qk_i8_packed_weight_bytes(&s));
        qk_i8_pack_weights(&s, w, pw);
        for (int path = 0; path <= 2; path++) {
            double best = 1e9;
            for (int r = 0; r < (path ? 10 : 2); r++) {
                double t0 = now();
                qk_i8_conv(&s, x, pw, 0, P, y, P, &ep, 0, path);
                double t = now() - t0;
                if (t < best) best = t;
            }
            printf("C=%ld H=%ld M=%ld K=%ld S=%ld gather path %d: %.3f ms, %.1f GMAC/s\n", C, H, M, K, S, path, best * 1e3,
                   macs / best / 1e9);
        }
    }
    if (!qk_i8d_supported()) return puts("direct: this CPU lacks AVX-512 VNNI"), 0;
    int8_t *dw = malloc(qk_i8d_weight_bytes(&s));
    qk_i8d_pack_weights(&s, w, dw);
    unsigned char *prepared = malloc(qk_i8d_input_bytes(&s));
    const long quads = (C + 3) / 4, tiles = qk_i8d_tiles(&s);
    double bestPrep = 1e9, bestConv = 1e9;
    for (int r = 0; r < 20; r++) {
        double t0 = now();
        qk_i8d_prepare(&s, xf, NULL, 0, quads, prepared);
        double t1 = now();
        qk_i8d_conv(&s, prepared, dw, 0, tiles, 0, M, y, P, &ep, NULL);
        double t2 = now();
        if (t1 - t0 < bestPrep) bestPrep = t1 - t0;
        if (t2 - t1 < bestConv) bestConv = t2 - t1;
    }
    printf("C=%ld H=%ld M=%ld K=%ld S=%ld direct: prepare %.3f ms, conv %.3f ms (%.1f GMAC/s), total %.1f GMAC/s\n", C, H, M, K, S,
           bestPrep * 1e3, bestConv * 1e3, macs / bestConv / 1e9, macs / (bestPrep + bestConv) / 1e9);
}
