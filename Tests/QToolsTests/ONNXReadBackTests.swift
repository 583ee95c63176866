import Foundation
import TestSupport
import Testing

/// Every golden case in every ONNX form the exporter writes, read back by qtools:
/// `qtools verify CKPT --config CFG OUT.onnx` (the engine on the file vs the engine on the
/// checkpoint, two seeded random inputs, default tolerance 1e-4 of the peak logit) and
/// `qtools verify OUT.onnx --input input.npy --expect output.npy` (the PyTorch logits within
/// the golden tolerance, max |error| ≤ 1e-4 as `ModelGoldenTests`). A form the exporter
/// refuses must be refused with its documented error. XNOR activations with `fm_custom`
/// (ReduceMean of |x| times the signs) have no golden logits and are checked engine vs engine.
/// Needs no Python.
@Suite struct ONNXReadBackTests {
    static let forms = ["float", "qcdq", "qdq-native", "qonnx"]

    /// Every case under fixtures/golden (a new case joins the sweep by existing).
    static let cases: [String] = {
        let dir = Fixtures.url("golden")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: dir.appendingPathComponent("\($0)/checkpoint.pth").path) }
            .sorted()
    }()

    /// Forms the exporter refuses (convert --help: LQ-Nets quantizers and FATNN activations
    /// have no QONNX Quant form; exit 65 naming the layer): case → (form, method in the message).
    static let refused: [String: (form: String, method: String)] = [
        "resnet20_lq_a2w2": ("qonnx", "LQ-Nets"),
        "resnet20_fatnn_a2w2": ("qonnx", "FATNN"),
        "resnet20_ternary_fatnn": ("qonnx", "FATNN"),
    ]

    /// Golden cases with XNOR activations, for the `--fm_custom` variants.
    static let xnorCases = ["resnet20_bireal_xnor", "resnet20_xnorpp"]

    /// One directory for the whole sweep; each test removes the files it wrote.
    static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("qtools-readback-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    /// The overrides a case needs besides its config (the channel-shrunk official ResNet-18).
    static func widthOverrides(_ c: String) -> [String] { c == "pytorch_resnet18_fp" ? ["--width_alpha", "0.125"] : [] }

    static func convert(_ c: String, _ form: String, _ out: String, _ overrides: [String]) throws -> Python.Result {
        try RunQTools.run(
            [
                "convert", golden(c, "checkpoint.pth"), "--config", golden(c, "config.txt"), "--to", "onnx",
                "--onnx-format", form, "-o", out, "--force", "--",
            ] + overrides)
    }

    /// `verify` with `--json`: status and the reported max abs error (nil when unreadable).
    static func verify(_ args: [String]) throws -> (status: Int32, maxAbs: Double?, text: String) {
        let r = try RunQTools.run(["verify"] + args + ["--json"])
        let doc = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return (r.status, doc?["max_abs"] as? Double, r.stdout + r.stderr)
    }

    /// Exports `c` as `form` with `overrides`, then checks the file against the checkpoint
    /// (and, with `checkGolden`, the golden logits); a documented refusal is checked instead.
    static func exportAndVerify(_ c: String, _ form: String, overrides: [String], checkGolden: Bool, tag: String) throws {
        let out = dir.appendingPathComponent("\(c).\(tag).\(form).onnx").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try convert(c, form, out, overrides)
        if let refusal = refused[c], refusal.form == form {
            #expect(r.status == 65, "\(c) \(form): expected the documented refusal, got \(r.status) \(r.stderr)")
            #expect(
                r.stderr.contains("quant_activation") && r.stderr.contains(refusal.method) && r.stderr.contains("QONNX"),
                "\(c) \(form): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            return
        }
        try #require(r.status == 0, "\(c) \(form) \(tag): convert failed: \(r.stderr)")
        let a = try verify([golden(c, "checkpoint.pth"), "--config", golden(c, "config.txt"), out, "--samples", "2"] + overrides)
        #expect(a.status == 0, "\(c) \(form) \(tag): engine on ONNX vs checkpoint: \(a.text)")
        #expect(a.maxAbs.map { $0 <= 1e-4 } == true, "\(c) \(form) \(tag): max abs \(String(describing: a.maxAbs))")
        guard checkGolden else { return }
        let b = try verify([out, "--input", golden(c, "input.npy"), "--expect", golden(c, "output.npy"), "--atol", "1e-4"])
        #expect(b.status == 0, "\(c) \(form): ONNX vs PyTorch golden logits: \(b.text)")
        #expect(b.maxAbs.map { $0 <= 1e-4 } == true, "\(c) \(form): max abs \(String(describing: b.maxAbs))")
    }

    @Test func sweepCoversTheGoldenCases() {
        #expect(Self.cases.count >= 13, "\(Self.cases)")
        for c in Array(Self.refused.keys) + Self.xnorCases { #expect(Self.cases.contains(c), "\(c) is not a golden case") }
    }

    /// Every form of one golden case reads back and matches the checkpoint and PyTorch.
    @Test(arguments: cases)
    func everyFormReadsBack(_ c: String) throws {
        for form in Self.forms {
            try Self.exportAndVerify(c, form, overrides: Self.widthOverrides(c), checkGolden: true, tag: "golden")
        }
    }

    /// XNOR activations scaled by the mean |x| over channels or pixels (ReduceMean, axes as
    /// an attribute at opset 13 and as an input at 18) read back in every form.
    @Test(arguments: xnorCases, ["channel", "resolution"])
    func xnorMeanScalingReadsBack(_ c: String, _ custom: String) throws {
        for form in Self.forms {
            try Self.exportAndVerify(c, form, overrides: ["--fm_custom", custom], checkGolden: false, tag: custom)
        }
        // Opset 18 writes ReduceMean's axes as an input.
        let out = Self.dir.appendingPathComponent("\(c).\(custom).18.onnx").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try RunQTools.run([
            "convert", Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"),
            "--to", "onnx", "--opset", "18", "-o", out, "--force", "--", "--fm_custom", custom,
        ])
        try #require(r.status == 0, "\(r.stderr)")
        let ops = try RunQTools.run(["inspect", out]).stdout
        #expect(ops.contains("ReduceMean") && ops.contains("opsets ai.onnx:18"), "\(ops.prefix(600))")
        let a = try Self.verify([
            Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"), out,
            "--fm_custom", custom,
        ])
        #expect(a.status == 0, "\(c) \(custom) opset 18: \(a.text)")
    }
}
