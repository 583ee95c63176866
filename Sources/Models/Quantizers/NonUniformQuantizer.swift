import Engine

/// The FATNN-style non-uniform quantizer (seed-reference §11.11): integer outputs.
///
/// With `a_k = |alpha_k|` of the element's group and `R = round`:
/// ```
/// one-sided (L ≤ 4):  y = R(clamp(x·a0, 0, 1))
///                       + R(clamp((x − 1/a0)·a1, 0, 1))             if L ≥ 3
///                       + R(clamp((x − (1/a0 + 1/a1))·a2, 0, 1))    if L = 4
/// two-sided (L = 3):  y = R(clamp(x·a0, −1, 0)) + R(clamp(x·a1, 0, 1))
/// ```
/// Outputs are the integers `{0, …, L−1}` or `{−1, 0, 1}`, not rescaled (BatchNorm absorbs the
/// scale); `1/a` is `a.reciprocal()` (Python's `1.0 / tensor`). Each clamp is over the whole
/// tensor (for `STE-scale`'s forward perturbation). Thresholds sit at `0.5/a0`,
/// `1/a0 + 0.5/a1`, `1/a0 + 1/a1 + 0.5/a2`.
enum NonUniformQuantizer {
    /// Quantizes `x`; element `i` uses `alphas[k][group(i)]`.
    ///
    /// - Parameters:
    ///   - alphas: `alpha0 … alpha{L−2}` (weights and two-sided: `alpha0`, `alpha1`), raw values.
    static func apply(
        _ x: [Float], alphas: [[Float]], group: (Int) -> Int, levels: Int, oneSided: Bool,
        scaledClamp: Bool
    ) -> [Float] {
        let a = alphas.map { $0.map { abs($0) } }
        func term(_ k: Int, _ lo: Float, _ hi: Float, _ input: (Int) -> Float) -> [Float] {
            var t = x.indices.map { input($0) * a[k][group($0)] }
            QuantMath.clamp(&t, lo, hi, scaled: scaledClamp)
            return t.map(QuantMath.round)
        }
        if !oneSided {
            let y1 = term(0, -1, 0) { x[$0] }
            let y2 = term(1, 0, 1) { x[$0] }
            return zip(y1, y2).map { $0 + $1 }
        }
        var y = term(0, 0, 1) { x[$0] }
        if levels >= 3 {
            let y2 = term(1, 0, 1) { x[$0] - 1 / a[0][group($0)] }
            for i in y.indices { y[i] += y2[i] }
        }
        if levels == 4 {
            let y3 = term(2, 0, 1) { i in
                let g = group(i)
                return x[i] - (1 / a[0][g] + 1 / a[1][g])
            }
            for i in y.indices { y[i] += y3[i] }
        }
        return y
    }
}
