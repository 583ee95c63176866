/// What an ONNX model declares, for `qtools inspect` (text facts and, later, a `--json` section).
///
/// Data types use the onnx.proto names (`FLOAT`, `INT4`), as `onnx.TensorProto.DataType.Name`
/// prints them. Node counts cover the main graph only (not subgraphs of If/Loop attributes).
public struct ONNXModelSummary: Codable, Sendable, Equatable {
    /// `ModelProto.ir_version` (0 when absent).
    public var irVersion: Int64
    /// Operator sets imported (`""` is the default `ai.onnx` domain).
    public var opsets: [Opset]
    /// `producer_name`.
    public var producerName: String
    /// `producer_version`.
    public var producerVersion: String
    /// `ModelProto.domain`.
    public var domain: String
    /// `ModelProto.model_version`.
    public var modelVersion: Int64
    /// `GraphProto.name`.
    public var graphName: String
    /// Graph inputs that are not initializers.
    public var inputs: [Value]
    /// Graph outputs.
    public var outputs: [Value]
    /// Node count of the main graph.
    public var nodeCount: Int
    /// Operator histogram, most frequent first (ties by name).
    public var ops: [OpCount]
    /// Initializers in file order.
    public var initializers: [Initializer]
    /// Sparse initializers (listed, not read).
    public var sparseInitializerCount: Int
    /// Model-local functions.
    public var functionCount: Int
    /// `ModelProto.metadata_props`, in file order.
    public var metadata: [MetadataEntry]

    /// An imported operator set.
    public struct Opset: Codable, Sendable, Equatable {
        /// Domain (`""` = `ai.onnx`).
        public var domain: String
        /// Version.
        public var version: Int64
    }

    /// A graph input or output.
    public struct Value: Codable, Sendable, Equatable {
        /// Value name.
        public var name: String
        /// Element type name for tensors (`FLOAT`), else the type kind (`sequence`, `map`, ...).
        public var type: String
        /// Dimensions; nil when the shape is absent (unknown rank).
        public var shape: [Dim]?
    }

    /// One dimension: a number, a symbolic name (`batch`), or neither (unknown).
    public struct Dim: Codable, Sendable, Equatable, CustomStringConvertible {
        /// `dim_value`.
        public var value: Int64?
        /// `dim_param`.
        public var param: String?
        public var description: String { value.map { String($0) } ?? param ?? "?" }
    }

    /// Count of one operator.
    public struct OpCount: Codable, Sendable, Equatable {
        /// `op_type`.
        public var op: String
        /// Node domain (`""` = `ai.onnx`).
        public var domain: String
        /// Number of nodes.
        public var count: Int
    }

    /// One initializer as stored.
    public struct Initializer: Codable, Sendable, Equatable {
        /// Name.
        public var name: String
        /// onnx.proto data type name.
        public var dataType: String
        /// `dims`.
        public var shape: [Int]
        /// Payload bytes in the file (packed size for 4-/2-bit types).
        public var storedBytes: Int
        /// Field the values came from (`raw_data`, `float_data`, ..., `external`).
        public var storage: String
        /// External file, if any.
        public var location: String?
    }

    /// A `metadata_props` entry.
    public struct MetadataEntry: Codable, Sendable, Equatable {
        public var key: String
        public var value: String
    }

    /// Total stored initializer bytes.
    public var initializerBytes: Int { initializers.reduce(0) { $0 + $1.storedBytes } }

    /// Ordered facts for `inspect`'s text output.
    public var facts: [(key: String, value: String)] {
        var f: [(key: String, value: String)] = []
        f.append(("IR version", String(irVersion)))
        f.append(
            (
                "opsets",
                opsets.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain):\($0.version)" }.joined(
                    separator: ", ")
            ))
        let producer = [producerName, producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        if !producer.isEmpty { f.append(("producer", producer)) }
        if !domain.isEmpty { f.append(("model domain", domain)) }
        if modelVersion != 0 { f.append(("model version", String(modelVersion))) }
        f.append(("graph", graphName))
        for v in inputs { f.append(("input", Self.describe(v))) }
        for v in outputs { f.append(("output", Self.describe(v))) }
        f.append(("nodes", String(nodeCount)))
        f.append(
            (
                "ops",
                ops.map { "\($0.domain.isEmpty ? "" : $0.domain + ".")\($0.op) \($0.count)" }.joined(
                    separator: ", ")
            ))
        f.append(("initializers", String(initializers.count)))
        f.append(("initializer bytes", String(initializerBytes)))
        var byType: [(String, Int)] = []
        for i in initializers {
            if let k = byType.firstIndex(where: { $0.0 == i.dataType }) {
                byType[k].1 += 1
            } else {
                byType.append((i.dataType, 1))
            }
        }
        f.append(("initializer dtypes", byType.map { "\($0.0) \($0.1)" }.joined(separator: ", ")))
        let external = Set(initializers.compactMap(\.location)).sorted()
        if !external.isEmpty { f.append(("external data", external.joined(separator: ", "))) }
        if sparseInitializerCount > 0 {
            f.append(("sparse initializers (not read)", String(sparseInitializerCount)))
        }
        if functionCount > 0 { f.append(("functions", String(functionCount))) }
        for m in metadata { f.append(("metadata \(m.key)", m.value)) }
        return f
    }

    /// `x: FLOAT [batch, 3, 32, 32]`.
    static func describe(_ v: Value) -> String {
        "\(v.name): \(v.type)"
            + (v.shape.map { " [" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "")
    }
}
