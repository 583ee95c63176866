import Engine
import Formats
import QToolConfig
import Tensors

/// Packs a QTool model (config + state dict) into the parts of a `bnnpack` file.
///
/// The model is built as `qtools run` builds it, so each quantized layer's weight is exactly the
/// one the float path computes with. A conv (or quantized linear) whose weight quantizer
/// declares 2 levels (XNOR, XNOR++, `wt_bin`, 1-bit DoReFa/LSQ/LQ-Nets) is packed as one bit
/// plane, one declaring 3 levels (FATNN/non-uniform, `--wt_level 3`) as sign and mask planes;
/// each with one scale per output channel. Every other tensor of the state dict (stem, fc,
/// BN, real-valued skips, quantizer parameters) is stored as it is, so the file runs alone.
///
/// A quantized layer that is not really binary or ternary is refused, naming the layer and
/// what was found (a quantizer that passes floats through because `iteration <= stable`,
/// more than 3 levels, values that are not `±s` / `{-s, 0, s}` per output channel), unless
/// `keepFloat` stores it as float (listed in the manifest's `float_layers`).
package enum ModelPacker {
    /// The packed model: its manifest, the plane and scale tensors, and the other tensors.
    package struct Packed {
        /// The manifest.
        package var manifest: PackedManifest
        /// Planes and scales of the packed layers.
        package var packed: [(name: String, tensor: Tensor)]
        /// The rest of the state dict, in its order.
        package var others: [(name: String, tensor: Tensor)]
        /// Each packed layer's quantized weight as the float path computes it (module path ->
        /// OIHW floats), for checks.
        package var floatWeights: [String: [Float]]
    }

    /// Packs; see the type's notes.
    /// - Throws: ``InferenceError`` naming the layer (`.unsupported`), or the model's build error.
    package static func pack(
        options: QToolOptions, stateDict: [(name: String, tensor: Tensor)], keepFloat: Bool = false
    ) throws(InferenceError) -> Packed {
        let model = try ModelBuilder.build(options: options, stateDict: stateDict)
        var layers: [PackedManifest.Layer] = []
        var floatLayers: [PackedManifest.FloatLayer] = []
        var packed: [(name: String, tensor: Tensor)] = []
        var replaced = Set<String>()
        var floatWeights: [String: [Float]] = [:]
        var afterQuant = false
        for layer in model.layers {
            guard let wq = layer.weightQuantizer, wq.isEnabled else { continue }
            afterQuant = afterQuant || layer.paddingAfterQuant
            do {
                let (entry, planes, w) = try packLayer(layer, weightQuantizer: wq, model: model)
                layers.append(entry)
                packed += planes.tensors(entry)
                replaced.insert(layer.name + ".weight")
                floatWeights[layer.name] = w
            } catch {
                guard keepFloat else {
                    throw InferenceError(
                        .unsupported("not packable: \(error.text); --keep-float stores it as float"), node: layer.name)
                }
                floatLayers.append(.init(name: layer.name, reason: error.text))
            }
        }
        let manifest = PackedManifest(
            model: options.model, padding: afterQuant ? "after_quant" : "before_quant", layers: layers,
            floatLayers: floatLayers)
        return Packed(
            manifest: manifest, packed: packed, others: stateDict.filter { !replaced.contains($0.name) },
            floatWeights: floatWeights)
    }

    /// Why a layer is not packed.
    struct Refusal: Error {
        var text: String
    }

    private static func packLayer(
        _ layer: BuiltModel.Layer, weightQuantizer wq: Quantizer, model: BuiltModel
    ) throws(Refusal) -> (PackedManifest.Layer, WeightPlanes, [Float]) {
        if wq.config.passesThrough(iteration: wq.state.iteration) {
            throw Refusal(text: "its weight quantizer (\(wq.method)) \(passThrough(wq))")
        }
        if let aq = layer.activationQuantizer, aq.isEnabled, aq.config.passesThrough(iteration: aq.state.iteration) {
            throw Refusal(text: "its input quantizer (\(aq.method)) \(passThrough(aq))")
        }
        let levels = declaredLevels(wq)
        guard levels == 2 || levels == 3 else {
            throw Refusal(
                text:
                    "its weight quantizer (\(wq.method)) has \(levels) levels; bnnpack 1 packs binary (2 levels) and ternary (3 levels) weights"
            )
        }
        guard let w = model.graph.constants[layer.name + ".weight"],
            let node = model.graph.nodes.first(where: { $0.name == layer.node })
        else { throw Refusal(text: "the built graph has no constant weight for it") }
        let values = w.floats()
        let planes: WeightPlanes
        do {
            planes = try WeightPlanes.pack(values, shape: w.shape, ternary: levels == 3)
        } catch {
            throw Refusal(text: "its \(wq.method) weights are declared \(levels == 3 ? "ternary" : "binary"), but \(error.description)")
        }
        var stride = [1, 1], dilation = [1, 1], groups = 1
        if case .conv2d(let a) = node.op {
            stride = [a.stride.h, a.stride.w]
            dilation = [a.dilation.h, a.dilation.w]
            groups = a.groups
        }
        let dense = layer.kind == "linear"
        let cout = w.shape[0]
        let cin = w.shape[1] * groups
        let (encoding, quantizer, zero) = inputEncoding(layer.activationQuantizer)
        let p = layer.padding
        let padValue = p == 0 ? "none" : layer.paddingAfterQuant ? "0" : zero
        let entry = PackedManifest.Layer(
            name: layer.name, op: (levels == 3 ? "t" : "b") + (dense ? "dense" : "conv2d"), inChannels: cin,
            outChannels: cout, kernel: dense ? [1, 1] : [w.shape[2], w.shape[3]], stride: stride, dilation: dilation,
            groups: groups, pads: [p, p, p, p], padValue: padValue, inputEncoding: encoding, inputQuantizer: quantizer,
            weightEncoding: levels == 3 ? "ternary" : "binary", weightQuantizer: wq.method)
        return (entry, planes, values)
    }

    private static func passThrough(_ q: Quantizer) -> String {
        let i = q.state.iteration
        let shown = i == i.rounded() ? String(Int(i)) : String(i)
        return "passes floats through (iteration \(shown) <= stable \(q.config.stable): QTool quantizes only after "
            + "`stable` iterations; XNOR and LQ-Nets never count them, so they need --stable -1)"
    }

    /// The levels a weight quantizer's forward produces at most (XNOR and `wt_bin`: 2).
    static func declaredLevels(_ q: Quantizer) -> Int {
        switch q.config.method {
        case .xnor, .binaryWeight: return 2
        case .lsq where q.state.levelNum.isFinite && q.state.levelNum >= 1: return Int(q.state.levelNum)
        default: return q.config.levels
        }
    }

    /// The manifest's input encoding, quantizer text and the encoding's value of a zero input.
    static func inputEncoding(_ q: Quantizer?) -> (encoding: String, quantizer: String, zero: String) {
        guard let q, q.isEnabled, let method = q.config.method else { return ("float", "none", "0") }
        let levels = method == .lsq && q.state.levelNum.isFinite ? Int(q.state.levelNum) : q.config.levels
        switch method {
        case .xnor:
            // A zero-padded pixel binarises to +1, times its scale: none or `resolution` keep
            // +1 (times E of the channel), `channel` (E = mean over channels of |0|) makes it 0.
            return ("binary", "xnor(scale=\(q.config.custom.rawValue))", q.config.custom == .channel ? "0" : "+1")
        case .dorefa, .pact: return ("unipolar:\(levels)", q.method, "0")
        case .nonUniform:
            return q.config.halfRange ? ("unipolar:\(levels)", q.method, "0") : ("ternary", q.method, "0")
        case .lsq: return q.config.halfRange ? ("unipolar:\(levels)", q.method, "0") : ("levels:\(levels)", q.method, "q(0)")
        case .lqNet, .binaryWeight: return ("levels:\(levels)", q.method, "q(0)")
        }
    }
}
