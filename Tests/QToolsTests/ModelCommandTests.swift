import Formats
import Foundation
import Tensors
import TestSupport
import Testing

/// `qtools run / verify / trace / bench` end to end on the golden cases.
@Suite struct ModelCommandTests {
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    static func args(_ command: String, _ c: String) -> [String] {
        [command, golden(c, "checkpoint.pth"), "--config", golden(c, "config.txt")]
    }

    @Test func runPrintsTop5AndWritesLogits() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("logits.npy").path
            let r = try RunQTools.run(
                Self.args("run", "resnet20_dorefa_a2w2") + [
                    "--input", Self.golden("resnet20_dorefa_a2w2", "input.npy"), "--output", out, "--json",
                ])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let samples = try #require(doc["samples"] as? [[String: Any]])
            #expect(samples.count == 2)
            #expect((samples[0]["top5"] as? [Any])?.count == 5)
            // The written logits are PyTorch's within 1e-4.
            let got = try NpyReader.readArray(ByteStore.map(path: out).all)
            let want = try NpyReader.readArray(ByteStore.map(path: Self.golden("resnet20_dorefa_a2w2", "output.npy")).all)
            #expect(got.shape == want.shape)
            #expect(Difference(got.floats(), want.floats()).maxAbs <= 1e-4)
        }
    }

    @Test(arguments: ["resnet20_lq_a2w2", "resnet20_xnorpp", "resnet18_lsq_a2w2"])
    func verifyPassesAgainstPyTorch(name: String) throws {
        let r = try RunQTools.run(
            Self.args("verify", name) + ["--input", Self.golden(name, "input.npy"), "--expect", Self.golden(name, "output.npy"), "--json"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(doc["pass"] as? Bool == true)
        #expect((doc["max_abs"] as? Double ?? 1) <= 1e-4)
        #expect(doc["top1_agree"] as? Int == 2)
    }

    @Test func verifyFailsWithExitOneWhenLogitsDiffer() throws {
        // Another case's logits (same shape) are not this model's.
        let r = try RunQTools.run(
            Self.args("verify", "resnet20_pact_a2w2") + [
                "--input", Self.golden("resnet20_pact_a2w2", "input.npy"), "--expect", Self.golden("resnet20_lsq_a2w2", "output.npy"),
            ])
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("FAIL"))
        #expect(r.stderr.isEmpty)
    }

    @Test func widthOverrideFollowsTheConfig() throws {
        let name = "pytorch_resnet18_fp"
        let base = Self.args("verify", name) + ["--input", Self.golden(name, "input.npy"), "--expect", Self.golden(name, "output.npy")]
        let ok = try RunQTools.run(base + ["--width_alpha", "0.125"])
        #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
        // Without the override the widths are torchvision's: the checkpoint does not fit.
        let bad = try RunQTools.run(base)
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("'conv1.weight'"))
        #expect(bad.stderr.components(separatedBy: "qtools: error:").count == 2)
    }

    @Test func missingConfigIsAUsageError() throws {
        let r = try RunQTools.run(["run", Self.golden("resnet20_fp", "checkpoint.pth")])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--config"))
    }

    @Test func benchJSONHasMedian() throws {
        let r = try RunQTools.run(Self.args("bench", "resnet20_fp") + ["--runs", "2", "--warmup", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((doc["median_ms"] as? Double ?? 0) > 0)
        #expect((doc["op_shares"] as? [String: Double])?["conv2d"] != nil)
        // The memory anchor: its parts add up; the peak itself depends on the machine.
        let weights = try #require(doc["weight_bytes"] as? Int)
        let activations = try #require(doc["largest_activation_bytes"] as? Int)
        #expect(weights > 0 && activations > 0 && (doc["packed_weight_bytes"] as? Int ?? 0) > 0)
        #expect(doc["memory_anchor_bytes"] as? Int == weights + 2 * activations + (64 << 20))
        #if os(Linux)
            #expect((doc["peak_rss_bytes"] as? Int ?? 0) > 0)
            #expect(doc["memory_anchor_met"] is Bool)
        #endif
    }

    @Test func benchTextReportsMemory() throws {
        let r = try RunQTools.run(Self.args("bench", "resnet20_fp") + ["--runs", "1", "--warmup", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("memory: peak RSS "), "\(r.stdout)")
        #expect(r.stdout.contains(" + 64 MiB"), "\(r.stdout)")
    }

    @Test func traceWithoutCheckpoint() throws {
        let r = try RunQTools.run(["trace", "--config", Self.golden("resnet20_ternary_fatnn", "config.txt"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((doc["bops"] as? Int ?? 0) > 0)
        let rows = try #require(doc["rows"] as? [[String: Any]])
        #expect(rows.contains { $0["name"] as? String == "layer1.0.conv1.0" && $0["quantization"] as? String == "a2w2" })
    }
}
