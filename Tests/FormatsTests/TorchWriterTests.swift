import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

@Suite struct TorchWriterTests {
    static func read(_ bytes: [UInt8], verifyCRC: Bool = false) throws -> Checkpoint {
        try TorchCheckpointReader.read(ByteSlice(bytes), verifyCRC: verifyCRC)
    }

    static func golden(_ rel: String) throws -> Checkpoint {
        try TorchCheckpointReader.read(ByteStore.map(path: Fixtures.path(rel)).all)
    }

    static func sameTensors(_ a: Checkpoint, _ b: Checkpoint) {
        let x = a.allTensors()
        let y = b.allTensors()
        #expect(x.count == y.count)
        for (p, q) in zip(x, y) {
            #expect(p.path == q.path)
            #expect(p.tensor.dtype == q.tensor.dtype && p.tensor.shape == q.tensor.shape && p.tensor.strides == q.tensor.strides)
            #expect(p.tensor.storageOffset == q.tensor.storageOffset)
            #expect(p.tensor.materialize().data == q.tensor.materialize().data, "\(p.path)")
        }
    }

    @Test func goldenRoundTripsThroughZip() throws {
        let original = try Self.golden("golden/resnet20_lsq_a2w2/checkpoint.pth")
        let sink = MemorySink()
        try TorchZipWriter.write(original, to: sink, archiveName: "checkpoint")
        let back = try Self.read(sink.bytes, verifyCRC: true)
        Self.sameTensors(original, back)
        #expect(back.stateDict()?.entries.count == original.stateDict()?.entries.count)
        let sd = try #require(back.root.dict?["state_dict"]?.dict)
        #expect(sd.kind == .orderedDict)
        guard case .dict(let meta)? = sd.metadata else { Issue.record("_metadata lost"); return }
        #expect(meta.entries.count == original.root.dict?["state_dict"]?.dict?.metadata?.dict?.entries.count)
        #expect(back.facts.contains { $0.key == "alignment" && $0.value == "64" })
        #expect(back.facts.contains { $0.key == "weights_only" && $0.value == "yes" })
    }

    @Test func goldenRoundTripsThroughLegacy() throws {
        let original = try Self.golden("golden/resnet20_fp/checkpoint.pth")
        let sink = MemorySink()
        try LegacyWriter.write(original, to: sink)
        #expect(Array(sink.bytes.prefix(15)) == LegacyReader.magic)
        let back = try Self.read(sink.bytes)
        #expect(back.format == .torchLegacy)
        Self.sameTensors(original, back)
    }

    @Test func zipLayoutMatchesTorch() throws {
        let t = StoredTensor(Tensor(floats: [1, 2, 3, 4, 5, 6], shape: [2, 3]), key: "w")
        let view = try StoredTensor(
            storage: t.storage, storageKey: "w", dtype: .float32, shape: [3, 2], strides: [1, 3], storageOffset: 0)
        let empty = StoredTensor(Tensor(floats: [], shape: [0]), key: "e")
        let value = CheckpointValue.dict(
            CheckpointDict([(.string("w"), .tensor(t)), (.string("wt"), .tensor(view)), (.string("e"), .tensor(empty))]))
        let sink = MemorySink()
        try TorchZipWriter.write(value, to: sink, archiveName: "sd", serializationID: String(repeating: "7", count: 40))
        let zip = try ZipArchive(ByteSlice(sink.bytes))
        #expect(
            zip.entries.map(\.name) == [
                "sd/data.pkl", "sd/.format_version", "sd/.storage_alignment", "sd/byteorder", "sd/data/0", "sd/data/1",
                "sd/version", "sd/.data/serialization_id",
            ])
        #expect(zip.hasZip64EndRecord)
        for e in zip.entries {
            #expect(e.dataOffset % 64 == 0, "\(e.name)")
            #expect(e.flags == (e.uncompressedSize > 0 ? 0x0808 : 0x0800), "\(e.name)")
            try zip.verifyCRC(of: e)
        }
        // First local header: exactly torch's bytes (formats.md §A.1.2 example).
        #expect(
            Array(sink.bytes[0..<34]) == [0x50, 0x4b, 3, 4, 0, 0, 8, 8] + [UInt8](repeating: 0, count: 18) + [0x0b, 0, 0x17, 0]
                + Array("sd/d".utf8))
        #expect(Array(sink.bytes[41..<45]) == [0x46, 0x42, 0x13, 0])
        let back = try Self.read(sink.bytes)
        let all = back.allTensors()
        #expect(all.map(\.path) == ["w", "wt", "e"])
        #expect(all[0].tensor.storageKey == all[1].tensor.storageKey)
        #expect(all[1].tensor.materialize().floats() == [1, 4, 2, 5, 3, 6])
        #expect(all[2].tensor.shape == [0])
    }

    @Test(arguments: [
        ("model.v1.pth", "model.v1"), ("noext", "noext"), (".hidden.pt", ".hidden"), ("a b.tar", "a b"),
        ("dir.x/y", "y"), ("/tmp/ck.pt", "ck"), ("x.", "x"), (".bashrc", "archive"), ("modèle.pt", "archive"),
    ])
    func archiveNameRule(_ path: String, _ folder: String) {
        #expect(TorchZipWriter.archiveName(forOutputPath: path) == folder)
    }

    @Test func writerRefusesUnsafeValuesNamingThePath() throws {
        let v = CheckpointValue.dict(
            CheckpointDict([
                (.string("opt"), .dict(CheckpointDict([(.string("args"), .object(Opaque(global: "argparse.Namespace")))])))
            ]))
        let e = try #require(throws: FormatError.self) { try TorchZipWriter.write(v, to: MemorySink()) }
        #expect(e.description.contains("opt.args"))
        #expect(e.description.contains("argparse.Namespace"))
        let g = try #require(throws: FormatError.self) { try TorchZipWriter.write(.global("os.system"), to: MemorySink()) }
        #expect(g.description.contains("os.system"))
    }

    @Test func plainZipLayoutForNpz() throws {
        let sink = MemorySink()
        let zip = ZipWriter(sink: sink, layout: .plain(deflate: true))
        let payload = [UInt8](repeating: 7, count: 5000)
        try zip.add("a.npy", payload)
        try zip.add("b.npy", [])
        try zip.finish()
        let r = try ZipArchive(ByteSlice(sink.bytes))
        #expect(!r.hasZip64EndRecord)
        #expect(r.entries.map(\.method) == [8, 0])
        #expect(try r.data(of: r.entries[0]).toArray() == payload)
        #expect(r.entries[0].dataOffset == 30 + 5)
        for e in r.entries { try r.verifyCRC(of: e) }
        #expect(throws: FormatError.self) {
            let z = ZipWriter(sink: MemorySink(), layout: .plain())
            try z.add("x", [1])
            try z.add("x", [2])
        }
    }
}
