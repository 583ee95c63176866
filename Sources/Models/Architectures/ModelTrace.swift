import Engine

/// Per-layer shapes, parameters and operation counts of a built model, for `qtools trace`.
///
/// Conventions (stated in the report):
/// - `macs`: multiply-accumulates of conv2d / linear nodes (one MAC per weight use:
///   `N·Cout·Hout·Wout·(Cin/groups)·kH·kW`). This is the figure papers call "FLOPs" for
///   ResNets (ResNet-18 at 224: 1.814 G).
/// - `flops`: `macs` of full-precision layers plus one operation per output element of
///   batch norm, channel affine, activation, add, quantize and pooling nodes (pooling and the
///   adaptive average count one per output element); views and padding count 0. ResNet-18
///   at 224: 1.82 G, the thop / ptflops figure.
/// - `bops`: for a conv or linear layer whose input and weight are both quantized,
///   `macs · ⌈log2 La⌉ · ⌈log2 Lw⌉` (L = number of levels; binary 1·1, ternary 2·2); a layer with
///   only one side quantized counts that side's bits times 32. Such a layer's MACs move from
///   `flops` to `bops`.
/// - `ops = flops + bops / 64` (Bi-Real Net / ReActNet convention).
package struct ModelTrace: Sendable, Encodable {
    /// One graph node.
    package struct Row: Sendable, Encodable, Equatable {
        package var name: String
        package var op: String
        package var inputShape: [Int]
        package var outputShape: [Int]
        package var parameters: Int
        package var macs: Int
        package var flops: Int
        package var bops: Int
        /// `a<bits>w<bits>` for quantized conv/linear layers (e.g. `a2w2`, `a1w1`).
        package var quantization: String?

        private enum CodingKeys: String, CodingKey {
            case name, op, inputShape = "input_shape", outputShape = "output_shape", parameters, macs,
                flops, bops, quantization
        }
    }

    /// Rows in execution order.
    package var rows: [Row]
    /// Totals over rows.
    package var parameters: Int, macs: Int, flops: Int, bops: Int
    /// `flops + bops / 64`.
    package var ops: Double { Double(flops) + Double(bops) / 64 }
    /// Input shape traced.
    package var inputShape: [Int]

    private enum CodingKeys: String, CodingKey {
        case rows, parameters, macs, flops, bops, ops, inputShape = "input_shape"
    }

    package func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rows, forKey: .rows)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(macs, forKey: .macs)
        try c.encode(flops, forKey: .flops)
        try c.encode(bops, forKey: .bops)
        try c.encode(ops, forKey: .ops)
        try c.encode(inputShape, forKey: .inputShape)
    }

    /// Traces `model` for an input of `inputShape`.
    /// - Throws: ``InferenceError`` when the graph cannot take that shape.
    package init(model: BuiltModel, inputShape: [Int]) throws(InferenceError) {
        let g = model.graph
        let order = try g.validate()
        var shapes: [String: [Int]] = [model.input: inputShape]
        for (k, t) in g.constants { shapes[k] = t.shape }
        var byNode: [String: BuiltModel.Layer] = [:]
        for l in model.layers { byNode[l.node] = l }
        var rows: [Row] = []
        for i in order {
            let n = g.nodes[i]
            let ins = n.inputs.map { shapes[$0]! }
            let out: [Int]
            do { out = try ShapeInference.outputShape(n.op, ins) } catch { throw error.at(node: n.name) }
            shapes[n.outputs[0]] = out
            // Counts are multiplied with overflow checks: an absurd --size is an error, not a trap.
            func product(_ xs: [Int]) throws(InferenceError) -> Int {
                var p = 1
                for x in xs {
                    let (r, o) = p.multipliedReportingOverflow(by: x)
                    guard !o else {
                        throw InferenceError(.unsupported("operation counts overflow 64 bits at input \(inputShape)"), node: n.name)
                    }
                    p = r
                }
                return p
            }
            let count = try product(out)
            var macs = 0, flops = 0, bops = 0
            var quant: String? = nil
            var codeBits: (activation: Int, weight: Int)? = nil
            switch n.op {
            case .conv2d, .integerConv:
                let w = ins[1]
                macs = try product([count, w[1], w[2], w[3]])
            case .binaryConv2d(let b):
                macs = try product([count, b.weights.codesPerRow])
                codeBits = (b.input.bits, b.weights.encoding == .ternary ? 2 : 1)
            case .linear:
                macs = try product([count, ins[1][1]])
            case .batchNorm, .channelAffine, .relu, .prelu, .hardtanh, .clamp, .add, .quantize,
                .maxPool2d, .avgPool2d, .adaptiveAvgPool2d, .softmax, .mul:
                flops = count
            case .reduceMean:
                flops = try product(ins[0])
            case .flatten, .reshape, .identity, .pad, .concat, .spaceToDepth, .depthToSpace:
                break
            }
            if macs > 0 {
                let l = byNode[n.name]
                let a = codeBits?.activation ?? l?.activationBits.map { Int($0.rounded(.up)) }
                let w = codeBits?.weight ?? l?.weightBits.map { Int($0.rounded(.up)) }
                if a != nil || w != nil {
                    bops = try product([macs, a ?? 32, w ?? 32])
                    quant = "a\(a.map(String.init) ?? "32")w\(w.map(String.init) ?? "32")"
                } else {
                    flops = macs
                }
            }
            rows.append(
                Row(
                    name: n.name, op: n.op.typeName, inputShape: ins.first ?? [], outputShape: out,
                    parameters: model.nodeParameters[n.name] ?? 0, macs: macs, flops: flops, bops: bops,
                    quantization: quant))
        }
        self.rows = rows
        self.inputShape = inputShape
        parameters = rows.reduce(0) { $0 + $1.parameters }
        func total(_ key: KeyPath<Row, Int>) throws(InferenceError) -> Int {
            var t = 0
            for r in rows {
                let (s, o) = t.addingReportingOverflow(r[keyPath: key])
                guard !o else { throw InferenceError(.unsupported("operation counts overflow 64 bits at input \(inputShape)")) }
                t = s
            }
            return t
        }
        macs = try total(\.macs)
        flops = try total(\.flops)
        bops = try total(\.bops)
    }
}
