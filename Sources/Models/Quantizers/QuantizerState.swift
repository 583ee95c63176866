import Engine
import Formats
import Tensors

/// The checkpoint tensors one quantizer reads in eval mode (seed-reference §11.2), as floats.
///
/// Bind it with ``init(config:prefix:tensors:)`` from the state dict entries under
/// `<layer>.quant_activation.`, `.quant_weight.` or `.quant_output.`. Which tensors are
/// required depends on the method; shapes are checked exactly against §11.2.
package struct QuantizerState: Equatable, Sendable {
    /// `iteration [1]` (legacy name `times`).
    package var iteration: Float = 0
    /// `level_num [1]`; read by LSQ at every call. Checkpoints from before 2020-10-01 lack it
    /// and QTool keeps the constructed value L.
    package var levelNum: Float
    /// PACT `[1]`; LSQ fm/ot `[1]` or `[1,qg,1,1]`, wt `[qg,1,1,1]`.
    package var clipVal: [Float] = []
    /// Non-uniform `alpha0 … alpha{L−2}`: fm `[1]`/`[1,qg,1,1]`, wt `[qg,1,1,1]`.
    package var alphas: [[Float]] = []
    /// LQ-Nets `basis [bit,qg]` (row-major); non-uniform closed form `basis [1]`.
    package var basis: [Float] = []
    /// LQ-Nets `codec_vector [L,bit]`.
    package var codecVector: [Float] = []
    /// LQ-Nets `thrs_multiplier [L−1,L]`.
    package var thresholdMultiplier: [Float] = []
    /// `gamma`: wt `[qg,1,1,1]`, ot `[1,qg,1,1]`.
    package var gamma: [Float] = []

    /// A state holding only the counters (what DoReFa and XNOR quantizers own).
    package init(iteration: Float = 0, levelNum: Float) {
        self.iteration = iteration
        self.levelNum = levelNum
    }

    /// Reads the tensors `config`'s method needs from `tensors` (full state-dict keys).
    ///
    /// - Parameters:
    ///   - prefix: the module path, e.g. `layer1.0.conv1.0.quant_weight` (no trailing dot).
    /// - Throws: ``QuantizerError`` naming the missing or mis-shaped key. A disabled config
    ///   needs nothing.
    package init(config: QuantizerConfig, prefix: String, tensors: [String: Tensor]) throws {
        levelNum = Float(config.levels)
        guard let method = config.method else { return }
        let reader = Reader(prefix: prefix, tensors: tensors)
        let qg = config.quantGroup
        let perTensorOrChannel = qg == 1 ? [1] : [1, qg, 1, 1]
        let perGroup = [qg, 1, 1, 1]

        if let it = try reader.optional("iteration", [1]) ?? reader.optional("times", [1]) {
            iteration = it[0]
        } else {
            throw QuantizerError(.missingTensor(prefix + ".iteration", expected: [1]))
        }
        if let l = try reader.optional("level_num", [1]) { levelNum = l[0] }

        switch method {
        case .dorefa, .binaryWeight, .xnor:
            break
        case .pact:
            clipVal = try reader.required("clip_val", [1])
        case .lsq:
            clipVal = try reader.required(
                "clip_val", config.tag == .wt ? perGroup : perTensorOrChannel)
        case .nonUniform:
            let count = config.tag == .wt ? 2 : config.levels - 1
            let shape = config.tag == .wt ? perGroup : perTensorOrChannel
            alphas = try (0..<count).map { try reader.required("alpha\($0)", shape) }
            if config.closedForm { basis = try reader.required("basis", [1]) }
        case .lqNet:
            let (l, b) = (config.levels, config.bit)
            basis = try reader.required("basis", [b, qg])
            codecVector = try reader.required("codec_vector", [l, b])
            thresholdMultiplier = try reader.required("thrs_multiplier", [l - 1, l])
        }
        if config.gamma == .learned {
            gamma = try reader.required("gamma", config.tag == .ot ? [1, qg, 1, 1] : perGroup)
        }
    }

    /// Looks tensors up under one module prefix, checking shape and dtype.
    private struct Reader {
        var prefix: String
        var tensors: [String: Tensor]

        func optional(_ name: String, _ shape: [Int]) throws -> [Float]? {
            let key = prefix + "." + name
            guard let t = tensors[key] else { return nil }
            guard t.shape == shape else {
                throw QuantizerError(.shapeMismatch(key, expected: shape, found: t.shape))
            }
            guard !t.dtype.isComplex, t.dtype != .bool else {
                throw QuantizerError(.badDType(key, found: t.dtype.rawValue))
            }
            return t.floats()
        }

        func required(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let v = try optional(name, shape) else {
                throw QuantizerError(.missingTensor(prefix + "." + name, expected: shape))
            }
            return v
        }
    }
}
