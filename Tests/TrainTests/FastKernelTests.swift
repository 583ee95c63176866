import Engine
import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// The fast (float32, multi-threaded) training kernels against their naive twins, at odd
/// sizes: groups, depthwise, strides, dilation, asymmetric padding, batch > 1 (more images
/// than one weight-gradient block), 1x1 pointwise convs; and thread-count independence.
@Suite struct FastKernelTests {
    /// A random geometry of ``GradientTests/geometry(_:)`` with a batch of 1...19 images
    /// (across the 8-image blocks of the weight gradient), or a pointwise (1x1, stride 1,
    /// unpadded) conv.
    static func geometry(_ rng: inout SplitMix64, pointwise: Bool) -> (ConvGeometry, [Int], [Int]) {
        while true {
            let groups = [1, 1, 2, 3][rng.int(0...3)]
            let cig = rng.int(1...5), cog = rng.int(1...7)
            let (k, s, d) = pointwise ? (1, 1, 1) : (rng.int(1...3), rng.int(1...2), rng.int(1...2))
            let pad =
                pointwise
                ? Padding2d(top: 0, left: 0, bottom: 0, right: 0)
                : Padding2d(top: rng.int(0...2), left: rng.int(0...2), bottom: rng.int(0...2), right: rng.int(0...2))
            let (h, w) = (rng.int(2...11), rng.int(2...11))
            var attrs = Conv2dAttributes(stride: s, padding: 0, dilation: d, groups: groups)
            attrs.padding = pad
            let xs = [rng.int(1...19), cig * groups, h, w], ws = [cog * groups, cig, k, k]
            guard let g = try? ShapeInference.conv(attrs, input: xs, weight: ws, bias: nil) else { continue }
            return (g, xs, ws)
        }
    }

    @Test(arguments: Array(0..<32 as Range<UInt64>))
    func fastConvMatchesTheNaiveTwin(seed: UInt64) throws {
        var rng = SplitMix64(seed: 1000 + seed)
        let (g, xs, ws) = Self.geometry(&rng, pointwise: seed % 4 == 3)
        let x = rng.floats(xs.reduce(1, *)), w = rng.floats(ws.reduce(1, *)), b = rng.floats(g.outChannels)
        let y = FastConvGradient.forward(g, x: x, w: w, b: b, threads: 2)
        let ref = ReferenceKernels.conv2d(g, input: x, weight: w, bias: b)
        #expect(y.count == ref.count)
        #expect(Difference(y, ref).maxAbs <= 1e-5, "forward \(g)")
        let dy = rng.floats(y.count)
        let fast = FastConvGradient.backward(g, x: x, w: w, dy: dy, inputGradient: true, threads: 2)
        let slow = ReferenceConvGradient.backward(g, x: x, w: w, dy: dy)
        // dw sums batch * oH * oW products of magnitude <= 1: float32 within ~1e-6 of that count.
        let tolerance = 1e-6 * Float(g.batch * g.outPixels) + 1e-5
        #expect(Difference(fast.dx!, slow.dx).maxAbs <= 1e-5, "dx \(g)")
        #expect(Difference(fast.dw, slow.dw).maxAbs <= tolerance, "dw \(g)")
        #expect(Difference(fast.db, slow.db).maxAbs <= 1e-5, "db \(g)")
        let noInput = FastConvGradient.backward(g, x: x, w: w, dy: dy, inputGradient: false, biasGradient: false, threads: 2)
        #expect(noInput.dx == nil && noInput.dw == fast.dw && noInput.db.isEmpty)
    }

    /// A random stride-1 geometry, the one ``StrideOneConv`` takes: 1x1 to 5x5 taps,
    /// dilation, asymmetric padding from none (a valid conv, input rows wider than output
    /// rows) to more than the taps' extent, groups, widths below, at and across the 16-lane
    /// vectors, channel counts off the kernel's 4 x 6 tile; `same` pads to an output as large
    /// as the input (vectors then run across rows).
    static func strideOneGeometry(_ rng: inout SplitMix64, same: Bool, real: Bool = false) -> (ConvGeometry, [Int], [Int]) {
        while true {
            let groups = real ? 1 : [1, 1, 2, 3][rng.int(0...3)]
            let (cig, cog) = real ? (16, 16) : (rng.int(1...9), rng.int(1...9))
            let k = real ? 3 : [1, 3, 3, 5][rng.int(0...3)], d = real ? 1 : rng.int(1...2)
            let extent = d * (k - 1)
            let (top, left) = (rng.int(0...extent), rng.int(0...extent))
            var attrs = Conv2dAttributes(stride: 1, padding: 0, dilation: d, groups: groups)
            attrs.padding =
                same
                ? Padding2d(top: top, left: left, bottom: extent - top, right: extent - left)
                : Padding2d(top: top, left: left, bottom: rng.int(0...extent + 1), right: rng.int(0...extent + 1))
            let (h, w) = real ? (32, 32) : (rng.int(1...12), [1, 3, 7, 8, 15, 16, 17, 33][rng.int(0...7)])
            let xs = [real ? 9 : rng.int(1...19), cig * groups, h, w], ws = [cog * groups, cig, k, k]
            guard let g = try? ShapeInference.conv(attrs, input: xs, weight: ws, bias: nil) else { continue }
            return (g, xs, ws)
        }
    }

    /// Stride-1 convs straight from the input rows (``StrideOneConv``, AVX-512: the forward,
    /// the weight gradient and the input gradient as the transposed conv) against the naive
    /// twins, and at 1 and 3 threads bit-identical; seed 0 at a real ResNet-20 layer size (16
    /// channels, 32 x 32, more than one block of images).
    @Test(arguments: Array(0..<32 as Range<UInt64>))
    func strideOneWeightGradientMatchesTheNaiveTwin(seed: UInt64) throws {
        var rng = SplitMix64(seed: 5000 + seed)
        let (g, xs, ws) = Self.strideOneGeometry(&rng, same: seed % 2 == 0, real: seed == 0)
        if seed % 2 == 0 { #expect(g.outHeight == g.inHeight && g.outWidth == g.inWidth) }
        if StrideOneConv.isAvailable { #expect(StrideOneConv(g, imagesPerBlock: 8) != nil, "\(g)") }
        let x = rng.floats(xs.reduce(1, *)), w = rng.floats(ws.reduce(1, *)), dy = rng.floats(g.batch * g.outImage)
        let b = rng.floats(g.outChannels)
        let y = FastConvGradient.forward(g, x: x, w: w, b: b, threads: 2)
        // Sums of patchSize products of magnitude <= 1 in float32, in another order than the twin's.
        let sumTolerance = 1e-7 * Float(g.patchSize) + 1e-5
        #expect(Difference(y, ReferenceKernels.conv2d(g, input: x, weight: w, bias: b)).maxAbs <= sumTolerance, "forward \(g)")
        #expect(FastConvGradient.forward(g, x: x, w: w, b: b, threads: 3) == y)
        let fast = FastConvGradient.backward(g, x: x, w: w, dy: dy, inputGradient: true, threads: 2)
        let slow = ReferenceConvGradient.backward(g, x: x, w: w, dy: dy)
        let tolerance = 1e-6 * Float(g.batch * g.outPixels) + 1e-5
        #expect(Difference(fast.dw, slow.dw).maxAbs <= tolerance, "dw \(g)")
        #expect(Difference(fast.dx!, slow.dx).maxAbs <= 1e-7 * Float(g.outChannels * g.kernelH * g.kernelW) + 1e-5, "dx \(g)")
        for t in [1, 3] {
            #expect(FastConvGradient.backward(g, x: x, w: w, dy: dy, inputGradient: false, threads: t).dw == fast.dw)
        }
    }

    /// Every result is bit-identical at 1, 2 and 3 threads.
    @Test(arguments: Array(0..<6 as Range<UInt64>))
    func fastConvDoesNotDependOnTheThreadCount(seed: UInt64) {
        var rng = SplitMix64(seed: 2000 + seed)
        let (g, xs, ws) = Self.geometry(&rng, pointwise: seed % 3 == 2)
        let x = rng.floats(xs.reduce(1, *)), w = rng.floats(ws.reduce(1, *))
        let y1 = FastConvGradient.forward(g, x: x, w: w, b: nil, threads: 1)
        let dy = rng.floats(y1.count)
        let r1 = FastConvGradient.backward(g, x: x, w: w, dy: dy, inputGradient: true, threads: 1)
        for t in [2, 3] {
            #expect(FastConvGradient.forward(g, x: x, w: w, b: nil, threads: t) == y1)
            let r = FastConvGradient.backward(g, x: x, w: w, dy: dy, inputGradient: true, threads: t)
            #expect(r.dx == r1.dx && r.dw == r1.dw && r.db == r1.db, "\(t) threads \(g)")
        }
    }

    /// Batch norm in float32 lanes (within rounding of the double twins) and activations split
    /// over threads (bit-identical to the single-threaded ``LayerGradients`` twins), at odd
    /// channel counts and planes, batch > 1.
    @Test(arguments: Array(0..<8 as Range<UInt64>))
    func parallelLayersMatchTheirTwins(seed: UInt64) {
        var rng = SplitMix64(seed: 3000 + seed)
        let (batch, channels, inner) = (rng.int(1...5), rng.int(1...9), rng.int(1...37))
        let n = batch * channels * inner
        let x = rng.floats(n, -2, 2), dy = rng.floats(n)
        let gamma = rng.floats(channels, 0.5, 1.5), beta = rng.floats(channels)
        let a = LayerGradients.batchNormForward(x, batch: batch, channels: channels, inner: inner, gamma: gamma, beta: beta, epsilon: 1e-5)
        let ga = LayerGradients.batchNormBackward(
            x, dy: dy, batch: batch, channels: channels, inner: inner, gamma: gamma, statistics: a.statistics, epsilon: 1e-5)
        checkFastBatchNorm(x, dy, batch: batch, channels: channels, inner: inner, gamma: gamma, beta: beta, a, ga)

        // Boundary values included: exact zeros, the clamp bounds, NaN.
        var xb = x
        for i in stride(from: 0, to: n, by: 5) { xb[i] = [0, -0.0, 1, -1, .nan][i / 5 % 5] }
        let relu = LayerGradients.activationBackward(xb, dy: dy) { $0 > 0 }
        #expect(ParallelLayerGradients.activationBackward(xb, dy: dy, lo: 0, hi: .infinity, strict: true, threads: 3) == relu)
        let hard = LayerGradients.activationBackward(xb, dy: dy) { $0 > -1 && $0 < 1 }
        #expect(ParallelLayerGradients.activationBackward(xb, dy: dy, lo: -1, hi: 1, strict: true, threads: 3) == hard)
        let clamp = LayerGradients.activationBackward(xb, dy: dy) { $0 >= -1 && $0 <= 1 }
        #expect(ParallelLayerGradients.activationBackward(xb, dy: dy, lo: -1, hi: 1, strict: false, threads: 3) == clamp)
        let same: ([Float], [Float]) -> Bool = { a, b in
            a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
        }
        #expect(same(ParallelLayerGradients.clamp(xb, lo: 0, hi: .infinity, threads: 3), ReferenceKernels.activation(xb, .relu)))
        #expect(same(ParallelLayerGradients.clamp(xb, lo: -1, hi: 1, threads: 3), ReferenceKernels.activation(xb, .clamp(lo: -1, hi: 1))))

        // Long enough for several thread ranges (at least 2^14 elements each), whose starts
        // and ends are not multiples of the 16-lane vector loop.
        let long = 40_003 + Int(seed)
        var xl = rng.floats(long, -2, 2)
        let dyl = rng.floats(long)
        for i in stride(from: 0, to: long, by: 7) { xl[i] = [0, -0.0, 1, -1, .nan][i / 7 % 5] }
        #expect(
            ParallelLayerGradients.activationBackward(xl, dy: dyl, lo: 0, hi: .infinity, strict: true, threads: 3)
                == LayerGradients.activationBackward(xl, dy: dyl) { $0 > 0 })
        #expect(
            ParallelLayerGradients.activationBackward(xl, dy: dyl, lo: -1, hi: 1, strict: false, threads: 2)
                == LayerGradients.activationBackward(xl, dy: dyl) { $0 >= -1 && $0 <= 1 })
        #expect(same(ParallelLayerGradients.clamp(xl, lo: 0, hi: .infinity, threads: 3), ReferenceKernels.activation(xl, .relu)))
    }

    /// ``FastBatchNorm`` (float32 lanes) against the double twins `a` and `ga`: within float32
    /// rounding of them, and bit-identical at 1 and 3 threads.
    func checkFastBatchNorm(
        _ x: [Float], _ dy: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float], beta: [Float],
        _ a: (y: [Float], statistics: LayerGradients.BatchStatistics),
        _ ga: (dx: [Float], dgamma: [Float], dbeta: [Float])
    ) {
        let count = Float(batch * inner)
        var runs: [(y: [Float], dx: [Float], dgamma: [Float], dbeta: [Float])] = []
        for t in [1, 3] {
            let b = FastBatchNorm.forward(
                x, batch: batch, channels: channels, inner: inner, gamma: gamma, beta: beta, epsilon: 1e-5, threads: t)
            for c in 0..<channels {
                #expect(abs(b.statistics.mean[c] - a.statistics.mean[c]) <= 1e-6 * (1 + abs(a.statistics.mean[c])))
                #expect(abs(b.statistics.variance[c] - a.statistics.variance[c]) <= 1e-5 * (1e-3 + a.statistics.variance[c]))
            }
            #expect(Difference(b.y, a.y).maxAbs <= 1e-4, "y")
            let gb = FastBatchNorm.backward(
                x, dy: dy, batch: batch, channels: channels, inner: inner, gamma: gamma, statistics: a.statistics,
                epsilon: 1e-5, threads: t)
            #expect(Difference(gb.dx, ga.dx).maxAbs <= 1e-4, "dx")
            #expect(Difference(gb.dgamma, ga.dgamma).maxAbs <= 1e-5 * count, "dgamma")
            #expect(Difference(gb.dbeta, ga.dbeta).maxAbs <= 1e-6 * count, "dbeta")
            runs.append((b.y, gb.dx, gb.dgamma, gb.dbeta))
        }
        #expect(runs[0].y == runs[1].y && runs[0].dx == runs[1].dx && runs[0].dgamma == runs[1].dgamma)
    }

    /// ``FastBatchNorm`` at a real layer size (128 images of 16 x 32 x 32, offset and scaled
    /// activations, as after a conv) against the double twins.
    @Test func fastBatchNormAtRealSize() {
        var rng = SplitMix64(seed: 3100)
        let (batch, channels, inner) = (128, 16, 1024)
        var x = rng.floats(batch * channels * inner, -2, 2)
        for i in x.indices { x[i] = x[i] * Float(1 + i / inner % channels) + 3 }  // per-channel scale, mean 3
        let dy = rng.floats(x.count)
        let gamma = rng.floats(channels, 0.5, 1.5), beta = rng.floats(channels)
        let a = LayerGradients.batchNormForward(x, batch: batch, channels: channels, inner: inner, gamma: gamma, beta: beta, epsilon: 1e-5)
        let ga = LayerGradients.batchNormBackward(
            x, dy: dy, batch: batch, channels: channels, inner: inner, gamma: gamma, statistics: a.statistics, epsilon: 1e-5)
        checkFastBatchNorm(x, dy, batch: batch, channels: channels, inner: inner, gamma: gamma, beta: beta, a, ga)
    }

    /// The vector scan for a non-finite gradient finds what the scalar scan finds: nothing in
    /// finite data (huge values and zeros included), else the first infinity or NaN, in the
    /// vector body or the tail.
    @Test func firstNonFiniteMatchesTheScalarScan() {
        var rng = SplitMix64(seed: 3200)
        for n in [0, 1, 15, 16, 17, 100, 1003] {
            var a = rng.floats(n)
            if n > 2 { (a[0], a[1]) = (.greatestFiniteMagnitude, -0.0) }
            #expect(ParallelCopies.firstNonFinite(a) == nil)
            for bad: Float in [.infinity, -.infinity, .nan] where n > 0 {
                for at in Set([0, n / 2, n - 1]) {
                    var b = a
                    b[at] = bad
                    let got = ParallelCopies.firstNonFinite(b)
                    #expect(got != nil && (bad.isNaN ? got!.isNaN : got == bad), "n \(n) at \(at)")
                }
            }
        }
    }

    /// Padding (asymmetric, zero-sized sides), its backward, addition and in-place gradient
    /// accumulation: bit-identical to their twins at odd sizes and 1-3 threads.
    @Test(arguments: Array(0..<6 as Range<UInt64>))
    func parallelCopiesMatchTheirTwins(seed: UInt64) {
        var rng = SplitMix64(seed: 4000 + seed)
        let (planes, h, w) = (rng.int(1...40), rng.int(1...9), rng.int(1...9))
        let p = Padding2d(top: rng.int(0...2), left: rng.int(0...2), bottom: rng.int(0...2), right: rng.int(0...2))
        let x = rng.floats(planes * h * w)
        let value: Float = seed % 2 == 0 ? 0 : -1.5
        let ref = ReferenceKernels.pad(x, planes: planes, height: h, width: w, padding: p, value: value)
        let dy = rng.floats(ref.count)
        let dref = LayerGradients.padBackward(dy: dy, planes: planes, height: h, width: w, padding: p)
        let a = rng.floats(40_000), b = rng.floats(40_000)
        for t in 1...3 {
            #expect(ParallelCopies.pad(x, planes: planes, height: h, width: w, padding: p, value: value, threads: t) == ref)
            #expect(ParallelCopies.padBackward(dy: dy, planes: planes, height: h, width: w, padding: p, threads: t) == dref)
            #expect(ParallelCopies.add(a, b, threads: t) == ReferenceKernels.add(a, b))
            var acc = a
            ParallelCopies.addInPlace(&acc, b, threads: t)
            #expect(acc == ReferenceKernels.add(a, b))
        }
    }
}
