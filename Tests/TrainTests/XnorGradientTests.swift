import Foundation
import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// XNOR-Net, XNOR++ and Bi-Real quantizers in training mode (`Quantizer.forwardTrain`):
/// against a torch twin written from seed-reference §11.10 (`XnorActivation` / `XnorWeight`
/// as autograd functions whose backward is `dy · mask`, `E` detached, XNOR++'s `y · gamma`
/// under autograd), and against central differences in float64 of the surrogate each
/// `--fm_grad_type` / `--wt_grad_type` stands for (STE: `hardtanh`; Triangle: `2x − x|x|` on
/// `(−1, 1)`; otherwise the identity), with the `var-mean` statistics held fixed (detached).
///
/// Inputs are kept at least 1e-3 from 0 and ±1 (the sign and mask boundaries).
@Suite struct XnorGradientTests {
    struct Setup: CustomStringConvertible, Sendable {
        var label: String
        var arguments: [String]
        var tag: QuantizerTag
        var shape: [Int]
        var description: String { label }
    }

    static let setups: [Setup] = [
        Setup(label: "fm none, no grad type", arguments: ["--fm_enable", "--fm_bit", "1"], tag: .fm, shape: [2, 3, 4, 4]),
        Setup(label: "fm STE", arguments: ["--fm_enable", "--fm_bit", "1", "--fm_grad_type", "STE"], tag: .fm, shape: [2, 3, 4, 4]),
        Setup(
            label: "fm Triangle", arguments: ["--fm_enable", "--fm_bit", "1", "--fm_grad_type", "Triangle"], tag: .fm, shape: [2, 3, 4, 4]),
        Setup(
            label: "fm channel STE", arguments: ["--fm_enable", "--fm_bit", "1", "--fm_custom", "channel", "--fm_grad_type", "STE"],
            tag: .fm, shape: [2, 3, 4, 4]),
        Setup(
            label: "fm resolution Triangle",
            arguments: ["--fm_enable", "--fm_bit", "1", "--fm_custom", "resolution", "--fm_grad_type", "Triangle"],
            tag: .fm, shape: [2, 3, 4, 4]),
        Setup(label: "wt pass", arguments: ["--wt_enable", "--wt_bit", "1"], tag: .wt, shape: [4, 3, 3, 3]),
        Setup(label: "wt STE", arguments: ["--wt_enable", "--wt_bit", "1", "--wt_grad_type", "STE"], tag: .wt, shape: [4, 3, 3, 3]),
        Setup(
            label: "wt STE var-mean", arguments: ["--wt_enable", "--wt_bit", "1", "--wt_grad_type", "STE", "--wt_adaptive", "var-mean"],
            tag: .wt, shape: [4, 3, 3, 3]),
        Setup(
            label: "xnor++ wt per channel", arguments: ["--keyword", "xnor,gamma", "--wt_enable", "--wt_bit", "1"], tag: .wt,
            shape: [4, 3, 3, 3]),
        Setup(
            label: "xnor++ wt per tensor, STE, var-mean",
            arguments: [
                "--keyword", "xnor,gamma", "--wt_enable", "--wt_bit", "1", "--wt_quant_group", "1", "--wt_grad_type", "STE",
                "--wt_adaptive", "var-mean",
            ],
            tag: .wt, shape: [4, 3, 3, 3]),
    ]

    /// The quantizer of `s` (keyword `xnor` unless given), binarising (`--stable -1`), with
    /// gamma values other than 1 for XNOR++.
    static func quantizer(_ s: Setup) throws -> Quantizer {
        let arguments = (s.arguments.contains("--keyword") ? [] : ["--keyword", "xnor"]) + s.arguments + ["--stable", "-1"]
        let options = try QToolOptions().applying(arguments: arguments)
        let config = try QuantizerConfig(options: options, tag: s.tag, shape: s.shape)
        var state = QuantizerState(iteration: 0, levelNum: 2)
        if config.gamma == .learned { state.gamma = (0..<config.quantGroup).map { 0.7 + 0.2 * Float($0) } }
        return Quantizer(name: "q", config: config, state: state)
    }

    /// Random values at least 1e-3 from 0 and ±1; weights small (as trained weights are) but
    /// with some beyond ±1 so the STE mask has both sides.
    static func input(_ s: Setup, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        let spread: Float = 1.6
        return (0..<s.shape.reduce(1, *)).map { _ in
            while true {
                let v = rng.floats(1, -spread, spread)[0]
                if abs(v) > 1e-3 && abs(abs(v) - 1) > 1e-3 { return v }
            }
        }
    }

    @Test(arguments: setups)
    func backwardMatchesTheTorchTwin(setup: Setup) throws {
        guard Python.interpreter != nil || Python.isRequired else { return }
        let q = try Self.quantizer(setup)
        #expect(q.config.method == .xnor)
        let x = Self.input(setup, seed: 11)
        var rng = SplitMix64(seed: 12)
        let r = rng.floats(x.count, -1, 1)
        let pass = try q.forwardTrain(x, shape: setup.shape, parameters: q.parameterValues)
        let (dx, dp) = pass.backward(r)
        let c = q.config
        let spec: [String: Any] = [
            "tag": c.tag == .wt ? "wt" : "fm", "x": x.map(Double.init), "r": r.map(Double.init), "shape": setup.shape,
            "custom": c.custom.rawValue, "grad_type": c.gradType.rawValue, "quant_group": c.quantGroup,
            "var_mean": c.adaptive == .varMean, "gamma": q.state.gamma.map(Double.init),
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let out = try #require(try Python.json(Self.twin, [json]) as? [String: Any])
        let y = try #require(out["y"] as? [Double]), tdx = try #require(out["dx"] as? [Double])
        // The `channel` mean sums a strided axis in order (see XnorQuantizer): an ulp apart.
        #expect(Difference(pass.y, y.map(Float.init)).maxAbs <= (c.custom == .channel ? 1e-6 : 0), "forward \(setup)")
        #expect(Difference(dx, tdx.map(Float.init)).maxAbs <= 1e-6, "dx \(setup)")
        if let tg = out["dgamma"] as? [Double] {
            let ours = try #require(dp.first)
            #expect(ours.count == tg.count)
            for (a, b) in zip(ours, tg) { #expect(abs(Double(a) - b) <= 1e-5 * max(1, abs(b)), "dgamma \(setup): \(ours) vs \(tg)") }
        } else {
            #expect(dp.isEmpty)
        }
        if c.gradType == .ste || c.gradType == .triangle { #expect(tdx.contains(0) && tdx.contains { $0 != 0 }, "masks on both sides") }
    }

    /// The backward is the exact derivative of `Σ r · gamma[g] · s((x − mean) / std)`, `s` the
    /// surrogate of the grad type, `mean`/`std` fixed (1, 0 without var-mean, gamma 1 without
    /// XNOR++); and `dgamma` that of `Σ r · Q · gamma`. Central differences in float64.
    @Test(arguments: setups)
    func backwardMatchesFiniteDifferencesOfItsSurrogate(setup: Setup) throws {
        let q = try Self.quantizer(setup)
        let x = Self.input(setup, seed: 21)
        var rng = SplitMix64(seed: 22)
        let r = rng.floats(x.count, -1, 1).map(Double.init)
        let pass = try q.forwardTrain(x, shape: setup.shape, parameters: q.parameterValues)
        let (dx, dp) = pass.backward(r.map(Float.init))
        let c = q.config
        let groups = c.tag == .wt ? c.quantGroup : 1
        let size = x.count / groups
        // The detached statistics (unbiased std, no epsilon), in double.
        var mean = [Double](repeating: 0, count: groups), std = [Double](repeating: 1, count: groups)
        if c.adaptive == .varMean {
            for g in 0..<groups {
                let v = x[(g * size)..<((g + 1) * size)].map(Double.init)
                mean[g] = v.reduce(0, +) / Double(size)
                std[g] = (v.reduce(0) { $0 + ($1 - mean[g]) * ($1 - mean[g]) } / Double(size - 1)).squareRoot()
            }
        }
        let gamma = c.gamma == .learned ? q.state.gamma.map(Double.init) : [Double](repeating: 1, count: groups)
        let triangle = c.tag == .fm && c.gradType == .triangle
        func surrogate(_ v: Double) -> Double {
            switch c.gradType {
            case .ste: return min(max(v, -1), 1)
            case .triangle where triangle: return v >= 1 ? 1 : (v <= -1 ? -1 : 2 * v - v * abs(v))
            default: return v
            }
        }
        func f(_ v: [Double]) -> Double {
            v.indices.reduce(0) { acc, i in
                let g = i / size
                return acc + r[i] * gamma[g] * surrogate((v[i] - mean[g]) / std[g])
            }
        }
        let base = x.map(Double.init)
        let h = 1e-6
        var worst = 0.0
        for i in base.indices {
            var p = base, m = base
            p[i] += h
            m[i] -= h
            worst = max(worst, abs((f(p) - f(m)) / (2 * h) - Double(dx[i])))
        }
        #expect(worst <= 1e-5, "dx: max difference \(worst)")

        guard c.gamma == .learned else { return }
        // y is linear in gamma: d/dgamma[g] Σ r·y = Σ_g r·Q with Q = y / gamma (gamma ≠ 0 here).
        let y = pass.y.map(Double.init)
        for g in 0..<groups {
            func fg(_ delta: Double) -> Double {
                ((g * size)..<((g + 1) * size)).reduce(0) { $0 + r[$1] * y[$1] / gamma[g] * (gamma[g] + delta) }
            }
            let numeric = (fg(h) - fg(-h)) / (2 * h)
            let ours = Double(try #require(dp.last)[g])
            #expect(abs(numeric - ours) <= 1e-5 * max(1, abs(numeric)), "dgamma[\(g)]: \(ours) vs \(numeric)")
        }
    }

    /// XNOR++'s gamma is a trainable parameter named by its key; XNOR has none, and a training
    /// forward changes no XNOR state (`iteration` never moves, seed-reference §11.12).
    @Test func gammaIsTheOnlyParameterAndNoStateMoves() throws {
        let plain = try Self.quantizer(Self.setups[6]), plus = try Self.quantizer(Self.setups[8])
        #expect(plain.parameterKeys.isEmpty)
        #expect(plus.parameterKeys == ["q.gamma"])
        #expect(plus.parameterValues == [plus.state.gamma])
        let before = ["q.iteration": Tensor(floats: [0], shape: [1]), "q.level_num": Tensor(floats: [2], shape: [1])]
        #expect(plus.stateAfterTrainingForward(before).isEmpty)
        // A gamma of the wrong length is refused, naming the key.
        #expect(throws: QuantizerError.self) {
            try plus.forwardTrain(Self.input(Self.setups[8], seed: 1), shape: [4, 3, 3, 3], parameters: [[1]])
        }
    }

    /// With `iteration <= stable` (the default `--stable 0`) XNOR returns its input: the
    /// gradient passes unchanged and gamma gets none (PyTorch's `None`: skipped by SGD).
    @Test func passThroughGivesGammaNoGradient() throws {
        let s = Self.setups[8]
        let options = try QToolOptions().applying(arguments: s.arguments)
        let config = try QuantizerConfig(options: options, tag: .wt, shape: s.shape)
        var state = QuantizerState(iteration: 0, levelNum: 2)
        state.gamma = [Float](repeating: 1.5, count: 4)
        let q = Quantizer(name: "q", config: config, state: state)
        let x = Self.input(s, seed: 3)
        let pass = try q.forwardTrain(x, shape: s.shape, parameters: q.parameterValues)
        #expect(pass.y == x)
        let (dx, dp) = pass.backward([Float](repeating: 0.5, count: x.count))
        #expect(dx == [Float](repeating: 0.5, count: x.count))
        #expect(dp.isEmpty)
    }

    /// The twin: `models/xnor.py` and the xnor branch of `quantization.forward` (§11.10).
    static let twin = #"""
        import json, sys, torch
        s = json.loads(sys.argv[1])
        x = torch.tensor(s["x"], dtype=torch.float32).reshape(s["shape"]).requires_grad_()
        r = torch.tensor(s["r"], dtype=torch.float32).reshape(s["shape"])
        def mask(v, grad_type, weight):
            m = torch.ones_like(v)
            if grad_type == "STE":
                m.masked_fill_(v.ge(1), 0); m.masked_fill_(v.le(-1), 0)
            elif grad_type == "Triangle" and not weight:
                m = 2 - 2 * v.clone().abs()
                m.masked_fill_(v.ge(1), 0); m.masked_fill_(v.le(-1), 0)
            return m
        class Act(torch.autograd.Function):
            @staticmethod
            def forward(ctx, v, custom, grad_type):
                b, c, h, w = v.shape
                if custom == "resolution":
                    E = v.detach().abs().reshape(b, c, -1).mean(2, keepdim=True).reshape(b, c, 1, 1)
                elif custom == "channel":
                    E = v.detach().abs().mean(1, keepdim=True)
                else:
                    E = 1
                y = torch.ones_like(v); y.masked_fill_(v < 0, -1); y.mul_(E)
                ctx.save_for_backward(mask(v, grad_type, False))
                return y
            @staticmethod
            def backward(ctx, g):
                m, = ctx.saved_tensors
                return g * m, None, None
        class Wt(torch.autograd.Function):
            @staticmethod
            def forward(ctx, v, qg, grad_type):
                E = v.detach().abs().reshape(qg, -1).mean(1, keepdim=True).reshape(qg, 1, 1, 1)
                y = torch.ones_like(v); y.masked_fill_(v < 0, -1); y.mul_(E)
                ctx.save_for_backward(mask(v, grad_type, True))
                return y
            @staticmethod
            def backward(ctx, g):
                m, = ctx.saved_tensors
                return g * m, None, None
        gamma = None
        if s["tag"] == "fm":
            y = Act.apply(x, s["custom"], s["grad_type"])
        else:
            qg = s["quant_group"]
            v = x
            if s["var_mean"]:
                std, mean = torch.std_mean(x.data.reshape(qg, -1, 1, 1, 1), 1)
                v = (x - mean) / std
            y = Wt.apply(v, qg, s["grad_type"])
            if s["gamma"]:
                gamma = torch.tensor(s["gamma"], dtype=torch.float32).reshape(qg, 1, 1, 1).requires_grad_()
                y = y * gamma
        (y * r).sum().backward()
        out = {"y": y.detach().flatten().tolist(), "dx": x.grad.flatten().tolist()}
        if gamma is not None: out["dgamma"] = gamma.grad.flatten().tolist()
        print(json.dumps(out))
        """#
}
