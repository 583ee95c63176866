import Foundation
import TestSupport
import Testing

/// End-to-end tests of `qtools inspect` through the built binary.
@Suite struct InspectCommandTests {
    static let cases = [
        "pytorch_resnet18_fp", "resnet18_lsq_a2w2", "resnet20_bireal_xnor", "resnet20_dorefa_a2w2",
        "resnet20_dorefa_a4w4_varmean", "resnet20_fatnn_a2w2", "resnet20_fixup", "resnet20_fp",
        "resnet20_lq_a2w2", "resnet20_lsq_a2w2", "resnet20_pact_a2w2", "resnet20_ternary_fatnn",
        "resnet20_xnorpp",
    ]

    /// `keys.txt` lines: `<key> <dtype> <shape>` (written by the QTool PyTorch code).
    static func keys(_ c: String) throws -> [(String, String, String)] {
        try String(contentsOfFile: Fixtures.path("golden/\(c)/keys.txt"), encoding: .utf8)
            .split(separator: "\n").map { line in
                let p = line.split(separator: " ")
                return (String(p[0]), String(p[1]), String(p[2]))
            }
    }

    @Test(arguments: cases)
    func jsonListsExactlyTheGoldenKeys(name: String) throws {
        let r = try RunQTools.run(["inspect", "--json", Fixtures.path("golden/\(name)/checkpoint.pth")])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let tensors = try #require(doc["tensors"] as? [[String: Any]])
        let listed = tensors.map { t -> (String, String, String) in
            let shape = (t["shape"] as? [Int] ?? []).map(String.init).joined(separator: ",")
            return (t["name"] as? String ?? "", t["dtype"] as? String ?? "", "[" + shape + "]")
        }
        let expected = try Self.keys(name)
        #expect(listed.count == expected.count)
        for (a, b) in zip(listed, expected) { #expect(a == b) }
        #expect((doc["stateDict"] as? [String: Any])?["path"] as? String == "state_dict")
        let entries = try #require(doc["entries"] as? [[String: Any]])
        let byPath = Dictionary(uniqueKeysWithValues: entries.map { ($0["path"] as! String, $0["value"] as! String) })
        #expect(byPath["epoch"] == "0")
        #expect(byPath["best_acc"] == "0.0")
        #expect(byPath["learning_rate"] == "0.1")
        #expect(byPath["scheduler"] == "None")
        #expect((doc["safety"] as? [String: Any])?["weightsOnlyLoadable"] as? Bool == true)
    }

    @Test func textGroupsQuantizersUnderTheirLayer() throws {
        let r = try RunQTools.run(["inspect", Fixtures.path("golden/resnet20_lq_a2w2/checkpoint.pth")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("layer1.0.conv1.0\n    activation LQ-Nets, 4 levels (2 bits)"))
        #expect(r.stdout.contains("codec_index[4] = [0, 1, 2, 3]"))
    }

    @Test func statsShowQuantizedLevels() throws {
        // level_num of a 2-bit quantizer is 4 (set by the PyTorch code at construction).
        let r = try RunQTools.run([
            "inspect", "--stats", "--json", "--filter", "^layer1\\.0\\.conv1\\.0\\.quant_weight\\.level_num$",
            Fixtures.path("golden/resnet20_dorefa_a2w2/checkpoint.pth"),
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let tensors = try #require(doc["tensors"] as? [[String: Any]])
        #expect(tensors.count == 1)
        let stats = try #require(tensors.first?["stats"] as? [String: Any])
        #expect(stats["levels"] as? [Double] == [4])
    }

    @Test func legacyAndZipListTheSameTensors() throws {
        for c in ["resnet20_lq_a2w2", "resnet20_fixup", "pytorch_resnet18_fp"] {
            let zip = try RunQTools.run(["inspect", "--json", "--stats", Fixtures.path("golden/\(c)/checkpoint.pth")])
            let legacy = try RunQTools.run(["inspect", "--json", "--stats", Fixtures.path("golden/\(c)/checkpoint-legacy.pth")])
            #expect(zip.status == 0 && legacy.status == 0, "\(zip.stderr) \(legacy.stderr)")
            func rows(_ s: String) throws -> [String] {
                let d = try #require(JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
                return (d["tensors"] as? [[String: Any]] ?? []).map { t in
                    let st = t["stats"] as? [String: Any] ?? [:]
                    return "\(t["name"]!) \(t["dtype"]!) \(t["shape"]!) \(st["min"] ?? "") \(st["max"] ?? "") \(st["mean"] ?? "")"
                }
            }
            #expect(try rows(zip.stdout) == rows(legacy.stdout), "\(c)")
            #expect(legacy.stdout.contains("pytorch-legacy"))
        }
    }

    @Test func missingFileExits66() throws {
        let r = try RunQTools.run(["inspect", "/nonexistent/x.pth"])
        #expect(r.status == 66)
        #expect(r.stderr.contains("qtools: error: /nonexistent/x.pth"))
    }

    @Test func truncatedCheckpointExits65NamingTheFile() throws {
        try withTemporaryDirectory { dir in
            let src = try Data(contentsOf: Fixtures.url("golden/resnet20_fixup/checkpoint.pth"))
            let path = dir.appendingPathComponent("cut.pth").path
            try src.prefix(src.count / 2).write(to: URL(fileURLWithPath: path))
            let r = try RunQTools.run(["inspect", path])
            #expect(r.status == 65)
            #expect(r.stderr.hasPrefix("qtools: error: \(path)"))
            #expect(r.stdout.isEmpty)
        }
    }

    @Test func notACheckpointGetsAHint() throws {
        try withTemporaryDirectory { dir in
            let lfs = dir.appendingPathComponent("lfs.pth").path
            try "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n"
                .write(toFile: lfs, atomically: true, encoding: .utf8)
            let r = try RunQTools.run(["inspect", lfs])
            #expect(r.status == 65)
            #expect(r.stderr.contains("Git LFS pointer"))
            let html = dir.appendingPathComponent("page.pth").path
            try "<!DOCTYPE html><html></html>".write(toFile: html, atomically: true, encoding: .utf8)
            let h = try RunQTools.run(["inspect", html])
            #expect(h.status == 65)
            #expect(h.stderr.contains("HTML page"))
            let empty = dir.appendingPathComponent("empty.pth").path
            try "".write(toFile: empty, atomically: true, encoding: .utf8)
            let e = try RunQTools.run(["inspect", empty])
            #expect(e.status == 65)
            #expect(e.stderr.contains("empty"))
        }
    }

    @Test func badRegexIsAUsageError() throws {
        let r = try RunQTools.run(["inspect", "--filter", "(", Fixtures.path("golden/resnet20_fp/checkpoint.pth")])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--filter"))
    }
}
