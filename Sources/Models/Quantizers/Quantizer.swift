import Engine
import Formats
import Tensors

/// One bound quantizer: its resolved settings plus its checkpoint tensors, applied in eval mode.
///
/// ```swift
/// let config = try QuantizerConfig(options: options, tag: .wt, shape: [8, 8, 3, 3])
/// let q = try Quantizer(name: "layer1.0.conv1.0.quant_weight", config: config, tensors: sd)
/// let wq = try q(weight, shape: [8, 8, 3, 3])
/// ```
/// `callAsFunction` is `quantization.forward` in eval mode: disabled → identity; otherwise the
/// method's forward, the `iteration <= stable` pass-through (``QuantizerConfig/passesThrough(iteration:)``,
/// which returns the input as the method saw it: `var-mean`-normalised for weights), then gamma.
package struct Quantizer: Equatable, Sendable {
    /// Module path, e.g. `layer1.0.conv1.0.quant_weight`; prefixes error messages.
    package var name: String
    /// Resolved settings.
    package var config: QuantizerConfig
    /// Bound tensors.
    package var state: QuantizerState

    /// Wraps an already bound state.
    package init(name: String, config: QuantizerConfig, state: QuantizerState) {
        self.name = name
        self.config = config
        self.state = state
    }

    /// Binds `config` to the tensors under `name + "."` in `tensors` (full state-dict keys).
    /// - Throws: ``QuantizerError`` naming the missing or mis-shaped key.
    package init(name: String, config: QuantizerConfig, tensors: [String: Tensor]) throws {
        do {
            self.init(
                name: name, config: config,
                state: try QuantizerState(config: config, prefix: name, tensors: tensors))
        } catch let e as QuantizerError {
            throw e.located(name)
        }
    }

    /// True when the quantizer changes its input at all.
    package var isEnabled: Bool { config.isEnabled }

    /// The eval-mode forward of `x` (row-major, `shape`): NCHW for fm/ot, `[out, in, kh, kw]`
    /// for weights (`[out, in]` for a linear layer's weight).
    /// - Throws: ``QuantizerError`` `.inputShape` / `.unsupported` where QTool would fail.
    package func callAsFunction(_ x: [Float], shape: [Int], threads: Int = 1) throws -> [Float] {
        guard let method = config.method else { return x }
        do {
            guard shape.reduce(1, *) == x.count, !x.isEmpty else {
                throw QuantizerError(
                    .inputShape(
                        "\(x.count) values do not fill shape \(QuantizerError.dims(shape))"))
            }
            return config.tag == .wt
                ? try weight(method, x, shape) : try activation(method, x, shape, threads: threads)
        } catch let e as QuantizerError {
            throw e.located(name)
        }
    }

    private func weight(_ method: QuantizerMethod, _ x: [Float], _ shape: [Int]) throws -> [Float] {
        var w = x
        var norm: WeightNormalization?
        if method != .lqNet && config.adaptive == .varMean {
            let n = try WeightNormalization(x, shape: shape, groups: config.normGroup)
            w = n.normalise(x)
            norm = n
        }
        if config.passesThrough(iteration: state.iteration) { return w }
        let qg = config.quantGroup
        guard w.count % qg == 0 else {
            throw QuantizerError(.inputShape("\(w.count) weights do not split into \(qg) groups"))
        }
        let size = w.count / qg
        var y: [Float]
        switch method {
        case .dorefa, .pact:
            y = DoReFaQuantizer.weight(w, levels: config.levels, clip: config.boundary)
        case .binaryWeight:
            y = DoReFaQuantizer.binaryWeight(w)
        case .lsq, .nonUniform:
            guard shape.count == 4 else {
                throw QuantizerError(
                    .unsupported(
                        "\(method.rawValue) weights need a 4-D conv weight (QTool unpacks four dimensions), got \(QuantizerError.dims(shape))"
                    ))
            }
            if method == .lsq {
                y = LSQQuantizer.apply(
                    w, clip: state.clipVal, group: { $0 / size }, levelNum: state.levelNum,
                    halfRange: false, gradFactor: config.gradFactor, scaledClamp: config.scaledClamp
                )
            } else {
                y = NonUniformQuantizer.apply(
                    w, alphas: state.alphas, chunk: size, groups: qg, levels: 3, oneSided: false,
                    scaledClamp: config.scaledClamp)
            }
        case .lqNet:
            y = LQNetQuantizer.weight(w, table: lqTable(), adaptive: config.adaptive)
        case .xnor:
            y = XnorQuantizer.weight(w, groups: qg)
        }
        if config.gamma == .learned {
            guard qg == 1 || qg == shape[0] else {
                throw QuantizerError(
                    .unsupported(
                        "gamma [\(qg),1,1,1] does not broadcast against weight \(QuantizerError.dims(shape))"
                    ))
            }
            for i in y.indices { y[i] *= state.gamma[qg == 1 ? 0 : i / (y.count / qg)] }
        }
        if config.adaptiveRestore, let norm { y = norm.restore(y) }
        return y
    }

    private func activation(
        _ method: QuantizerMethod, _ x: [Float], _ shape: [Int], threads: Int
    ) throws
        -> [Float]
    {
        if config.passesThrough(iteration: state.iteration) { return x }
        let qg = config.quantGroup
        let channels = shape.count > 1 ? shape[1] : 1
        let plane = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        // `[1,qg,1,1]` tensors broadcast against NCHW only for qg ∈ {1, C}.
        func perChannel(_ what: String) throws -> (Int) -> Int {
            if qg == 1 { return { _ in 0 } }
            guard shape.count == 4, channels == qg else {
                throw QuantizerError(
                    .unsupported(
                        "\(what) [1,\(qg),1,1] does not broadcast against input \(QuantizerError.dims(shape))"
                    ))
            }
            return { ($0 / plane) % channels }
        }
        var y: [Float]
        switch method {
        case .dorefa:
            y = DoReFaQuantizer.activation(x, levels: config.levels, clip: config.boundary)
        case .pact:
            y = DoReFaQuantizer.pact(x, levels: config.levels, clip: state.clipVal[0])
        case .lsq:
            y = LSQQuantizer.apply(
                x, clip: state.clipVal, group: try perChannel("clip_val"), levelNum: state.levelNum,
                halfRange: config.halfRange, gradFactor: config.gradFactor,
                scaledClamp: config.scaledClamp)
        case .nonUniform:
            guard shape.count == 4, (channels * plane) % qg == 0 else {
                throw QuantizerError(
                    .inputShape(
                        "non-uniform activations need NCHW input divisible into \(qg) groups, got \(QuantizerError.dims(shape))"
                    ))
            }
            let chunk = channels * plane / qg
            y = NonUniformQuantizer.apply(
                x, alphas: state.alphas, chunk: chunk, groups: qg, levels: config.levels,
                oneSided: config.halfRange, scaledClamp: config.scaledClamp, threads: threads)
            if config.closedForm { y = y.map { $0 * state.basis[0] } }
        case .lqNet:
            guard channels % qg == 0, ![.mean, .var].contains(config.adaptive) || shape.count == 4
            else {
                throw QuantizerError(
                    .inputShape(
                        "LQ-Nets activations of shape \(QuantizerError.dims(shape)) do not fit \(qg) groups"
                    ))
            }
            y = LQNetQuantizer.activation(
                x, shape: shape, table: lqTable(), adaptive: config.adaptive)
        case .xnor:
            guard shape.count == 4 else {
                throw QuantizerError(
                    .inputShape(
                        "XNOR activations need NCHW input, got \(QuantizerError.dims(shape))"))
            }
            y = XnorQuantizer.activation(x, shape: shape, custom: config.custom)
        case .binaryWeight:
            throw QuantizerError(.unsupported("wt_bin is a weight method"))
        }
        if config.gamma == .learned {
            let group = try perChannel("gamma")
            for i in y.indices { y[i] *= state.gamma[group(i)] }
        }
        return y
    }

    private func lqTable() -> (levels: [[Float]], thresholds: [[Float]]) {
        LQNetQuantizer.levelsAndThresholds(
            basis: state.basis, codecVector: state.codecVector,
            thresholdMultiplier: state.thresholdMultiplier, levels: config.levels, bit: config.bit,
            groups: config.quantGroup)
    }
}
