import Engine
import Formats
import QToolConfig
import Tensors

/// Folds every batch norm that directly follows a convolution or linear layer into it
/// (`qtools convert --fold-bn`).
///
/// The representation (a qtools extension, recorded by the config keyword
/// ``ModelAssembler/foldedBNKeyword`` `qtools_folded_bn`, which QTool ignores):
/// - full-precision conv / linear: the weight rows are scaled by `s = γ/√(σ²+ε)` and the bias
///   becomes `β − μ·s` (+ `s·b` for an existing bias); a conv without bias gains `<conv>.bias`;
/// - quantized conv (weight quantizer or output quantizer enabled): the weight keeps its
///   quantization levels; the BN becomes `<conv>.fold_scale [C]` and `<conv>.fold_bias [C]`, a
///   per-output-channel affine applied after the quantized convolution (and its output
///   quantizer), which the model builder adds when the keyword is set;
/// - the BN's tensors (`weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked`)
///   are removed.
///
/// A BN whose input is not the sole output of a conv/linear (pre-activation layouts: BN after
/// the residual addition or before the conv; `reverse-bn`) stays, listed in ``Result/kept``
/// with the reason: folding a BN into the *following* conv is not exact with zero padding or a
/// quantized input.
package enum BatchNormFolding {
    /// What ``fold(options:stateDict:)`` produced.
    package struct Result: Sendable {
        /// The new state dict, in the input's order (new keys after their layer's weight).
        package var entries: [(name: String, tensor: Tensor)]
        /// Keys removed (the folded BNs' tensors).
        package var removed: [String]
        /// Keys added (`<conv>.bias`, `<conv>.fold_scale`, `<conv>.fold_bias`).
        package var added: [String]
        /// Keys whose values changed (scaled weights, biases).
        package var changed: [String]
        /// `bn -> layer` for each folded BN.
        package var folded: [(bn: String, into: String)]
        /// BNs that stay, with the reason.
        package var kept: [(bn: String, reason: String)]
        /// The options of the folded model (the keyword added).
        package var options: QToolOptions
    }

    /// The main.py override that adds the folded-BN keyword to `options` (`--keyword ...`).
    package static func foldedKeywordOverride(_ options: QToolOptions) -> [String] {
        let words = options.keywords
        if words.contains(ModelAssembler.foldedBNKeyword) { return [] }
        return ["--keyword", (words + [ModelAssembler.foldedBNKeyword]).joined(separator: ",")]
    }

    /// Folds; see the type's summary.
    /// - Throws: ``InferenceError`` when the model does not build from `stateDict`.
    package static func fold(
        options: QToolOptions, stateDict: [(name: String, tensor: Tensor)]
    )
        throws -> Result
    {
        let model = try ModelBuilder.build(options: options, stateDict: stateDict)
        var tensors: [String: Tensor] = [:]
        for (k, t) in stateDict { tensors[k] = t }
        var consumers: [String: [Graph.Node]] = [:]
        for n in model.graph.nodes { for i in n.inputs { consumers[i, default: []].append(n) } }
        let outputs = Set(model.graph.outputs)

        var replaced: [String: Tensor] = [:]
        var added: [(after: String, key: String, tensor: Tensor)] = []
        var removed = Set<String>()
        var folded: [(String, String)] = []
        var foldedBNNodes = Set<String>()
        for layer in model.layers {
            guard let users = consumers[layer.output], users.count == 1, !outputs.contains(layer.output),
                case .batchNorm(let eps) = users[0].op
            else { continue }
            let bnNode = users[0]
            let wKey = bnNode.inputs[1]
            guard wKey.hasSuffix(".weight"), tensors[wKey] != nil else { continue }  // reverse-bn
            let bn = String(wKey.dropLast(7))
            let keys = ["weight", "bias", "running_mean", "running_var"].map { bn + "." + $0 }
            guard bnNode.inputs.dropFirst() == keys[...], keys.allSatisfy({ tensors[$0] != nil }) else { continue }
            let (g, b, m, v) = (
                tensors[keys[0]]!.floats(), tensors[keys[1]]!.floats(), tensors[keys[2]]!.floats(),
                tensors[keys[3]]!.floats()
            )
            let c = g.count
            var scale = [Double](repeating: 0, count: c), shift = scale
            for i in 0..<c {
                scale[i] = Double(g[i]) / (Double(v[i]) + Double(eps)).squareRoot()
                shift[i] = Double(b[i]) - Double(m[i]) * scale[i]
            }
            let quantized = layer.weightBits != nil || layer.output != layer.node
            let wName = layer.name + ".weight"
            let biasName = layer.name + ".bias"
            if quantized {
                added.append((wName, layer.name + ".fold_scale", Tensor(floats: scale.map { Float($0) }, shape: [c])))
                added.append((wName, layer.name + ".fold_bias", Tensor(floats: shift.map { Float($0) }, shape: [c])))
            } else {
                guard let w = tensors[wName] else { continue }
                var wf = w.floats()
                let per = wf.count / c
                for o in 0..<c { for j in 0..<per { wf[o * per + j] = Float(Double(wf[o * per + j]) * scale[o]) } }
                replaced[wName] = Tensor(floats: wf, shape: w.shape)
                if let old = tensors[biasName] {
                    let ob = old.floats()
                    replaced[biasName] = Tensor(floats: (0..<c).map { Float(Double(ob[$0]) * scale[$0] + shift[$0]) }, shape: [c])
                } else {
                    added.append((wName, biasName, Tensor(floats: shift.map { Float($0) }, shape: [c])))
                }
            }
            for k in keys + [bn + ".num_batches_tracked"] where tensors[k] != nil { removed.insert(k) }
            folded.append((bn, layer.name))
            foldedBNNodes.insert(bnNode.name)
        }
        var kept: [(String, String)] = []
        let producers = Dictionary(model.graph.nodes.flatMap { n in n.outputs.map { ($0, n) } }, uniquingKeysWith: { a, _ in a })
        for n in model.graph.nodes where !foldedBNNodes.contains(n.name) {
            guard case .batchNorm = n.op else { continue }
            let name = n.inputs[1].hasSuffix(".weight") ? String(n.inputs[1].dropLast(7)) : n.name
            let from = producers[n.inputs[0]]
            let reason: String
            if let from, case .conv2d = from.op {
                reason = "its conv's output is also used elsewhere"
            } else if let from, from.name.hasSuffix(".affine") {
                reason = "reverse-bn (affine before a non-affine BN) is not folded"
            } else {
                let what = from.map { "\($0.op.typeName) '\($0.name)'" } ?? "the model input"
                reason =
                    "follows \(what), not a conv/linear (pre-activation: folding into the next conv is not exact with zero padding or a quantized input)"
            }
            kept.append((name, reason))
        }

        var entries: [(name: String, tensor: Tensor)] = []
        var addedKeys: [String] = []
        for (k, t) in stateDict where !removed.contains(k) {
            entries.append((k, replaced[k] ?? t))
            for a in added where a.after == k {
                entries.append((a.key, a.tensor))
                addedKeys.append(a.key)
            }
        }
        let o = try options.applying(arguments: foldedKeywordOverride(options))
        return Result(
            entries: entries, removed: stateDict.map(\.name).filter { removed.contains($0) }, added: addedKeys,
            changed: stateDict.map(\.name).filter { replaced[$0] != nil }, folded: folded, kept: kept, options: o)
    }
}
