import Engine
import Tensors

/// Lowers the convolutions of a built model whose input is a uniform activation quantizer
/// (a ``Engine/QuantizeFunction`` with a ``Engine/QuantizeFunction/gridForm``: DoReFa, PACT,
/// LSQ; imported QCDQ/QONNX programs have no grid form yet, so their convs stay float) and
/// whose weight lies on a per-output-channel integer grid to the engine's
/// ``Engine/Op/integerConv(_:)``: int8 weights, int32 sums, one rescale.
///
/// The quantizer's levels are `y_k = alpha * (k - zero)`, `k = 0...maxIndex` (checked level by
/// level on the float values the quantizer outputs, identical in every channel); the weights
/// of output channel `o` are `unit[o] * q` with integers `|q| <= 127` (the weight quantizer
/// has already been applied to the constant; every weight is checked to be `q * unit` up to
/// float32 rounding). The conv of the quantized input is then
/// `unit[o] * alpha * (Σ k q - zero * Σ q) + bias[o]`, so the new node reads the quantizer's
/// index form (``LevelIndexFunction``, on the quantizer's *input*), with
/// `scale[o] = unit[o] * alpha` and `bias[o] - unit[o] * alpha * zero * Σ q`. The explicit
/// padding the builder places before the quantizer or after it (`--padding_after_quant`) or
/// the conv's own zero padding becomes the pad index: the index of the quantized pad value
/// before the quantizer, the level holding the pad value after it. The conv keeps its node
/// name and output value; quantize and pad nodes left without a reader and the float weight
/// are dropped. Anything else stays as it is, with the reason in ``Result/kept`` when the
/// input was a quantizer.
///
/// The lowered model computes the same levels: the index kernel runs the quantizer's own
/// float32 operations up to the rounding, and the integer sums are exact; only the float
/// rounding of the rescale differs from the float conv's summation. A NaN input reads as
/// index 0 (the float path propagates it).
package enum IntegerConvLowering {
    /// Convs with fewer input channels per group stay float (depthwise convs): the int8
    /// kernel packs 4 channels per 32-bit word, so it would multiply mostly zeros.
    static let minGroupChannels = 4

    /// What ``lower(_:)`` did.
    package struct Result: Sendable {
        /// The graph with the integer convs lowered.
        package var graph: Graph
        /// Conv nodes now running as `integerConv`, in graph order.
        package var lowered: [String]
        /// Conv nodes behind a quantizer that stay float, with the reason.
        package var kept: [(node: String, reason: String)]
    }

    /// A uniform quantizer's levels: level `k` in `0...maxIndex` holds `alpha * (k - zero)`.
    struct Levels {
        var indices: LevelIndexFunction
        var alpha: Double, zero: Double
        /// The float32 value of each level, as the quantizer outputs it.
        var values: [Float]

        /// The level holding exactly `v` (a pad value after the quantizer), if any.
        func level(of v: Float) -> Int? {
            values.firstIndex(of: v)
        }

        /// The index a pad value `v` before the quantizer quantizes to, if every channel agrees.
        func index(ofQuantized v: Float) -> Int? {
            let n = max(indices.form.divisor.count, 1)
            let k = (0..<n).map { indices.form.apply(v, channel: $0) }
            guard let first = k.first, k.allSatisfy({ $0 == first }), first.isFinite else { return nil }
            return Int(first)
        }
    }

    /// The levels of a quantizer with grid form `form` named `name`, or why there are none.
    static func levels(_ form: GridQuantization, name: String) -> Swift.Result<Levels, Reason> {
        let steps = form.steps
        func index(_ t: Float) -> Float { ((form.centered ? (t + 1) / 2 : t) * steps).rounded(.toNearestOrEven) }
        let (k0, k1) = (index(form.lo), index(form.hi))
        guard k0 == 0, k1 >= 1, k1 <= 255 else {
            return .failure(Reason("the levels \(k0)...\(k1) of \(name) are not indices 0...n (n <= 255)"))
        }
        let maxIndex = Int(k1)
        let channels = [form.divisor.count, form.scale.count, form.gain.count].max() ?? 1
        func value(_ k: Int, _ c: Int) -> Float {
            func at(_ a: [Float]) -> Float { a.count == 1 ? a[0] : a[c] }
            var t = Float(k) / steps
            if form.centered { t = t * 2 - 1 }
            return (t * at(form.scale)) * at(form.gain)
        }
        let values = (0...maxIndex).map { value($0, 0) }
        for c in 1..<max(channels, 1) where (0...maxIndex).contains(where: { value($0, c) != values[$0] }) {
            return .failure(Reason("\(name) has per-channel levels (channel \(c) differs from channel 0)"))
        }
        let alpha = (Double(values[maxIndex]) - Double(values[0])) / Double(maxIndex)
        guard alpha > 0, alpha.isFinite else { return .failure(Reason("\(name) has no positive level step")) }
        var zero = -Double(values[0]) / alpha
        if abs(zero - zero.rounded()) <= 1e-6 { zero = zero.rounded() }
        let magnitude = values.map { abs(Double($0)) }.max() ?? 0
        for (k, v) in values.enumerated() where abs(Double(v) - alpha * (Double(k) - zero)) > 4e-7 * magnitude {
            return .failure(Reason("the levels of \(name) are not evenly spaced (level \(k) = \(v))"))
        }
        return .success(
            Levels(indices: LevelIndexFunction(quantizer: name, form: form, maxIndex: maxIndex), alpha: alpha, zero: zero, values: values))
    }

    /// A weight tensor as `unit[o] * q` per output channel (`o` the first dimension).
    struct IntegerWeights {
        /// The integers, `|q| <= 127`, as floats, same shape.
        var q: [Float]
        /// The unit of each output channel.
        var unit: [Double]
        /// `Σ q` of each output channel.
        var sum: [Double]
    }

    /// `w` (`rows` output channels) as integers times a per-row unit, each weight within
    /// float32 rounding of `q * unit`, or why not.
    static func integerWeights(_ w: [Float], rows: Int) -> Swift.Result<IntegerWeights, Reason> {
        let per = w.count / max(rows, 1)
        var q = [Float](repeating: 0, count: w.count)
        var unit = [Double](repeating: 1, count: rows)
        var sum = [Double](repeating: 0, count: rows)
        for o in 0..<rows {
            let row = w[o * per..<(o + 1) * per].map(Double.init)
            let magnitude = row.map(abs).max() ?? 0
            guard magnitude.isFinite else { return .failure(Reason("weight row \(o) is not finite")) }
            guard let smallest = row.map(abs).filter({ $0 > 0 }).min() else { continue }
            // The smallest nonzero magnitude is a whole multiple of the unit: try 1, 1/2, ... of it.
            var found: (unit: Double, q: [Double])?
            for d in 1...16 {
                let guess = smallest / Double(d)
                let qs = row.map { ($0 / guess).rounded() }
                guard qs.allSatisfy({ abs($0) <= 127 }) else { break }
                // Least-squares unit for these integers, then every weight within float rounding.
                let u = zip(row, qs).reduce(0) { $0 + $1.0 * $1.1 } / qs.reduce(0) { $0 + $1 * $1 }
                // Float rounding at the grid's full scale (at most 127 units): a centred grid's
                // levels come out of `(2k/n - 1) * scale`, whose cancellation leaves errors of an
                // ulp of `scale` on the small levels (4-bit: -0.06666666 and +0.06666672 for -+1/15
                // in a row holding nothing else).
                let tolerance = 4e-7 * max(magnitude, 128 * abs(u))
                if zip(row, qs).allSatisfy({ abs($0 - $1 * u) <= tolerance }) {
                    found = (u, qs)
                    break
                }
            }
            guard let (u, qs) = found else {
                return .failure(Reason("weight row \(o) is not a multiple of one unit with integers |q| <= 127"))
            }
            unit[o] = u
            sum[o] = qs.reduce(0, +)
            for (i, v) in qs.enumerated() { q[o * per + i] = Float(v) }
        }
        return .success(IntegerWeights(q: q, unit: unit, sum: sum))
    }

    /// Why a conv stays float.
    struct Reason: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// Lowers every eligible conv of `graph` (see the type's summary).
    package static func lower(_ graph: Graph) -> Result {
        let consumers = graph.readCounts
        var replaced: [String: Graph.Node] = [:]
        var inserted: [String: [Graph.Node]] = [:]
        var constants: [String: Tensor] = [:]
        var indexValues: [String: String] = [:]  // quantize node and its index input -> index value
        var lowered: [String] = []
        var kept: [(node: String, reason: String)] = []
        for n in graph.nodes {
            guard case .conv2d(let a) = n.op, let source = graph.producer(of: n.inputs[0]),
                let found = site(of: a, source: source, graph: graph, consumers: consumers)
            else { continue }
            switch found.flatMap({ integerConv(n, a, site: $0, graph: graph) }) {
            case .failure(let reason):
                kept.append((n.name, reason.text))
            case .success(let (site, node, weights)):
                var node = node
                let key = "\(site.quantize.name)\u{0}\(site.indexInput)"
                if let v = indexValues[key] {
                    node.inputs[0] = v
                } else {
                    let v = "\(site.quantize.outputs[0]).levels.\(indexValues.count)"
                    let f = site.levels.indices
                    inserted[n.name, default: []].append(
                        Graph.Node(name: f.name, op: .quantize(QuantizeAttributes(f)), inputs: [site.indexInput], outputs: [v]))
                    indexValues[key] = v
                    node.inputs[0] = v
                }
                for (name, t) in weights { constants[name] = t }
                replaced[n.name] = node
                lowered.append(n.name)
            }
        }
        let g = BinaryConvLowering.rebuilt(graph, replacing: replaced, inserting: inserted, constants: constants)
        return Result(graph: g, lowered: lowered, kept: kept)
    }

    /// Where a conv reads a quantizer: the quantize node, its levels, the value the index form
    /// reads, the conv's padding and the padded positions' index.
    struct Site {
        var quantize: Graph.Node
        var levels: Levels
        var indexInput: String
        var padding: Padding2d
        var padIndex: Int
    }

    /// The quantizer layout of a conv (as ``BinaryConvLowering``: quantize -> pad -> conv,
    /// pad -> quantize -> conv, quantize -> conv); nil when its input is no quantizer.
    private static func site(
        of a: Conv2dAttributes, source: Graph.Node, graph: Graph, consumers: [String: Int]
    ) -> Swift.Result<Site, Reason>? {
        var quantize = source
        var padAfter: Pad2dAttributes?
        if case .pad(let p) = source.op, let q = graph.producer(of: source.inputs[0]), case .quantize = q.op {
            (quantize, padAfter) = (q, p)
        }
        guard case .quantize(let qa) = quantize.op else { return nil }
        guard let form = qa.function.gridForm else {
            return .failure(Reason("the quantizer \(quantize.name) (\(qa.method)) has no uniform grid form"))
        }
        let levels: Levels
        switch Self.levels(form, name: qa.name) {
        case .failure(let r): return .failure(r)
        case .success(let l): levels = l
        }
        var s = Site(quantize: quantize, levels: levels, indexInput: quantize.inputs[0], padding: a.padding, padIndex: 0)
        let padIndex: Int?
        if let p = padAfter {
            guard a.padding.isZero else { return .failure(Reason("padded both before the conv and in it")) }
            s.padding = p.padding
            padIndex = levels.level(of: p.value)
        } else if let p = graph.producer(of: quantize.inputs[0]), case .pad(let pa) = p.op, a.padding.isZero,
            consumers[quantize.inputs[0]] == 1
        {
            (s.indexInput, s.padding) = (p.inputs[0], pa.padding)
            padIndex = levels.index(ofQuantized: pa.value)
        } else {
            padIndex = a.padding.isZero ? 0 : levels.level(of: 0)
        }
        guard let padIndex else {
            return .failure(Reason("the pad value is not one level of \(quantize.name) in every channel"))
        }
        s.padIndex = padIndex
        return .success(s)
    }

    /// The integerConv node replacing conv `n` and its new constants, or why it stays float.
    private static func integerConv(
        _ n: Graph.Node, _ a: Conv2dAttributes, site s: Site, graph: Graph
    ) -> Swift.Result<(Site, Graph.Node, [(String, Tensor)]), Reason> {
        guard let w = graph.constants[n.inputs[1]] else { return .failure(Reason("the weight is computed")) }
        if w.shape.count == 4, w.shape[1] < minGroupChannels {
            return .failure(
                Reason("\(w.shape[1]) input channel\(w.shape[1] == 1 ? "" : "s") per group: the float depthwise kernel is faster"))
        }
        let bias = n.inputs.count > 2 ? graph.constants[n.inputs[2]]?.floats() : nil
        if n.inputs.count > 2 && bias == nil { return .failure(Reason("the bias is computed")) }
        let rows = w.shape.first ?? 0
        let iw: IntegerWeights
        switch integerWeights(w.floats(), rows: rows) {
        case .failure(let r): return .failure(Reason("weight \(n.inputs[1]): \(r.text)"))
        case .success(let x): iw = x
        }
        let alpha = s.levels.alpha, zero = s.levels.zero
        let scale = (0..<rows).map { Float(iw.unit[$0] * alpha) }
        let shift = (0..<rows).map { Float(Double(bias?[$0] ?? 0) - iw.unit[$0] * alpha * zero * iw.sum[$0]) }
        let names = (w: "\(n.name).integer_weight", s: "\(n.name).integer_scale", b: "\(n.name).integer_bias")
        let attributes = IntegerConvAttributes(
            Conv2dAttributes(stride: a.stride, padding: s.padding, dilation: a.dilation, groups: a.groups), padIndex: s.padIndex,
            maxIndex: s.levels.indices.maxIndex)
        let node = Graph.Node(
            name: n.name, op: .integerConv(attributes), inputs: [s.indexInput, names.w, names.s, names.b], outputs: n.outputs)
        return .success(
            (
                s, node,
                [
                    (names.w, Tensor(floats: iw.q, shape: w.shape)), (names.s, Tensor(floats: scale, shape: [rows])),
                    (names.b, Tensor(floats: shift, shape: [rows])),
                ]
            ))
    }
}
