import Engine

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// DoReFa-Net and PACT (seed-reference §11.6, §11.7), in QTool's float32 operation order.
///
/// `n = L − 1` is the integer level count minus one; `c` the Python-float boundary.
/// ```
/// activation:  y = clamp(x, 0, c);   s = Float(n / c);  q = round(y·s) / s
/// PACT:        r = clamp(x, min 0);  y = r < α ? r : α;  s = (1/α)·n;  q = round(y·s) / s
/// weight:      t = tanh(w);  u = t / (2·max|t|) + 0.5;  s = Float(n / c);  y = 2·round(u·s)/s − 1
/// wt_bin:      y = sign'(w) · mean|w|        (one mean over the whole tensor)
/// ```
/// (`n / c` is computed in double because both are Python numbers; PACT's `n / α` is Python's
/// `scalar / tensor`, i.e. `α.reciprocal() * n`.) `tanh` is the C library's `tanhf`, which may
/// differ from ATen's SLEEF `tanh` by an ulp; that moves `u` by far less than the golden data's
/// smallest distance to a rounding boundary.
enum DoReFaQuantizer {
    /// DoReFa activations: `{0, c/n, …, c}`, one-sided regardless of `half_range`.
    static func activation(_ x: [Float], levels: Int, clip c: Double) -> [Float] {
        let s = Float(Double(levels - 1) / c)
        let top = Float(c)
        return x.map { QuantMath.round(QuantMath.clamp($0, 0, top) * s) / s }
    }

    /// PACT activations with the learned clip `alpha` (`clip_val`): `{0, α/n, …, α}`.
    static func pact(_ x: [Float], levels: Int, clip alpha: Float) -> [Float] {
        let s = (1 / alpha) * Float(levels - 1)
        return x.map { v in
            let r = v.isNaN ? v : Swift.max(v, 0)
            let y = r < alpha ? r : alpha
            return QuantMath.round(y * s) / s
        }
    }

    /// tanh-normalised DoReFa weights: `{−1, −1 + 2/n, …, 1}` for `c = 1`.
    static func weight(_ w: [Float], levels: Int, clip c: Double) -> [Float] {
        let t = w.map { tanhf($0) }
        var peak: Float = 0
        for v in t where abs(v) > peak || v.isNaN { peak = abs(v) }
        let d = 2 * peak
        let s = Float(Double(levels - 1) / c)
        return t.map { v in
            let u = v / d + 0.5
            return 2 * (QuantMath.round(u * s) / s) - 1
        }
    }

    /// `wt_bin` (`DorefaParamsBinarizationSTE`): `sign'(w)·mean(|w|)` over the whole tensor.
    static func binaryWeight(_ w: [Float]) -> [Float] {
        let e = TorchReduction.mean(w.map { abs($0) }[...])
        return w.map { QuantMath.signPrime($0) * e }
    }
}
