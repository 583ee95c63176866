import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// A safetensors file from a header text (padded with spaces to 8) and a data buffer.
private func stFile(_ header: String, data: [UInt8] = [], pad: Bool = true) -> ByteSlice {
    var h = Array(header.utf8)
    if pad { h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8) }
    var w = ByteWriter()
    w.u64(UInt64(h.count))
    w.append(h)
    w.append(data)
    return ByteSlice(w.bytes)
}

/// 8 + N, read straight from the length field.
private func dataStart(_ bytes: ByteSlice) -> Int { 8 + Int(Elements.loadLE(bytes, 0, 8)) }

private func readError(_ bytes: ByteSlice) throws -> FormatError {
    try #require(throws: FormatError.self) { try SafeTensorsReader.read(bytes) }
}

/// The tensors of a checkpoint root dict, in order.
private func tensors(_ c: Checkpoint) throws -> [(String, StoredTensor)] {
    let d = try #require(c.root.dict)
    return try d.entries.map { e in
        guard case .string(let k) = e.key, case .tensor(let t) = e.value else {
            throw FormatError(.invalid("not a tensor entry"))
        }
        return (k, t)
    }
}

private func randomTensor(_ dtype: DType, _ shape: [Int], _ rng: inout SplitMix64) throws -> Tensor {
    let n = try Shapes.byteCount(shape, dtype)
    return try Tensor(
        dtype: dtype, shape: shape,
        data: ByteSlice((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }))
}

@Suite struct SafeTensorsTests {
    // MARK: Reading well-formed files

    @Test func readsTensorsInOffsetOrderAsZeroCopyWindows() throws {
        // "b" is listed first in the JSON but lies second in the buffer.
        let bytes = stFile(
            #"{"__metadata__":{"format":"pt","note":"x"},"b":{"dtype":"I16","shape":[2],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
            data: [0, 0, 0x80, 0x3f, 1, 0, 0xff, 0xff])
        let c = try SafeTensorsReader.read(bytes)
        #expect(c.format == .safetensors)
        let ts = try tensors(c)
        #expect(ts.map(\.0) == ["a", "b"])
        #expect(ts[0].1.shape == [] && ts[0].1.dtype == .float32)
        #expect(ts[0].1.materialize().element(0) == 1.0)
        #expect(ts[1].1.materialize().doubles() == [1, -1])
        #expect(ts[1].1.storage.store === bytes.store, "tensor bytes must be a window, not a copy")
        #expect(c.safeTensorsMetadata.map(\.key) == ["format", "note"])
        #expect(c.safeTensorsMetadata.map(\.value) == ["pt", "x"])
    }

    @Test func emptyFileAndEmptyTensorsAreValid() throws {
        #expect(try tensors(SafeTensorsReader.read(stFile("{}"))).isEmpty)
        let c = try SafeTensorsReader.read(
            stFile(
                #"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"f":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                data: [7]))
        let ts = try tensors(c)
        #expect(ts.map(\.0) == ["e", "f"])
        #expect(ts[0].1.materialize().byteCount == 0)
        #expect(c.safeTensorsMetadata.isEmpty)
    }

    @Test func acceptsJSONWhitespaceEscapesAndUnknownFields() throws {
        let c = try SafeTensorsReader.read(
            stFile(
                "{ \"w\\u00e9\\n\" : { \"shape\" : [ 1 ] , \"dtype\" : \"BOOL\", \"extra\": [null, true, -1.5e3],\n \"data_offsets\":[0,1] } }",
                data: [1]))
        #expect(try tensors(c).map(\.0) == ["wé\n"])
    }

    @Test func mapsEverySafeTensorsDTypeName() throws {
        for d in DType.allCases {
            if let name = d.safeTensorsName {
                #expect(DType(safeTensorsName: name) == d)
            } else {
                #expect(d == .complex128)
            }
        }
    }

    // MARK: Writing

    @Test(arguments: [0, 1, 2] as [UInt64])
    func writeThenReadIsIdentity(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var input: [(name: String, tensor: Tensor)] = []
        for (i, d) in DType.allCases.enumerated() where d != .complex128 {
            let rank = Int.random(in: 0...3, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 0...3, using: &rng) }
            input.append(("t\(i).\(d.rawValue)", try randomTensor(d, shape, &rng)))
        }
        let sink = MemorySink()
        try SafeTensorsWriter.write(input, metadata: ["k": "v \"é\""], to: sink)
        let c = try SafeTensorsReader.read(ByteSlice(sink.bytes))
        let got = Dictionary(
            uniqueKeysWithValues: try tensors(c).map { ($0.0, $0.1.materialize()) })
        #expect(got.count == input.count)
        for (name, t) in input {
            let g = try #require(got[name])
            #expect(g.dtype == t.dtype && g.shape == t.shape && g.data == t.data, "\(name)")
        }
        #expect(c.safeTensorsMetadata.map(\.key) == ["format", "k"])
        #expect(c.safeTensorsMetadata.last?.value == "v \"é\"")
    }

    @Test func writerFollowsReferenceOrderAndPadding() throws {
        let f32 = Tensor(floats: [1, 2], shape: [2])
        let u8 = try Tensor(dtype: .uint8, shape: [3], data: ByteSlice([1, 2, 3]))
        let i32 = try Tensor(dtype: .int32, shape: [1], data: ByteSlice([9, 0, 0, 0]))
        let sink = MemorySink()
        try SafeTensorsWriter.write([("z", u8), ("y", i32), ("b", f32), ("a", u8)], to: sink)
        let n = Int(Elements.loadLE(ByteSlice(sink.bytes), 0, 8))
        #expect(n % 8 == 0)
        let header = String(decoding: sink.bytes[8..<(8 + n)], as: UTF8.self)
        // F32 ranks above I32 (reference Dtype order), then names; U8 tensors last.
        #expect(
            header.trimmingCharacters(in: .whitespaces)
                == #"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},"a":{"dtype":"U8","shape":[3],"data_offsets":[12,15]},"z":{"dtype":"U8","shape":[3],"data_offsets":[15,18]}}"#
        )
        #expect(sink.bytes.count == 8 + n + 18)
    }

    @Test func writerKeepsAGivenFormatKey() throws {
        let sink = MemorySink()
        try SafeTensorsWriter.write([], metadata: ["format": "np"], to: sink)
        #expect(
            try SafeTensorsReader.read(ByteSlice(sink.bytes)).safeTensorsMetadata.map(\.value) == [
                "np"
            ])
    }

    @Test func writesCheckpointTreesWithDottedNamesAndScalarMetadata() throws {
        let w = StoredTensor(Tensor(floats: [1, 2, 3, 4, 5, 6], shape: [2, 3]), key: "0")
        // A transposed view: must be materialised, not written with its storage order.
        let wt = try StoredTensor(
            storage: w.storage, storageKey: "0", dtype: .float32, shape: [3, 2], strides: [1, 3],
            storageOffset: 0)
        var inner = CheckpointDict()
        inner.set(.string("weight"), .tensor(w))
        inner.set(.string("weight_t"), .tensor(wt))
        var root = CheckpointDict()
        root.set(.string("epoch"), .int(7))
        root.set(.string("lr"), .float(0.1))
        root.set(.string("state_dict"), .dict(inner))
        root.set(.string("layers"), .list([.tensor(w)]))
        let sink = MemorySink()
        try SafeTensorsWriter.write(Checkpoint(format: .torchZip, root: .dict(root)), to: sink)
        let c = try SafeTensorsReader.read(ByteSlice(sink.bytes))
        let ts = Dictionary(uniqueKeysWithValues: try tensors(c).map { ($0.0, $0.1.materialize()) })
        #expect(Set(ts.keys) == ["state_dict.weight", "state_dict.weight_t", "layers.0"])
        #expect(ts["state_dict.weight_t"]?.floats() == [1, 4, 2, 5, 3, 6])
        let meta = Dictionary(
            uniqueKeysWithValues: c.safeTensorsMetadata.map { ($0.key, $0.value) })
        #expect(meta == ["format": "pt", "epoch": "7", "lr": "0.1"])
    }

    @Test func readingAndWritingBackReproducesTheFile() throws {
        var rng = SplitMix64(seed: 5)
        let input = [
            ("b", try randomTensor(.bfloat16, [3, 2], &rng)),
            ("a", try randomTensor(.int64, [2], &rng)),
            ("s", try randomTensor(.float32, [], &rng)),
        ]
        let first = MemorySink()
        try SafeTensorsWriter.write(input, metadata: ["format": "pt", "x": "1"], to: first)
        let c = try SafeTensorsReader.read(ByteSlice(first.bytes))
        let second = MemorySink()
        try SafeTensorsWriter.write(c, to: second)
        #expect(second.bytes == first.bytes)
    }

    @Test func checkpointWithUnrepresentableValueFails() throws {
        var root = CheckpointDict()
        root.set(.string("opt"), .object(Opaque(global: "torch.optim.SGD")))
        let e = try #require(throws: FormatError.self) {
            try SafeTensorsWriter.write(
                Checkpoint(format: .torchZip, root: .dict(root)), to: MemorySink())
        }
        #expect(e.tensor == "opt")
        #expect(e.description.contains("torch.optim.SGD"))
    }

    @Test func checkpointScalarsCanBeRefused() throws {
        var root = CheckpointDict()
        root.set(.string("epoch"), .int(1))
        let e = try #require(throws: FormatError.self) {
            try SafeTensorsWriter.write(
                Checkpoint(format: .torchZip, root: .dict(root)), scalarsAsMetadata: false,
                to: MemorySink())
        }
        #expect(e.tensor == "epoch")
    }

    @Test func flatteningCollisionIsADuplicate() throws {
        let t = StoredTensor(Tensor(floats: [1], shape: [1]), key: "0")
        var inner = CheckpointDict()
        inner.set(.string("b"), .tensor(t))
        var root = CheckpointDict()
        root.set(.string("a.b"), .tensor(t))
        root.set(.string("a"), .dict(inner))
        let e = try #require(throws: FormatError.self) {
            try Checkpoint(format: .torchZip, root: .dict(root)).flattened()
        }
        #expect(e.reason == .duplicateName("a.b"))
    }

    @Test func writerRejectsDuplicateNames() throws {
        let t = Tensor(floats: [1], shape: [1])
        let e = try #require(throws: FormatError.self) {
            try SafeTensorsWriter.write([("x", t), ("x", t)], to: MemorySink())
        }
        #expect(e.reason == .duplicateName("x") && e.tensor == "x")
    }

    @Test func writerRejectsComplex128() throws {
        let t = try Tensor(
            dtype: .complex128, shape: [1], data: ByteSlice([UInt8](repeating: 0, count: 16)))
        let e = try #require(throws: FormatError.self) {
            try SafeTensorsWriter.write([("c", t)], to: MemorySink())
        }
        #expect(e.tensor == "c")
        guard case .unsupportedDType = e.reason else { Issue.record("\(e)"); return }
    }

    @Test func writerRejectsTheReservedMetadataName() throws {
        let e = try #require(throws: FormatError.self) {
            try SafeTensorsWriter.write(
                [("__metadata__", Tensor(floats: [1], shape: [1]))], to: MemorySink())
        }
        #expect(e.tensor == "__metadata__")
    }

    @Test func readsAMappedFile() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("m.safetensors").path
            let out = try OutputFile(path: path)
            try SafeTensorsWriter.write([("w", Tensor(floats: [3, 4], shape: [1, 2]))], to: out)
            try out.commit()
            let store = try ByteStore.map(path: path)
            #expect(store.isMapped)
            let ts = try tensors(SafeTensorsReader.read(store.all))
            #expect(ts.first?.1.materialize().floats() == [3, 4])
        }
    }

    // MARK: One test per error reason

    @Test func fileShorterThanTheLengthField() throws {
        let e = try readError(ByteSlice([1, 0, 0]))
        #expect(e.reason == .truncated(needed: 8, available: 3))
        #expect(e.offset == 0)
    }

    @Test func headerTooLarge() throws {
        var w = ByteWriter()
        w.u64(100_000_001)
        w.append("{}")
        let e = try readError(ByteSlice(w.bytes))
        #expect(
            e.reason
                == .tooLarge(
                    what: "safetensors header (is this really a safetensors file?)",
                    size: 100_000_001, limit: 100_000_000))
        #expect(e.offset == 0)
    }

    @Test func headerLongerThanTheFile() throws {
        var w = ByteWriter()
        w.u64(64)
        w.append("{}")
        let e = try readError(ByteSlice(w.bytes))
        #expect(e.reason == .truncated(needed: 72, available: 10))
    }

    @Test func headerNotStartingWithBrace() throws {
        let e = try readError(stFile(" {}"))
        #expect(e.offset == 8)
        #expect(e.description.contains("must start with '{'"))
    }

    @Test func headerNotUTF8() throws {
        var w = ByteWriter()
        w.u64(8)
        w.append([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x20])
        let e = try readError(ByteSlice(w.bytes))
        #expect(e.description.contains("UTF-8"))
    }

    @Test func malformedJSONNamesTheOffset() throws {
        let e = try readError(
            stFile(#"{"a":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        #expect(e.description.contains("invalid JSON header"))
        #expect(e.offset == 8 + 31)  // the "]" after the trailing comma
    }

    @Test func tooDeeplyNestedJSON() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        let e = try readError(stFile(#"{"a":"# + deep + "}"))
        #expect(e.description.contains("nesting"))
    }

    @Test func duplicateKey() throws {
        let e = try readError(
            stFile(
                #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                data: [1, 2]))
        #expect(e.reason == .duplicateName("a"))
        #expect(e.tensor == "a")
        #expect(e.offset == 8 + 53)  // the second "a"
    }

    @Test func unknownDType() throws {
        let e = try readError(
            stFile(#"{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))
        #expect(e.reason == .unsupportedDType("Q7"))
        #expect(e.tensor == "w")
        #expect(e.offset == 8 + 1)  // the key "w"
    }

    @Test func subByteDTypeIsUnsupported() throws {
        let e = try readError(
            stFile(#"{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}"#, data: [0]))
        #expect(e.reason == .unsupportedDType("F4"))
        #expect(e.description.contains("tensor \"w\""))
    }

    @Test func missingField() throws {
        let e = try readError(stFile(#"{"w":{"dtype":"U8","shape":[1]}}"#))
        #expect(e.reason == .missing("\"data_offsets\" field"))
        #expect(e.tensor == "w")
    }

    @Test func negativeDimension() throws {
        let e = try readError(stFile(#"{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#))
        #expect(e.tensor == "w")
        #expect(e.description.contains("non-negative"))
    }

    @Test func shapeProductOverflows() throws {
        let big = Int.max / 2
        let e = try readError(
            stFile(#"{"w":{"dtype":"F32","shape":[\#(big),4],"data_offsets":[0,0]}}"#))
        #expect(e.tensor == "w")
        #expect(e.description.contains("overflows"))
    }

    @Test func sizeDisagreesWithShape() throws {
        let e = try readError(
            stFile(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        #expect(e.reason == .sizeMismatch(expectedBytes: 8, foundBytes: 4))
        #expect(e.tensor == "w")
    }

    @Test func endBeforeBegin() throws {
        let e = try readError(stFile(#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#))
        #expect(e.tensor == "w")
        #expect(e.description.contains("end before"))
    }

    @Test func holeBetweenTensors() throws {
        let bytes = stFile(
            #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#,
            data: [1, 0, 2])
        let e = try readError(bytes)
        #expect(e.tensor == "b")
        #expect(e.description.contains("hole"))
        #expect(e.offset == dataStart(bytes) + 1)
    }

    @Test func holeAtTheStart() throws {
        let e = try readError(
            stFile(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 1]))
        #expect(e.tensor == "a")
        #expect(e.description.contains("bytes 0..<1"))
    }

    @Test func overlappingTensors() throws {
        let e = try readError(
            stFile(
                #"{"a":{"dtype":"I16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                data: [1, 2]))
        #expect(e.tensor == "b")
        #expect(e.description.contains("overlap") && e.description.contains("\"a\""))
    }

    @Test func offsetsPastTheEnd() throws {
        let bytes = stFile(
            #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0])
        let e = try readError(bytes)
        #expect(e.reason == .truncated(needed: 8, available: 4))
        #expect(e.tensor == "w")
        #expect(e.offset == dataStart(bytes))
    }

    @Test func hugeOffsetsDoNotOverflow() throws {
        let e = try readError(
            stFile(#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[\#(Int.max),\#(Int.max)]}}"#))
        #expect(e.tensor == "w")
    }

    @Test func truncatedFile() throws {
        let sink = MemorySink()
        try SafeTensorsWriter.write([("w", Tensor(floats: [1, 2, 3], shape: [3]))], to: sink)
        let e = try readError(ByteSlice(Array(sink.bytes.dropLast(2))))
        #expect(e.reason == .truncated(needed: 12, available: 10))
        #expect(e.tensor == "w")
    }

    @Test func trailingBytesAfterTheLastTensor() throws {
        let e = try readError(
            stFile(#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [1, 2, 3]))
        #expect(e.description.contains("2 trailing bytes"))
        #expect(e.tensor == "w")
    }

    @Test func nonStringMetadataValue() throws {
        let e = try readError(stFile(#"{"__metadata__":{"epoch":3}}"#))
        #expect(e.offset == 8 + 17)  // the key "epoch"
        #expect(e.description.contains("\"epoch\"") && e.description.contains("must be strings"))
    }

    @Test func metadataNotAnObject() throws {
        let e = try readError(stFile(#"{"__metadata__":"pt"}"#))
        #expect(e.description.contains("__metadata__ is a string"))
    }

    @Test func headerIsNotAnObjectEntry() throws {
        let e = try readError(stFile(#"{"w":[1,2]}"#))
        #expect(e.tensor == "w")
    }
}
