import Engine

/// What went wrong in training, with the graph node or tensor it concerns.
public struct TrainError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Reason: Equatable, Sendable {
        /// An op, option or setting the trainer does not implement (yet).
        case unsupported(String)
        /// A batch, label or tensor that does not fit the model.
        case invalidInput(String)
        /// A NaN or infinity where training cannot go on (the loss, a gradient).
        case nonFinite(String)
        /// The engine rejected the graph or an input.
        case engine(InferenceError)
    }

    /// Why.
    public var reason: Reason
    /// The graph node, when the failure belongs to one.
    public var node: String?

    /// An error, optionally at `node`.
    public init(_ reason: Reason, node: String? = nil) {
        self.reason = reason
        self.node = node
    }

    public var description: String {
        let what: String
        switch reason {
        case .unsupported(let s): what = "not supported in training: \(s)"
        case .invalidInput(let s): what = "invalid input: \(s)"
        case .nonFinite(let s): what = "non-finite value: \(s)"
        case .engine(let e): return "\(e)"
        }
        return node.map { "node \"\($0)\": \(what)" } ?? what
    }
}
