import Engine
import Tensors

/// QTool's DoReFa, PACT, LSQ and non-uniform quantizers (and `wt_bin`) in training mode
/// (seed-reference §11.5-11.8, §11.11, §11.12): the forward is the eval forward with the
/// trainer's current parameter values, so inference and training share one definition of every
/// level; the backward is ``QuantizerGradients`` / ``NonUniformTraining``; a training forward
/// increments `iteration` as QTool's does. LQ-Nets runs its own training forward
/// (``LQNetTraining``: the least-squares basis update).
extension Quantizer: TrainableQuantizeFunction {
    /// `clip_val` for PACT activations and LSQ, `alpha0…` for non-uniform; nothing for DoReFa
    /// and LQ-Nets (whose basis is not trained by the optimizer); then a weight's learned
    /// `gamma` (XNOR++, `wt_gamma`).
    package var parameterKeys: [String] {
        var keys: [String]
        switch config.method {
        case .pact? where config.tag != .wt: keys = [name + ".clip_val"]
        case .lsq?: keys = [name + ".clip_val"]
        case .nonUniform?: keys = nonUniformParameterKeys
        default: keys = []
        }
        if config.gamma == .learned && config.tag == .wt { keys.append(name + ".gamma") }
        return keys
    }

    /// The current values of ``parameterKeys``, in order.
    package var parameterValues: [[Float]] {
        let keys = parameterKeys
        var values: [[Float]] = config.method == .nonUniform ? state.alphas : []
        if keys.contains(where: { $0.hasSuffix(".clip_val") }) { values.append(state.clipVal) }
        if keys.last?.hasSuffix(".gamma") == true { values.append(state.gamma) }
        return values
    }

    /// Throws ``QuantizerError`` `.unsupported` for the methods and options whose training
    /// mode is not implemented yet (learned activation gamma, `adaptive_restore`, `--stable`
    /// calibration of non-uniform alphas or of a normalised weight's clip).
    package func checkTrainable() throws {
        guard let method = config.method else { return }
        func refuse(_ what: String) -> QuantizerError {
            QuantizerError(.unsupported("training-mode \(what) is not implemented yet"), quantizer: name)
        }
        switch method {
        case .dorefa, .pact, .lsq, .binaryWeight, .lqNet, .nonUniform, .xnor: break
        }
        if config.gamma == .learned && config.tag != .wt { throw refuse("learned \(config.tag.rawValue) gamma") }
        if config.adaptiveRestore { throw refuse("adaptive_restore") }
        // Non-uniform closed_form counts twice per training forward before the comparison. A
        // clip or alphas are calibrated (`init_based_on_warmup`); a gamma just gets no gradient.
        let counted = state.iteration + (method == .nonUniform && config.closedForm ? 1 : 0)
        if parameterKeys.contains(where: { !$0.hasSuffix(".gamma") }), config.passesThrough(iteration: counted),
            !calibrates
        {
            throw refuse("\(method == .nonUniform ? "alphas" : "normalised weight clip_val") calibration (iteration <= --stable)")
        }
    }

    /// True when this forward is a `--stable` calibration QTool runs (`init_based_on_warmup`,
    /// §11.12) and qtools implements: a PACT or LSQ `clip_val` of activations, or of weights
    /// without adaptive normalisation, while `iteration <= stable`.
    var calibrates: Bool {
        guard config.method == .pact || config.method == .lsq, parameterKeys.contains(name + ".clip_val") else { return false }
        guard config.tag != .wt || config.adaptive == .none else { return false }
        return config.passesThrough(iteration: state.iteration)
    }

    /// `init_based_on_warmup(x)`: `m = max|x|` (times `correlate` when > 0) folded into the
    /// running mean of the calibration forwards, `(m + (it - 1) clip) / it` with `it` this
    /// forward's `iteration` (the first overwrites the initial value); one global value for every
    /// group. The input passes through unquantized and the clip gets no gradient.
    func calibrationPass(_ x: [Float], clip: [Float]) -> QuantizerTrainPass {
        var m = x.reduce(Float(0)) { max($0, abs($1)) }
        if config.correlate > 0 { m *= Float(config.correlate) }
        let it = state.iteration + 1
        let new = clip.map { (m + (it - 1) * $0) / it }
        return QuantizerTrainPass(y: x, backward: { ($0, []) }, state: [name + ".clip_val": new])
    }

    package func forwardTrain(_ x: [Float], shape: [Int], parameters: [[Float]]) throws -> QuantizerTrainPass {
        try checkTrainable()
        if calibrates, let clip = parameterKeys.firstIndex(of: name + ".clip_val").map({ parameters[$0] }) {
            return calibrationPass(x, clip: clip)
        }
        if config.method == .lqNet {
            do { return try lqNetTrainPass(x, shape: shape) } catch let e as QuantizerError { throw e.located(name) }
        }
        var q = self
        if config.method == .nonUniform {
            guard parameters.count == state.alphas.count, zip(parameters, state.alphas).allSatisfy({ $0.count == $1.count })
            else {
                throw QuantizerError(.inputShape("alphas need \(state.alphas.map(\.count)) values"), quantizer: name)
            }
            q.state.alphas = parameters
            if config.closedForm {
                do { return try q.nonUniformClosedFormPass(x, shape: shape) } catch let e as QuantizerError { throw e.located(name) }
            }
        } else {
            let keys = parameterKeys
            guard parameters.count == keys.count else {
                throw QuantizerError(.inputShape("\(keys.count) parameters needed, \(parameters.count) given"), quantizer: name)
            }
            for (key, value) in zip(keys, parameters) {
                let isGamma = key.hasSuffix(".gamma")
                let count = isGamma ? state.gamma.count : state.clipVal.count
                guard value.count == count else {
                    throw QuantizerError(.inputShape("\(key) needs \(count) values, got \(value.count)"), quantizer: name)
                }
                if isGamma { q.state.gamma = value } else { q.state.clipVal = value }
            }
        }
        let y = try q(x, shape: shape)
        do {
            return QuantizerTrainPass(y: y, backward: try q.backward(x, shape: shape))
        } catch let e as QuantizerError {
            throw e.located(name)
        }
    }

    /// The DoReFa family's and LQ-Nets' `iteration` (legacy `times`) + 1 (LQ-Nets in
    /// `update_bias`; non-uniform `closed_form` + 2: `update_bias` and the DoReFa branch);
    /// XNOR never counts.
    package func stateAfterTrainingForward(_ stateDict: [String: Tensor]) -> [String: Tensor] {
        guard let method = config.method, method.isDoReFaFamily || method == .lqNet else { return [:] }
        for key in [name + ".iteration", name + ".times"] {
            if let t = stateDict[key], t.elementCount == 1 {
                let step: Float = method == .nonUniform && config.closedForm ? 2 : 1
                return [key: Tensor(floats: [t.floats()[0] + step], shape: t.shape)]
            }
        }
        return [:]
    }

    private typealias Backward = @Sendable ([Float]) -> (dx: [Float], parameters: [[Float]])

    /// The backward of the training forward of `x` (this quantizer's parameters are current).
    private func backward(_ x: [Float], shape: [Int]) throws -> Backward {
        guard let method = config.method else { return { ($0, []) } }
        if config.tag == .wt { return try weightBackward(method, x, shape) }
        if config.passesThrough(iteration: state.iteration) { return { ($0, []) } }
        switch method {
        case .dorefa:
            return Self.elementwise(QuantizerGradients.dorefaActivation(x, clip: config.boundary))
        case .pact:
            let (mask, toClip) = QuantizerGradients.pact(x, clip: state.clipVal[0])
            return { dy in
                var sum = 0.0
                for i in dy.indices where toClip[i] != 0 { sum += Double(dy[i]) }
                return (zip(dy, mask).map { $0 * $1 }, [[Float(sum)]])
            }
        case .lsq:
            let group = try activationGroup(shape)
            return Self.lsq(x, clip: state.clipVal, group: group, halfRange: config.halfRange, config, state)
        case .nonUniform:
            return try nonUniformBackward(x, shape: shape)
        case .xnor:
            return Self.elementwise(XnorGradients.mask(x, type: config.gradType, weight: false))
        default:
            throw QuantizerError(.unsupported("training-mode \(method.rawValue) activations are not implemented yet"))
        }
    }

    private func weightBackward(_ method: QuantizerMethod, _ x: [Float], _ shape: [Int]) throws -> Backward {
        var w = x
        var inverseStd: [Float]? = nil
        if config.adaptive == .varMean {
            let n = try WeightNormalization(x, shape: shape, groups: config.normGroup)
            w = n.normalise(x)
            inverseStd = x.indices.map { 1 / n.std[$0 / n.groupSize] }
        }
        var inner: Backward
        let passes = config.passesThrough(iteration: state.iteration)
        if passes {
            // The input comes back unquantized: gamma gets no gradient (PyTorch's None).
            inner = { ($0, []) }
        } else {
            switch method {
            case .dorefa, .pact:
                let b = QuantizerGradients.dorefaWeight(w)
                inner = { (b($0), []) }
            case .binaryWeight:
                inner = { ($0, []) }
            case .lsq:
                let size = w.count / config.quantGroup
                inner = Self.lsq(w, clip: state.clipVal, group: { $0 / size }, halfRange: false, config, state)
            case .nonUniform:
                inner = try nonUniformBackward(w, shape: shape)
            case .xnor:
                inner = Self.elementwise(XnorGradients.mask(w, type: config.gradType, weight: true))
            default:
                throw QuantizerError(.unsupported("training-mode \(method.rawValue) weights are not implemented yet"))
            }
        }
        if config.gamma == .learned, !passes {
            // `y = Q · gamma`: Q is this quantizer's output without the gamma product.
            var plain = self
            plain.config.gamma = .none
            let q = try plain(x, shape: shape)
            let (gamma, method) = (state.gamma, inner)
            inner = { dy in
                let (dq, dgamma) = XnorGradients.gamma(q, dy: dy, gamma: gamma)
                let (dx, p) = method(dq)
                return (dx, p + [dgamma])
            }
        }
        let outer = inner
        guard let inverseStd else { return outer }
        // `(w − mean) / std` with detached statistics: dw = dw_normalised / std.
        return { dy in
            let (dx, p) = outer(dy)
            return (zip(dx, inverseStd).map { $0 * $1 }, p)
        }
    }

    /// The group of each activation element for a `[1]` or `[1, C, 1, 1]` clip.
    private func activationGroup(_ shape: [Int]) throws -> @Sendable (Int) -> Int {
        let qg = config.quantGroup
        if qg == 1 { return { _ in 0 } }
        let channels = shape.count > 1 ? shape[1] : 1
        let plane = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        guard shape.count == 4, channels == qg else {
            throw QuantizerError(.unsupported("clip_val [1,\(qg),1,1] does not broadcast against input \(QuantizerError.dims(shape))"))
        }
        return { ($0 / plane) % channels }
    }

    private static func lsq(
        _ x: [Float], clip: [Float], group: @escaping @Sendable (Int) -> Int, halfRange: Bool,
        _ config: QuantizerConfig, _ state: QuantizerState
    ) -> Backward {
        let (mask, dStep) = QuantizerGradients.lsq(
            x, clip: clip, group: group, levelNum: state.levelNum, halfRange: halfRange,
            gradFactor: config.gradFactor, scaledClamp: config.scaledClamp)
        let factor = config.gradFactor
        return { dy in
            let dclip = QuantizerGradients.lsqClipGradient(dy: dy, dStep: dStep, clip: clip, group: group, gradFactor: factor)
            return (zip(dy, mask).map { $0 * $1 }, [dclip])
        }
    }

    private static func elementwise(_ factor: [Float]) -> Backward {
        { dy in (zip(dy, factor).map { $0 * $1 }, []) }
    }
}
