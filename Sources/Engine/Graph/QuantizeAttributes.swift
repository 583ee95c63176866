/// A quantization function the engine runs as ``Op/quantize(_:)``: `y = f(x)` over a whole
/// `[N, C, H, W]` tensor, same shape.
///
/// The engine knows nothing of quantization methods: the model layer supplies the function
/// (a bound QTool quantizer in eval mode, or the element-wise program of imported ONNX
/// QuantizeLinear/Clip/DequantizeLinear nodes) and the engine calls it. A function may need
/// per-sample or per-channel statistics (XNOR's channel mean, LQ-Nets' adaptive scale), which
/// is why it sees the whole tensor and its shape. The fast path and the reference interpreter
/// call the same function, so they agree bit for bit.
public protocol QuantizeFunction: Sendable {
    /// The function's name, e.g. the module path `layer1.0.conv1.0.quant_activation`.
    var name: String { get }
    /// What computes it (`dorefa`, `lsq`, `xnor`, ...; `onnx` for an imported program).
    var method: String { get }
    /// Number of output levels (2 for binary, 3 for ternary; 0 when unknown).
    var levels: Int { get }
    /// `y = f(x)` for `x` of `shape` (row-major, same count).
    func apply(_ x: [Float], shape: [Int]) throws -> [Float]
    /// ``apply(_:shape:)`` on up to `threads` threads (by default on one: the same call).
    func apply(_ x: [Float], shape: [Int], threads: Int) throws -> [Float]
    /// The function as an element-wise per-channel grid, when it is one (see
    /// ``GridQuantization``; nil by default): the engine then runs it as a fused kernel.
    var gridForm: GridQuantization? { get }
    /// Value equality with another function (same type and same parameters).
    func isEqual(to other: any QuantizeFunction) -> Bool
}

extension QuantizeFunction {
    public func apply(_ x: [Float], shape: [Int], threads: Int) throws -> [Float] { try apply(x, shape: shape) }
}

extension QuantizeFunction where Self: Equatable {
    public func isEqual(to other: any QuantizeFunction) -> Bool {
        (other as? Self).map { $0 == self } ?? false
    }
}

/// Attributes of ``Op/quantize(_:)``: the ``QuantizeFunction`` it applies.
///
/// Zero padding is a separate ``Op/pad(_:)`` node placed before or after it, so a model can
/// pad before or after quantization.
public struct QuantizeAttributes: Sendable, Equatable {
    /// The function.
    public var function: any QuantizeFunction

    /// Wraps `function`.
    public init(_ function: any QuantizeFunction) { self.function = function }

    /// The function's name.
    public var name: String { function.name }

    /// The method (see ``QuantizeFunction/method``).
    public var method: String { function.method }

    /// Number of output levels (0 when unknown).
    public var levels: Int { function.levels }

    /// Bits of the quantized value: `log2(levels)` (1 for binary, 1.58 for ternary).
    public var bits: Double { Double.log2(Double(max(levels, 2))) }

    /// `y = function(x)` for `x` of `shape` (row-major).
    /// - Throws: ``InferenceError`` `.unsupported` when the function rejects the shape.
    package func apply(_ x: [Float], shape: [Int], threads: Int = 1) throws(InferenceError) -> [Float] {
        do {
            return try function.apply(x, shape: shape, threads: threads)
        } catch {
            throw InferenceError(.unsupported("\(error)"))
        }
    }

    /// Checks at plan time that the function accepts `shape`: a dry run on zeros, of the whole
    /// shape up to 4M elements (a weight quantizer checks its groups along every dimension),
    /// else of the same rank and channels with every other dimension 1 (per-channel parameters
    /// are what an activation function checks; a full-size dry run of a large activation
    /// would allocate it at plan time).
    func check(shape: [Int]) throws(InferenceError) {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }) else {
            throw InferenceError(.shapeMismatch("quantize input \(shape)"))
        }
        let small =
            shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue } <= 1 << 22
            && !shape.contains { $0 > 1 << 22 }
        let probe = small ? shape : shape.indices.map { $0 == 1 ? shape[1] : 1 }
        _ = try apply([Float](repeating: 0, count: probe.reduce(1, *)), shape: probe)
    }

    public static func == (a: Self, b: Self) -> Bool { a.function.isEqual(to: b.function) }
}

extension Double {
    fileprivate static func log2(_ x: Double) -> Double {
        var v = x
        var e = 0.0
        while v >= 2 { v /= 2; e += 1 }
        // log2 of the remaining mantissa in [1, 2) by a short series: ln(v) / ln(2).
        let t = (v - 1) / (v + 1)
        var term = t, sum = 0.0, k = 1.0
        for _ in 0..<20 { sum += term / k; term *= t * t; k += 2 }
        return e + 2 * sum / 0.6931471805599453
    }
}
