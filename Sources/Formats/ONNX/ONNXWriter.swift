import SwiftProtobuf
import Tensors

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Serializes a `ModelProto` (swift-protobuf writes fields in ascending number order, as the
/// official serializer does, so the file starts with `08 <ir_version>`).
package enum ONNXWriter {
    /// The model's protobuf bytes.
    ///
    /// - Throws: ``FormatError`` `.tooLarge` at protobuf's 2 GiB limit (the size reported is the
    ///   limit: swift-protobuf does not say by how much it was exceeded).
    package static func serialize(_ model: Onnx_ModelProto) throws(FormatError) -> [UInt8] {
        do { return try model.serializedBytes() } catch BinaryEncodingError.missingRequiredFields {
            // onnx.proto has no required fields: swift-protobuf reports its 2 GiB limit this way.
            throw FormatError(
                .tooLarge(
                    what: "ONNX protobuf (store initializers as external data)",
                    size: Int(Int32.max), limit: ONNXReader.sizeLimit))
        } catch {
            throw FormatError(.invalid("cannot serialize the ONNX model: \(error)"))
        }
    }

    /// Writes the model to `sink` (commit an ``OutputFile`` afterwards).
    package static func write(_ model: Onnx_ModelProto, to sink: ByteSink) throws {
        try sink.write(serialize(model))
    }
}

/// Small builders for the messages an exporter writes (formats.md §C.1).
package enum ONNXBuild {
    /// A dimension of a graph input/output: fixed or symbolic (`batch`).
    package enum Dim: Sendable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
        case value(Int64)
        case param(String)
        package init(integerLiteral v: Int64) { self = .value(v) }
        package init(stringLiteral s: String) { self = .param(s) }
    }

    /// A node attribute (its `type` is always set, as the checker requires).
    package enum Attribute: Sendable {
        case int(String, Int64)
        case float(String, Float)
        case string(String, String)
        case ints(String, [Int64])
        case floats(String, [Float])
        case tensor(String, Onnx_TensorProto)
    }

    /// An initializer holding `tensor` in `raw_data` (little-endian, as ``Tensor`` stores it).
    package static func tensor(_ name: String, _ tensor: Tensor) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = ONNXDataType.code(for: tensor.dtype)
        t.dims = tensor.shape.map { Int64($0) }
        t.rawData = Data(tensor.data.toArray())
        return t
    }

    /// A graph input/output of tensor type; a shape is always written (`full_check` needs one).
    package static func value(_ name: String, _ dtype: DType, _ dims: [Dim]) -> Onnx_ValueInfoProto {
        var t = Onnx_TypeProto.Tensor()
        t.elemType = ONNXDataType.code(for: dtype)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { d in
            var x = Onnx_TensorShapeProto.Dimension()
            switch d {
            case .value(let v): x.dimValue = v
            case .param(let p): x.dimParam = p
            }
            return x
        }
        t.shape = shape
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type.tensorType = t
        return v
    }

    /// A node; `domain` empty means `ai.onnx`.
    package static func node(
        _ op: String, inputs: [String], outputs: [String], name: String = "", domain: String = "",
        attributes: [Attribute] = []
    ) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name
        if !domain.isEmpty { n.domain = domain }
        n.attribute = attributes.map(attribute)
        return n
    }

    /// One attribute.
    package static func attribute(_ a: Attribute) -> Onnx_AttributeProto {
        var p = Onnx_AttributeProto()
        switch a {
        case .int(let n, let v): (p.name, p.type, p.i) = (n, .int, v)
        case .float(let n, let v): (p.name, p.type, p.f) = (n, .float, v)
        case .string(let n, let v): (p.name, p.type, p.s) = (n, .string, Data(v.utf8))
        case .ints(let n, let v): (p.name, p.type, p.ints) = (n, .ints, v)
        case .floats(let n, let v): (p.name, p.type, p.floats) = (n, .floats, v)
        case .tensor(let n, let v): (p.name, p.type, p.t) = (n, .tensor, v)
        }
        return p
    }

    /// A model around one graph, with its opset imports (`""` = `ai.onnx`) and metadata.
    package static func model(
        graph name: String, nodes: [Onnx_NodeProto], initializers: [Onnx_TensorProto],
        inputs: [Onnx_ValueInfoProto], outputs: [Onnx_ValueInfoProto], irVersion: Int64,
        opsets: [(domain: String, version: Int64)], producer: String = "qtools",
        producerVersion: String = "", metadata: [(key: String, value: String)] = []
    ) -> Onnx_ModelProto {
        var g = Onnx_GraphProto()
        g.name = name
        g.node = nodes
        g.initializer = initializers
        g.input = inputs
        g.output = outputs
        var m = Onnx_ModelProto()
        m.irVersion = irVersion
        m.producerName = producer
        if !producerVersion.isEmpty { m.producerVersion = producerVersion }
        m.opsetImport = opsets.map { o in
            var s = Onnx_OperatorSetIdProto()
            s.domain = o.domain
            s.version = o.version
            return s
        }
        m.metadataProps = metadata.map { e in
            var s = Onnx_StringStringEntryProto()
            s.key = e.key
            s.value = e.value
            return s
        }
        m.graph = g
        return m
    }
}
