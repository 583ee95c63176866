import Formats
import Foundation
import Tensors
import TestSupport
import Testing

/// `qtools run` / `bench` on the XNOR and FATNN golden cases: binary and ternary convs on the bit-packed kernels by
/// default, as float convs with `--engine float`; both reproduce PyTorch's logits. The run test
/// also covers the uniform quantized cases on every engine (`int8`: IntegerEngineCommandTests).
@Suite struct BinaryEngineCommandTests {
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    @Test(
        arguments: [
            "resnet20_bireal_xnor", "resnet20_xnorpp", "resnet20_ternary_fatnn", "resnet20_lsq_a2w2", "resnet20_pact_a2w2",
        ], ["fast", "float", "int8"])
    func runMatchesPyTorchOnEveryEngine(name: String, engine: String) throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("logits.npy").path
            let r = try RunQTools.run([
                "run", Self.golden(name, "checkpoint.pth"), "--config", Self.golden(name, "config.txt"), "--input",
                Self.golden(name, "input.npy"), "--output", out, "--engine", engine,
            ])
            #expect(r.status == 0, "\(r.stderr)")
            let got = try NpyReader.readArray(ByteStore.map(path: out).all)
            let want = try NpyReader.readArray(ByteStore.map(path: Self.golden(name, "output.npy")).all)
            #expect(got.shape == want.shape)
            #expect(Difference(got.floats(), want.floats()).maxAbs <= 1e-4)
        }
    }

    @Test func benchCountsTheBinaryConvs() throws {
        let name = "resnet20_xnorpp"
        let base = [
            "bench", Self.golden(name, "checkpoint.pth"), "--config", Self.golden(name, "config.txt"), "--runs", "1", "--warmup",
            "0", "--json",
        ]
        for (engine, count, op) in [("fast", 18, "binaryConv2d"), ("float", 0, "conv2d")] {
            let r = try RunQTools.run(base + ["--engine", engine])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(doc["binary_convs"] as? Int == count, "\(engine)")
            #expect((doc["op_shares"] as? [String: Double])?[op] != nil, "\(engine)")
        }
        let bad = try RunQTools.run(base + ["--engine", "reference"])
        #expect(bad.status != 0 && bad.stderr.contains("fast, float or int8"), "\(bad.stderr)")
    }
}
