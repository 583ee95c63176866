import Engine
import Tensors
import Testing

@testable import Models

/// ``QuantizerThresholds``: the fused FATNN quantizer's thresholds give the quantizer's own
/// codes, at random inputs, at the thresholds and their neighbours, and at the special values.
struct QuantizerThresholdsTests {
    /// Counting the thresholds reached is the quantizer, input by input.
    static func expectSameCodes(_ q: Quantizer, _ t: [Float], lo: Int, _ x: [Float]) throws {
        let y = try q(x, shape: [1, 1, 1, x.count])
        for (v, code) in zip(x, y) {
            let counted = lo + t.reduce(0) { $0 + (v >= $1 ? 1 : 0) }
            // The quantizer passes NaN through; the packers give it the lowest code.
            #expect(code.isNaN ? counted == lo : Float(counted) == code, "x \(v): quantizer \(code), thresholds \(counted)")
        }
    }

    @Test(
        arguments: [
            (["--fm_level", "3"], [[Float(2.7)], [0.9]], 0...2),
            (["--fm_bit", "2"], [[3], [1.7], [0.31]], 0...3),
            (["--fm_level", "3", "--fm_half_range"], [[1.3], [2.9]], -1...1),
        ] as [([String], [[Float]], ClosedRange<Int>)])
    func thresholdsReproduceTheQuantizer(args: [String], alphas: [[Float]], codes: ClosedRange<Int>) throws {
        let q = try QuantizerLevelTests.quantizer(.fm, ["--keyword", "dorefa,non-uniform"] + args) { $0.alphas = alphas }
        let levels = try QuantizerLevelTests.levels(q, QuantizerLevelTests.ramp(-4, 4))
        #expect(levels == codes.map(Float.init))
        let t = try #require(QuantizerThresholds.of(q, codes: codes))
        #expect(t.count == codes.count - 1 && t == t.sorted())
        var rng = SplitMix64(seed: 5)
        var x = rng.floats(4096, -4, 4)
        for v in t { x += [v, v.nextDown, v.nextUp, v.nextDown.nextDown] }
        x += [0, -0.0, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, -.leastNonzeroMagnitude]
        try Self.expectSameCodes(q, t, lo: codes.lowerBound, x)
        // Anti-check: a threshold one float lower miscodes the float just below it.
        var off = t
        off[0] = off[0].nextDown
        let y = try q([off[0]], shape: [1, 1, 1, 1])[0]
        #expect(Float(codes.lowerBound + off.reduce(0) { $0 + (off[0] >= $1 ? 1 : 0) }) != y)
    }

    /// An alpha of 0 turns +inf into NaN (`inf * 0`), a value with no code: refused.
    @Test func aQuantizerWithoutCodesEverywhereIsRefused() throws {
        let q = try QuantizerLevelTests.quantizer(.fm, ["--keyword", "dorefa,non-uniform", "--fm_level", "3"]) {
            $0.alphas = [[2], [0]]
        }
        #expect(try q([.infinity], shape: [1, 1, 1, 1])[0].isNaN)
        #expect(QuantizerThresholds.of(q, codes: 0...2) == nil)
    }

    /// Per-channel groups and `STE-scale` (a clamp over the whole tensor) have no thresholds.
    @Test func groupedOrTensorWideQuantizersAreRefused() throws {
        let grouped = try QuantizerLevelTests.quantizer(
            .fm, ["--keyword", "dorefa,non-uniform", "--fm_level", "3", "--fm_quant_group", "4"], shape: [1, 4, 1, 1]
        ) { $0.alphas = [[2, 2, 2, 2], [1, 1, 1, 1]] }
        #expect(QuantizerThresholds.of(grouped, codes: 0...2) == nil)
    }
}
