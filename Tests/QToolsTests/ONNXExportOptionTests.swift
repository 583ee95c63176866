import Foundation
import TestSupport
import Testing

/// `qtools convert --to onnx` options beyond the default form: `--keep-bn`, `--softmax`,
/// `--opset N`, and a two-sided (signed) activation quantizer, each run in onnxruntime.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch, onnx, onnxruntime)"))
struct ONNXExportOptionTests {
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    static func convert(_ c: String, _ out: String, _ flags: [String], _ overrides: [String] = []) throws -> Python.Result {
        try RunQTools.run(
            [
                "convert", golden(c, "checkpoint.pth"), "--config", golden(c, "config.txt"), "--to", "onnx",
                "-o", out,
            ] + flags + (overrides.isEmpty ? [] : ["--"] + overrides))
    }

    /// argv: path, input, expected logits, ...: onnx.checker (full_check), onnxruntime with
    /// default options; `rel` = max |ort − expected| / max |expected|, `relSoftmax` the same
    /// against numpy's softmax of the expected logits.
    static let ortScript = """
        import sys, json, numpy as np, onnx, onnxruntime as ort
        res = {}
        a = sys.argv[1:]
        for path, inp, outp in zip(a[0::3], a[1::3], a[2::3]):
            m = onnx.load(path)
            onnx.checker.check_model(m, full_check=True)
            x, y = np.load(inp), np.load(outp)
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            got = s.run(None, {s.get_inputs()[0].name: x})[0]
            e = np.exp(y.astype(np.float64) - y.max(axis=1, keepdims=True))
            sm = e / e.sum(axis=1, keepdims=True)
            res[path] = {"rel": float(np.max(np.abs(got - y)) / np.max(np.abs(y))),
                         "relSoftmax": float(np.max(np.abs(got - sm)) / np.max(np.abs(sm))),
                         "opsets": [[o.domain, o.version] for o in m.opset_import], "ir": m.ir_version,
                         "ops": [n.op_type for n in m.graph.node], "outputs": [o.name for o in m.graph.output],
                         "meta": {p.key: p.value for p in m.metadata_props}}
        print(json.dumps(res))
        """

    static func ort(_ triples: [(String, String, String)]) throws -> [String: [String: Any]] {
        let args = triples.flatMap { [$0.0, $0.1, $0.2] }
        return try #require(try Python.json(Self.ortScript, args) as? [String: [String: Any]])
    }

    @Test func keepBatchNormKeepsEveryBNAndMatchesGolden() throws {
        try withTemporaryDirectory { dir in
            var triples: [(String, String, String)] = []
            for c in ["resnet20_fp", "resnet20_lsq_a2w2", "resnet20_xnorpp"] {
                for keep in [false, true] {
                    let out = dir.appendingPathComponent("\(c).\(keep).onnx").path
                    let r = try Self.convert(c, out, keep ? ["--keep-bn"] : [])
                    #expect(r.status == 0, "\(c): \(r.stderr)")
                    triples.append((out, Self.golden(c, "input.npy"), Self.golden(c, "output.npy")))
                }
            }
            let doc = try Self.ort(triples)
            for c in ["resnet20_fp", "resnet20_lsq_a2w2", "resnet20_xnorpp"] {
                let folded = try #require(doc[dir.appendingPathComponent("\(c).false.onnx").path])
                let kept = try #require(doc[dir.appendingPathComponent("\(c).true.onnx").path])
                let bn = { (r: [String: Any]) in (r["ops"] as? [String] ?? []).filter { $0 == "BatchNormalization" }.count }
                // ResNet-20: 19 BNs (stem + 2 per block) plus the projection shortcuts' BNs.
                #expect(bn(kept) >= 19, "\(c): \(bn(kept)) BatchNormalization nodes kept")
                #expect(bn(kept) > bn(folded), "\(c): --keep-bn kept \(bn(kept)), folding left \(bn(folded))")
                #expect((kept["meta"] as? [String: String])?["qtools.batchnorm"] == "kept")
                for r in [folded, kept] {
                    let rel = try #require(r["rel"] as? Double)
                    #expect(rel <= 1e-4, "\(c): max relative error \(rel)")
                }
            }
            let fpFolded = try #require(doc[dir.appendingPathComponent("resnet20_fp.false.onnx").path])
            #expect((fpFolded["ops"] as? [String])?.contains("BatchNormalization") == false)
        }
    }

    @Test func softmaxEndsInSoftmaxOfTheGoldenLogits() throws {
        try withTemporaryDirectory { dir in
            var triples: [(String, String, String)] = []
            for (c, format) in [("resnet20_fp", "qcdq"), ("resnet20_pact_a2w2", "qcdq"), ("resnet20_xnorpp", "float")] {
                let out = dir.appendingPathComponent("\(c).onnx").path
                let r = try Self.convert(c, out, ["--softmax", "--onnx-format", format])
                #expect(r.status == 0, "\(c): \(r.stderr)")
                triples.append((out, Self.golden(c, "input.npy"), Self.golden(c, "output.npy")))
            }
            for (path, r) in try Self.ort(triples) {
                let ops = try #require(r["ops"] as? [String])
                #expect(ops.last == "Softmax" && ops.filter { $0 == "Softmax" }.count == 1, "\(path): \(ops.suffix(3))")
                #expect((r["outputs"] as? [String])?.first?.hasSuffix(".softmax") == true)
                let rel = try #require(r["relSoftmax"] as? Double)
                #expect(rel <= 1e-4, "\(path): max relative error \(rel) against softmax(golden)")
                // Not the logits themselves.
                #expect((r["rel"] as? Double ?? 0) > 1e-2)
            }
        }
    }

    /// `--opset N` is what the file imports and runs; XNOR activations with `fm_custom channel`
    /// exercise both ReduceMean forms (axes attribute < 18, axes input from 18), compared with
    /// `qtools run` of the same options since no golden case uses them.
    @Test func opsetIsWrittenAndRuns() throws {
        try withTemporaryDirectory { dir in
            var triples: [(String, String, String)] = []
            var expected: [String: Int] = [:]
            for opset in [13, 17, 18, 21] {
                for c in ["resnet20_lsq_a2w2", "resnet20_xnorpp"] {
                    let out = dir.appendingPathComponent("\(c).\(opset).onnx").path
                    let r = try Self.convert(c, out, ["--opset", String(opset)])
                    #expect(r.status == 0, "\(c) \(opset): \(r.stderr)")
                    #expect(r.stdout.contains("opset \(opset)"), "\(r.stdout)")
                    triples.append((out, Self.golden(c, "input.npy"), Self.golden(c, "output.npy")))
                    expected[out] = opset
                }
            }
            // qdq-native needs 21 for INT4 weights: a lower --opset is raised.
            let native = dir.appendingPathComponent("native.onnx").path
            #expect(try Self.convert("resnet20_lsq_a2w2", native, ["--opset", "17", "--onnx-format", "qdq-native"]).status == 0)
            triples.append((native, Self.golden("resnet20_lsq_a2w2", "input.npy"), Self.golden("resnet20_lsq_a2w2", "output.npy")))
            expected[native] = 21
            let c = "resnet20_bireal_xnor"
            let engine = dir.appendingPathComponent("channel.npy").path
            let e = try RunQTools.run([
                "run", Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"),
                "--input", Self.golden(c, "input.npy"), "--output", engine, "--fm_custom", "channel",
            ])
            #expect(e.status == 0, "\(e.stderr)")
            for opset in [13, 18] {
                let out = dir.appendingPathComponent("channel.\(opset).onnx").path
                let r = try Self.convert(c, out, ["--opset", String(opset)], ["--fm_custom", "channel"])
                #expect(r.status == 0, "\(r.stderr)")
                triples.append((out, Self.golden(c, "input.npy"), engine))
                expected[out] = opset
            }
            let doc = try Self.ort(triples)
            for (path, opset) in expected {
                let r = try #require(doc[path])
                let opsets = try #require(r["opsets"] as? [[Any]])
                #expect(opsets.count == 1 && opsets[0][0] as? String == "" && opsets[0][1] as? Int == opset, "\(path): \(opsets)")
                let rel = try #require(r["rel"] as? Double)
                #expect(rel <= 1e-4, "\(path): max relative error \(rel)")
                if path.contains("channel.") {
                    #expect((r["ops"] as? [String])?.contains("ReduceMean") == true)
                }
            }
        }
    }

    @Test(arguments: ["0", "6", "12", "26", "99"])
    func unsupportedOpsetIsAUsageError(_ opset: String) throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("x.onnx").path
            let r = try Self.convert("resnet20_fp", out, ["--opset", opset])
            #expect(r.status == 64, "\(r.status): \(r.stderr)")
            #expect(r.stderr.contains("--opset must be 13...25 (got \(opset))"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    /// A signed activation quantizer: `--fm_half_range` turns LSQ activations two-sided
    /// ({−s, −s/3, s/3, s}, seed-reference §11.8). No golden case has one, so onnxruntime is
    /// compared with `qtools run` of the same checkpoint and options (the engine's LSQ is
    /// verified against PyTorch); every runnable form.
    @Test func twoSidedActivationQuantizerMatchesTheEngine() throws {
        try withTemporaryDirectory { dir in
            var triples: [(String, String, String)] = []
            for c in ["resnet20_lsq_a2w2", "resnet18_lsq_a2w2"] {
                let engine = dir.appendingPathComponent("\(c).npy").path
                let e = try RunQTools.run([
                    "run", Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"),
                    "--input", Self.golden(c, "input.npy"), "--output", engine, "--fm_half_range",
                ])
                #expect(e.status == 0, "\(e.stderr)")
                let g = try RunQTools.run([
                    "verify", Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"),
                    "--input", Self.golden(c, "input.npy"), "--expect", Self.golden(c, "output.npy"),
                    "--fm_half_range",
                ])
                #expect(g.status == 1, "\(c): --fm_half_range did not change the logits")
                for format in ["qcdq", "qdq-native", "float"] {
                    let out = dir.appendingPathComponent("\(c).\(format).onnx").path
                    let r = try Self.convert(c, out, ["--onnx-format", format], ["--fm_half_range"])
                    #expect(r.status == 0, "\(c) \(format): \(r.stderr)")
                    triples.append((out, Self.golden(c, "input.npy"), engine))
                }
            }
            for (path, r) in try Self.ort(triples) {
                let rel = try #require(r["rel"] as? Double)
                #expect(rel <= 1e-4, "\(path): max relative error \(rel) against qtools run")
                // Two-sided: the levels are shifted by the step around the uint8 grid (QDQ, or
                // Div/Round/Clip/Mul in the float form).
                #expect((r["ops"] as? [String])?.contains("Sub") == true, "\(path)")
                if path.hasSuffix(".float.onnx") {
                    #expect((r["ops"] as? [String])?.contains("QuantizeLinear") == false, "\(path)")
                }
            }
        }
    }
}
