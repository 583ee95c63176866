import Tensors
import TestSupport
import Testing

@testable import Engine

/// The integer conv kernel (VNNI, AVX2 and portable paths) against its naive twin
/// (``ReferenceKernels/integerConvSums(_:input:weight:padIndex:maxIndex:)``, Int64 sums) bit
/// for bit, and its output transform against the float32 twin and a float64 oracle.
@Suite struct IntegerConvTests {
    struct Case {
        var g: ConvGeometry
        var x: [Float], w: [Float]
        var padIndex: Int, maxIndex: Int
        var pad: Padding2d
    }

    static func randomCase(_ rng: inout SplitMix64, large: Bool) -> Case {
        var (g, pad) = randomConvGeometry(&rng)
        if large {
            pad = Padding2d(1)
            // Deep sums, output channels not a multiple of the 4-row tile, several 64-pixel blocks.
            let cin = [37, 64, 130][rng.int(0...2)]
            g = ConvGeometry(
                batch: rng.int(1...2), inChannels: cin, inHeight: rng.int(9...17), inWidth: rng.int(9...19), outChannels: rng.int(5...11),
                outHeight: 0, outWidth: 0, kernelH: 3, kernelW: 3, strideH: rng.int(1...2), strideW: rng.int(1...2), padTop: 1,
                padLeft: 1, dilationH: 1, dilationW: 1, groups: 1)
            g.outHeight = (g.inHeight + 2 - 3) / g.strideH + 1
            g.outWidth = (g.inWidth + 2 - 3) / g.strideW + 1
        }
        let maxIndex = [1, 3, 15, 127, 255][rng.int(0...4)]
        let wRange = [1, 7, 64, 127][rng.int(0...3)]
        let x = (0..<(g.batch * g.inImage)).map { _ in Float(rng.int(0...maxIndex)) }
        let w = (0..<(g.outChannels * g.patchSize)).map { _ in Float(rng.int(-wRange - 1...wRange)) }
        return Case(g: g, x: x, w: w, padIndex: rng.int(0...maxIndex), maxIndex: maxIndex, pad: pad)
    }

    static func maxAbs(_ w: [Float]) -> Int { Int(w.map { abs($0) }.max() ?? 0) }

    /// A graph with inputs `x` and `r` and integerConv `iconv` of case `c` reading `x`; returns
    /// it and the conv's output value.
    static func convGraph(_ c: Case, scale: [Float], bias: [Float]) -> (Graph, String) {
        let g = c.g
        var graph = Graph()
        graph.addInput("x")
        graph.addInput("r")
        graph.addConstant("w", Tensor(floats: c.w, shape: [g.outChannels, g.groupInChannels, g.kernelH, g.kernelW]))
        graph.addConstant("s", Tensor(floats: scale, shape: [g.outChannels]))
        graph.addConstant("b", Tensor(floats: bias, shape: [g.outChannels]))
        let attrs = IntegerConvAttributes(
            Conv2dAttributes(stride: (g.strideH, g.strideW), padding: c.pad, dilation: (g.dilationH, g.dilationW), groups: g.groups),
            padIndex: c.padIndex, maxIndex: c.maxIndex)
        let conv = graph.add(.integerConv(attrs), name: "iconv", inputs: ["x", "w", "s", "b"])
        return (graph, conv)
    }

    /// The int32 sums of the fast kernel on `path`.
    static func sums(
        _ c: Case, path: IntegerConv.Path, safe: Bool? = nil, threads: Int = 2, grid: GridQuantization? = nil
    ) -> [Int32] {
        var packed = [Float](repeating: 0, count: IntegerConv.packedWeightCount(c.g, path: path))
        c.w.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { IntegerConv.packWeights(c.g, w, into: $0, path: path) }
        }
        var acc = [Int32](repeating: .min, count: c.g.batch * c.g.outImage)
        var y = [Float](repeating: 0, count: acc.count)
        let ones = [Float](repeating: 1, count: c.g.outChannels), zeros = [Float](repeating: 0, count: c.g.outChannels)
        let isSafe = safe ?? IntegerConv.maddubsSafe(maxIndex: c.maxIndex, maxAbsWeight: maxAbs(c.w))
        c.x.withUnsafeBufferPointer { x in
            packed.withUnsafeBufferPointer { pw in
                ones.withUnsafeBufferPointer { s in
                    zeros.withUnsafeBufferPointer { b in
                        y.withUnsafeMutableBufferPointer { py in
                            acc.withUnsafeMutableBufferPointer { pa in
                                IntegerConv.forward(
                                    c.g, padIndex: c.padIndex, maxIndex: c.maxIndex, maddubsSafe: isSafe, input: x, weight: pw, scale: s,
                                    bias: b, residual: nil, output: py, activation: .none, grid: grid, threads: threads, path: path,
                                    sums: pa.baseAddress)
                            }
                        }
                    }
                }
            }
        }
        return acc
    }

    @Test(arguments: Array(0..<40 as Range<UInt64>))
    func sumsMatchNaiveTwin(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let c = Self.randomCase(&rng, large: seed % 4 == 3)
        let want = ReferenceKernels.integerConvSums(c.g, input: c.x, weight: c.w, padIndex: c.padIndex, maxIndex: c.maxIndex).map {
            Int32($0)
        }
        for path in IntegerConv.Path.allCases {
            #expect(Self.sums(c, path: path) == want, "\(path) \(c.g) maxIndex \(c.maxIndex) pad \(c.padIndex)")
        }
    }

    /// Planes up to 70 wide (the direct kernel's vector rows at strides 1 and 2, scalar ones
    /// at 3 and at the borders), with the activation quantizer fused in (`grid`) and without:
    /// every path gives the twin's sums of the quantizer's own indices (`apply`). Inputs hold
    /// level boundaries, NaN and infinities; forms cover one- and two-sided grids, DoReFa's,
    /// per-channel divisors, inclusive lower bounds and both NaN rules.
    @Test(arguments: Array(0..<24 as Range<UInt64>))
    func fusedQuantizerOnWidePlanesMatchesTheTwin(seed: UInt64) {
        var rng = SplitMix64(seed: seed + 500)
        let groups = rng.int(1...2), cig = rng.int(1...9), cog = rng.int(1...9)
        let (k, dilation, stride) = (rng.int(1...3), rng.int(1...2), rng.int(1...3))
        let (h, w) = (rng.int(1...9), [rng.int(1...20), rng.int(16...70), rng.int(33...70)][rng.int(0...2)])
        let pad = Padding2d(top: rng.int(0...2), left: rng.int(0...2), bottom: rng.int(0...2), right: rng.int(0...2))
        let reach = dilation * (k - 1)
        let oh = max(0, h + pad.top + pad.bottom - reach - 1) / stride + 1
        let ow = max(0, w + pad.left + pad.right - reach - 1) / stride + 1
        let g = ConvGeometry(
            batch: rng.int(1...2), inChannels: cig * groups, inHeight: max(h, reach + 1 - pad.top - pad.bottom),
            inWidth: max(w, reach + 1 - pad.left - pad.right),
            outChannels: cog * groups, outHeight: oh, outWidth: ow, kernelH: k, kernelW: k, strideH: stride, strideW: stride,
            padTop: pad.top, padLeft: pad.left, dilationH: dilation, dilationW: dilation, groups: groups)
        let bits = [2, 3, 4, 8][rng.int(0...3)]
        let n = Float((1 << bits) - 1), s = Float(rng.int(1...100)) / 128
        let divisor = rng.int(0...1) == 0 ? [s] : (0..<g.inChannels).map { _ in Float(rng.int(1...100)) / 128 }
        var form: GridQuantization
        switch rng.int(0...2) {
        case 0: form = GridQuantization(divisor: divisor, lo: 0, hi: 1, steps: n)
        case 1: form = GridQuantization(divisor: divisor, lo: -1, hi: 1, centered: true, steps: n - 1)
        default: form = GridQuantization(lo: 0, hi: s, steps: Float(Double(n) / Double(s)))
        }
        form.lowerInclusive = rng.int(0...1) == 0
        form.nanValue = rng.int(0...1) == 0 ? nil : form.lo
        form.indices = true
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, s, -s, 0.5 * s / n, 1.5 * s / n]
        let x = (0..<(g.batch * g.inImage)).map { i -> Float in
            i % 11 == 0 ? specials[(i / 11) % specials.count] : Float(rng.floats(1, -1.5, 1.5)[0]) * s
        }
        let plane = g.inHeight * g.inWidth
        let indices = x.indices.map { form.apply(x[$0], channel: ($0 / plane) % g.inChannels) }
        let maxIndex = Int(n)
        let wRange = [1, 7, 127][rng.int(0...2)]
        let weights = (0..<(g.outChannels * g.patchSize)).map { _ in Float(rng.int(-wRange - 1...wRange)) }
        let c = Case(g: g, x: indices, w: weights, padIndex: rng.int(0...maxIndex), maxIndex: maxIndex, pad: pad)
        let want = ReferenceKernels.integerConvSums(g, input: indices, weight: weights, padIndex: c.padIndex, maxIndex: maxIndex)
            .map { Int32($0) }
        var fused = c
        fused.x = x
        for path in IntegerConv.Path.allCases {
            #expect(Self.sums(c, path: path) == want, "\(path) \(g)")
            #expect(Self.sums(fused, path: path, grid: form) == want, "\(path) fused \(form) \(g)")
        }
    }

    /// `vpmaddubsw` adds two u8 x s8 products in int16: 255 x 127 + 255 x 127 = 64770 and
    /// 255 x -128 + 255 x -128 = -65280 do not fit. Every path still gives the exact sums, and
    /// whole-byte `vpmaddubsw` (forced on) really saturates there, so the split is needed.
    @Test(arguments: [Float(127), -128])
    func saturationEdgeCases(weight: Float) {
        let g = ConvGeometry(
            batch: 2, inChannels: 13, inHeight: 5, inWidth: 21, outChannels: 6, outHeight: 5, outWidth: 21, kernelH: 3, kernelW: 3,
            strideH: 1, strideW: 1, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1, groups: 1)
        var w = [Float](repeating: weight, count: g.outChannels * g.patchSize)
        for i in stride(from: 5, to: w.count, by: 7) { w[i] = weight > 0 ? -128 : 127 }
        let c = Case(g: g, x: [Float](repeating: 255, count: g.batch * g.inImage), w: w, padIndex: 255, maxIndex: 255, pad: Padding2d(1))
        #expect(!IntegerConv.maddubsSafe(maxIndex: 255, maxAbsWeight: Self.maxAbs(w)))
        let want = ReferenceKernels.integerConvSums(g, input: c.x, weight: c.w, padIndex: 255, maxIndex: 255).map { Int32($0) }
        for path in IntegerConv.Path.allCases { #expect(Self.sums(c, path: path) == want, "\(path)") }
        if IntegerConv.bestPath.rawValue >= IntegerConv.Path.avx2.rawValue {
            #expect(Self.sums(c, path: .avx2, safe: true) != want, "whole-byte vpmaddubsw should saturate here")
        }
    }

    /// Inputs outside `0...maxIndex` (negative, too large, fractional, NaN) read as the
    /// clamped, truncated index on every path.
    @Test func outOfRangeInputsAreClamped() {
        var rng = SplitMix64(seed: 3)
        var c = Self.randomCase(&rng, large: false)
        c.maxIndex = 15
        c.padIndex = 2
        let odd: [Float] = [-3, 16, 300, 2.7, .nan, -.infinity, .infinity, 14.999]
        for i in c.x.indices { c.x[i] = i % 3 == 0 ? odd[i % odd.count] : Float(rng.int(0...15)) }
        let want = ReferenceKernels.integerConvSums(c.g, input: c.x, weight: c.w, padIndex: 2, maxIndex: 15).map { Int32($0) }
        for path in IntegerConv.Path.allCases { #expect(Self.sums(c, path: path) == want, "\(path)") }
    }

    /// The whole op through a plan (packing, residual add and ReLU fused) against the
    /// reference interpreter bit for bit, and against a float64 oracle.
    @Test(arguments: Array(0..<12 as Range<UInt64>))
    func planMatchesTwinAndFloat64Oracle(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed + 100)
        let c = Self.randomCase(&rng, large: seed % 3 == 2)
        let g = c.g
        let scale = rng.floats(g.outChannels, 1e-3, 0.05), bias = rng.floats(g.outChannels, -1, 1)
        var (graph, conv) = Self.convGraph(c, scale: scale, bias: bias)
        let sum = graph.add(.add, name: "sum", inputs: [conv, "r"])
        let y = graph.add(.relu, name: "relu", inputs: [sum])
        graph.markOutput(y)
        let outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        let x = Tensor(floats: c.x, shape: [g.batch, g.inChannels, g.inHeight, g.inWidth])
        let r = Tensor(floats: rng.floats(outShape.reduce(1, *), -0.5, 0.5), shape: outShape)
        let plan = try Executor(graph: graph).plan(for: ["x": x.shape, "r": r.shape])
        #expect(plan.stepDescriptions.contains { $0.hasPrefix("integerConv [iconv + sum + relu]") }, "\(plan.stepDescriptions)")
        let fast = try Executor(graph: graph).run(["x": x, "r": r])[y]!.floats()
        let slow = try ReferenceExecutor.run(graph, inputs: ["x": x, "r": r])[y]!.floats()
        #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern))

        // float64 oracle: the real-valued conv of the indices, rescaled.
        let sums = ReferenceKernels.integerConvSums(g, input: c.x, weight: c.w, padIndex: c.padIndex, maxIndex: c.maxIndex)
        let rv = r.floats()
        for i in sums.indices {
            let m = (i / g.outPixels) % g.outChannels
            let want = max(0, Double(sums[i]) * Double(scale[m]) + Double(bias[m]) + Double(rv[i]))
            #expect(abs(Double(fast[i]) - want) <= 1e-6 * max(1, abs(want)), "[\(i)] \(fast[i]) vs \(want)")
        }
    }

    /// A value-form quantizer after the conv (what a float depthwise conv reads) fused into its
    /// output transform, after a residual add (even seeds) or with a constant pad before it
    /// (odd seeds: the output is the padded plane, its border the quantized pad value): the
    /// plan absorbs it, and on every path the result is the reference interpreter's (which
    /// calls the quantize function itself) bit for bit.
    @Test(arguments: Array(0..<12 as Range<UInt64>))
    func outputQuantizerIsFusedIntoTheTransform(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed + 900)
        let c = Self.randomCase(&rng, large: seed % 4 >= 2)
        let g = c.g
        let scale = rng.floats(g.outChannels, 1e-3, 0.05), bias = rng.floats(g.outChannels, -1, 1)
        var form = GridQuantizeTests.randomForm(&rng, channels: g.outChannels)
        if seed % 3 == 0 { form.gain = rng.floats(g.outChannels, 0.5, 1.5) }
        let padded = seed % 2 == 1
        let pad =
            padded ? Padding2d(top: rng.int(0...2), left: rng.int(0...2), bottom: rng.int(0...2), right: rng.int(1...2)) : Padding2d(0)
        let padValue = padded ? rng.floats(1, -0.5, 0.5)[0] : 0
        var (graph, conv) = Self.convGraph(c, scale: scale, bias: bias)
        var v = padded ? conv : graph.add(.add, name: "sum", inputs: [conv, "r"])
        v = graph.add(.relu, name: "relu", inputs: [v])
        if padded { v = graph.add(.pad(Pad2dAttributes(pad, value: padValue)), name: "pad", inputs: [v]) }
        let y = graph.add(.quantize(QuantizeAttributes(GridQuantizeTests.Grid(form: form))), name: "q", inputs: [v])
        graph.markOutput(y)
        let outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        let x = Tensor(floats: c.x, shape: [g.batch, g.inChannels, g.inHeight, g.inWidth])
        let r = Tensor(floats: rng.floats(outShape.reduce(1, *), -0.5, 0.5), shape: outShape)
        let plan = try Executor(graph: graph).plan(for: ["x": x.shape, "r": r.shape])
        let fused = padded ? "integerConv [iconv + relu + pad + q]" : "integerConv [iconv + sum + relu + q]"
        #expect(plan.stepDescriptions.contains { $0.hasPrefix(fused) }, "\(plan.stepDescriptions)")
        let want = try ReferenceExecutor.run(graph, inputs: ["x": x, "r": r])[y]!.floats()
        let fast = try Executor(graph: graph).run(["x": x, "r": r])[y]!.floats()
        #expect(fast.map(\.bitPattern) == want.map(\.bitPattern))
        // Each path through the kernel entry point.
        let quantizer = IntegerConv.OutputQuantizer(form, padding: pad, padValue: padValue)
        let rv = r.floats()
        for path in IntegerConv.Path.allCases {
            var packed = [Float](repeating: 0, count: IntegerConv.packedWeightCount(g, path: path))
            c.w.withUnsafeBufferPointer { w in packed.withUnsafeMutableBufferPointer { IntegerConv.packWeights(g, w, into: $0, path: path) }
            }
            var out = [Float](repeating: .nan, count: want.count)
            c.x.withUnsafeBufferPointer { px in
                packed.withUnsafeBufferPointer { pw in
                    scale.withUnsafeBufferPointer { ps in
                        bias.withUnsafeBufferPointer { pb in
                            rv.withUnsafeBufferPointer { pr in
                                out.withUnsafeMutableBufferPointer { py in
                                    IntegerConv.forward(
                                        g, padIndex: c.padIndex, maxIndex: c.maxIndex,
                                        maddubsSafe: IntegerConv.maddubsSafe(maxIndex: c.maxIndex, maxAbsWeight: Self.maxAbs(c.w)),
                                        input: px,
                                        weight: pw, scale: ps, bias: pb, residual: padded ? nil : pr, output: py, activation: .relu,
                                        outputQuantizer: quantizer, threads: 2, path: path)
                                }
                            }
                        }
                    }
                }
            }
            #expect(out.map(\.bitPattern) == want.map(\.bitPattern), "\(path)")
        }
    }

    @Test func badWeightsAndIndicesAreErrors() throws {
        var g = Graph()
        g.addInput("x")
        g.addConstant("w", Tensor(floats: [0.5, 1, 2, 3], shape: [1, 1, 2, 2]))
        g.addConstant("s", Tensor(floats: [1], shape: [1]))
        g.addConstant("b", Tensor(floats: [0], shape: [1]))
        g.markOutput(g.add(.integerConv(IntegerConvAttributes(Conv2dAttributes())), name: "c", inputs: ["x", "w", "s", "b"]))
        #expect(throws: InferenceError.self) { try Executor(graph: g).plan(for: ["x": [1, 1, 3, 3]]) }
        var h = Graph()
        h.addInput("x")
        h.addConstant("w", Tensor(floats: [1, 1, 2, 3], shape: [1, 1, 2, 2]))
        h.addConstant("s", Tensor(floats: [1], shape: [1]))
        h.addConstant("b", Tensor(floats: [0], shape: [1]))
        h.markOutput(
            h.add(
                .integerConv(IntegerConvAttributes(Conv2dAttributes(), padIndex: 9, maxIndex: 3)), name: "c", inputs: ["x", "w", "s", "b"]))
        #expect(throws: InferenceError.self) { try Executor(graph: h).plan(for: ["x": [1, 1, 3, 3]]) }
        _ = h.replaceOp(ofNode: "c", with: .integerConv(IntegerConvAttributes(Conv2dAttributes(), padIndex: 1, maxIndex: 3)))
        #expect(throws: Never.self) { try Executor(graph: h).plan(for: ["x": [1, 1, 3, 3]]) }
    }
}
