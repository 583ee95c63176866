import Formats
import Foundation
import Tensors
import TestSupport
import Testing

/// `qtools run --dump DIR` and per-layer `verify` (`--per-layer`, `--layers`) end to end on a
/// golden case.
@Suite struct LayerDumpCommandTests {
    static let name = "resnet20_dorefa_a2w2"
    static func golden(_ f: String) -> String { Fixtures.path("golden/\(name)/\(f)") }
    static var model: [String] { [golden("checkpoint.pth"), "--config", golden("config.txt")] }
    static var input: [String] { ["--input", golden("input.npy")] }

    /// The golden files and the value names they are (hooked module inputs and outputs).
    static let goldenValues = [
        "act_conv1_in.npy": "input", "act_conv1_out.npy": "conv1",
        "act_layer1.0.conv1.0_in.npy": "bn1.1", "qact_layer1.0.conv1.0.npy": "layer1.0.conv1.0.quant_activation",
        "act_layer1.0.conv1.0_out.npy": "layer1.0.conv1.0", "act_fc_out.npy": "logits",
    ]

    static func npy(_ path: String) throws -> Tensor { try NpyReader.readArray(ByteStore.map(path: path).all) }

    static func index(_ dir: String) throws -> [String: [String: Any]] {
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/index.json"))) as? [String: Any]
        return try #require(doc?["values"] as? [String: [String: Any]])
    }

    static func dump(_ dir: String, _ extra: [String] = []) throws -> Python.Result {
        try RunQTools.run(["run"] + model + input + ["--dump", dir] + extra)
    }

    static func json(_ r: Python.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout) \(r.stderr)")
    }

    @Test(arguments: ["fast", "unfused", "reference"])
    func dumpHoldsTheGoldenActivations(engine: String) throws {
        try withTemporaryDirectory { tmp in
            let dir = tmp.appendingPathComponent("dump").path
            let r = try Self.dump(dir, ["--engine", engine])
            #expect(r.status == 0, "\(r.stderr)")
            let index = try Self.index(dir)
            for (file, value) in Self.goldenValues {
                let entry = try #require(index[value], "\(value) not in index.json")
                guard let f = entry["file"] as? String else {
                    // Only the fast engine fuses: the conv outputs (BN and ReLU folded in) have no file.
                    #expect(
                        engine == "fast" && entry["fused_into"] is String && ["conv1", "layer1.0.conv1.0"].contains(value),
                        "\(value): \(entry)")
                    continue
                }
                let got = try Self.npy(dir + "/" + f), want = try Self.npy(Self.golden(file))
                try #require(got.shape == want.shape, "\(file): \(got.shape) vs \(want.shape)")
                let scale = max(1, want.floats().map { abs($0) }.max() ?? 1)
                #expect(Difference(got.floats(), want.floats()).maxAbs <= 1e-5 * scale, "\(engine) \(value) vs \(file)")
            }
            #expect(index["layer1.0.conv1.0.quant_activation"]?["op"] as? String == "quantize")
            #expect(index["layer1.0.conv1.0.quant_activation"]?["inputs"] as? [String] == ["layer1.0.conv1.0.pad"])
            // The dump's logits are the float graph's run (captured values never come from the
            // int8 lowering): a plain `--engine float` run prints the same, a plain default run
            // (quantized convs on the int8 kernels) the same up to the rescale's rounding.
            func plain(_ extra: [String]) throws -> [Float] {
                let doc = try Self.json(try RunQTools.run(["run"] + Self.model + Self.input + ["--json"] + extra))
                return ((doc["samples"] as? [[String: Any]]) ?? []).flatMap { ($0["logits"] as? [Double]) ?? [] }.map { Float($0) }
            }
            let dumped = try Self.npy(dir + "/logits.npy").floats()
            if engine == "fast" {
                #expect(try plain(["--engine", "float"]) == dumped)
                let lowered = try plain([])
                #expect(lowered.count == dumped.count && Difference(lowered, dumped).maxAbs <= 1e-4)
            }
        }
    }

    @Test func identicalRunsDifferNowhere() throws {
        let r = try RunQTools.run(["verify"] + Self.model + [Self.golden("checkpoint.pth")] + Self.input + ["--per-layer", "--json"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let doc = try Self.json(r)
        let layers = try #require(doc["layers"] as? [[String: Any]])
        let compared = layers.filter { $0["max_abs"] is Double }
        #expect(compared.count > 40)
        #expect(compared.allSatisfy { ($0["max_abs"] as? Double) == 0 })
        #expect(doc["pass"] as? Bool == true)
        #expect(doc["first_difference"] is NSNull || doc["first_difference"] == nil)
    }

    /// The fast engine against the naive interpreter: every layer within 1e-4 of its scale;
    /// the values the fast plan fused away are listed as such.
    @Test func fastAgainstReferencePasses() throws {
        let r = try RunQTools.run(
            ["verify"] + Self.model + [Self.golden("checkpoint.pth")] + Self.input + ["--per-layer", "--engine-b", "reference", "--json"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let layers = try #require(try Self.json(r)["layers"] as? [[String: Any]])
        #expect(layers.contains { $0["name"] as? String == "conv1" && $0["status"] as? String == "fused in A" })
        #expect(layers.contains { $0["name"] as? String == "layer1.0.conv1.0.quant_activation" && $0["status"] as? String == "ok" })
    }

    /// A dump with one quantizer output changed by one level at one element: located there.
    @Test func perturbedLayerIsLocated() throws {
        try withTemporaryDirectory { tmp in
            let a = tmp.appendingPathComponent("a").path, b = tmp.appendingPathComponent("b").path
            #expect(try Self.dump(a).status == 0)
            try FileManager.default.copyItem(atPath: a, toPath: b)
            let layer = "layer2.1.conv1.0.quant_activation"
            let path = b + "/\(layer).npy"
            let t = try Self.npy(path)
            var v = t.floats()
            let at = 1234
            v[at] += 1.0 / 3
            let f = try OutputFile(path: path, overwrite: true)
            try NpyWriter.write(Tensor(floats: v, shape: t.shape), to: f)
            try f.commit()
            let r = try RunQTools.run(["verify", "--layers", a, b, "--json"])
            #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
            let doc = try Self.json(r)
            let first = try #require(doc["first_difference"] as? [String: Any])
            #expect(first["layer"] as? String == layer)
            #expect(first["op"] as? String == "quantize")
            #expect(first["index"] as? Int == at)
            #expect(first["elements_above_tolerance"] as? Int == 1)
            #expect((first["input"] as? [String: Any])?["ulps"] as? Int == 0)
            let layers = try #require(doc["layers"] as? [[String: Any]])
            let before = layers.prefix { $0["name"] as? String != layer }
            #expect(!before.isEmpty && before.allSatisfy { $0["status"] as? String != "differs" })
            // Text form names the layer and element too.
            let text = try RunQTools.run(["verify", "--layers", a, b])
            #expect(text.status == 1 && text.stdout.contains("first difference: \(layer) (quantize) at element \(at)"))
        }
    }

    /// A PyTorch-hook style dump (files named by module path, no index.json) compares against a qtools dump.
    @Test func comparesWithAHookDumpWithoutIndex() throws {
        try withTemporaryDirectory { tmp in
            let a = tmp.appendingPathComponent("a").path, torch = tmp.appendingPathComponent("torch").path
            #expect(try Self.dump(a).status == 0)
            try FileManager.default.createDirectory(atPath: torch, withIntermediateDirectories: true)
            // Module paths: the classifier is `fc` (qtools' value `logits`, index.json records the module).
            for (file, value) in Self.goldenValues where value != "conv1" && value != "layer1.0.conv1.0" {
                try FileManager.default.copyItem(atPath: Self.golden(file), toPath: "\(torch)/\(value == "logits" ? "fc" : value).npy")
            }
            let r = try RunQTools.run(["verify", "--layers", a, torch, "--json"])
            #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
            let doc = try Self.json(r)
            let compared = (doc["layers"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(compared == ["input", "bn1.1", "layer1.0.conv1.0.quant_activation", "logits"])
            #expect(doc["only_in_b"] as? [String] == [])
            #expect((doc["only_in_a"] as? [String])?.contains("layer1.0.conv1.0.pad") == true)
        }
    }

    @Test func dumpErrors() throws {
        try withTemporaryDirectory { tmp in
            // DIR is a file.
            let file = tmp.appendingPathComponent("file").path
            try Data("x".utf8).write(to: URL(fileURLWithPath: file))
            let r1 = try Self.dump(file)
            #expect(r1.status == 73 && r1.stderr.contains(file) && r1.stderr.contains("not a directory"), "\(r1.stderr)")
            // A non-empty directory needs --force; an input inside it is never overwritten.
            let dir = tmp.appendingPathComponent("d").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Self.golden("input.npy"), toPath: dir + "/input.npy")
            let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/input.npy"))
            let r2 = try RunQTools.run(["run"] + Self.model + ["--input", dir + "/input.npy", "--dump", dir])
            #expect(r2.status == 73 && r2.stderr.contains("not empty"), "\(r2.stderr)")
            let r3 = try RunQTools.run(["run"] + Self.model + ["--input", dir + "/input.npy", "--dump", dir, "--force"])
            #expect(r3.status == 73 && r3.stderr.contains("input.npy") && r3.stderr.contains("input of this run"), "\(r3.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/input.npy")) == before)
            #expect(!FileManager.default.fileExists(atPath: dir + "/index.json"))
            // --force with a directory holding other files works.
            let other = tmp.appendingPathComponent("o").path
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            try Data("keep".utf8).write(to: URL(fileURLWithPath: other + "/notes.txt"))
            #expect(try Self.dump(other, ["--force"]).status == 0)
            #expect(FileManager.default.fileExists(atPath: other + "/index.json"))
        }
    }

    @Test func compareErrors() throws {
        try withTemporaryDirectory { tmp in
            let a = tmp.appendingPathComponent("a").path, b = tmp.appendingPathComponent("b").path
            #expect(try Self.dump(a).status == 0)
            try FileManager.default.copyItem(atPath: a, toPath: b)
            // A missing layer file: exit 66 naming it.
            let gone = b + "/layer1.1.conv1.0.quant_activation.npy"
            try FileManager.default.removeItem(atPath: gone)
            let r1 = try RunQTools.run(["verify", "--layers", a, b])
            #expect(r1.status == 66 && r1.stderr.contains(gone), "\(r1.stderr)")
            // A shape mismatch: exit 65 naming the layer and both files.
            try FileManager.default.copyItem(atPath: b + "/logits.npy", toPath: gone)
            let r2 = try RunQTools.run(["verify", "--layers", a, b])
            #expect(r2.status == 65 && r2.stderr.contains("layer1.1.conv1.0.quant_activation") && r2.stderr.contains(gone), "\(r2.stderr)")
            // A file given as a dump directory.
            let r3 = try RunQTools.run(["verify", "--layers", a, Self.golden("input.npy")])
            #expect(r3.status == 65 && r3.stderr.contains("is a file"), "\(r3.stderr)")
            // A directory given as a model.
            let r4 = try RunQTools.run(["verify", a, b, "--per-layer"])
            #expect(r4.status == 64 && r4.stderr.contains("--layers"), "\(r4.stderr)")
        }
    }
}
