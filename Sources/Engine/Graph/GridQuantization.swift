/// The element-wise form of a uniform quantizer with per-channel parameters: a
/// ``QuantizeFunction`` that has one (``QuantizeFunction/gridForm``) runs as a fused,
/// vectorised, multi-threaded kernel (`Kernels/GridQuantizeKernel.swift`), merged with an
/// adjacent ``Op/pad(_:)``, instead of through ``QuantizeFunction/apply(_:shape:)``.
///
/// Element `x` of channel `c` (NCHW, or `[N, C]`), in float32, in this order:
/// ```
/// t = x / divisor[c]
/// t = NaN ? (nanValue ?? NaN) : (t < lo ? lo : (t > hi ? hi : t))   (t <= lo with lowerInclusive)
/// t = (t + 1) / 2                          if centered
/// t = round(t * steps) / steps             round half to even
/// t = t * 2 - 1                            if centered
/// y = (t * scale[c]) * gain[c]
/// ```
/// With ``indices`` the result is `round(t * steps)` (after the centring), the level index,
/// instead of its value: what ``Op/integerConv(_:)`` reads.
/// Division by 1 and multiplication by 1 are exact, so a function without a divisor, scale or
/// gain sets them to `[1]`. Per-channel arrays hold one value (all channels) or one per
/// channel. The kernel must give the bits ``QuantizeFunction/apply(_:shape:)`` gives: the
/// function that offers this form promises that its own forward is this operation sequence.
public struct GridQuantization: Sendable, Equatable {
    /// Per-channel divisor applied first.
    public var divisor: [Float]
    /// Clamp bounds (after the division).
    public var lo: Float
    public var hi: Float
    /// A value NaN maps to at the clamp (nil: NaN propagates).
    public var nanValue: Float?
    /// Whether a value equal to `lo` becomes `lo` (turns `-0` into `+0` when `lo` is `+0`).
    public var lowerInclusive: Bool
    /// Maps `[-1, 1]` to `[0, 1]` before rounding and back after.
    public var centered: Bool
    /// The rounding grid: `round(t * steps) / steps`.
    public var steps: Float
    /// Per-channel multiplier after rounding.
    public var scale: [Float]
    /// Per-channel multiplier after `scale` (a learned gain).
    public var gain: [Float]
    /// Outputs the level index `round(t * steps)` instead of the value (see the type's summary).
    public var indices = false

    /// A form; per-channel arrays hold one value or one per channel.
    public init(
        divisor: [Float] = [1], lo: Float, hi: Float, nanValue: Float? = nil, lowerInclusive: Bool = false,
        centered: Bool = false, steps: Float, scale: [Float] = [1], gain: [Float] = [1]
    ) {
        self.divisor = divisor
        self.lo = lo
        self.hi = hi
        self.nanValue = nanValue
        self.lowerInclusive = lowerInclusive
        self.centered = centered
        self.steps = steps
        self.scale = scale
        self.gain = gain
    }

    /// Whether every per-channel array fits `channels` (one value, or one per channel).
    public func fits(channels: Int) -> Bool {
        [divisor, scale, gain].allSatisfy { $0.count == 1 || $0.count == channels }
    }

    /// The scalar definition (the kernel's twin): `y` for `x` in channel `c`.
    public func apply(_ x: Float, channel c: Int) -> Float {
        func at(_ a: [Float]) -> Float { a.count == 1 ? a[0] : a[c] }
        var t = x / at(divisor)
        if t.isNaN {
            if let nanValue { t = nanValue }
        } else if lowerInclusive ? t <= lo : t < lo {
            t = lo
        } else if t > hi {
            t = hi
        }
        if centered { t = (t + 1) / 2 }
        if indices { return (t * steps).rounded(.toNearestOrEven) }
        t = (t * steps).rounded(.toNearestOrEven) / steps
        if centered { t = t * 2 - 1 }
        return (t * at(scale)) * at(gain)
    }
}

extension QuantizeFunction {
    /// No element-wise grid form: the engine calls ``apply(_:shape:)``.
    public var gridForm: GridQuantization? { nil }
}
