import Formats
import Foundation
import Tensors
import TestSupport
import Testing

/// `qtools run` / `bench` on uniform quantized golden cases: the quantized convs on the int8
/// kernels with `--engine int8`, and by default (`fast`) where the CPU runs the direct VNNI
/// kernel, as float fake-quant convs with `--engine float`; every engine reproduces PyTorch's
/// logits (BinaryEngineCommandTests.runMatchesPyTorchOnEveryEngine).
@Suite struct IntegerEngineCommandTests {
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    @Test func benchCountsTheIntegerConvs() throws {
        let name = "resnet20_dorefa_a2w2"
        let base = [
            "bench", Self.golden(name, "checkpoint.pth"), "--config", Self.golden(name, "config.txt"), "--runs", "1", "--warmup",
            "0", "--json",
        ]
        for (engine, lowered) in [("int8", 18), ("fast", 18), ("float", 0)] {
            let r = try RunQTools.run(base + ["--engine", engine])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let kernel = try #require(doc["integer_kernel"] as? String)
            #expect(["direct-vnni", "gather-avx2", "gather-portable"].contains(kernel))
            let count = engine == "fast" && kernel != "direct-vnni" ? 0 : lowered
            #expect(doc["integer_convs"] as? Int == count, "\(engine)")
            #expect(doc["binary_convs"] as? Int == 0, "\(engine)")
            #expect(((doc["op_shares"] as? [String: Double])?["integerConv"] != nil) == (count > 0), "\(engine)")
        }
        let text = try RunQTools.run(Array(base.dropLast()) + ["--engine", "int8"])
        #expect(text.stdout.contains("18 integer convs on the int8 kernels"), "\(text.stdout)")
    }

    /// `verify` runs the int8 path on request: against PyTorch's logits (`--engine-a int8`),
    /// and against the fake-quant path of the same checkpoint (`verify A A --engine-a int8
    /// --engine-b float`); per-layer engines are refused for logits, and `--engine-b` without
    /// a second model.
    @Test func verifyComparesTheIntegerAndFloatPaths() throws {
        let name = "resnet20_dorefa_a2w2"
        let (ckpt, config) = (Self.golden(name, "checkpoint.pth"), Self.golden(name, "config.txt"))
        let (x, y) = (Self.golden(name, "input.npy"), Self.golden(name, "output.npy"))
        for engine in ["int8", "float", "fast"] {
            let r = try RunQTools.run(["verify", ckpt, "--config", config, "--input", x, "--expect", y, "--engine-a", engine, "--json"])
            #expect(r.status == 0, "\(engine): \(r.stdout) \(r.stderr)")
        }
        let two = try RunQTools.run([
            "verify", ckpt, ckpt, "--config", config, "--input", x, "--engine-a", "int8", "--engine-b", "float", "--json",
        ])
        #expect(two.status == 0, "\(two.stdout) \(two.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(two.stdout.utf8)) as? [String: Any])
        #expect((doc["a"] as? String)?.hasSuffix("engine int8") == true && (doc["b"] as? String)?.hasSuffix("engine float") == true)
        // Two different computations (int32 sums against float32 ones), so not bit-identical.
        let maxAbs = try #require(doc["max_abs"] as? Double)
        #expect(maxAbs > 0 && maxAbs < 1e-4, "\(maxAbs)")
        let bad = try RunQTools.run(["verify", ckpt, "--config", config, "--input", x, "--expect", y, "--engine-a", "reference"])
        #expect(bad.status != 0 && bad.stderr.contains("per-layer"), "\(bad.stderr)")
        let lone = try RunQTools.run(["verify", ckpt, "--config", config, "--input", x, "--expect", y, "--engine-b", "int8"])
        #expect(lone.status != 0 && lone.stderr.contains("second model"), "\(lone.stderr)")
    }
}
