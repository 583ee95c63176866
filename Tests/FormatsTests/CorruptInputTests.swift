import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// Damaged inputs must either read or throw ``FormatError`` — never crash, hang or allocate
/// far beyond the file size. Plus one test per container-level error reason.
@Suite struct CorruptInputTests {
    static func small() -> CheckpointValue {
        let w = StoredTensor(Tensor(floats: [1, 2, 3, 4, 5, 6], shape: [2, 3]), key: "w")
        let b = StoredTensor(Tensor(floats: [0.5], shape: []), key: "b")
        return .dict(
            CheckpointDict([
                (.string("epoch"), .int(3)),
                (
                    .string("state_dict"),
                    .dict(CheckpointDict([(.string("w"), .tensor(w)), (.string("b"), .tensor(b))], kind: .orderedDict))
                ),
                (.string("lr"), .float(0.1)), (.string("tags"), .list([.string("a"), .none, .bool(true)])),
            ]))
    }

    static func smallZip() throws -> [UInt8] {
        let s = MemorySink()
        try TorchZipWriter.write(small(), to: s, serializationID: String(repeating: "1", count: 40))
        return s.bytes
    }

    static func smallLegacy() throws -> [UInt8] {
        let s = MemorySink()
        try LegacyWriter.write(small(), to: s)
        return s.bytes
    }

    /// Reads, and on success walks every tensor; only ``FormatError`` may escape.
    static func attempt(_ bytes: [UInt8], _ label: String) {
        do {
            let c = try TorchCheckpointReader.read(ByteSlice(bytes), verifyCRC: false)
            for (_, t) in c.allTensors() where t.byteCount <= 16 * bytes.count {
                _ = t.materialize()
            }
            _ = c.stateDict()
        } catch is FormatError {
        } catch {
            Issue.record("\(label): non-FormatError \(error)")
        }
    }

    static func inputs() throws -> [(String, [UInt8])] {
        [
            ("small zip", try smallZip()), ("small legacy", try smallLegacy()),
            ("golden zip", try ByteStore.read(path: Fixtures.path("golden/resnet20_dorefa_a2w2/checkpoint.pth")).all.toArray()),
            ("golden legacy", try ByteStore.read(path: Fixtures.path("golden/resnet20_fixup/checkpoint-legacy.pth")).all.toArray()),
        ]
    }

    @Test func truncationsReadOrThrow() throws {
        for (name, bytes) in try Self.inputs() {
            let big = bytes.count > 100_000
            var cuts = Set(stride(from: 0, to: bytes.count, by: max(1, bytes.count / (big ? 24 : 64))))
            for k in 0..<min(bytes.count, big ? 24 : 200) { cuts.insert(bytes.count - 1 - k) }  // end records, data tail
            for k in 0..<min(bytes.count, big ? 24 : 100) { cuts.insert(k) }  // headers
            for cut in cuts.sorted() { Self.attempt(Array(bytes[0..<cut]), "\(name) cut at \(cut)") }
        }
    }

    @Test(arguments: 0..<4 as Range<UInt64>) func byteFlipsReadOrThrow(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for (name, bytes) in try Self.inputs() {
            let rounds = bytes.count > 100_000 ? 6 : 60
            for round in 0..<rounds {
                var b = bytes
                // Flip 1-4 bytes; half the time near the structure-dense start or end.
                for _ in 0...(Int(rng.next() % 4)) {
                    let region = rng.next() % 3
                    let i: Int
                    switch region {
                    case 0: i = Int(rng.next() % UInt64(min(b.count, 4096)))
                    case 1: i = b.count - 1 - Int(rng.next() % UInt64(min(b.count, 4096)))
                    default: i = Int(rng.next() % UInt64(b.count))
                    }
                    b[i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
                Self.attempt(b, "\(name) seed \(seed) round \(round)")
            }
        }
    }

    // MARK: one test per container error

    /// A torch zip with the given records (pickle from the writer unless given).
    static func zip(_ records: [(String, [UInt8])]) throws -> [UInt8] {
        let s = MemorySink()
        let z = ZipWriter(sink: s, layout: .torch())
        for (n, d) in records { try z.add(n, d) }
        try z.finish()
        return s.bytes
    }

    static func pickle(_ v: CheckpointValue) throws -> [UInt8] {
        var p = Pickler(flavor: .zip)
        return try p.pickle(v)
    }

    static let tensor4 = CheckpointValue.dict(
        CheckpointDict([
            (.string("w"), .tensor(StoredTensor(Tensor(floats: [1, 2, 3, 4], shape: [4]), key: "w")))
        ]))

    @Test func missingStorageRecordIsNamed() throws {
        let b = try Self.zip([("archive/data.pkl", Self.pickle(Self.tensor4)), ("archive/version", Array("3\n".utf8))])
        let e = try #require(throws: FormatError.self) { try Self.read(b) }
        #expect(e.reason == .missing("storage record archive/data/0"))
        #expect(e.entry == "archive/data/0")
    }

    static func read(_ b: [UInt8], verifyCRC: Bool = false) throws -> Checkpoint {
        try TorchCheckpointReader.read(ByteSlice(b), verifyCRC: verifyCRC)
    }

    @Test func versionIsCheckedAndRequired() throws {
        let pkl = try Self.pickle(Self.tensor4)
        let data = [UInt8](repeating: 0, count: 16)
        let v20 = try Self.zip([("a/data.pkl", pkl), ("a/data/0", data), ("a/version", Array("20\n".utf8))])
        let e = try #require(throws: FormatError.self) { try Self.read(v20) }
        #expect(e.reason == .unsupportedVersion(found: 20, newestSupported: 10))
        #expect(e.entry == "a/version")
        let none = try Self.zip([("a/data.pkl", pkl), ("a/data/0", data)])
        let f = try #require(throws: FormatError.self) { try Self.read(none) }
        #expect(f.reason == .missing("record a/version"))
        let ok = try Self.zip([("a/data.pkl", pkl), ("a/data/0", data), ("a/version", Array("1".utf8))])
        #expect(try Self.read(ok).allTensors().count == 1)
    }

    @Test func storageSmallerThanNumelIsNamed() throws {
        let b = try Self.zip([
            ("a/data.pkl", Self.pickle(Self.tensor4)), ("a/data/0", [0, 0, 0, 0]), ("a/version", Array("3\n".utf8)),
        ])
        let e = try #require(throws: FormatError.self) { try Self.read(b) }
        #expect(e.reason == .sizeMismatch(expectedBytes: 16, foundBytes: 4))
        #expect(e.entry == "a/data/0")
    }

    @Test func flatZipAndWrongPrefix() throws {
        let flat = try Self.zip([("data.pkl", [0x80, 2, 0x4e, 0x2e]), ("version", Array("3\n".utf8))])
        let e = try #require(throws: FormatError.self) { try Self.read(flat) }
        #expect(e.description.contains("not in a subdirectory"))
    }

    @Test func crcMismatchNamesTheRecord() throws {
        var b = try Self.smallZip()
        let z = try ZipArchive(ByteSlice(b))
        let rec = try #require(z.entry(named: "archive/data/0"))
        b[rec.dataOffset] ^= 0x40
        #expect(try Self.read(b).allTensors().count == 2)  // torch does not check CRCs either
        let e = try #require(throws: FormatError.self) { try Self.read(b, verifyCRC: true) }
        guard case .checksum = e.reason else { Issue.record("\(e)"); return }
        #expect(e.entry == "archive/data/0")
    }

    @Test func bigEndianStoragesAreSwapped() throws {
        let pkl = try Self.pickle(Self.tensor4)
        let be: [UInt8] = [0x3f, 0x80, 0, 0, 0x40, 0, 0, 0, 0x40, 0x40, 0, 0, 0x40, 0x80, 0, 0]
        let b = try Self.zip([("a/data.pkl", pkl), ("a/byteorder", Array("big".utf8)), ("a/data/0", be), ("a/version", Array("3\n".utf8))])
        let c = try Self.read(b)
        #expect(c.allTensors().first?.tensor.materialize().floats() == [1, 2, 3, 4])
        #expect(c.facts.contains { $0.key == "byteorder" && $0.value == "big" })
    }

    @Test func notACheckpoint() throws {
        let lfs = Array("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n".utf8)
        let e = try #require(throws: FormatError.self) { try Self.read(lfs) }
        guard case .notACheckpoint(let what) = e.reason else { Issue.record("\(e)"); return }
        #expect(what.contains("LFS"))
        let html = try #require(throws: FormatError.self) { try Self.read(Array("<!DOCTYPE html><html>".utf8)) }
        guard case .notACheckpoint = html.reason else { Issue.record("\(html)"); return }
        let junk = try #require(throws: FormatError.self) { try Self.read(Array("hello, world".utf8)) }
        guard case .badMagic = junk.reason else { Issue.record("\(junk)"); return }
        #expect(junk.offset == 0)
    }

    @Test func truncatedLegacyNamesTheStorage() throws {
        let b = try Self.smallLegacy()
        let e = try #require(throws: FormatError.self) { try Self.read(Array(b.dropLast(3))) }
        guard case .truncated = e.reason else { Issue.record("\(e)"); return }
        #expect(e.entry?.hasPrefix("storage ") == true)
        #expect(e.offset != nil)
        // A storage key in the list but never referenced by the object pickle.
        let magicOnly = Array(b.prefix(15))
        let m = try #require(throws: FormatError.self) { try Self.read(magicOnly) }
        #expect(m.entry == "protocol version pickle")
    }

    @Test func legacyTarMembersAreRead() throws {
        // A minimal tar with one storage (2 floats), one tensor view and the pickle.
        func pk(_ v: CheckpointValue) throws -> [UInt8] { var p = Pickler(flavor: .legacy); return try p.pickle(v) }
        var storages = try pk(.int(1))
        storages += try pk(.tuple([.string("7"), .string("cpu"), .global("torch.FloatStorage")]))
        storages += [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]
        storages += try pk(.list([]))
        var tensors = try pk(.int(1))
        tensors += try pk(.tuple([.string("9"), .string("7"), .global("torch.FloatTensor")]))
        tensors += [1, 0, 0, 0, 0, 0, 0, 0] + [2, 0, 0, 0, 0, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8)
        // pickle: {'w': persistent_load('9')}
        let obj: [UInt8] = [0x80, 2, 0x7d, 0x58, 1, 0, 0, 0, 0x77, 0x58, 1, 0, 0, 0, 0x39, 0x51, 0x73, 0x2e]
        var tar: [UInt8] = []
        for (name, data) in [("sys_info", try pk(.none)), ("storages", storages), ("tensors", tensors), ("pickle", obj)] {
            var h = [UInt8](repeating: 0, count: 512)
            for (i, c) in name.utf8.enumerated() { h[i] = c }
            let size = Array(String(data.count, radix: 8).utf8)
            for (i, c) in size.enumerated() { h[124 + 11 - size.count + i] = c }
            for i in 0..<(11 - size.count) { h[124 + i] = 0x30 }
            h[156] = 0x30
            for (i, c) in "ustar".utf8.enumerated() { h[257 + i] = c }
            tar += h + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
        }
        tar += [UInt8](repeating: 0, count: 1024)
        let c = try Self.read(tar)
        #expect(c.format == .torchTar)
        #expect(c.allTensors().first?.tensor.materialize().floats() == [1, 2])
        #expect(c.unsafeGlobals.contains("<legacy tar format>"))
        for cut in stride(from: 0, to: tar.count, by: 97) { Self.attempt(Array(tar[0..<cut]), "tar cut \(cut)") }
    }
}
