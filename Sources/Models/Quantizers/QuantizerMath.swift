import Engine

/// Float32 building blocks that reproduce PyTorch's CPU results bit for bit.
///
/// - `round` is `torch.round`: half to even.
/// - `clamp` is `torch.clamp`: NaN propagates.
/// - Division is true division (PyTorch ≥ 1.7 no longer multiplies by a reciprocal for float
///   scalars), but `scalar / tensor` in Python is `tensor.reciprocal() * scalar`.
/// - `GradientScale(t, g)` returns `(t − t·g) + t·g` in the forward pass unless `int(g) == 1`;
///   that value is *not* always `t`, so it is reproduced.
/// - Sums follow ATen's `cascade_sum` (float accumulators, AVX2 lanes, 1 thread) and standard
///   deviations ATen's sequential Welford in double; see ``TorchReduction``.
enum QuantMath {
    /// `torch.round`: round half to even.
    @inline(__always)
    static func round(_ x: Float) -> Float { x.rounded(.toNearestOrEven) }

    /// `torch.clamp(x, lo, hi)`; NaN stays NaN.
    @inline(__always)
    static func clamp(_ x: Float, _ lo: Float, _ hi: Float) -> Float {
        if x.isNaN { return x }
        return x < lo ? lo : (x > hi ? hi : x)
    }

    /// `sign'`: −1 for negative values, +1 otherwise (zero maps to +1), as `ones.masked_fill_(x < 0, −1)`.
    @inline(__always)
    static func signPrime(_ x: Float) -> Float { x < 0 ? -1 : 1 }

    /// Python's `int(g) == 1` test of `GradientScale` / `ClampWithScale`.
    static func skipsScaling(_ factor: Double) -> Bool {
        factor.isFinite && factor >= 1 && factor < 2
    }

    /// The forward value of `GradientScale(t, g)`: `t` when `int(g) == 1`, else `(t − t·g) + t·g`.
    @inline(__always)
    static func gradientScaled(_ t: Float, factor: Double) -> Float {
        if skipsScaling(factor) { return t }
        let g = Float(factor)
        let scaled = t * g
        return (t - scaled) + scaled
    }

    /// `torch.clamp` or, with `scaled`, the forward value of `ClampWithScale(x, lo, hi)` over the
    /// whole tensor: `s = sqrt(numel / n_in)` with `n_in = #{lo ≤ x ≤ hi}`, then
    /// `GradientScale(clamp(x), s)` (plain clamp when `n_in == 0`).
    static func clamp(_ xs: inout [Float], _ lo: Float, _ hi: Float, scaled: Bool) {
        var factor = 1.0
        if scaled {
            let inside = xs.reduce(0) { $0 + ($1 >= lo && $1 <= hi ? 1 : 0) }
            if inside > 0 { factor = (Double(xs.count) / Double(inside)).squareRoot() }
        }
        for i in xs.indices { xs[i] = gradientScaled(clamp(xs[i], lo, hi), factor: factor) }
    }
}
