import Foundation
import TestSupport
import Testing

/// `qtools convert --to onnx --onnx-format qonnx`: QONNX Quant/BipolarQuant files checked with
/// onnx.checker, evaluated by an independent reference of the QONNX operator formulas (and by
/// the qonnx package when it is installed) against the golden PyTorch logits, and read back by
/// qtools.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch, onnx, onnxruntime)"))
struct QONNXExportCommandTests {
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    /// Golden cases whose quantizers are uniform or binary, with what `layer1.0.conv1.0` uses
    /// (act: lsq | pact | dorefa:<clip> | bipolar; wt: lsq | dorefa | xnor).
    static let uniform: [(name: String, kinds: [String: String]?)] = [
        ("pytorch_resnet18_fp", nil), ("resnet20_fixup", nil), ("resnet20_fp", nil),
        ("resnet18_lsq_a2w2", ["act": "lsq", "wt": "lsq", "bits": "2"]),
        ("resnet20_lsq_a2w2", ["act": "lsq", "wt": "lsq", "bits": "2"]),
        ("resnet20_pact_a2w2", ["act": "pact", "wt": "dorefa", "bits": "2"]),
        ("resnet20_dorefa_a2w2", ["act": "dorefa:1.0", "wt": "dorefa", "bits": "2"]),
        ("resnet20_dorefa_a4w4_varmean", ["act": "dorefa:2.0", "wt": "dorefa", "bits": "4"]),
        ("resnet20_xnorpp", ["act": "bipolar", "wt": "xnor", "bits": "1"]),
        ("resnet20_bireal_xnor", ["act": "bipolar", "wt": "xnor", "bits": "1"]),
    ]

    static func convert(_ c: String, _ out: String, _ extra: [String] = []) throws -> Python.Result {
        var cmd = [
            "convert", golden(c, "checkpoint.pth"), "--config", golden(c, "config.txt"), "--to", "onnx",
            "--onnx-format", "qonnx", "-o", out,
        ]
        if c == "pytorch_resnet18_fp" { cmd += ["--", "--width_alpha", "0.125"] }
        return try RunQTools.run(cmd + extra)
    }

    static func check(_ jobs: [[String: Any]]) throws -> [String: [String: Any]] {
        let arg = String(decoding: try JSONSerialization.data(withJSONObject: jobs), as: UTF8.self)
        return try #require(try Python.json(QONNXReference.check, [arg]) as? [String: [String: Any]])
    }

    @Test func goldenCasesMatchTheQONNXFormulasAndReadBack() throws {
        try withTemporaryDirectory { dir in
            var jobs: [[String: Any]] = []
            for (c, kinds) in Self.uniform {
                let out = dir.appendingPathComponent("\(c).qonnx.onnx").path
                let r = try Self.convert(c, out)
                #expect(r.status == 0, "\(c): \(r.stderr)")
                var job: [String: Any] = [
                    "path": out, "input": Self.golden(c, "input.npy"),
                    "expect": Self.golden(c, "output.npy"),
                ]
                if let kinds {
                    job["layer"] = "layer1.0.conv1.0"
                    job["checkpoint"] = Self.golden(c, "checkpoint.pth")
                    job["kinds"] = kinds
                }
                jobs.append(job)
            }
            let doc = try Self.check(jobs)
            for ((c, kinds), job) in zip(Self.uniform, jobs) {
                let path = job["path"] as! String
                let r = try #require(doc[path], "\(c) missing from the check")
                #expect(r["fullCheck"] as? String == "ok", "\(c): \(r["fullCheck"] ?? "")")
                let rel = try #require(r["rel"] as? Double)
                #expect(rel <= 1e-4, "\(c): QONNX reference max relative error \(rel)")
                if let q = r["qonnxRel"] as? Double { #expect(q <= 1e-4, "\(c): qonnx package max relative error \(q)") }
                #expect(r["weightsExact"] as? Bool == true, "\(c): Quant changes weight \(r["inexactNode"] ?? "")")
                let opsets = try #require(r["opsets"] as? [[Any]])
                let domains = opsets.map { "\($0[0]):\($0[1])" }
                let ops = try #require(r["ops"] as? [String])
                let meta = try #require(r["meta"] as? [String: String])
                if kinds == nil {
                    #expect(domains == [":13"] && ops.allSatisfy { !$0.contains(".") }, "\(c): \(domains) \(ops)")
                    continue
                }
                #expect(domains == [":13", "qonnx.custom_op.general:1"], "\(c): \(domains)")
                #expect(!ops.contains { $0.contains("QuantizeLinear") || $0.contains("Where") }, "\(c): \(ops)")
                #expect(meta["qtools.format"] == "qonnx")
                #expect(meta["qtools.layer1.0.conv1.0.quant_weight.storage"]?.contains("QONNX") == true)
                // The layer's Quant settings are the ones its checkpoint tensors imply.
                let got = try #require(r["layer"] as? [String: [String: Any]])
                let want = try #require(r["implied"] as? [String: [String: Any]])
                for side in ["act", "wt"] {
                    let g = try #require(got[side], "\(c): no \(side) QONNX node"), w = try #require(want[side])
                    #expect(g["op"] as? String == w["op"] as? String, "\(c) \(side): \(g)")
                    for key in ["zeropt", "bits", "signed", "narrow", "rounding"] where w[key] != nil {
                        #expect("\(g[key] ?? "nil")" == "\(w[key]!)", "\(c) \(side) \(key): \(g[key] ?? "nil") vs \(w[key]!)")
                    }
                    let gs = try #require(g["scale"] as? [Double]), ws = try #require(w["scale"] as? [Double])
                    let expanded = ws.count == 1 ? [Double](repeating: ws[0], count: gs.count) : ws
                    let close = gs.count == expanded.count && zip(gs, expanded).allSatisfy { abs($0 - $1) <= 1e-5 * abs($1) }
                    #expect(close, "\(c) \(side) scale \(gs) vs \(ws)")
                }
            }
            // qtools reads its QONNX files back: the same logits as the checkpoint and as PyTorch.
            for (c, _) in Self.uniform {
                let out = dir.appendingPathComponent("\(c).qonnx.onnx").path
                let width = c == "pytorch_resnet18_fp" ? ["--width_alpha", "0.125"] : []
                let v = try RunQTools.run(
                    [
                        "verify", Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"), out,
                        "--input", Self.golden(c, "input.npy"),
                    ] + width)
                #expect(v.status == 0, "\(c): \(v.stdout) \(v.stderr)")
                let g = try RunQTools.run([
                    "verify", out, "--input", Self.golden(c, "input.npy"),
                    "--expect", Self.golden(c, "output.npy"),
                ])
                #expect(g.status == 0, "\(c): \(g.stdout) \(g.stderr)")
            }
        }
    }

    @Test(arguments: [
        ("resnet20_lq_a2w2", "layer1.0.conv1.0.quant_activation", "LQ-Nets"),
        ("resnet20_fatnn_a2w2", "layer1.0.conv1.0.quant_activation", "FATNN"),
        ("resnet20_ternary_fatnn", "layer1.0.conv1.0.quant_activation", "FATNN"),
    ])
    func nonUniformQuantizersAreRefusedNamingTheLayer(_ c: String, _ layer: String, _ method: String) throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("x.onnx").path
            let r = try Self.convert(c, out)
            #expect(r.status == 65, "\(r.status) \(r.stderr)")
            #expect(r.stderr.contains(layer) && r.stderr.contains(method) && r.stderr.contains("QONNX"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    /// Level counts beyond the golden ones (DoReFa `--fm_level/--wt_level` 2, 3, 5: one bit,
    /// narrow ranges, a range Quant cannot bound alone), signed LSQ activations
    /// (`--fm_half_range` turns `half_range` off) and FATNN ternary weights under DoReFa
    /// activations (the ternary checkpoint without its activation tensors, keyword
    /// `wt_non-uniform`), XNOR activations scaled by the channel mean of |x|: the QONNX reference matches `qtools run` of the same checkpoint and
    /// options.
    @Test func levelCountsAndSignedActivationsMatchTheEngine() throws {
        try withTemporaryDirectory { dir in
            let ternary = dir.appendingPathComponent("ternary_weights.pth").path
            _ = try Python.json(Self.dropActivationTensors, [Self.golden("resnet20_ternary_fatnn", "checkpoint.pth"), ternary])
            let keyword = "cifar10,origin,cbsa,fix_pooling,singleconv,fix,real_skip,dorefa,wt_non-uniform"
            let variants: [(case: String, tag: String, checkpoint: String?, options: [String])] = [
                ("resnet20_dorefa_a2w2", "l2", nil, ["--fm_level", "2", "--wt_level", "2"]),
                ("resnet20_dorefa_a2w2", "l3", nil, ["--fm_level", "3", "--wt_level", "3"]),
                ("resnet20_dorefa_a2w2", "l5", nil, ["--fm_level", "5", "--wt_level", "5"]),
                ("resnet20_lsq_a2w2", "signed", nil, ["--fm_half_range"]),
                ("resnet18_lsq_a2w2", "signed", nil, ["--fm_half_range"]),
                ("resnet20_ternary_fatnn", "weights", ternary, ["--keyword", keyword]),
                ("resnet20_bireal_xnor", "channel", nil, ["--fm_custom", "channel"]),
            ]
            var jobs: [[String: Any]] = []
            for v in variants {
                let out = dir.appendingPathComponent("\(v.case).\(v.tag).onnx").path
                let engine = dir.appendingPathComponent("\(v.case).\(v.tag).npy").path
                let ckpt = v.checkpoint ?? Self.golden(v.case, "checkpoint.pth")
                let model = [ckpt, "--config", Self.golden(v.case, "config.txt")]
                let r = try RunQTools.run(["convert"] + model + ["--onnx-format", "qonnx", "-o", out, "--"] + v.options)
                #expect(r.status == 0, "\(v.tag): \(r.stderr)")
                let e = try RunQTools.run(["run"] + model + ["--input", Self.golden(v.case, "input.npy"), "--output", engine] + v.options)
                #expect(e.status == 0, "\(v.tag): \(e.stderr)")
                // The options change the model: its logits are no longer the golden ones.
                let g = try RunQTools.run(
                    ["verify"] + model + [
                        "--input", Self.golden(v.case, "input.npy"),
                        "--expect", Self.golden(v.case, "output.npy"),
                    ] + v.options)
                #expect(g.status == 1, "\(v.case) \(v.options) did not change the logits")
                jobs.append(["path": out, "input": Self.golden(v.case, "input.npy"), "expect": engine, "layer": "layer1.0.conv1.0"])
            }
            let doc = try Self.check(jobs)
            var settings: [String: [String: [String: Any]]] = [:]
            var ops: [String: [String]] = [:]
            for (v, job) in zip(variants, jobs) {
                let r = try #require(doc[job["path"] as! String])
                let rel = try #require(r["rel"] as? Double)
                #expect(rel <= 1e-4, "\(v.case) \(v.tag): max relative error \(rel) against qtools run")
                #expect(r["weightsExact"] as? Bool == true, "\(v.case) \(v.tag)")
                settings["\(v.case).\(v.tag)"] = r["layer"] as? [String: [String: Any]]
                ops["\(v.case).\(v.tag)"] = r["ops"] as? [String]
            }
            // Expected forms (formats.md C.2.3 ranges): levels {(k − zeropt)·scale}.
            func form(_ key: String, _ side: String) -> String {
                guard let s = settings[key]?[side] else { return "missing" }
                let v = ["signed", "narrow", "bits", "zeropt"].map { (s[$0] as? NSNumber)?.doubleValue ?? .nan }
                return v.map { String(format: "%g", $0) }.joined(separator: " ")
            }
            // 2 levels: {0, c} unsigned 1-bit; weights {−1, 1} = (k − 0.5)·2.
            #expect(form("resnet20_dorefa_a2w2.l2", "act") == "0 0 1 0")
            #expect(form("resnet20_dorefa_a2w2.l2", "wt") == "0 0 1 0.5")
            // 3 levels: activations unsigned narrow 2-bit [0, 2]; weights signed narrow 2-bit [−1, 1].
            #expect(form("resnet20_dorefa_a2w2.l3", "act") == "0 1 2 0")
            #expect(form("resnet20_dorefa_a2w2.l3", "wt") == "1 1 2 0")
            // 5 levels: 3 bits hold [0, 7]; Max/Min bound the activations to the 5 levels first.
            #expect(form("resnet20_dorefa_a2w2.l5", "act") == "0 0 3 0")
            #expect(ops["resnet20_dorefa_a2w2.l5"]?.contains("Max") == true && ops["resnet20_dorefa_a2w2.l5"]?.contains("Min") == true)
            // Signed LSQ activations: {−s, −s/3, s/3, s} = (k − 1.5)·(2s/3).
            #expect(form("resnet20_lsq_a2w2.signed", "act") == "0 0 2 1.5")
            // FATNN ternary weights {−1, 0, 1}: signed narrow 2-bit, scale 1.
            #expect(form("resnet20_ternary_fatnn.weights", "wt") == "1 1 2 0")
            #expect((settings["resnet20_ternary_fatnn.weights"]?["wt"]?["scale"] as? [Double]) == [1])
            // XNOR with fm_custom channel: BipolarQuant (scale 1) times ReduceMean(|x|).
            let channel = ops["resnet20_bireal_xnor.channel"] ?? []
            #expect(channel.contains("qonnx.custom_op.general.BipolarQuant") && channel.contains("ReduceMean"), "\(channel)")
        }
    }

    /// argv: checkpoint, output: the checkpoint without its activation quantizers' `clip_val`
    /// and `alpha<k>` tensors (so a keyword without `fm_non-uniform` binds it).
    static let dropActivationTensors = """
        import sys, re, torch
        ck = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
        sd = ck["state_dict"]
        for k in [k for k in sd if re.search(r"quant_activation\\.(clip_val|alpha\\d)$", k)]:
            del sd[k]
        torch.save(ck, sys.argv[2])
        print("{}")
        """

    /// qtools runs hand-built QONNX files (per-channel scales, zero points, narrow ranges,
    /// signed 1-bit, BipolarQuant weights, ROUND/CEIL/FLOOR/UP/DOWN/HALF_UP, the `IntQuant` name
    /// and the older finn domain) as numpy computes the formulas; other forms are clear errors.
    @Test func handBuiltQONNXModelsRunAsTheFormulasSay() throws {
        try withTemporaryDirectory { dir in
            let d = dir.path
            _ = try Python.json(QONNXReference.handBuilt, [d])
            for name in ["unsigned_perchannel", "narrow_ceil_bipolar", "signed1_floor_halfup", "up_down"] {
                let v = try RunQTools.run([
                    "verify", "\(d)/\(name).onnx", "--input", "\(d)/x.npy",
                    "--expect", "\(d)/\(name).expected.npy", "--atol", "1e-5", "--rtol", "1e-5",
                ])
                #expect(v.status == 0, "\(name): \(v.stdout) \(v.stderr)")
            }
            let plain = try RunQTools.run(["run", "\(d)/default_domain.onnx"])
            #expect(plain.status != 0 && plain.stderr.contains("plain_quant") && plain.stderr.contains("Quant"), "\(plain.stderr)")
            let mode = try RunQTools.run(["run", "\(d)/half_down.onnx"])
            #expect(mode.status != 0 && mode.stderr.contains("a1") && mode.stderr.contains("HALF_DOWN"), "\(mode.stderr)")
        }
    }
}
