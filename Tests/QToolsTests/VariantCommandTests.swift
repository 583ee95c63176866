import Formats
import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

/// `qtools verify A B`, `convert --fold-bn` and keyword-variant conversion, end to end; expected
/// values from the golden files (output.npy, keys.txt) and seed-reference §11.2.
@Suite struct VariantCommandTests {
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }
    static let cases = [
        "pytorch_resnet18_fp", "resnet18_lsq_a2w2", "resnet20_bireal_xnor", "resnet20_dorefa_a2w2",
        "resnet20_dorefa_a4w4_varmean", "resnet20_fatnn_a2w2", "resnet20_fixup", "resnet20_fp",
        "resnet20_lq_a2w2", "resnet20_lsq_a2w2", "resnet20_pact_a2w2", "resnet20_ternary_fatnn", "resnet20_xnorpp",
    ]
    static let flexibleR18 = "imagenet,origin,cbsa,fix_pooling,singleconv,fix"

    static func json(_ s: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
    }

    /// The state dict of a written file as `name dtype [shape]` lines (keys.txt format).
    static func keyLines(_ path: String) throws -> Set<String> {
        let sd = try #require(try ModelFile.open(path: path).checkpoint.stateDict())
        return Set(sd.entries.map { "\($0.name) \($0.tensor.dtype.rawValue) [\($0.tensor.shape.map(String.init).joined(separator: ","))]" })
    }

    static func tensor(_ path: String, _ key: String) throws -> [Float] {
        let sd = try #require(try ModelFile.open(path: path).checkpoint.stateDict())
        return try #require(sd.entries.first { $0.name == key }).tensor.materialize().floats()
    }

    /// A full-precision config of the same network as `cfg`: method keywords and the
    /// `--fm_enable`/`--wt_enable` options removed (written to `dir`).
    static func fpConfig(_ cfg: String, in dir: URL, drop: Set<String>) throws -> String {
        let words = try ConfigRecord.load(path: cfg).options.keywords.filter { !drop.contains($0) }
        let text = try String(contentsOfFile: cfg, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .map { line -> String in
                if line.hasPrefix("keyword=") { return "keyword='\(words.joined(separator: ","))'" }
                return line.replacingOccurrences(of: " --fm_enable", with: "").replacingOccurrences(of: " --wt_enable", with: "")
            }.joined(separator: "\n")
        let path = dir.appendingPathComponent("fp-\(UUID().uuidString).txt").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: cases)
    func foldBNMatchesTheUnfoldedRun(name: String) throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("folded.pth").path
            var args = [
                "convert", Self.golden(name, "checkpoint.pth"), "-o", out, "--config", Self.golden(name, "config.txt"), "--fold-bn",
                "--json",
            ]
            if name == "pytorch_resnet18_fp" { args += ["--", "--width_alpha", "0.125"] }
            let c = try RunQTools.run(args)
            #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
            let doc = try Self.json(c.stdout)
            let notes = doc["notes"] as? [String] ?? []
            #expect(notes.contains { $0.hasPrefix("fold-bn:") })
            if name == "resnet20_fixup" { #expect(notes.contains("fold-bn: 0 BN folded, 0 kept; removed 0 tensors, added 0, changed 0")) }
            if name == "resnet20_fp" {
                // 19 BNs of blocks + bn1 + 2 skip BNs... every BN follows a conv: none kept, no BN tensor left.
                #expect(!notes.contains { $0.hasPrefix("kept") })
                #expect(try !Self.keyLines(out).contains { $0.contains("running_mean") })
            }
            // The folded model, run from its recorded config, reproduces PyTorch's logits of the original.
            let v = try RunQTools.run([
                "verify", out, "--input", Self.golden(name, "input.npy"), "--expect", Self.golden(name, "output.npy"), "--json",
            ])
            let want = try NpyReader.readArray(ByteStore.map(path: Self.golden(name, "output.npy")).all).floats()
            let peak = Double(want.map { abs($0) }.max() ?? 1)
            let vd = try Self.json(v.stdout)
            #expect((vd["max_abs"] as? Double ?? 1) <= 1e-4 * peak + 1e-4, "\(v.stdout) \(v.stderr)")
            // verify A B: original vs folded on seeded inputs, within 1e-4 of the peak logit.
            var two = ["verify", Self.golden(name, "checkpoint.pth"), out, "--config", Self.golden(name, "config.txt"), "--json"]
            if name == "pytorch_resnet18_fp" { two += ["--width_alpha", "0.125"] }
            let t = try RunQTools.run(two)
            #expect(t.status == 0, "\(t.stdout) \(t.stderr)")
            #expect((try Self.json(t.stdout)["max_rel"] as? Double ?? 1) <= 1e-4)
        }
    }

    @Test func verifyTwoExitCodes() throws {
        let a = Self.golden("resnet20_fp", "checkpoint.pth"), cfg = Self.golden("resnet20_fp", "config.txt")
        let same = try RunQTools.run(["verify", a, a, "--config", cfg, "--samples", "2"])
        #expect(same.status == 0, "\(same.stdout) \(same.stderr)")
        #expect(same.stdout.contains("PASS"))
        let other = try RunQTools.run([
            "verify", a, Self.golden("resnet20_fixup", "checkpoint.pth"), "--config", cfg,
            "--config-b", Self.golden("resnet20_fixup", "config.txt"), "--json",
        ])
        #expect(other.status == 1, "\(other.stdout) \(other.stderr)")
        #expect(try Self.json(other.stdout)["pass"] as? Bool == false)
    }

    @Test func pytorchResNet18ToFlexibleAndBack() throws {
        try withTemporaryDirectory { dir in
            let name = "pytorch_resnet18_fp"
            let flex = dir.appendingPathComponent("flex.pth").path
            let back = dir.appendingPathComponent("back.pth").path
            let c = try RunQTools.run([
                "convert", Self.golden(name, "checkpoint.pth"), "-o", flex, "--config", Self.golden(name, "config.txt"),
                "--to-model", "resnet18", "--to-keyword", Self.flexibleR18, "--", "--width_alpha", "0.125",
            ])
            #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
            // The names are those of the golden name_map.txt (right column).
            let map = try String(contentsOfFile: Self.golden(name, "name_map.txt"), encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.filter { $0.count == 2 }
            let flexKeys = try Self.keyLines(flex).map { String($0.split(separator: " ")[0]) }
            #expect(Set(flexKeys) == Set(map.map { $0[1] }))
            let v = try RunQTools.run([
                "verify", flex, "--input", Self.golden(name, "input.npy"), "--expect", Self.golden(name, "output.npy"), "--atol", "1e-5",
            ])
            #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
            let b = try RunQTools.run([
                "convert", flex, "-o", back, "--to-model", "pytorch-resnet18", "--to-keyword", "imagenet",
            ])
            #expect(b.status == 0, "\(b.stdout) \(b.stderr)")
            #expect(Set(try Self.keyLines(back).map { String($0.split(separator: " ")[0]) }) == Set(map.map { $0[0] }))
            let w = try RunQTools.run([
                "verify", back, "--input", Self.golden(name, "input.npy"), "--expect", Self.golden(name, "output.npy"), "--atol", "1e-5",
            ])
            #expect(w.status == 0, "\(w.stdout) \(w.stderr)")
        }
    }

    /// quantized golden -> full precision -> the same quantized config: exactly the golden key set,
    /// quantizer tensors at their §11.2 initial values.
    @Test(arguments: [
        "resnet20_lsq_a2w2", "resnet20_pact_a2w2", "resnet20_dorefa_a2w2", "resnet20_lq_a2w2", "resnet20_fatnn_a2w2",
        "resnet20_ternary_fatnn", "resnet20_xnorpp", "resnet18_lsq_a2w2",
    ])
    func fullPrecisionToQuantizedHasTheGoldenKeys(name: String) throws {
        try withTemporaryDirectory { dir in
            let fp = dir.appendingPathComponent("fp.pth").path
            let q = dir.appendingPathComponent("q.pth").path
            let cfg = Self.golden(name, "config.txt")
            let methodWords: Set = [
                "dorefa", "lsq", "pact", "lq", "xnor", "gamma", "non-uniform", "fm_non-uniform", "wt_lsq", "custom-update",
            ]
            let fpCfg = try Self.fpConfig(cfg, in: dir, drop: methodWords)
            let d = try RunQTools.run([
                "convert", Self.golden(name, "checkpoint.pth"), "-o", fp, "--config", cfg, "--to-config", fpCfg, "--json",
            ])
            #expect(d.status == 0, "\(d.stdout) \(d.stderr)")
            #expect(try !Self.keyLines(fp).contains { $0.contains(".quant_") })
            #expect((try Self.json(d.stdout)["notes"] as? [String] ?? []).contains { $0.hasPrefix("dropped ") && $0.contains(".quant_") })
            let u = try RunQTools.run(["convert", fp, "-o", q, "--to-config", cfg])
            #expect(u.status == 0, "\(u.stdout) \(u.stderr)")
            let golden = try String(contentsOfFile: Self.golden(name, "keys.txt"), encoding: .utf8)
                .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            #expect(try Self.keyLines(q) == Set(golden))
            // §11.2 initial values.
            for line in golden where line.contains(".quant_") {
                let key = String(line.split(separator: " ")[0])
                let v = try Self.tensor(q, key)
                if key.hasSuffix(".iteration") { #expect(v.allSatisfy { $0 == 0 }, "\(key)") }
                if key.hasSuffix(".codec_index") { #expect(v == (0..<v.count).map(Float.init), "\(key)") }
            }
        }
    }

    /// `--to-fp` gives what a hand-edited full-precision config gives (method keywords and
    /// `--fm_enable`/`--wt_enable` removed): the same keys, the same tensors, the same logits when
    /// the written file is run from its recorded config; and those logits are not the quantized
    /// model's (the quantizers are really off).
    @Test(arguments: ["resnet20_lsq_a2w2", "resnet20_dorefa_a2w2", "resnet20_xnorpp", "resnet20_fatnn_a2w2", "resnet20_lq_a2w2"])
    func toFullPrecisionNeedsNoEditedConfig(name: String) throws {
        try withTemporaryDirectory { dir in
            let cfg = Self.golden(name, "config.txt"), input = Self.golden(name, "input.npy")
            let a = dir.appendingPathComponent("a.pth").path, b = dir.appendingPathComponent("b.pth").path
            let c = try RunQTools.run(["convert", Self.golden(name, "checkpoint.pth"), "-o", a, "--config", cfg, "--to-fp", "--json"])
            #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
            #expect((try Self.json(c.stdout)["notes"] as? [String] ?? []).contains { $0.hasPrefix("dropped ") && $0.contains(".quant_") })
            let fpCfg = try Self.fpConfig(
                cfg, in: dir,
                drop: ["dorefa", "lsq", "pact", "lq", "xnor", "gamma", "non-uniform", "fm_non-uniform", "wt_lsq", "custom-update"])
            let e = try RunQTools.run(["convert", Self.golden(name, "checkpoint.pth"), "-o", b, "--config", cfg, "--to-config", fpCfg])
            #expect(e.status == 0, "\(e.stdout) \(e.stderr)")
            let keys = try Self.keyLines(a)
            #expect(keys == (try Self.keyLines(b)))
            #expect(!keys.contains { $0.contains(".quant_") })
            for line in keys {
                let key = String(line.split(separator: " ")[0])
                #expect(try Self.tensor(a, key) == (try Self.tensor(b, key)), "\(key)")
            }
            // Both files run from the config they record, with nothing else given.
            var logits: [[Float]] = []
            for (file, out) in [(a, "oa.npy"), (b, "ob.npy")] {
                let path = dir.appendingPathComponent(out).path
                let r = try RunQTools.run(["run", file, "--input", input, "--output", path])
                #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
                logits.append(try NpyReader.readArray(ByteStore.map(path: path).all).floats())
            }
            #expect(logits[0] == logits[1])
            let quantized = try NpyReader.readArray(ByteStore.map(path: Self.golden(name, "output.npy")).all).floats()
            let moved = zip(logits[0], quantized).map { abs($0 - $1) }.max() ?? 0
            #expect(moved > 1e-3, "the full-precision logits equal the quantized ones: quantizers still on?")
        }
    }

    @Test func initialQuantizerValuesFollowSection11_2() throws {
        try withTemporaryDirectory { dir in
            // PACT: clip_val = fm_boundary (8.0 in the golden config), level_num = 4.
            let pact = "resnet20_pact_a2w2", lq = "resnet20_lq_a2w2", fat = "resnet20_fatnn_a2w2"
            func roundTrip(_ name: String) throws -> String {
                let fp = dir.appendingPathComponent("\(name)-fp.pth").path, q = dir.appendingPathComponent("\(name)-q.pth").path
                let cfg = Self.golden(name, "config.txt")
                let fpCfg = try Self.fpConfig(
                    cfg, in: dir, drop: ["dorefa", "lsq", "pact", "lq", "fm_non-uniform", "wt_lsq", "custom-update"])
                _ = try RunQTools.run(["convert", Self.golden(name, "checkpoint.pth"), "-o", fp, "--config", cfg, "--to-config", fpCfg])
                let r = try RunQTools.run(["convert", fp, "-o", q, "--to-config", cfg])
                #expect(r.status == 0, "\(r.stderr)")
                return q
            }
            let p = try roundTrip(pact)
            #expect(try Self.tensor(p, "layer1.0.conv1.0.quant_activation.clip_val") == [8])
            #expect(try Self.tensor(p, "layer1.0.conv1.0.quant_activation.level_num") == [4])
            #expect(try Self.tensor(p, "layer1.0.conv1.0.quant_weight.level_num") == [4])
            let l = try roundTrip(lq)
            // 2-bit LQ fm basis [0.6745, 1.349]; wt basis 0.6745·sqrt(2/fan)·[1, 2] / 2 with fan = 8·3·3.
            let fb = try Self.tensor(l, "layer1.0.conv1.0.quant_activation.basis")
            #expect(abs(fb[0] - 0.6745) < 1e-6 && abs(fb[1] - 1.349) < 1e-6)
            let wb = try Self.tensor(l, "layer1.0.conv1.0.quant_weight.basis")
            let base = 0.6745 * (2.0 / 72).squareRoot() / 2
            #expect(abs(Double(wb[0]) - base) < 1e-7 && abs(Double(wb.last!) - 2 * base) < 1e-7)
            #expect(try Self.tensor(l, "layer1.0.conv1.0.quant_activation.codec_vector") == [0, 0, 1, 0, 0, 1, 1, 1])
            #expect(try Self.tensor(l, "layer1.0.conv1.0.quant_weight.codec_vector") == [-1, -1, 1, -1, -1, 1, 1, 1])
            #expect(
                try Self.tensor(l, "layer1.0.conv1.0.quant_weight.thrs_multiplier") == [0.5, 0.5, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0.5, 0.5])
            let f = try roundTrip(fat)
            // fm non-uniform: alpha = fm_scale / fm_boundary = 3; wt LSQ clip_val = wt_boundary = 1.
            #expect(try Self.tensor(f, "layer1.0.conv1.0.quant_activation.alpha0") == [3])
            #expect(try Self.tensor(f, "layer1.0.conv1.0.quant_weight.clip_val") == [1])
        }
    }

    @Test func methodToMethodAndNonCorrespondingTensorsAreNamed() throws {
        try withTemporaryDirectory { dir in
            let name = "resnet20_dorefa_a2w2"
            let cfg = Self.golden(name, "config.txt")
            let lsq = dir.appendingPathComponent("lsq.pth").path
            let words = try ConfigRecord.load(path: cfg).options.keywords.joined(separator: ",")
            let r = try RunQTools.run([
                "convert", Self.golden(name, "checkpoint.pth"), "-o", lsq, "--config", cfg, "--to-keyword", words + ",lsq",
            ])
            #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
            #expect(try Self.tensor(lsq, "layer1.0.conv1.0.quant_weight.clip_val").allSatisfy { $0 == 1 })
            let back = dir.appendingPathComponent("dorefa.pth").path
            let b = try RunQTools.run(["convert", lsq, "-o", back, "--to-keyword", words])
            #expect(b.status == 0, "\(b.stderr)")
            #expect(
                try Self.keyLines(back)
                    == Set(
                        try String(contentsOfFile: Self.golden(name, "keys.txt"), encoding: .utf8).split(separator: "\n").map(String.init)))
            // Fixup has scalar biases the BN network has no place for: an error naming them.
            let bad = try RunQTools.run([
                "convert", Self.golden("resnet20_fixup", "checkpoint.pth"), "-o", dir.appendingPathComponent("x.pth").path,
                "--config", Self.golden("resnet20_fixup", "config.txt"), "--to-keyword", "cifar10,origin,cbsa,fix,singleconv",
            ])
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("fixup_bias1"))
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.pth").path))
        }
    }
}
