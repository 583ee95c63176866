import Foundation
import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// The non-uniform (FATNN) quantizer's training backward (seed-reference §11.11) against
/// central differences in double of its straight-through surrogate: with `round` replaced by
/// the identity, `y = Σ_k s_k·clamp(t_k(x, |alpha|))` (`s_k` the `STE-scale` factor of term
/// k, 1 without it), so `dx` and every `d alpha` of the backward are the exact derivatives of
/// `Σ r·y`. Inputs lie at least 1e-3 from every clamp bound, where the surrogate is smooth.
@Suite struct NonUniformGradientTests {
    struct Setup: CustomStringConvertible, Sendable {
        var label: String
        var arguments: [String]
        var tag: QuantizerTag
        var constructorShape: [Int]
        var inputShape: [Int]
        /// alpha_k per group.
        var alphas: [[Float]]
        var description: String { label }
    }

    static let setups: [Setup] = [
        Setup(
            label: "fm 2 levels", arguments: ["--keyword", "dorefa,non-uniform", "--fm_enable", "--fm_bit", "1"],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], alphas: [[2.6]]),
        Setup(
            label: "fm ternary", arguments: ["--keyword", "dorefa,non-uniform", "--fm_enable", "--fm_level", "3"],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], alphas: [[2.6], [-3.4]]),
        Setup(
            label: "fm 4 levels", arguments: ["--keyword", "dorefa,fm_non-uniform", "--fm_enable", "--fm_bit", "2"],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], alphas: [[3.1], [2.7], [-3.3]]),
        Setup(
            label: "fm 4 levels, 3 groups, STE-scale",
            arguments: [
                "--keyword", "dorefa,fm_non-uniform", "--fm_enable", "--fm_bit", "2", "--fm_quant_group", "3", "--fm_grad_type",
                "STE-scale",
            ],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4],
            alphas: [[3.1, 2.2, 4.0], [2.7, 3.5, 2.0], [3.3, 2.4, 3.9]]),
        Setup(
            label: "fm two-sided ternary",
            arguments: ["--keyword", "dorefa,non-uniform", "--fm_enable", "--fm_level", "3", "--fm_half_range"],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], alphas: [[1.7], [-2.2]]),
        Setup(
            label: "wt ternary per channel", arguments: ["--keyword", "dorefa,non-uniform", "--wt_enable", "--wt_level", "3"],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3], alphas: [[9, 11, -7, 10], [8, 12, 9.5, -10.5]]),
        Setup(
            label: "wt ternary per tensor STE-scale",
            arguments: [
                "--keyword", "dorefa,wt_non-uniform", "--wt_enable", "--wt_level", "3", "--wt_quant_group", "1", "--wt_grad_type",
                "STE-scale",
            ],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3], alphas: [[9], [12]]),
    ]

    static func quantizer(_ s: Setup) throws -> Quantizer {
        let options = try QToolOptions().applying(arguments: s.arguments)
        let config = try QuantizerConfig(options: options, tag: s.tag, shape: s.constructorShape)
        #expect(config.method == .nonUniform)
        var state = QuantizerState(iteration: 1, levelNum: Float(config.levels))
        state.alphas = s.alphas
        return Quantizer(name: "q", config: config, state: state)
    }

    /// The clamp inputs `t_k` of element `i` and their bounds, in double.
    static func terms(_ x: Double, _ a: [Double], oneSided: Bool, levels: Int) -> [(t: Double, lo: Double, hi: Double)] {
        if !oneSided { return [(x * a[0], -1, 0), (x * a[1], 0, 1)] }
        var t = [(x * a[0], 0.0, 1.0)]
        if levels >= 3 { t.append(((x - 1 / a[0]) * a[1], 0, 1)) }
        if levels == 4 { t.append(((x - (1 / a[0] + 1 / a[1])) * a[2], 0, 1)) }
        return t
    }

    @Test(arguments: setups)
    func backwardIsTheDerivativeOfTheSurrogate(setup: Setup) throws {
        let q = try Self.quantizer(setup)
        let c = q.config
        let oneSided = c.tag == .wt ? false : c.halfRange
        let count = setup.inputShape.reduce(1, *)
        let groups = setup.alphas[0].count
        let chunk = count / (c.tag == .wt ? groups : setup.inputShape[0] * groups)
        func group(_ i: Int) -> Int { c.tag == .wt ? i / chunk : (i / chunk) % groups }
        func abs(_ k: Int, _ g: Int, _ alphas: [[Double]]) -> [Double] { alphas.map { Swift.abs($0[g]) } }

        // Inputs at least 1e-3 from every clamp bound.
        var rng = SplitMix64(seed: 11)
        let alphas0 = setup.alphas.map { $0.map(Double.init) }
        let spread: Float = c.tag == .wt ? 0.15 : 1.4
        let x: [Float] = (0..<count).map { i in
            while true {
                let v = rng.floats(1, -spread / 2, spread)[0]
                let ts = Self.terms(Double(v), abs(0, group(i), alphas0), oneSided: oneSided, levels: c.levels)
                if ts.allSatisfy({ Swift.abs($0.t - $0.lo) > 1e-3 && Swift.abs($0.t - $0.hi) > 1e-3 }) { return v }
            }
        }
        let r = rng.floats(count, -1, 1)
        let pass = try q.forwardTrain(x, shape: setup.inputShape, parameters: setup.alphas)
        let (dx, dalphas) = pass.backward(r)
        #expect(dalphas.count == setup.alphas.count)

        // STE-scale factors, from the in-range counts of each term (over the whole tensor).
        let termCount = Self.terms(0, [1, 1, 1], oneSided: oneSided, levels: c.levels).count
        var factors = [Double](repeating: 1, count: termCount)
        if c.scaledClamp {
            for k in 0..<termCount {
                let inside = x.indices.filter { i in
                    let t = Self.terms(Double(x[i]), abs(0, group(i), alphas0), oneSided: oneSided, levels: c.levels)[k]
                    return t.t >= t.lo && t.t <= t.hi
                }.count
                let f = (Double(count) / Double(max(inside, 1))).squareRoot()
                factors[k] = inside == 0 || (f >= 1 && f < 2) ? 1 : f
            }
        }
        func surrogate(_ xs: [Double], _ alphas: [[Double]]) -> Double {
            var s = 0.0
            for i in xs.indices {
                let ts = Self.terms(xs[i], abs(0, group(i), alphas), oneSided: oneSided, levels: c.levels)
                for (k, t) in ts.enumerated() { s += Double(r[i]) * factors[k] * min(max(t.t, t.lo), t.hi) }
            }
            return s
        }
        let xd = x.map(Double.init)
        let h = 1e-6
        var worstX = 0.0
        for i in xd.indices {
            var p = xd, m = xd
            p[i] += h
            m[i] -= h
            let fd = (surrogate(p, alphas0) - surrogate(m, alphas0)) / (2 * h)
            worstX = max(worstX, Swift.abs(fd - Double(dx[i])) / max(1, Swift.abs(fd)))
        }
        #expect(worstX <= 1e-4, "dx: worst relative difference \(worstX)")
        var worstA = 0.0
        var nonZero = false
        for k in alphas0.indices {
            for g in 0..<groups {
                var p = alphas0, m = alphas0
                p[k][g] += h
                m[k][g] -= h
                let fd = (surrogate(xd, p) - surrogate(xd, m)) / (2 * h)
                if Swift.abs(fd) > 1e-3 { nonZero = true }
                worstA = max(worstA, Swift.abs(fd - Double(dalphas[k][g])) / max(1, Swift.abs(fd)))
            }
        }
        #expect(worstA <= 1e-4, "d alpha: worst relative difference \(worstA)")
        #expect(nonZero, "the check needs non-zero alpha gradients")
        #expect(dx.contains { $0 != 0 } && dx.contains { $0 == 0 } || c.tag == .wt, "masks on both sides")
    }

    /// The training forward is the eval forward with the given alphas (one definition of the levels).
    @Test(arguments: setups)
    func trainingForwardIsTheEvalForward(setup: Setup) throws {
        let q = try Self.quantizer(setup)
        var rng = SplitMix64(seed: 5)
        let x = rng.floats(setup.inputShape.reduce(1, *), -1, 1.5)
        let pass = try q.forwardTrain(x, shape: setup.inputShape, parameters: setup.alphas)
        #expect(pass.y == (try q(x, shape: setup.inputShape)))
        #expect(q.parameterKeys == setup.alphas.indices.map { "q.alpha\($0)" })
    }

    /// `closed_form` (§11.11): the output is the integer levels `q` times the basis that this
    /// forward refits, `Σ q·x / Σ q²` (or its running mean with `custom-update`); the backward is
    /// the plain one scaled by that basis (the basis itself gets no gradient, so the plain
    /// backward's finite-difference check above covers the rest); `iteration` + 2; the
    /// calibration pass-through is refused only while `iteration + 2 <= --stable`.
    @Test(arguments: [false, true])
    func closedFormRefitsTheBasis(customUpdate: Bool) throws {
        let keyword = "dorefa,non-uniform,closed_form" + (customUpdate ? ",custom-update" : "")
        let options = try QToolOptions().applying(arguments: ["--keyword", keyword, "--fm_enable", "--fm_bit", "2"])
        let config = try QuantizerConfig(options: options, tag: .fm, shape: [1, 3, 1, 1])
        #expect(config.closedForm && config.customUpdate == customUpdate)
        var state = QuantizerState(iteration: 3, levelNum: 4)
        state.alphas = [[3.1], [2.7], [3.3]]
        state.basis = [0.8]
        let q = Quantizer(name: "q", config: config, state: state)
        var plainConfig = config
        plainConfig.closedForm = false
        let plain = Quantizer(name: "q", config: plainConfig, state: state)

        var rng = SplitMix64(seed: 12)
        let x = rng.floats(96, -0.4, 1.6)
        let r = rng.floats(96, -1, 1)
        let pass = try q.forwardTrain(x, shape: [2, 3, 4, 4], parameters: state.alphas)
        let levels = try plain(x, shape: [2, 3, 4, 4])
        #expect(Set(levels).isSubset(of: [0, 1, 2, 3]))
        let qx = zip(levels, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let qq = levels.reduce(0.0) { $0 + Double($1) * Double($1) }
        let auxil = try #require(pass.state["q.auxil"]?.first)
        let basis = try #require(pass.state["q.basis"]?.first)
        #expect(abs(Double(auxil) - qx / qq) <= 1e-6 * qx / qq)
        let want = customUpdate ? (0.8 * 3 + Double(auxil)) / 4 : Double(auxil)
        #expect(abs(Double(basis) - want) <= 1e-6 * want)
        #expect(pass.y == levels.map { $0 * basis })

        let (dx, da) = pass.backward(r)
        let (pdx, pda) = try plain.forwardTrain(x, shape: [2, 3, 4, 4], parameters: state.alphas).backward(r.map { $0 * basis })
        #expect(dx == pdx && da == pda)
        #expect(pda.flatMap { $0 }.contains { $0 != 0 })

        let it = q.stateAfterTrainingForward(["q.iteration": Tensor(floats: [3], shape: [1])])
        #expect(it["q.iteration"]?.floats() == [5])
        var calibrating = q
        calibrating.config.stable = 5
        #expect(throws: QuantizerError.self) { try calibrating.forwardTrain(x, shape: [2, 3, 4, 4], parameters: state.alphas) }
        calibrating.config.stable = 4
        _ = try calibrating.forwardTrain(x, shape: [2, 3, 4, 4], parameters: state.alphas)
    }

    /// The same refusal when a step is built: `resnet20_fatnn_a2w2` with `--stable 5` names
    /// the first quantizer that would calibrate; the inference build still works.
    @Test func stepWithCalibratingQuantizersIsRefused() throws {
        var golden = try TrainGolden("resnet20_fatnn_a2w2")
        golden.options = try golden.options.applying(arguments: ["--stable", "5"])
        do {
            _ = try TrainStep(options: golden.options, stateDict: golden.stateDict)
            Issue.record("the step was built")
        } catch {
            let text = "\(error)"
            #expect(text.contains("calibration") && text.contains(".quant_activation"), "\(text)")
        }
        _ = try ModelBuilder.build(options: golden.options, stateDict: golden.stateDict)
    }

    /// While `iteration <= --stable` QTool calibrates the (unused) clip instead of quantizing;
    /// the trainer refuses that instead of training something else.
    @Test func calibrationPassThroughIsRefused() throws {
        var q = try Self.quantizer(Self.setups[1])
        q.config.stable = 5
        #expect(throws: QuantizerError.self) { try q.forwardTrain([0.1, 0.2], shape: [1, 2, 1, 1], parameters: Self.setups[1].alphas) }
    }
}
