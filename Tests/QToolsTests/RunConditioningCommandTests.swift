import Formats
import Foundation
import Tensors
import TestSupport
import Testing

/// `qtools run --conditioning`: quantizer inputs near a level boundary, end to end on a golden
/// case. (That the probe finds the right elements and that a flip reproduces PyTorch on issue
/// 18's full-width cases is `ConditioningTests`.)
@Suite struct RunConditioningCommandTests {
    typealias Case = LayerDumpCommandTests

    /// A wide band (4096 ulps) finds elements on the golden case; each one's input and level
    /// are those a `--dump` of the same run holds, and each has its measured logit change.
    @Test func elementsAgreeWithTheDumpedValues() throws {
        try withTemporaryDirectory { tmp in
            let dir = tmp.appendingPathComponent("dump").path
            let r = try RunQTools.run(["run"] + Case.model + Case.input + ["--conditioning", "--ulps", "4096", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let report = try #require(try Case.json(r)["conditioning"] as? [String: Any])
            let elements = try #require(report["elements"] as? [[String: Any]])
            #expect(report["ulps"] as? Int == 4096)
            try #require((report["count"] as? Int ?? 0) >= elements.count && !elements.isEmpty, "\(report)")
            #expect(try Case.dump(dir).status == 0)
            let index = try Case.index(dir)
            var last = 0
            for e in elements {
                let value = try #require(e["value"] as? String), flat = try #require(e["flat_index"] as? Int)
                let ulps = try #require(e["ulps"] as? Int)
                #expect(ulps >= last && ulps <= 4096, "closest first, within the band: \(e)")
                last = ulps
                #expect(e["output_change"] is Double, "\(e)")
                let entry = try #require(index[value]), inputName = try #require((entry["inputs"] as? [String])?.first)
                let x = try Case.npy(dir + "/" + (try #require(index[inputName]?["file"] as? String))).floats()
                let y = try Case.npy(dir + "/" + (try #require(entry["file"] as? String))).floats()
                #expect(Float(e["input"] as? Double ?? .nan) == x[flat], "\(value)[\(flat)] input")
                #expect(Float(e["level"] as? Double ?? .nan) == y[flat], "\(value)[\(flat)] level")
                #expect(Float(e["other_level"] as? Double ?? .nan) != y[flat])
            }
            let text = try RunQTools.run(["run"] + Case.model + Case.input + ["--conditioning", "--ulps", "4096"])
            #expect(text.status == 0 && text.stdout.contains("within 4096 float32 ulps of a level boundary"), "\(text.stdout)")
        }
    }

    @Test(arguments: [
        (["--conditioning", "--ulps", "0"], "--ulps must be at least 1"),
        (["--ulps", "5"], "--ulps applies to --conditioning only"),
        (["--conditioning", "--engine", "reference"], "drop --engine reference"),
    ])
    func badOptionsAreRefused(_ extra: [String], _ message: String) throws {
        let r = try RunQTools.run(["run"] + Case.model + Case.input + extra)
        #expect(r.status == 64 && r.stderr.contains(message), "\(r.status) \(r.stderr)")
    }
}
