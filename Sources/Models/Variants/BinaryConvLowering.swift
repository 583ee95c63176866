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
/// A conv behind FATNN's non-uniform activation quantizer (``integerCodes(_:)``: its outputs
/// are the integer codes themselves, `0 ... levels - 1` or `-1, 0, 1`) is lowered too, with
/// binary or ternary weight codes (`{-alpha[o], 0, +alpha[o]}`). When the quantizer has one
/// group, no `STE-scale`, and the conv is the only reader of its output (and of the pad
/// around it), the conv takes the quantizer in as thresholds (``QuantizerThresholds``): it
/// reads the quantizer's input, the padding moves into the conv with the pad value's code,
/// and the quantize and pad ops are dropped. Otherwise it reads the quantizer's output,
/// padded or not, with step 1, and the quantizer stays a float op.
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

    /// The integer codes a quantize op outputs exactly, as an input encoding with step 1: the
    /// FATNN non-uniform activation quantizer (`fm`, no closed form, past `stable`), whose
    /// outputs are the integers `0 ..< levels` (one-sided) or `-1, 0, 1` (two-sided, 3 levels).
    static func integerCodes(_ op: Op) -> BitActivationEncoding? {
        guard case .quantize(let q) = op, let quantizer = q.quantizer else { return nil }
        let c = quantizer.config
        guard c.method == .nonUniform, c.tag == .fm, !c.closedForm, !c.passesThrough(iteration: quantizer.state.iteration)
        else { return nil }
        if c.halfRange { return (2...4).contains(c.levels) ? .unsigned(levels: c.levels - 1, step: 1) : nil }
        return c.levels == 3 ? .ternary(step: 1) : nil
    }

    /// Lowers every eligible conv of `graph` (see the type's summary).
    ///
    /// `planes` (a packed file's ``BuiltModel/packedWeights``) gives weights by constant name
    /// as bit planes: a conv reading one takes its codes and scales from the planes (the
    /// constant is only a placeholder), and a placeholder still read after lowering (a conv
    /// kept float) is replaced by the weight the planes hold, so the graph returned is exact.
    package static func lower(_ graph: Graph, planes: [String: WeightPlanes] = [:]) -> Result {
        let consumers = graph.readCounts
        var replaced: [String: Graph.Node] = [:]
        var lowered: [String] = []
        var kept: [(node: String, reason: String)] = []
        for n in graph.nodes {
            guard case .conv2d(let a) = n.op, let source = graph.producer(of: n.inputs[0]) else { continue }
            let input: BitActivationEncoding
            var x: String
            var padding = a.padding
            var padCode = 0
            var weightEncodings: [BitWeightEncoding] = [.binary]
            var thresholds: [Float]?
            // The three layouts the model builder emits: quantize -> pad -> conv (padding after
            // quantization), pad -> quantize -> conv (before), quantize -> conv (conv pads).
            if case .pad(let p) = source.op, let q = graph.producer(of: source.inputs[0]), isSign(q.op) {
                guard a.padding.isZero else { continue }
                guard p.value == 0 || p.value == 1 || p.value == -1 else {
                    kept.append((n.name, "padding value \(p.value) after the sign is not a code"))
                    continue
                }
                (input, x, padding, padCode) = (.sign, q.inputs[0], p.padding, Int(p.value))
            } else if isSign(source.op) {
                (input, x) = (.sign, source.inputs[0])
                if let p = graph.producer(of: x), case .pad(let pa) = p.op, a.padding.isZero, consumers[x] == 1 {
                    (x, padding, padCode) = (p.inputs[0], pa.padding, pa.value < 0 ? -1 : 1)  // sign of the pad value
                }
            } else if let codes = integerCodes(source.op) ?? integerCodesBehindPad(source, graph) {
                // Integer codes (FATNN): the conv reads the quantizer's output (padded or not) as
                // it is, each value its own code; the conv's own padding is zeros, code 0.
                guard a.padding.isZero || codes.isValidPadCode(0) else { continue }
                (input, x) = (codes, n.inputs[0])
                weightEncodings = [.binary, .ternary]
                if let f = fusedQuantizer(source, conv: a, codes: codes, graph, consumers) {
                    (x, padding, padCode, thresholds) = (f.input, f.padding, f.padCode, f.thresholds)
                }
            } else {
                continue
            }
            guard let w = graph.constants[n.inputs[1]] else {
                kept.append((n.name, "the weight is computed"))
                continue
            }
            var found: (weights: PackedConvWeights, scale: [Float])?
            if let p = planes[n.inputs[1]] {
                do {
                    found = try p.convWeights(shape: w.shape)
                } catch {
                    kept.append((n.name, "the packed planes of \(n.inputs[1]) do not fit the conv: \(error)"))
                    continue
                }
                guard let e = found?.weights.encoding, weightEncodings.contains(e) else {
                    kept.append((n.name, "weight \(n.inputs[1]) is packed \(found!.weights.encoding), the input is a sign"))
                    continue
                }
            } else {
                var errors: [String] = []
                for e in weightEncodings where found == nil {
                    do { found = try PackedConvWeights.quantized(w.floats(), shape: w.shape, encoding: e) } catch {
                        errors.append("\(error)")
                    }
                }
                guard found != nil else {
                    let what = weightEncodings.map(\.rawValue).joined(separator: " or ")
                    kept.append((n.name, "weight \(n.inputs[1]) is not \(what) per output channel: \(errors.last ?? "")"))
                    continue
                }
            }
            guard let f = found else { continue }
            let (packed, alpha) = (f.weights, f.scale)
            let bias = n.inputs.count > 2 ? graph.constants[n.inputs[2]]?.floats() : nil
            if n.inputs.count > 2 && bias == nil {
                kept.append((n.name, "the bias is computed"))
                continue
            }
            let attributes = BinaryConv2dAttributes(
                weights: packed, input: input,
                conv: Conv2dAttributes(stride: a.stride, padding: padding, dilation: a.dilation, groups: a.groups),
                padCode: padCode, multiplier: alpha, bias: bias, thresholds: thresholds)
            replaced[n.name] = Graph.Node(name: n.name, op: .binaryConv2d(attributes), inputs: [x], outputs: n.outputs)
            lowered.append(n.name)
        }
        var g = rebuilt(graph, replacing: replaced)
        for (name, p) in planes.sorted(by: { $0.key < $1.key }) where g.constants[name] != nil {
            g.addConstant(name, Tensor(floats: p.unpacked(), shape: p.shape))  // a conv kept float: its weight
        }
        return Result(graph: g, lowered: lowered, kept: kept)
    }

    /// The quantizer in front of a conv (its `source`, the quantize node or a pad behind one)
    /// taken into the conv as thresholds: the value the conv then reads, its padding and pad
    /// code. The three layouts: quantize -> conv (the conv pads the codes with 0), quantize ->
    /// pad -> conv (the pad value is a code), pad -> quantize -> conv (the pad value's code).
    /// Nil when a node on the way has another reader or the quantizer has no exact thresholds.
    private static func fusedQuantizer(
        _ source: Graph.Node, conv a: Conv2dAttributes, codes: BitActivationEncoding, _ graph: Graph,
        _ consumers: [String: Int]
    ) -> (input: String, padding: Padding2d, padCode: Int, thresholds: [Float])? {
        func soleReader(_ n: Graph.Node) -> Bool { n.outputs.count == 1 && consumers[n.outputs[0]] == 1 }
        func thresholds(_ q: Graph.Node) -> [Float]? {
            guard case .quantize(let attributes) = q.op, let quantizer = attributes.quantizer else { return nil }
            return QuantizerThresholds.of(quantizer, codes: codes.codeRange)
        }
        guard soleReader(source) else { return nil }
        if case .pad(let p) = source.op {
            // quantize -> pad -> conv (integerCodesBehindPad checked the pad value).
            guard a.padding.isZero, let q = graph.producer(of: source.inputs[0]), soleReader(q), let t = thresholds(q)
            else { return nil }
            return (q.inputs[0], p.padding, Int(p.value), t)
        }
        guard let t = thresholds(source) else { return nil }
        if a.padding.isZero, let p = graph.producer(of: source.inputs[0]), case .pad(let pa) = p.op, soleReader(p) {
            // pad -> quantize -> conv: the padded positions hold the code of the pad value.
            let code = BinaryConv2dAttributes.code(pa.value, lowest: codes.codeRange.lowerBound, thresholds: t)
            return (p.inputs[0], pa.padding, code, t)
        }
        return (source.inputs[0], a.padding, 0, t)
    }

    /// The integer codes (``integerCodes(_:)``) behind a pad node with a value that is one of them.
    private static func integerCodesBehindPad(_ node: Graph.Node, _ graph: Graph) -> BitActivationEncoding? {
        guard case .pad(let p) = node.op, let q = graph.producer(of: node.inputs[0]), let codes = integerCodes(q.op),
            p.value.rounded() == p.value, codes.isValidPadCode(Int(p.value))
        else { return nil }
        return codes
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
