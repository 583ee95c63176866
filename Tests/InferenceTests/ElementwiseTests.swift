import Inference
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
                    Elementwise.channelAffine(batch: n, channels: c, inner: i, input: px, scale: ps, bias: pb, output: py, activation: .none, threads: threads)
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
        let slow = ReferenceKernels.activation(ReferenceKernels.linear(x, batch: n, inFeatures: i, weight: w, outFeatures: o, bias: b), .relu)
        let fast = Fast.unary(x, outputCount: n * o) { px, py in
            w.withUnsafeBufferPointer { pw in
                b.withUnsafeBufferPointer { pb in
                    Linear.forward(batch: n, inFeatures: i, outFeatures: o, input: px, weight: pw, bias: pb, output: py, activation: .relu, threads: 2)
                }
            }
        }
        #expect(Difference(fast, slow).maxAbs <= 1e-4 * Float(i).squareRoot())
    }

    @Test(arguments: [(1, 3, 4, 6, 2), (2, 5, 9, 3, 3), (1, 1, 4, 4, 1), (3, 2, 8, 12, 4)], [true, false])
    func spaceDepthMatchesReference(dims: (Int, Int, Int, Int, Int), toDepth: Bool) {
        let (n, c, h, w, s) = dims
        var rng = SplitMix64(seed: UInt64(n * c * h * w * s))
        let x = rng.floats(n * c * h * w)
        let slow = ReferenceKernels.spaceDepth(x, batch: n, channels: c, height: h, width: w, block: s, toDepth: toDepth)
        let fast = Fast.unary(x, outputCount: x.count) {
            Elementwise.spaceDepth(batch: n, channels: c, height: h, width: w, block: s, toDepth: toDepth, input: $0, output: $1, threads: 2)
        }
        #expect(fast == slow)
        // The two directions are inverses.
        let back = ReferenceKernels.spaceDepth(slow, batch: n, channels: c, height: h, width: w, block: s, toDepth: !toDepth)
        #expect(back == x)
    }
}
