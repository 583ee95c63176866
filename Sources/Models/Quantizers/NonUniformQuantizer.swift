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
        termByTerm(
            x, a: alphas.map { $0.map { abs($0) } }, group: group, levels: levels, oneSided: oneSided,
            scaledClamp: scaledClamp)
    }

    /// ``apply(_:alphas:group:levels:oneSided:scaledClamp:)`` with the groups as `groups`
    /// contiguous chunks of `chunk` elements, repeating (element `i` is in group
    /// `(i / chunk) % groups`): in one pass (``elementwise(_:a:chunk:groups:levels:oneSided:threads:)``)
    /// unless `scaledClamp` makes each clamp depend on the whole tensor.
    static func apply(
        _ x: [Float], alphas: [[Float]], chunk: Int, groups: Int, levels: Int, oneSided: Bool, scaledClamp: Bool,
        threads: Int = 1
    ) -> [Float] {
        let a = alphas.map { $0.map { abs($0) } }
        if !scaledClamp {
            return elementwise(x, a: a, chunk: chunk, groups: groups, levels: levels, oneSided: oneSided, threads: threads)
        }
        return termByTerm(
            x, a: a, group: { ($0 / chunk) % groups }, levels: levels, oneSided: oneSided, scaledClamp: scaledClamp)
    }

    /// The formula term by term, each term a whole tensor (the naive twin of
    /// ``elementwise(_:a:chunk:groups:levels:oneSided:threads:)``; what `STE-scale` needs). `a` holds
    /// `|alpha_k|` per group.
    static func termByTerm(
        _ x: [Float], a: [[Float]], group: (Int) -> Int, levels: Int, oneSided: Bool, scaledClamp: Bool
    ) -> [Float] {
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

    /// The quantizer without `STE-scale` (each clamp then depends on its element alone), in one
    /// pass: per element the same float operations in the same order as the term-by-term form
    /// (its naive twin, ``termByTerm(_:a:group:levels:oneSided:scaledClamp:)``), and the
    /// rounding of a clamped term written out (``roundUnit(_:)``, ``roundNegativeUnit(_:)``),
    /// so the result is bit-identical, signed zeros and NaN included. `a` holds `|alpha_k|`
    /// per group; element `i` is in group `(i / chunk) % groups`.
    static func elementwise(
        _ x: [Float], a: [[Float]], chunk: Int, groups: Int, levels: Int, oneSided: Bool, threads: Int = 1
    ) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        let a0 = a[0], a1 = a.count > 1 ? a[1] : a0, a2 = a.count > 2 ? a[2] : a0
        // Per group, the offsets `1/a0` and `1/a0 + 1/a1` of the later terms.
        let r0 = a0.map { 1 / $0 }
        let r01 = (0..<groups).map { 1 / a0[$0] + 1 / a1[$0] }
        unsafe x.withUnsafeBufferPointer { px in
            unsafe y.withUnsafeMutableBufferPointer { py in
                let (xs, ys) = (px.baseAddress!, py.baseAddress!)
                // Element ranges over the threads (disjoint writes), each in runs of one group.
                Parallel.forRanges(x.count, threads: threads, grain: 1 << 15) { range in
                    var start = range.lowerBound
                    while start < range.upperBound {
                        let g = (start / chunk) % groups
                        let end = min(range.upperBound, (start / chunk + 1) * chunk)
                        let (b0, b1, b2, o0, o01) = (a0[g], a1[g], a2[g], r0[g], r01[g])
                        // One loop per form (the branch outside the element loop).
                        if !oneSided {
                            for j in start..<end {
                                let v = unsafe xs[j]
                                unsafe ys[j] = roundNegativeUnit(v * b0) + roundUnit(v * b1)
                            }
                        } else if levels == 2 {
                            for j in start..<end { unsafe ys[j] = roundUnit(unsafe xs[j] * b0) }
                        } else if levels == 3 {
                            for j in start..<end {
                                let v = unsafe xs[j]
                                unsafe ys[j] = roundUnit(v * b0) + roundUnit((v - o0) * b1)
                            }
                        } else {
                            for j in start..<end {
                                let v = unsafe xs[j]
                                unsafe ys[j] = roundUnit(v * b0) + roundUnit((v - o0) * b1) + roundUnit((v - o01) * b2)
                            }
                        }
                        start = end
                    }
                }
            }
        }
        return y
    }

    /// `round(clamp(u, 0, 1))` (round half to even; NaN and the sign of a zero `u` kept).
    @inline(__always)
    static func roundUnit(_ u: Float) -> Float {
        u > 0.5 ? 1 : (u.isNaN || u == 0 ? u : 0)
    }

    /// `round(clamp(u, -1, 0))` (round half to even: -0.5 and above round to -0; NaN and the
    /// sign of a zero `u` kept).
    @inline(__always)
    static func roundNegativeUnit(_ u: Float) -> Float {
        u < -0.5 ? -1 : (u < 0 ? -0.0 : (u.isNaN || u == 0 ? u : 0))
    }
}
