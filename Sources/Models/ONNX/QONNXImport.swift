import Engine
import Formats

/// QONNX `Quant` (also `IntQuant`) and `BipolarQuant` nodes read back by the ONNX import,
/// computed as qonnx's reference implementation does (`custom_op/general/quant.py`,
/// `bipolar_quant.py`), in float32:
///
/// ```
/// Quant:         t = x / scale + zeropt;  t = clip(t, minInt, maxInt);  t = round(t);  y = (t − zeropt)·scale
///                (signed 1-bit: t = t >= 0 ? 1 : −1 instead of clip and round)
/// BipolarQuant:  y = (x >= 0 ? 1 : −1)·scale
/// ```
/// Weights (all inputs initializers) are folded into float constants; activations become
/// steps of the ``ElementwiseProgram`` their run of element-wise nodes forms.
struct QONNXQuantNode {
    /// Domains whose Quant/BipolarQuant nodes are read (`onnx.brevitas`: Brevitas' export).
    static let domains: Set<String> = ["qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas"]
    static let ops: Set<String> = ["Quant", "IntQuant", "BipolarQuant"]

    static func isQONNX(_ n: Onnx_NodeProto) -> Bool { domains.contains(n.domain) && ops.contains(n.opType) }

    enum Kind {
        case bipolar
        /// Signed 1-bit Quant: the sign of `x / scale + zeropt`.
        case signedOneBit
        case integer(minInt: Float, maxInt: Float, rounding: String)
    }

    var kind: Kind

    /// Rounding modes (qonnx `resolve_rounding_mode` and the IntQuant table) → program ops.
    static let roundings = [
        "ROUND": "Round", "CEIL": "Ceil", "FLOOR": "Floor", "UP": "RoundAwayFromZero", "DOWN": "RoundTowardZero",
        "HALF_UP": "RoundHalfAwayFromZero",
    ]

    /// Reads the attributes and the constant bit-width; the error text says what is wrong.
    init(_ n: Onnx_NodeProto, bitwidth: [Float]?) throws(QONNXImportError) {
        if n.opType == "BipolarQuant" {
            kind = .bipolar
            return
        }
        func int(_ key: String, _ d: Int) -> Int { n.attribute.first { $0.name == key }.map { Int($0.i) } ?? d }
        let signed = int("signed", 1) != 0, narrow = int("narrow", 0) != 0
        let mode =
            n.attribute.first { $0.name == "rounding_mode" }
            .map { String(decoding: $0.s, as: UTF8.self) } ?? "ROUND"
        guard let rounding = Self.roundings[mode.uppercased()] else {
            throw QONNXImportError("rounding_mode \(mode) (qtools reads ROUND, CEIL, FLOOR, UP, DOWN, HALF_UP)")
        }
        guard let b = bitwidth, b.count == 1, b[0] >= 1, b[0] <= 24, b[0] == b[0].rounded() else {
            throw QONNXImportError("bitwidth must be a constant integer scalar in 1...24")
        }
        let bits = Int(b[0])
        if bits == 1 && signed {
            kind = .signedOneBit
            return
        }
        let lo = signed ? -(1 << (bits - 1)) + (narrow ? 1 : 0) : 0
        let hi = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1 - (narrow ? 1 : 0)
        kind = .integer(minInt: Float(lo), maxInt: Float(hi), rounding: rounding)
    }

    /// `y` of an element with scale `s` and zero point `z`.
    func value(_ x: Float, scale s: Float, zeroPoint z: Float) -> Float {
        switch kind {
        case .bipolar:
            return (x >= 0 ? 1 : -1) * s
        case .signedOneBit:
            return ((x / s + z >= 0 ? 1 : -1) - z) * s
        case .integer(let lo, let hi, let rounding):
            var t = x / s + z
            if t > hi { t = hi }
            if t < lo { t = lo }
            return (ElementwiseProgram.unary(rounding, t) - z) * s
        }
    }

    /// Folds a Quant of constants: `x`, `scale` and `zeropt` broadcast as numpy does.
    func fold(
        _ x: (values: [Float], shape: [Int]), scale: (values: [Float], shape: [Int]),
        zeroPoint: (values: [Float], shape: [Int])
    ) throws(QONNXImportError) -> [Float] {
        let si = try Broadcast(scale.shape, to: x.shape), zi = try Broadcast(zeroPoint.shape, to: x.shape)
        return x.values.indices.map { i in
            value(x.values[i], scale: scale.values[si.index(i)], zeroPoint: zeroPoint.values[zi.index(i)])
        }
    }

    /// Appends the node's steps on register `x`; returns the output register.
    func append(to p: inout ElementwiseProgram, x: Int, scale s: Int, zeroPoint z: Int?) -> Int {
        let zero = p.add(.constant([0]))
        let z = z ?? zero
        func sign(_ v: Int) -> Int {
            let ge = p.add(.binary("GreaterOrEqual", v, zero))
            let plus = p.add(.constant([1])), minus = p.add(.constant([-1]))
            return p.add(.select(ge, plus, minus))
        }
        func shifted(_ v: Int) -> Int { p.add(.binary("Add", p.add(.binary("Div", v, s)), z)) }
        let t: Int
        switch kind {
        case .bipolar:
            return p.add(.binary("Mul", sign(x), s))
        case .signedOneBit:
            t = sign(shifted(x))
        case .integer(let lo, let hi, let rounding):
            let shiftedX = shifted(x)
            let (l, h) = (p.add(.constant([lo])), p.add(.constant([hi])))
            t = p.add(.unary(rounding, p.add(.clip(shiftedX, lo: l, hi: h))))
        }
        let centred = p.add(.binary("Sub", t, z))
        return p.add(.binary("Mul", centred, s))
    }
}

/// Why a QONNX node cannot be read (the importer adds the node's name and op type).
struct QONNXImportError: Error {
    var text: String
    init(_ text: String) { self.text = text }
}

/// Numpy broadcasting of an operand of shape `shape` against a row-major result of shape `target`.
struct Broadcast {
    /// Per result axis: the operand's stride (0 where the operand has size 1 or no axis).
    private var strides: [Int]
    private var target: [Int]

    init(_ shape: [Int], to target: [Int]) throws(QONNXImportError) {
        guard shape.count <= target.count else {
            throw QONNXImportError("shape \(shape) does not broadcast against \(target)")
        }
        let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
        var strides = [Int](repeating: 0, count: target.count)
        var s = 1
        for a in padded.indices.reversed() {
            guard padded[a] == 1 || padded[a] == target[a] else {
                throw QONNXImportError("shape \(shape) does not broadcast against \(target)")
            }
            strides[a] = padded[a] == 1 ? 0 : s
            s *= padded[a]
        }
        self.strides = strides
        self.target = target
    }

    /// The operand's flat index for the result's flat index `i`.
    func index(_ i: Int) -> Int {
        var rest = i, k = 0
        for a in target.indices.reversed() {
            k += (rest % target[a]) * strides[a]
            rest /= target[a]
        }
        return k
    }
}
