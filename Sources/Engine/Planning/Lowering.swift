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
///
/// Memory: the weights should never be resident twice over. Constants are copied straight
/// into ``weights`` (folding scales the packed copy in place). Once the last node reading a
/// constant is lowered, the constant is retired: its file pages are released
/// (``Tensors/ByteSlice/releasePages()``; a memory-mapped checkpoint) and it is removed from
/// ``graph``, which frees it when the caller handed the graph over (`consume`). ``weights``
/// reserves an upper bound up front, so it never reallocates (a reallocation holds the old
/// and new buffers at once); the unused tail of the reservation is never touched and so
/// never resident.
struct Lowering {
    /// The graph; constants are removed from it as they are retired.
    private(set) var graph: Graph
    let order: [Int]
    let shapes: [String: [Int]]
    let options: PlanOptions
    /// Packed constants and folded weights.
    var weights: [Float] = []
    /// Alias value -> the value whose buffer it shares.
    var aliases: [String: String] = [:]
    private var constantSpans: [String: Span] = [:]
    /// Output tile side of the convs that run as Winograd, by node name.
    private var winogradTiles: [String: Int] = [:]
    private var consumers: [String: [Int]] = [:]
    private var indexOf: [String: Int] = [:]
    private var absorbed = Set<Int>()
    /// Occurrences, as node inputs, of each constant in nodes not lowered yet (graph outputs
    /// are never retired and not counted).
    private var readersLeft: [String: Int] = [:]
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
        weights.reserveCapacity(Self.packedCountBound(graph))
        for c in graph.constants.keys where !graphOutputs.contains(c) {
            readersLeft[c] = consumers[c]?.count ?? 0
            if readersLeft[c] == 0 { retire(c) }
        }
    }

    /// More floats than lowering packs, unless a weight is shared by several convs: every
    /// constant is packed at most once, as is, folded (plus a bias of one float per output
    /// channel), in GEMM panels (rows padded to a multiple of 6) or Winograd-transformed (at
    /// most 36/9 of its size). Only the used part of the reservation is ever resident.
    static func packedCountBound(_ graph: Graph) -> Int {
        var binary = 0
        for n in graph.nodes {
            // Panels (rows rounded up to 4 per group, 2 floats a word), pad pixel, tables, alignment.
            guard case .binaryConv2d(let a) = n.op else { continue }
            let w = a.weights
            let planes: Int = w.encoding == .ternary ? 2 : 1
            let rows: Int = w.outChannels + 3 * a.conv.groups
            let panels: Int = 2 * rows * w.rowWords * planes
            let tables: Int = w.outChannels * (4 + w.kernelH * w.kernelW)
            binary += panels + 64 * w.wordsPerTap + tables + 2
        }
        return 5 * graph.constants.values.reduce(0) { $0 + $1.elementCount } + binary + (1 << 16)
    }

    /// The value whose buffer `v` uses (follows alias chains).
    func root(_ v: String) -> String {
        var v = v
        while let a = aliases[v] { v = a }
        return v
    }

    /// `v` as an operand: packed weights for constants, else an arena value.
    mutating func operand(_ v: String) -> Operand {
        if let s = constantSpans[v] { return .weights(s) }
        guard graph.constants[v] != nil else { return .value(v) }
        let s = packConstant(v)
        constantSpans[v] = s
        return .weights(s)
    }

    private mutating func pack(_ values: [Float]) -> Span {
        let s = Span(.weights, offset: weights.count, count: values.count)
        weights += values
        return s
    }

    /// Copies constant `name` to the end of ``weights`` (no temporary).
    private mutating func packConstant(_ name: String) -> Span {
        let t = graph.constants[name]!
        let s = Span(.weights, offset: weights.count, count: t.elementCount)
        t.appendFloats(to: &weights)
        return s
    }

    /// The values of constant `name` (a copy).
    private func constantFloats(_ name: String) -> [Float] {
        graph.constants[name]!.floats()
    }

    /// Counts the constant inputs of the lowered `nodes` as read; retires those no node
    /// still to be lowered reads.
    private mutating func markRead(_ nodes: Set<String>) {
        for name in nodes {
            guard let k = indexOf[name] else { continue }
            for v in graph.nodes[k].inputs {
                guard let left = readersLeft[v] else { continue }
                readersLeft[v] = left - 1
                if left == 1 { retire(v) }
            }
        }
    }

    /// Releases constant `name`'s file pages and removes it from ``graph``.
    private mutating func retire(_ name: String) {
        graph.constants[name]?.data.releasePages()
        graph.removeConstant(name)
        readersLeft[name] = nil
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

    /// Absorbs a following `add` of `v` and another available value (a residual a conv step
    /// adds in its epilogue), if any: returns that value's operand and moves `v` to the sum.
    private mutating func fuseResidual(after v: inout String, nodes: inout [String]) -> Operand? {
        guard let next = soleConsumer(v), case .add = next.op else { return nil }
        let other = next.inputs[0] == v ? next.inputs[1] : next.inputs[0]
        guard other != v, available.contains(other) else { return nil }
        let residual = operand(other)
        absorb(next, into: &nodes)
        v = next.outputs[0]
        return residual
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
            let p = node.inputs[1...4].map { constantFloats($0) }
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
            return (constantFloats(node.inputs[1]), constantFloats(node.inputs[2]))
        default: return nil
        }
    }

    /// Lowers every node in topological order.
    mutating func run() throws(InferenceError) -> [ProtoStep] {
        if options.winograd { selectWinograd() }
        var steps: [ProtoStep] = []
        for i in order where !absorbed.contains(i) {
            let node = graph.nodes[i]
            do {
                let emitted = try lower(node)
                if let emitted { steps.append(emitted) }
                let covered = Set([node.name] + (emitted?.nodes ?? []))
                for name in covered {
                    if let k = indexOf[name] { available.formUnion(graph.nodes[k].outputs) }
                }
                markRead(covered)
            } catch { throw error.at(node: node.name) }
        }
        for o in graph.outputs { _ = operand(o) }
        return steps
    }

    /// Fills ``winogradTiles`` for the convs with constant weights (``WinogradSelection``).
    private mutating func selectWinograd() {
        var convs: [WinogradSelection.Conv] = []
        for i in order {
            let n = graph.nodes[i]
            guard case .conv2d(let a) = n.op, graph.constants[n.inputs[1]] != nil,
                let x = shapes[n.inputs[0]], let w = shapes[n.inputs[1]],
                let g = try? ShapeInference.conv(a, input: x, weight: w, bias: n.inputs.count > 2 ? shapes[n.inputs[2]] : nil)
            else { continue }
            convs.append(WinogradSelection.Conv(name: n.name, geometry: g))
        }
        winogradTiles = WinogradSelection.choose(convs, budgetBytes: options.winogradBudgetBytes)
    }

    /// Appends `count` zeros to ``weights`` and lets `fill` write them (a kernel's packer).
    private mutating func packFilled(count: Int, _ fill: (UnsafeMutableBufferPointer<Float>) -> Void) -> Span {
        let s = Span(.weights, offset: weights.count, count: count)
        weights.append(contentsOf: repeatElement(0, count: count))
        unsafe weights.withUnsafeMutableBufferPointer { all in
            unsafe fill(UnsafeMutableBufferPointer(rebasing: all[s.offset..<(s.offset + count)]))
        }
        return s
    }

    /// `x`'s shape as `[N, C, H, W]` for a grid quantizer (`[N, C]` and `[N, C, L]` as planes
    /// of one row), when `q` has a grid form that fits its channels.
    private func gridShape(_ q: QuantizeAttributes, input x: String) -> (form: GridQuantization, dims: [Int])? {
        guard options.fuse, let form = q.function.gridForm, let s = shapes[x], (2...4).contains(s.count), s.allSatisfy({ $0 >= 1 })
        else { return nil }
        let dims = [s[0], s[1], s.count == 4 ? s[2] : 1, s.count >= 3 ? s[s.count - 1] : 1]
        return form.fits(channels: dims[1]) ? (form, dims) : nil
    }

    /// A grid-form quantize node as one ``KernelCall/gridQuantize`` step, with a following
    /// `pad` (of a 4-D value) fused in.
    private mutating func gridQuantize(_ q: QuantizeAttributes, node: Graph.Node, nodes: inout [String]) -> KernelCall<Operand>? {
        guard let (form, d) = gridShape(q, input: node.inputs[0]) else { return nil }
        var padding = Padding2d(0)
        var border: Float = 0
        var y = node.outputs[0]
        if options.fuseQuantizePad, shapes[y]!.count == 4, let next = soleConsumer(y), case .pad(let a) = next.op {
            padding = a.padding
            border = a.value
            absorb(next, into: &nodes)
            y = next.outputs[0]
        }
        return .gridQuantize(
            form, batch: d[0], channels: d[1], height: d[2], width: d[3], padding: padding, border: .value(border),
            input: operand(node.inputs[0]), output: .value(y))
    }

    /// A `pad` whose only consumer is a grid-form quantize node, as one ``KernelCall/gridQuantize``
    /// step (the padding holds the quantized pad value).
    private mutating func gridQuantize(padding a: Pad2dAttributes, node: Graph.Node, nodes: inout [String]) -> KernelCall<Operand>? {
        guard options.fuseQuantizePad, let next = soleConsumer(node.outputs[0]), case .quantize(let q) = next.op,
            next.inputs[0] == node.outputs[0],
            let (form, _) = gridShape(q, input: node.outputs[0]), let x = shapes[node.inputs[0]], x.count == 4
        else { return nil }
        absorb(next, into: &nodes)
        return .gridQuantize(
            form, batch: x[0], channels: x[1], height: x[2], width: x[3], padding: a.padding, border: .quantized(a.value),
            input: operand(node.inputs[0]), output: .value(next.outputs[0]))
    }

    /// The integerConv that alone reads grid quantize node `node`'s level indices, unpadded,
    /// when the direct int8 kernel can apply the quantizer itself (``IntegerConv``).
    private func integerConvReading(
        _ q: QuantizeAttributes, node: Graph.Node
    ) -> (
        conv: Graph.Node, attributes: IntegerConvAttributes, form: GridQuantization
    )? {
        guard options.fuseQuantizePad, IntegerConv.isFasterThanFloat, let (form, d) = gridShape(q, input: node.inputs[0]),
            form.indices, shapes[node.inputs[0]]!.count == 4, let conv = soleConsumer(node.outputs[0]),
            case .integerConv(let a) = conv.op, conv.inputs[0] == node.outputs[0], form.fits(channels: d[1])
        else { return nil }
        return (conv, a, form)
    }

    /// The ``KernelCall/integerConv`` step of integerConv `node` reading `input` (its level
    /// indices, or with `grid` the values that quantizer turns into them), with a following
    /// batch norm, residual add and activation fused in.
    private mutating func integerConv(
        _ a: IntegerConvAttributes, node: Graph.Node, input: Operand, grid: GridQuantization?, nodes: inout [String]
    ) throws(InferenceError) -> KernelCall<Operand> {
        let ins = node.inputs
        let g = try ShapeInference.integerConv(a, ins.map { shapes[$0]! })
        guard let wt = graph.constants[ins[1]] else {
            throw InferenceError(.unsupported("integerConv weights must be constants (\(ins[1]) is computed)"), node: node.name)
        }
        let values = wt.floats()
        guard values.allSatisfy({ $0 == $0.rounded() && $0 >= -128 && $0 <= 127 }) else {
            throw InferenceError(.invalidAttribute("integerConv weights must be integers in -128...127 (\(ins[1]))"), node: node.name)
        }
        let maxAbs = Int(values.map { abs($0) }.max() ?? 0)
        let weight: Operand = unsafe .weights(
            packFilled(count: IntegerConv.packedWeightCount(g)) { dst in
                unsafe values.withUnsafeBufferPointer { unsafe IntegerConv.packWeights(g, $0, into: dst) }
            })
        var v = node.outputs[0]
        let scale: Operand, bias: Operand
        if let next = soleConsumer(v), next.inputs[0] == v, let (s, t) = affine(of: next) {
            // A following batch norm: y = (acc * m + b) * s + t = acc * (m * s) + (b * s + t).
            let (m, b) = (constantFloats(ins[2]), constantFloats(ins[3]))
            scale = .weights(pack((0..<g.outChannels).map { m[$0] * s[$0] }))
            bias = .weights(pack((0..<g.outChannels).map { b[$0] * s[$0] + t[$0] }))
            absorb(next, into: &nodes)
            v = next.outputs[0]
        } else {
            (scale, bias) = (operand(ins[2]), operand(ins[3]))
        }
        let residual = fuseResidual(after: &v, nodes: &nodes)
        var (act, y) = fuseActivation(after: v, nodes: &nodes)
        // A following value-form grid quantizer (one a float conv reads, e.g. a depthwise conv),
        // with a constant pad before it when nothing else is added in.
        var quantizer: IntegerConv.OutputQuantizer? = nil
        var pad: (node: Graph.Node, attributes: Pad2dAttributes)? = nil
        if residual == nil, let next = soleConsumer(y), case .pad(let a) = next.op, next.inputs[0] == y { pad = (next, a) }
        if options.fuseQuantizePad, let next = soleConsumer(pad?.node.outputs[0] ?? y), case .quantize(let q) = next.op,
            next.inputs[0] == (pad?.node.outputs[0] ?? y), let (form, d) = gridShape(q, input: next.inputs[0]), !form.indices,
            shapes[y]!.count == 4, d[1] == g.outChannels
        {
            quantizer = IntegerConv.OutputQuantizer(
                form, padding: pad?.attributes.padding ?? Padding2d(0), padValue: pad?.attributes.value ?? 0)
            if let pad { absorb(pad.node, into: &nodes) }
            absorb(next, into: &nodes)
            y = next.outputs[0]
        }
        return .integerConv(
            g, padIndex: a.padIndex, maxIndex: a.maxIndex,
            maddubsSafe: IntegerConv.maddubsSafe(maxIndex: a.maxIndex, maxAbsWeight: maxAbs), input: input,
            weight: weight, scale: scale, bias: bias, residual: residual, output: .value(y), activation: act, grid: grid,
            outputQuantizer: quantizer)
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
            var folded: (scale: [Float], shift: [Float])? = nil
            if let next = soleConsumer(v), next.inputs[0] == v, let f = affine(of: next) {
                folded = f
                absorb(next, into: &nodes)
                v = next.outputs[0]
            }
            guard let wt = graph.constants[ins[1]] else {
                throw InferenceError(.unsupported("conv weights must be constants (\(ins[1]) is computed)"), node: node.name)
            }
            // The kernels read weights in their own layouts (GEMM panels, or Winograd-transformed),
            // written straight from the constant's storage; a folded scale is applied in place.
            let winogradTile = winogradTiles[node.name]
            let count =
                winogradTile.map {
                    Winograd.transformedWeightCount(outChannels: g.outChannels, inChannels: g.inChannels, tile: $0)
                } ?? Conv2d.packedWeightCount(g)
            let weight: Operand = unsafe .weights(
                packFilled(count: count) { dst in
                    unsafe wt.withFloats { w in
                        if let tile = winogradTile {
                            unsafe Winograd.transformWeights(w, g, tile: tile, into: dst)
                        } else {
                            unsafe Conv2d.packWeights(g, w, into: dst)
                        }
                    }
                    if let scale = folded?.scale {
                        if let tile = winogradTile {
                            unsafe Winograd.scaleTransformedRows(g, tile: tile, dst, by: scale)
                        } else {
                            unsafe Conv2d.scalePackedRows(g, dst, by: scale)
                        }
                    }
                })
            let bias: Operand?
            if let (scale, shift) = folded {
                let b0 = ins.count > 2 ? constantFloats(ins[2]) : [Float](repeating: 0, count: g.outChannels)
                bias = .weights(pack((0..<g.outChannels).map { b0[$0] * scale[$0] + shift[$0] }))
            } else {
                bias = ins.count > 2 ? operand(ins[2]) : nil
            }
            let residual = fuseResidual(after: &v, nodes: &nodes)
            let (act, y) = fuseActivation(after: v, nodes: &nodes)
            if let tile = winogradTile {
                return step(
                    .winograd(
                        g, tile: tile, input: operand(ins[0]), weight: weight, bias: bias, residual: residual, output: .value(y),
                        activation: act))
            }
            return step(
                .conv(g, input: operand(ins[0]), weight: weight, bias: bias, residual: residual, output: .value(y), activation: act))

        case .binaryConv2d(let a):
            let g = try ShapeInference.binaryConv(a, input: xShape)
            let path = options.bitKernelPath ?? .best
            guard path.isSupported else {
                throw InferenceError(.unsupported("bit kernel path \(path) does not run on this CPU"), node: node.name)
            }
            var v = out
            var (multiplier, bias) = (a.multiplier, a.bias)
            if let next = soleConsumer(v), next.inputs[0] == v, let (scale, shift) = affine(of: next) {
                // y = (acc * m + b) * s + t = acc * (m * s) + (b * s + t), rounded once per step.
                for o in 0..<g.outChannels {
                    multiplier[o] = multiplier[o] * scale[o]
                    bias[o] = bias[o] * scale[o] + shift[o]
                }
                absorb(next, into: &nodes)
                v = next.outputs[0]
            }
            let layout = BinaryConv.layout(g, a, path: path)
            // 64-bit words: the span starts on an even float (the buffer is 16-byte aligned).
            if weights.count % 2 == 1 { weights.append(0) }
            let packed: Operand = unsafe .weights(
                packFilled(count: layout.floatCount) { dst in
                    unsafe BinaryConv.pack(a, layout, multiplier: multiplier, bias: bias, into: dst)
                })
            let residual = fuseResidual(after: &v, nodes: &nodes)
            let (act, y) = fuseActivation(after: v, nodes: &nodes)
            return step(
                .binaryConv(layout, input: operand(ins[0]), weights: packed, residual: residual, output: .value(y), activation: act))

        case .integerConv(let a):
            return step(try integerConv(a, node: node, input: operand(ins[0]), grid: nil, nodes: &nodes))

        case .linear:
            let w = shapes[ins[1]]!
            let (act, y) = fuseActivation(after: out, nodes: &nodes)
            return step(
                .linear(
                    batch: xShape[0], inFeatures: w[1], outFeatures: w[0], input: operand(ins[0]), weight: operand(ins[1]),
                    bias: ins.count > 2 ? operand(ins[2]) : nil, output: .value(y), activation: act))

        case .batchNorm, .channelAffine:
            let (scale, shift) = affine(of: node)!
            let s = pack(scale), b = pack(shift)
            let (act, y) = fuseActivation(after: out, nodes: &nodes)
            return step(
                .channelAffine(
                    batch: batch, channels: channels, inner: inner, input: operand(ins[0]), scale: .weights(s), bias: .weights(b),
                    output: .value(y), activation: act))

        case .relu, .hardtanh, .clamp:
            return step(.activation(activation(of: node.op)!, input: operand(ins[0]), output: .value(out)))

        case .prelu:
            return step(
                .prelu(batch: batch, channels: channels, inner: inner, input: operand(ins[0]), slope: operand(ins[1]), output: .value(out)))

        case .maxPool2d(let a):
            return step(.maxPool(try ShapeInference.pool(a, input: xShape, isMax: true), input: operand(ins[0]), output: .value(out)))

        case .avgPool2d(let a):
            return step(.avgPool(try ShapeInference.pool(a, input: xShape, isMax: false), input: operand(ins[0]), output: .value(out)))

        case .adaptiveAvgPool2d(let oh, let ow):
            return step(
                .adaptiveAvgPool(
                    planes: batch * channels, height: xShape[2], width: xShape[3], outHeight: oh, outWidth: ow, input: operand(ins[0]),
                    output: .value(out)))

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
            return step(
                .softmax(
                    outer: xShape[..<ax].reduce(1, *), axis: xShape[ax], inner: xShape[(ax + 1)...].reduce(1, *), input: operand(ins[0]),
                    output: .value(out)))

        case .pad(let a):
            if let fused = gridQuantize(padding: a, node: node, nodes: &nodes) {
                return ProtoStep(call: fused, opType: "quantize", nodes: nodes)
            }
            return step(
                .pad(
                    planes: batch * channels, height: xShape[2], width: xShape[3], padding: a.padding, value: a.value,
                    input: operand(ins[0]), output: .value(out)))

        case .quantize(let q):
            if let (conv, a, form) = integerConvReading(q, node: node) {
                nodes = [conv.name, node.name]
                absorbed.insert(indexOf[conv.name]!)
                let call = try integerConv(a, node: conv, input: operand(ins[0]), grid: form, nodes: &nodes)
                return ProtoStep(call: call, opType: conv.op.typeName, nodes: nodes)
            }
            if let fused = gridQuantize(q, node: node, nodes: &nodes) { return step(fused) }
            return step(.quantize(q, shape: xShape, input: operand(ins[0]), output: .value(out)))

        case .concat:
            var parts: [Operand] = []
            for v in ins { parts.append(operand(v)) }
            return step(
                .concat(
                    batch: batch, spatial: xShape[2] * xShape[3], parts: parts, channels: ins.map { shapes[$0]![1] }, output: .value(out)))

        case .spaceToDepth(let s):
            return step(
                .spaceDepth(
                    batch: batch, channels: channels, height: xShape[2], width: xShape[3], block: s, toDepth: true, input: operand(ins[0]),
                    output: .value(out)))

        case .depthToSpace(let s):
            return step(
                .spaceDepth(
                    batch: batch, channels: channels / (s * s), height: xShape[2] * s, width: xShape[3] * s, block: s, toDepth: false,
                    input: operand(ins[0]), output: .value(out)))

        case .flatten, .reshape, .identity:
            if graph.constants[ins[0]] != nil {
                // A view of a constant: materialise it as a copy into the arena.
                return step(.copy(input: operand(ins[0]), output: .value(out)))
            }
            aliases[out] = ins[0]
            return nil
        }
    }
}
