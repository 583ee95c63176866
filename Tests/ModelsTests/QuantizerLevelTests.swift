import Formats
import QToolConfig
import Tensors
import Testing

@testable import Engine
@testable import Models

/// Output level sets of seed-reference §11.15 and the worked examples of §11.8 / §11.11, on
/// hand-made inputs.
@Suite struct QuantizerLevelTests {
    /// A quantizer for `tag` with the options `args` (plus `--<tag>_enable`) on shape `shape`.
    static func quantizer(
        _ tag: QuantizerTag, _ args: [String], shape: [Int] = [1, 1, 1, 1],
        state: (inout QuantizerState) -> Void = { _ in }
    ) throws -> Quantizer {
        let options = try QToolOptions().applying(arguments: args + ["--\(tag.rawValue)_enable"])
        let config = try QuantizerConfig(options: options, tag: tag, shape: shape)
        var s = QuantizerState(iteration: 1, levelNum: Float(config.levels))
        state(&s)
        return Quantizer(name: "q", config: config, state: s)
    }

    /// A dense ramp over [lo, hi] (step 1/1024, so every level is hit).
    static func ramp(_ lo: Float, _ hi: Float) -> [Float] {
        stride(from: lo, through: hi, by: 1.0 / 1024).map { $0 }
    }

    static func levels(_ q: Quantizer, _ x: [Float]) throws -> [Float] {
        Array(Set(try q(x, shape: [1, 1, 1, x.count]))).sorted()
    }

    @Test func lsqWorkedExample() throws {
        let q = try Self.quantizer(.fm, ["--keyword", "dorefa,lsq", "--fm_bit", "2"]) {
            $0.clipVal = [1]
        }
        let y = try q([-0.5, 0.1, 0.3, 0.55, 0.9, 1.2, 2.0], shape: [1, 1, 1, 7])
        #expect(y == [0, 0, Float(1) / 3, Float(2) / 3, 1, 1, 1])
    }

    @Test func nonUniformWorkedExample() throws {
        let q = try Self.quantizer(.fm, ["--keyword", "dorefa,non-uniform", "--fm_bit", "2"]) {
            $0.alphas = [[3], [3], [3]]
        }
        let y = try q([0.25, 0.5, 0.75, 1, 1.5, -1], shape: [1, 1, 1, 6])
        #expect(y == [1, 1, 2, 3, 3, 0])
    }

    @Test(
        arguments: [(2, [0, 1]), (3, [0, 0.5, 1]), (4, [0, 1.0 / 3, 2.0 / 3, 1])]
            as [(Int, [Double])])
    func doreFaActivationLevels(levels: Int, unit: [Double]) throws {
        let c = 2.0
        let q = try Self.quantizer(
            .fm, ["--keyword", "dorefa", "--fm_level", "\(levels)", "--fm_boundary", "\(c)"])
        let s = Float(Double(levels - 1) / c)
        #expect(
            try Self.levels(q, Self.ramp(-1, 3))
                == unit.map { (Float($0 * Double(levels - 1)) / s) })
    }

    @Test(
        arguments: [(2, [-1, 1]), (3, [-1, 0, 1]), (4, [-1, -1.0 / 3, 1.0 / 3, 1])]
            as [(Int, [Float])])
    func doreFaWeightLevels(levels: Int, expected: [Float]) throws {
        let q = try Self.quantizer(.wt, ["--keyword", "dorefa", "--wt_level", "\(levels)"])
        let got = try Self.levels(q, Self.ramp(-3, 3))
        #expect(got.count == levels)
        for (g, e) in zip(got, expected) { #expect(abs(g - e) <= 1e-6) }
    }

    @Test func pactLevels() throws {
        let alpha: Float = 1.7
        let q = try Self.quantizer(.fm, ["--keyword", "pact", "--fm_bit", "2"]) {
            $0.clipVal = [alpha]
        }
        let got = try Self.levels(q, Self.ramp(-1, 3))
        #expect(got.count == 4 && got.first == 0 && got.last == alpha)
        #expect(abs(got[1] - alpha / 3) <= 1e-6 && abs(got[2] - 2 * alpha / 3) <= 1e-6)
    }

    @Test(
        arguments: [(2, [-1, 1]), (3, [-1, 0, 1]), (4, [-1, -1.0 / 3, 1.0 / 3, 1])]
            as [(Int, [Float])])
    func lsqTwoSidedLevels(levels: Int, unit: [Float]) throws {
        let s: Float = 0.75
        let q = try Self.quantizer(.wt, ["--keyword", "dorefa,lsq", "--wt_level", "\(levels)"]) {
            $0.clipVal = [s]
        }
        let got = try Self.levels(q, Self.ramp(-2, 2))
        #expect(got.count == levels)
        for (g, e) in zip(got, unit) { #expect(abs(g - e * s) <= 1e-6) }
    }

    @Test func lsqOneSidedUsesLevelNumTensor() throws {
        // LSQ reads level_num at every call (policies may change it): 3 levels here, not 4.
        let q = try Self.quantizer(.fm, ["--keyword", "dorefa,lsq", "--fm_bit", "2"]) {
            $0.clipVal = [-2]  // |clip_val| is the step
            $0.levelNum = 3
        }
        #expect(try Self.levels(q, Self.ramp(-1, 3)) == [0, 1, 2])
    }

    @Test func lqNetLevelsAreSortedBasisCombinations() throws {
        let (b0, b1): (Float, Float) = (0.9, 0.4)
        let fm = try Self.quantizer(.fm, ["--keyword", "lq", "--fm_bit", "2"]) {
            $0.basis = [b0, b1]
            $0.codecVector = [0, 0, 1, 0, 0, 1, 1, 1]
            $0.thresholdMultiplier = [0.5, 0.5, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0.5, 0.5]
        }
        #expect(try Self.levels(fm, Self.ramp(-1, 3)) == [0, b1, b0, b0 + b1])
        // Strict `>`: a value exactly on the threshold (b1 + b0)/2 keeps the lower level.
        #expect(try fm([(b1 + b0) / 2], shape: [1, 1, 1, 1]) == [b1])
        let wt = try Self.quantizer(.wt, ["--keyword", "lq", "--wt_bit", "2"]) {
            $0.basis = [b0, b1]
            $0.codecVector = [-1, -1, 1, -1, -1, 1, 1, 1]
            $0.thresholdMultiplier = [0.5, 0.5, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0.5, 0.5]
        }
        #expect(try Self.levels(wt, Self.ramp(-3, 3)) == [-b0 - b1, -b0 + b1, b0 - b1, b0 + b1])
    }

    @Test func lqNetWeightAdaptiveMeanIsRestored() throws {
        // Levels ±1 ± 2 = {−3, −1, 1, 3}, thresholds {−2, 0, 2}; rows of 2 weights.
        let q = try Self.quantizer(
            .wt, ["--keyword", "lq", "--wt_bit", "2", "--wt_adaptive", "mean"], shape: [2, 1, 1, 2]
        ) {
            $0.basis = [1, 1, 2, 2]
            $0.codecVector = [-1, -1, 1, -1, -1, 1, 1, 1]
            $0.thresholdMultiplier = [0.5, 0.5, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0.5, 0.5]
        }
        // Row 0: mean 11, centred (−1, 1) → (−1, 1) → restored (10, 12). Row 1: mean 0.
        #expect(try q([10, 12, -5, 5], shape: [2, 1, 1, 2]) == [10, 12, -3, 3])
    }

    @Test func lqNetTernaryDegeneratesToBinary() throws {
        let q = try Self.quantizer(.fm, ["--keyword", "lq", "--fm_level", "3"]) {
            $0.basis = [0.8]
            $0.codecVector = [0, 1, 0]  // codes 0, 1, 2 with bit forced to 1: rows [0],[1],[0]
            $0.thresholdMultiplier = [0.5, 0.5, 0, 0, 0.5, 0.5]
        }
        #expect(q.config.bit == 1)
        #expect(try Self.levels(q, Self.ramp(-1, 3)) == [0, 0.8])
    }

    @Test func nonUniformLevelSets() throws {
        let ternary = try Self.quantizer(
            .fm, ["--keyword", "dorefa,non-uniform", "--fm_level", "3"]
        ) {
            $0.alphas = [[2], [2]]
        }
        #expect(try Self.levels(ternary, Self.ramp(-1, 3)) == [0, 1, 2])
        let twoSided = try Self.quantizer(
            .fm, ["--keyword", "dorefa,non-uniform", "--fm_level", "3", "--fm_half_range"]
        ) {
            $0.alphas = [[2], [2]]
        }
        #expect(try Self.levels(twoSided, Self.ramp(-3, 3)) == [-1, 0, 1])
        let weight = try Self.quantizer(
            .wt, ["--keyword", "dorefa,non-uniform", "--wt_level", "3"]
        ) {
            $0.alphas = [[1.5], [3]]
        }
        // Thresholds at −0.5/a0 = −1/3 and 0.5/a1 = 1/6.
        #expect(
            try weight([-0.34, -0.33, 0, 0.16, 0.17], shape: [1, 1, 1, 5]) == [-1, 0, 0, 0, 1])
    }

    @Test func xnorBinarisesWithSignPrime() throws {
        let fm = try Self.quantizer(.fm, ["--keyword", "xnor", "--stable", "-1"])
        #expect(try fm([-2, -0.0, 0, 0.5], shape: [1, 1, 1, 4]) == [-1, 1, 1, 1])
        let resolution = try Self.quantizer(
            .fm, ["--keyword", "xnor", "--stable", "-1", "--fm_custom", "resolution"])
        #expect(try resolution([-2, 1, 3, -1], shape: [1, 2, 1, 2]) == [-1.5, 1.5, 2, -2])
        let channel = try Self.quantizer(
            .fm, ["--keyword", "xnor", "--stable", "-1", "--fm_custom", "channel"])
        #expect(try channel([-2, 1, 3, -1], shape: [1, 2, 1, 2]) == [-2.5, 1, 2.5, -1])
        let wt = try Self.quantizer(
            .wt, ["--keyword", "xnor", "--stable", "-1"], shape: [2, 1, 1, 2])
        #expect(try wt([-1, 3, 0, -4], shape: [2, 1, 1, 2]) == [-2, 2, 2, -2])
    }

    @Test func binaryWeightUsesOneMeanOverTheTensor() throws {
        let q = try Self.quantizer(
            .wt, ["--keyword", "dorefa,wt_bin", "--wt_bit", "1"], shape: [2, 1, 1, 2])
        #expect(q.config.method == .binaryWeight)
        #expect(try q([-1, 3, 0, -4], shape: [2, 1, 1, 2]) == [-2, 2, 2, -2])
    }

    @Test func gammaMultipliesPerOutputChannel() throws {
        let xnorpp = try Self.quantizer(
            .wt, ["--keyword", "xnor,gamma", "--stable", "-1"], shape: [2, 1, 1, 2]
        ) {
            $0.gamma = [2, 0.5]
        }
        #expect(try xnorpp([-1, 3, 0, -4], shape: [2, 1, 1, 2]) == [-4, 4, 1, -1])
        let wtGamma = try Self.quantizer(
            .wt, ["--keyword", "dorefa,wt_gamma", "--wt_bit", "1"], shape: [2, 1, 1, 2]
        ) {
            $0.gamma = [2, 0.5]
        }
        // 1-bit DoReFa: a zero weight gives u = 0.5, which rounds half-to-even down to −1.
        #expect(try wtGamma([-1, 3, 0, -4], shape: [2, 1, 1, 2]) == [-2, 2, -0.5, -0.5])
    }
}

/// Output and linear-layer quantizers and the padding helper.
@Suite struct LayerQuantizerTests {
    @Test func outputLSQIsTwoSidedPerChannelWithGamma() throws {
        let q = try QuantizerLevelTests.quantizer(
            .ot, ["--keyword", "dorefa,lsq,ot_gamma", "--ot_bit", "2", "--ot_quant_group", "2"],
            shape: [1, 2, 1, 1]
        ) {
            $0.clipVal = [1, 3]
            $0.gamma = [2, 1]
        }
        #expect(!q.config.halfRange && q.config.quantGroup == 2)
        // Channel 0: step 1 → {−1, −1/3, 1/3, 1}·2; channel 1: step 3 → {−3, −1, 1, 3}.
        let y = try q([-5, 0.1, 0.9, 5], shape: [1, 2, 1, 2])
        #expect(zip(y, [-2, 2.0 / 3, 1, 3] as [Float]).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(y)")
        #expect(throws: QuantizerError.self) { try q([1, 2, 3], shape: [1, 3, 1, 1]) }
    }

    @Test func linearLayerUsesOneWeightGroup() throws {
        let options = try QToolOptions().applying(arguments: [
            "--keyword", "dorefa", "--fm_enable", "--wt_enable", "--fm_bit", "2", "--wt_bit", "2",
        ])
        let q = try LinearQuantizers(
            options: options, layer: "fc", inFeatures: 3, outFeatures: 2,
            tensors: [
                "fc.quant_activation.iteration": Tensor(floats: [1], shape: [1]),
                "fc.quant_weight.iteration": Tensor(floats: [1], shape: [1]),
            ])
        #expect(q.weight.config.quantGroup == 1)
        let y = try q.weight([-3, -0.1, 0, 0.1, 0.2, 3], shape: [2, 3])
        // One tanh max over the whole [2,3] tensor: 2-bit DoReFa levels {−1, −1/3, 1/3, 1}.
        #expect(y.count == 6 && y.first == -1 && y.last == 1, "\(y)")
        #expect(y.allSatisfy { v in [-1, -1.0 / 3, 1.0 / 3, 1].contains { abs(v - $0) <= 1e-6 } })
        let lsq = try QToolOptions().applying(arguments: [
            "--keyword", "dorefa,lsq", "--wt_enable", "--wt_bit", "2",
        ])
        let config = try QuantizerConfig(options: lsq, tag: .wt, shape: [1, 1, 2, 3])
        var state = QuantizerState(iteration: 1, levelNum: 4)
        state.clipVal = [1]
        // QTool's LSQ weight path unpacks four dimensions and fails on a 2-D weight.
        #expect(throws: QuantizerError.self) {
            try Quantizer(name: "fc.quant_weight", config: config, state: state)(
                [1, 2, 3, 4, 5, 6], shape: [2, 3])
        }
    }

    @Test func zeroPaddingBordersEveryPlane() throws {
        let (p, shape) = try ZeroPadding.pad([1, 2, 3, 4, 5, 6, 7, 8], shape: [1, 2, 2, 2], by: 1)
        #expect(shape == [1, 2, 4, 4])
        #expect(p[0..<16] == [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0])
        #expect(p[21] == 5 && p[26] == 8 && p.reduce(0, +) == 36)
    }
}

/// The non-uniform (FATNN) quantizer's one-pass form against its term-by-term twin:
/// bit-identical for every level count, one- and two-sided, per-tensor and per-group alphas,
/// on values at and around every threshold, zeros, infinities and NaN.
@Suite struct NonUniformElementwiseTests {
    @Test(arguments: [(2, true), (3, true), (4, true), (3, false)])
    func onePassEqualsTheTermByTermTwin(levels: Int, oneSided: Bool) {
        var rng = SplitMix64(seed: UInt64(levels * 10 + (oneSided ? 1 : 0)))
        for groups in [1, 3] {
            let chunk = 37
            let a = (0..<max(levels - 1, 2)).map { _ in (0..<groups).map { _ in Float.random(in: 0.3...3, using: &rng) } }
            var x = (0..<(chunk * groups * 2)).map { _ in Float.random(in: -3...4, using: &rng) }
            // Every threshold exactly, and its float neighbours.
            let thresholds = [0.5 / a[0][0], 1 / a[0][0] + 0.5 / a[1][0], 1 / a[0][0] + 1 / a[1][0] + 0.5 / a.last![0]]
            var k = 0
            for t in thresholds + thresholds.map(-) {
                for v in [t, t.nextUp, t.nextDown] where k < x.count { x[k] = v; k += 2 }
            }
            for v: Float in [0, -0.0, .infinity, -.infinity, .nan] { x[k] = v; k += 2 }
            let group: (Int) -> Int = { ($0 / chunk) % groups }
            let fast = NonUniformQuantizer.elementwise(x, a: a, chunk: chunk, groups: groups, levels: levels, oneSided: oneSided)
            let twin = NonUniformQuantizer.termByTerm(x, a: a, group: group, levels: levels, oneSided: oneSided, scaledClamp: false)
            #expect(fast.map(\.bitPattern) == twin.map(\.bitPattern), "levels \(levels) oneSided \(oneSided) groups \(groups)")
            // Over several threads' ranges (2^15 elements at least each), their bounds inside groups.
            let long = (0..<70_001).map { _ in Float.random(in: -3...4, using: &rng) }
            let longGroup: (Int) -> Int = { ($0 / 1_000) % groups }
            let parallel = NonUniformQuantizer.elementwise(
                long, a: a, chunk: 1_000, groups: groups, levels: levels, oneSided: oneSided, threads: 3)
            let longTwin = NonUniformQuantizer.termByTerm(
                long, a: a, group: longGroup, levels: levels, oneSided: oneSided, scaledClamp: false)
            #expect(parallel.map(\.bitPattern) == longTwin.map(\.bitPattern), "3 threads, groups \(groups)")
            // And the results are the level set's integers (NaN aside).
            let allowed: Set<Float> = oneSided ? Set((0..<levels).map(Float.init)) : [-1, 0, 1]
            #expect(fast.allSatisfy { $0.isNaN || allowed.contains($0) })
        }
    }
}
