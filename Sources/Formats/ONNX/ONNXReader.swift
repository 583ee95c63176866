import SwiftProtobuf
import Tensors

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An ONNX model as read: the decoded protobuf, its initializers as tensors, and a summary.
public struct ONNXModel: Sendable {
    /// The decoded `ModelProto`, for the engine's ONNX importer.
    package let proto: Onnx_ModelProto
    /// Initializers of the main graph, in file order (4-/2-bit types unpacked to int8/uint8).
    public let initializers: [(name: String, tensor: StoredTensor)]
    /// What the model declares.
    public let summary: ONNXModelSummary

    /// The model as a ``Checkpoint``: `root` maps initializer names to tensors, `facts` come from
    /// the summary.
    public var checkpoint: Checkpoint {
        Checkpoint(
            format: .onnx,
            root: .dict(CheckpointDict(initializers.map { (.string($0.name), .tensor($0.tensor)) })),
            facts: summary.facts)
    }
}

/// Reads ONNX models (a serialized `onnx.ModelProto`, proto2) with swift-protobuf.
///
/// The bytes are first walked by ``ONNXWireScan``, which gives structural errors an offset and a
/// field path, then decoded by swift-protobuf (which copies every field), then each initializer
/// is decoded by ``ONNXTensorDecoder``. Initializers with `raw_data` point into the input bytes
/// (no copy when the file is memory-mapped).
public enum ONNXReader {
    /// Protobuf's hard limit on one message (2 GiB − 1); bigger models use external data.
    public static let sizeLimit = Int(Int32.max)

    /// Reads `bytes` as a ``Checkpoint`` of format `.onnx`.
    ///
    /// - Parameter baseDirectory: the model file's directory, needed for external data.
    /// - Throws: ``FormatError`` naming the offset, field path or initializer at fault.
    public static func read(
        _ bytes: ByteSlice, baseDirectory: String? = nil
    ) throws(FormatError)
        -> Checkpoint
    {
        try model(bytes, baseDirectory: baseDirectory).checkpoint
    }

    /// Reads `bytes` as an ``ONNXModel``.
    public static func model(
        _ bytes: ByteSlice, baseDirectory: String? = nil
    ) throws(FormatError)
        -> ONNXModel
    {
        guard bytes.count <= sizeLimit else {
            throw FormatError(.tooLarge(what: "ONNX protobuf", size: bytes.count, limit: sizeLimit))
        }
        let layout = try ONNXWireScan.scan(bytes)
        let proto = try decode(bytes)
        guard proto.hasGraph else {
            throw FormatError(.missing("the graph (ModelProto.graph); not an ONNX model?"))
        }
        let graph = proto.graph
        // The scan and swift-protobuf see the same fields; use the scan's zero-copy slices only
        // when they agree.
        let rawSlices: [ByteSlice?] =
            layout.initializerRawData.count == graph.initializer.count
            ? zip(layout.initializerRawData, graph.initializer).map { s, t in
                t.hasRawData && s?.count == t.rawData.count ? s : nil
            }
            : Array(repeating: nil, count: graph.initializer.count)

        var decoder = ONNXTensorDecoder(external: ONNXExternalData(baseDirectory: baseDirectory))
        var tensors: [(name: String, tensor: StoredTensor)] = []
        var infos: [ONNXModelSummary.Initializer] = []
        var seen = Set<String>()
        for (i, t) in graph.initializer.enumerated() {
            let offset = i < layout.initializerOffsets.count ? layout.initializerOffsets[i] : nil
            guard seen.insert(t.name).inserted else {
                throw FormatError(.duplicateName(t.name), offset: offset, tensor: t.name)
            }
            let d = try decoder.decode(t, raw: rawSlices[i], offset: offset)
            tensors.append((t.name, StoredTensor(d.tensor, key: t.name)))
            infos.append(
                ONNXModelSummary.Initializer(
                    name: t.name, dataType: ONNXDataType.name(t.dataType), shape: d.tensor.shape,
                    storedBytes: d.storedBytes, storage: d.source.rawValue, location: d.location))
        }
        let summary = ONNXModelSummary(proto, initializers: infos)
        return ONNXModel(proto: proto, initializers: tensors, summary: summary)
    }

    /// swift-protobuf decoding, its errors turned into ``FormatError``s (the scan has already
    /// caught structural breaks with offsets; what is left is mostly semantic).
    static func decode(_ bytes: ByteSlice) throws(FormatError) -> Onnx_ModelProto {
        do {
            if bytes.count == 0 { return try Onnx_ModelProto(serializedBytes: [UInt8]()) }
            return try unsafe bytes.withUnsafeBytes { raw in
                // A no-copy Data view that lives only for this call; decoding copies every field.
                let data = unsafe Data(
                    bytesNoCopy: UnsafeMutableRawPointer(mutating: raw.baseAddress!), count: raw.count,
                    deallocator: .none)
                return try Onnx_ModelProto(serializedBytes: data)
            }
        } catch let e as BinaryDecodingError {
            let what: String
            switch e {
            case .truncated: what = "truncated field"
            case .invalidUTF8: what = "a string field is not valid UTF-8"
            case .malformedProtobuf: what = "malformed field (bad packed values or wire type)"
            case .messageDepthLimit: what = "messages nested deeper than 100 levels"
            case .trailingGarbage: what = "trailing bytes after the message"
            case .missingRequiredFields: what = "required fields missing"
            case .internalExtensionError: what = "internal extension error"
            }
            throw FormatError(.invalid("protobuf decoding failed: \(what) (not an ONNX model, or corrupt)"))
        } catch {
            throw FormatError(.invalid("protobuf decoding failed: \(error)"))
        }
    }
}

extension ONNXModelSummary {
    /// The summary of `proto`, with initializers already decoded.
    init(_ proto: Onnx_ModelProto, initializers: [Initializer]) {
        let g = proto.graph
        let initNames = Set(g.initializer.map(\.name))
        var counts: [String: (op: String, domain: String, count: Int)] = [:]
        for n in g.node {
            let domain = n.domain == "ai.onnx" ? "" : n.domain
            counts[domain + "\u{0}" + n.opType, default: (n.opType, domain, 0)].count += 1
        }
        let ops = counts.values.sorted { a, b in
            a.count != b.count ? a.count > b.count : (a.domain, a.op) < (b.domain, b.op)
        }
        self.init(
            irVersion: proto.irVersion,
            opsets: proto.opsetImport.map { Opset(domain: $0.domain, version: $0.version) },
            producerName: proto.producerName, producerVersion: proto.producerVersion,
            domain: proto.domain, modelVersion: proto.modelVersion, graphName: g.name,
            inputs: g.input.filter { !initNames.contains($0.name) }.map(Self.value),
            outputs: g.output.map(Self.value), nodeCount: g.node.count,
            ops: ops.map { OpCount(op: $0.op, domain: $0.domain, count: $0.count) },
            initializers: initializers, sparseInitializerCount: g.sparseInitializer.count,
            functionCount: proto.functions.count,
            metadata: proto.metadataProps.map { MetadataEntry(key: $0.key, value: $0.value) })
    }

    static func value(_ v: Onnx_ValueInfoProto) -> Value {
        guard v.hasType else { return Value(name: v.name, type: "unknown", shape: nil) }
        switch v.type.value {
        case .tensorType(let t):
            let shape =
                t.hasShape
                ? t.shape.dim.map { d -> Dim in
                    switch d.value {
                    case .dimValue(let x): return Dim(value: x, param: nil)
                    case .dimParam(let p): return Dim(value: nil, param: p)
                    case nil: return Dim(value: nil, param: nil)
                    }
                } : nil
            return Value(name: v.name, type: ONNXDataType.name(t.elemType), shape: shape)
        case .sequenceType: return Value(name: v.name, type: "sequence", shape: nil)
        case .mapType: return Value(name: v.name, type: "map", shape: nil)
        case .optionalType: return Value(name: v.name, type: "optional", shape: nil)
        case .sparseTensorType(let t):
            return Value(name: v.name, type: "sparse " + ONNXDataType.name(t.elemType), shape: nil)
        case .opaqueType: return Value(name: v.name, type: "opaque", shape: nil)
        case nil: return Value(name: v.name, type: "unknown", shape: nil)
        }
    }
}
