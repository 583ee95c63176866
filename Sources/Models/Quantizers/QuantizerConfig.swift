import Engine
import Formats
import QToolConfig

/// The quantization method a quantizer runs in eval mode (seed-reference §5.2, §11).
package enum QuantizerMethod: String, Equatable, Sendable, CaseIterable {
    /// DoReFa: activations `round(clamp(x,0,c)·n/c)/(n/c)`, weights tanh-normalised (§11.6).
    case dorefa
    /// PACT activations with a learned clip (§11.7); weights fall back to DoReFa.
    case pact
    /// LSQ with a learned step per group (§11.8).
    case lsq
    /// FATNN-style non-uniform quantizer with integer outputs (§11.11).
    case nonUniform = "non-uniform"
    /// `wt_bin`: `sign'(w)·mean|w|` (§11.6, DoReFa family, 2 weight levels).
    case binaryWeight = "wt_bin"
    /// LQ-Nets with learned bases (§11.9).
    case lqNet = "lqnet"
    /// XNOR-Net / XNOR++ / Bi-Real binarisation (§11.10).
    case xnor

    /// True for the methods QTool runs through its DoReFa branch (`method == 'dorefa'`), which
    /// increment `iteration` on every forward, evaluation included (§11.12).
    package var isDoReFaFamily: Bool {
        switch self {
        case .dorefa, .pact, .lsq, .nonUniform, .binaryWeight: return true
        case .lqNet, .xnor: return false
        }
    }
}

/// What multiplies the quantized value at the end (§11.13).
package enum QuantizerGamma: Equatable, Sendable {
    /// Nothing.
    case none
    /// `fm_gamma` (or `gamma`) on an fm quantizer of the DoReFa family: the constant 1.
    case constantOne
    /// A learned `gamma` tensor: `[qg,1,1,1]` for weights (`wt_gamma`, XNOR++), `[1,qg,1,1]` for
    /// outputs (`ot_gamma`).
    case learned
}

/// A quantizer's settings, resolved as `quantization.__init__` and `init()` resolve them at
/// construction (seed-reference §11.1, §5.2): method, level count, range, groups, gamma, stable.
///
/// Build it with ``init(options:tag:shape:featureStride:)`` from the parsed options and the
/// quantizer's construction shape: `[1, in, 1, 1]` (fm), `[out, in, k, k]` (wt, the full `in`
/// even for grouped convs), `[1, out, 1, 1]` (ot); a linear layer uses `[1, in, 1, 1]` and
/// `[1, 1, out, in]`.
///
/// XNOR follows the golden data's choice (golden README, patch 7): at QTool `e816c3f` every
/// enabled XNOR quantizer trips the "enable but without specific method" assertion; the golden
/// generator sets the method to `xnor` after `init()`, and so does this resolution. The
/// `iteration <= stable` rule still applies unchanged, so with the default `--stable 0` an XNOR
/// quantizer passes its input through (XNOR never increments `iteration`); the XNOR configs of
/// the golden data pass `--stable -1`. Set ``stable`` to `-1` to binarise regardless.
package struct QuantizerConfig: Equatable, Sendable {
    /// fm, wt or ot.
    package var tag: QuantizerTag
    /// The construction shape (see the type's summary).
    package var shape: [Int]
    /// The eval-mode method; nil when the quantizer is disabled (forward is the identity).
    package var method: QuantizerMethod?
    /// `num_levels` L: `<tag>_level` if > 0, else `int(2 ** bit)` with the fractional bit.
    package var levels: Int
    /// `int(bit)`; 1 for LQ-Nets with 3 levels.
    package var bit: Int
    /// One-sided range (fm default True, wt/ot False).
    package var halfRange: Bool
    /// `<tag>_boundary`, 1.0 when not given: the DoReFa clip c (a Python float).
    package var boundary: Double
    /// Groups sharing one scale (§11.1 step 4).
    package var quantGroup: Int
    /// Groups of the `var-mean` statistics: 1 with keyword `independent_norm`, else `quantGroup`.
    package var normGroup: Int
    /// `<tag>_adaptive`.
    package var adaptive: QuantizerAdaptive
    /// `fm_custom`: the XNOR activation scale.
    package var custom: QuantizerCustom
    /// The final multiplier.
    package var gamma: QuantizerGamma
    /// Non-uniform activations with `closed_form`: output × `basis`.
    package var closedForm: Bool
    /// `<tag>_grad_type STE-scale` on LSQ/non-uniform: clamps become `ClampWithScale`, whose
    /// forward value is perturbed by the `(y − y·s) + y·s` rounding when `int(s) != 1`.
    package var scaledClamp: Bool
    /// LSQ `grad_factor` g (§11.5); the clip's forward value is `(a − a·g) + a·g` unless `int(g) == 1`.
    package var gradFactor: Double
    /// `<tag>_scale`.
    package var scale: Double
    /// `<tag>_grad_type` as given (XNOR's backward reads it: `STE`, `Triangle`, else pass).
    package var gradType: QuantizerGradType = .none
    /// `--stable`: forwards with `iteration <= stable` return the input unquantized (§11.12).
    package var stable: Int
    /// `<tag>_correlate`: when > 0, multiplies the maximum the `--stable` calibration takes.
    package var correlate: Double = -1
    /// Policy flag `adaptive_restore`: undo `var-mean` after quantization (`y·std + mean`).
    package var adaptiveRestore: Bool = false
    /// Keyword `custom-update`: LQ-Nets' training basis update is the running mean of the
    /// least-squares solutions instead of the 0.9/0.1 moving average (§11.9).
    package var customUpdate: Bool = false

    /// Resolves the quantizer of family `tag` for a module of construction shape `shape`.
    ///
    /// - Parameters:
    ///   - featureStride: the wrapper's `feature_stride` (ResNet wrappers: 1); only enters
    ///     LSQ's `element-scale` gradient factors.
    /// - Throws: ``QuantizerError`` `.unsupported` for combinations QTool rejects (an
    ///   assertion or `RuntimeError` at construction) or cannot run (`alq`, `popcount`).
    package init(
        options: QToolOptions, tag: QuantizerTag, shape: [Int], featureStride: Int? = 1
    )
        throws
    {
        try self.init(
            options: options.quantizer(tag), keywords: options.keywords, shape: shape,
            stable: options.stable, batchSize: options.batchSize,
            inputSize: options.resolvedInputSize, featureStride: featureStride)
    }

    /// Resolves from one family's options and the keyword list (see the main initialiser).
    package init(
        options o: QuantizerOptions, keywords: [String], shape: [Int], stable: Int,
        batchSize: Int = 1, inputSize: Int? = nil, featureStride: Int? = 1
    ) throws {
        guard shape.count >= 2, shape.allSatisfy({ $0 > 0 }) else {
            throw QuantizerError(
                .unsupported("quantizer shape \(QuantizerError.dims(shape)) is not [d0,d1,...]"))
        }
        let has = { (word: String) in keywords.contains(word) }
        tag = o.tag
        self.shape = shape
        levels = o.resolvedLevels
        bit = Int(o.resolvedBit)
        halfRange = o.halfRange
        boundary = o.boundary ?? 1.0
        adaptive = o.adaptive
        custom = o.custom
        scale = o.scale
        gradType = o.gradType
        self.stable = stable
        correlate = o.correlate
        gamma = .none
        closedForm = false
        scaledClamp = false
        gradFactor = 1
        customUpdate = has("custom-update")

        // §11.1 step 4: quant group against P = shape[0]·shape[1].
        let p = shape[0] * shape[1]
        var group = o.quantGroup == 0 ? nil : o.quantGroup
        if let g = group {
            if g < 0 {
                group = p % -g == 0 ? p / -g : nil
            } else if p % g != 0 {
                group = nil
            }
        }
        quantGroup = group ?? (o.tag == .wt ? shape[0] : 1)
        normGroup = has("independent_norm") ? 1 : quantGroup

        guard o.enable else {
            method = nil
            return
        }
        method = try Self.selectMethod(o, has: has, levels: levels, quantGroup: quantGroup)
        if method == .lqNet && levels == 3 { bit = 1 }
        if let m = method, m.isDoReFaFamily {
            try resolveDoReFaExtras(
                o, has: has, batchSize: batchSize, inputSize: inputSize,
                featureStride: featureStride)
        } else if method == .xnor, o.tag == .wt, has("gamma") {
            gamma = .learned
        }
    }

    /// True when the quantizer runs (`<tag>_enable`).
    package var isEnabled: Bool { method != nil }

    /// QTool's `method` attribute: `dorefa`, `lqnet` or `xnor` (nil when disabled).
    package var methodName: String? {
        guard let method else { return nil }
        return method.isDoReFaFamily ? "dorefa" : method.rawValue
    }

    /// QTool's `choice` attribute (as in `repr` and case.json), e.g. `dorefa-net`, `lsq`,
    /// `non-uniform-with-closed_form`, `dorefa-net-with-gamma`, `xnor++`.
    package var choice: String? {
        guard let method else { return nil }
        var c: String
        switch method {
        case .dorefa: c = "dorefa-net"
        case .pact: c = tag == .fm ? "pact" : "dorefa-net"
        case .lsq: c = "lsq"
        case .nonUniform: c = closedForm ? "non-uniform-with-closed_form" : "non-uniform"
        case .binaryWeight: c = "DorefaParamsBinarizationSTE"
        case .lqNet: c = "lqnet"
        case .xnor: return gamma == .learned ? "xnor++" : "xnor"
        }
        if gamma == .learned { c += "-with-gamma" }
        return c
    }

    /// Whether the next eval forward returns its input unquantized (§11.12), given the
    /// `iteration` value stored in the checkpoint.
    ///
    /// The DoReFa family increments `iteration` *before* comparing, so the first eval forward
    /// after loading compares `iteration + 1 <= stable`: the golden checkpoints store 1 (one
    /// calibration pass) and quantize with `--stable 0`. LQ-Nets (eval) and XNOR never
    /// increment, so they compare the stored value itself: a fresh LQ quantizer
    /// (`iteration` 0) passes through with `--stable 0`, XNOR quantizes only with `--stable -1`.
    /// This engine is stateless: every call is treated as that first forward (QTool would keep
    /// counting and, while passing through, re-calibrate `clip_val` from the eval data).
    package func passesThrough(iteration: Float) -> Bool {
        guard let method else { return false }
        let effective = method.isDoReFaFamily ? iteration + 1 : iteration
        return effective <= Float(stable)
    }
}

extension QuantizerConfig {
    fileprivate static func selectMethod(
        _ o: QuantizerOptions, has: (String) -> Bool, levels: Int, quantGroup: Int
    ) throws -> QuantizerMethod {
        let tag = o.tag.rawValue
        let lqFamily = has("lq") || has("alq") || has("popcount")
        let dorefaFamily = has("dorefa") || has("pact")
        // `init()` runs every applicable branch; the DoReFa branch overwrites `method`.
        if lqFamily && !dorefaFamily {
            guard has("lq") else {
                throw QuantizerError(
                    .unsupported(
                        "keywords alq/popcount select LQ-Nets variants that need QTool's absent compiled plugin"
                    ))
            }
            guard levels <= 256 else {
                throw QuantizerError(
                    .unsupported("LQ-Nets supports at most 256 levels, got \(levels)"))
            }
            guard o.tag != .ot else {
                throw QuantizerError(.unsupported("LQ-Nets has no output (ot) quantizer"))
            }
            return .lqNet
        }
        if dorefaFamily && has("gamma") {
            throw QuantizerError(
                .unsupported(
                    "keyword gamma with dorefa/pact fails QTool's assertion \"Keyword corrupted~\" (use wt_gamma/ot_gamma)"
                ))
        }
        if has("xnor") {
            guard o.tag != .ot else {
                throw QuantizerError(.unsupported("XNOR has no output (ot) quantizer"))
            }
            return .xnor
        }
        guard dorefaFamily else {
            throw QuantizerError(
                .unsupported(
                    "\(tag) quantizer enabled but no method keyword (dorefa, pact, lq, xnor)"))
        }
        let lsq = has("lsq") || has("\(tag)_lsq")
        let nonUniform = has("non-uniform") || has("\(tag)_non-uniform")
        switch o.tag {
        case .fm:
            if lsq { return .lsq }
            if nonUniform {
                guard levels <= 4 else {
                    throw QuantizerError(
                        .unsupported("non-uniform activations need at most 4 levels, got \(levels)")
                    )
                }
                guard o.halfRange || levels == 3 else {
                    throw QuantizerError(
                        .unsupported(
                            "two-sided non-uniform activations support ternary (3 levels) only"))
                }
                return .nonUniform
            }
            return has("pact") ? .pact : .dorefa
        case .wt:
            if lsq {
                guard !o.halfRange else {
                    throw QuantizerError(
                        .unsupported("LSQ weights must be two-sided (wt_half_range off)"))
                }
                return .lsq
            }
            if nonUniform {
                guard levels == 3 else {
                    throw QuantizerError(
                        .unsupported("non-uniform weights need exactly 3 levels, got \(levels)"))
                }
                return .nonUniform
            }
            if has("wt_bin") && levels == 2 { return .binaryWeight }
            return .dorefa
        case .ot:
            if lsq { return .lsq }
            if nonUniform || has("pact") {
                throw QuantizerError(
                    .unsupported(
                        "output quantizers support LSQ or DoReFa only (non-uniform/pact raise in QTool)"
                    ))
            }
            return .dorefa
        }
    }

    fileprivate mutating func resolveDoReFaExtras(
        _ o: QuantizerOptions, has: (String) -> Bool, batchSize: Int, inputSize: Int?,
        featureStride: Int?
    ) throws {
        let tag = o.tag.rawValue
        if method == .lsq || method == .nonUniform { scaledClamp = o.gradType == .steScale }
        if method == .nonUniform && o.tag == .fm && (has("closed_form") || has("fm_closed_form")) {
            guard quantGroup == 1 else {
                throw QuantizerError(
                    .unsupported("closed_form non-uniform activations need quant group 1"))
            }
            closedForm = true
        }
        switch o.tag {
        case .fm: gamma = has("fm_gamma") ? .constantOne : .none
        case .wt, .ot: gamma = has("\(tag)_gamma") ? .learned : .none
        }
        // §11.5: fan = Π shape[1:], nElements = Π shape // qg (× batch × (input/stride)² for fm/ot).
        let fan = shape.dropFirst().reduce(1, *)
        var elements = shape.reduce(1, *) / quantGroup
        if o.tag != .wt {
            elements *= batchSize
            if let featureStride, let inputSize {
                elements *= (inputSize / featureStride) * (inputSize / featureStride)
            }
        }
        switch o.gradScale {
        case .none: gradFactor = 1
        case .fanScale: gradFactor = Double(fan).squareRoot() * o.scale
        case .scaleFan: gradFactor = o.scale / Double(fan).squareRoot()
        case .elementScale: gradFactor = Double(elements).squareRoot() * o.scale
        case .scaleElement: gradFactor = o.scale / Double(elements).squareRoot()
        }
    }
}
