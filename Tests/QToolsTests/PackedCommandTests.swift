import Formats
import Foundation
import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

/// `qtools convert --to packed`, `inspect` and `run` on `.qpack` files, end to end on the
/// binary and ternary golden cases.
@Suite struct PackedCommandTests {
    static let cases = ["resnet20_bireal_xnor", "resnet20_xnorpp", "resnet20_ternary_fatnn"]
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    /// `convert CKPT --config CFG -o DIR/model.qpack [extra]`.
    static func pack(_ c: String, _ dir: URL, _ extra: [String] = []) throws -> (path: String, result: Python.Result) {
        let path = dir.appendingPathComponent("model.qpack").path
        let r = try RunQTools.run(
            ["convert", golden(c, "checkpoint.pth"), "--config", golden(c, "config.txt"), "-o", path] + extra)
        return (path, r)
    }

    @Test(arguments: cases)
    func packedFileRunsAloneAndReproducesPyTorch(name: String) throws {
        try withTemporaryDirectory { dir in
            let (path, r) = try Self.pack(name, dir, ["--to", "packed", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(doc[name.contains("ternary") ? "ternary_layers" : "binary_layers"] as? Int == 18)
            // No --config: the file carries it.
            let out = dir.appendingPathComponent("logits.npy").path
            let run = try RunQTools.run(["run", path, "--input", Self.golden(name, "input.npy"), "--output", out])
            #expect(run.status == 0, "\(run.stderr)")
            let got = try NpyReader.readArray(ByteStore.map(path: out).all)
            let want = try NpyReader.readArray(ByteStore.map(path: Self.golden(name, "output.npy")).all)
            #expect(got.shape == want.shape)
            let d = Difference(got.floats(), want.floats())
            #expect(d.maxAbs <= 1e-4, "\(name): \(d)")

            // The packed layers run bit-packed, on the file's planes.
            let bench = try RunQTools.run(["bench", path, "--runs", "1", "--warmup", "0", "--json"])
            #expect(bench.status == 0, "\(bench.stderr)")
            let benchDoc = try #require(try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any])
            #expect(benchDoc["binary_convs"] as? Int == 18, "\(name): \(bench.stdout.prefix(400))")

            let inspect = try RunQTools.run(["inspect", path])
            #expect(inspect.status == 0, "\(inspect.stderr)")
            let op = name.contains("ternary") ? "tconv2d" : "bconv2d"
            #expect(inspect.stdout.contains("packed model  (bnnpack 1, model resnet20"), "\(inspect.stdout.prefix(600))")
            #expect(inspect.stdout.contains("layer3.2.conv2.0  \(op)"), "\(inspect.stdout.prefix(2000))")
            #expect(inspect.stdout.contains("of their float32"))
            let json = try RunQTools.run(["inspect", path, "--json"])
            let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let packed = try #require(report["packed"] as? [String: Any])
            let ratio = try #require(packed["packedLayersRatio"] as? Double)
            #expect(ratio <= (name.contains("ternary") ? 0.2 : 0.1), "\(name): \(ratio)")
        }
    }

    @Test func layerThatPassesFloatsThroughIsRefusedByName() throws {
        try withTemporaryDirectory { dir in
            let (path, r) = try Self.pack("resnet20_bireal_xnor", dir, ["--", "--stable", "0"])
            #expect(r.status == 65)
            #expect(r.stderr.contains("layer1.0.conv1.0") && r.stderr.contains("passes floats through"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: path))
            let kept = try Self.pack("resnet20_bireal_xnor", dir, ["--keep-float", "--", "--stable", "0"])
            #expect(kept.result.status == 64, "\(kept.result.stderr)")
            #expect(kept.result.stderr.contains("no binary or ternary layer to pack"), "\(kept.result.stderr)")
            let good = try Self.pack("resnet20_bireal_xnor", dir)
            #expect(good.result.status == 0, "\(good.result.stderr)")
            let again = try RunQTools.run(["convert", good.path, "-o", dir.appendingPathComponent("again.qpack").path])
            #expect(again.status == 64 && again.stderr.contains("already a packed model"), "\(again.stderr)")
            let twoBit = try Self.pack("resnet20_dorefa_a2w2", dir, ["--force"])
            #expect(twoBit.result.status == 65)
            #expect(twoBit.result.stderr.contains("has 4 levels"), "\(twoBit.result.stderr)")
        }
    }

    @Test func optionsThatDoNotApplyAreRefused() throws {
        try withTemporaryDirectory { dir in
            let r = try Self.pack("resnet20_bireal_xnor", dir, ["--dtype", "float16"])
            #expect(r.result.status == 64)
            #expect(r.result.stderr.contains("--dtype does not apply to a packed output"), "\(r.result.stderr)")
            let k = try RunQTools.run(
                [
                    "convert", Self.golden("resnet20_bireal_xnor", "checkpoint.pth"), "-o", dir.appendingPathComponent("x.pth").path,
                    "--keep-float",
                ])
            #expect(k.status == 64 && k.stderr.contains("--keep-float applies only to a packed output"), "\(k.stderr)")
            let help = try RunQTools.run(["convert", "--help"])
            #expect(help.stdout.contains("--keep-float") && help.stdout.contains("Packed (--to packed"))
        }
    }

    /// `-o` naming a file the packing reads (the checkpoint, the config) is refused (exit 64)
    /// and the file is left as it was.
    @Test func packingOntoAnInputIsRefused() throws {
        try withTemporaryDirectory { dir in
            let c = "resnet20_bireal_xnor"
            let ckpt = dir.appendingPathComponent("model.pth").path, cfg = dir.appendingPathComponent("config.txt").path
            try FileManager.default.copyItem(atPath: Self.golden(c, "checkpoint.pth"), toPath: ckpt)
            try FileManager.default.copyItem(atPath: Self.golden(c, "config.txt"), toPath: cfg)
            for target in [ckpt, cfg] {
                let before = try Data(contentsOf: URL(fileURLWithPath: target))
                let r = try RunQTools.run(["convert", ckpt, "--config", cfg, "--to", "packed", "-o", target, "--force"])
                #expect(r.status == 64, "\(target): \(r.stderr)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == before, "\(target) was changed")
            }
        }
    }
}

/// The file opens in the Python `safetensors` package, and unpacking its planes with
/// `numpy.unpackbits(bitorder="little")` gives exactly the quantized weights the float path
/// uses (every layer) and PyTorch computed (the golden `qweight_*.npy` files).
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (numpy, safetensors)"))
struct PackedPythonInteropTests {
    static let script = """
        import json, sys
        import numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
        path, expected_path, golden = sys.argv[1:4]
        tensors = load_file(path)
        with safe_open(path, "np") as f:
            meta = f.metadata()
        assert meta["bnnpack.version"] == "1" and meta["bnnpack.bit_order"] == "lsb0", meta
        manifest = json.loads(meta["bnnpack.manifest"])
        expected = np.load(expected_path)
        def plane(name, cin):
            bits = np.unpackbits(tensors[name], axis=-1, bitorder="little")   # [O, KH, KW, rowbits]
            assert not bits[..., cin:].any(), name + ": padding bits set"
            return bits[..., :cin].astype(np.float32)
        out = {}
        for layer in manifest["layers"]:
            name, cin = layer["name"], layer["in_channels"] // layer["groups"]
            s = tensors[name + ".w.scale"].reshape(-1, 1, 1, 1)
            if layer["weight_encoding"] == "binary":
                w = s * (1 - 2 * plane(name + ".w.bits", cin))
            else:
                sign, mask = plane(name + ".w.sign", cin), plane(name + ".w.mask", cin)
                assert not (sign * (1 - mask)).any(), name + ": sign outside mask"
                w = s * mask * (1 - 2 * sign)
            w = w.transpose(0, 3, 1, 2)                                          # OHWI -> OIHW
            e = expected[name]
            out[name] = {"equal": bool(w.shape == e.shape and np.array_equal(w, e)),
                         "levels": int(len(np.unique(w[0])))}
            try:
                q = np.load(golden + "/qweight_" + name + ".npy")
                out[name]["pytorch"] = float(np.abs(w - q).max())
            except FileNotFoundError:
                pass
        print(json.dumps(out))
        """

    @Test(arguments: PackedCommandTests.cases)
    func planesUnpackToTheFloatPathWeights(name: String) throws {
        try withTemporaryDirectory { dir in
            let (path, r) = try PackedCommandTests.pack(name, dir)
            #expect(r.status == 0, "\(r.stderr)")
            // The float path's quantized weights, as `run CKPT --config CFG` builds them.
            let options = try QToolOptions(config: ConfigFile(contentsOf: PackedCommandTests.golden(name, "config.txt")))
            let sd = try #require(try ModelFile.open(path: PackedCommandTests.golden(name, "checkpoint.pth")).checkpoint.stateDict())
            let model = try ModelBuilder.build(options: options, stateDict: sd.entries.map { ($0.name, $0.tensor.materialize()) })
            let packed = model.layers.filter { $0.weightQuantizer?.isEnabled == true }
            let sink = try OutputFile(path: dir.appendingPathComponent("expected.npz").path)
            try NpzWriter.write(packed.compactMap { l in model.graph.constants[l.name + ".weight"].map { (l.name, $0) } }, to: sink)
            try sink.commit()
            let golden = (PackedCommandTests.golden(name, "config.txt") as NSString).deletingLastPathComponent
            let doc = try #require(
                try Python.json(Self.script, [path, dir.appendingPathComponent("expected.npz").path, golden]) as? [String: [String: Any]])
            #expect(doc.count == 18)
            for (layer, v) in doc {
                #expect(v["equal"] as? Bool == true, "\(name) \(layer): numpy unpacking differs from the float path")
                #expect((v["levels"] as? Int ?? 0) <= (name.contains("ternary") ? 3 : 2))
                if let d = v["pytorch"] as? Double { #expect(d == 0, "\(name) \(layer): differs from PyTorch's weight by \(d)") }
            }
            #expect(doc.values.filter { $0["pytorch"] != nil }.count == 2)
        }
    }
}
