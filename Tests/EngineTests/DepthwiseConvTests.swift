import Engine
import Tensors
import TestSupport
import Testing

/// The direct depthwise kernel (`DepthwiseConv`, C `qk_dwconv`): its widest build (AVX-512 on
/// this machine), its AVX2 build and its portable build against the naive twin
/// (``ReferenceKernels/conv2d(_:input:weight:bias:)`` + add + activation).
@Suite struct DepthwiseConvTests {
    /// (batch, channels, multiplier, h, w, k, stride, pad, dilation): MobileNet shapes, odd
    /// sizes, widths around the vector widths (7, 8, 9, 15, 16, 17, 33), channel counts not a
    /// multiple of anything, stride 2 and 3, pads smaller and larger than the kernel's half,
    /// dilation.
    static let shapes: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (1, 32, 1, 112, 112, 3, 1, 1, 1), (1, 96, 1, 112, 112, 3, 2, 1, 1), (2, 17, 1, 15, 15, 3, 1, 1, 1),
        (2, 17, 1, 15, 16, 3, 2, 1, 1), (1, 7, 1, 7, 7, 3, 1, 1, 1), (3, 5, 1, 9, 17, 3, 2, 0, 1),
        (1, 9, 2, 13, 33, 3, 1, 2, 1), (1, 6, 1, 14, 14, 5, 2, 2, 1), (2, 3, 3, 11, 8, 3, 1, 2, 2),
        (1, 4, 1, 10, 31, 3, 3, 1, 1), (1, 2, 1, 1, 1, 3, 1, 1, 1), (1, 5, 1, 6, 40, 7, 1, 3, 1),
        (1, 3, 1, 5, 5, 1, 2, 0, 1), (2, 8, 1, 12, 12, 4, 2, 1, 1),
        // Stride 1 with narrow outputs smaller or larger than the input (an input padded before
        // the conv, as LSQ/DoReFa MobileNetV2 pads before its quantizer; pads beyond "same").
        (2, 6, 1, 16, 16, 3, 1, 0, 1), (1, 5, 2, 9, 9, 3, 1, 0, 1), (1, 4, 1, 8, 12, 3, 1, 2, 1), (1, 3, 1, 10, 9, 5, 1, 1, 1),
    ]

    static func geometry(_ s: (Int, Int, Int, Int, Int, Int, Int, Int, Int)) -> ConvGeometry {
        let (n, c, mult, h, w, k, st, p, d) = s
        let span = d * (k - 1) + 1
        return ConvGeometry(
            batch: n, inChannels: c, inHeight: h, inWidth: w, outChannels: c * mult,
            outHeight: (h + 2 * p - span) / st + 1, outWidth: (w + 2 * p - span) / st + 1, kernelH: k, kernelW: k,
            strideH: st, strideW: st, padTop: p, padLeft: p, dilationH: d, dilationW: d, groups: c)
    }

    static func run(
        _ g: ConvGeometry, _ x: [Float], _ w: [Float], _ b: [Float]?, residual: [Float]?, inPlace: Bool,
        activation: Activation, threads: Int, build: DepthwiseConv.Build
    ) -> [Float] {
        // In place: the residual is the output buffer itself (as the planner fuses it).
        var y = inPlace ? residual! : [Float](repeating: .nan, count: g.batch * g.outImage)
        x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                Fast.withOptional(b) { pb in
                    Fast.withOptional(inPlace ? nil : residual) { pr in
                        y.withUnsafeMutableBufferPointer { py in
                            DepthwiseConv.forward(
                                g, input: px, weight: pw, bias: pb, residual: inPlace ? UnsafeBufferPointer(py) : pr,
                                output: py, activation: activation, threads: threads, build: build)
                        }
                    }
                }
            }
        }
        return y
    }

    @Test(arguments: shapes.indices, DepthwiseConv.Build.allCases)
    func matchesReference(index: Int, build: DepthwiseConv.Build) {
        let g = Self.geometry(Self.shapes[index])
        #expect(g.isDepthwise)
        var rng = SplitMix64(seed: UInt64(index) &* 7919 &+ UInt64(build.rawValue))
        let x = rng.floats(g.batch * g.inImage)
        let w = rng.floats(g.outChannels * g.patchSize)
        let b = rng.floats(g.outChannels)
        let r = rng.floats(g.batch * g.outImage)
        let act: Activation = [.none, .relu, .clamp(lo: 0, hi: 6), .clamp(lo: -0.5, hi: 0.75)][index % 4]
        let conv = ReferenceKernels.conv2d(g, input: x, weight: w, bias: b)
        let plain = ReferenceKernels.activation(conv, act)
        let withResidual = ReferenceKernels.activation(ReferenceKernels.add(conv, r), act)
        for threads in [1, 2] {
            let y = Self.run(g, x, w, b, residual: nil, inPlace: false, activation: act, threads: threads, build: build)
            let yr = Self.run(g, x, w, b, residual: r, inPlace: false, activation: act, threads: threads, build: build)
            let yi = Self.run(g, x, w, b, residual: r, inPlace: true, activation: act, threads: threads, build: build)
            for (got, want, what) in [(y, plain, "plain"), (yr, withResidual, "residual"), (yi, withResidual, "in place")] {
                let (ok, msg) = expectClose(got, want, atol: 1e-5, "\(what) threads \(threads) \(g)")
                #expect(ok, "\(msg)")
            }
        }
    }

    /// No bias, and asymmetric geometry: stride 2 across, 1 down; pad only on the top/left
    /// (the rows and columns past the input that the output needs are zeros).
    @Test(arguments: DepthwiseConv.Build.allCases)
    func asymmetricNoBias(build: DepthwiseConv.Build) {
        let g = ConvGeometry(
            batch: 2, inChannels: 11, inHeight: 10, inWidth: 19, outChannels: 11, outHeight: 10, outWidth: 10,
            kernelH: 3, kernelW: 3, strideH: 1, strideW: 2, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1,
            groups: 11)
        var rng = SplitMix64(seed: 42)
        let x = rng.floats(g.batch * g.inImage)
        let w = rng.floats(g.outChannels * g.patchSize)
        let want = ReferenceKernels.conv2d(g, input: x, weight: w, bias: nil)
        let got = Self.run(g, x, w, nil, residual: nil, inPlace: false, activation: .none, threads: 2, build: build)
        let (ok, msg) = expectClose(got, want, atol: 1e-5, "\(g)")
        #expect(ok, "\(msg)")
    }

    /// NaN in the input reaches exactly the outputs whose window holds it, through the clamp.
    @Test(arguments: DepthwiseConv.Build.allCases)
    func nanPassesTheClamp(build: DepthwiseConv.Build) {
        let g = Self.geometry((1, 3, 1, 9, 9, 3, 1, 1, 1))
        var rng = SplitMix64(seed: 5)
        var x = rng.floats(g.batch * g.inImage)
        x[81 + 4 * 9 + 4] = .nan  // channel 1, (4, 4)
        let w = rng.floats(g.outChannels * g.patchSize)
        let got = Self.run(
            g, x, w, nil, residual: nil, inPlace: false, activation: .clamp(lo: 0, hi: 6), threads: 1, build: build)
        for c in 0..<3 {
            for oy in 0..<9 {
                for ox in 0..<9 {
                    let inWindow = c == 1 && abs(oy - 4) <= 1 && abs(ox - 4) <= 1
                    #expect(got[c * 81 + oy * 9 + ox].isNaN == inWindow, "c \(c) (\(oy), \(ox))")
                }
            }
        }
    }
}
