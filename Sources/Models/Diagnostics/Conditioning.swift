import Engine
import Tensors

/// How well float32 arithmetic determines a quantized model's output on one input.
///
/// A low-bit network is a step function: a quantizer input within a few float32 ulps of a
/// level boundary lands on either side depending on the order in which the engine sums
/// (PyTorch, onnxruntime at its different optimisation levels and qtools all sum in different
/// orders), and one such element can move the logits by O(1). ``probe(_:inputs:ulps:threads:)``
/// finds those elements in a normal (fast-engine) run; ``flip(_:inputs:at:threads:)`` reruns
/// the model with one of them on its other level, so the logit change it can cause is measured
/// rather than guessed. `qtools run --conditioning` prints both.
package enum Conditioning {
    /// One quantizer input that float32 rounding can put on another level.
    package struct NearBoundary: Sendable, Encodable, Equatable {
        /// The quantize node's output value (the module path, e.g.
        /// `layer1.0.conv1.0.quant_activation`) and the node.
        package var value: String
        package var node: String
        /// The element (multi-index into the quantizer input's shape) and its flat index.
        package var index: [Int]
        package var flatIndex: Int
        /// The element's input, the level the run gave it and the level across the boundary.
        package var input: Float
        package var level: Float
        package var otherLevel: Float
        /// The float32 steps from the input to the first value with the other level.
        package var ulps: Int
        /// Largest |change| of any graph output when this element alone takes `otherLevel`
        /// (set by ``measure(_:inputs:near:threads:)``).
        package var outputChange: Float? = nil

        enum CodingKeys: String, CodingKey {
            case value, node, index, flatIndex = "flat_index", input, level, otherLevel = "other_level", ulps
            case outputChange = "output_change"
        }
    }

    /// Every non-constant quantizer input element within `ulps` float32 steps of a level
    /// boundary in the fast engine's run of `graph` on `inputs`, closest first.
    ///
    /// The band around an element `x` is `ulps` steps of `max(|x|, mean |input|)`: rounding
    /// in a sum scales with its terms, so an element near zero of a tensor of ones is as
    /// uncertain as the ones are. Exact zeros (padding, ReLU) are exact in every engine and
    /// are skipped. Functions with whole-tensor statistics see the whole tensor move by the
    /// band, a slight overestimate of a single element's uncertainty.
    ///
    /// Each element the band moves is located by re-applying the function to the whole tensor
    /// (a bisection over its ulps), so at most `perQuantizer` of them are located per quantize
    /// node, in index order: for a function with per-channel statistics (XNOR's `fm_custom
    /// channel` mean |x|) the band moves nearly every element, and locating them all is
    /// quadratic in the tensor's size (minutes for one ResNet-20 batch).
    package static func probe(
        _ graph: Graph, inputs: [String: Tensor], ulps: Int = 16, threads: Int = 2, perQuantizer: Int = 256
    ) throws -> [NearBoundary] {
        precondition(ulps >= 1)
        let captured = try ValueCapture.fast(graph, inputs: inputs, threads: threads)
        var valueOf: [String: [Float]] = [:]
        for (name, t) in inputs { valueOf[name] = t.floats() }
        for c in captured { if let v = c.values { valueOf[c.name] = v } }
        let nodes = Dictionary(graph.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var found: [NearBoundary] = []
        for c in captured {
            guard case .quantize(let q) = c.op, let node = nodes[c.node], graph.constants[node.inputs[0]] == nil,
                let x = valueOf[node.inputs[0]], let y = c.values, x.count == y.count
            else { continue }
            let f = q.function
            let meanAbs = x.reduce(Float(0)) { $0 + abs($1) } / Float(max(x.count, 1))
            let band = x.map { $0 == 0 ? 0 : Float(ulps) * max(abs($0), meanAbs).ulp }
            let below = try f.apply(zip(x, band).map { $0 - $1 }, shape: c.shape)
            let above = try f.apply(zip(x, band).map { $0 + $1 }, shape: c.shape)
            let moved = x.indices.lazy.filter { band[$0] > 0 && (below[$0] != y[$0] || above[$0] != y[$0]) }
            for i in moved.prefix(perQuantizer) {
                let towards = below[i] != y[i] ? x[i] - band[i] : x[i] + band[i]
                guard let b = try QuantizerBoundary.locate(f, input: x, shape: c.shape, index: i, other: towards) else {
                    continue  // moved only through the tensor's statistics, not its own input
                }
                let other = try level(f, x, c.shape, i, b.firstOnBSide)
                found.append(
                    NearBoundary(
                        value: c.name, node: c.node, index: multiIndex(i, c.shape), flatIndex: i, input: x[i],
                        level: y[i], otherLevel: other, ulps: b.ulpsA))
            }
        }
        return found.sorted { ($0.ulps, $0.value, $0.flatIndex) < ($1.ulps, $1.value, $1.flatIndex) }
    }

    /// The graph outputs of a fast-engine run in which each element of `flips` takes its
    /// ``NearBoundary/otherLevel`` (every other element as in a normal run).
    package static func flip(
        _ graph: Graph, inputs: [String: Tensor], at flips: [NearBoundary], threads: Int = 2
    ) throws -> [String: Tensor] {
        try Executor(graph: pinned(graph, flips), threads: threads).run(inputs)
    }

    /// `graph` with each element of `flips` pinned to its other level: rerun it, or
    /// ``probe(_:inputs:ulps:threads:)`` it for the elements such a run puts near a boundary.
    package static func pinned(_ graph: Graph, _ flips: [NearBoundary]) throws -> Graph {
        var g = graph
        for e in flips {
            guard case .quantize(var q) = g.nodes.first(where: { $0.name == e.node })?.op else {
                throw InferenceError(.unknownValue(e.node), value: e.node)
            }
            q.function = PinnedElement(base: q.function, index: e.flatIndex, value: e.otherLevel)
            _ = g.replaceOp(ofNode: e.node, with: .quantize(q))
        }
        return g
    }

    /// ``probe(_:inputs:ulps:threads:)``'s elements (at most `limit`, closest first) with
    /// ``NearBoundary/outputChange`` measured by ``flip(_:inputs:at:threads:)`` against `outputs`.
    package static func measure(
        _ graph: Graph, inputs: [String: Tensor], near: [NearBoundary], outputs: [String: Tensor],
        limit: Int = 16, threads: Int = 2
    ) throws -> [NearBoundary] {
        try near.prefix(limit).map { e in
            var e = e
            let flipped = try flip(graph, inputs: inputs, at: [e], threads: threads)
            e.outputChange =
                outputs.map { name, t in
                    zip(t.floats(), flipped[name]?.floats() ?? []).map { abs($0 - $1) }.max() ?? 0
                }.max() ?? 0
            return e
        }
    }

    /// The flips that bring `output` of `graph` on `inputs` within `tolerance` (max abs) of
    /// `target` (another engine's result on the same input), found greedily: at each round,
    /// of the `candidates` elements closest to a boundary in the run with the flips so far
    /// (a flip changes what follows it), the one that brings the output closest, until within
    /// tolerance or `maxFlips`. Returns the flips and the max |difference| they leave.
    ///
    /// Two correct float32 engines differ on a quantized model by such flips only; a fault
    /// (a wrong kernel, fusion or export) is not explained by a few near-boundary elements.
    package static func explain(
        _ graph: Graph, inputs: [String: Tensor], output: String, target: [Float], tolerance: Float,
        ulps: Int = 16, maxFlips: Int = 3, candidates: Int = 8, threads: Int = 2
    ) throws -> (flips: [NearBoundary], residual: Float) {
        func distance(_ flips: [NearBoundary]) throws -> Float {
            let y = try flip(graph, inputs: inputs, at: flips, threads: threads)[output]?.floats() ?? []
            guard y.count == target.count else { return .infinity }
            return zip(y, target).map { abs($0 - $1) }.max() ?? 0
        }
        var flips: [NearBoundary] = []
        var residual = try distance([])
        while residual > tolerance && flips.count < maxFlips {
            let near = try probe(pinned(graph, flips), inputs: inputs, ulps: ulps, threads: threads)
            var best: (Float, NearBoundary)? = nil
            for e in near.prefix(candidates) {
                let d = try distance(flips + [e])
                if d < best?.0 ?? .infinity { best = (d, e) }
            }
            guard let (d, e) = best, d < residual else { break }
            flips.append(e)
            residual = d
        }
        return (flips, residual)
    }

    private static func level(_ f: any QuantizeFunction, _ x: [Float], _ shape: [Int], _ i: Int, _ v: Float) throws -> Float {
        var probe = x
        probe[i] = v
        return try f.apply(probe, shape: shape)[i]
    }

    private static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for d in shape.indices.reversed() where shape[d] > 0 {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }
}

/// A quantize function with one output element pinned to a value: how
/// ``Conditioning/flip(_:inputs:at:threads:)`` puts one element on its other level.
struct PinnedElement: QuantizeFunction {
    let base: any QuantizeFunction
    let index: Int
    let value: Float
    var name: String { base.name }
    var method: String { base.method }
    var levels: Int { base.levels }

    func apply(_ x: [Float], shape: [Int]) throws -> [Float] {
        var y = try base.apply(x, shape: shape)
        if y.indices.contains(index) { y[index] = value }
        return y
    }

    func isEqual(to other: any QuantizeFunction) -> Bool {
        guard let o = other as? PinnedElement else { return false }
        return o.index == index && o.value == value && o.base.isEqual(to: base)
    }
}
