#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The backward passes of the DoReFa-family quantizers in training mode (seed-reference
/// §11.5-11.8), as PyTorch's autograd takes them through QTool's forward: rounding is a
/// straight-through estimator, `torch.clamp` passes the gradient where `lo <= x <= hi`
/// (inclusive), `torch.where(y < a, y, a)` routes it to `y` or to `a`, and `max` over a
/// tensor shares it evenly between the elements equal to the maximum.
///
/// Each function recomputes the forward's float32 intermediate values it needs (the same
/// operations as the eval forward, so the masks see the same values) and returns either a
/// per-element factor for `dx` or a closure for a non-element-wise backward. Parameter
/// gradients are summed in double.
enum QuantizerGradients {
    /// DoReFa activations `clamp(x, 0, c)` then STE rounding: `dx = dy` where `0 <= x <= c`.
    static func dorefaActivation(_ x: [Float], clip c: Double) -> [Float] {
        let top = Float(c)
        return x.map { $0 >= 0 && $0 <= top ? 1 : 0 }
    }

    /// PACT (§11.7): `r = clamp(x, min 0)`, `y = where(r < a, r, a)`, STE rounding with `a`
    /// detached. `dx = dy` where `x >= 0` and `r < a`; `da = Σ dy` where `r >= a`.
    static func pact(_ x: [Float], clip a: Float) -> (dx: [Float], toClip: [Float]) {
        var dx = [Float](repeating: 0, count: x.count)
        var toClip = [Float](repeating: 0, count: x.count)
        for i in x.indices {
            let r = x[i].isNaN ? x[i] : Swift.max(x[i], 0)
            if r < a {
                if x[i] >= 0 { dx[i] = 1 }
            } else {
                toClip[i] = 1
            }
        }
        return (dx, toClip)
    }

    /// LSQ (§11.8) with `s = GradientScale(|clip|, g)` per group, `z = x / s`, `v` the level
    /// before the final `· s` (`q` one-sided, `2q − 1` two-sided) and `k` the clamp's
    /// gradient factor (`ClampWithScale`: `sqrt(numel / n_in)` unless `int(k) == 1`):
    /// `∂y/∂x = k·[lo <= z <= hi]`, `∂y/∂s = v − k·[lo <= z <= hi]·z`.
    static func lsq(
        _ x: [Float], clip: [Float], group: (Int) -> Int, levelNum: Float, halfRange: Bool,
        gradFactor: Double, scaledClamp: Bool
    ) -> (dx: [Float], dStep: [Float]) {
        let steps = clip.map { QuantMath.gradientScaled(abs($0), factor: gradFactor) }
        let n = Float(Double(levelNum) - 1)
        let (lo, hi): (Float, Float) = halfRange ? (0, 1) : (-1, 1)
        var z = [Float](repeating: 0, count: x.count)
        for i in x.indices { z[i] = x[i] / steps[group(i)] }
        var k: Float = 1
        if scaledClamp {
            let inside = z.reduce(0) { $0 + ($1 >= lo && $1 <= hi ? 1 : 0) }
            let factor = inside > 0 ? (Double(z.count) / Double(inside)).squareRoot() : 1
            if !QuantMath.skipsScaling(factor) { k = Float(factor) }
        }
        var dx = [Float](repeating: 0, count: x.count)
        var dStep = [Float](repeating: 0, count: x.count)
        for i in z.indices {
            let inside = z[i] >= lo && z[i] <= hi
            let zc = QuantMath.clamp(z[i], lo, hi)
            let v: Float
            if halfRange {
                v = QuantMath.round(zc * n) / n
            } else {
                let q = QuantMath.round((zc + 1) / 2 * n) / n
                v = q * 2 - 1
            }
            dx[i] = inside ? k : 0
            dStep[i] = inside ? v - k * z[i] : v
        }
        return (dx, dStep)
    }

    /// The gradient of each LSQ `clip_val` entry from `Σ dy·∂y/∂s` per group: times the
    /// gradient scale `g` (unless `int(g) == 1`) and `sign(clip)` (`abs`'s derivative, 0 at 0).
    static func lsqClipGradient(
        dy: [Float], dStep: [Float], clip: [Float], group: (Int) -> Int, gradFactor: Double
    ) -> [Float] {
        var sums = [Double](repeating: 0, count: clip.count)
        for i in dy.indices { sums[group(i)] += Double(dy[i]) * Double(dStep[i]) }
        let g = QuantMath.skipsScaling(gradFactor) ? 1 : gradFactor
        return clip.indices.map { j in
            let sign: Double = clip[j] > 0 ? 1 : (clip[j] < 0 ? -1 : 0)
            return Float(sums[j] * g * sign)
        }
    }

    /// DoReFa weights (§11.6): `t = tanh(w)`, `m = max|t|`, `u = t / (2m) + 1/2`,
    /// `y = 2·Q(u) − 1` with STE `Q`. The backward is exact through `tanh` and the max
    /// normalisation (the max's gradient shared by the elements equal to it).
    static func dorefaWeight(_ w: [Float]) -> @Sendable ([Float]) -> [Float] {
        let t = w.map { tanhf($0) }
        var peak: Float = 0
        for v in t where abs(v) > peak { peak = abs(v) }
        let d = Double(2 * peak)
        let ties = t.indices.filter { abs(t[$0]) == peak }
        return { dy in
            var gt = [Double](repeating: 0, count: t.count)
            var dd = 0.0
            for i in t.indices {
                let gu = 2 * Double(dy[i])
                gt[i] = gu / d
                dd -= gu * Double(t[i]) / (d * d)
            }
            let share = 2 * dd / Double(max(ties.count, 1))
            for i in ties { gt[i] += share * (t[i] > 0 ? 1 : (t[i] < 0 ? -1 : 0)) }
            return t.indices.map { i in Float(gt[i] * (1 - Double(t[i]) * Double(t[i]))) }
        }
    }
}
