import Engine
import Tensors
import TestSupport
import Testing

/// Winograd F(2x2, 3x3) and F(4x4, 3x3) against the direct naive convolution (their twin),
/// with the transforms' AVX2 code (where the CPU has it) and their portable code.
@Suite struct WinogradTests {
    /// (tile, threads, portable transforms).
    static let variants = [(2, 1, false), (2, 2, false), (4, 1, false), (4, 2, false), (2, 2, true), (4, 1, true)]

    @Test(arguments: Array(0..<32 as Range<UInt64>), variants)
    func matchesDirectConvolution(seed: UInt64, variant: (tile: Int, threads: Int, portable: Bool)) {
        let (tile, threads, portable) = variant
        var rng = SplitMix64(seed: seed)
        let pad = Padding2d(top: rng.int(0...2), left: rng.int(0...2), bottom: rng.int(0...2), right: rng.int(0...2))
        // Widths past 2 * 8 + 2 and 4 * 8 + 2 reach the 8-tile vector passes and their tails.
        var h = rng.int(1...17), w = rng.int(1...(seed % 4 == 3 ? 45 : 16))
        h = max(h, 3 - pad.top - pad.bottom)
        w = max(w, 3 - pad.left - pad.right)
        let g = ConvGeometry(
            batch: rng.int(1...2), inChannels: rng.int(1...9), inHeight: h, inWidth: w,
            outChannels: rng.int(1...11), outHeight: h + pad.top + pad.bottom - 2,
            outWidth: w + pad.left + pad.right - 2, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1,
            padTop: pad.top, padLeft: pad.left, dilationH: 1, dilationW: 1, groups: 1)
        let x = rng.floats(g.batch * g.inImage)
        let wt = rng.floats(g.outChannels * g.patchSize)
        let b = rng.floats(g.outChannels)
        let r: [Float]? = seed % 2 == 0 ? rng.floats(g.batch * g.outImage) : nil
        let act: Activation = [.none, .relu, .clamp(lo: -0.5, hi: 0.5)][Int(seed % 3)]
        var slow = ReferenceKernels.conv2d(g, input: x, weight: wt, bias: b)
        if let r { slow = ReferenceKernels.add(slow, r) }
        slow = ReferenceKernels.activation(slow, act)
        let fast = Fast.winograd(
            g, tile: tile, x, wt, b, residual: r, residualInPlace: seed % 4 == 2, activation: act, threads: threads,
            portable: portable)
        let (ok, msg) = expectClose(fast, slow, atol: 2e-5 * Float(g.inChannels * 9).squareRoot(), "\(g)")
        #expect(ok, "\(msg)")
    }

    @Test(arguments: [(32, 32, 30), (64, 64, 14), (32, 48, 13), (64, 64, 28), (96, 80, 14), (80, 64, 7), (16, 24, 57)], [2, 4])
    func networkShapes(dims: (Int, Int, Int), tile: Int) {
        let (cin, cout, s) = dims
        var rng = SplitMix64(seed: UInt64(cin + cout + s))
        let g = ConvGeometry(
            batch: 1, inChannels: cin, inHeight: s, inWidth: s, outChannels: cout, outHeight: s,
            outWidth: s, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 1, padLeft: 1,
            dilationH: 1, dilationW: 1, groups: 1)
        let x = rng.floats(g.inImage), wt = rng.floats(g.outChannels * g.patchSize, -0.1, 0.1)
        let slow = ReferenceKernels.conv2d(g, input: x, weight: wt, bias: nil)
        for portable in [false, true] {
            let fast = Fast.winograd(g, tile: tile, x, wt, nil, threads: 2, portable: portable)
            let (ok, msg) = expectClose(fast, slow, atol: 1e-4, "\(g) portable \(portable)")
            #expect(ok, "\(msg)")
        }
    }
}
