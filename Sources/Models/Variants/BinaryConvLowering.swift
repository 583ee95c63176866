import Engine
import Tensors

/// Lowers the XNOR-style binary convolutions of a built model to the engine's bit-packed
/// conv (``Engine/Op/binaryConv2d(_:)``): the planner then runs them with XOR and popcount.
///
/// A conv is lowered when its input is an XNOR activation quantizer that binarises (the sign,
/// `fm_custom none`, no gamma, past `stable`), possibly with the explicit zero padding the
/// builder places before or after it (QTool's `--padding_after_quant`), and its weight
/// constant holds `±alpha[o]` per output channel (XNOR, XNOR++ with gamma, Bi-Real: the
/// weight quantizer has already been applied to the constant). The new node reads the
/// quantizer's *input*, takes the sign codes, the pad code (+1 for padding before the sign,
/// 0 for padding after it, computed exactly) and `multiplier = alpha`, `bias` = the conv's
/// bias, and keeps the conv's node name and output value. Quantize and pad nodes left without
/// a reader, and the float weight, are dropped. Anything else stays as it is, with the reason
/// in ``Result/kept`` when the input was a sign quantizer.
///
/// The lowered model computes the same function: the codes are the quantizer's output
/// exactly, and the integer dot products are exact; only the float rounding of the final
/// `acc * alpha + bias` differs from the float conv's summation order.
package enum BinaryConvLowering {
    /// What ``lower(_:)`` did.
    package struct Result: Sendable {
        /// The graph with the binary convs lowered.
        package var graph: Graph
        /// Conv nodes now running as `binaryConv2d`, in graph order.
        package var lowered: [String]
        /// Conv nodes behind a sign quantizer that stay float, with the reason.
        package var kept: [(node: String, reason: String)]
    }

    /// True for a quantize op that outputs exactly `x < 0 ? -1 : +1` of its input.
    static func isSign(_ op: Op) -> Bool {
        guard case .quantize(let q) = op, let quantizer = q.quantizer else { return false }
        let c = quantizer.config
        return c.method == .xnor && c.tag == .fm && c.custom == .none && c.gamma == .none
            && !c.passesThrough(iteration: quantizer.state.iteration)
    }

    /// Lowers every eligible conv of `graph` (see the type's summary).
    package static func lower(_ graph: Graph) -> Result {
        var consumers: [String: Int] = [:]
        for n in graph.nodes { for v in n.inputs { consumers[v, default: 0] += 1 } }
        for o in graph.outputs { consumers[o, default: 0] += 1 }
        var replaced: [String: Graph.Node] = [:]
        var lowered: [String] = []
        var kept: [(node: String, reason: String)] = []
        for n in graph.nodes {
            guard case .conv2d(let a) = n.op, let source = graph.producer(of: n.inputs[0]) else { continue }
            // The three layouts the model builder emits: quantize -> pad -> conv (padding after
            // quantization), pad -> quantize -> conv (before), quantize -> conv (conv pads).
            var x: String
            var padding = a.padding
            var padCode = 0
            if case .pad(let p) = source.op, let q = graph.producer(of: source.inputs[0]), isSign(q.op) {
                guard a.padding.isZero else { continue }
                guard p.value == 0 || p.value == 1 || p.value == -1 else {
                    kept.append((n.name, "padding value \(p.value) after the sign is not a code"))
                    continue
                }
                (x, padding, padCode) = (q.inputs[0], p.padding, Int(p.value))
            } else if isSign(source.op) {
                x = source.inputs[0]
                if let p = graph.producer(of: x), case .pad(let pa) = p.op, a.padding.isZero, consumers[x] == 1 {
                    (x, padding, padCode) = (p.inputs[0], pa.padding, pa.value < 0 ? -1 : 1)  // sign of the pad value
                }
            } else {
                continue
            }
            guard let w = graph.constants[n.inputs[1]] else {
                kept.append((n.name, "the weight is computed"))
                continue
            }
            let packed: PackedConvWeights
            let alpha: [Float]
            do {
                (packed, alpha) = try PackedConvWeights.quantized(w.floats(), shape: w.shape, encoding: .binary)
            } catch {
                kept.append((n.name, "weight \(n.inputs[1]) is not binary per output channel: \(error)"))
                continue
            }
            let bias = n.inputs.count > 2 ? graph.constants[n.inputs[2]]?.floats() : nil
            if n.inputs.count > 2 && bias == nil {
                kept.append((n.name, "the bias is computed"))
                continue
            }
            let attributes = BinaryConv2dAttributes(
                weights: packed, input: .sign,
                conv: Conv2dAttributes(stride: a.stride, padding: padding, dilation: a.dilation, groups: a.groups),
                padCode: padCode, multiplier: alpha, bias: bias)
            replaced[n.name] = Graph.Node(name: n.name, op: .binaryConv2d(attributes), inputs: [x], outputs: n.outputs)
            lowered.append(n.name)
        }
        return Result(graph: rebuilt(graph, replacing: replaced), lowered: lowered, kept: kept)
    }

    /// `graph` with the `replaced` nodes swapped in, the `inserting` nodes placed before the
    /// node they are listed under, the new `constants` added, and every node and constant no
    /// graph output depends on any more removed (inputs stay). Shared by the lowerings.
    package static func rebuilt(
        _ graph: Graph, replacing replaced: [String: Graph.Node], inserting: [String: [Graph.Node]] = [:],
        constants added: [String: Tensor] = [:]
    ) -> Graph {
        let nodes = graph.nodes.flatMap { (inserting[$0.name] ?? []) + [replaced[$0.name] ?? $0] }
        // Live values: from the outputs back through the producers.
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for o in n.outputs { producer[o] = i } }
        var live = Set<Int>()
        var needed = Set(graph.outputs)
        var stack = graph.outputs
        while let v = stack.popLast() {
            guard let i = producer[v], live.insert(i).inserted else { continue }
            for input in nodes[i].inputs where needed.insert(input).inserted { stack.append(input) }
        }
        var g = Graph()
        for i in graph.inputs { g.addInput(i) }
        let constants = graph.constants.merging(added) { _, new in new }
        for (name, t) in constants.sorted(by: { $0.key < $1.key }) where needed.contains(name) {
            if graph.variables.contains(name) { g.addVariable(name, t) } else { g.addConstant(name, t) }
        }
        for (i, n) in nodes.enumerated() where live.contains(i) { g.add(n) }
        for o in graph.outputs { g.markOutput(o) }
        return g
    }
}
