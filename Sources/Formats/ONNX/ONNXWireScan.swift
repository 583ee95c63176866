import Tensors

/// A structural walk over the protobuf wire format of an ONNX `ModelProto`, before
/// swift-protobuf decodes it.
///
/// swift-protobuf's errors carry no position (`BinaryDecodingError.truncated`), so this walk
/// checks every tag, varint and length first and reports the byte offset and the field path
/// (`graph.initializer[3].raw_data`) of the first break. It also records where each top-level
/// initializer's `raw_data` payload lies in the file, so tensors can point into the (mapped)
/// file instead of into swift-protobuf's copy.
///
/// Wire format: each field is a varint tag `(number << 3) | wireType`; wire types 0 varint,
/// 1 fixed64, 2 length-delimited, 5 fixed32 (3/4, groups, are not used by ONNX). Only the
/// message- and string-typed fields of the messages below are descended into or checked for
/// UTF-8; every other field is only bounds-checked, as swift-protobuf treats unknown fields.
enum ONNXWireScan {
    /// What the walk learns besides "the structure is sound".
    struct Layout {
        /// For each `graph.initializer[i]` of the main graph: its `raw_data` payload, if any.
        var initializerRawData: [ByteSlice?] = []
        /// For each `graph.initializer[i]`: the offset of the TensorProto in the file.
        var initializerOffsets: [Int] = []
    }

    /// Message types the walk knows (a subset of onnx.proto: the ones a CNN model uses).
    enum Message {
        case model, graph, node, attribute, tensor, sparseTensor, valueInfo, typeProto
        case typeTensor, typeSequence, typeMap, shape, dimension, stringEntry, opset, function
        case trainingInfo, tensorAnnotation, segment
    }

    /// How a field of a known message is checked.
    enum FieldKind {
        case message(Message)
        case string
    }

    /// Message- and string-typed fields per message type (field numbers from onnx.proto, onnx 1.23).
    static func field(_ m: Message, _ number: Int) -> FieldKind? {
        switch (m, number) {
        case (.model, 7): return .message(.graph)
        case (.model, 8): return .message(.opset)
        case (.model, 14): return .message(.stringEntry)
        case (.model, 20): return .message(.trainingInfo)
        case (.model, 25): return .message(.function)
        case (.model, 2), (.model, 3), (.model, 4), (.model, 6): return .string
        case (.graph, 1): return .message(.node)
        case (.graph, 5): return .message(.tensor)
        case (.graph, 15): return .message(.sparseTensor)
        case (.graph, 11), (.graph, 12), (.graph, 13): return .message(.valueInfo)
        case (.graph, 14): return .message(.tensorAnnotation)
        case (.graph, 16): return .message(.stringEntry)
        case (.graph, 2), (.graph, 10): return .string
        case (.node, 5): return .message(.attribute)
        case (.node, 9): return .message(.stringEntry)
        case (.node, 1), (.node, 2), (.node, 3), (.node, 4), (.node, 6), (.node, 7), (.node, 8):
            return .string
        case (.attribute, 5), (.attribute, 10): return .message(.tensor)
        case (.attribute, 6), (.attribute, 11): return .message(.graph)
        case (.attribute, 22), (.attribute, 23): return .message(.sparseTensor)
        case (.attribute, 14), (.attribute, 15): return .message(.typeProto)
        case (.attribute, 1), (.attribute, 13), (.attribute, 21): return .string
        case (.tensor, 3): return .message(.segment)
        case (.tensor, 13), (.tensor, 16): return .message(.stringEntry)
        case (.tensor, 8), (.tensor, 12): return .string
        case (.sparseTensor, 1), (.sparseTensor, 2): return .message(.tensor)
        case (.valueInfo, 2): return .message(.typeProto)
        case (.valueInfo, 4): return .message(.stringEntry)
        case (.valueInfo, 1), (.valueInfo, 3): return .string
        case (.typeProto, 1), (.typeProto, 8): return .message(.typeTensor)
        case (.typeProto, 4), (.typeProto, 9): return .message(.typeSequence)
        case (.typeProto, 5): return .message(.typeMap)
        case (.typeProto, 6): return .string
        case (.typeTensor, 2): return .message(.shape)
        case (.typeSequence, 1), (.typeMap, 2): return .message(.typeProto)
        case (.shape, 1): return .message(.dimension)
        case (.dimension, 2), (.dimension, 3): return .string
        case (.stringEntry, 1), (.stringEntry, 2): return .string
        case (.opset, 1): return .string
        case (.function, 11): return .message(.attribute)
        case (.function, 7): return .message(.node)
        case (.function, 9): return .message(.opset)
        case (.function, 12): return .message(.valueInfo)
        case (.function, 14): return .message(.stringEntry)
        case (.function, 1), (.function, 4), (.function, 5), (.function, 6), (.function, 8),
            (.function, 10), (.function, 13):
            return .string
        case (.trainingInfo, 1), (.trainingInfo, 2): return .message(.graph)
        case (.trainingInfo, 3), (.trainingInfo, 4): return .message(.stringEntry)
        case (.tensorAnnotation, 1): return .string
        case (.tensorAnnotation, 2): return .message(.stringEntry)
        default: return nil
        }
    }

    /// Field names for error paths (only the ones on common paths; others print as `#n`).
    static func fieldName(_ m: Message, _ number: Int) -> String {
        switch (m, number) {
        case (.model, 7): return "graph"
        case (.model, 8), (.function, 9): return "opset_import"
        case (.model, 14), (.graph, 16), (.node, 9), (.tensor, 16), (.valueInfo, 4): return "metadata_props"
        case (.model, 25): return "functions"
        case (.graph, 1), (.function, 7): return "node"
        case (.graph, 2), (.node, 3), (.attribute, 1), (.valueInfo, 1), (.function, 1): return "name"
        case (.graph, 5): return "initializer"
        case (.graph, 11): return "input"
        case (.graph, 12): return "output"
        case (.graph, 13): return "value_info"
        case (.node, 4): return "op_type"
        case (.node, 5): return "attribute"
        case (.attribute, 5): return "t"
        case (.attribute, 6): return "g"
        case (.attribute, 11): return "graphs"
        case (.tensor, 1): return "dims"
        case (.tensor, 4): return "float_data"
        case (.tensor, 5): return "int32_data"
        case (.tensor, 7): return "int64_data"
        case (.tensor, 8): return "name"
        case (.tensor, 9): return "raw_data"
        case (.tensor, 13): return "external_data"
        case (.valueInfo, 2): return "type"
        case (.typeProto, 1): return "tensor_type"
        case (.typeTensor, 2): return "shape"
        case (.shape, 1): return "dim"
        default: return "#\(number)"
        }
    }

    /// Deepest nesting accepted (swift-protobuf's default decoding limit is 100 as well).
    static let depthLimit = 100

    /// A break in the wire structure, unwound to the top with its field path.
    struct Failure: Error {
        var reason: FormatError.Reason
        var offset: Int
        var path: [String] = []
        var tensor: String?
    }

    /// Walks `bytes` as a `ModelProto`.
    ///
    /// - Throws: ``FormatError`` with `offset`, `entry` = the field path and, inside an
    ///   initializer, `tensor` = its name (when the name came before the break).
    static func scan(_ bytes: ByteSlice) throws(FormatError) -> Layout {
        var layout = Layout()
        do {
            try walk(.model, bytes, base: 0, depth: 0, topLevel: true, layout: &layout)
        } catch let f {
            throw FormatError(
                f.reason, entry: f.path.isEmpty ? nil : f.path.reversed().joined(separator: "."),
                offset: f.offset, tensor: f.tensor)
        }
        return layout
    }

    /// Walks one message; `topLevel` is true for the file itself (running out of bytes there
    /// means the file is truncated; inside a message it means a corrupt length).
    private static func walk(
        _ m: Message, _ bytes: ByteSlice, base: Int, depth: Int, topLevel: Bool,
        layout: inout Layout, mainGraph: Bool = false, rawDataSlot: Int? = nil
    ) throws(Failure) {
        guard depth <= depthLimit else {
            throw Failure(
                reason: .invalid("protobuf messages nested deeper than \(depthLimit) levels"), offset: base)
        }
        var p = 0
        var counts: [Int: Int] = [:]
        var tensorName: String?
        func fail(_ r: FormatError.Reason, at o: Int) -> Failure {
            Failure(reason: r, offset: base + o, tensor: m == .tensor ? tensorName : nil)
        }
        func varint() throws(Failure) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<10 {
                guard p < bytes.count else {
                    throw topLevel
                        ? fail(.truncated(needed: 1, available: 0), at: p)
                        : fail(.invalid("protobuf varint runs past the end of its message"), at: p)
                }
                let b = bytes[p]
                p += 1
                v |= UInt64(b & 0x7f) << (7 * UInt64(i))
                if b < 0x80 { return v }
            }
            throw fail(.invalid("protobuf varint longer than 10 bytes"), at: p - 10)
        }
        func need(_ n: UInt64, at start: Int) throws(Failure) -> Int {
            let left = bytes.count - p
            guard n <= UInt64(left) else {
                let r: FormatError.Reason =
                    topLevel || n > UInt64(Int.max)
                    ? .truncated(needed: n > UInt64(Int.max) ? Int.max : Int(n), available: left)
                    : .invalid("protobuf field length \(n) exceeds the \(left) bytes left in its message")
                throw fail(r, at: start)
            }
            return Int(n)
        }
        while p < bytes.count {
            let tagStart = p
            let tag = try varint()
            let number = tag >> 3
            let wire = Int(tag & 7)
            guard number >= 1, number <= 536_870_911 else {
                throw fail(
                    .invalid("protobuf field number \(number) is out of range (not protobuf, or corrupt)"),
                    at: tagStart)
            }
            let n = Int(number)
            switch wire {
            case 0: _ = try varint()
            case 1: p += try need(8, at: p)
            case 5: p += try need(4, at: p)
            case 2:
                let len = try varint()
                let start = p
                let count = try need(len, at: start)
                p += count
                let payload = bytes.slice(start..<(start + count))
                let index = counts[n, default: 0]
                counts[n] = index + 1
                if m == .tensor, n == 8 {
                    tensorName = String(validating: payload.toArray(), as: UTF8.self)
                }
                var slot: Int?
                if mainGraph, n == 5 {
                    slot = layout.initializerRawData.count
                    layout.initializerOffsets.append(base + start)
                    layout.initializerRawData.append(nil)
                }
                if m == .tensor, n == 9, let rawDataSlot { layout.initializerRawData[rawDataSlot] = payload }
                switch field(m, n) {
                case .message(let child):
                    do {
                        try walk(
                            child, payload, base: base + start, depth: depth + 1, topLevel: false,
                            layout: &layout, mainGraph: m == .model && n == 7, rawDataSlot: slot)
                    } catch var f {
                        f.path.append(fieldName(m, n) + (isRepeated(m, n) ? "[\(index)]" : ""))
                        if f.tensor == nil, m == .tensor { f.tensor = tensorName }
                        throw f
                    }
                case .string:
                    if String(validating: payload.toArray(), as: UTF8.self) == nil {
                        var f = fail(.invalid("protobuf string field is not valid UTF-8"), at: start)
                        f.path.append(fieldName(m, n))
                        throw f
                    }
                case nil: break
                }
            default:
                throw fail(
                    .invalid(
                        "protobuf wire type \(wire) at field \(n) is not valid here (not an ONNX file, or corrupt)"
                    ), at: tagStart)
            }
        }
    }

    /// True for repeated message fields (their path element gets an index).
    static func isRepeated(_ m: Message, _ n: Int) -> Bool {
        switch (m, n) {
        case (.model, 7), (.attribute, 5), (.attribute, 6), (.attribute, 14), (.attribute, 22),
            (.sparseTensor, _), (.valueInfo, 2), (.typeProto, _), (.typeTensor, _), (.typeSequence, _),
            (.typeMap, _), (.tensor, 3), (.trainingInfo, 1), (.trainingInfo, 2):
            return false
        default: return true
        }
    }
}
