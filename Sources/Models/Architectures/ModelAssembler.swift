import Engine
import Formats
import QToolConfig
import Tensors

/// Builds a ``Graph`` module by module, binding each module's tensors by state-dict name.
///
/// Value naming: a module's output value is its module path (`layer1.0.conv1.0`,
/// `layer1.0.bn1.0`); helper nodes get a suffix (`layer1.0.conv1.0.pad`). Constants are named
/// by their state-dict key. The module's own tensors as the checkpoint holds them (float
/// weights, biases, BN affine parameters and running statistics, PReLU slopes) are graph
/// variables (``Graph/variables``); a quantized weight is a constant holding the quantized
/// weight (its quantizer is in ``BuiltModel/Layer/weightQuantizer``), as are derived values
/// (folded BN scales, fixed slopes). Quantizer parameters live in the quantize ops' functions.
package struct ModelAssembler {
    /// The graph so far.
    package var graph = Graph()
    /// The state dict being bound.
    package var binder: StateDictBinder
    /// Parsed config.
    package let options: QToolOptions
    /// Conv / linear layers so far.
    package var layers: [BuiltModel.Layer] = []
    /// Quantizers whose config levels the forward does not use (see ``Quantizer/ignoredLevels``).
    package var ignoredLevels: [String] = []
    /// Learnable elements per node.
    package var nodeParameters: [String: Int] = [:]
    private var used = Set<String>()
    /// Values produced by a conv/linear that carries a folded BN (`qtools_folded_bn`).
    private var foldedOutputs = Set<String>()
    /// The config keyword of a model whose BNs were folded by `qtools convert --fold-bn`.
    package static let foldedBNKeyword = "qtools_folded_bn"
    private var foldedBN: Bool { options.hasKeyword(Self.foldedBNKeyword) }
    /// Build for training: a quantized weight stays a variable holding the raw weight, with a
    /// `<path>.quant_weight` quantize node on it, and the quantizers' learnable parameters
    /// (``TrainableQuantizeFunction/parameterKeys``) are variables too. Off (inference), the
    /// quantized weight is baked into a constant at build time.
    package var forTraining = false
    /// Modules whose `.weight` the state dict holds already quantized (unpacked from a packed
    /// file): their weight quantizer is not applied again.
    package var prequantized: Set<String> = []

    /// An assembler over a binder.
    package init(options: QToolOptions, binder: StateDictBinder) {
        self.options = options
        self.binder = binder
    }

    /// `base`, or `base.2`, `base.3`, ... when taken.
    package mutating func unique(_ base: String) -> String {
        var name = base
        var k = 2
        while used.contains(name) {
            name = "\(base).\(k)"
            k += 1
        }
        used.insert(name)
        return name
    }

    @discardableResult
    private mutating func node(_ op: Op, _ base: String, _ inputs: [String], params: Int = 0) -> String {
        let name = unique(base)
        graph.add(op, name: name, inputs: inputs)
        if params > 0 { nodeParameters[name] = params }
        return name
    }

    private mutating func constant(_ key: String, _ t: Tensor) -> String {
        graph.addConstant(key, t)
        return key
    }

    /// A state-dict tensor the module owns as it is stored (see the type's notes).
    private mutating func variable(_ key: String, _ t: Tensor) -> String {
        graph.addVariable(key, t)
        return key
    }

    // MARK: - Layers

    /// A convolution module at `path`: a plain `nn.Conv2d` (`quantized: false`, or a
    /// `custom_conv` with `force_fp`) or a `custom_conv` with its three quantizers (§10.1).
    package mutating func conv(
        _ path: String, _ x: String, in cin: Int, out cout: Int, kernel k: Int, stride: Int = 1,
        padding: Int = 0, groups: Int = 1, bias: Bool = false, quantized: Bool
    ) throws(InferenceError) -> String {
        let wShape = [cout, cin / groups, k, k]
        var w = try binder.take(path + ".weight", shape: wShape)
        var inputs = [path + ".weight"]
        var params = w.elementCount
        let foldedBias = foldedBN && !bias && binder.has(path + ".bias")
        if bias || foldedBias {
            let b = try binder.take(path + ".bias", shape: [cout])
            inputs.append(variable(path + ".bias", b))
            params += cout
        }
        var q: ConvQuantizers? = nil
        if quantized {
            do {
                var tensors = binder.tensors
                if binder.isRandom {
                    tensors = QuantizerKeys.placeholders([
                        (try QuantizerConfig(options: options, tag: .fm, shape: [1, cin, 1, 1]), path + ".quant_activation"),
                        (try QuantizerConfig(options: options, tag: .wt, shape: [cout, cin, k, k]), path + ".quant_weight"),
                        (try QuantizerConfig(options: options, tag: .ot, shape: [1, cout, 1, 1]), path + ".quant_output"),
                    ])
                }
                q = try ConvQuantizers(
                    options: options, layer: path, inChannels: cin, outChannels: cout, kernel: k,
                    padding: padding, tensors: tensors)
            } catch { throw QuantizerKeys.error(error) }
            for quantizer in [q!.activation, q!.weight, q!.output] {
                try QuantizerKeys.claim(quantizer, on: &binder)
            }
        }
        var v = x
        var convPadding = padding
        if let q, q.weight.isEnabled, !forTraining, !prequantized.contains(path) {
            do {
                w = Tensor(floats: try q.quantizeWeight(w.floats(), shape: wShape), shape: wShape)
            } catch { throw QuantizerKeys.error(error) }
        }
        if let q, q.activation.isEnabled {
            let pad = Op.pad(Pad2dAttributes(Padding2d(padding)))
            let quant = Op.quantize(QuantizeAttributes(q.activation))
            let qp = QuantizerKeys.learnedCount(q.activation)
            if forTraining { parameterVariables(q.activation) }
            if q.paddingAfterQuant {
                v = node(quant, path + ".quant_activation", [v], params: qp)
                if padding > 0 { v = node(pad, path + ".pad", [v]) }
            } else {
                if padding > 0 { v = node(pad, path + ".pad", [v]) }
                v = node(quant, path + ".quant_activation", [v], params: qp)
            }
            convPadding = 0
        }
        if let q, q.weight.isEnabled, forTraining {
            _ = variable(path + ".weight", w)
            inputs[0] = trainableQuantize(q.weight, path + ".quant_weight", path + ".weight")
        } else if q?.weight.isEnabled == true {
            _ = constant(path + ".weight", w)
        } else {
            _ = variable(path + ".weight", w)
        }
        let outputQuantized = q?.output.isEnabled == true
        let convNode = node(
            .conv2d(.init(stride: stride, padding: convPadding, groups: groups)),
            outputQuantized ? path + ".conv" : path, [v] + inputs, params: params)
        var y = convNode
        if let q, outputQuantized {
            if forTraining { parameterVariables(q.output) }
            y = node(.quantize(QuantizeAttributes(q.output)), path, [y], params: QuantizerKeys.learnedCount(q.output))
        }
        layers.append(
            .init(
                name: path, kind: "conv", node: convNode, input: x, output: y,
                activationBits: q.flatMap { $0.activation.isEnabled ? $0.activation.computedBits : nil },
                weightBits: q.flatMap { $0.weight.isEnabled ? Self.weightBits($0.weight) : nil },
                parameters: params, weightQuantizer: q?.weight, activationQuantizer: q?.activation,
                padding: padding, paddingAfterQuant: q?.paddingAfterQuant ?? false))
        if let q { noteIgnoredLevels(path, q.activation, q.weight) }
        if foldedBN, binder.has(path + ".fold_scale") {
            y = try foldedAffine(path, y, channels: cout)
        } else if foldedBias {
            foldedOutputs.insert(y)
        }
        return y
    }

    private static func weightBits(_ q: Quantizer) -> Double {
        q.computedBits
    }

    /// Records the quantizers of `path` whose config levels the forward does not use.
    mutating func noteIgnoredLevels(_ path: String, _ activation: Quantizer, _ weight: Quantizer) {
        for (what, q) in [("activation", activation), ("weight", weight)] {
            guard let (c, l) = q.ignoredLevels else { continue }
            let shown = l == l.rounded() && abs(l) < 1e9 ? String(Int(l)) : String(l)
            ignoredLevels.append(
                "\(path) \(what): level_num \(shown) (\(Self.bitsText(Double(l)))) computed, config \(c) levels (\(Self.bitsText(Double(c))))"
            )
        }
    }

    static func bitsText(_ levels: Double) -> String {
        let b = Quantizer.log2(max(levels, 1))
        return b == b.rounded() ? "\(Int(b)) bits" : "\(b) bits"
    }

    /// A full-precision `nn.Linear` at `path` (`fc`): `[N, in] -> [N, out]`.
    package mutating func linear(
        _ path: String, _ x: String, in cin: Int, out cout: Int, output: String? = nil
    )
        throws(InferenceError) -> String
    {
        let w = try binder.take(path + ".weight", shape: [cout, cin])
        let b = try binder.take(path + ".bias", shape: [cout])
        let name = unique(output ?? path)
        graph.add(.linear, name: name, inputs: [x, variable(path + ".weight", w), variable(path + ".bias", b)])
        nodeParameters[name] = cout * cin + cout
        layers.append(
            .init(
                name: path, kind: "linear", node: name, input: x, output: name, activationBits: nil, weightBits: nil,
                parameters: cout * cin + cout))
        if foldedBN { foldedOutputs.insert(name) }
        return name
    }

    /// `nn.BatchNorm2d(C)` (eps 1e-5) at `path`; `num_batches_tracked` is claimed if present.
    package mutating func batchNorm(_ path: String, _ x: String, channels c: Int) throws(InferenceError) -> String {
        if foldedBN, foldedOutputs.contains(x), !binder.has(path + ".weight"), !binder.has(path + ".running_mean") {
            return x  // folded into the conv / linear that produced x
        }
        var inputs = [x]
        for t in ["weight", "bias", "running_mean", "running_var"] {
            inputs.append(variable("\(path).\(t)", try binder.take("\(path).\(t)", shape: [c])))
        }
        try binder.allow(path + ".num_batches_tracked", shape: [])
        return node(.batchNorm(epsilon: 1e-5), path, inputs, params: 2 * c)
    }

    /// Which activation `actv(args)` builds (§5.4): PReLU > NReLU > ReLU6 > LReLU > ReLU.
    package var activationKind: String {
        for w in ["PReLU", "NReLU", "ReLU6", "LReLU"] where options.hasKeyword(w) { return w }
        return "ReLU"
    }

    /// `actv(args)` at `path` (PReLU owns `path.weight [1]`); NReLU returns `x` itself.
    package mutating func activation(_ path: String, _ x: String) throws(InferenceError) -> String {
        switch activationKind {
        case "PReLU":
            let a = try binder.take(path + ".weight", shape: [1])
            return node(.prelu, path, [x, variable(path + ".weight", a)], params: 1)
        case "NReLU": return x
        case "ReLU6": return node(.hardtanh(min: 0, max: 6), path, [x])
        case "LReLU":
            let slope = constant(path + ".negative_slope", Tensor(floats: [0.01], shape: [1]))
            return node(.prelu, path, [x, slope])
        default: return node(.relu, path, [x])
        }
    }

    /// `x * scale + shift` with learnable scalars (`[1]` state-dict keys, nil = 1 / 0)
    /// broadcast over `channels` (Fixup biases and scale, Group-Net branch scales).
    package mutating func scalarAffine(
        _ name: String, _ x: String, channels: Int, scale: String? = nil, shift: String? = nil
    ) throws(InferenceError) -> String {
        if forTraining { return try trainableScalarAffine(name, x, channels: channels, scale: scale, shift: shift) }
        let s = try scale.map { k throws(InferenceError) in try binder.floats(k, shape: [1])[0] } ?? 1
        let b = try shift.map { k throws(InferenceError) in try binder.floats(k, shape: [1])[0] } ?? 0
        let n = unique(name)
        let sc = constant(n + "#scale", Tensor(floats: [Float](repeating: s, count: channels), shape: [channels]))
        let sh = constant(n + "#shift", Tensor(floats: [Float](repeating: b, count: channels), shape: [channels]))
        graph.add(.channelAffine, name: n, inputs: [x, sc, sh])
        nodeParameters[n] = (scale == nil ? 0 : 1) + (shift == nil ? 0 : 1)
        return n
    }

    /// `a + b`.
    package mutating func add(_ name: String, _ a: String, _ b: String) -> String {
        node(.add, name, [a, b])
    }

    /// Any other op.
    package mutating func op(_ op: Op, _ name: String, _ x: String) -> String {
        node(op, name, [x])
    }

    /// The finished model (checks that every state-dict tensor was bound).
    package func finish(
        model: String, output: String, inputSize: Int, numClasses: Int
    )
        throws(InferenceError) -> BuiltModel
    {
        try binder.finish()
        var g = graph
        g.markOutput(output)
        _ = try g.validate(computedWeights: forTraining)
        var built = BuiltModel(
            graph: g, model: model, output: output, inputSize: inputSize, numClasses: numClasses,
            layers: layers, nodeParameters: nodeParameters, boundKeys: binder.claimedOrder)
        built.declaredTensors = binder.declared
        built.ignoredLevels = ignoredLevels
        return built
    }
}

extension ModelAssembler {
    /// A quantized conv's folded BN (`qtools_folded_bn`): `y·fold_scale + fold_bias` per output
    /// channel after the quantized convolution, so the quantized weights keep their levels.
    mutating func foldedAffine(_ path: String, _ y: String, channels c: Int) throws(InferenceError) -> String {
        graph.addConstant(path + ".fold_scale", try binder.take(path + ".fold_scale", shape: [c]))
        graph.addConstant(path + ".fold_bias", try binder.take(path + ".fold_bias", shape: [c]))
        let n = unique(path + ".fold")
        graph.add(.channelAffine, name: n, inputs: [y, path + ".fold_scale", path + ".fold_bias"])
        foldedOutputs.insert(n)
        if let i = layers.indices.last, layers[i].name == path { layers[i].output = n }
        return n
    }

    /// `ReverseBatchNorm2d` (§9.5): `y = BN_noaffine(x·weight + bias)` with the running statistics.
    package mutating func reverseBatchNorm(_ path: String, _ x: String, channels c: Int) throws(InferenceError) -> String {
        let w = try binder.take(path + ".weight", shape: [c])
        let b = try binder.take(path + ".bias", shape: [c])
        _ = variable(path + ".weight", w)
        _ = variable(path + ".bias", b)
        let affine = unique(path + ".affine")
        graph.add(.channelAffine, name: affine, inputs: [x, path + ".weight", path + ".bias"])
        nodeParameters[affine] = 2 * c
        var inputs = [affine]
        graph.addConstant(path + "#ones", Tensor(floats: [Float](repeating: 1, count: c), shape: [c]))
        graph.addConstant(path + "#zeros", Tensor(floats: [Float](repeating: 0, count: c), shape: [c]))
        inputs += [path + "#ones", path + "#zeros"]
        for t in ["running_mean", "running_var"] {
            inputs.append(variable("\(path).\(t)", try binder.take("\(path).\(t)", shape: [c])))
        }
        try binder.allow(path + ".num_batches_tracked", shape: [])
        let n = unique(path)
        graph.add(.batchNorm(epsilon: 1e-5), name: n, inputs: inputs)
        return n
    }

    /// A quantized `custom_linear` (§10.2): input quantizer `[1, in, 1, 1]`, weight quantizer
    /// `[1, 1, out, in]` applied to the `[out, in]` weight at build time.
    package mutating func quantizedLinear(
        _ path: String, _ x: String, in cin: Int, out cout: Int, output: String
    )
        throws(InferenceError) -> String
    {
        let q: LinearQuantizers
        do {
            let tensors =
                binder.isRandom
                ? QuantizerKeys.placeholders([
                    (try QuantizerConfig(options: options, tag: .fm, shape: [1, cin, 1, 1]), path + ".quant_activation"),
                    (try QuantizerConfig(options: options, tag: .wt, shape: [1, 1, cout, cin]), path + ".quant_weight"),
                ]) : binder.tensors
            q = try LinearQuantizers(options: options, layer: path, inFeatures: cin, outFeatures: cout, tensors: tensors)
        } catch { throw QuantizerKeys.error(error) }
        try QuantizerKeys.claim(q.activation, on: &binder)
        try QuantizerKeys.claim(q.weight, on: &binder)
        var w = try binder.take(path + ".weight", shape: [cout, cin])
        let b = try binder.take(path + ".bias", shape: [cout])
        if q.weight.isEnabled, !forTraining, !prequantized.contains(path) {
            do { w = Tensor(floats: try q.weight(w.floats(), shape: [cout, cin]), shape: [cout, cin]) } catch {
                throw QuantizerKeys.error(error)
            }
        }
        var weight = path + ".weight"
        if q.weight.isEnabled, forTraining {
            _ = variable(path + ".weight", w)
            weight = trainableQuantize(q.weight, path + ".quant_weight", path + ".weight")
        } else if q.weight.isEnabled {
            _ = constant(path + ".weight", w)
        } else {
            _ = variable(path + ".weight", w)
        }
        _ = variable(path + ".bias", b)
        var v = x
        if q.activation.isEnabled {
            if forTraining { parameterVariables(q.activation) }
            let n = unique(path + ".quant_activation")
            graph.add(.quantize(QuantizeAttributes(q.activation)), name: n, inputs: [v])
            v = n
        }
        let name = unique(output)
        graph.add(.linear, name: name, inputs: [v, weight, path + ".bias"])
        nodeParameters[name] = cout * cin + cout
        layers.append(
            .init(
                name: path, kind: "linear", node: name, input: x, output: name,
                activationBits: q.activation.isEnabled ? q.activation.computedBits : nil,
                weightBits: q.weight.isEnabled ? q.weight.computedBits : nil,
                parameters: cout * cin + cout, weightQuantizer: q.weight, activationQuantizer: q.activation))
        noteIgnoredLevels(path, q.activation, q.weight)
        return name
    }
}

extension ModelAssembler {
    /// Training builds: the quantizer's learnable parameters as graph variables, named by their
    /// state-dict keys (the quantize op's function reads them by those names).
    mutating func parameterVariables(_ q: Quantizer) {
        for (key, value) in zip(q.parameterKeys, q.parameterValues) where graph.constants[key] == nil {
            let shape = QuantizerKeys.expected(q.config, prefix: q.name).first { $0.key == key }?.shape ?? [value.count]
            graph.addVariable(key, Tensor(floats: value, shape: shape))
        }
    }

    /// Training builds: `name = quantize(weight)` with the weight quantizer `q`.
    mutating func trainableQuantize(_ q: Quantizer, _ name: String, _ weight: String) -> String {
        parameterVariables(q)
        let n = unique(name)
        graph.add(.quantize(QuantizeAttributes(q)), name: n, inputs: [weight])
        nodeParameters[n] = QuantizerKeys.learnedCount(q)
        return n
    }
}
