import Foundation
import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// LQ-Nets in training mode (seed-reference §11.9): the least-squares basis fit, the
/// `update_bias` rules, the backward, and QTool's own LQ state after one step.
@Suite struct LQNetTrainingTests {
    /// A 2-bit LQ quantizer with QTool's construction tensors (codec rows LSB first, midpoint
    /// thresholds) and the given basis `[2, qg]` (row-major).
    static func quantizer(
        tag: QuantizerTag, shape: [Int], basis: [Float], extra: [String] = [], iteration: Float = 20
    )
        throws -> Quantizer
    {
        let t = tag == .wt ? "wt" : "fm"
        let options = try QToolOptions().applying(arguments: ["--keyword", "lq", "--\(t)_enable", "--\(t)_bit", "2"] + extra)
        let config = try QuantizerConfig(options: options, tag: tag, shape: shape)
        #expect(config.method == .lqNet)
        var state = QuantizerState(iteration: iteration, levelNum: 4)
        state.basis = basis
        let zero: Float = config.halfRange ? 0 : -1
        state.codecVector = [zero, zero, 1, zero, zero, 1, 1, 1]
        var thr = [Float](repeating: 0, count: 12)
        for i in 1...3 {
            thr[(i - 1) * 4 + i - 1] = 0.5
            thr[(i - 1) * 4 + i] = 0.5
        }
        state.thresholdMultiplier = thr
        return Quantizer(name: "q", config: config, state: state)
    }

    /// The codec row (level index before sorting) of each output value, found by matching it
    /// against the unsorted levels `codec · basis` of its group.
    static func rows(_ y: [Float], _ q: Quantizer, group: (Int) -> Int) -> [Int] {
        let qg = q.config.quantGroup
        return y.indices.map { i in
            let g = group(i)
            let levels = (0..<4).map { l in
                (0..<2).reduce(Float(0)) { $0.addingProduct(q.state.codecVector[l * 2 + $1], q.state.basis[$1 * qg + g]) }
            }
            return levels.firstIndex(of: y[i])!
        }
    }

    /// `auxil` minimises the least-squares objective of its system: activations
    /// `Σ (x − Σ_i b_i·B_i)²`; weights add QTool's regulariser
    /// `Σ_i D_i·B_i² − 2·1e-4·Σ_i basis_i·B_i` with `D_i = (n_ii + 1e-4)·1.000001 − n_ii`.
    /// The check is independent of the solver: central differences (double) of the objective
    /// at `auxil` vanish, relative to the gradient's scale `|BᵀX|`.
    @Test(arguments: [QuantizerTag.fm, .wt])
    func basisFitMinimisesTheLeastSquaresObjective(tag: QuantizerTag) throws {
        let isWeight = tag == .wt
        let shape = isWeight ? [4, 3, 3, 3] : [2, 4, 5, 5]
        let qg = isWeight ? 4 : 1
        let basis: [Float] = isWeight ? [0.05, 0.04, 0.06, 0.05, 0.1, 0.12, 0.09, 0.11] : [1.3, 0.6]
        let q = try Self.quantizer(tag: tag, shape: isWeight ? shape : [1, 4, 1, 1], basis: basis)
        #expect(q.config.quantGroup == qg)
        var rng = SplitMix64(seed: 3)
        let x = isWeight ? rng.floats(108, -0.2, 0.2) : rng.floats(200, -0.5, 2.5)
        let pass = try q.forwardTrain(x, shape: shape, parameters: [])
        let auxil = try #require(pass.state["q.auxil"])
        #expect(auxil.count == 2 * qg)
        let size = x.count / qg
        let group: (Int) -> Int = isWeight ? { $0 / size } : { _ in 0 }
        let rows = Self.rows(pass.y, q, group: group)
        #expect(Set(rows).count == 4, "every level is used")

        for g in 0..<qg {
            let members = x.indices.filter { group($0) == g }
            func code(_ e: Int, _ i: Int) -> Double {
                let b = Double((rows[e] >> i) & 1)
                return isWeight ? 2 * b - 1 : b
            }
            func objective(_ b: [Double]) -> Double {
                var j = 0.0
                for e in members {
                    let r = Double(x[e]) - (code(e, 0) * b[0] + code(e, 1) * b[1])
                    j += r * r
                }
                if isWeight {
                    for i in 0..<2 {
                        let n = members.reduce(0.0) { $0 + code($1, i) * code($1, i) }
                        let d = (n + 1e-4) * 1.000001 - n
                        j += d * b[i] * b[i] - 2e-4 * Double(basis[i * qg + g]) * b[i]
                    }
                }
                return j
            }
            let solution = (0..<2).map { Double(auxil[$0 * qg + g]) }
            let scale = (0..<2).map { i in abs(members.reduce(0.0) { $0 + code($1, i) * Double(x[$1]) }) }.max()!
            for i in 0..<2 {
                var p = solution, m = solution
                let h = 1e-4 * max(abs(solution[i]), 1e-3)
                p[i] += h
                m[i] -= h
                let gradient = (objective(p) - objective(m)) / (2 * h)
                #expect(abs(gradient) <= 1e-4 * scale, "group \(g), b\(i): dJ = \(gradient), scale \(scale)")
            }
        }
    }

    /// `update_bias`: with `custom-update` the running mean `(basis·it + auxil)/(it + 1)`,
    /// else `0.9·basis + 0.1·auxil`; `iteration` + 1 either way.
    @Test(arguments: [false, true])
    func basisUpdateRule(customUpdate: Bool) throws {
        let extra = customUpdate ? ["--keyword", "lq,custom-update"] : []
        let q = try Self.quantizer(tag: .fm, shape: [1, 4, 1, 1], basis: [1.3, 0.6], extra: extra, iteration: 20)
        #expect(q.config.customUpdate == customUpdate)
        var rng = SplitMix64(seed: 4)
        let pass = try q.forwardTrain(rng.floats(200, -0.5, 2.5), shape: [2, 4, 5, 5], parameters: [])
        let auxil = try #require(pass.state["q.auxil"])
        let basis = try #require(pass.state["q.basis"])
        for i in 0..<2 {
            let old = q.state.basis[i]
            let want = customUpdate ? (old * 20 + auxil[i]) / 21 : Float(0.9) * old + Float(0.1) * auxil[i]
            #expect(basis[i] == want)
            #expect(basis[i] != old)
        }
        let after = q.stateAfterTrainingForward(["q.iteration": Tensor(floats: [20], shape: [1])])
        #expect(after["q.iteration"]?.floats() == [21])
    }

    /// The backward as the derivative of the straight-through surrogate, by central
    /// differences: activations `min(x, top)` (the gradient stops at and above the group's
    /// largest level, negative inputs keep theirs), weights the identity.
    @Test(arguments: [QuantizerTag.fm, .wt])
    func backwardIsTheSurrogateDerivative(tag: QuantizerTag) throws {
        let isWeight = tag == .wt
        let shape = isWeight ? [4, 3, 3, 3] : [2, 4, 5, 5]
        let q = try Self.quantizer(
            tag: tag, shape: isWeight ? shape : [1, 4, 1, 1],
            basis: isWeight ? [0.05, 0.04, 0.06, 0.05, 0.1, 0.12, 0.09, 0.11] : [1.3, 0.6])
        var rng = SplitMix64(seed: 9)
        let top: Double = 1.9
        let x: [Float] = (0..<shape.reduce(1, *)).map { _ in
            while true {
                let v = rng.floats(1, -1, 3)[0]
                if isWeight || abs(Double(v) - top) > 1e-3 { return v }
            }
        }
        let r = rng.floats(x.count, -1, 1)
        let (dx, dp) = try q.forwardTrain(x, shape: shape, parameters: []).backward(r)
        #expect(dp.isEmpty)
        func surrogate(_ v: Double) -> Double { isWeight ? v : min(v, top) }
        let h = 1e-6
        var blocked = 0
        for i in x.indices {
            let fd = Double(r[i]) * (surrogate(Double(x[i]) + h) - surrogate(Double(x[i]) - h)) / (2 * h)
            #expect(abs(fd - Double(dx[i])) <= 1e-6, "element \(i) (x = \(x[i])): \(dx[i]) vs \(fd)")
            if dx[i] == 0 { blocked += 1 }
        }
        #expect(isWeight ? blocked == 0 : blocked > 0 && blocked < x.count)
    }

    /// While `iteration` (after the increment) `<= --stable` QTool returns the input: the
    /// trainer does too, with an identity backward, and still updates the basis.
    @Test func passThroughReturnsTheInputAndStillFits() throws {
        var q = try Self.quantizer(tag: .fm, shape: [1, 4, 1, 1], basis: [1.3, 0.6], iteration: 2)
        q.config.stable = 3
        var rng = SplitMix64(seed: 4)
        let x = rng.floats(200, -0.5, 2.5)
        let pass = try q.forwardTrain(x, shape: [2, 4, 5, 5], parameters: [])
        #expect(pass.y == x)
        #expect(pass.backward(x).dx == x)
        #expect(pass.state["q.basis"] != q.state.basis)
        q.config.stable = 2
        #expect(try q.forwardTrain(x, shape: [2, 4, 5, 5], parameters: []).y != x)
    }

    /// A singular system (two-sided activations that all fall on one level: every code row is
    /// the same) stops with an error naming the quantizer, as QTool's `torch.inverse` does,
    /// instead of writing a NaN basis.
    @Test func singularFitIsAnError() throws {
        let q = try Self.quantizer(tag: .fm, shape: [1, 4, 1, 1], basis: [1.3, 0.6], extra: ["--fm_half_range"])
        #expect(!q.config.halfRange)
        do {
            _ = try q.forwardTrain([Float](repeating: -5, count: 16), shape: [1, 4, 2, 2], parameters: [])
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("q: ") && "\(error)".contains("singular"), "\(error)")
        }
    }

    /// The inverse behind the fit is PyTorch's float32 `torch.inverse` bit for bit on 2 × 2
    /// systems (LQ-Nets' systems and random ones, pivoting included); 3 × 3 within rounding.
    @Test func inverseIsTorchs() throws {
        guard Python.interpreter != nil || Python.isRequired else { return }
        var rng = SplitMix64(seed: 21)
        var systems: [[Float]] = []
        for k in 0..<400 {
            if k % 2 == 0 {
                let n = Float([8, 16, 72, 144, 288][k % 5])
                let s = Float(Int(rng.floats(1, -0.45, 0.45)[0] * n) * 2)
                let d = (n + Float(1e-4)) * Float(1.000001)
                systems.append([d, s, s, d])
            } else {
                systems.append(rng.floats(4, -3, 3))
            }
        }
        let ours = systems.map { LQNetTraining.inverse($0, n: 2) }
        let bits = systems.map { $0.map { Int($0.bitPattern) } }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: bits), as: UTF8.self)
        let script = #"""
            import json, os, sys
            os.environ["MKL_CBWR"] = "COMPATIBLE"  # before MKL loads: see the doc comment
            import numpy as np, torch
            torch.set_num_threads(1)
            a = np.array(json.loads(sys.argv[1]), dtype=np.uint32).view(np.float32).reshape(-1, 2, 2)
            inv = torch.inverse(torch.from_numpy(a.copy())).numpy().reshape(-1, 4)
            print(json.dumps(inv.view(np.uint32).astype(np.int64).tolist()))
            """#
        let theirs = try #require(try Python.json(script, [json]) as? [[Int]])
        var differing = 0
        for (o, t) in zip(ours, theirs) where o.map({ Int($0.bitPattern) }) != t { differing += 1 }
        #expect(differing == 0, "\(differing) of \(systems.count) inverses differ from torch's bits")

        let a: [Float] = [4, 1, 0.5, 1, 3, 0.25, 0.5, 0.25, 2]
        let inv = LQNetTraining.inverse(a, n: 3)
        for i in 0..<3 {
            for j in 0..<3 {
                let v = (0..<3).reduce(0.0) { $0 + Double(a[i * 3 + $1]) * Double(inv[$1 * 3 + j]) }
                #expect(abs(v - (i == j ? 1 : 0)) <= 1e-6)
            }
        }
    }

    /// QTool's own step, `resnet20_lq_a2w2`: every weight quantizer's `basis` and `auxil` and
    /// every `iteration` after the step is bit-identical to `after_step.pth` (the fit runs
    /// QTool's float32 operations on the checkpoint's weights). The activation quantizers fit
    /// train-mode activations, which our forward computes with other rounding than torch's
    /// float32 convs (about 1e-7 relative), so their `basis`/`auxil` agree to 1e-6 relative.
    @Test func goldenLQStateIsBitIdentical() throws {
        let golden = try TrainGolden("resnet20_lq_a2w2")
        let step = try TrainStep(options: golden.options, stateDict: golden.stateDict)
        let r = try step.run(x: golden.npy("train_x.npy"), labels: golden.labels())
        let got = Dictionary(r.stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        var checked = 0
        var differing: [String] = []
        var worstActivation = 0.0
        for (key, want) in try golden.afterStep()
        where key.hasSuffix(".basis") || key.hasSuffix(".auxil") || key.hasSuffix(".iteration") {
            checked += 1
            let have = try #require(got[key]).doubles()
            if key.contains(".quant_activation.") && !key.hasSuffix(".iteration") {
                let w = want.doubles()
                for i in w.indices { worstActivation = max(worstActivation, abs(have[i] - w[i]) / abs(w[i])) }
            } else if have != want.doubles() {
                differing.append(key)
            }
        }
        #expect(checked == 120)
        #expect(differing.isEmpty, "not bit-identical: \(differing)")
        #expect(worstActivation <= 1e-6, "activation basis/auxil: worst relative difference \(worstActivation)")
    }
}
