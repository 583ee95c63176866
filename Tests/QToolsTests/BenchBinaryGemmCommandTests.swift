import Foundation
import TestSupport
import Testing

/// `qtools bench --binary-gemm`: the bit-packed binary conv's throughput per code path.
@Suite struct BenchBinaryGemmCommandTests {
    @Test func jsonReportsEveryStageShapeWithThroughput() throws {
        let r = try RunQTools.run(["bench", "--binary-gemm", "--path", "portable", "--runs", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(doc["threads"] as? Int == 1 && doc["best_path"] is String)
        let results = try #require(doc["results"] as? [[String: Any]])
        #expect(results.count == 4)
        #expect(results.map { $0["m"] as? Int } == [64, 128, 256, 512])
        #expect(results.map { $0["k"] as? Int } == [576, 1152, 2304, 4608])
        for e in results {
            #expect(e["path"] as? String == "portable")
            for key in ["gemm_gbitmacs_per_second", "layer_gbitmacs_per_second", "float_min_ms", "layer_speedup_vs_float"] {
                #expect((e[key] as? Double ?? 0) > 0, "\(key)")
            }
        }
    }

    @Test func textTableAndBadArguments() throws {
        let r = try RunQTools.run(["bench", "--binary-gemm", "--path", "portable", "--runs", "1"])
        #expect(r.status == 0 && r.stdout.contains("G bit-MAC/s") && r.stdout.contains("512 x 49 x 4608"), "\(r.stdout)")
        let unknown = try RunQTools.run(["bench", "--binary-gemm", "--path", "neon"])
        #expect(unknown.status != 0 && unknown.stderr.contains("--path neon"), "\(unknown.stderr)")
        let withModel = try RunQTools.run(["bench", "resnet20", "--binary-gemm"])
        #expect(withModel.status != 0 && withModel.stderr.contains("no MODEL"), "\(withModel.stderr)")
        let noModel = try RunQTools.run(["bench"])
        #expect(noModel.status != 0 && noModel.stderr.contains("MODEL"), "\(noModel.stderr)")
    }
}
