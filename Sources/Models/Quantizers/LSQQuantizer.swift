import Engine

/// LSQ (seed-reference §11.8), in QTool's float32 operation order.
///
/// `s = GradientScale(|clip_val|, g)` per group, `n = level_num − 1` (the tensor, read per call):
/// ```
/// one-sided:  z = clamp(x / s, 0, 1);   q = round(z·n) / n;              y = q·s
/// two-sided:  z = clamp(x / s, −1, 1);  u = (z + 1) / 2;  q = round(u·n) / n;  y = (q·2 − 1)·s
/// ```
/// Levels `s·{0, 1/n, …, 1}` and `s·{−1, −1 + 2/n, …, 1}` (no zero level for even L). With
/// `STE-scale` the clamp is `ClampWithScale`, whose forward value is reproduced by
/// ``QuantMath/clamp(_:_:_:scaled:)``.
enum LSQQuantizer {
    /// Quantizes `x`, element `i` using the step of group `group(i)`.
    ///
    /// - Parameters:
    ///   - clip: the raw `clip_val` entries, one per group.
    ///   - levelNum: the `level_num` tensor value.
    static func apply(
        _ x: [Float], clip: [Float], group: (Int) -> Int, levelNum: Float, halfRange: Bool,
        gradFactor: Double, scaledClamp: Bool
    ) -> [Float] {
        let steps = clip.map { QuantMath.gradientScaled(abs($0), factor: gradFactor) }
        let n = Float(Double(levelNum) - 1)
        var z = [Float](repeating: 0, count: x.count)
        for i in x.indices { z[i] = x[i] / steps[group(i)] }
        if halfRange {
            QuantMath.clamp(&z, 0, 1, scaled: scaledClamp)
            for i in z.indices { z[i] = (QuantMath.round(z[i] * n) / n) * steps[group(i)] }
        } else {
            QuantMath.clamp(&z, -1, 1, scaled: scaledClamp)
            for i in z.indices {
                let u = (z[i] + 1) / 2
                let q = QuantMath.round(u * n) / n
                z[i] = (q * 2 - 1) * steps[group(i)]
            }
        }
        return z
    }
}
