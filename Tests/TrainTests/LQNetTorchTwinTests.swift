import Foundation
import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// LQ-Nets training forward and backward (seed-reference §11.9) against a torch twin written
/// from the reference: sorted levels, strict-threshold assignment in QTool's group views
/// (activations channels first, weights as rows), adaptive normalisation and its restore,
/// integer bit planes, the least-squares fit (solved in float64 by torch), and the backward
/// (activations stop at the group's top level). Covers what the golden case does not: activation
/// groups, `mean`/`var` activations, `mean`/`var`/`mean-var` weights, two-sided activations.
@Suite struct LQNetTorchTwinTests {
    struct Setup: CustomStringConvertible, Sendable {
        var label: String
        var arguments: [String]
        var tag: QuantizerTag
        var constructorShape: [Int]
        var inputShape: [Int]
        var description: String { label }
    }

    static let setups: [Setup] = [
        Setup(label: "fm", arguments: ["--fm_enable"], tag: .fm, constructorShape: [1, 4, 1, 1], inputShape: [2, 4, 5, 5]),
        Setup(
            label: "fm 2 groups", arguments: ["--fm_enable", "--fm_quant_group", "2"],
            tag: .fm, constructorShape: [1, 4, 1, 1], inputShape: [2, 4, 5, 5]),
        Setup(
            label: "fm mean", arguments: ["--fm_enable", "--fm_adaptive", "mean"],
            tag: .fm, constructorShape: [1, 4, 1, 1], inputShape: [2, 4, 5, 5]),
        Setup(
            label: "fm var, 4 groups", arguments: ["--fm_enable", "--fm_adaptive", "var", "--fm_quant_group", "4"],
            tag: .fm, constructorShape: [1, 4, 1, 1], inputShape: [2, 4, 5, 5]),
        Setup(
            label: "fm two-sided", arguments: ["--fm_enable", "--fm_half_range"],
            tag: .fm, constructorShape: [1, 4, 1, 1], inputShape: [2, 4, 5, 5]),
        Setup(label: "wt per channel", arguments: ["--wt_enable"], tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3]),
        Setup(
            label: "wt mean", arguments: ["--wt_enable", "--wt_adaptive", "mean"],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3]),
        Setup(
            label: "wt var per tensor", arguments: ["--wt_enable", "--wt_adaptive", "var", "--wt_quant_group", "1"],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3]),
        Setup(
            label: "wt mean-var", arguments: ["--wt_enable", "--wt_adaptive", "mean-var"],
            tag: .wt, constructorShape: [4, 3, 3, 3], inputShape: [4, 3, 3, 3]),
    ]

    @Test(arguments: setups)
    func trainingPassMatchesTheTorchTwin(setup: Setup) throws {
        guard Python.interpreter != nil || Python.isRequired else { return }
        let t = setup.tag == .wt ? "wt" : "fm"
        let options = try QToolOptions().applying(arguments: ["--keyword", "lq", "--\(t)_bit", "2"] + setup.arguments)
        let config = try QuantizerConfig(options: options, tag: setup.tag, shape: setup.constructorShape)
        let qg = config.quantGroup
        var rng = SplitMix64(seed: 17)
        var state = QuantizerState(iteration: 5, levelNum: 4)
        // Bases per group; for weights scaled to the (normalised) inputs' range.
        let unit: Float = setup.tag == .wt && config.adaptive != .var && config.adaptive != .meanVar ? 0.05 : 0.5
        state.basis = rng.floats(qg, 0.6 * unit, 1.2 * unit) + rng.floats(qg, 1.4 * unit, 2.4 * unit)
        let zero: Float = config.halfRange ? 0 : -1
        state.codecVector = [zero, zero, 1, zero, zero, 1, 1, 1]
        var thr = [Float](repeating: 0, count: 12)
        for i in 1...3 {
            thr[(i - 1) * 4 + i - 1] = 0.5
            thr[(i - 1) * 4 + i] = 0.5
        }
        state.thresholdMultiplier = thr
        let q = Quantizer(name: "q", config: config, state: state)
        let count = setup.inputShape.reduce(1, *)
        let x = setup.tag == .wt ? rng.floats(count, -0.2, 0.25) : rng.floats(count, -0.6, 2.4)
        let r = rng.floats(count, -1, 1)
        let pass = try q.forwardTrain(x, shape: setup.inputShape, parameters: [])
        let (dx, _) = pass.backward(r)
        let auxil = try #require(pass.state["q.auxil"])

        let spec: [String: Any] = [
            "tag": t, "x": x.map(Double.init), "r": r.map(Double.init), "shape": setup.inputShape, "qg": qg,
            "basis": state.basis.map(Double.init), "codec": state.codecVector.map(Double.init), "thr": thr.map(Double.init),
            "half_range": config.halfRange, "adaptive": config.adaptive.rawValue,
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let out = try #require(try Python.json(Self.twin, [json]) as? [String: Any])
        let y = try #require(out["y"] as? [Double]), tdx = try #require(out["dx"] as? [Double])
        let tauxil = try #require(out["auxil"] as? [Double])
        let margin = try #require(out["margin"] as? Double)
        #expect(margin > 1e-5, "inputs too close to a threshold for a comparison")
        #expect(Difference(pass.y, y.map(Float.init)).maxAbs == 0, "y \(setup)")
        #expect(Difference(dx, tdx.map(Float.init)).maxAbs == 0, "dx \(setup)")
        #expect(tdx.contains(0) == (setup.tag == .fm), "the activation mask blocks some gradient")
        for (a, b) in zip(auxil, tauxil) { #expect(abs(Double(a) - b) <= 1e-5 * max(abs(b), 1e-3), "auxil \(auxil) vs \(tauxil)") }
    }

    /// The twin (torch, float32 forward; the fit in float64).
    static let twin = #"""
        import json, sys, torch
        s = json.loads(sys.argv[1])
        qg, wt = s["qg"], s["tag"] == "wt"
        x = torch.tensor(s["x"], dtype=torch.float32).reshape(s["shape"])
        r = torch.tensor(s["r"], dtype=torch.float32).reshape(s["shape"])
        basis = torch.tensor(s["basis"], dtype=torch.float32).reshape(2, qg)
        codec = torch.tensor(s["codec"], dtype=torch.float32).reshape(4, 2)
        levels, order = torch.sort(codec @ basis, 0)
        thr = torch.tensor(s["thr"], dtype=torch.float32).reshape(3, 4) @ levels
        ad = s["adaptive"]
        if wt:
            v = x.reshape(qg, -1)
            mean = v.mean(1, keepdim=True) if ad in ("mean", "mean-var") else torch.zeros(qg, 1)
            std = v.std(1, keepdim=True) + 1e-5 if ad in ("var", "mean-var") else torch.ones(qg, 1)
            if ad == "mean": v = v - mean
            elif ad == "var": v = v / std
            elif ad == "mean-var": v = (v - mean) / std
        else:
            n = torch.ones(x.shape[0], 1, 1, 1)
            if ad == "mean": n = x.mean([1, 2, 3], keepdim=True) + 1e-5
            if ad == "var": n = x.std([1, 2, 3], keepdim=True) + 1e-5
            xn = x / n if ad in ("mean", "var") else x
            t = xn.transpose(0, 1) if qg != 1 else xn
            v = t.reshape(qg, -1)
        k = torch.zeros(v.shape, dtype=torch.long)
        for i in range(3):
            k = torch.where(v > thr[i].unsqueeze(1), torch.full_like(k, i + 1), k)
        margin = float((v.unsqueeze(0) - thr.unsqueeze(2)).abs().min())
        g = torch.arange(qg).unsqueeze(1).expand_as(k)
        yv = levels[k, g]
        rows = order[k, g]
        # Least squares per group on integer bit planes (two-sided: 2b - 1), in float64.
        bits = torch.stack([(rows >> i) & 1 for i in range(2)]).double()
        code = bits if s["half_range"] else 2 * bits - 1
        vd = v.double()
        btx = (code * vd).sum(2).t()                      # [qg, 2]
        btb = torch.einsum("igk,jgk->gij", code, code)    # [qg, 2, 2]
        if wt:
            btx = btx + (torch.tensor(1e-4, dtype=torch.float32) * basis).double().t()
            d = torch.diagonal(btb, dim1=1, dim2=2)
            btb = btb + torch.diag_embed(((d.float() + 1e-4) * 1.000001).double() - d)
        else:
            d = torch.diagonal(btb, dim1=1, dim2=2)
            btb = btb + torch.diag_embed(torch.where(d == 0, torch.full_like(d, 1e-5), torch.zeros_like(d)))
        auxil = torch.linalg.solve(btb, btx.unsqueeze(2)).squeeze(2).t()   # [2, qg]
        top = levels[-1].unsqueeze(1)
        if wt:
            y = yv
            if ad == "mean": y = y + mean
            elif ad == "var": y = y * std
            elif ad == "mean-var": y = y * std + mean
            y = y.reshape(x.shape)
            dx = r
        else:
            y = yv.reshape(t.shape)
            keep = (v < top).reshape(t.shape)
            if qg != 1:
                y = y.transpose(0, 1); keep = keep.transpose(0, 1)
            if ad in ("mean", "var"): y = y * n
            dx = torch.where(keep, r, torch.zeros_like(r))
        print(json.dumps({"y": y.flatten().tolist(), "dx": dx.flatten().tolist(), "auxil": auxil.flatten().tolist(), "margin": margin}))
        """#
}
