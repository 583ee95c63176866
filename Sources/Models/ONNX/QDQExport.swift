import Engine
import Formats
import QToolConfig
import Tensors

/// The quantized parts of an ONNX export: weights as integer levels + DequantizeLinear,
/// activation quantizers as QuantizeLinear → Clip → DequantizeLinear (QCDQ) or, where the
/// levels are not an integer grid (XNOR signs, FATNN, LQ-Nets), as exact standard float ops.
/// The QONNX form is in `QONNXExport.swift`.
extension ONNXEmitter {
    /// The weight value a conv/linear node reads: the float constant, or
    /// `DequantizeLinear(levels, scale)` when the layer's weight quantizer is on and its values
    /// are an integer grid per output channel.
    mutating func weightInput(_ n: Graph.Node, _ name: String) throws(InferenceError) -> String {
        guard let q = weightQuantizers[n.name] else { return constant(name) }
        let t = graph.constants[name]!
        let method = q.config.method!
        let where_ = "qtools.\(q.name)"
        metadata.append((where_ + ".method", q.config.choice ?? method.rawValue))
        metadata.append((where_ + ".levels", String(QuantizeAttributes(q).levels)))
        if options.format == .qonnx { return try qonnxWeight(n, name, q) }
        if options.format == .float || method == .lqNet {
            metadata.append((where_ + ".storage", "float32 (exact quantized values)"))
            return constant(name)
        }
        let cout = t.shape[0]
        guard let grid = IntegerGrid(t.floats(), channels: cout, maxLevel: 127) else {
            metadata.append((where_ + ".storage", "float32 (exact quantized values; not an integer grid)"))
            return constant(name)
        }
        usedQuantization = true
        var type: Onnx_TensorProto.DataType = .int8
        if options.format == .qdqNative {
            if grid.minInt >= -2 && grid.maxInt <= 1 {
                type = .int2
                usesInt2 = true
            } else if grid.minInt >= -8 && grid.maxInt <= 7 {
                type = .int4
                usesInt4 = true
            }
        }
        metadata.append((where_ + ".storage", "\(type) levels [\(grid.minInt), \(grid.maxInt)] x per-channel scale"))
        let levels = integers(name + ".levels", grid.ints, t.shape, type)
        let scale = floats(name + ".scale", grid.scales, [cout])
        let zp = integers(name + ".zero_point", [Int](repeating: 0, count: cout), [cout], type)
        let out = name + ".dequantized"
        node("DequantizeLinear", [levels, scale, zp], out, [.int("axis", 0)])
        return out
    }

    /// Emits `output = quantizer(input)`.
    mutating func emitQuantize(
        _ attrs: QuantizeAttributes, node name: String, input x: String, output out: String
    )
        throws(InferenceError)
    {
        guard let q = attrs.quantizer else {
            throw InferenceError(.unsupported("an imported activation program cannot be exported again"), node: name)
        }
        guard let method = q.config.method, !q.config.passesThrough(iteration: q.state.iteration) else {
            node("Identity", [x], out, name: name)
            return
        }
        let meta = "qtools.\(q.name)"
        metadata.append((meta + ".method", q.config.choice ?? method.rawValue))
        metadata.append((meta + ".levels", String(attrs.levels)))
        metadata.append((meta + ".bits", ONNXExport.bitsText(attrs.bits)))
        let cfg = q.config
        let st = q.state
        let channels = cfg.shape.count > 1 ? cfg.shape[1] : 1
        func unsupported(_ why: String) -> InferenceError {
            InferenceError(.unsupported("\(q.name) (\(cfg.choice ?? method.rawValue)): \(why)"), node: name)
        }
        var y = x
        let gammaOut: String
        let hasGamma = cfg.gamma == .learned
        gammaOut = hasGamma ? out + ".ungammed" : out
        if options.format == .qonnx {
            try emitQONNXActivation(q, input: x, output: gammaOut, channels: channels, unsupported: unsupported)
            if hasGamma { _ = emitBinary("Mul", gammaOut, st.gamma, channels: channels, name: out) }
            return
        }
        switch method {
        case .dorefa, .pact, .lsq:
            // Levels i·scale (one-sided) or (2i − n)·scale (two-sided, via ±step shifts).
            let u = try uniformActivation(q, channels: channels, unsupported)
            guard u.levels >= 2, u.levels <= 256 else { throw unsupported("\(u.levels) levels do not fit uint8") }
            if let s = u.twoSidedStep {
                y = emitBinary("Add", y, s, channels: channels, name: out + ".shift")
            }
            let dq = u.twoSidedStep == nil ? gammaOut : out + ".dq"
            if options.format == .float {
                y = emitFloatGrid(y, scales: u.scales, hi: u.levels - 1, name: dq, base: out)
            } else {
                y = emitQCDQ(y, scales: u.scales, hi: u.levels - 1, name: dq, base: out)
                usedQuantization = true
            }
            if let s = u.twoSidedStep {
                y = emitBinary("Sub", y, s, channels: channels, name: gammaOut)
            }
        case .xnor:
            let ge = out + ".nonnegative"
            node("GreaterOrEqual", [x, floats(out + ".zero", [0], [])], ge)
            let sign = cfg.custom == .none ? gammaOut : out + ".sign"
            node("Where", [ge, floats(out + ".plus_one", [1], []), floats(out + ".minus_one", [-1], [])], sign)
            if cfg.custom != .none {
                node("Mul", [sign, emitMeanAbs(x, custom: cfg.custom, name: out)], gammaOut)
            }
        case .nonUniform:
            let qg = cfg.quantGroup
            guard qg == 1 || qg == channels else { throw unsupported("quant group \(qg) is neither 1 nor the channel count") }
            let a = st.alphas.map { $0.map { abs($0) } }
            func term(_ k: Int, _ input: String, _ lo: Float, _ hi: Float) -> String {
                let t = emitBinary("Mul", input, a[k], channels: channels, name: out + ".t\(k)")
                let c = out + ".t\(k).clip"
                node("Clip", [t, floats(c + ".min", [lo], []), floats(c + ".max", [hi], [])], c)
                let r = out + ".t\(k).round"
                node("Round", [c], r)
                return r
            }
            var terms: [String]
            if !cfg.halfRange {
                terms = [term(0, x, -1, 0), term(1, x, 0, 1)]
            } else {
                terms = [term(0, x, 0, 1)]
                if cfg.levels >= 3 {
                    let r0 = a[0].map { 1 / $0 }
                    terms.append(term(1, emitBinary("Sub", x, r0, channels: channels, name: out + ".x1"), 0, 1))
                    if cfg.levels == 4 {
                        let r01 = zip(a[0], a[1]).map { 1 / $0 + 1 / $1 }
                        terms.append(term(2, emitBinary("Sub", x, r01, channels: channels, name: out + ".x2"), 0, 1))
                    }
                }
            }
            let sum = cfg.closedForm ? out + ".sum" : gammaOut
            node(terms.count == 1 ? "Identity" : "Sum", terms, sum)
            if cfg.closedForm { node("Mul", [sum, floats(out + ".basis", [st.basis[0]], [])], gammaOut) }
            metadata.append((meta + ".storage", "float ops (Mul, Clip, Round, Sum): non-uniform thresholds"))
        case .lqNet:
            guard cfg.adaptive != .mean && cfg.adaptive != .var else {
                throw unsupported("LQ-Nets activations with per-sample adaptive normalisation have no exact ONNX form")
            }
            let table = LQNetQuantizer.levelsAndThresholds(
                basis: st.basis, codecVector: st.codecVector, thresholdMultiplier: st.thresholdMultiplier,
                levels: cfg.levels, bit: cfg.bit, groups: cfg.quantGroup)
            let groups = table.levels.count
            guard channels % groups == 0 else { throw unsupported("\(groups) groups for \(channels) channels") }
            let per = channels / groups
            func column(_ rows: [[Float]], _ k: Int) -> [Float] {
                groups == 1 ? [rows[0][k]] : (0..<channels).map { rows[$0 / per][k] }
            }
            // assign(): the last k with x > threshold[k] gives level k+1, else level 0.
            var y = constantValue(column(table.levels, 0), channels: channels, name: out + ".level0")
            let k = table.thresholds[0].count
            for j in 0..<k {
                let gt = out + ".above\(j)"
                node("Greater", [x, constantValue(column(table.thresholds, j), channels: channels, name: out + ".threshold\(j)")], gt)
                let level = constantValue(column(table.levels, j + 1), channels: channels, name: out + ".level\(j + 1)")
                let next = j == k - 1 ? gammaOut : out + ".step\(j)"
                node("Where", [gt, level, y], next)
                y = next
            }
            metadata.append((meta + ".storage", "float ops (Greater, Where): non-uniform levels"))
        case .binaryWeight:
            throw unsupported("wt_bin is a weight method")
        }
        if hasGamma {
            _ = emitBinary("Mul", gammaOut, st.gamma, channels: channels, name: out)
        }
    }

    /// DoReFa, PACT and LSQ activations as levels `(k − z)·scale`, k = 0…L−1: the level count
    /// L, the scale (one, or one per channel) and, two-sided, LSQ's step `s` (levels
    /// `s·(2k/(L−1) − 1)`, z = (L−1)/2); one-sided z = 0.
    func uniformActivation(
        _ q: Quantizer, channels: Int, _ unsupported: (String) -> InferenceError
    )
        throws(InferenceError) -> (levels: Int, scales: [Float], twoSidedStep: [Float]?)
    {
        let cfg = q.config, st = q.state
        switch cfg.method {
        case .dorefa:
            return (cfg.levels, [1 / Float(Double(cfg.levels - 1) / cfg.boundary)], nil)
        case .pact:
            return (cfg.levels, [1 / ((1 / st.clipVal[0]) * Float(cfg.levels - 1))], nil)
        default:
            let levels = try integerLevels(st.levelNum, unsupported)
            let n = Float(levels - 1)
            let steps = st.clipVal.map { QuantMath.gradientScaled(abs($0), factor: cfg.gradFactor) }
            guard steps.count == 1 || steps.count == channels else {
                throw unsupported("clip_val has \(steps.count) groups for \(channels) channels")
            }
            if cfg.halfRange { return (levels, steps.map { $0 / n }, nil) }
            return (levels, steps.map { 2 * $0 / n }, steps)
        }
    }

    /// `mean |x|` over channels (`channel`, `[N,1,H,W]`) or pixels (`resolution`, `[N,C,1,1]`):
    /// XNOR's activation scale E.
    mutating func emitMeanAbs(_ x: String, custom: QuantizerCustom, name out: String) -> String {
        let abs = out + ".abs"
        node("Abs", [x], abs)
        let axes: [Int64] = custom == .resolution ? [2, 3] : [1]
        let mean = out + ".mean_abs"
        emitReduceMean(abs, axes: axes, keepDims: true, output: mean)
        return mean
    }

    /// `ReduceMean`: axes as an attribute before opset 18, as an int64 input from 18.
    mutating func emitReduceMean(_ x: String, axes: [Int64], keepDims: Bool, output: String) {
        let keep = ONNXBuild.Attribute.int("keepdims", keepDims ? 1 : 0)
        if opset >= 18 {
            node("ReduceMean", [x, integers(output + ".axes", axes.map { Int($0) }, [axes.count], .int64)], output, [keep])
        } else {
            node("ReduceMean", [x], output, [.ints("axes", axes), keep])
        }
    }

    /// A scalar (when all values are equal) or `[1, C, 1, 1]` float initializer.
    mutating func constantValue(_ v: [Float], channels: Int, name: String) -> String {
        let uniform = v.allSatisfy { $0.bitPattern == v[0].bitPattern }
        return uniform ? floats(name, [v[0]], []) : floats(name, v, [1, v.count, 1, 1])
    }

    /// `name = op(input, constant)` with a scalar or per-channel constant.
    mutating func emitBinary(_ op: String, _ input: String, _ c: [Float], channels: Int, name: String) -> String {
        node(op, [input, constantValue(c, channels: channels, name: name + ".value")], name)
        return name
    }

    /// `Div(scale) → Round → Clip(0, hi) → Mul(scale)`: the arithmetic of ``emitQCDQ`` in float
    /// ops (QuantizeLinear is round-half-to-even of `x / scale`, as `Round` is), for the
    /// `float` form. Without DequantizeLinear before a conv, onnxruntime's
    /// WeightBiasQuantization (which rounds the float weights of a conv fed by
    /// DequantizeLinear to per-tensor int8, lossy) leaves the weights alone.
    mutating func emitFloatGrid(_ x: String, scales: [Float], hi: Int, name: String, base: String) -> String {
        let scale = constantValue(scales, channels: scales.count, name: base + ".scale")
        node("Div", [x, scale], base + ".scaled")
        node("Round", [base + ".scaled"], base + ".rounded")
        node("Clip", [base + ".rounded", floats(base + ".min", [0], []), floats(base + ".max", [Float(hi)], [])], base + ".clipped")
        node("Mul", [base + ".clipped", scale], name)
        return name
    }

    /// QuantizeLinear(uint8, scale, 0) → Clip(0, hi) → DequantizeLinear; per-tensor or per-channel (axis 1).
    mutating func emitQCDQ(_ x: String, scales: [Float], hi: Int, name: String, base: String) -> String {
        let c = scales.count
        let shape = c == 1 ? [Int]() : [c]
        let scale = floats(base + ".scale", scales, shape)
        let zp = integers(base + ".zero_point", [Int](repeating: 0, count: c), shape, .uint8)
        let axis: [ONNXBuild.Attribute] = c == 1 ? [] : [.int("axis", 1)]
        node("QuantizeLinear", [x, scale, zp], base + ".q", axis)
        node(
            "Clip", [base + ".q", integers(base + ".q_min", [0], [], .uint8), integers(base + ".q_max", [hi], [], .uint8)],
            base + ".q_clipped")
        node("DequantizeLinear", [base + ".q_clipped", scale, zp], name, axis)
        return name
    }
}

/// Per-output-channel integer levels: `w[o, ...] = ints[o, ...] · scales[o]` within float
/// rounding (1e-5 of the channel's largest magnitude).
struct IntegerGrid {
    var ints: [Int]
    var scales: [Float]
    var minInt = 0, maxInt = 0

    init?(_ w: [Float], channels: Int, maxLevel: Int) {
        let per = w.count / channels
        ints = [Int](repeating: 0, count: w.count)
        scales = [Float](repeating: 1, count: channels)
        for o in 0..<channels {
            let row = w[(o * per)..<((o + 1) * per)]
            let m = row.reduce(Float(0)) { max($0, abs($1)) }
            guard m.isFinite else { return nil }
            if m == 0 { continue }
            var found = false
            for k in 1...maxLevel {
                let s = m / Float(k)
                if row.allSatisfy({ abs($0 / s - ($0 / s).rounded()) <= 1e-5 * Float(k) }) {
                    scales[o] = s
                    for i in row.indices {
                        let q = Int((w[i] / s).rounded())
                        ints[i] = q
                        minInt = min(minInt, q)
                        maxInt = max(maxInt, q)
                    }
                    found = true
                    break
                }
            }
            if !found { return nil }
        }
    }
}
