import Engine
import Tensors
import TestSupport
import Testing

@Suite struct ConvTests {
    static let seeds = Array(0..<48 as Range<UInt64>)

    @Test(arguments: seeds, [1, 2])
    func randomGeometryMatchesReference(seed: UInt64, threads: Int) {
        var rng = SplitMix64(seed: seed)
        let (g, _) = randomConvGeometry(&rng)
        let x = rng.floats(g.batch * g.inImage)
        let w = rng.floats(g.outChannels * g.patchSize)
        let b: [Float]? = rng.bool() ? rng.floats(g.outChannels) : nil
        let slow = ReferenceKernels.conv2d(g, input: x, weight: w, bias: b)
        let fast = Fast.conv(g, x, w, b, threads: threads)
        let (ok, msg) = expectClose(fast, slow, atol: 1e-4, "\(g)")
        #expect(ok, "\(msg)")
    }

    @Test(arguments: seeds.prefix(24), [1, 2])
    func residualAndActivationEpilogue(seed: UInt64, threads: Int) {
        var rng = SplitMix64(seed: seed &+ 1000)
        let (g, _) = randomConvGeometry(&rng)
        let x = rng.floats(g.batch * g.inImage)
        let w = rng.floats(g.outChannels * g.patchSize)
        let b = rng.floats(g.outChannels)
        let r = rng.floats(g.batch * g.outImage)
        let act: Activation = [.none, .relu, .clamp(lo: -0.5, hi: 0.75)][Int(seed % 3)]
        let conv = ReferenceKernels.conv2d(g, input: x, weight: w, bias: b)
        let slow = ReferenceKernels.activation(ReferenceKernels.add(conv, r), act)
        let fast = Fast.conv(g, x, w, b, residual: r, activation: act, threads: threads)
        let inPlace = Fast.convResidualInPlace(g, x, w, b, residual: r, activation: act, threads: threads)
        let (ok1, m1) = expectClose(fast, slow, atol: 1e-4, "\(g)")
        let (ok2, m2) = expectClose(inPlace, slow, atol: 1e-4, "in place \(g)")
        #expect(ok1, "\(m1)")
        #expect(ok2, "\(m2)")
    }

    /// Larger shapes that take the column-tile and row-block paths, pointwise and strided 1x1.
    /// (batch, cin, cout, h, w, k, stride, pad, groups)
    static let networkShapes: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (1, 3, 16, 45, 37, 7, 2, 3, 1),  // stem-like, wide output
        (2, 16, 24, 23, 23, 3, 1, 1, 1),  // wide, batch 2
        (1, 32, 40, 7, 7, 3, 1, 1, 1),  // narrow output: row blocks
        (1, 24, 48, 14, 9, 1, 1, 0, 1),  // pointwise, direct GEMM
        (2, 24, 48, 13, 13, 1, 2, 0, 1),  // strided 1x1 downsample
        (1, 32, 64, 5, 5, 1, 1, 0, 1),  // pointwise, narrow
        (1, 16, 32, 20, 20, 3, 2, 1, 4),  // grouped, wide
        (1, 32, 32, 19, 19, 3, 1, 1, 32),  // depthwise
        (1, 8, 16, 40, 67, 3, 2, 1, 1),  // stride 2, runs of 16 and tails (vector gathers)
        (1, 5, 12, 33, 64, 1, 2, 0, 1),  // 1x1 stride 2 reaching the end of every row
        (1, 3, 8, 38, 38, 7, 2, 3, 1),  // stem: 7x7 stride 2, pad 3, the last row at the image end
        (2, 3, 8, 40, 96, 7, 2, 3, 1),  // stem, 48-wide rows: whole strips per row (deinterleaved taps)
        (1, 5, 7, 70, 99, 5, 2, 2, 1),  // 5x5 stride 2, 48-wide rows, odd height
        (1, 2, 6, 41, 96, 9, 2, 4, 1),  // 9x9 stride 2, the widest kernel on the row path
    ]

    @Test(arguments: networkShapes, [1, 2])
    func networkShapesMatchReference(shape: (Int, Int, Int, Int, Int, Int, Int, Int, Int), threads: Int) {
        let (n, cin, cout, h, w, k, s, p, groups) = shape
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        let g = ConvGeometry(
            batch: n, inChannels: cin, inHeight: h, inWidth: w, outChannels: cout, outHeight: oh,
            outWidth: ow, kernelH: k, kernelW: k, strideH: s, strideW: s, padTop: p, padLeft: p,
            dilationH: 1, dilationW: 1, groups: groups)
        var rng = SplitMix64(seed: UInt64(cin * 1000 + cout * 10 + h))
        let x = rng.floats(g.batch * g.inImage)
        let wt = rng.floats(g.outChannels * g.patchSize)
        let b = rng.floats(cout)
        let r = rng.floats(g.batch * g.outImage)
        let slow = ReferenceKernels.activation(
            ReferenceKernels.add(ReferenceKernels.conv2d(g, input: x, weight: wt, bias: b), r), .relu)
        let fast = Fast.conv(g, x, wt, b, residual: r, activation: .relu, threads: threads)
        let (ok, msg) = expectClose(fast, slow, atol: 1e-4 * Float(g.patchSize).squareRoot(), "\(g)")
        #expect(ok, "\(msg)")
    }
}
