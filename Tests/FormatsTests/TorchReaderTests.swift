import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// Golden checkpoints written by torch (fixtures/golden/*/checkpoint.pth, keys.txt from torch).
@Suite struct TorchReaderTests {
    static let cases: [String] = {
        let dir = Fixtures.url("golden")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0 + "/keys.txt").path) }.sorted()
    }()

    static func read(_ rel: String, verifyCRC: Bool = false) throws -> Checkpoint {
        try TorchCheckpointReader.read(ByteStore.map(path: Fixtures.path(rel)).all, verifyCRC: verifyCRC)
    }

    /// `<key> <dtype> <shape>` lines.
    static func expectedKeys(_ name: String) throws -> [(String, String, String)] {
        let text = try String(contentsOfFile: Fixtures.path("golden/\(name)/keys.txt"), encoding: .utf8)
        return text.split(separator: "\n").map { line in
            let f = line.split(separator: " ").map(String.init)
            return (f[0], f[1], f.count > 2 ? f[2] : "")
        }
    }

    @Test func thirteenGoldenCases() { #expect(Self.cases.count == 13) }

    @Test(arguments: cases) func goldenStateDictMatchesKeys(_ name: String) throws {
        let ckpt = try Self.read("golden/\(name)/checkpoint.pth", verifyCRC: true)
        #expect(ckpt.format == .torchZip)
        let sd = try #require(ckpt.stateDict())
        #expect(sd.path == "state_dict")
        let expected = try Self.expectedKeys(name)
        #expect(sd.entries.count == expected.count)
        for (e, x) in zip(sd.entries, expected) {
            #expect(e.name == x.0)
            #expect(e.tensor.dtype.rawValue == x.1, "\(e.name)")
            #expect(Shapes.describe(e.tensor.shape) == x.2, "\(e.name)")
        }
        let d = try #require(ckpt.root.dict)
        guard case .int(0)? = d["epoch"] else { Issue.record("epoch"); return }
        guard case .float(0.0)? = d["best_acc"], case .float(0.1)? = d["learning_rate"] else {
            Issue.record("best_acc/learning_rate"); return
        }
        guard case .none? = d["scheduler"], case .none? = d["amp"] else { Issue.record("scheduler/amp"); return }
        let groups = try #require(d["optimizer"]?.dict?["param_groups"])
        guard case .list(let g) = groups, !g.isEmpty else { Issue.record("param_groups"); return }
        #expect(ckpt.unsafeGlobals.isEmpty)
        #expect(ckpt.facts.contains { $0.key == "weights_only" && $0.value == "yes" })
        #expect(ckpt.facts.contains { $0.key == "alignment" && $0.value == "64" })
        #expect(ckpt.facts.contains { $0.key == "pickle protocol" && $0.value == "2" })
        // OrderedDict _metadata survives.
        let sdv = try #require(d["state_dict"]?.dict)
        #expect(sdv.kind == .orderedDict)
        #expect(sdv.metadata != nil)
    }

    @Test(arguments: cases) func legacyTwinHasIdenticalTensors(_ name: String) throws {
        let legacyPath = "golden/\(name)/checkpoint-legacy.pth"
        guard FileManager.default.fileExists(atPath: Fixtures.path(legacyPath)) else { return }
        let zipped = try Self.read("golden/\(name)/checkpoint.pth")
        let legacy = try Self.read(legacyPath)
        #expect(legacy.format == .torchLegacy)
        let a = try #require(zipped.stateDict()).entries
        let b = try #require(legacy.stateDict()).entries
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            #expect(x.name == y.name)
            #expect(x.tensor.dtype == y.tensor.dtype && x.tensor.shape == y.tensor.shape)
            #expect(x.tensor.materialize().data == y.tensor.materialize().data, "\(x.name)")
        }
    }

    @Test func allTensorsWalksNestedPaths() throws {
        let ckpt = try Self.read("golden/resnet20_fp/checkpoint.pth")
        let all = ckpt.allTensors()
        let sd = try #require(ckpt.stateDict())
        #expect(all.count >= sd.entries.count)
        #expect(all.first?.path == "state_dict." + sd.entries[0].name)
    }
}
