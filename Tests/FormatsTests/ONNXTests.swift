import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// A small model built with ``ONNXBuild``: one Conv with weight and bias, metadata, dynamic batch.
func smallONNXModel(
    weight: Tensor = Tensor(floats: (0..<54).map { Float($0) / 10 }, shape: [2, 3, 3, 3])
)
    -> Onnx_ModelProto
{
    ONNXBuild.model(
        graph: "tiny",
        nodes: [
            ONNXBuild.node(
                "Conv", inputs: ["x", "w", "b"], outputs: ["y"], name: "/conv/Conv",
                attributes: [.ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1]), .int("group", 1)]),
            ONNXBuild.node("Relu", inputs: ["y"], outputs: ["z"], name: "/relu/Relu"),
        ],
        initializers: [
            ONNXBuild.tensor("w", weight), ONNXBuild.tensor("b", Tensor(floats: [0.5, -0.5], shape: [2])),
        ],
        inputs: [ONNXBuild.value("x", .float32, ["batch", 3, 8, 8])],
        outputs: [ONNXBuild.value("z", .float32, ["batch", 2, 8, 8])],
        irVersion: 7, opsets: [("", 13)], metadata: [("k", "v")])
}

/// Serialized bytes of a model built by the caller (the writer is tested by interop tests).
func bytes(_ m: Onnx_ModelProto) throws -> [UInt8] { try ONNXWriter.serialize(m) }

@Suite struct ONNXTests {
    @Test func writeThenReadGivesTheSameModel() throws {
        let sink = MemorySink()
        try ONNXWriter.write(smallONNXModel(), to: sink)
        #expect(Array(sink.bytes.prefix(2)) == [0x08, 0x07])
        #expect(FileSniffer.sniff(ByteSlice(sink.bytes)) == .onnx)
        let m = try ONNXReader.model(ByteSlice(sink.bytes))
        #expect(m.initializers.map(\.name) == ["w", "b"])
        #expect(m.initializers[1].tensor.materialize().floats() == [0.5, -0.5])
        #expect(m.summary.inputs.first?.shape?.map(\.description) == ["batch", "3", "8", "8"])
        #expect(m.summary.ops.map(\.op) == ["Conv", "Relu"])
        #expect(m.summary.metadata == [.init(key: "k", value: "v")])
        #expect(m.proto.graph.node[0].attribute.map(\.name) == ["kernel_shape", "pads", "group"])
    }

    @Test(arguments: 0..<4 as Range<UInt64>)
    func everyDTypeRoundTrips(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var tensors: [Onnx_TensorProto] = []
        var expected: [(String, Tensor)] = []
        let shapes: [[Int]] = [[], [3], [2, 3], [0], [1, 2, 2]]
        for (i, d) in DType.allCases.enumerated() {
            let shape = shapes[(i + Int(seed)) % shapes.count]
            var raw = (0..<(try Shapes.byteCount(shape, d))).map { _ in UInt8.random(in: 0...255, using: &rng)
            }
            if d == .bool { raw = raw.map { $0 & 1 } }
            let t = try Tensor(dtype: d, shape: shape, data: ByteSlice(raw))
            tensors.append(ONNXBuild.tensor("t\(i)_\(d.rawValue)", t))
            expected.append(("t\(i)_\(d.rawValue)", t))
        }
        let model = ONNXBuild.model(
            graph: "g", nodes: [], initializers: tensors, inputs: [], outputs: [], irVersion: 10,
            opsets: [("", 21)])
        let m = try ONNXReader.model(ByteSlice(try bytes(model)))
        #expect(m.initializers.count == expected.count)
        for ((name, t), (n2, s)) in zip(expected, m.initializers) {
            let r = s.materialize()
            #expect(n2 == name)
            #expect(r.dtype == t.dtype && r.shape == t.shape && r.data == t.data, "\(name)")
        }
    }

    /// Packed values as formats.md §C.1 records them (checked there with onnxruntime).
    @Test(
        arguments: [
            (22, [0x21, 0xF8], 4, [1, 2, -8, -1]), (21, [0x21, 0xF8], 4, [1, 2, 8, 15]),
            (26, [0xE4], 4, [0, 1, -2, -1]), (25, [0xE4], 4, [0, 1, 2, 3]),
            (22, [0x21, 0x08], 3, [1, 2, -8]),
        ] as [(Int32, [UInt8], Int, [Int])])
    func packedTypesUnpack(code: Int32, raw: [UInt8], count: Int, values: [Int]) throws {
        var t = Onnx_TensorProto()
        t.name = "p"
        t.dataType = code
        t.dims = [Int64(count)]
        t.rawData = Data(raw)
        let model = ONNXBuild.model(
            graph: "g", nodes: [], initializers: [t], inputs: [], outputs: [], irVersion: 13,
            opsets: [("", 25)])
        let m = try ONNXReader.model(ByteSlice(try bytes(model)))
        let r = m.initializers[0].tensor.materialize()
        #expect(r.doubles().map { Int($0) } == values)
        #expect(m.summary.initializers[0].storedBytes == raw.count)
    }

    @Test func sniffsRealONNXStartsAndRejectsLookalikes() {
        func kind(_ b: [UInt8]) -> FileKind { FileSniffer.sniff(ByteSlice(b)) }
        // torch.onnx.export: ir_version 7, producer_name "pytorch".
        #expect(kind([0x08, 0x07, 0x12, 0x07] + Array("pytorch".utf8)) == .onnx)
        // onnx.helper.make_model (onnx 1.23): ir_version 14, then graph.
        #expect(kind([0x08, 0x0e, 0x3a, 0x03, 0x12, 0x01, 0x67]) == .onnx)
        // ir_version then functions (field 25, two-byte tag ca 01).
        #expect(kind([0x08, 0x0a, 0xca, 0x01, 0x00]) == .onnx)
        // A truncated safetensors file whose u64 header length is 0x0108: tag 0 is no ModelProto field.
        #expect(kind([0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b]) != .onnx)
        // 08 then a field-1 varint again, or a wire-type mismatch (graph as varint).
        #expect(kind([0x08, 0x07, 0x08, 0x07]) != .onnx)
        #expect(kind([0x08, 0x07, 0x38, 0x01]) != .onnx)
        #expect(kind([0x08, 0x00, 0x12]) != .onnx)
    }

    // MARK: errors

    @Test func truncatedModelNamesOffsetAndField() throws {
        let full = try bytes(smallONNXModel())
        let cut = Array(full.prefix(full.count / 2))
        let e = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(cut)) }
        guard case .truncated(let needed, let available) = e.reason else {
            Issue.record("expected truncated, got \(e)")
            return
        }
        #expect(available == cut.count - (e.offset ?? 0))
        #expect(needed > available)
        #expect(e.description.contains("@0x"))
    }

    @Test func garbageAfterTheMagicIsAnErrorWithOffset() throws {
        // 08 07 (ir_version 7), then a tag with wire type 7, which protobuf does not have.
        let e = try #require(throws: FormatError.self) {
            try ONNXReader.model(ByteSlice([0x08, 0x07, 0x12, 0x01, 0x41, 0x0f, 0xff]))
        }
        #expect(e.offset == 5)
        #expect(e.description.contains("wire type 7"))
        // A length running past its enclosing message, inside the graph's first initializer.
        var m = smallONNXModel()
        m.graph.initializer[0].rawData = Data([1, 2, 3, 4])
        var b = try bytes(m)
        let at = try #require(Self.find([0x4a, 0x04, 1, 2, 3, 4], in: b))  // raw_data: tag 9, length 4
        b[at + 1] = 0x7f
        let e2 = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(b)) }
        #expect(e2.offset == at + 2)
        #expect(e2.entry == "graph.initializer[0]")
        #expect(e2.tensor == "w")
    }

    @Test func rawDataLengthMustMatchDims() throws {
        var m = smallONNXModel()
        m.graph.initializer[1].rawData = Data([0, 0, 0x80, 0x3f])  // 4 bytes for dims [2] float
        let b = try bytes(m)
        let e = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(b)) }
        #expect(e.reason == .sizeMismatch(expectedBytes: 8, foundBytes: 4))
        #expect(e.tensor == "b")
        #expect(e.offset != nil)
        #expect(e.description.contains("tensor \"b\""))
    }

    @Test func typedFieldCountMustMatchDims() throws {
        var m = smallONNXModel()
        var t = Onnx_TensorProto()
        t.name = "typed"
        t.dataType = 7
        t.dims = [2, 2]
        t.int64Data = [1, 2, 3]
        m.graph.initializer.append(t)
        let e = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(try bytes(m))) }
        #expect(e.tensor == "typed")
        #expect(e.reasonText == "int64_data holds 3 values, but dims [2, 2] of a INT64 tensor need 4")
    }

    /// Element counts near Int.max, with and without raw_data, for plain, paired and packed types.
    @Test(
        arguments: [(1, false), (14, false), (15, false), (22, false), (22, true), (25, true), (7, true)]
            as [(Int32, Bool)])
    func hugeDimsFailBeforeAllocating(code: Int32, raw: Bool) throws {
        for dims: [Int64] in [[1 << 40, 1 << 20], [Int64.max - 1], [1 << 62, 2]] {
            var m = smallONNXModel()
            var t = Onnx_TensorProto()
            t.name = "huge"
            t.dataType = code
            t.dims = dims
            if raw { t.rawData = Data([1, 2, 3]) }
            m.graph.initializer.append(t)
            let e = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(try bytes(m))) }
            #expect(e.tensor == "huge", "\(dims)")
        }
    }

    @Test func unsupportedTypesAndDuplicatesNameTheTensor() throws {
        var m = smallONNXModel()
        var s = Onnx_TensorProto()
        s.name = "labels"
        s.dataType = 8
        s.dims = [1]
        s.stringData = [Data("cat".utf8)]
        m.graph.initializer.append(s)
        let e = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(try bytes(m))) }
        #expect(e.reason == .unsupportedDType("STRING (ONNX data type 8)"))
        #expect(e.tensor == "labels")

        var d = smallONNXModel()
        d.graph.initializer.append(d.graph.initializer[0])
        let e2 = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(try bytes(d))) }
        #expect(e2.reason == .duplicateName("w"))
    }

    @Test func externalDataErrors() throws {
        try withTemporaryDirectory { dir in
            func model(location: String, offset: String = "0", length: String = "8") throws -> ByteSlice {
                var m = smallONNXModel()
                m.graph.initializer[1].clearRawData()
                m.graph.initializer[1].dataLocation = .external
                m.graph.initializer[1].externalData = [
                    ("location", location), ("offset", offset), ("length", length),
                ].map {
                    var e = Onnx_StringStringEntryProto()
                    (e.key, e.value) = ($0.0, $0.1)
                    return e
                }
                return ByteSlice(try bytes(m))
            }
            let e1 = try #require(throws: FormatError.self) {
                try ONNXReader.model(model(location: "absent.bin"), baseDirectory: dir.path)
            }
            #expect(e1.tensor == "b")
            #expect(e1.description.contains("\"absent.bin\""))
            let e2 = try #require(throws: FormatError.self) {
                try ONNXReader.model(model(location: "../etc/passwd"), baseDirectory: dir.path)
            }
            #expect(e2.description.contains("relative path inside the model's directory"))
            try Data([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 9]).write(to: dir.appendingPathComponent("w.bin"))
            let ok = try ONNXReader.model(model(location: "w.bin"), baseDirectory: dir.path)
            #expect(ok.initializers[1].tensor.materialize().floats() == [1, 2])
            let e3 = try #require(throws: FormatError.self) {
                try ONNXReader.model(model(location: "w.bin", offset: "4"), baseDirectory: dir.path)
            }
            #expect(e3.reason == .truncated(needed: 8, available: 5))
            #expect(e3.entry == "w.bin")
            let e4 = try #require(throws: FormatError.self) {
                try ONNXReader.model(model(location: "w.bin", length: "9"), baseDirectory: dir.path)
            }
            #expect(e4.reason == .sizeMismatch(expectedBytes: 8, foundBytes: 9))
            let e5 = try #require(throws: FormatError.self) {
                try ONNXReader.model(model(location: "w.bin", offset: "-1"), baseDirectory: dir.path)
            }
            #expect(e5.tensor == "b")
        }
    }

    @Test func missingGraphIsAnError() throws {
        var m = Onnx_ModelProto()
        m.irVersion = 7
        m.producerName = "x"
        let e = try #require(throws: FormatError.self) { try ONNXReader.model(ByteSlice(try bytes(m))) }
        #expect(e.description.contains("graph"))
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        return (0...(hay.count - needle.count)).first { Array(hay[$0..<($0 + needle.count)]) == needle }
    }
}
