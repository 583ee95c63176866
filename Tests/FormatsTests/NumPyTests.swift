import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// An `.npy` file from a header dict text, padded the way NumPy pads (the padding is not
/// required by readers; it just keeps these files realistic).
private func npyFile(_ dict: String, data: [UInt8] = [], version: UInt8 = 1) -> ByteSlice {
    var body = Array(dict.utf8)
    let lengthBytes = version == 1 ? 2 : 4
    let pad = 63 - (8 + lengthBytes + body.count) % 64
    body += [UInt8](repeating: 0x20, count: pad) + [0x0a]
    var w = ByteWriter()
    w.append(NpyHeader.magic)
    w.u8(version)
    w.u8(0)
    w.uintLE(UInt64(body.count), lengthBytes)
    w.append(body)
    w.append(data)
    return ByteSlice(w.bytes)
}

private func npyError(_ bytes: ByteSlice) throws -> FormatError {
    try #require(throws: FormatError.self) { try NpyReader.read(bytes) }
}

private func root(_ c: Checkpoint) throws -> StoredTensor {
    guard case .tensor(let t) = c.root else { throw FormatError(.invalid("root is not a tensor")) }
    return t
}

/// The npz root as name → tensor, in order.
private func members(_ c: Checkpoint) throws -> [(String, CheckpointValue)] {
    try #require(c.root.dict).entries.map { e in
        guard case .string(let k) = e.key else { throw FormatError(.invalid("non-string key")) }
        return (k, e.value)
    }
}

/// Every dtype NumPy has.
private let numpyDTypes: [DType] = DType.allCases.filter { NpyHeader.descr(for: $0) != nil }

@Suite struct NumPyTests {
    // MARK: The committed golden input (written by numpy)

    @Test func readsTheGoldenInput() throws {
        let store = try ByteStore.map(path: Fixtures.path("golden/resnet20_fp/input.npy"))
        let c = try NpyReader.read(store.all)
        #expect(c.format == .npy)
        let t = try root(c)
        #expect(t.dtype == .float32 && t.shape == [2, 3, 32, 32])
        #expect(t.storage.store === store, "little-endian C-order data must not be copied")
        let v = t.materialize().floats()
        // Hard-coded from the venv's numpy 2.4.6: a.reshape(-1)[:6].tolist(), [-3:] and
        // a.sum(dtype=np.float64); not from this reader.
        #expect(
            Array(v.prefix(6)) == [
                -0.6732456684112549, -1.332562804222107, -1.0234509706497192, 0.963849663734436,
                1.0501567125320435, 0.6452960968017578,
            ])
        #expect(
            Array(v.suffix(3)) == [-0.641122043132782, -1.8238248825073242, 0.03249768912792206])
        #expect(abs(v.reduce(0.0) { $0 + Double($1) } - -29.415622177730256) < 1e-9)
        #expect(c.facts.first { $0.key == "version" }?.value == "1.0")
    }

    @Test func headerEncodingMatchesWhatNumpyWrote() throws {
        // The golden file's first 128 bytes are numpy's header for float32 (2, 3, 32, 32).
        let golden = try ByteStore.map(path: Fixtures.path("golden/resnet20_fp/input.npy"))
        let ours = try NpyHeader.encode(dtype: .float32, shape: [2, 3, 32, 32])
        #expect(ours == golden.slice(0..<128).toArray())
    }

    // MARK: Round trips and layouts

    @Test(arguments: [0, 1, 2] as [UInt64])
    func npyWriteThenReadIsIdentity(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for d in numpyDTypes {
            let rank = Int.random(in: 0...4, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 0...4, using: &rng) }
            let n = try Shapes.byteCount(shape, d)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if d == .bool { bytes = bytes.map { $0 & 1 } }
            let t = try Tensor(dtype: d, shape: shape, data: ByteSlice(bytes))
            let sink = MemorySink()
            try NpyWriter.write(t, to: sink)
            let header = try NpyHeader.parse(ByteSlice(sink.bytes))
            #expect(header.dataOffset % 64 == 0)
            #expect(sink.bytes[header.dataOffset - 1] == 0x0a)
            let back = try NpyReader.readArray(ByteSlice(sink.bytes))
            #expect(back.dtype == d && back.shape == shape && back.data == t.data, "\(d) \(shape)")
        }
    }

    @Test func fortranOrderIsAStridedView() throws {
        // Column-major (2, 3): element (i, j) is stored at i + 2j.
        let data: [UInt8] = [0, 1, 2, 3, 4, 5]
        let c = try NpyReader.read(
            npyFile("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }", data: data))
        let t = try root(c)
        #expect(t.strides == [1, 2])
        #expect(!t.isContiguous)
        #expect(t.materialize().data.toArray() == [0, 2, 4, 1, 3, 5])
    }

    @Test func bigEndianIsSwappedPerScalar() throws {
        let i = try NpyReader.readArray(
            npyFile(
                "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
                data: [0, 0, 1, 2, 0xff, 0xff, 0xff, 0xfe]))
        #expect(i.doubles() == [258, -2])
        // complex64: each of real and imaginary parts is a big-endian float32.
        let c = try NpyReader.readArray(
            npyFile(
                "{'descr': '>c8', 'fortran_order': False, 'shape': (1,), }",
                data: [0x3f, 0x80, 0, 0, 0x40, 0, 0, 0]))
        #expect(c.data.toArray() == [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40])
    }

    @Test func bigEndianFortranOrder() throws {
        let t = try NpyReader.readArray(
            npyFile(
                "{'descr': '>u2', 'fortran_order': True, 'shape': (2, 2), }",
                data: [0, 1, 0, 2, 0, 3, 0, 4]))
        #expect(t.doubles() == [1, 3, 2, 4])
    }

    @Test(arguments: [2, 3] as [UInt8])
    func readsVersions2And3(version: UInt8) throws {
        let t = try NpyReader.readArray(
            npyFile(
                "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (1,)}",
                data: [0, 0, 0, 0, 0, 0, 0xf0, 0x3f], version: version))
        #expect(t.doubles() == [1])
    }

    @Test func toleratesOldLongIntegersAndTrailingData() throws {
        let c = try NpyReader.read(
            npyFile("{'descr': '<i2', 'fortran_order': False, 'shape': (1L,), }", data: [5, 0, 9]))
        #expect(try root(c).materialize().doubles() == [5])
        #expect(c.facts.first { $0.key == "trailing bytes" }?.value == "1")
    }

    @Test func writerRefusesBFloat16() throws {
        let t = try Tensor(dtype: .bfloat16, shape: [1], data: ByteSlice([0, 0x3f]))
        let e = try #require(throws: FormatError.self) { try NpyWriter.write(t, to: MemorySink()) }
        #expect(e.description.contains("bfloat16"))
    }

    @Test func writesVersion2WhenTheHeaderIsHuge() throws {
        // 64 dimensions are not enough to pass 65,535 bytes, so call the encoder directly
        // with an absurd rank to exercise the fallback.
        let header = try NpyHeader.encode(dtype: .uint8, shape: [Int](repeating: 1, count: 25_000))
        #expect(header[6] == 2)
        #expect(header.count % 64 == 0)
    }

    // MARK: npz

    @Test(arguments: [
        (NpzWriter.Compression.stored, false), (.deflated, false), (.stored, true),
        (.deflated, true),
    ])
    func npzWriteThenRead(compression: NpzWriter.Compression, zip64: Bool) throws {
        var rng = SplitMix64(seed: 7)
        let arrays: [(name: String, tensor: Tensor)] = [
            ("w", Tensor(floats: rng.floats(12), shape: [3, 4])),
            (
                "dir/é",
                try Tensor(
                    dtype: .int64, shape: [2],
                    data: ByteSlice([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]))
            ),
            ("empty", try Tensor(dtype: .float16, shape: [0, 2], data: ByteSlice([]))),
        ]
        let sink = MemorySink()
        try NpzWriter.write(arrays, compression: compression, forceZip64: zip64, to: sink)
        let bytes = ByteSlice(sink.bytes)
        let c = try NpzReader.read(bytes, verifyCRC: true)
        #expect(c.format == .npz)
        let m = try members(c)
        #expect(m.map(\.0) == ["w", "dir/é", "empty"])
        for ((_, value), (_, t)) in zip(m, arrays) {
            guard case .tensor(let s) = value else {
                Issue.record("not a tensor")
                continue
            }
            let back = s.materialize()
            #expect(back.dtype == t.dtype && back.shape == t.shape && back.data == t.data)
            if compression == .stored && t.byteCount > 0 {
                #expect(s.storage.store === bytes.store, "stored members must be windows")
            }
        }
        #expect(c.facts.first { $0.key == "zip64" }?.value == (zip64 ? "yes" : "no"))
    }

    @Test func npzFromACheckpointTurnsScalarsInto0dArrays() throws {
        var root = CheckpointDict()
        root.set(.string("w"), .tensor(StoredTensor(Tensor(floats: [1, 2], shape: [2]), key: "0")))
        root.set(.string("epoch"), .int(-3))
        root.set(.string("lr"), .float(0.5))
        root.set(.string("ok"), .bool(true))
        let sink = MemorySink()
        try NpzWriter.write(Checkpoint(format: .torchZip, root: .dict(root)), to: sink)
        let m = try members(NpzReader.read(ByteSlice(sink.bytes)))
        #expect(m.map(\.0) == ["w", "epoch", "lr", "ok"])
        let values = m.compactMap { e -> Tensor? in
            if case .tensor(let t) = e.1 { return t.materialize() }
            return nil
        }
        #expect(values.map(\.dtype) == [.float32, .int64, .float64, .bool])
        #expect(values[1].shape == [] && values[1].doubles() == [-3])
        #expect(values[2].doubles() == [0.5] && values[3].doubles() == [1])
    }

    @Test func npzKeepsOtherMembersAsBytes() throws {
        let sink = MemorySink()
        let zip = ZipWriter(sink: sink, layout: .plain())
        try zip.add("notes.txt", ByteSlice(Array("hi".utf8)))
        try zip.finish()
        let m = try members(NpzReader.read(ByteSlice(sink.bytes)))
        guard case .bytes(let b) = m.first?.1 else {
            Issue.record("expected bytes")
            return
        }
        #expect(m.first?.0 == "notes.txt" && b == Array("hi".utf8))
    }

    // MARK: One test per error reason

    @Test func badMagic() throws {
        let e = try npyError(ByteSlice(Array("PK\u{3}\u{4}junkjunk".utf8)))
        guard case .badMagic = e.reason else { Issue.record("\(e)"); return }
        #expect(e.offset == 0)
    }

    @Test func fileShorterThanTheMagic() throws {
        let e = try npyError(ByteSlice([0x93, 0x4e]))
        guard case .badMagic = e.reason else { Issue.record("\(e)"); return }
    }

    @Test func unsupportedVersion() throws {
        let e = try npyError(npyFile("{}", version: 4))
        #expect(e.reason == .unsupportedVersion(found: 4, newestSupported: 3))
        #expect(e.offset == 6)
    }

    @Test func headerLongerThanTheFile() throws {
        let full = npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")
        let e = try npyError(full.slice(0..<40))
        guard case .truncated = e.reason else { Issue.record("\(e)"); return }
        #expect(e.offset == 10)
    }

    @Test func headerTooLarge() throws {
        var w = ByteWriter()
        w.append(NpyHeader.magic)
        w.u8(2)
        w.u8(0)
        w.u32(5_000_000)
        let e = try npyError(ByteSlice(w.bytes))
        #expect(
            e.reason
                == .tooLarge(what: "npy header", size: 5_000_000, limit: NpyHeader.maxHeaderBytes))
    }

    @Test func objectArraysAreRefused() throws {
        let e = try npyError(
            npyFile("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", data: [0x80, 0x02]))
        #expect(e.description.contains("object arrays"))
        #expect(e.offset == 10)
    }

    @Test func structuredArraysAreRefused() throws {
        let e = try npyError(
            npyFile(
                "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }"))
        #expect(e.reason == .unsupported("structured (record) arrays"))
    }

    @Test func unknownDescr() throws {
        let e = try npyError(npyFile("{'descr': '<U8', 'fortran_order': False, 'shape': (1,), }"))
        #expect(e.reason == .unsupportedDType("<U8"))
    }

    @Test func missingKey() throws {
        let e = try npyError(npyFile("{'descr': '<f4', 'shape': (1,), }"))
        #expect(e.description.contains("expected exactly descr, fortran_order, shape"))
    }

    @Test func extraKey() throws {
        let e = try npyError(
            npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}"))
        #expect(e.description.contains("\"x\""))
    }

    @Test func fortranOrderNotABool() throws {
        let e = try npyError(npyFile("{'descr': '<f4', 'fortran_order': 0, 'shape': (), }"))
        #expect(e.description.contains("fortran_order"))
    }

    @Test func shapeNotATuple() throws {
        let e = try npyError(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': [1], }"))
        #expect(e.description.contains("shape is not a tuple"))
    }

    @Test func negativeDimension() throws {
        let e = try npyError(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"))
        #expect(e.description.contains("non-negative"))
    }

    @Test func shapeOverflow() throws {
        let e = try npyError(
            npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (\(Int.max / 4), 5), }"))
        #expect(e.description.contains("overflows"))
    }

    @Test func dictSyntaxError() throws {
        let e = try npyError(npyFile("{'descr': '<f4' 'fortran_order': False}"))
        #expect(e.description.contains("expected ','"))
        #expect(try #require(e.offset) > 10)
    }

    @Test func nonASCIIVersion1Header() throws {
        let e = try npyError(
            npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'é': 1}"))
        #expect(e.description.contains("not ASCII"))
    }

    @Test func dataShorterThanTheShape() throws {
        let bytes = npyFile(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data: [0, 0, 0, 0])
        let e = try npyError(bytes)
        #expect(e.reason == .truncated(needed: 12, available: 4))
        #expect(e.offset == bytes.count - 4)
    }

    @Test func npzMemberErrorNamesTheMember() throws {
        let sink = MemorySink()
        try NpzWriter.write([("layer.w", Tensor(floats: [1], shape: [1]))], to: sink)
        var bytes = sink.bytes
        let zip = try ZipArchive(ByteSlice(bytes))
        bytes[zip.entries[0].dataOffset + 1] ^= 0xff  // break the npy magic
        let e = try #require(throws: FormatError.self) { try NpzReader.read(ByteSlice(bytes)) }
        #expect(e.entry == "layer.w.npy" && e.tensor == "layer.w")
        guard case .badMagic = e.reason else { Issue.record("\(e)"); return }
    }

    @Test func npzChecksumMismatch() throws {
        let sink = MemorySink()
        try NpzWriter.write(
            [("w", Tensor(floats: [1, 2, 3], shape: [3]))], compression: .deflated, to: sink)
        var bytes = sink.bytes
        let zip = try ZipArchive(ByteSlice(bytes))
        bytes[zip.centralDirectoryOffset + 16] ^= 0x01  // CRC-32 field of the first record
        let e = try #require(throws: FormatError.self) { try NpzReader.read(ByteSlice(bytes)) }
        guard case .checksum = e.reason else { Issue.record("\(e)"); return }
        #expect(e.entry == "w.npy")
    }

    @Test func npzDuplicateAfterDroppingTheSuffix() throws {
        let sink = MemorySink()
        let zip = ZipWriter(sink: sink, layout: .plain())
        try zip.add("a", ByteSlice([1]))
        try zip.add(
            "a.npy",
            parts: [ByteSlice(try NpyHeader.encode(dtype: .uint8, shape: [])), ByteSlice([1])])
        try zip.finish()
        let e = try #require(throws: FormatError.self) { try NpzReader.read(ByteSlice(sink.bytes)) }
        #expect(e.reason == .duplicateName("a"))
        #expect(e.entry == "a.npy")
    }

    @Test func npzWriterRejectsDuplicateNames() throws {
        let t = Tensor(floats: [1], shape: [1])
        let e = try #require(throws: FormatError.self) {
            try NpzWriter.write([("a", t), ("a", t)], to: MemorySink())
        }
        #expect(e.reason == .duplicateName("a"))
    }

    @Test func npzWriterNamesTheTensorWithAnUnsupportedDType() throws {
        let t = try Tensor(dtype: .float8e5m2, shape: [1], data: ByteSlice([0]))
        let e = try #require(throws: FormatError.self) {
            try NpzWriter.write([("f8", t)], to: MemorySink())
        }
        #expect(e.tensor == "f8")
    }
}
