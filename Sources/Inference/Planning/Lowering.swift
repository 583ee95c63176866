import Tensors

/// Turns validated graph nodes into kernel calls: packs weights, folds batch norms into
/// convolutions, and fuses activations and residual adds into the producing kernel.
///
/// Fusion rules (each only when the intermediate value has exactly one consumer and is not
/// a graph output):
/// - `conv2d -> batchNorm | channelAffine`: weights scaled per output channel, bias folded
///   (`alpha = gamma / sqrt(var + eps)`, `b' = b * alpha + beta - mean * alpha`, PyTorch's
///   own CPU formula for eval-mode batch norm).
/// - `conv2d [-> bn] -> add(·, r)`: the conv accumulates onto `r` (GEMM with beta = 1).
/// - `conv2d | linear | batchNorm | channelAffine | add -> relu | hardtanh | clamp`:
///   the activation runs in the kernel's epilogue.
/// `flatten` and `identity` produce no step: their output aliases the input buffer.
struct Lowering {
    let graph: Graph
    let order: [Int]
    let shapes: [String: [Int]]
    let options: PlanOptions
    /// Packed constants and folded weights.
    var weights: [Float] = []
    /// Alias value -> the value whose buffer it shares.
    var aliases: [String: String] = [:]
    private var constantSpans: [String: Span] = [:]
    private var consumers: [String: [Int]] = [:]
    private var indexOf: [String: Int] = [:]
    private var absorbed = Set<Int>()
    /// Values computed by the steps emitted so far (plus inputs and constants).
    private var available = Set<String>()
    private let graphOutputs: Set<String>

    init(graph: Graph, order: [Int], shapes: [String: [Int]], options: PlanOptions) {
        self.graph = graph
        self.order = order
        self.shapes = shapes
        self.options = options
        self.graphOutputs = Set(graph.outputs)
        available.formUnion(graph.inputs)
        available.formUnion(graph.constants.keys)
        for (i, n) in graph.nodes.enumerated() {
            for v in n.inputs { consumers[v, default: []].append(i) }
            indexOf[n.name] = i
        }
    }

    /// The value whose buffer `v` uses (follows alias chains).
    func root(_ v: String) -> String {
        var v = v
        while let a = aliases[v] { v = a }
        return v
    }

    /// `v` as an operand: packed weights for constants, else an arena value.
    mutating func operand(_ v: String) -> Operand {
        guard let t = graph.constants[v] else { return .value(v) }
        if let s = constantSpans[v] { return .weights(s) }
        let s = pack(t.floats())
        constantSpans[v] = s
        return .weights(s)
    }

    private mutating func pack(_ values: [Float]) -> Span {
        let s = Span(.weights, offset: weights.count, count: values.count)
        weights += values
        return s
    }

    private func count(_ v: String) -> Int { shapes[v]!.reduce(1, *) }

    /// The single consumer of `v`, if fusion may absorb it.
    private func soleConsumer(_ v: String) -> Graph.Node? {
        guard options.fuse, !graphOutputs.contains(v), let cs = consumers[v], cs.count == 1,
            !absorbed.contains(cs[0])
        else { return nil }
        return graph.nodes[cs[0]]
    }

    private func activation(of op: Op) -> Activation? {
        switch op {
        case .relu: return .relu
        case .hardtanh(let lo, let hi): return .clamp(lo: lo, hi: hi)
        case .clamp(let lo, let hi): return .clamp(lo: lo ?? -.infinity, hi: hi ?? .infinity)
        default: return nil
        }
    }

    /// Absorbs a following activation node, if any: returns it and the new output value.
    private mutating func fuseActivation(after v: String, nodes: inout [String]) -> (Activation, String) {
        if let next = soleConsumer(v), let a = activation(of: next.op) {
            absorbed.insert(indexOf[next.name]!)
            nodes.append(next.name)
            return (a, next.outputs[0])
        }
        return (.none, v)
    }

    private mutating func absorb(_ node: Graph.Node, into nodes: inout [String]) {
        absorbed.insert(indexOf[node.name]!)
        nodes.append(node.name)
    }

    /// Per-channel `(scale, shift)` of a batch norm or channel affine node.
    private func affine(of node: Graph.Node) -> (scale: [Float], shift: [Float])? {
        switch node.op {
        case .batchNorm(let eps):
            let p = node.inputs[1...4].map { graph.constants[$0]!.floats() }
            let (gamma, beta, mean, variance) = (p[0], p[1], p[2], p[3])
            var scale = [Float](repeating: 0, count: gamma.count)
            var shift = scale
            for c in 0..<gamma.count {
                let inv = 1 / (variance[c] + eps).squareRoot()
                scale[c] = inv * gamma[c]
                shift[c] = beta[c] - mean[c] * scale[c]
            }
            return (scale, shift)
        case .channelAffine:
            return (graph.constants[node.inputs[1]]!.floats(), graph.constants[node.inputs[2]]!.floats())
        default: return nil
        }
    }

    /// Lowers every node in topological order.
    mutating func run() throws(InferenceError) -> [ProtoStep] {
        var steps: [ProtoStep] = []
        for i in order where !absorbed.contains(i) {
            let node = graph.nodes[i]
            do {
                let emitted = try lower(node)
                if let emitted { steps.append(emitted) }
                for name in [node.name] + (emitted?.nodes ?? []) {
                    if let k = indexOf[name] { available.formUnion(graph.nodes[k].outputs) }
                }
            } catch { throw error.at(node: node.name) }
        }
        for o in graph.outputs { _ = operand(o) }
        return steps
    }

    private mutating func lower(_ node: Graph.Node) throws(InferenceError) -> ProtoStep? {
        let ins = node.inputs
        let out = node.outputs[0]
        let xShape = shapes[ins[0]]!
        var nodes = [node.name]
        func step(_ call: KernelCall<Operand>) -> ProtoStep {
            ProtoStep(call: call, opType: node.op.typeName, nodes: nodes)
        }
        // [N, C, inner] view of the first input.
        let batch = xShape.first ?? 1
        let channels = xShape.count >= 2 ? xShape[1] : 1
        let inner = xShape.count >= 3 ? xShape[2...].reduce(1, *) : 1

        switch node.op {
        case .conv2d(let a):
            let g = try ShapeInference.conv(a, input: xShape, weight: shapes[ins[1]]!, bias: ins.count > 2 ? shapes[ins[2]] : nil)
            var v = out
            var weightValues: [Float]? = nil  // set when the weights are rewritten (folded)
            var biasValues: [Float]? = nil
            if let next = soleConsumer(v), next.inputs[0] == v, let (scale, shift) = affine(of: next),
                let w0 = graph.constants[ins[1]]
            {
                var w = w0.floats()
                let per = w.count / g.outChannels
                for oc in 0..<g.outChannels { for k in 0..<per { w[oc * per + k] *= scale[oc] } }
                let b0 = ins.count > 2 ? graph.constants[ins[2]]!.floats() : [Float](repeating: 0, count: g.outChannels)
                weightValues = w
                biasValues = (0..<g.outChannels).map { b0[$0] * scale[$0] + shift[$0] }
                absorb(next, into: &nodes)
                v = next.outputs[0]
            }
            let winogradTile = options.winograd ? Winograd.preferredTile(g) : nil
            let weight: Operand
            if let tile = winogradTile {
                guard let w = weightValues ?? graph.constants[ins[1]]?.floats() else {
                    throw InferenceError(.unsupported("conv weights must be constants (\(ins[1]) is computed)"), node: node.name)
                }
                weight = .weights(pack(Winograd.transformWeights(w, outChannels: g.outChannels, inChannels: g.inChannels, tile: tile)))
            } else {
                guard let w = weightValues ?? graph.constants[ins[1]]?.floats() else {
                    throw InferenceError(.unsupported("conv weights must be constants (\(ins[1]) is computed)"), node: node.name)
                }
                weight = .weights(pack(Conv2d.packWeights(g, w)))
            }
            let bias: Operand? = biasValues.map { .weights(pack($0)) } ?? (ins.count > 2 ? operand(ins[2]) : nil)
            var residual: Operand? = nil
            if let next = soleConsumer(v), case .add = next.op {
                let other = next.inputs[0] == v ? next.inputs[1] : next.inputs[0]
                if other != v, available.contains(other) {
                    residual = operand(other)
                    absorb(next, into: &nodes)
                    v = next.outputs[0]
                }
            }
            let (act, y) = fuseActivation(after: v, nodes: &nodes)
            if let tile = winogradTile {
                return step(.winograd(g, tile: tile, input: operand(ins[0]), weight: weight, bias: bias, residual: residual, output: .value(y), activation: act))
            }
            return step(.conv(g, input: operand(ins[0]), weight: weight, bias: bias, residual: residual, output: .value(y), activation: act))

        case .linear:
            let w = shapes[ins[1]]!
            let (act, y) = fuseActivation(after: out, nodes: &nodes)
            return step(.linear(batch: xShape[0], inFeatures: w[1], outFeatures: w[0], input: operand(ins[0]), weight: operand(ins[1]), bias: ins.count > 2 ? operand(ins[2]) : nil, output: .value(y), activation: act))

        case .batchNorm, .channelAffine:
            let (scale, shift) = affine(of: node)!
            let s = pack(scale), b = pack(shift)
            let (act, y) = fuseActivation(after: out, nodes: &nodes)
            return step(.channelAffine(batch: batch, channels: channels, inner: inner, input: operand(ins[0]), scale: .weights(s), bias: .weights(b), output: .value(y), activation: act))

        case .relu, .hardtanh, .clamp:
            return step(.activation(activation(of: node.op)!, input: operand(ins[0]), output: .value(out)))

        case .prelu:
            return step(.prelu(batch: batch, channels: channels, inner: inner, input: operand(ins[0]), slope: operand(ins[1]), output: .value(out)))

        case .maxPool2d(let a):
            return step(.maxPool(try ShapeInference.pool(a, input: xShape, isMax: true), input: operand(ins[0]), output: .value(out)))

        case .avgPool2d(let a):
            return step(.avgPool(try ShapeInference.pool(a, input: xShape, isMax: false), input: operand(ins[0]), output: .value(out)))

        case .adaptiveAvgPool2d(let oh, let ow):
            return step(.adaptiveAvgPool(planes: batch * channels, height: xShape[2], width: xShape[3], outHeight: oh, outWidth: ow, input: operand(ins[0]), output: .value(out)))

        case .add:
            let (act, y) = fuseActivation(after: out, nodes: &nodes)
            return step(.add(operand(ins[0]), operand(ins[1]), output: .value(y), activation: act))

        case .mul:
            let g = BroadcastGeometry(a: xShape, b: shapes[ins[1]]!, output: shapes[out]!)
            return step(.mul(g, operand(ins[0]), operand(ins[1]), output: .value(out)))

        case .reduceMean(let axes, _):
            return step(.reduceMean(try ShapeInference.reduce(axes, input: xShape), input: operand(ins[0]), output: .value(out)))

        case .softmax(let axis):
            let r = xShape.count
            let ax = axis < 0 ? axis + r : axis
            return step(.softmax(outer: xShape[..<ax].reduce(1, *), axis: xShape[ax], inner: xShape[(ax + 1)...].reduce(1, *), input: operand(ins[0]), output: .value(out)))

        case .pad(let a):
            return step(.pad(planes: batch * channels, height: xShape[2], width: xShape[3], padding: a.padding, value: a.value, input: operand(ins[0]), output: .value(out)))

        case .quantize(let q):
            return step(.quantize(q, shape: xShape, input: operand(ins[0]), output: .value(out)))

        case .concat:
            var parts: [Operand] = []
            for v in ins { parts.append(operand(v)) }
            return step(.concat(batch: batch, spatial: xShape[2] * xShape[3], parts: parts, channels: ins.map { shapes[$0]![1] }, output: .value(out)))

        case .spaceToDepth(let s):
            return step(.spaceDepth(batch: batch, channels: channels, height: xShape[2], width: xShape[3], block: s, toDepth: true, input: operand(ins[0]), output: .value(out)))

        case .depthToSpace(let s):
            return step(.spaceDepth(batch: batch, channels: channels / (s * s), height: xShape[2] * s, width: xShape[3] * s, block: s, toDepth: false, input: operand(ins[0]), output: .value(out)))

        case .flatten, .identity:
            if graph.constants[ins[0]] != nil {
                // A view of a constant: materialise it as a copy into the arena.
                return step(.copy(input: operand(ins[0]), output: .value(out)))
            }
            aliases[out] = ins[0]
            return nil
        }
    }
}
