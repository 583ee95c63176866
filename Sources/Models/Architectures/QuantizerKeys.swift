import Engine
import Tensors

/// The state-dict tensors an enabled quantizer registers (seed-reference §11.2), claimed on a
/// ``StateDictBinder`` so that they count as expected keys.
///
/// ``Quantizer`` already reads and shape-checks the tensors its eval forward uses; this adds
/// the bookkeeping ones (`level_num`, LQ `auxil`/`codec_index`, the unused non-uniform
/// activation `clip_val`). A disabled quantizer owns nothing. `times` is the pre-2020-07
/// name of `iteration`.
enum QuantizerKeys {
    /// Every tensor an enabled quantizer with `c` registers under `prefix` (the module path):
    /// key, shape, and whether the eval forward needs it (others are claimed if present).
    static func expected(_ c: QuantizerConfig, prefix: String) -> [(key: String, shape: [Int], required: Bool)] {
        guard let method = c.method else { return [] }
        let p = prefix + "."
        let qg = c.quantGroup
        let perTensorOrChannel = qg == 1 ? [1] : [1, qg, 1, 1]
        let perGroup = [qg, 1, 1, 1]
        var e: [(String, [Int], Bool)] = [(p + "iteration", [1], true), (p + "level_num", [1], false)]
        switch method {
        case .dorefa, .binaryWeight, .xnor:
            break
        case .pact:
            e.append((p + "clip_val", [1], true))
        case .lsq:
            e.append((p + "clip_val", c.tag == .wt ? perGroup : perTensorOrChannel, true))
        case .nonUniform:
            let shape = c.tag == .wt ? perGroup : perTensorOrChannel
            if c.tag != .wt { e.append((p + "clip_val", shape, false)) }
            for i in 0..<(c.tag == .wt ? 2 : c.levels - 1) { e.append((p + "alpha\(i)", shape, true)) }
            if c.closedForm { e += [(p + "basis", [1], true), (p + "auxil", [1], false)] }
        case .lqNet:
            e += [
                (p + "basis", [c.bit, qg], true), (p + "auxil", [c.bit, qg], false),
                (p + "codec_vector", [c.levels, c.bit], true), (p + "codec_index", [c.levels], false),
                (p + "thrs_multiplier", [c.levels - 1, c.levels], true),
            ]
        }
        if c.gamma == .learned { e.append((p + "gamma", c.tag == .ot ? [1, qg, 1, 1] : perGroup, true)) }
        return e
    }

    /// Claims every tensor of `quantizer` (module path `quantizer.name`).
    static func claim(_ quantizer: Quantizer, on binder: inout StateDictBinder) throws(InferenceError) {
        for (key, shape, required) in expected(quantizer.config, prefix: quantizer.name) {
            if key.hasSuffix(".iteration") && !binder.has(key) && binder.has(key.dropLast(9) + "times") {
                try binder.require(key.dropLast(9) + "times", shape: shape)  // pre-2020-07 name
            } else if required {
                try binder.require(key, shape: shape)
            } else {
                try binder.allow(key, shape: shape)
            }
        }
    }

    /// Placeholder tensors (construction values: iteration 0, so every quantizer passes its
    /// input through) for the quantizers of a conv, for random-weight builds.
    static func placeholders(_ configs: [(QuantizerConfig, String)]) -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for (c, prefix) in configs {
            for (key, shape, _) in expected(c, prefix: prefix) {
                let n = shape.reduce(1, *)
                let v: Float = key.hasSuffix(".iteration") ? 0 : key.hasSuffix(".level_num") ? Float(c.levels) : 1
                d[key] = Tensor(floats: [Float](repeating: v, count: n), shape: shape)
            }
        }
        return d
    }

    /// Learnable elements of the quantizer (clips, alphas, gamma) for parameter counts.
    static func learnedCount(_ quantizer: Quantizer) -> Int {
        let s = quantizer.state
        return s.clipVal.count + s.alphas.reduce(0) { $0 + $1.count } + s.gamma.count
    }

    /// A quantizer error as the model builder's error (keys keep their names).
    static func error(_ e: Error) -> InferenceError {
        guard let q = e as? QuantizerError else { return InferenceError(.unsupportedModel("\(e)")) }
        switch q.reason {
        case .missingTensor(let key, let shape): return InferenceError(.missingTensor(key, expected: shape))
        case .shapeMismatch(let key, let expected, let found):
            return InferenceError(.tensorShape(key, expected: expected, found: found))
        default: return InferenceError(.unsupportedModel("\(q)"))
        }
    }
}
