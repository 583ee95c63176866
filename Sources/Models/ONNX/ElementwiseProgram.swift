import Engine

/// A chain of imported ONNX element-wise nodes with one runtime input `x` (NCHW): how qtools
/// runs the QuantizeLinear → Clip → DequantizeLinear, Where/GreaterOrEqual, Round/Clip/Sum,
/// Mul/Add ... nodes of a quantized export without an engine op per ONNX op.
///
/// Constants are scalars or per-channel (axis 1) vectors. Every register holds a float;
/// integer tensors (QuantizeLinear's output) hold their integer values, booleans 0 / 1.
package struct ElementwiseProgram: Sendable, Equatable {
    /// A scalar (one value) or per-channel constant.
    package typealias Constant = [Float]

    /// One instruction; operands are register indices (0 is the input).
    package enum Step: Sendable, Equatable {
        case input
        case constant(Constant)
        /// Round (half to even), Ceil, Floor, RoundAwayFromZero, RoundTowardZero,
        /// RoundHalfAwayFromZero, Abs, Neg, Identity, Relu, Cast (to a float type).
        case unary(String, Int)
        /// Add, Sub, Mul, Div, Greater, GreaterOrEqual, Less, LessOrEqual, Equal, Max, Min.
        case binary(String, Int, Int)
        case select(Int, Int, Int)
        case clip(Int, lo: Int?, hi: Int?)
        /// `clamp(round(x / scale) + zp, lo, hi)` (the type's range).
        case quantize(Int, scale: Int, zeroPoint: Int?, lo: Float, hi: Float)
        /// `(q − zp) · scale`.
        case dequantize(Int, scale: Int, zeroPoint: Int?)
        /// Cast to an integer type: truncation, clamped to `lo...hi`.
        case castInteger(Int, lo: Float, hi: Float)
        case sum([Int])
    }

    /// The last node's name (errors, profiles).
    package var name: String
    /// Instructions; register i is step i's result.
    package var steps: [Step] = [.input]
    /// The output register.
    package var output = 0

    package init(name: String) { self.name = name }

    /// Appends a step; returns its register.
    package mutating func add(_ s: Step) -> Int {
        steps.append(s)
        return steps.count - 1
    }

    /// Runs the program on NCHW `x`.
    package func run(_ x: [Float], shape: [Int]) throws(InferenceError) -> [Float] {
        let channels = shape.count > 1 ? shape[1] : 1
        let plane = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        for case .constant(let c) in steps where c.count != 1 && c.count != channels {
            throw InferenceError(.shapeMismatch("a constant of \(c.count) values does not broadcast over \(channels) channels"), node: name)
        }
        var r = [Float](repeating: 0, count: steps.count)
        var y = [Float](repeating: 0, count: x.count)
        for i in x.indices {
            let ch = (i / plane) % channels
            for (k, s) in steps.enumerated() {
                switch s {
                case .input: r[k] = x[i]
                case .constant(let c): r[k] = c.count == 1 ? c[0] : c[ch]
                case .unary(let op, let a):
                    r[k] = Self.unary(op, r[a])
                case .binary(let op, let a, let b):
                    let (u, v) = (r[a], r[b])
                    switch op {
                    case "Add": r[k] = u + v
                    case "Sub": r[k] = u - v
                    case "Mul": r[k] = u * v
                    case "Div": r[k] = u / v
                    case "Greater": r[k] = u > v ? 1 : 0
                    case "GreaterOrEqual": r[k] = u >= v ? 1 : 0
                    case "Less": r[k] = u < v ? 1 : 0
                    case "LessOrEqual": r[k] = u <= v ? 1 : 0
                    case "Equal": r[k] = u == v ? 1 : 0
                    case "Max": r[k] = max(u, v)
                    default: r[k] = min(u, v)
                    }
                case .select(let c, let a, let b): r[k] = r[c] != 0 ? r[a] : r[b]
                case .clip(let a, let lo, let hi):
                    var v = r[a]
                    if let lo, v < r[lo] { v = r[lo] }
                    if let hi, v > r[hi] { v = r[hi] }
                    r[k] = v
                case .quantize(let a, let s, let z, let lo, let hi):
                    let q = (r[a] / r[s]).rounded(.toNearestOrEven) + (z.map { r[$0] } ?? 0)
                    r[k] = q.isNaN ? 0 : min(max(q, lo), hi)
                case .dequantize(let a, let s, let z):
                    r[k] = (r[a] - (z.map { r[$0] } ?? 0)) * r[s]
                case .castInteger(let a, let lo, let hi):
                    let v = r[a].rounded(.towardZero)
                    r[k] = v.isNaN ? 0 : min(max(v, lo), hi)
                case .sum(let regs):
                    var t: Float = 0
                    for (j, g) in regs.enumerated() { t = j == 0 ? r[g] : t + r[g] }
                    r[k] = t
                }
            }
            y[i] = r[output]
        }
        return y
    }

    /// One unary step (see ``Step/unary(_:_:)``); an unknown name is the identity.
    static func unary(_ op: String, _ v: Float) -> Float {
        switch op {
        case "Round": return v.rounded(.toNearestOrEven)
        case "Ceil": return v.rounded(.up)
        case "Floor": return v.rounded(.down)
        case "RoundAwayFromZero": return v.rounded(.awayFromZero)
        case "RoundTowardZero": return v.rounded(.towardZero)
        case "RoundHalfAwayFromZero": return v.rounded(.toNearestOrAwayFromZero)
        case "Abs": return abs(v)
        case "Neg": return -v
        case "Relu": return v.isNaN ? v : max(v, 0)
        default: return v
        }
    }
}
