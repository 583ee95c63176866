import Engine

/// One layer value on one side of a per-layer comparison: a value a run captured
/// (``CapturedValue``) or a file of a dump directory.
package struct LayerValue: @unchecked Sendable {
    /// The value's name (module path).
    package var name: String
    /// The op that computed it (`conv2d`, `quantize`, ...; empty when not known, e.g. a
    /// dump written by a PyTorch script without an index).
    package var op: String = ""
    /// The values it was computed from (for a quantize op: its input).
    package var inputs: [String] = []
    /// The module whose output it is, when the value is named otherwise (the classifier
    /// `fc` writes the value `logits`): a dump from PyTorch names it by module.
    package var module: String? = nil
    /// Its shape (nil: not known until loaded).
    package var shape: [Int]?
    /// Set when the engine fused this value away (no values exist).
    package var fusedInto: String? = nil
    /// The quantize op's function, when the value comes from a model in memory.
    package var quantizer: (any QuantizeFunction)? = nil
    /// Where it comes from, for error messages (a file path, or "A").
    package var source: String
    /// Its shape and values (read when compared).
    package var load: () throws -> (shape: [Int], values: [Float])

    package init(
        name: String, op: String = "", inputs: [String] = [], shape: [Int]? = nil, fusedInto: String? = nil,
        quantizer: (any QuantizeFunction)? = nil, source: String,
        load: @escaping () throws -> (shape: [Int], values: [Float])
    ) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.shape = shape
        self.fusedInto = fusedInto
        self.quantizer = quantizer
        self.source = source
        self.load = load
    }

    /// A captured value (its op, inputs and quantize function kept).
    package init(_ c: CapturedValue, source: String) {
        var q: (any QuantizeFunction)? = nil
        if case .quantize(let a) = c.op { q = a.function }
        let shape = c.shape, values = c.values ?? []
        self.init(
            name: c.name, op: c.op.typeName, inputs: c.inputs, shape: c.shape, fusedInto: c.fusedInto,
            quantizer: q, source: source, load: { (shape, values) })
    }
}

/// Two shapes for one layer (a per-layer comparison needs equal shapes).
package struct LayerShapeMismatch: Error, CustomStringConvertible {
    package var layer: String
    package var a: [Int], b: [Int]
    package var sourceA: String, sourceB: String
    package var description: String {
        "layer \(layer) has shape \(a) in \(sourceA) and \(b) in \(sourceB)"
    }
}

/// Per-layer comparison of two runs: every layer both sides hold, in A's execution order,
/// with its max |A - B|; the first layer above tolerance with the element that differs most.
///
/// A layer passes when max |A - B| <= tolerance * max(1, max |B|). For the first layer that
/// does not, ``first`` names the element; when that layer is a quantize op it adds the
/// quantizer's input at that element on both sides and, given the quantize function (models
/// in memory), the rounding boundary between the two inputs (``QuantizerBoundary``).
package struct LayerComparison: Sendable, Encodable {
    package struct Row: Sendable, Encodable, Equatable {
        package var name: String
        package var op: String
        package var shape: [Int]
        /// Max |A - B| and max |B| (nil when a side has no values: fused away).
        package var maxAbs: Float?
        package var peak: Float?
        /// `ok`, `differs`, `fused in A` or `fused in B`.
        package var status: String

        enum CodingKeys: String, CodingKey { case name, op, shape, maxAbs = "max_abs", peak, status }
    }

    /// The element of the first differing layer where |A - B| is largest.
    package struct Element: Sendable, Encodable, Equatable {
        package var layer: String
        package var op: String
        /// Flat (row-major) index and the same as a position in ``shape``.
        package var index: Int
        package var position: [Int]
        package var shape: [Int]
        package var a: Float, b: Float
        /// Elements of the layer above tolerance.
        package var count: Int
        /// For a quantize op: its input at the same element.
        package var input: InputElement?
        /// For a quantize op with its function known: where the level changes.
        package var boundary: QuantizerBoundary?
        /// What this means, in words.
        package var note: String

        enum CodingKeys: String, CodingKey {
            case layer, op, index, position, shape, a, b, count = "elements_above_tolerance", input, boundary, note
        }
    }

    package struct InputElement: Sendable, Encodable, Equatable {
        package var name: String
        package var a: Float, b: Float
        package var ulps: Int
    }

    package var rows: [Row]
    package var onlyInA: [String]
    package var onlyInB: [String]
    package var first: Element?
    package var tolerance: Double
    package var pass: Bool { first == nil }

    enum CodingKeys: String, CodingKey {
        case rows = "layers", onlyInA = "only_in_a", onlyInB = "only_in_b", first = "first_difference", tolerance, pass
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rows, forKey: .rows)
        try c.encode(onlyInA, forKey: .onlyInA)
        try c.encode(onlyInB, forKey: .onlyInB)
        try c.encode(first, forKey: .first)
        try c.encode(tolerance, forKey: .tolerance)
        try c.encode(pass, forKey: .pass)
    }

    /// Compares `a` and `b` layer by layer (see the type's summary).
    /// - Throws: ``LayerShapeMismatch``, or what loading a value throws (a missing file).
    package init(_ a: [LayerValue], _ b: [LayerValue], tolerance: Double) throws {
        self.tolerance = tolerance
        let inB = Dictionary(b.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let inA = Dictionary(a.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        // A's value for B's, by name or by module (`logits` is module `fc`), and back.
        func partner(_ v: LayerValue, in other: [String: LayerValue], _ all: [LayerValue]) -> LayerValue? {
            other[v.name] ?? v.module.flatMap { other[$0] } ?? all.first { $0.module == v.name }
        }
        onlyInA = a.filter { partner($0, in: inB, b) == nil }.map(\.name)
        onlyInB = b.filter { partner($0, in: inA, a) == nil }.map(\.name)
        rows = []
        first = nil
        for la in a {
            guard let lb = partner(la, in: inB, b) else { continue }
            let op = la.op.isEmpty ? lb.op : la.op
            if la.fusedInto != nil || lb.fusedInto != nil {
                rows.append(
                    Row(name: la.name, op: op, shape: la.shape ?? lb.shape ?? [], status: la.fusedInto != nil ? "fused in A" : "fused in B")
                )
                continue
            }
            let (sa, va) = try la.load()
            let (sb, vb) = try lb.load()
            guard sa == sb, va.count == vb.count else {
                throw LayerShapeMismatch(layer: la.name, a: sa, b: sb, sourceA: la.source, sourceB: lb.source)
            }
            var maxAbs: Float = 0, peak: Float = 0, at = 0
            for i in va.indices {
                let d = abs(va[i] - vb[i])
                if d > maxAbs || (d.isNaN && !maxAbs.isNaN) { maxAbs = d; at = i }
                peak = max(peak, abs(vb[i]))
            }
            let limit = Float(tolerance) * max(1, peak)
            let ok = maxAbs <= limit
            rows.append(Row(name: la.name, op: op, shape: sa, maxAbs: maxAbs, peak: peak, status: ok ? "ok" : "differs"))
            if !ok && first == nil {
                let count = zip(va, vb).reduce(0) { $0 + (abs($1.0 - $1.1) <= limit ? 0 : 1) }
                first = try Self.element(
                    la, lb, op: op, shape: sa, index: at, a: va[at], b: vb[at], count: count, inA: inA, inB: inB)
            }
        }
    }

    /// The report on element `index` of the first differing layer.
    private static func element(
        _ la: LayerValue, _ lb: LayerValue, op: String, shape: [Int], index: Int, a: Float, b: Float, count: Int,
        inA: [String: LayerValue], inB: [String: LayerValue]
    ) throws -> Element {
        var e = Element(
            layer: la.name, op: op, index: index, position: position(index, shape), shape: shape, a: a, b: b, count: count,
            input: nil, boundary: nil, note: "")
        guard op == "quantize" else {
            e.note = "the first layer above tolerance; its inputs agree within tolerance"
            return e
        }
        let inputName = (la.inputs.first ?? lb.inputs.first)
        guard let inputName, let ia = inA[inputName], let ib = inB[inputName], ia.fusedInto == nil, ib.fusedInto == nil else {
            e.note = "a quantizer; its input is not in both runs, so the input at this element is unknown"
            return e
        }
        let (sa, xa) = try ia.load()
        let (_, xb) = try ib.load()
        guard index < xa.count, index < xb.count else { return e }
        let input = InputElement(name: inputName, a: xa[index], b: xb[index], ulps: FloatOrder.ulps(xa[index], xb[index]))
        e.input = input
        if input.a == input.b {
            e.note = "a quantizer whose input is identical on both sides at this element: the quantizers differ"
            return e
        }
        if let f = la.quantizer ?? lb.quantizer {
            e.boundary = try QuantizerBoundary.locate(f, input: xa, shape: sa, index: index, other: input.b)
        }
        let rounding = input.ulps <= 1024
        let d = abs(input.a - input.b)
        if let bd = e.boundary {
            e.note =
                "a quantizer input \(d) (\(input.ulps) ulps) apart on the two sides, with a level boundary between "
                + "them (\(bd.ulpsA) ulps from A's input, \(bd.ulpsB) from B's)"
                + (rounding
                    ? ": an ill-conditioned input. Its level depends on float32 summation order, so any two correct engines may disagree here."
                    : ": the input differs by more than rounding, look at the layers before it.")
        } else if la.quantizer != nil || lb.quantizer != nil {
            e.note =
                "a quantizer whose input moves \(d) (\(input.ulps) ulps) without crossing a level boundary when only this element changes: the quantizers (or statistics over the whole tensor) differ"
        } else {
            e.note =
                "a quantizer input \(d) (\(input.ulps) ulps) apart on the two sides"
                + (rounding
                    ? ": rounding-level, so most likely an input within float32 rounding of a level boundary (compare the models with `verify A B --per-layer` to locate the boundary)"
                    : "")
        }
        return e
    }

    /// `index` as a position in row-major `shape`.
    static func position(_ index: Int, _ shape: [Int]) -> [Int] {
        var rest = index
        var p = [Int](repeating: 0, count: shape.count)
        for k in stride(from: shape.count - 1, through: 0, by: -1) where shape[k] > 0 {
            p[k] = rest % shape[k]
            rest /= shape[k]
        }
        return p
    }
}
