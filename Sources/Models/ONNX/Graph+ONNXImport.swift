import Engine
import Formats
import Tensors

/// Turns an ONNX model into an engine ``Graph``: the ops qtools exports and what
/// `torch.onnx.export` writes for ResNets (Conv, Gemm, BatchNormalization, Relu, PRelu, Clip,
/// MaxPool, AveragePool, GlobalAveragePool, Add, Mul of two computed values, ReduceMean,
/// Flatten, Reshape, Softmax, Pad, Concat, Identity, Dropout). DequantizeLinear and QONNX Quant/BipolarQuant of initializers are folded into
/// float constants (`QONNXImport.swift`); `Constant` nodes, nodes of constants only (torch's
/// `Identity` of a shared initializer, arithmetic on scalars) and shape arithmetic
/// (`Shape`/`Gather`/`Unsqueeze`/`Concat`, the dynamic-batch `x.view(x.size(0), -1)`) fold at
/// import (`ONNXImport+Folding.swift`); runs of
/// element-wise nodes on one value (QuantizeLinear → Clip → DequantizeLinear, Where,
/// GreaterOrEqual, Round, Mul/Add/Sub/Div by constants, Sum, Cast, QONNX Quant ...) become one
/// ``Op/quantize(_:)`` node running an ``ElementwiseProgram``.
///
/// ```swift
/// let model = try ONNXImport.builtModel(try ONNXReader.model(bytes), name: "model.onnx")
/// ```
package enum ONNXImport {
    /// Ops the importer maps to engine ops.
    static let structural: Set<String> = [
        "Conv", "Gemm", "BatchNormalization", "Relu", "PRelu", "MaxPool", "AveragePool", "GlobalAveragePool",
        "Flatten", "Softmax", "Pad", "Concat", "Identity", "Dropout", "ReduceMean", "Reshape",
    ]
    /// Ops that may join an element-wise program.
    static let elementwise: Set<String> = [
        "QuantizeLinear", "DequantizeLinear", "Clip", "Round", "Abs", "Neg", "Cast", "Add", "Sub", "Mul", "Div",
        "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Equal", "Max", "Min", "Where", "Sum",
    ]

    /// The inputs each imported op needs: `required` leading inputs that must be present and
    /// named, at most `max` in all (nil: any number). Checked before a node is read.
    static let arity: [String: (required: Int, max: Int?, names: String)] = [
        "Conv": (2, 3, "X, W"), "Gemm": (2, 3, "A, B"), "BatchNormalization": (5, 5, "X, scale, B, mean, var"),
        "Relu": (1, 1, "X"), "PRelu": (2, 2, "X, slope"), "MaxPool": (1, 1, "X"), "AveragePool": (1, 1, "X"),
        "GlobalAveragePool": (1, 1, "X"), "Flatten": (1, 1, "input"), "Softmax": (1, 1, "input"),
        "Identity": (1, 1, "input"), "Dropout": (1, 3, "data"), "Concat": (1, nil, "inputs"), "Pad": (1, 4, "data"),
        "ReduceMean": (1, 2, "data"), "QuantizeLinear": (2, 3, "x, y_scale"), "DequantizeLinear": (2, 3, "x, x_scale"),
        "Clip": (1, 3, "input"), "Round": (1, 1, "X"), "Abs": (1, 1, "X"), "Neg": (1, 1, "X"), "Cast": (1, 1, "input"),
        "Add": (2, 2, "A, B"), "Sub": (2, 2, "A, B"), "Mul": (2, 2, "A, B"), "Div": (2, 2, "A, B"),
        "Greater": (2, 2, "A, B"), "GreaterOrEqual": (2, 2, "A, B"), "Less": (2, 2, "A, B"),
        "LessOrEqual": (2, 2, "A, B"), "Equal": (2, 2, "A, B"), "Max": (2, 2, "data_0, data_1"),
        "Min": (2, 2, "data_0, data_1"), "Where": (3, 3, "condition, X, Y"), "Sum": (1, nil, "data_0"),
        "Constant": (0, 0, "none"), "Shape": (1, 1, "data"), "Gather": (2, 2, "data, indices"),
        "Unsqueeze": (1, 2, "data"), "Squeeze": (1, 2, "data"), "Reshape": (2, 2, "data, shape"),
        "Sqrt": (1, 1, "X"), "Reciprocal": (1, 1, "X"), "Floor": (1, 1, "X"), "Ceil": (1, 1, "X"),
    ]

    /// The largest kernel, stride, dilation or padding accepted (beyond any real network; a
    /// hostile file must not make the planner size absurd activations).
    static let maxSpatial = 4096
    /// The largest `group` accepted.
    static let maxGroups = 1 << 16

    /// The graph of `model` as a ``BuiltModel`` (one output; a rank-4 input `[N, C, S, S]`,
    /// `C` from the input's fixed channel dimension, else 3; `S` from its fixed height or the
    /// `qtools.input_size` metadata, else 32; another rank as declared, see
    /// ``BuiltModel/declaredInputShape``).
    /// - Throws: ``InferenceError`` `.unsupported` naming the node and op type the engine cannot run.
    package static func builtModel(_ model: ONNXModel, name: String) throws(InferenceError) -> BuiltModel {
        let g = try graph(model)
        let proto = model.proto.graph
        let initNames = Set(model.initializers.map(\.name))
        guard let input = proto.input.first(where: { !initNames.contains($0.name) }), let output = proto.output.first else {
            throw InferenceError(.unsupported("the ONNX graph has no runtime input or no output"))
        }
        // A fixed height, else the size a qtools export records (its spatial dims are symbolic), else 32.
        let dims = input.type.tensorType.shape.dim
        let recorded = model.proto.metadataProps.first { $0.key == "qtools.input_size" }.flatMap { Int($0.value) }
        let size = dims.count == 4 && dims[2].dimValue > 0 ? Int(dims[2].dimValue) : (recorded.flatMap { $0 > 0 ? $0 : nil } ?? 32)
        let od = output.type.tensorType.shape.dim
        let classes = od.count == 2 && od[1].dimValue > 0 ? Int(od[1].dimValue) : 0
        var built = BuiltModel(
            graph: g, model: name, input: input.name, output: output.name, inputSize: size, numClasses: classes,
            layers: [], nodeParameters: [:], boundKeys: [])
        if dims.count == 4 && dims[1].dimValue > 0 { built.inputChannels = Int(dims[1].dimValue) }
        if input.type.tensorType.hasShape { built.declaredInputShape = dims.map { $0.dimValue > 0 ? Int($0.dimValue) : 0 } }
        return built
    }

    /// The engine graph of `model`'s main graph.
    package static func graph(_ model: ONNXModel) throws(InferenceError) -> Graph {
        var b = Importer()
        for (n, t) in model.initializers {
            let m = t.materialize()
            b.constants[n] = (m.floats(), m.shape)
            if m.dtype == .int8 { b.int8ZeroPoints.insert(n) }
            if !m.dtype.isFloatingPoint { b.integerConstants.insert(n) }
        }
        let proto = model.proto.graph
        var g = Graph()
        for i in proto.input where b.constants[i.name] == nil { g.addInput(i.name) }
        for v in proto.input + proto.output + proto.valueInfo where v.type.tensorType.hasShape {
            let dims = v.type.tensorType.shape.dim
            b.ranks[v.name] = dims.count
            if proto.input.contains(where: { $0.name == v.name }) {
                b.probeInputs[v.name] = dims.map { $0.dimValue > 0 ? Int($0.dimValue) : 1 }
            }
        }
        for n in proto.node { try b.visit(n) }
        let outputs = Set(proto.output.map(\.name))
        try b.finishPrograms(outputs: outputs)
        for (name, c) in b.used.sorted(by: { $0.key < $1.key }) {
            _ = c
            let (v, s) = b.constants[name]!
            g.addConstant(name, Tensor(floats: v, shape: s))
        }
        for n in b.nodes { g.add(n) }
        for o in proto.output { g.markOutput(o.name) }
        _ = try g.validate()
        return g
    }
}

/// The importer's state.
struct Importer {
    var constants: [String: (values: [Float], shape: [Int])] = [:]
    var used: [String: Bool] = [:]
    var nodes: [Graph.Node] = []
    var nodeNames = Set<String>()
    /// Element-wise programs under construction.
    var programs: [(root: String, program: ElementwiseProgram, registers: [String: Int], names: [String])] = []
    /// value -> program index, for values a program computes (and its root).
    var programOf: [String: Int] = [:]
    /// Values read by engine nodes (so program outputs are known).
    var readByEngine: [String] = []
    /// Constants of an integer type (integer `Div` truncates).
    var integerConstants = Set<String>()
    /// Shape vectors with entries known only at run time (see `ONNXImport+Folding.swift`).
    var symbolic: [String: SymbolicShape] = [:]
    /// `Shape` outputs of run-time values: dimensions `start..<end` of `of` (nil end: all).
    var lazyShapes: [String: (of: String, start: Int, end: Int?)] = [:]
    /// Declared ranks (graph inputs and outputs, `value_info`).
    var ranks: [String: Int] = [:]
    /// The graph inputs' declared shapes (unknown dimensions 1), for finding ranks.
    var probeInputs: [String: [Int]] = [:]

    func isConstant(_ v: String) -> Bool { constants[v] != nil }

    mutating func constant(_ v: String, _ node: Onnx_NodeProto) throws(InferenceError) -> String {
        guard isConstant(v) else {
            throw InferenceError(.notConstant(v), node: nodeName(node), value: v)
        }
        used[v] = true
        return v
    }

    /// Integer values of a constant input (pads, axes), refused when not whole numbers of a
    /// sane size (a float NaN or 1e30 must not trap the conversion).
    func integers(_ values: [Float], _ n: Onnx_NodeProto, _ what: String) throws(InferenceError) -> [Int] {
        var out: [Int] = []
        for v in values {
            guard v.isFinite, v == v.rounded(), abs(v) <= Float(1 << 30) else {
                throw InferenceError(.invalidAttribute("\(n.opType) \(what): \(v) is not an integer in range"), node: nodeName(n))
            }
            out.append(Int(v))
        }
        return out
    }

    /// The one value of the constant `v` (a Clip bound, a Pad value).
    mutating func scalar(_ v: String, _ n: Onnx_NodeProto) throws(InferenceError) -> Float {
        let c = try constant(v, n)
        guard let x = constants[c]!.values.first, constants[c]!.values.count == 1 else {
            throw InferenceError(
                .shapeMismatch("\(v) must hold one value, holds \(constants[c]!.values.count)"), node: nodeName(n), value: v)
        }
        return x
    }

    func nodeName(_ n: Onnx_NodeProto) -> String { n.name.isEmpty ? (n.output.first ?? n.opType) : n.name }

    func unsupported(_ n: Onnx_NodeProto, _ why: String) -> InferenceError {
        InferenceError(.unsupported("\(n.opType): \(why)"), node: nodeName(n))
    }

    mutating func add(_ op: Op, _ n: Onnx_NodeProto, _ inputs: [String]) {
        var name = nodeName(n)
        var k = 2
        while nodeNames.contains(name) {
            name = "\(nodeName(n)).\(k)"
            k += 1
        }
        nodeNames.insert(name)
        readByEngine += inputs
        nodes.append(Graph.Node(name: name, op: op, inputs: inputs, outputs: [n.output[0]]))
    }

    func ints(_ n: Onnx_NodeProto, _ key: String) -> [Int]? {
        n.attribute.first { $0.name == key }.map { $0.ints.map { Int($0) } }
    }

    func int(_ n: Onnx_NodeProto, _ key: String) -> Int? {
        n.attribute.first { $0.name == key }.map { Int($0.i) }
    }

    func float(_ n: Onnx_NodeProto, _ key: String) -> Float? {
        n.attribute.first { $0.name == key }.map { $0.f }
    }

    func string(_ n: Onnx_NodeProto, _ key: String) -> String? {
        n.attribute.first { $0.name == key }.map { String(decoding: $0.s, as: UTF8.self) }
    }

    func padding(_ n: Onnx_NodeProto) throws(InferenceError) -> Padding2d {
        if let a = string(n, "auto_pad"), a != "NOTSET" { throw unsupported(n, "auto_pad \(a)") }
        let p = ints(n, "pads") ?? [0, 0, 0, 0]
        guard p.count == 4 else { throw unsupported(n, "pads \(p) (2-D only)") }
        return Padding2d(top: p[0], left: p[1], bottom: p[2], right: p[3])
    }

    func pair(_ n: Onnx_NodeProto, _ key: String, _ d: Int) throws(InferenceError) -> (h: Int, w: Int) {
        let v = ints(n, key) ?? [d, d]
        guard v.count == 1 || v.count == 2 else { throw unsupported(n, "\(key) \(v) (2-D only)") }
        return (v[0], v.count > 1 ? v[1] : v[0])
    }

    /// Throws naming the node when it has fewer inputs than its op needs, more than it takes,
    /// or no output (before any input is read).
    func checkArity(_ n: Onnx_NodeProto) throws(InferenceError) {
        guard let out = n.output.first, !out.isEmpty else {
            throw InferenceError(.arity(what: "outputs of \(n.opType)", expected: "at least 1", found: 0), node: nodeName(n))
        }
        let needed: (required: Int, max: Int?, names: String)
        if QONNXQuantNode.isQONNX(n) {
            needed = n.opType == "BipolarQuant" ? (2, 2, "X, scale") : (4, 4, "X, scale, zeropt, bitwidth")
        } else if let a = ONNXImport.arity[n.opType] {
            needed = a
        } else {
            return  // not imported: refused as unsupported by the caller
        }
        let present = n.input.prefix(needed.required).filter { !$0.isEmpty }.count
        if n.input.count < needed.required || present < needed.required {
            throw InferenceError(
                .arity(what: "inputs of \(n.opType) (\(needed.names))", expected: "at least \(needed.required)", found: present),
                node: nodeName(n))
        }
        if let m = needed.max, n.input.count > m {
            throw InferenceError(.arity(what: "inputs of \(n.opType)", expected: "at most \(m)", found: n.input.count), node: nodeName(n))
        }
        if needed.max == nil, n.input.contains(where: \.isEmpty) {  // Sum, Concat: no optional inputs
            throw InferenceError(
                .arity(what: "named inputs of \(n.opType)", expected: "\(n.input.count)", found: n.input.filter { !$0.isEmpty }.count),
                node: nodeName(n))
        }
    }

    /// Throws naming the node when an integer attribute is outside `range`.
    func checkRange(_ n: Onnx_NodeProto, _ key: String, _ values: [Int], _ range: ClosedRange<Int>) throws(InferenceError) {
        if let bad = values.first(where: { !range.contains($0) }) {
            throw InferenceError(
                .invalidAttribute("\(n.opType) \(key) \(values): \(bad) is outside \(range.lowerBound)...\(range.upperBound)"),
                node: nodeName(n))
        }
    }

    /// Bounds of the spatial attributes every imported op shares (a hostile file must fail
    /// here, not ask the planner for terabytes).
    func checkAttributes(_ n: Onnx_NodeProto) throws(InferenceError) {
        let s = ONNXImport.maxSpatial
        for key in ["kernel_shape", "strides", "dilations"] {
            if let v = ints(n, key) { try checkRange(n, key, v, 1...s) }
        }
        if let v = ints(n, "pads") { try checkRange(n, "pads", v, 0...s) }
        if let g = int(n, "group") { try checkRange(n, "group", [g], 1...ONNXImport.maxGroups) }
    }

    mutating func visit(_ n: Onnx_NodeProto) throws(InferenceError) {
        try checkArity(n)
        try checkAttributes(n)
        if try fold(n) { return }
        let inputs = n.input
        let out = n.output.first ?? ""
        // Constant folding of weight DequantizeLinear.
        if n.opType == "DequantizeLinear", inputs.filter({ !$0.isEmpty }).allSatisfy(isConstant) {
            let (q, shape) = constants[inputs[0]]!
            let s = constants[inputs[1]]!.values
            let z = inputs.count > 2 && !inputs[2].isEmpty ? constants[inputs[2]]!.values : [0]
            let axisRaw = int(n, "axis") ?? 1
            let axis = axisRaw < 0 ? axisRaw + shape.count : axisRaw
            guard !s.isEmpty, s.count == 1 || shape.indices.contains(axis) else {
                throw unsupported(n, "scale of \(s.count) values on axis \(axisRaw) of a rank-\(shape.count) tensor")
            }
            guard z.count == 1 || z.count == s.count else {
                throw unsupported(n, "zero point of \(z.count) values for a scale of \(s.count)")
            }
            let inner = s.count == 1 ? 1 : shape[(axis + 1)...].reduce(1, *)
            let dim = s.count == 1 ? 1 : shape[axis]
            guard s.count == 1 || s.count == dim else { throw unsupported(n, "scale of \(s.count) values on axis \(axis)") }
            var v = [Float](repeating: 0, count: q.count)
            for i in q.indices {
                let c = s.count == 1 ? 0 : (i / inner) % dim
                v[i] = (q[i] - z[z.count == 1 ? 0 : c]) * s[c]
            }
            constants[out] = (v, shape)
            return
        }
        let qonnx = QONNXQuantNode.isQONNX(n)
        if qonnx, inputs.filter({ !$0.isEmpty }).allSatisfy(isConstant) {
            try foldQONNX(n)
            return
        }
        let runtime = inputs.filter { !$0.isEmpty && !isConstant($0) }
        if ONNXImport.elementwise.contains(n.opType) || qonnx, try joinProgram(n, runtime: runtime) { return }
        switch n.opType {
        case "Conv":
            let w = try constant(inputs[1], n)
            let ws = constants[w]!.shape
            guard ws.count == 4 else { throw unsupported(n, "weight of rank \(ws.count) (Conv2d only)") }
            let a = Conv2dAttributes(
                stride: try pair(n, "strides", 1), padding: try padding(n), dilation: try pair(n, "dilations", 1),
                groups: int(n, "group") ?? 1)
            var ins = [inputs[0], w]
            if inputs.count > 2, !inputs[2].isEmpty { ins.append(try constant(inputs[2], n)) }
            add(.conv2d(a), n, ins)
        case "Gemm":
            guard (int(n, "transA") ?? 0) == 0, (float(n, "alpha") ?? 1) == 1, (float(n, "beta") ?? 1) == 1 else {
                throw unsupported(n, "transA / alpha / beta other than 0 / 1 / 1")
            }
            var w = try constant(inputs[1], n)
            var (wv, ws) = constants[w]!
            guard ws.count == 2 else { throw unsupported(n, "weight of rank \(ws.count) (a matrix only)") }
            if (int(n, "transB") ?? 0) == 0 {
                var t = [Float](repeating: 0, count: wv.count)
                for i in 0..<ws[0] { for j in 0..<ws[1] { t[j * ws[0] + i] = wv[i * ws[1] + j] } }
                (wv, ws) = (t, [ws[1], ws[0]])
                w = w + ".transposed"
                constants[w] = (wv, ws)
                used[w] = true
            }
            var ins = [inputs[0], w]
            if inputs.count > 2, !inputs[2].isEmpty {
                let c = try constant(inputs[2], n)
                let cv = constants[c]!.values
                guard cv.count == ws[0] || cv.count == 1 else { throw unsupported(n, "bias of \(cv.count) values") }
                let name = c + ".bias"
                constants[name] = (cv.count == 1 ? [Float](repeating: cv[0], count: ws[0]) : cv, [ws[0]])
                used[name] = true
                ins.append(name)
            }
            add(.linear, n, ins)
        case "BatchNormalization":
            add(
                .batchNorm(epsilon: float(n, "epsilon") ?? 1e-5), n,
                [inputs[0]] + (try inputs[1...4].map { v throws(InferenceError) in try constant(v, n) }))
        case "Relu": add(.relu, n, [inputs[0]])
        case "PRelu":
            let a = try constant(inputs[1], n)
            let v = constants[a]!.values
            let name = a + ".flat"
            constants[name] = (v, [v.count])
            used[name] = true
            add(.prelu, n, [inputs[0], name])
        case "Clip":
            var lo: Float? = float(n, "min"), hi: Float? = float(n, "max")
            if inputs.count > 1, !inputs[1].isEmpty { lo = try scalar(inputs[1], n) }
            if inputs.count > 2, !inputs[2].isEmpty { hi = try scalar(inputs[2], n) }
            add(.clamp(min: lo, max: hi), n, [inputs[0]])
        case "MaxPool", "AveragePool":
            guard let k = ints(n, "kernel_shape"), k.count == 2 else { throw unsupported(n, "needs a 2-D kernel_shape") }
            let p = Pool2dAttributes(
                kernel: (k[0], k[1]), stride: try pair(n, "strides", 1), padding: try padding(n),
                dilation: try pair(n, "dilations", 1), ceilMode: (int(n, "ceil_mode") ?? 0) != 0,
                countIncludePad: (int(n, "count_include_pad") ?? 0) != 0)
            add(n.opType == "MaxPool" ? .maxPool2d(p) : .avgPool2d(p), n, [inputs[0]])
        case "GlobalAveragePool": add(.adaptiveAvgPool2d(outputHeight: 1, outputWidth: 1), n, [inputs[0]])
        case "Flatten":
            guard (int(n, "axis") ?? 1) == 1 else { throw unsupported(n, "axis other than 1") }
            add(.flatten(startDim: 1), n, [inputs[0]])
        case "Softmax": add(.softmax(axis: int(n, "axis") ?? -1), n, [inputs[0]])
        case "Identity", "Dropout": add(.identity, n, [inputs[0]])
        case "Concat":
            guard (int(n, "axis") ?? 0) == 1 else { throw unsupported(n, "axis other than 1") }
            add(.concat, n, inputs)
        case "Pad":
            guard (string(n, "mode") ?? "constant") == "constant" else { throw unsupported(n, "mode other than constant") }
            let p =
                inputs.count > 1 && !inputs[1].isEmpty
                ? try integers(constants[try constant(inputs[1], n)]!.values, n, "pads") : (ints(n, "pads") ?? [])
            guard p.count == 8, p[0] == 0, p[1] == 0, p[4] == 0, p[5] == 0 else { throw unsupported(n, "pads \(p) (H/W of NCHW only)") }
            try checkRange(n, "pads", p, 0...ONNXImport.maxSpatial)
            var value: Float = float(n, "value") ?? 0
            if inputs.count > 2, !inputs[2].isEmpty { value = try scalar(inputs[2], n) }
            add(.pad(Pad2dAttributes(Padding2d(top: p[2], left: p[3], bottom: p[6], right: p[7]), value: value)), n, [inputs[0]])
        case "Add" where runtime.count == 2:
            add(.add, n, runtime)
        case "Sum" where runtime.count == 2 && inputs.count == 2:
            add(.add, n, runtime)
        case "Mul" where runtime.count == 2:
            add(.mul, n, runtime)
        case "ReduceMean":
            try reduceMean(n)
        case "Reshape":
            try reshape(n)
        default:
            throw InferenceError(
                .unsupported(
                    "op type \(n.opType) (domain '\(n.domain.isEmpty ? "ai.onnx" : n.domain)') is not supported by the qtools engine"),
                node: nodeName(n))
        }
    }

    /// `ReduceMean` (opset 13: `axes` attribute; 18+: optional constant `axes` input and
    /// `noop_with_empty_axes`); `keepdims` defaults to 1, no axes to every axis.
    mutating func reduceMean(_ n: Onnx_NodeProto) throws(InferenceError) {
        var axes = ints(n, "axes") ?? []
        if n.input.count > 1, !n.input[1].isEmpty {
            guard let c = constants[n.input[1]] else {
                throw unsupported(n, "axes must be an initializer (\(n.input[1]) is computed at run time)")
            }
            axes = try integers(c.values, n, "axes")
        }
        if axes.isEmpty, (int(n, "noop_with_empty_axes") ?? 0) != 0 {
            add(.identity, n, [n.input[0]])
            return
        }
        add(.reduceMean(axes: axes, keepDims: (int(n, "keepdims") ?? 1) != 0), n, [n.input[0]])
    }

    /// A QONNX node's settings (its bit-width must be an initializer).
    func qonnxNode(_ n: Onnx_NodeProto) throws(InferenceError) -> QONNXQuantNode {
        let needed = n.opType == "BipolarQuant" ? 2 : 4
        guard n.input.count >= needed, n.input.prefix(needed).allSatisfy({ !$0.isEmpty }) else {
            throw unsupported(n, "needs \(needed) inputs, has \(n.input.filter { !$0.isEmpty }.count)")
        }
        let b = n.input.count > 3 ? constants[n.input[3]]?.values : nil
        do throws(QONNXImportError) {
            return try QONNXQuantNode(n, bitwidth: b)
        } catch { throw unsupported(n, error.text) }
    }

    /// A QONNX Quant / BipolarQuant of initializers (a weight): folded into a float constant.
    mutating func foldQONNX(_ n: Onnx_NodeProto) throws(InferenceError) {
        let i = n.input
        let q = try qonnxNode(n)
        let x = constants[i[0]]!
        let zero: (values: [Float], shape: [Int]) = ([0], [])
        do throws(QONNXImportError) {
            let z = n.opType == "BipolarQuant" ? zero : constants[i[2]]!
            let y = try q.fold(x, scale: constants[i[1]]!, zeroPoint: z)
            constants[n.output[0]] = (y, x.shape)
        } catch { throw unsupported(n, error.text) }
    }

    /// Adds an element-wise node to the program its runtime inputs belong to (or starts one);
    /// false when the node is an engine op instead (Add or Mul of two independent values, a plain Clip).
    mutating func joinProgram(_ n: Onnx_NodeProto, runtime: [String]) throws(InferenceError) -> Bool {
        guard !runtime.isEmpty else { throw unsupported(n, "all inputs are constants") }
        let owners = Set(runtime.compactMap { programOf[$0] })
        var p: Int
        if owners.count == 1, let o = owners.first, runtime.allSatisfy({ programOf[$0] == o }) {
            p = o
        } else if owners.isEmpty, Set(runtime).count == 1 {
            // A new program rooted at the input, unless the node is an engine op on a float value.
            if n.opType == "Clip" || n.opType == "Add" && runtime.count == 2 { return false }
            p = programs.count
            programs.append((runtime[0], ElementwiseProgram(name: nodeName(n)), [runtime[0]: 0], []))
            programOf[runtime[0]] = p
        } else {
            if ["Add", "Sum", "Mul"].contains(n.opType) { return false }
            throw unsupported(n, "element-wise node mixing values of different branches")
        }
        var prog = programs[p].program
        var regs = programs[p].registers
        func reg(_ v: String) throws(InferenceError) -> Int? {
            if v.isEmpty { return nil }
            if let r = regs[v] { return r }
            guard let c = constants[v] else { throw unsupported(n, "input \(v) comes from another branch") }
            let s = c.shape
            let ok =
                c.values.count == 1 || s.count == 1
                || (s.count >= 2 && s.count <= 4 && s.enumerated().allSatisfy { $0.offset == s.count - 3 || $0.element == 1 })
            guard ok else { throw unsupported(n, "constant \(v) of shape \(s) is not a scalar or per-channel vector") }
            let r = prog.add(.constant(c.values))
            regs[v] = r
            return r
        }
        let i = n.input
        let r: Int
        switch n.opType {
        case "QuantizeLinear":
            let zt = i.count > 2 && !i[2].isEmpty ? i[2] : nil
            let signed = zt.map { int8ZeroPoints.contains($0) } ?? false
            r = prog.add(
                .quantize(
                    try reg(i[0])!, scale: try reg(i[1])!, zeroPoint: try zt.flatMap { v throws(InferenceError) in try reg(v) },
                    lo: signed ? -128 : 0, hi: signed ? 127 : 255))
        case "DequantizeLinear":
            r = prog.add(.dequantize(try reg(i[0])!, scale: try reg(i[1])!, zeroPoint: try reg(i.count > 2 ? i[2] : "")))
        case "Clip":
            r = prog.add(.clip(try reg(i[0])!, lo: try reg(i.count > 1 ? i[1] : ""), hi: try reg(i.count > 2 ? i[2] : "")))
        case "Round", "Abs", "Neg":
            r = prog.add(.unary(n.opType, try reg(i[0])!))
        case "Cast":
            let to = int(n, "to") ?? 1
            switch to {
            case 1, 10, 11, 16: r = prog.add(.unary("Identity", try reg(i[0])!))
            case 2: r = prog.add(.castInteger(try reg(i[0])!, lo: 0, hi: 255))
            case 3: r = prog.add(.castInteger(try reg(i[0])!, lo: -128, hi: 127))
            case 9:
                let zero = prog.add(.constant([0]))
                r = prog.add(.binary("Equal", prog.add(.binary("Equal", try reg(i[0])!, zero)), zero))
            default: throw unsupported(n, "cast to type \(to)")
            }
        case "Where":
            r = prog.add(.select(try reg(i[0])!, try reg(i[1])!, try reg(i[2])!))
        case "Sum":
            r = prog.add(.sum(try i.map { v throws(InferenceError) in try reg(v)! }))
        case _ where QONNXQuantNode.isQONNX(n):
            guard runtime == [i[0]] else { throw unsupported(n, "scale, zeropt and bitwidth must be initializers") }
            let q = try qonnxNode(n)
            let (x, scale) = (try reg(i[0])!, try reg(i[1])!)
            r = q.append(to: &prog, x: x, scale: scale, zeroPoint: try reg(i.count > 2 ? i[2] : ""))
        default:
            r = prog.add(.binary(n.opType, try reg(i[0])!, try reg(i[1])!))
        }
        prog.name = nodeName(n)
        prog.output = r
        regs[n.output[0]] = r
        programs[p].program = prog
        programs[p].registers = regs
        programs[p].names.append(n.output[0])
        programOf[n.output[0]] = p
        return true
    }

    /// Initializers of type INT8 (a QuantizeLinear zero point of that type saturates to [-128, 127]).
    var int8ZeroPoints = Set<String>()

    /// Each program becomes a quantize node per value read outside it (usually one).
    mutating func finishPrograms(outputs: Set<String>) throws(InferenceError) {
        let readOutside = Set(readByEngine).union(outputs)
        for (root, prog, regs, names) in programs {
            let escaping = names.filter { readOutside.contains($0) }
            guard !escaping.isEmpty else {
                throw InferenceError(.unsupported("element-wise nodes on \(root) compute nothing the graph reads"), node: prog.name)
            }
            // One node per value read elsewhere, each running only the steps it needs.
            for out in escaping {
                var p = prog
                p.output = regs[out]!
                if escaping.count > 1 { p = prog.pruned(to: regs[out]!, name: out) }
                nodeNames.insert(out)
                nodes.append(Graph.Node(name: out, op: .quantize(QuantizeAttributes(program: p)), inputs: [root], outputs: [out]))
            }
        }
    }
}
