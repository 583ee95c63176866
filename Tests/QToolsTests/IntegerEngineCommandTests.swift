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
}
