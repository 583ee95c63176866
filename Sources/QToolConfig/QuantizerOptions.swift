#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The three quantizer option families (§3.2): input activations, weights, outputs.
public enum QuantizerTag: String, CaseIterable, Sendable, Encodable {
    /// Input activations of a quantized layer (`--fm_*`).
    case fm
    /// Weights (`--wt_*`).
    case wt
    /// Outputs (`--ot_*`).
    case ot
}

/// `<tag>_adaptive`: normalisation before quantization (§11.4).
public enum QuantizerAdaptive: String, CaseIterable, Sendable, Encodable {
    case none, `var`, mean
    case meanVar = "mean-var"
    case varMean = "var-mean"
}

/// `fm_custom`: XNOR activation scale (§11.10).
public enum QuantizerCustom: String, CaseIterable, Sendable, Encodable {
    case none, channel, resolution
}

/// `<tag>_grad_type`: gradient estimator (`Triangle` is fm only).
public enum QuantizerGradType: String, CaseIterable, Sendable, Encodable {
    case none
    case ste = "STE"
    case triangle = "Triangle"
    case steScale = "STE-scale"
}

/// `<tag>_grad_scale` (§11.5).
public enum QuantizerGradScale: String, CaseIterable, Sendable, Encodable {
    case none
    case fanScale = "fan-scale"
    case scaleFan = "scale-fan"
    case elementScale = "element-scale"
    case scaleElement = "scale-element"
}

/// One family's options (`--fm_bit`, `--fm_enable`, ...), typed.
public struct QuantizerOptions: Equatable, Sendable, Encodable {
    /// Which family.
    public var tag: QuantizerTag
    /// `_bit` as given (nil = 32, see ``resolvedBit``).
    public var bit: Double?
    /// `_level` as given (nil or ≤ 0 = `int(2 ** bit)`, see ``resolvedLevels``).
    public var level: Int?
    /// `_half_range`: one-sided range. Default True for fm (store_false), False for wt/ot.
    public var halfRange: Bool
    /// `_separator` (unused by QTool).
    public var separator: Double
    /// `_correlate`.
    public var correlate: Double
    /// `_ratio`.
    public var ratio: Double
    /// `_scale`.
    public var scale: Double
    /// `_enable`.
    public var enable: Bool
    /// `_boundary` as given (nil → 1.0 for the DoReFa family).
    public var boundary: Double?
    /// `_quant_group` as given.
    public var quantGroup: Int?
    /// `_adaptive`.
    public var adaptive: QuantizerAdaptive
    /// `fm_custom` (always `.none` for wt/ot, which have no such option).
    public var custom: QuantizerCustom
    /// `_grad_type`.
    public var gradType: QuantizerGradType
    /// `_grad_scale`.
    public var gradScale: QuantizerGradScale
    /// `ot_independent_parameter` (false for fm/wt).
    public var independentParameter: Bool

    init(_ tag: QuantizerTag, from options: QToolOptions) {
        let t = tag.rawValue
        self.tag = tag
        bit = options.optionalFloat("\(t)_bit")
        level = options.optionalInt("\(t)_level")
        halfRange = options.bool("\(t)_half_range")
        separator = options.float("\(t)_separator")
        correlate = options.float("\(t)_correlate")
        ratio = options.float("\(t)_ratio")
        scale = options.float("\(t)_scale")
        enable = options.bool("\(t)_enable")
        boundary = options.optionalFloat("\(t)_boundary")
        quantGroup = options.optionalInt("\(t)_quant_group")
        // The parser only stores listed choices, so these lookups cannot fail.
        adaptive = QuantizerAdaptive(rawValue: options.string("\(t)_adaptive")) ?? .none
        custom =
            tag == .fm ? QuantizerCustom(rawValue: options.string("fm_custom")) ?? .none : .none
        gradType = QuantizerGradType(rawValue: options.string("\(t)_grad_type")) ?? .none
        gradScale = QuantizerGradScale(rawValue: options.string("\(t)_grad_scale")) ?? .none
        independentParameter = tag == .ot ? options.bool("ot_independent_parameter") : false
    }

    /// The bit width `get_model` writes back: `_bit`, or 32 when not given.
    public var resolvedBit: Double { bit ?? 32 }

    /// The level count: `_level` when > 0, else `int(2 ** bit)` (bit defaulting to 32).
    public var resolvedLevels: Int {
        if let level, level > 0 { return level }
        let levels = pow(2.0, resolvedBit)
        return levels >= Double(Int.max) ? Int.max : Int(levels)
    }
}
