import Engine

/// Why a quantizer could not be configured, bound to its checkpoint tensors, or applied.
///
/// `quantizer` names the module (`layer1.0.conv1.0.quant_weight`) once it is known, so a
/// message reads `layer1.0.conv1.0.quant_weight: missing tensor 'clip_val' (expected [8,1,1,1])`.
package struct QuantizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The category of failure.
    package enum Reason: Equatable, Sendable {
        /// A tensor the method needs is absent from the state dict (full key, expected shape).
        case missingTensor(String, expected: [Int])
        /// A tensor is present with another shape (full key).
        case shapeMismatch(String, expected: [Int], found: [Int])
        /// A tensor is present but not a real floating-point / integer tensor (full key, dtype).
        case badDType(String, found: String)
        /// The keyword/option combination is one QTool rejects or crashes on (message says which).
        case unsupported(String)
        /// The tensor handed to the forward does not have the shape this quantizer accepts.
        case inputShape(String)
    }

    /// The category of failure.
    package var reason: Reason
    /// The quantizer module path, when known.
    package var quantizer: String?

    /// Creates an error.
    package init(_ reason: Reason, quantizer: String? = nil) {
        self.reason = reason
        self.quantizer = quantizer
    }

    package var description: String {
        let text: String
        switch reason {
        case .missingTensor(let key, let shape):
            text = "missing tensor '\(key)' (expected \(Self.dims(shape)))"
        case .shapeMismatch(let key, let expected, let found):
            text = "tensor '\(key)' has shape \(Self.dims(found)), expected \(Self.dims(expected))"
        case .badDType(let key, let found):
            text = "tensor '\(key)' has dtype \(found), expected a real number type"
        case .unsupported(let message):
            text = message
        case .inputShape(let message):
            text = message
        }
        return quantizer.map { "\($0): \(text)" } ?? text
    }

    static func dims(_ d: [Int]) -> String { "[" + d.map(String.init).joined(separator: ",") + "]" }

    /// The same error with `quantizer` filled in when it was not yet set.
    func located(_ name: String) -> QuantizerError {
        var copy = self
        if copy.quantizer == nil { copy.quantizer = name }
        return copy
    }
}
