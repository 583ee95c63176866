import Engine
import Tensors
import TestSupport
import Testing

/// The bit-packed binary / ternary convolution (`Op.binaryConv2d`): every code path this CPU
/// runs (forced) against the naive twin and against a float convolution of the codes,
/// integers compared exactly (docs/engine.md, "Binary and ternary convolutions";
/// ../shared/spec/bitpacking.md §8.3).
@Suite struct BinaryConvTests {
    static let paths = BitKernelPath.supported
    static let channelCounts = [1, 3, 63, 64, 65, 130]

    // MARK: - Harness

    /// The fast kernel on arrays (layout, packing, forward), outputs starting as NaN.
    static func fast(
        _ a: BinaryConv2dAttributes, _ x: [Float], shape: [Int], residual: [Float]? = nil, residualInPlace: Bool = false,
        activation: Activation = .none, path: BitKernelPath, threads: Int
    ) throws -> [Float] {
        let g = try ShapeInference.binaryConv(a, input: shape)
        let l = BinaryConv.layout(g, a, path: path)
        var packed = [Float](repeating: 0, count: l.floatCount)
        packed.withUnsafeMutableBufferPointer { BinaryConv.pack(a, l, multiplier: a.multiplier, bias: a.bias, into: $0) }
        var y = residualInPlace ? residual! : [Float](repeating: .nan, count: g.batch * g.outImage)
        var scratch = [Float](repeating: .nan, count: l.scratchCount)
        x.withUnsafeBufferPointer { px in
            packed.withUnsafeBufferPointer { pw in
                Fast.withOptional(residualInPlace ? nil : residual) { pr in
                    y.withUnsafeMutableBufferPointer { py in
                        scratch.withUnsafeMutableBufferPointer { ps in
                            BinaryConv.forward(
                                l, input: px, weights: pw, residual: residualInPlace ? UnsafeBufferPointer(py) : pr, output: py,
                                scratch: ps, activation: activation, threads: threads)
                        }
                    }
                }
            }
        }
        return y
    }

    /// A random layer: geometry, encodings, pad code, weights; the input codes spread over
    /// every level (and exact ties at the rounding and sign boundaries).
    struct Case: CustomStringConvertible {
        var attributes: BinaryConv2dAttributes
        var shape: [Int]
        var x: [Float]
        var description: String {
            let a = attributes, w = a.weights
            return "x\(shape) w[\(w.outChannels),\(w.groupInChannels),\(w.kernelH),\(w.kernelW)] \(w.encoding) in \(a.input) "
                + "pad \(a.conv.padding.top),\(a.conv.padding.left),\(a.conv.padding.bottom),\(a.conv.padding.right) code \(a.padCode) "
                + "stride \(a.conv.stride) dil \(a.conv.dilation) groups \(a.conv.groups)"
        }
    }

    static func randomInput(_ input: BitActivationEncoding, count: Int, _ rng: inout SplitMix64) -> [Float] {
        switch input {
        case .sign:
            // Ties: +0, -0 and NaN are +1; tiny negatives are -1.
            return (0..<count).map { _ in
                switch rng.int(0...9) {
                case 0: return 0
                case 1: return -0.0
                case 2: return -Float.leastNonzeroMagnitude
                default: return rng.floats(1)[0]
                }
            }
        case .ternary(let step), .unsigned(_, let step):
            let r = input.codeRange
            return (0..<count).map { _ in
                Float(rng.int((r.lowerBound - 1)...(r.upperBound + 1))) * step + rng.floats(1, -0.4, 0.4)[0] * step
            }
        }
    }

    static func randomCase(
        _ rng: inout SplitMix64, input forced: BitActivationEncoding? = nil, weights forcedW: BitWeightEncoding? = nil
    )
        -> Case
    {
        while true {
            let groups = [1, 1, 2, 3][rng.int(0...3)]
            let cig = channelCounts[rng.int(0...(channelCounts.count - 1))]
            let cog = rng.int(1...9)
            let (kh, kw) = (rng.int(1...3), rng.int(1...3))
            let (sh, sw) = (rng.int(1...2), rng.int(1...2))
            let (dh, dw) = (rng.int(1...2), rng.int(1...2))
            let (h, w) = (rng.int(1...9) | 1, rng.int(1...11) | 1)  // odd
            let pad = Padding2d(top: rng.int(0...2), left: rng.int(0...2), bottom: rng.int(0...2), right: rng.int(0...2))
            let batch = rng.int(1...2)
            guard h + pad.top + pad.bottom >= dh * (kh - 1) + 1, w + pad.left + pad.right >= dw * (kw - 1) + 1 else { continue }
            let input =
                forced
                ?? [
                    .sign, .sign, .ternary(step: 0.5), .unsigned(levels: 1, step: 0.25), .unsigned(levels: 2, step: 0.5),
                    .unsigned(levels: 3, step: 1), .unsigned(levels: 5, step: 0.125),
                ][rng.int(0...6)]
            let enc = forcedW ?? (rng.bool() ? .binary : .ternary)
            let wcount = cog * groups * cig * kh * kw
            let codes: [Float] = (0..<wcount).map { _ in enc == .binary ? (rng.bool() ? 1 : -1) : Float(rng.int(-1...1)) }
            let weights = try! PackedConvWeights(codes: codes, shape: [cog * groups, cig, kh, kw], encoding: enc)
            let r = input.codeRange
            let padCode = input == .sign ? [-1, 0, 1][rng.int(0...2)] : rng.int(r)
            let conv = Conv2dAttributes(stride: (sh, sw), padding: pad, dilation: (dh, dw), groups: groups)
            // A third of the coded cases take a fused quantizer: random thresholds (one may be
            // -inf or never reached), and inputs that sit exactly on them.
            var thresholds: [Float]?
            if input != .sign, rng.int(0...2) == 0 {
                let step: Float = if case .ternary(let s) = input { s } else if case .unsigned(_, let s) = input { s } else { 1 }
                var t = rng.floats(r.count - 1, Float(r.lowerBound - 1) * step, Float(r.upperBound + 1) * step).sorted()
                switch rng.int(0...3) {
                case 0: t[0] = -.infinity
                case 1: t[t.count - 1] = .nan
                default: break
                }
                thresholds = t
            }
            let a = BinaryConv2dAttributes(weights: weights, input: input, conv: conv, padCode: padCode, thresholds: thresholds)
            let shape = [batch, cig * groups, h, w]
            var x = randomInput(input, count: shape.reduce(1, *), &rng)
            if let t = thresholds?.filter(\.isFinite), !t.isEmpty {
                for i in x.indices where rng.int(0...9) == 0 { x[i] = t[rng.int(0...(t.count - 1))] }
            }
            return Case(attributes: a, shape: shape, x: x)
        }
    }

    /// The float oracle: the input's codes, padded with the pad code (`Op.pad`), convolved in
    /// float (Double sums) with the weight codes. On codes every sum is an exact integer.
    static func floatOracle(_ c: Case) throws -> [Float] {
        let a = c.attributes
        let codes = c.x.map { Float(a.code($0)) }
        let p = a.conv.padding
        let padded = ReferenceKernels.pad(
            codes, planes: c.shape[0] * c.shape[1], height: c.shape[2], width: c.shape[3], padding: p, value: Float(a.padCode))
        let pshape = [c.shape[0], c.shape[1], c.shape[2] + p.top + p.bottom, c.shape[3] + p.left + p.right]
        let unpadded = Conv2dAttributes(stride: a.conv.stride, padding: Padding2d(0), dilation: a.conv.dilation, groups: a.conv.groups)
        let g = try ShapeInference.conv(unpadded, input: pshape, weight: a.weightShape, bias: nil)
        return ReferenceKernels.conv2d(g, input: padded, weight: a.weights.codes(), bias: nil)
    }

    // MARK: - Padding classes

    /// The zero-padding correction looks each pixel up by padding class: rows and columns of a
    /// 3x3 pad-1 conv fall into top/inside/bottom and left/inside/right (class 0 inside), and
    /// a stride-2 pad-1 conv on an even size has no bottom or right class.
    @Test func paddingClassesSplitRowsAndColumnsByTheirOutsideTaps() {
        func geometry(_ h: Int, _ w: Int, stride: Int, pad: Int, out: (Int, Int)) -> ConvGeometry {
            ConvGeometry(
                batch: 1, inChannels: 1, inHeight: h, inWidth: w, outChannels: 1, outHeight: out.0, outWidth: out.1,
                kernelH: 3, kernelW: 3, strideH: stride, strideW: stride, padTop: pad, padLeft: pad, dilationH: 1,
                dilationW: 1, groups: 1)
        }
        let same = BinaryConv.paddingClasses(geometry(5, 4, stride: 1, pad: 1, out: (5, 4)))
        #expect(same.y.patterns == [[false, false, false], [true, false, false], [false, false, true]])
        #expect(same.y.classOf == [1, 0, 0, 0, 2])
        #expect(same.x.classOf == [1, 0, 0, 2])
        let strided = BinaryConv.paddingClasses(geometry(6, 6, stride: 2, pad: 1, out: (3, 3)))
        #expect(strided.y.patterns == [[false, false, false], [true, false, false]])
        #expect(strided.x.classOf == [1, 0, 0])
        // A 1x1 image: every tap but the centre is outside, and no position is inside.
        let tiny = BinaryConv.paddingClasses(geometry(1, 1, stride: 1, pad: 1, out: (1, 1)))
        #expect(tiny.y.patterns == [[false, false, false], [true, false, true]] && tiny.y.classOf == [1])
    }

    // MARK: - Packing

    @Test(arguments: paths)
    func signPackingMatchesTheNaivePackerWithTies(path: BitKernelPath) {
        var rng = SplitMix64(seed: 11)
        let ties: [Float] = [0, -0.0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1, -1]
        for channels in [1, 7, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000] {
            for pixels in [1, 7, 8, 9, 23] {
                let x = (0..<(channels * pixels)).map { _ in rng.int(0...2) == 0 ? ties[rng.int(0...(ties.count - 1))] : rng.floats(1)[0] }
                let fast = BinaryConv.packImage(x, channels: channels, pixels: pixels, input: .sign, path: path)
                let slow = ReferenceKernels.packBits(x, channels: channels, pixels: pixels) { $0 < 0 }
                #expect(fast == slow, "\(path) channels \(channels) pixels \(pixels)")
                // Unpacking gives the sign codes back; the bits past the last channel are 0.
                let words = (channels + 63) / 64
                var back = [Float](repeating: 0, count: x.count)
                for c in 0..<channels {
                    for p in 0..<pixels { back[c * pixels + p] = fast[p * words + c / 64] >> UInt64(c % 64) & 1 == 1 ? -1 : 1 }
                }
                #expect(back == x.map { Float(BitActivationEncoding.sign.code($0)) })
                if channels % 64 != 0 {
                    for p in 0..<pixels { #expect(fast[p * words + words - 1] >> UInt64(channels % 64) == 0) }
                }
            }
        }
    }

    @Test(arguments: paths)
    func codedPackingMatchesTheNaivePacker(path: BitKernelPath) {
        var rng = SplitMix64(seed: 12)
        let inputs: [BitActivationEncoding] = [
            .ternary(step: 0.5), .unsigned(levels: 1, step: 1), .unsigned(levels: 2, step: 0.25), .unsigned(levels: 6, step: 1),
        ]
        for input in inputs {
            for (channels, groups) in [(1, 1), (65, 1), (63, 2), (130, 3)] {
                let pixels = 13
                var x = Self.randomInput(input, count: channels * groups * pixels, &rng)
                x[0] = .nan  // the lowest code
                let fast = BinaryConv.packImage(x, channels: channels, groups: groups, pixels: pixels, input: input, path: path)
                // Planes per term as documented: ternary (s, m) = (a < 0, a != 0); thermometer
                // A = q - 1 in (s, m); unsigned bit planes of q (mask only).
                var planes: [(Float) -> Bool] = []
                switch input {
                case .ternary: planes = [{ input.code($0) < 0 }, { input.code($0) != 0 }]
                case .unsigned(let levels, _) where levels == 2: planes = [{ input.code($0) == 0 }, { input.code($0) != 1 }]
                default: planes = (0..<input.bits).map { t in { (input.code($0) >> t) & 1 == 1 } }
                }
                let words = (channels + 63) / 64
                var expected: [UInt64] = []
                let perGroup = (0..<groups).map { g in
                    planes.map {
                        ReferenceKernels.packBits(
                            Array(x[(g * channels * pixels)..<((g + 1) * channels * pixels)]), channels: channels, pixels: pixels, bit: $0)
                    }
                }
                for p in 0..<pixels {
                    for g in 0..<groups { for plane in perGroup[g] { expected += plane[(p * words)..<((p + 1) * words)] } }
                }
                #expect(fast == expected, "\(path) \(input) channels \(channels) groups \(groups)")
            }
        }
    }

    // MARK: - Kernels against the twins

    @Test(arguments: paths, [1, 2])
    func everyPathMatchesTheNaiveTwinAndTheFloatOracle(path: BitKernelPath, threads: Int) throws {
        var rng = SplitMix64(seed: 100 + UInt64(path.rawValue))
        for i in 0..<60 {
            let c = Self.randomCase(&rng)
            let accumulators = try ReferenceKernels.binaryConvAccumulators(
                ShapeInference.binaryConv(c.attributes, input: c.shape), c.attributes, input: c.x)
            let fast = try Self.fast(c.attributes, c.x, shape: c.shape, path: path, threads: threads)
            // Identity transform: the outputs are the integers themselves.
            #expect(fast == accumulators.map(Float.init), "case \(i): \(c)")
            #expect(try Self.floatOracle(c) == fast, "float oracle, case \(i): \(c)")
        }
    }

    @Test(arguments: paths)
    func everyEncodingPairOnEveryChannelCount(path: BitKernelPath) throws {
        var rng = SplitMix64(seed: 7)
        let inputs: [BitActivationEncoding] = [
            .sign, .ternary(step: 1), .unsigned(levels: 1, step: 1), .unsigned(levels: 2, step: 1), .unsigned(levels: 7, step: 0.5),
        ]
        for input in inputs {
            for weights in [BitWeightEncoding.binary, .ternary] {
                for cin in Self.channelCounts {
                    var c = Self.randomCase(&rng, input: input, weights: weights)
                    let w = try PackedConvWeights(
                        codes: (0..<(5 * cin * 9)).map { _ in weights == .binary ? (rng.bool() ? 1 : -1) : Float(rng.int(-1...1)) },
                        shape: [5, cin, 3, 3], encoding: weights)
                    c.attributes = BinaryConv2dAttributes(
                        weights: w, input: input, conv: Conv2dAttributes(stride: 2, padding: 1),
                        padCode: input == .sign ? 0 : input.codeRange.lowerBound)
                    c.shape = [2, cin, 7, 9]
                    c.x = Self.randomInput(input, count: c.shape.reduce(1, *), &rng)
                    let fast = try Self.fast(c.attributes, c.x, shape: c.shape, path: path, threads: 2)
                    #expect(try Self.floatOracle(c) == fast, "\(c)")
                }
            }
        }
    }

    /// Every pair of 4-channel code vectors, as a 1x1 conv: 3^4 ternary (or 2^4 binary, or
    /// unsigned) input pixels against every weight row.
    @Test(arguments: paths)
    func exhaustiveShortDotProducts(path: BitKernelPath) throws {
        func all(_ values: [Float], _ k: Int) -> [[Float]] {
            k == 0 ? [[]] : all(values, k - 1).flatMap { v in values.map { v + [$0] } }
        }
        let inputs: [(BitActivationEncoding, [Float])] = [
            (.sign, [1, -1]), (.ternary(step: 1), [-1, 0, 1]), (.unsigned(levels: 2, step: 1), [0, 1, 2]),
            (.unsigned(levels: 3, step: 1), [0, 1, 2, 3]),
        ]
        for (input, levels) in inputs {
            for enc in [BitWeightEncoding.binary, .ternary] {
                let xs = all(levels, 4), ws = all(enc == .binary ? [1, -1] : [-1, 0, 1], 4)
                // x [1, 4, 1, P]: channel c of pixel p is xs[p][c]; w [R, 4, 1, 1].
                var x = [Float](repeating: 0, count: 4 * xs.count)
                for (p, v) in xs.enumerated() { for c in 0..<4 { x[c * xs.count + p] = v[c] } }
                let w = try PackedConvWeights(codes: ws.flatMap { $0 }, shape: [ws.count, 4, 1, 1], encoding: enc)
                let a = BinaryConv2dAttributes(weights: w, input: input)
                let y = try Self.fast(a, x, shape: [1, 4, 1, xs.count], path: path, threads: 1)
                var wrong = 0
                for (r, wv) in ws.enumerated() {
                    for (p, xv) in xs.enumerated() where y[r * xs.count + p] != zip(xv, wv).map(*).reduce(0, +) { wrong += 1 }
                }
                #expect(wrong == 0, "\(path) \(input) x \(enc): \(wrong) wrong dot products")
            }
        }
    }

    @Test(arguments: paths)
    func outputTransformResidualAndClampAreExact(path: BitKernelPath) throws {
        var rng = SplitMix64(seed: 31)
        for i in 0..<24 {
            var c = Self.randomCase(&rng)
            let cout = c.attributes.weights.outChannels
            c.attributes.multiplier = rng.floats(cout, -2, 2)
            c.attributes.bias = rng.floats(cout)
            let g = try ShapeInference.binaryConv(c.attributes, input: c.shape)
            let r = rng.floats(g.batch * g.outImage)
            let act: Activation = [.none, .relu, .clamp(lo: -0.5, hi: 0.75)][i % 3]
            let slow = ReferenceKernels.activation(ReferenceKernels.add(ReferenceKernels.binaryConv2d(g, c.attributes, input: c.x), r), act)
            let fast = try Self.fast(c.attributes, c.x, shape: c.shape, residual: r, activation: act, path: path, threads: 2)
            let inPlace = try Self.fast(
                c.attributes, c.x, shape: c.shape, residual: r, residualInPlace: true, activation: act, path: path, threads: 2)
            #expect(fast == slow, "case \(i): \(c)")
            #expect(inPlace == slow, "in place, case \(i): \(c)")
        }
    }

    @Test func pathsAgreeBitForBitOnLargeLayers() throws {
        var rng = SplitMix64(seed: 5)
        // ResNet-like stage shapes, K = 9 * Cin, not all multiples of 64.
        for (cin, cout, hw, stride, enc, input) in [
            (64, 64, 15, 1, BitWeightEncoding.binary, BitActivationEncoding.sign), (128, 96, 9, 2, .binary, .sign),
            (200, 64, 7, 1, .ternary, .unsigned(levels: 2, step: 1)), (96, 40, 8, 1, .ternary, .ternary(step: 1)),
        ] {
            let w = try PackedConvWeights(
                codes: (0..<(cout * cin * 9)).map { _ in enc == .binary ? (rng.bool() ? 1 : -1) : Float(rng.int(-1...1)) },
                shape: [cout, cin, 3, 3], encoding: enc)
            let a = BinaryConv2dAttributes(
                weights: w, input: input, conv: Conv2dAttributes(stride: stride, padding: 1), padCode: input == .sign ? 0 : 0,
                multiplier: rng.floats(cout), bias: rng.floats(cout))
            let x = Self.randomInput(input, count: 2 * cin * hw * hw, &rng)
            let outs = try Self.paths.map { try Self.fast(a, x, shape: [2, cin, hw, hw], path: $0, threads: 2) }
            for (p, o) in zip(Self.paths, outs) { #expect(o == outs[0], "\(p) vs \(Self.paths[0]), cin \(cin)") }
            let g = try ShapeInference.binaryConv(a, input: [2, cin, hw, hw])
            #expect(outs[0] == ReferenceKernels.binaryConv2d(g, a, input: x))
        }
    }

    // MARK: - Padding and polarity: the checks detect a wrong convention

    @Test func wrongPadValueOrPolarityIsDetected() throws {
        var rng = SplitMix64(seed: 77)
        let cin = 70, cout = 6
        let codes: [Float] = (0..<(cout * cin * 9)).map { _ in rng.bool() ? 1 : -1 }
        let w = try PackedConvWeights(codes: codes, shape: [cout, cin, 3, 3], encoding: .binary)
        let x = rng.floats(cin * 8 * 8)
        // QTool's --padding_after_quant: zero padding of the sign codes (pad code 0).
        let truth = BinaryConv2dAttributes(weights: w, conv: Conv2dAttributes(padding: 1), padCode: 0)
        let c = Case(attributes: truth, shape: [1, cin, 8, 8], x: x)
        let oracle = try Self.floatOracle(c)
        for path in Self.paths {
            #expect(try Self.fast(truth, x, shape: c.shape, path: path, threads: 1) == oracle)
            // One-padding (pad before the sign) differs exactly on the border pixels.
            var onePad = truth
            onePad.padCode = 1
            let y = try Self.fast(onePad, x, shape: c.shape, path: path, threads: 1)
            var differ = Set<Int>()
            for i in y.indices where y[i] != oracle[i] { differ.insert(i % 64) }
            let border = Set((0..<64).filter { $0 / 8 == 0 || $0 / 8 == 7 || $0 % 8 == 0 || $0 % 8 == 7 })
            #expect(!differ.isEmpty && differ.isSubset(of: border), "\(path): pad +1 differs at \(differ.sorted())")
            // Reversed polarity (bit 1 = +1) of the weights fails the oracle.
            let flipped = BinaryConv2dAttributes(
                weights: try PackedConvWeights(codes: codes.map { -$0 }, shape: [cout, cin, 3, 3], encoding: .binary),
                conv: truth.conv, padCode: 0)
            let f = try Self.fast(flipped, x, shape: c.shape, path: path, threads: 1)
            #expect(f != oracle && f == oracle.map { -$0 }, "\(path): flipped weights")
            // Reversed activation polarity (x >= 0 -> -1) fails it too.
            let negated = try Self.fast(truth, x.map { -$0 }, shape: c.shape, path: path, threads: 1)
            #expect(negated != oracle, "\(path): negated input")
        }
    }

    // MARK: - Graphs: planner, fusion, reference interpreter

    static func graph(_ a: BinaryConv2dAttributes, residualShape: [Int]?, bn: Bool) -> Graph {
        var g = Graph()
        g.addInput("x")
        var v = g.add(.binaryConv2d(a), name: "bconv", inputs: ["x"])
        let c = a.weights.outChannels
        if bn {
            var rng = SplitMix64(seed: 3)
            g.addConstant("bn.g", Tensor(floats: rng.floats(c, 0.5, 1.5), shape: [c]))
            g.addConstant("bn.b", Tensor(floats: rng.floats(c), shape: [c]))
            g.addConstant("bn.m", Tensor(floats: rng.floats(c), shape: [c]))
            g.addConstant("bn.v", Tensor(floats: rng.floats(c, 0.5, 2), shape: [c]))
            v = g.add(.batchNorm(epsilon: 1e-5), name: "bn", inputs: [v, "bn.g", "bn.b", "bn.m", "bn.v"])
        }
        if residualShape != nil {
            g.addInput("r")
            v = g.add(.add, name: "add", inputs: [v, "r"])
        }
        v = g.add(.hardtanh(min: -1, max: 1), name: "act", inputs: [v])
        g.markOutput(v)
        return g
    }

    @Test(arguments: paths)
    func plannedGraphMatchesTheReferenceInterpreter(path: BitKernelPath) throws {
        var rng = SplitMix64(seed: 41)
        for i in 0..<12 {
            let c = Self.randomCase(&rng)
            let g0 = try ShapeInference.binaryConv(c.attributes, input: c.shape)
            let rShape = [g0.batch, g0.outChannels, g0.outHeight, g0.outWidth]
            let withBN = i % 2 == 0
            let graph = Self.graph(c.attributes, residualShape: rShape, bn: withBN)
            let inputs = ["x": Tensor(floats: c.x, shape: c.shape), "r": Tensor(floats: rng.floats(rShape.reduce(1, *)), shape: rShape)]
            let reference = try ReferenceExecutor.run(graph, inputs: inputs)[graph.outputs[0]]!.floats()
            for fuse in [true, false] {
                let exec = try Executor(graph: graph, threads: 2, options: PlanOptions(fuse: fuse, bitKernelPath: path))
                let y = try exec.run(inputs)[graph.outputs[0]]!.floats()
                if withBN {
                    // Batch norm: the reference uses the textbook formula in Double, the plan a
                    // float scale and shift (folded or not): a few ulps of |acc| * scale.
                    let (ok, msg) = expectClose(y, reference, atol: 1e-5 * Float(c.attributes.weights.codesPerRow))
                    #expect(ok, "case \(i) \(c): \(msg)")
                } else {
                    #expect(y == reference, "case \(i) fuse \(fuse): \(c)")
                }
            }
            if i == 0 {
                let plan = try Plan(graph: graph, inputShapes: ["x": c.shape, "r": rShape], options: PlanOptions(bitKernelPath: path))
                #expect(plan.stepCount == 1, "\(plan.stepDescriptions)")
            }
        }
    }

    // MARK: - Bad attributes

    @Test func invalidWeightsAndAttributesAreRefused() throws {
        #expect(throws: InferenceError.self) {
            // Channel 3 of a 3-channel row: a padding bit.
            try PackedConvWeights(outChannels: 1, groupInChannels: 3, kernelH: 1, kernelW: 1, encoding: .binary, sign: [0b1000])
        }
        #expect(throws: InferenceError.self) {
            try PackedConvWeights(
                outChannels: 1, groupInChannels: 3, kernelH: 1, kernelW: 1, encoding: .ternary, sign: [0b10], mask: [0b01])
        }
        #expect(throws: InferenceError.self) {
            try PackedConvWeights(outChannels: 2, groupInChannels: 3, kernelH: 1, kernelW: 1, encoding: .binary, sign: [0])
        }
        #expect(throws: InferenceError.self) { try PackedConvWeights(codes: [1, 0.5], shape: [1, 2, 1, 1], encoding: .binary) }
        #expect(throws: InferenceError.self) { try PackedConvWeights(codes: [1, 0], shape: [1, 2, 1, 1], encoding: .binary) }
        let w = try PackedConvWeights(codes: [1, -1, 1], shape: [1, 3, 1, 1], encoding: .binary)
        for bad in [
            BinaryConv2dAttributes(weights: w, padCode: 2), BinaryConv2dAttributes(weights: w, input: .ternary(step: 0)),
            BinaryConv2dAttributes(weights: w, input: .unsigned(levels: 2, step: 1), padCode: -1),
            BinaryConv2dAttributes(weights: w, multiplier: [1, 2]),
        ] {
            #expect(throws: InferenceError.self) { try ShapeInference.binaryConv(bad, input: [1, 3, 4, 4]) }
        }
        #expect(throws: InferenceError.self) { try ShapeInference.binaryConv(BinaryConv2dAttributes(weights: w), input: [1, 4, 4, 4]) }
        if let missing = BitKernelPath.allCases.first(where: { !$0.isSupported }) {
            var g = Graph()
            g.addInput("x")
            g.add(.binaryConv2d(BinaryConv2dAttributes(weights: w)), name: "b", inputs: ["x"])
            g.markOutput("b")
            #expect(throws: InferenceError.self) {
                try Plan(graph: g, inputShapes: ["x": [1, 3, 4, 4]], options: PlanOptions(bitKernelPath: missing))
            }
        }
    }

    @Test func quantizedWeightsSplitIntoCodesAndScales() throws {
        // XNOR-style: sign(w) * alpha per output channel; a zero channel gets scale 0.
        let w: [Float] = [0.5, -0.5, 0.5, 0.5, -2, -2, 2, 2, 0, 0, 0, 0]
        let (p, scale) = try PackedConvWeights.quantized(w, shape: [3, 4, 1, 1], encoding: .binary)
        #expect(scale == [0.5, 2, 0])
        #expect(p.codes() == [1, -1, 1, 1, -1, -1, 1, 1, 1, 1, 1, 1])
        let (t, ts) = try PackedConvWeights.quantized([0.25, 0, -0.25, 0], shape: [1, 4, 1, 1], encoding: .ternary)
        #expect(ts == [0.25] && t.codes() == [1, 0, -1, 0])
        #expect(throws: InferenceError.self) { try PackedConvWeights.quantized([0.5, 0.25], shape: [1, 2, 1, 1], encoding: .binary) }
        // bnnpack bytes are the words, little-endian.
        let bytes = try PackedConvWeights(
            outChannels: 1, groupInChannels: 4, kernelH: 1, kernelW: 1, encoding: .binary, signBytes: [0b0110, 0, 0, 0, 0, 0, 0, 0])
        #expect(bytes.codes() == [1, -1, -1, 1])
    }
}
