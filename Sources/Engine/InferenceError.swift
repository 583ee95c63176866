/// The one error type of the engine (and of model building on it): what went wrong, and at which node or value.
///
/// Graph validation and planning fill in `node` (the node's name) and `value` (the value's
/// name) so the description reads `node "layer1.0.conv1": value "x": shape mismatch (...)`.
public struct InferenceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: Equatable, Sendable {
        /// A node reads a value that no node produces and that is neither an input nor a constant.
        case unknownValue(String)
        /// Two producers (nodes, inputs or constants) for one value name, or two nodes with one name.
        case duplicateName(String)
        /// The graph has a cycle through the named node.
        case cycle
        /// Wrong number of inputs or outputs for the op.
        case arity(what: String, expected: String, found: Int)
        /// An input has a shape the op cannot take.
        case shapeMismatch(String)
        /// An attribute value is out of range (zero stride, negative padding, ...).
        case invalidAttribute(String)
        /// A value the op needs as a constant (a weight) is computed at run time.
        case notConstant(String)
        /// A constant or input is not float32.
        case unsupportedDType(String)
        /// A graph input was not supplied, or was supplied with the wrong element count.
        case missingInput(String)
        /// Anything else the engine does not support.
        case unsupported(String)
        /// Model building: a state-dict tensor the architecture needs is absent (key, shape).
        case missingTensor(String, expected: [Int])
        /// Model building: a state-dict tensor has another shape than the architecture's (key).
        case tensorShape(String, expected: [Int], found: [Int])
        /// Model building: state-dict tensors the architecture does not own (keys).
        case unexpectedTensors([String])
        /// Model building: the config asks for something this builder cannot build.
        case unsupportedModel(String)
    }

    /// What went wrong.
    public var reason: Reason
    /// The node involved, by name.
    public var node: String?
    /// The value involved, by name.
    public var value: String?

    /// Creates an error with optional context.
    public init(_ reason: Reason, node: String? = nil, value: String? = nil) {
        self.reason = reason
        self.node = node
        self.value = value
    }

    public var description: String {
        var parts: [String] = []
        if let node { parts.append("node \"\(node)\"") }
        if let value { parts.append("value \"\(value)\"") }
        let what: String
        switch reason {
        case .unknownValue(let v): what = "unknown value \"\(v)\" (no producer, input or constant)"
        case .duplicateName(let v): what = "duplicate name \"\(v)\""
        case .cycle: what = "the graph has a cycle through this node"
        case .arity(let w, let e, let f): what = "expected \(e) \(w), found \(f)"
        case .shapeMismatch(let s): what = "shape mismatch: \(s)"
        case .invalidAttribute(let s): what = "invalid attribute: \(s)"
        case .notConstant(let v): what = "\"\(v)\" must be a constant (weight)"
        case .unsupportedDType(let s): what = "unsupported dtype: \(s)"
        case .missingInput(let s): what = "missing input: \(s)"
        case .unsupported(let s): what = "unsupported: \(s)"
        case .missingTensor(let k, let e):
            what = "missing tensor '\(k)' (expected shape \(e)) in the state dict"
        case .tensorShape(let k, let e, let f):
            what = "tensor '\(k)' has shape \(f), the model expects \(e)"
        case .unexpectedTensors(let ks):
            let shown = ks.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
            what =
                "\(ks.count) unexpected tensor\(ks.count == 1 ? "" : "s") in the state dict: \(shown)"
                + (ks.count > 8 ? ", ..." : "")
        case .unsupportedModel(let s): what = "cannot build the model: \(s)"
        }
        parts.append(what)
        return parts.joined(separator: ": ")
    }

    /// The same error with `node` filled in when it was not set.
    package func at(node name: String) -> InferenceError {
        var e = self
        if e.node == nil { e.node = name }
        return e
    }
}
