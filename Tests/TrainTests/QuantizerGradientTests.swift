import Foundation
import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// The training-mode quantizers' backward passes (`Quantizer.forwardTrain`) against a torch
/// twin written from seed-reference §11.5-11.8 (autograd through the same formulas, rounding
/// a straight-through `torch.round`), and the smooth part of the DoReFa weight backward (tanh
/// and the max normalisation) against central differences.
///
/// Inputs are random and checked to lie at least 1e-3 (in units of the quantizer's grid) from
/// every rounding and clamp boundary, so the two implementations see the same levels and masks.
@Suite struct QuantizerGradientTests {
    /// One quantizer set-up: options, tag, constructor shape, input shape, clip values.
    struct Setup: CustomStringConvertible, Sendable {
        var label: String
        var arguments: [String]
        var tag: QuantizerTag
        var constructorShape: [Int]
        var inputShape: [Int]
        var clip: [Float]
        var description: String { label }
    }

    static let setups: [Setup] = [
        Setup(
            label: "dorefa fm", arguments: ["--keyword", "dorefa", "--fm_enable", "--fm_bit", "2", "--fm_boundary", "1.5"],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], clip: []),
        Setup(
            label: "dorefa wt", arguments: ["--keyword", "dorefa", "--wt_enable", "--wt_bit", "2"],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3], clip: []),
        Setup(
            label: "dorefa wt var-mean 4 bit",
            arguments: ["--keyword", "dorefa", "--wt_enable", "--wt_bit", "4", "--wt_adaptive", "var-mean"],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3], clip: []),
        Setup(
            label: "pact fm", arguments: ["--keyword", "pact", "--fm_enable", "--fm_bit", "2"],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], clip: [0.9]),
        Setup(
            label: "lsq fm per tensor", arguments: ["--keyword", "dorefa,lsq", "--fm_enable", "--fm_bit", "2", "--fm_quant_group", "1"],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], clip: [1.1]),
        Setup(
            label: "lsq fm per channel, element-scale",
            arguments: [
                "--keyword", "dorefa,lsq", "--fm_enable", "--fm_bit", "3", "--fm_quant_group", "-1", "--fm_grad_scale", "element-scale",
            ],
            tag: .fm, constructorShape: [1, 3, 1, 1], inputShape: [2, 3, 4, 4], clip: [0.8, -1.2, 1.4]),
        Setup(
            label: "lsq wt per channel var-mean",
            arguments: ["--keyword", "dorefa,lsq", "--wt_enable", "--wt_bit", "2", "--wt_adaptive", "var-mean"],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3], clip: [0.9, 1.3, 1.1, 0.7]),
        Setup(
            label: "lsq wt per tensor STE-scale",
            arguments: [
                "--keyword", "dorefa,lsq", "--wt_enable", "--wt_bit", "2", "--wt_quant_group", "1", "--wt_grad_type", "STE-scale",
            ],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3], clip: [0.03]),
    ]

    static func quantizer(_ s: Setup) throws -> Quantizer {
        let options = try QToolOptions().applying(arguments: s.arguments)
        let config = try QuantizerConfig(options: options, tag: s.tag, shape: s.constructorShape)
        var state = QuantizerState(iteration: 1, levelNum: Float(config.levels))
        state.clipVal = s.clip
        return Quantizer(name: "q", config: config, state: state)
    }

    /// Random input whose quantizer arguments are all >= 1e-3 grid units from any boundary.
    static func input(_ s: Setup, _ q: Quantizer, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        let count = s.inputShape.reduce(1, *)
        let spread: Float = s.tag == .wt ? 0.3 : 1.6
        return (0..<count).map { _ in
            while true {
                let v = rng.floats(1, -spread / 2, spread)[0]
                if s.tag == .wt || farFromBoundaries(v, q) { return v }
            }
        }
    }

    /// For activations: `v` away from 0, the clip and every rounding midpoint of every clip.
    static func farFromBoundaries(_ v: Float, _ q: Quantizer) -> Bool {
        let n = Double(q.config.levels - 1)
        let clips = q.config.method == .dorefa ? [q.config.boundary] : q.state.clipVal.map { Double(abs($0)) }
        return clips.allSatisfy { c in
            let t = Double(v) / c * n
            let frac = t - t.rounded(.down)
            return abs(Double(v)) > 1e-3 * c && abs(Double(v) - c) > 1e-3 * c && abs(frac - 0.5) > 1e-3
        }
    }

    @Test(arguments: setups)
    func backwardMatchesTheTorchTwin(setup: Setup) throws {
        guard Python.interpreter != nil || Python.isRequired else { return }
        let q = try Self.quantizer(setup)
        let x = Self.input(setup, q, seed: 7)
        var rng = SplitMix64(seed: 8)
        let r = rng.floats(x.count, -1, 1)
        let pass = try q.forwardTrain(x, shape: setup.inputShape, parameters: q.parameterValues)
        let (dx, dp) = pass.backward(r)

        let c = q.config
        let spec: [String: Any] = [
            "method": c.method!.rawValue, "tag": c.tag == .wt ? "wt" : "fm", "x": x.map(Double.init), "r": r.map(Double.init),
            "shape": setup.inputShape, "clip": setup.clip.map(Double.init), "levels": c.levels, "boundary": c.boundary,
            "half_range": c.halfRange, "quant_group": c.quantGroup, "var_mean": c.adaptive == .varMean,
            "grad_factor": c.gradFactor, "scaled_clamp": c.scaledClamp,
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let out = try #require(try Python.json(Self.twin, [json]) as? [String: Any])
        let y = try #require(out["y"] as? [Double]), tdx = try #require(out["dx"] as? [Double])
        #expect(Difference(pass.y, y.map(Float.init)).maxAbs == 0, "forward \(setup)")
        #expect(Difference(dx, tdx.map(Float.init)).maxAbs <= 1e-5, "dx \(setup)")
        if let tclip = out["dclip"] as? [Double] {
            let ours = try #require(dp.first)
            #expect(ours.count == tclip.count)
            for (a, b) in zip(ours, tclip) { #expect(abs(Double(a) - b) <= 1e-5 * max(1, abs(b)), "dclip \(setup): \(ours) vs \(tclip)") }
            #expect(tclip.contains { $0 != 0 }, "the check needs a non-zero clip gradient")
        } else {
            #expect(dp.isEmpty)
        }
        #expect(tdx.contains { $0 != 0 } && tdx.contains { $0 == 0 } || c.tag == .wt, "masks on both sides")
    }

    /// DoReFa weights: with rounding straight-through, the backward is the exact derivative of
    /// `Σ r·2u(w)`, `u = tanh(w) / (2 max|tanh(w)|) + 1/2`; central differences in double.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func doReFaWeightBackwardMatchesFiniteDifferences(seed: UInt64) throws {
        let q = try Self.quantizer(Self.setups[1])
        var rng = SplitMix64(seed: seed)
        let w = rng.floats(108, -0.4, 0.4)
        let r = rng.floats(108, -1, 1)
        let (dw, _) = try q.forwardTrain(w, shape: [4, 3, 3, 3], parameters: []).backward(r)
        func f(_ v: [Double]) -> Double {
            let t = v.map { Foundation.tanh($0) }
            let m = t.map(abs).max()!
            return zip(r, t).reduce(0) { $0 + Double($1.0) * 2 * ($1.1 / (2 * m) + 0.5) }
        }
        let base = w.map(Double.init)
        let h = 1e-6
        var worst = 0.0
        for i in base.indices {
            var p = base, m = base
            p[i] += h
            m[i] -= h
            worst = max(worst, abs((f(p) - f(m)) / (2 * h) - Double(dw[i])))
        }
        #expect(worst <= 1e-4, "max difference \(worst)")
    }

    /// Training state: one training forward increments `iteration` (DoReFa family).
    @Test func iterationIsIncrementedOncePerTrainingForward() throws {
        let q = try Self.quantizer(Self.setups[4])
        let before = ["q.iteration": Tensor(floats: [3], shape: [1]), "q.level_num": Tensor(floats: [4], shape: [1])]
        let after = q.stateAfterTrainingForward(before)
        #expect(Set(after.keys) == ["q.iteration"])
        #expect(after["q.iteration"]?.floats() == [4])
    }

    /// The twin: QTool's formulas (§11.6-11.8) under torch autograd, float32.
    static let twin = #"""
        import json, sys, torch
        s = json.loads(sys.argv[1])
        x = torch.tensor(s["x"], dtype=torch.float32).reshape(s["shape"]).requires_grad_()
        r = torch.tensor(s["r"], dtype=torch.float32).reshape(s["shape"])
        n = s["levels"] - 1
        class RoundSTE(torch.autograd.Function):
            @staticmethod
            def forward(ctx, v): return torch.round(v)
            @staticmethod
            def backward(ctx, g): return g
        ste = RoundSTE.apply
        def gscale(t, g):
            if int(g) == 1: return t
            return (t - t * g).detach() + t * g
        def clamp(v, lo, hi):
            y = torch.clamp(v, lo, hi)
            if not s["scaled_clamp"]: return y
            inside = ((v >= lo) & (v <= hi)).sum().item()
            if inside == 0: return y
            k = (v.numel() / inside) ** 0.5
            return gscale(y, k)
        clip = None
        v = x
        if s["tag"] == "wt" and s["var_mean"]:
            ng = s["quant_group"]
            std, mean = torch.std_mean(x.data.reshape(ng, -1, 1, 1, 1), 1)
            v = (x - mean) / std
        if s["method"] == "dorefa" and s["tag"] == "fm":
            c = s["boundary"]
            y = torch.clamp(v, 0, c); y = ste(y * (n / c)) / (n / c)
        elif s["method"] in ("dorefa", "pact") and s["tag"] == "wt":
            t = torch.tanh(v); u = t / (2 * t.abs().max()) + 0.5
            y = 2 * (ste(u * (n / s["boundary"])) / (n / s["boundary"])) - 1
        elif s["method"] == "pact":
            clip = torch.tensor(s["clip"], dtype=torch.float32).requires_grad_()
            y = torch.clamp(v, min=0); y = torch.where(y < clip, y, clip)
            a = clip.detach(); y = ste(y * (n / a)) / (n / a)
        elif s["method"] == "lsq":
            clip = torch.tensor(s["clip"], dtype=torch.float32).requires_grad_()
            qg = s["quant_group"]
            if s["tag"] == "wt":
                cs = gscale(clip.abs(), s["grad_factor"]).reshape(qg, 1, 1, 1)
                shp = v.shape
                z = v.reshape(qg, -1, shp[2], shp[3]) / cs
                z = clamp(z, -1, 1); z = (z + 1) / 2; z = ste(z * n) / n; y = ((z * 2 - 1) * cs).reshape(shp)
            else:
                cs = gscale(clip.abs(), s["grad_factor"]).reshape(1, -1, 1, 1) if qg > 1 else gscale(clip.abs(), s["grad_factor"])
                z = clamp(v / cs, 0, 1); y = (ste(z * n) / n) * cs
        (y * r).sum().backward()
        out = {"y": y.detach().flatten().tolist(), "dx": x.grad.flatten().tolist()}
        if clip is not None: out["dclip"] = clip.grad.flatten().tolist()
        print(json.dumps(out))
        """#
}

/// Quantizers without a training mode yet are refused when the step is built, naming the
/// quantizer and what is missing; the inference build of the same checkpoint still works.
@Suite struct UntrainableQuantizerTests {
    /// Every quantizer method trains now, and `--stable` calibrates PACT/LSQ clips
    /// (``StableCalibrationTests``); calibrating a var-mean-normalised weight's clip or
    /// non-uniform alphas does not (the checkpoints' `iteration` is 1, so `--stable 5` asks).
    @Test(arguments: [
        ("resnet20_lsq_a2w2", "normalised weight clip_val calibration"), ("resnet20_fatnn_a2w2", "alphas calibration"),
    ])
    func refusedWithTheQuantizerNamed(name: String, method: String) throws {
        let golden = try TrainGolden(name)
        let options = try golden.options.applying(arguments: ["--stable", "5"])
        #expect(throws: TrainError.self) { try TrainStep(options: options, stateDict: golden.stateDict) }
        do {
            _ = try TrainStep(options: options, stateDict: golden.stateDict)
        } catch {
            let text = "\(error)"
            #expect(text.contains("training-mode \(method)") && text.contains(".quant_"), "\(text)")
        }
        _ = try ModelBuilder.build(options: options, stateDict: golden.stateDict)
    }
}
