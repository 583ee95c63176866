import Foundation
import TestSupport
import Testing

/// `qtools bench --train`: training-step timings, per-op shares and the memory bound.
@Suite struct BenchTrainCommandTests {
    static func golden(_ c: String, _ f: String) -> String { Fixtures.path("golden/\(c)/\(f)") }

    static func json(_ r: Python.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    @Test func checkpointStepsReportThroughputSharesAndMemory() throws {
        let c = "resnet20_lsq_a2w2"
        let r = try RunQTools.run([
            "bench", Self.golden(c, "checkpoint.pth"), "--config", Self.golden(c, "config.txt"), "--train",
            "--batch", "4", "--threads", "2", "--runs", "2", "--warmup", "0", "--json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try Self.json(r)
        #expect((doc["images_per_second"] as? Double ?? 0) > 0)
        #expect(doc["precision"] as? String == "fast" && doc["random_weights"] as? Bool == false)
        #expect(doc["input_shape"] as? [Int] == [4, 3, 32, 32] && doc["steps"] as? Int == 2)
        #expect((doc["loss"] as? Double)?.isFinite == true)
        for pass in ["forward_op_shares", "backward_op_shares"] {
            let shares = try #require(doc[pass] as? [String: Double], "\(pass)")
            #expect(shares["conv2d"] != nil && shares["quantize"] != nil && shares["batchNorm"] != nil, "\(pass): \(shares)")
            #expect(abs(shares.values.reduce(0, +) - 1) < 1e-9, "\(pass)")
        }
        let parts = try ["weight_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes"].map {
            try #require(doc[$0] as? Int, "\($0)")
        }
        #expect(parts.allSatisfy { $0 > 0 })
        #expect(doc["memory_bound_bytes"] as? Int == parts.reduce(0, +) + (64 << 20))
        #if os(Linux)
            #expect((doc["peak_rss_bytes"] as? Int ?? 0) > 0)
            #expect(doc["memory_bound_met"] is Bool)
        #endif
    }

    @Test func zooNameTrainsRandomWeightsAndTextReportsTheBound() throws {
        let r = try RunQTools.run([
            "bench", "resnet20", "--config", Self.golden("resnet20_lsq_a2w2", "config.txt"), "--train", "--batch", "2",
            "--runs", "1", "--warmup", "0", "--exact",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("training (exact)") && r.stdout.contains("(random weights)"), "\(r.stdout)")
        #expect(r.stdout.contains("images/s") && r.stdout.contains("backward per op type:"), "\(r.stdout)")
        #expect(r.stdout.contains("+ 64 MiB"), "\(r.stdout)")
    }

    @Test func badArgumentsAreRefused() throws {
        let size = try RunQTools.run([
            "bench", "resnet20", "--config", Self.golden("resnet20_fp", "config.txt"), "--train", "--size", "64",
        ])
        #expect(size.status != 0 && size.stderr.contains("--size"), "\(size.stderr)")
        let missing = try RunQTools.run(["bench", "missing/model.pth", "--train"])
        #expect(missing.status != 0 && missing.stderr.contains("missing/model.pth"), "\(missing.stderr)")
    }
}
