import Engine
import Tensors
import TestSupport
import Testing

@Suite struct ElementwiseTests {
    static let seeds = Array(0..<8 as Range<UInt64>)

    static func dims(_ seed: UInt64) -> (Int, Int, Int) {
        var rng = SplitMix64(seed: seed &* 31)
        // Big enough for some seeds to split across threads.
        return (rng.int(1...3), rng.int(1...17), seed % 2 == 0 ? rng.int(1...40) : rng.int(1000...5000))
    }

    @Test(arguments: seeds, [1, 2])
    func activations(seed: UInt64, threads: Int) {
        let (n, c, i) = Self.dims(seed)
        var rng = SplitMix64(seed: seed)
        var x = rng.floats(n * c * i, -2, 2)
        x[0] = .nan
        for act in [Activation.relu, .clamp(lo: -1, hi: 1), .clamp(lo: 0, hi: 6), .none] {
            let slow = ReferenceKernels.activation(x, act)
            let fast = Fast.unary(x, outputCount: x.count) { Elementwise.activation(act, input: $0, output: $1, threads: threads) }
            #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern), "\(act)")
        }
    }

    @Test(arguments: seeds, [1, 2])
    func channelAffineAndPrelu(seed: UInt64, threads: Int) {
        let (n, c, i) = Self.dims(seed)
        var rng = SplitMix64(seed: seed)
        let x = rng.floats(n * c * i, -2, 2)
        let scale = rng.floats(c), bias = rng.floats(c)
        let slow = ReferenceKernels.channelAffine(x, batch: n, channels: c, inner: i, scale: scale, bias: bias)
        let fast = Fast.unary(x, outputCount: x.count) { px, py in
            scale.withUnsafeBufferPointer { ps in
                bias.withUnsafeBufferPointer { pb in
                    Elementwise.channelAffine(
                        batch: n, channels: c, inner: i, input: px, scale: ps, bias: pb, output: py, activation: .none, threads: threads)
                }
            }
        }
        #expect(Difference(fast, slow).maxAbs <= 1e-6)
        for slope in [rng.floats(1), rng.floats(c)] {
            let slowP = ReferenceKernels.prelu(x, batch: n, channels: c, inner: i, slope: slope)
            let fastP = Fast.unary(x, outputCount: x.count) { px, py in
                slope.withUnsafeBufferPointer { ps in
                    Elementwise.prelu(batch: n, channels: c, inner: i, input: px, slope: ps, output: py, threads: threads)
                }
            }
            #expect(fastP == slowP)
        }
    }

    @Test(arguments: seeds, [1, 2])
    func addWithActivation(seed: UInt64, threads: Int) {
        let (n, c, i) = Self.dims(seed)
        var rng = SplitMix64(seed: seed)
        let a = rng.floats(n * c * i), b = rng.floats(n * c * i)
        let slow = ReferenceKernels.activation(ReferenceKernels.add(a, b), .relu)
        let fast = Fast.unary(a, outputCount: a.count) { pa, py in
            b.withUnsafeBufferPointer { pb in Elementwise.add(pa, pb, output: py, activation: .relu, threads: threads) }
        }
        #expect(fast == slow)
    }

    @Test(arguments: seeds)
    func softmaxAndPad(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let (o, a, i) = (rng.int(1...3), rng.int(1...12), rng.int(1...5))
        let x = rng.floats(o * a * i, -5, 5)
        let slow = ReferenceKernels.softmax(x, outer: o, axis: a, inner: i)
        let fast = Fast.unary(x, outputCount: x.count) { Elementwise.softmax(outer: o, axis: a, inner: i, input: $0, output: $1) }
        #expect(Difference(fast, slow).maxAbs <= 1e-6)

        let (h, w) = (rng.int(1...6), rng.int(1...7))
        let p = Padding2d(top: rng.int(0...2), left: rng.int(0...3), bottom: rng.int(0...2), right: rng.int(0...1))
        let y = rng.floats(o * h * w)
        let slowPad = ReferenceKernels.pad(y, planes: o, height: h, width: w, padding: p, value: 0.25)
        let fastPad = Fast.unary(y, outputCount: slowPad.count) {
            Elementwise.pad(planes: o, height: h, width: w, padding: p, value: 0.25, input: $0, output: $1, threads: 2)
        }
        #expect(fastPad == slowPad)
    }

    @Test(arguments: [(1, 512, 1000), (3, 17, 5), (2, 1, 1), (5, 64, 33)])
    func linearMatchesReference(dims: (Int, Int, Int)) {
        let (n, i, o) = dims
        var rng = SplitMix64(seed: UInt64(n * i * o))
        let x = rng.floats(n * i), w = rng.floats(o * i), b = rng.floats(o)
        let slow = ReferenceKernels.activation(
            ReferenceKernels.linear(x, batch: n, inFeatures: i, weight: w, outFeatures: o, bias: b), .relu)
        let fast = Fast.unary(x, outputCount: n * o) { px, py in
            w.withUnsafeBufferPointer { pw in
                b.withUnsafeBufferPointer { pb in
                    Linear.forward(
                        batch: n, inFeatures: i, outFeatures: o, input: px, weight: pw, bias: pb, output: py, activation: .relu, threads: 2)
                }
            }
        }
        #expect(Difference(fast, slow).maxAbs <= 1e-4 * Float(i).squareRoot())
    }

    /// `Linear.forward` on one path against the reference plus activation. The tolerance is
    /// relative to `sum |x_i w_i| + |b|` (the reference applied to absolute values), which
    /// bounds the float rounding of any summation order; NaN and infinities must match.
    static func checkLinear(
        n: Int, i: Int, o: Int, bias: Bool, activation: Activation, threads: Int, kernel: Linear.Kernel,
        x: [Float], w: [Float], b: [Float]
    ) {
        let bb: [Float]? = bias ? b : nil
        let slow = ReferenceKernels.activation(
            ReferenceKernels.linear(x, batch: n, inFeatures: i, weight: w, outFeatures: o, bias: bb), activation)
        let scale = ReferenceKernels.linear(x.map(abs), batch: n, inFeatures: i, weight: w.map(abs), outFeatures: o, bias: bb?.map(abs))
        let fast = Fast.unary(x, outputCount: n * o) { px, py in
            w.withUnsafeBufferPointer { pw in
                Fast.withOptional(bb) { pb in
                    Linear.forward(
                        batch: n, inFeatures: i, outFeatures: o, input: px, weight: pw, bias: pb, output: py,
                        activation: activation, threads: threads, kernel: kernel)
                }
            }
        }
        let bad = (0..<fast.count).first { k in
            let (f, r) = (fast[k], slow[k])
            if r.isNaN || r.isInfinite || f.isNaN || f.isInfinite { return !(r.isNaN && f.isNaN) && f != r }
            return !(abs(f - r) <= 1e-5 * scale[k] + 1e-30)
        }
        #expect(
            bad == nil,
            "\(n)x\(i)->\(o) bias \(bias) \(activation) threads \(threads) \(kernel): [\(bad ?? -1)] \(bad.map { (fast[$0], slow[$0]) }.debugDescription)"
        )
    }

    /// Batches 1, 2, 7, 33; odd feature counts (1, 3, 17, 513, 1000; depths below, at and
    /// past a vector of 8); bias or none; ReLU, clamp or none; threads 1 and 2; the vector
    /// and portable dot-product paths and OpenBLAS.
    @Test(
        arguments: [
            (1, 512, 1000), (1, 1, 1), (1, 3, 17), (2, 17, 3), (7, 513, 1000), (33, 17, 513), (33, 513, 17),
            (2, 1000, 1), (7, 8, 8), (1, 9, 1000), (33, 3, 1000), (2, 16, 12), (3, 7, 4),
        ], [1, 2])
    func linearKernelsMatchReference(dims: (Int, Int, Int), threads: Int) {
        let (n, i, o) = dims
        var rng = SplitMix64(seed: UInt64(n * 1_000_003 + i * 1009 + o))
        let x = rng.floats(n * i, -2, 2), w = rng.floats(o * i), b = rng.floats(o)
        for kernel in [Linear.Kernel.automatic, .dot(portable: false), .dot(portable: true), .blas] {
            for bias in [true, false] {
                for act in [Activation.none, .relu, .clamp(lo: -0.5, hi: 0.75)] {
                    Self.checkLinear(n: n, i: i, o: o, bias: bias, activation: act, threads: threads, kernel: kernel, x: x, w: w, b: b)
                }
            }
        }
    }

    /// Past ``Linear/blasBatch`` a single-threaded call goes to OpenBLAS, a threaded one stays
    /// on the dot-product kernel: both agree with the reference.
    @Test(arguments: [1, 2])
    func linearLargeBatchMatchesReference(threads: Int) {
        let (n, i, o) = (Linear.blasBatch + 5, 33, 21)
        var rng = SplitMix64(seed: 77)
        let x = rng.floats(n * i, -2, 2), w = rng.floats(o * i), b = rng.floats(o)
        Self.checkLinear(n: n, i: i, o: o, bias: true, activation: .relu, threads: threads, kernel: .automatic, x: x, w: w, b: b)
    }

    /// NaN in an input row makes that output row NaN; an infinite weight gives infinities
    /// (or NaN times zero), through bias and activation, on every path.
    @Test(arguments: [Linear.Kernel.dot(portable: false), .dot(portable: true), .blas, .automatic])
    func linearPropagatesNaNAndInfinity(kernel: Linear.Kernel) {
        let (n, i, o) = (4, 19, 11)
        var rng = SplitMix64(seed: 5)
        var x = rng.floats(n * i, 0.5, 2), w = rng.floats(o * i)
        let b = rng.floats(o)
        x[1 * i + 7] = .nan
        w[3 * i + 2] = .infinity
        w[9 * i + 18] = -.infinity
        x[2 * i + 2] = 0
        for act in [Activation.none, .relu] {
            Self.checkLinear(n: n, i: i, o: o, bias: true, activation: act, threads: 2, kernel: kernel, x: x, w: w, b: b)
        }
        let fast = Fast.unary(x, outputCount: n * o) { px, py in
            w.withUnsafeBufferPointer { pw in
                b.withUnsafeBufferPointer { pb in
                    Linear.forward(
                        batch: n, inFeatures: i, outFeatures: o, input: px, weight: pw, bias: pb, output: py, activation: .none, threads: 2,
                        kernel: kernel)
                }
            }
        }
        #expect((0..<o).allSatisfy { fast[1 * o + $0].isNaN })
        #expect(fast[0 * o + 3] == .infinity && fast[0 * o + 9] == -.infinity && fast[2 * o + 3].isNaN)
    }

    @Test(arguments: [(1, 3, 4, 6, 2), (2, 5, 9, 3, 3), (1, 1, 4, 4, 1), (3, 2, 8, 12, 4)], [true, false])
    func spaceDepthMatchesReference(dims: (Int, Int, Int, Int, Int), toDepth: Bool) {
        let (n, c, h, w, s) = dims
        var rng = SplitMix64(seed: UInt64(n * c * h * w * s))
        let x = rng.floats(n * c * h * w)
        let slow = ReferenceKernels.spaceDepth(x, batch: n, channels: c, height: h, width: w, block: s, toDepth: toDepth)
        let fast = Fast.unary(x, outputCount: x.count) {
            Elementwise.spaceDepth(
                batch: n, channels: c, height: h, width: w, block: s, toDepth: toDepth, input: $0, output: $1, threads: 2)
        }
        #expect(fast == slow)
        // The two directions are inverses.
        let back = ReferenceKernels.spaceDepth(slow, batch: n, channels: c, height: h, width: w, block: s, toDepth: !toDepth)
        #expect(back == x)
    }
}
