import Engine
import Formats
import Tensors

/// The QONNX form of an export (`--onnx-format qonnx`, formats.md C.2.3): every tensor stays
/// float32 and QTool quantizers become `Quant` / `BipolarQuant` nodes of the domain
/// `qonnx.custom_op.general` (version 1), as FINN, hls4ml, Brevitas and the qonnx package read
/// them. onnxruntime cannot run these nodes.
///
/// - Weights: the initializer holds the exact quantized levels, followed by a `Quant` node with
///   the quantizer's scale/zeropt/bit-width (see ``QONNXGrid``) or, for XNOR / `wt_bin`, a
///   `BipolarQuant` with the per-channel magnitude. The stored value is the level as `Quant`
///   computes it, `(k − zeropt)·scale` in float32, so the node is exactly the identity on it
///   (the engine's own level may differ from it by an ulp).
/// - Activations: DoReFa, PACT and LSQ become `Quant`; XNOR `BipolarQuant` (scale 1; with
///   `fm_custom` channel/resolution times the `ReduceMean` of `|x|`, as in the QCDQ form).
/// - LQ-Nets and FATNN (non-uniform) quantizers have no `Quant` form: the export is refused,
///   naming the quantizer and node.
extension ONNXEmitter {
    static let qonnxDomain = "qonnx.custom_op.general"
    static let lqNetRefusal =
        "LQ-Nets levels are a learned non-uniform basis; QONNX Quant cannot express them (use --onnx-format qcdq or float)"

    /// A node of the QONNX domain.
    mutating func qonnxNode(
        _ op: String, _ inputs: [String], _ output: String, _ attributes: [ONNXBuild.Attribute] = []
    ) {
        nodes.append(
            ONNXBuild.node(
                op, inputs: inputs, outputs: [output], name: output, domain: Self.qonnxDomain, attributes: attributes))
        usesQONNX = true
        usedQuantization = true
    }

    /// `output = Quant(x, scale, zeropt, bitwidth)`; `scaleShape` is the per-channel shape
    /// (`[1, C, 1, 1]`, `[C, 1, 1, 1]`, `[C, 1]`), a single scale is written as a scalar.
    mutating func emitQuant(_ x: String, grid: QONNXGrid, scales: [Float], scaleShape: [Int], output: String) {
        let uniform = scales.allSatisfy { $0.bitPattern == scales[0].bitPattern }
        let scale = floats(output + ".scale", uniform ? [scales[0]] : scales, uniform ? [] : scaleShape)
        let zeropt = floats(output + ".zeropt", [grid.zeroPoint], [])
        let bits = floats(output + ".bitwidth", [Float(grid.bits)], [])
        qonnxNode(
            "Quant", [x, scale, zeropt, bits], output,
            [
                .int("signed", grid.signed ? 1 : 0), .int("narrow", grid.narrow ? 1 : 0),
                .string("rounding_mode", "ROUND"),
            ])
    }

    // MARK: - Weights

    /// The QONNX weight of node `n`: float levels + Quant / BipolarQuant (see the extension's summary).
    mutating func qonnxWeight(_ n: Graph.Node, _ name: String, _ q: Quantizer) throws(InferenceError) -> String {
        let t = graph.constants[name]!
        let w = t.floats()
        let cout = t.shape[0]
        let per = w.count / cout
        let cfg = q.config, st = q.state
        let method = cfg.method!
        let meta = "qtools.\(q.name)"
        let scaleShape = [cout] + [Int](repeating: 1, count: t.shape.count - 1)
        let output = name + ".quantized"
        func unsupported(_ why: String) -> InferenceError {
            InferenceError(.unsupported("\(q.name) (\(cfg.choice ?? method.rawValue)): \(why)"), node: n.name)
        }
        switch method {
        case .xnor, .binaryWeight:
            // sign'(w)·E (× gamma): one magnitude per output channel; BipolarQuant maps 0 to +scale.
            var scales = [Float](repeating: 0, count: cout)
            for o in 0..<cout {
                let row = w[(o * per)..<((o + 1) * per)]
                let m = abs(row[row.startIndex])
                guard row.allSatisfy({ abs($0) == m }) else {
                    throw unsupported(
                        "output channel \(o) holds more than one magnitude (quant group \(cfg.quantGroup) splits channels)")
                }
                scales[o] = m
            }
            let uniform = scales.allSatisfy { $0 == scales[0] }
            let s = floats(output + ".scale", uniform ? [scales[0]] : scales, uniform ? [] : scaleShape)
            qonnxNode("BipolarQuant", [constant(name), s], output)
            metadata.append((meta + ".storage", "float32 ±scale + QONNX BipolarQuant"))
            return output
        case .lqNet:
            throw unsupported(Self.lqNetRefusal)
        case .dorefa, .pact, .lsq, .nonUniform:
            break
        }
        guard !cfg.adaptiveRestore else {
            throw unsupported("adaptive_restore moves the levels off a zero-centred grid")
        }
        var levels: Int
        var scales: [Float]
        switch method {
        case .lsq:
            levels = try integerLevels(st.levelNum, unsupported)
            let qg = cfg.quantGroup
            guard qg == 1 || cout % qg == 0 else { throw unsupported("quant group \(qg) splits output channels") }
            let steps = st.clipVal.map { QuantMath.gradientScaled(abs($0), factor: cfg.gradFactor) }
            scales = qg == 1 ? [steps[0]] : (0..<cout).map { steps[$0 / (cout / qg)] }
            scales = scales.map { 2 * $0 / Float(levels - 1) }
        case .nonUniform:
            levels = 3  // {−1, 0, 1}, not rescaled (§11.11)
            scales = [1]
        default:
            guard cfg.boundary == 1 else {
                throw unsupported("DoReFa weights with wt_boundary \(cfg.boundary) (only 1 is a zero-centred grid)")
            }
            levels = cfg.levels
            scales = [2 / Float(levels - 1)]
        }
        if cfg.gamma == .learned {
            let g = st.gamma
            guard g.count == 1 || g.count == cout else {
                throw unsupported("gamma of \(g.count) groups for \(cout) channels")
            }
            // The grid is symmetric, so |gamma| gives the same level set as gamma.
            scales = (0..<cout).map { o in scales[scales.count == 1 ? 0 : o] * abs(g[g.count == 1 ? 0 : o]) }
        }
        let grid = QONNXGrid(levels: levels - 1, twoSided: true)
        var stored = w
        for o in 0..<cout {
            let s = scales[scales.count == 1 ? 0 : o]
            guard s > 0, s.isFinite else { throw unsupported("output channel \(o) has scale \(s)") }
            for i in (o * per)..<((o + 1) * per) {
                guard let k = grid.code(of: w[i], scale: s) else {
                    throw unsupported(
                        "weight \(w[i]) of output channel \(o) is not on the \(levels)-level grid of scale \(s)")
                }
                stored[i] = grid.level(k, scale: s)
            }
        }
        let wq = floats(name, stored, t.shape)
        emitQuant(wq, grid: grid, scales: scales, scaleShape: scaleShape, output: output)
        metadata.append((meta + ".storage", "float32 levels + QONNX Quant (\(grid.summary))"))
        return output
    }

    func integerLevels(_ levelNum: Float, _ unsupported: (String) -> InferenceError) throws(InferenceError) -> Int {
        guard levelNum >= 2, levelNum <= 65536, levelNum == levelNum.rounded() else {
            throw unsupported("level_num \(levelNum) is not an integer level count in 2…65536")
        }
        return Int(levelNum)
    }

    // MARK: - Activations

    /// `output = quantizer(x)` for an fm/ot quantizer, without its learned gamma (the caller
    /// multiplies it in).
    mutating func emitQONNXActivation(
        _ q: Quantizer, input x: String, output: String, channels: Int, unsupported: (String) -> InferenceError
    ) throws(InferenceError) {
        let cfg = q.config
        let meta = "qtools.\(q.name)"
        switch cfg.method! {
        case .dorefa, .pact, .lsq:
            let u = try uniformActivation(q, channels: channels, unsupported)
            guard u.levels >= 2, u.levels <= 65536 else { throw unsupported("\(u.levels) levels") }
            let grid = QONNXGrid(levels: u.levels - 1, twoSided: u.twoSidedStep != nil)
            var y = x
            if !grid.exact {
                // Quant's integer range is wider than the L codes: bound x to the extreme levels first.
                let lo = u.scales.map { grid.level(grid.lowCode, scale: $0) }
                let hi = u.scales.map { grid.level(grid.highCode, scale: $0) }
                y = emitBinary("Max", y, lo, channels: channels, name: output + ".above_lowest")
                y = emitBinary("Min", y, hi, channels: channels, name: output + ".below_highest")
            }
            emitQuant(y, grid: grid, scales: u.scales, scaleShape: [1, channels, 1, 1], output: output)
            metadata.append((meta + ".storage", "QONNX Quant (\(grid.summary))\(grid.exact ? "" : " after Max/Min")"))
        case .xnor:
            let one = floats(output + ".unit_scale", [1], [])
            if cfg.custom == .none {
                qonnxNode("BipolarQuant", [x, one], output)
            } else {
                qonnxNode("BipolarQuant", [x, one], output + ".sign")
                node("Mul", [output + ".sign", emitMeanAbs(x, custom: cfg.custom, name: output)], output)
            }
            metadata.append((meta + ".storage", "QONNX BipolarQuant (0 maps to +1)"))
        case .nonUniform:
            throw unsupported(
                "FATNN thresholds are not uniformly spaced; QONNX Quant cannot express them (use --onnx-format qcdq or float)")
        case .lqNet:
            throw unsupported(Self.lqNetRefusal)
        case .binaryWeight:
            throw unsupported("wt_bin is a weight method")
        }
    }
}
