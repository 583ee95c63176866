import Engine
import Formats
import Foundation
import Tensors

/// How ``ONNXExport`` writes a model (`qtools convert CKPT --to onnx`).
package struct ONNXExportOptions: Sendable {
    /// The representation of quantized layers.
    package enum Format: String, Sendable, CaseIterable {
        /// Opset 13: int8 weight levels + per-channel DequantizeLinear; activations
        /// QuantizeLinear → integer Clip → DequantizeLinear (formats.md C.2.4, recommendation 1).
        case qcdq
        /// As `qcdq`, but weights whose integers fit INT4 / INT2 are stored packed in that type
        /// (opset 21, or 25 when an INT2 weight is present).
        case qdqNative = "qdq-native"
        /// Every quantizer applied to float tensors (weights as their exact quantized values,
        /// activations as standard float ops): no QuantizeLinear at all.
        case float
        /// QONNX dialect: float tensors + `Quant` / `BipolarQuant` nodes of the domain
        /// `qonnx.custom_op.general` (see `QONNXExport.swift`); not runnable by onnxruntime.
        case qonnx
    }

    /// The quantized representation.
    package var format: Format = .qcdq
    /// ai.onnx opset (nil: 13, or what `qdq-native` needs); one of ``supportedOpsets``.
    package var opset: Int? = nil
    /// The ai.onnx opsets the export writes: 13 (per-channel DequantizeLinear) to 25 (INT2).
    package static let supportedOpsets = 13...25
    /// Keep BatchNormalization nodes instead of folding them into the preceding float conv.
    package var keepBatchNorm = false
    /// Append a Softmax over the classes (tools.py's `export_onnx` did).
    package var softmax = false
    /// Extra `metadata_props` (model, keyword, config, ...).
    package var metadata: [(key: String, value: String)] = []

    package init() {}
}

/// Writes engine graphs as ONNX models: Conv/Gemm/Relu/PRelu/Clip/MaxPool/AveragePool/
/// GlobalAveragePool/Add/Flatten (+ Softmax), with folded BatchNorm, named I/O and a symbolic
/// batch axis; QTool quantizers as QDQ (see `QDQExport.swift`).
///
/// ```swift
/// let proto = try ONNXExport.model(built, options: ONNXExportOptions())
/// try ONNXWriter.write(proto, to: sink)
/// ```
package enum ONNXExport {
    /// The ONNX model of a built QTool model.
    /// - Throws: ``InferenceError`` `.unsupported` naming the node (and layer) that has no
    ///   exact ONNX form.
    package static func model(
        _ built: BuiltModel, options: ONNXExportOptions
    ) throws(InferenceError)
        -> Onnx_ModelProto
    {
        if let o = options.opset, !ONNXExportOptions.supportedOpsets.contains(o) {
            throw InferenceError(.unsupported("ai.onnx opset \(o) (the export writes \(ONNXExportOptions.supportedOpsets))"))
        }
        var weightQuantizers: [String: Quantizer] = [:]
        for l in built.layers {
            if let q = l.weightQuantizer, q.isEnabled, !q.config.passesThrough(iteration: q.state.iteration) {
                weightQuantizers[l.node] = q
            }
        }
        var e = ONNXEmitter(graph: built.graph, options: options, weightQuantizers: weightQuantizers)
        e.inputChannels = try spaceToDepthInputChannels(built)
        try e.emitAll()
        var outputs = built.graph.outputs
        if options.softmax, let last = outputs.last {
            let name = last + ".softmax"
            e.nodes.append(
                ONNXBuild.node(
                    "Softmax", inputs: [last], outputs: [name], name: name,
                    attributes: [.int("axis", 1)]))
            outputs[outputs.count - 1] = name
        }
        // Batch and spatial size are symbolic: the ResNets end in global pooling.
        let inputs = built.graph.inputs.map { ONNXBuild.value($0, .float32, ["batch", 3, "height", "width"]) }
        let outs = outputs.map { ONNXBuild.value($0, .float32, ["batch", .value(Int64(built.numClasses))]) }
        var meta: [(key: String, value: String)] = [
            ("qtools.model", built.model), ("qtools.format", e.usedQuantization ? options.format.rawValue : "float"),
            ("qtools.batchnorm", options.keepBatchNorm ? "kept" : "folded into float convs"),
            // The spatial size is symbolic; the importer reads the trained size back from here.
            ("qtools.input_size", String(built.inputSize)),
        ]
        for l in built.layers {
            if let b = l.activationBits { meta.append(("qtools.\(l.name).activation_bits", bitsText(b))) }
            if let b = l.weightBits { meta.append(("qtools.\(l.name).weight_bits", bitsText(b))) }
        }
        meta += e.metadata
        meta += options.metadata
        let (opset, ir) = e.opsetAndIR()
        return ONNXBuild.model(
            graph: built.model, nodes: e.nodes, initializers: e.initializers, inputs: inputs, outputs: outs,
            irVersion: ir, opsets: [("", opset)] + (e.usesQONNX ? [(ONNXEmitter.qonnxDomain, Int64(1))] : []),
            producer: "qtools", producerVersion: "1",
            metadata: meta)
    }

    /// The input channel count of every spaceToDepth node (the ONNX form needs it; spatial
    /// sizes are symbolic, channel counts are not), from shape inference at the trained size.
    static func spaceToDepthInputChannels(_ built: BuiltModel) throws(InferenceError) -> [String: Int] {
        let g = built.graph
        guard g.nodes.contains(where: { if case .spaceToDepth = $0.op { true } else { false } }) else { return [:] }
        var shapes: [String: [Int]] = [:]
        for i in g.inputs { shapes[i] = built.inputShape() }
        for (k, t) in g.constants { shapes[k] = t.shape }
        var channels: [String: Int] = [:]
        for i in try g.validate() {
            let n = g.nodes[i]
            let inputs = n.inputs.map { shapes[$0] ?? [] }
            if case .spaceToDepth = n.op { channels[n.name] = inputs[0][1] }
            shapes[n.outputs[0]] = try ShapeInference.outputShape(n.op, inputs)
        }
        return channels
    }

    static func bitsText(_ b: Double) -> String {
        b == b.rounded() ? String(Int(b)) : String(format: "%.2f", b)
    }
}

/// Builds the node and initializer lists of one export.
struct ONNXEmitter {
    let graph: Graph
    let options: ONNXExportOptions
    let weightQuantizers: [String: Quantizer]
    var nodes: [Onnx_NodeProto] = []
    var initializers: [Onnx_TensorProto] = []
    var metadata: [(key: String, value: String)] = []
    var usedQuantization = false
    /// A node of the QONNX domain was written.
    var usesQONNX = false
    var usesInt2 = false
    var usesInt4 = false
    private var initializerNames = Set<String>()
    /// Value renames (a folded BN's output is the conv's; a merged Pad is skipped).
    private var alias: [String: String] = [:]
    /// Conv node -> the BN it absorbs (the conv writes the BN's output value).
    private var foldedBN: [String: Graph.Node] = [:]
    private var skipped = Set<String>()
    /// Pad node merged into the conv that reads it -> its padding.
    private var mergedPad: [String: Padding2d] = [:]
    /// spaceToDepth node -> its input channel count.
    var inputChannels: [String: Int] = [:]

    init(graph: Graph, options: ONNXExportOptions, weightQuantizers: [String: Quantizer]) {
        self.graph = graph
        self.options = options
        self.weightQuantizers = weightQuantizers
    }

    /// ai.onnx opset and IR version for what was emitted.
    func opsetAndIR() -> (Int64, Int64) {
        var opset = options.opset ?? 13
        if usesInt2 { opset = max(opset, 25) } else if usesInt4 { opset = max(opset, 21) }
        let ir: Int64 = opset >= 25 ? 13 : opset >= 21 ? 10 : opset >= 19 ? 9 : opset >= 15 ? 8 : 7
        return (Int64(opset), ir)
    }

    var opset: Int { Int(opsetAndIR().0) }

    mutating func emitAll() throws(InferenceError) {
        let order = try graph.validate()
        var consumers: [String: [Graph.Node]] = [:]
        for n in graph.nodes { for v in n.inputs { consumers[v, default: []].append(n) } }
        let outputs = Set(graph.outputs)
        // Plan BN folding and Pad merging.
        for n in graph.nodes {
            if case .batchNorm = n.op, !options.keepBatchNorm, let conv = graph.producer(of: n.inputs[0]),
                case .conv2d = conv.op, weightQuantizers[conv.name] == nil,
                consumers[conv.outputs[0]]?.count == 1, !outputs.contains(conv.outputs[0])
            {
                foldedBN[conv.name] = n
                skipped.insert(n.name)
            }
            if case .pad(let p) = n.op, p.value == 0, let cs = consumers[n.outputs[0]], cs.count == 1,
                case .conv2d = cs[0].op, cs[0].inputs[0] == n.outputs[0], !outputs.contains(n.outputs[0])
            {
                mergedPad[cs[0].name] = p.padding
                alias[n.outputs[0]] = n.inputs[0]
                skipped.insert(n.name)
            }
        }
        for i in order where !skipped.contains(graph.nodes[i].name) {
            try emit(graph.nodes[i])
        }
    }

    func v(_ name: String) -> String { alias[name] ?? name }

    // MARK: - Initializers

    mutating func addInitializer(_ t: Onnx_TensorProto) {
        guard initializerNames.insert(t.name).inserted else { return }
        initializers.append(t)
    }

    /// A float initializer named `name`.
    @discardableResult
    mutating func floats(_ name: String, _ values: [Float], _ shape: [Int]) -> String {
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.dims = shape.map { Int64($0) }
        t.rawData = Data(Tensor.littleEndianBytes(values))
        addInitializer(t)
        return name
    }

    /// An integer initializer (`dtype` int8/uint8/int64) named `name`.
    @discardableResult
    mutating func integers(
        _ name: String, _ values: [Int], _ shape: [Int], _ type: Onnx_TensorProto.DataType
    )
        -> String
    {
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = Int32(type.rawValue)
        t.dims = shape.map { Int64($0) }
        var bytes: [UInt8] = []
        switch type {
        case .int64:
            for x in values { for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: Int64(x) >> (8 * k))) } }
        case .int4, .uint4:
            bytes = [UInt8](repeating: 0, count: (values.count + 1) / 2)
            for (i, x) in values.enumerated() { bytes[i / 2] |= UInt8(truncatingIfNeeded: x & 0xF) << (4 * (i % 2)) }
        case .int2, .uint2:
            bytes = [UInt8](repeating: 0, count: (values.count + 3) / 4)
            for (i, x) in values.enumerated() { bytes[i / 4] |= UInt8(truncatingIfNeeded: x & 0x3) << (2 * (i % 4)) }
        default:
            bytes = values.map { UInt8(truncatingIfNeeded: $0) }
        }
        t.rawData = Data(bytes)
        addInitializer(t)
        return name
    }

    mutating func constant(_ name: String) -> String {
        let t = graph.constants[name]!
        addInitializer(ONNXBuild.tensor(name, t))
        return name
    }

    mutating func node(
        _ op: String, _ inputs: [String], _ output: String, name: String? = nil,
        _ attributes: [ONNXBuild.Attribute] = []
    ) {
        nodes.append(ONNXBuild.node(op, inputs: inputs, outputs: [output], name: name ?? output, attributes: attributes))
    }

    // MARK: - Nodes

    mutating func emit(_ n: Graph.Node) throws(InferenceError) {
        let out = n.outputs[0]
        let x = n.inputs.first.map(v) ?? ""
        switch n.op {
        case .conv2d(let a):
            try emitConv(n, a)
        case .linear:
            let w = try weightInput(n, n.inputs[1])
            var inputs = [x, w]
            if n.inputs.count > 2 { inputs.append(constant(n.inputs[2])) }
            node("Gemm", inputs, out, [.int("transB", 1)])
        case .batchNorm(let eps):
            node("BatchNormalization", [x] + n.inputs[1...].map { constant($0) }, out, [.float("epsilon", eps)])
        case .relu:
            node("Relu", [x], out)
        case .prelu:
            let a = graph.constants[n.inputs[1]]!
            let slope =
                a.elementCount == 1
                ? constant(n.inputs[1])
                : floats(n.inputs[1], a.floats(), [a.elementCount, 1, 1])
            node("PRelu", [x, slope], out)
        case .hardtanh(let lo, let hi):
            node("Clip", [x, floats(out + ".min", [lo], []), floats(out + ".max", [hi], [])], out)
        case .clamp(let lo, let hi):
            node(
                "Clip",
                [
                    x, lo.map { floats(out + ".min", [$0], []) } ?? "",
                    hi.map { floats(out + ".max", [$0], []) } ?? "",
                ], out)
        case .maxPool2d(let p):
            node("MaxPool", [x], out, poolAttributes(p, max: true))
        case .avgPool2d(let p):
            node("AveragePool", [x], out, poolAttributes(p, max: false))
        case .adaptiveAvgPool2d(let oh, let ow):
            guard oh == 1 && ow == 1 else {
                throw InferenceError(
                    .unsupported("adaptive average pooling to \(oh)x\(ow) has no fixed ONNX form (only 1x1 → GlobalAveragePool)"),
                    node: n.name)
            }
            node("GlobalAveragePool", [x], out)
        case .add:
            node("Add", [x, v(n.inputs[1])], out)
        case .mul:
            let b = n.inputs[1]
            node("Mul", [graph.constants[x] != nil ? constant(x) : x, graph.constants[b] != nil ? constant(b) : v(b)], out)
        case .reduceMean(let axes, let keep):
            emitReduceMean(x, axes: axes.map { Int64($0) }, keepDims: keep, output: out)
        case .channelAffine:
            let s = graph.constants[n.inputs[1]]!, b = graph.constants[n.inputs[2]]!
            let c = s.elementCount
            let scaled = out + ".scaled"
            node("Mul", [x, constantValue(s.floats(), channels: c, name: n.inputs[1])], scaled)
            node("Add", [scaled, constantValue(b.floats(), channels: c, name: n.inputs[2])], out)
        case .flatten(let d):
            node("Flatten", [x], out, [.int("axis", Int64(d))])
        case .reshape(let shape):
            node("Reshape", [x, integers(out + ".shape", shape, [shape.count], .int64)], out)
        case .softmax(let axis):
            node("Softmax", [x], out, [.int("axis", Int64(axis))])
        case .pad(let p):
            let pads = [0, 0, p.padding.top, p.padding.left, 0, 0, p.padding.bottom, p.padding.right]
            node(
                "Pad", [x, integers(out + ".pads", pads, [8], .int64), floats(out + ".value", [p.value], [])], out,
                [.string("mode", "constant")])
        case .concat:
            node("Concat", n.inputs.map(v), out, [.int("axis", 1)])
        case .identity:
            node("Identity", [x], out)
        case .quantize(let q):
            try emitQuantize(q, node: n.name, input: x, output: out)
        case .spaceToDepth(let f):
            // ONNX SpaceToDepth orders channels block-major, pixel_unshuffle channel-major. With
            // symbolic height/width a Reshape/Transpose form needs shape arithmetic, so write the
            // exact equivalent conv: groups = C, kernel = stride = f, one-hot weights (output
            // channel c·f² + dy·f + dx takes tap (dy, dx) of channel c; every other tap is 0).
            guard let c = inputChannels[n.name] else {
                throw InferenceError(.unsupported("spaceToDepth input channels unknown"), node: n.name)
            }
            var w = [Float](repeating: 0, count: c * f * f * f * f)
            for k in 0..<(c * f * f) { w[k * f * f + k % (f * f)] = 1 }
            let weight = floats(out + ".one_hot", w, [c * f * f, 1, f, f])
            node(
                "Conv", [x, weight], out,
                [
                    .ints("kernel_shape", [Int64(f), Int64(f)]), .ints("strides", [Int64(f), Int64(f)]),
                    .ints("pads", [0, 0, 0, 0]), .int("group", Int64(c)),
                ])
        case .depthToSpace, .integerConv, .binaryConv2d:
            // No QTool network the builder supports uses them yet, so refuse rather than guess.
            throw InferenceError(.unsupported("\(n.op.typeName) has no ONNX export yet"), node: n.name)
        }
    }

    func poolAttributes(_ p: Pool2dAttributes, max: Bool) -> [ONNXBuild.Attribute] {
        var a: [ONNXBuild.Attribute] = [
            .ints("kernel_shape", [Int64(p.kernel.h), Int64(p.kernel.w)]),
            .ints("strides", [Int64(p.stride.h), Int64(p.stride.w)]),
            .ints("pads", [p.padding.top, p.padding.left, p.padding.bottom, p.padding.right].map { Int64($0) }),
            .int("ceil_mode", p.ceilMode ? 1 : 0),
        ]
        if max {
            a.append(.ints("dilations", [Int64(p.dilation.h), Int64(p.dilation.w)]))
        } else {
            a.append(.int("count_include_pad", p.countIncludePad ? 1 : 0))
        }
        return a
    }

    mutating func emitConv(_ n: Graph.Node, _ a: Conv2dAttributes) throws(InferenceError) {
        var pad = a.padding
        if let m = mergedPad[n.name] {
            pad = Padding2d(
                top: pad.top + m.top, left: pad.left + m.left, bottom: pad.bottom + m.bottom,
                right: pad.right + m.right)
        }
        var out = n.outputs[0]
        var w: String
        var bias: String? = nil
        if let bn = foldedBN[n.name] {
            out = bn.outputs[0]
            let wt = graph.constants[n.inputs[1]]!
            let cout = wt.shape[0]
            let per = wt.elementCount / cout
            let gamma = graph.constants[bn.inputs[1]]!.floats(), beta = graph.constants[bn.inputs[2]]!.floats()
            let mean = graph.constants[bn.inputs[3]]!.floats(), vars = graph.constants[bn.inputs[4]]!.floats()
            guard case .batchNorm(let eps) = bn.op else { preconditionFailure() }
            var wf = wt.floats()
            var b = n.inputs.count > 2 ? graph.constants[n.inputs[2]]!.floats() : [Float](repeating: 0, count: cout)
            for o in 0..<cout {
                let k = Double(gamma[o]) / (Double(vars[o]) + Double(eps)).squareRoot()
                // Indices of the row's slice: the bounds check is hoisted and the loop vectorizes.
                for i in wf[o * per..<(o + 1) * per].indices { wf[i] = Float(Double(wf[i]) * k) }
                b[o] = Float((Double(b[o]) - Double(mean[o])) * k + Double(beta[o]))
            }
            w = floats(n.name + ".weight_folded", wf, wt.shape)
            bias = floats(n.name + ".bias_folded", b, [cout])
        } else {
            w = try weightInput(n, n.inputs[1])
            if n.inputs.count > 2 { bias = constant(n.inputs[2]) }
        }
        let wt = graph.constants[n.inputs[1]]!
        node(
            "Conv", [v(n.inputs[0]), w] + (bias.map { [$0] } ?? []), out, name: n.name,
            [
                .ints("kernel_shape", [Int64(wt.shape[2]), Int64(wt.shape[3])]),
                .ints("strides", [Int64(a.stride.h), Int64(a.stride.w)]),
                .ints("pads", [pad.top, pad.left, pad.bottom, pad.right].map { Int64($0) }),
                .ints("dilations", [Int64(a.dilation.h), Int64(a.dilation.w)]),
                .int("group", Int64(a.groups)),
            ])
    }
}
