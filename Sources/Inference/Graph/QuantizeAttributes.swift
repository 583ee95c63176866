import Tensors

/// Attributes of ``Op/quantize(_:)``: one bound QTool quantizer (fm or ot) in eval mode.
///
/// The op is the quantizer's own forward (`Quantizer.callAsFunction`, seed-reference §11),
/// so the fast path and the reference interpreter compute bit-identical values. Zero padding
/// is a separate ``Op/pad(_:)`` node placed before or after it, as `custom_conv` orders them
/// (§10.1).
///
/// An ONNX import has no QTool quantizer: it carries the element-wise program the exported
/// QuantizeLinear/Clip/DequantizeLinear (or Where, Round, ...) nodes compute instead.
public struct QuantizeAttributes: Sendable, Equatable {
    /// What computes the values.
    package enum Body: Sendable, Equatable {
        /// A bound QTool quantizer.
        case qtool(Quantizer)
        /// Imported ONNX element-wise nodes (named after the last one).
        case program(ElementwiseProgram)
    }

    package var body: Body

    /// Wraps a bound quantizer.
    package init(_ quantizer: Quantizer) { body = .qtool(quantizer) }

    /// Wraps an imported element-wise program.
    package init(program: ElementwiseProgram) { body = .program(program) }

    /// The QTool quantizer (nil for an imported program).
    package var quantizer: Quantizer? {
        if case .qtool(let q) = body { return q }
        return nil
    }

    /// The quantizer's module path, e.g. `layer1.0.conv1.0.quant_activation`.
    public var name: String {
        switch body {
        case .qtool(let q): return q.name
        case .program(let p): return p.name
        }
    }

    /// The method (`dorefa`, `lsq`, `lqnet`, `xnor`, ...; `onnx` for an imported program).
    public var method: String { quantizer.map { $0.config.method?.rawValue ?? "none" } ?? "onnx" }

    /// Number of output levels (2 for XNOR; 0 when unknown, for an imported program).
    public var levels: Int {
        guard let q = quantizer else { return 0 }
        return q.config.method == .xnor ? 2 : q.config.levels
    }

    /// Bits of the quantized value: `log2(levels)` (1 for binary, 1.58 for ternary).
    public var bits: Double { Double.log2(Double(max(levels, 2))) }

    /// `y = quantizer(x)` for `x` of `shape` (row-major).
    /// - Throws: ``InferenceError`` `.unsupported` when the quantizer rejects the shape.
    package func apply(_ x: [Float], shape: [Int]) throws(InferenceError) -> [Float] {
        do {
            switch body {
            case .qtool(let q): return try q(x, shape: shape)
            case .program(let p): return try p.run(x, shape: shape)
            }
        } catch {
            throw InferenceError(.unsupported("\(error)"))
        }
    }

    /// Checks at plan time that the quantizer accepts `shape`: a dry run on zeros of the same
    /// rank and channels with every other dimension 1 (per-channel parameters are what a
    /// quantizer checks; a full-size dry run would allocate an activation at plan time).
    func check(shape: [Int]) throws(InferenceError) {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }) else {
            throw InferenceError(.shapeMismatch("quantize input \(shape)"))
        }
        let probe = shape.indices.map { $0 == 1 ? shape[1] : 1 }
        _ = try apply([Float](repeating: 0, count: probe.reduce(1, *)), shape: probe)
    }
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
