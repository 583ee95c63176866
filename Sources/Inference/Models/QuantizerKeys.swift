import Tensors

/// The state-dict tensors an enabled quantizer registers (seed-reference §11.2), claimed on a
/// ``StateDictBinder`` so that they count as expected keys.
///
/// ``Quantizer`` already reads and shape-checks the tensors its eval forward uses; this adds
/// the bookkeeping ones (`level_num`, LQ `auxil`/`codec_index`, the unused non-uniform
/// activation `clip_val`). A disabled quantizer owns nothing. `times` is the pre-2020-07
/// name of `iteration`.
enum QuantizerKeys {
    /// Claims every tensor of `quantizer` (module path `quantizer.name`).
    static func claim(_ quantizer: Quantizer, on binder: inout StateDictBinder) throws(InferenceError) {
        let c = quantizer.config
        guard let method = c.method else { return }
        let p = quantizer.name + "."
        let qg = c.quantGroup
        let perTensorOrChannel = qg == 1 ? [1] : [1, qg, 1, 1]
        let perGroup = [qg, 1, 1, 1]
        if binder.has(p + "times") && !binder.has(p + "iteration") {
            try binder.require(p + "times", shape: [1])
        } else {
            try binder.require(p + "iteration", shape: [1])
        }
        try binder.allow(p + "level_num", shape: [1])
        switch method {
        case .dorefa, .binaryWeight, .xnor:
            break
        case .pact:
            try binder.require(p + "clip_val", shape: [1])
        case .lsq:
            try binder.require(p + "clip_val", shape: c.tag == .wt ? perGroup : perTensorOrChannel)
        case .nonUniform:
            let shape = c.tag == .wt ? perGroup : perTensorOrChannel
            if c.tag != .wt { try binder.allow(p + "clip_val", shape: shape) }
            let count = c.tag == .wt ? 2 : c.levels - 1
            for i in 0..<count { try binder.require(p + "alpha\(i)", shape: shape) }
            if c.closedForm {
                try binder.require(p + "basis", shape: [1])
                try binder.allow(p + "auxil", shape: [1])
            }
        case .lqNet:
            try binder.require(p + "basis", shape: [c.bit, qg])
            try binder.allow(p + "auxil", shape: [c.bit, qg])
            try binder.require(p + "codec_vector", shape: [c.levels, c.bit])
            try binder.allow(p + "codec_index", shape: [c.levels])
            try binder.require(p + "thrs_multiplier", shape: [c.levels - 1, c.levels])
        }
        if c.gamma == .learned {
            try binder.require(p + "gamma", shape: c.tag == .ot ? [1, qg, 1, 1] : perGroup)
        }
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
        case .missingTensor(let key, let shape): return InferenceError(.missingTensor(key, expected: shape), value: key)
        case .shapeMismatch(let key, let expected, let found):
            return InferenceError(.tensorShape(key, expected: expected, found: found), value: key)
        default: return InferenceError(.unsupportedModel("\(q)"))
        }
    }
}
