import Engine
import Tensors
import TestSupport
import Testing

/// The GEMM's AVX-512 6x32 tiles (two B strips at once) against its 6x16 AVX2 tiles (the
/// same sums in the same order: bit-identical) and against the naive twin, around the pair's
/// edges: odd strip counts, partial pairs, lone strips (two panels at a time), partial panels,
/// residual and bias, packed B (conv) and plain B.
@Suite(.serialized) struct PackedGemmAVX512Tests {
    static let shapes: [(Int, Int, Int)] = [
        (6, 32, 256), (7, 65, 257), (13, 49, 600), (64, 400, 64), (12, 385, 9), (5, 48, 3), (18, 31, 17),
        // A lone strip (n = 16, 80): two panels at a time, then the odd panel or rows.
        (24, 16, 100), (30, 80, 33), (17, 16, 5),
    ]

    static func multiply(m: Int, n: Int, k: Int, a: [Float], b: [Float], add: [Float]?, bias: [Float]?) -> [Float] {
        PackedGemmTests.multiply(m: m, n: n, k: k, a: a, b: b, add: add, bias: bias, activation: .clamp(lo: -0.5, hi: 0.75))
    }

    @Test func pairTilesEqualSingleTiles() {
        defer { PackedGemm.setAVX512Tiles(true) }
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            var rng = SplitMix64(seed: UInt64(index) &+ 77)
            let a = rng.floats(m * k), b = rng.floats(k * n)
            let bias: [Float]? = index % 2 == 0 ? rng.floats(m) : nil
            let add: [Float]? = index % 3 != 1 ? rng.floats(m * n) : nil
            PackedGemm.setAVX512Tiles(false)
            let single = Self.multiply(m: m, n: n, k: k, a: a, b: b, add: add, bias: bias)
            PackedGemm.setAVX512Tiles(true)
            let pair = Self.multiply(m: m, n: n, k: k, a: a, b: b, add: add, bias: bias)
            let want = PackedGemmTests.expected(
                m: m, n: n, k: k, a: a, b: b, add: add, bias: bias, activation: .clamp(lo: -0.5, hi: 0.75))
            #expect(pair.map(\.bitPattern) == single.map(\.bitPattern), "\((m, n, k))")
            let d = Difference(pair, want)
            #expect(d.maxAbs <= 8e-6 * Float(k).squareRoot(), "\((m, n, k)): \(d)")
        }
    }

    /// Convolutions (B gathered from the image, and the shared packed-B path of narrow outputs)
    /// with the pair tiles on and off.
    @Test func convolutionsEqualWithAndWithoutPairTiles() {
        defer { PackedGemm.setAVX512Tiles(true) }
        // Wide (column ranges, B gathered per call) and narrow (packed once, shared) convs.
        let fixed = [
            ConvGeometry(
                batch: 2, inChannels: 16, inHeight: 30, inWidth: 30, outChannels: 20, outHeight: 15, outWidth: 15,
                kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1,
                groups: 1),
            ConvGeometry(
                batch: 1, inChannels: 40, inHeight: 7, inWidth: 7, outChannels: 50, outHeight: 7, outWidth: 7,
                kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1,
                groups: 1),
            ConvGeometry(
                batch: 1, inChannels: 24, inHeight: 28, inWidth: 28, outChannels: 37, outHeight: 28, outWidth: 28,
                kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padTop: 0, padLeft: 0, dilationH: 1, dilationW: 1,
                groups: 1),
            // The stem's 7x7 stride 2 with whole strips per output row: deinterleaved copies
            // (AVX-512 off) against two masked loads and a permute per row (on).
            ConvGeometry(
                batch: 1, inChannels: 3, inHeight: 40, inWidth: 96, outChannels: 8, outHeight: 20, outWidth: 48,
                kernelH: 7, kernelW: 7, strideH: 2, strideW: 2, padTop: 3, padLeft: 3, dilationH: 1, dilationW: 1,
                groups: 1),
        ]
        for seed in 0..<28 as Range<UInt64> {
            var rng = SplitMix64(seed: seed &+ 500)
            let g = seed < 24 ? randomConvGeometry(&rng).0 : fixed[Int(seed) - 24]
            let x = rng.floats(g.batch * g.inImage)
            let w = rng.floats(g.outChannels * g.patchSize)
            let b = rng.floats(g.outChannels)
            let r = rng.floats(g.batch * g.outImage)
            PackedGemm.setAVX512Tiles(false)
            let single = Fast.conv(g, x, w, b, residual: r, activation: .relu, threads: 2)
            PackedGemm.setAVX512Tiles(true)
            let pair = Fast.conv(g, x, w, b, residual: r, activation: .relu, threads: 2)
            #expect(pair.map(\.bitPattern) == single.map(\.bitPattern), "\(g)")
        }
    }
}
