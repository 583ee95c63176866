import Foundation
import TestSupport
import Testing

/// Messages that misled (issue 16), each run as reported and then as advised.
@Suite struct MisleadingMessageTests {
    static let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")
    static let config = Fixtures.path("golden/resnet20_fp/config.txt")

    /// `--rename 'weight$=weight'` matched about 100 keys but was reported as matching none.
    @Test func anIdentityRenameIsNotAnUnusedRule() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("r.pth").path
            let r = try RunQTools.run(["convert", Self.ckpt, "-o", out, "--rename", "weight$=weight", "--rename", "nosuchkey=x"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(!r.stderr.contains("weight$=weight") && r.stderr.contains("nosuchkey=x"), "\(r.stderr)")
        }
    }

    /// An empty config blamed the checkpoint ("model 'unknow'"); a BOM was invisible.
    @Test func emptyAndBOMConfigsNameTheConfig() throws {
        try withTemporaryDirectory { dir in
            let empty = dir.appendingPathComponent("empty.txt").path
            FileManager.default.createFile(atPath: empty, contents: Data())
            let r = try RunQTools.run(["run", Self.ckpt, "--config", empty])
            #expect(r.status == 64 && r.stderr.contains(empty) && r.stderr.contains("sets no model") && !r.stderr.contains("unknow"), "\(r.stderr)")
            let text = try String(contentsOfFile: Self.config, encoding: .utf8)
            let bom = dir.appendingPathComponent("bom.txt").path
            FileManager.default.createFile(atPath: bom, contents: Data([0xEF, 0xBB, 0xBF]) + Data(text.utf8))
            let b = try RunQTools.run(["config", "show", bom])
            #expect(b.status == 65 && b.stderr.contains("byte-order mark"), "\(b.stderr)")
            // As advised: without the mark it reads.
            FileManager.default.createFile(atPath: bom, contents: Data(text.utf8))
            #expect(try RunQTools.run(["config", "show", bom]).status == 0)
        }
    }
}
