/// Train-mode backward of the per-channel and broadcast products: `channelAffine` (Fixup
/// scalars, Group-Net branch scales, folded affines), `mul` with NumPy broadcasting (how a
/// training build spreads a `[1]` scalar over `[C]`), and `prelu`. Sums are in Double,
/// rounded once; element-wise products are float32 products, as PyTorch's.
package enum AffineGradients {
    /// `y = x · scale[c] + bias[c]`: `dx = dy · scale[c]`, `dscale[c] = Σ dy·x`,
    /// `dbias[c] = Σ dy` over the batch and the inner positions of channel `c`.
    static func channelAffineBackward(
        _ x: [Float], dy: [Float], batch: Int, channels: Int, inner: Int, scale: [Float]
    ) -> (dx: [Float], dscale: [Float], dbias: [Float]) {
        var dx = dy
        var ds = [Double](repeating: 0, count: channels), db = ds
        for n in 0..<batch {
            for c in 0..<channels {
                for i in 0..<inner {
                    let k = (n * channels + c) * inner + i
                    dx[k] = dy[k] * scale[c]
                    ds[c] += Double(dy[k]) * Double(x[k])
                    db[c] += Double(dy[k])
                }
            }
        }
        return (dx, ds.map { Float($0) }, db.map { Float($0) })
    }

    /// `y = a · b` broadcast (shapes right-aligned, a dim of 1 repeats): each operand's
    /// gradient is `dy` times the other operand, summed over the positions it was repeated to.
    static func mulBackward(
        _ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int], dy: [Float]
    ) -> (da: [Float], db: [Float]) {
        let rank = max(aShape.count, bShape.count)
        let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
        let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
        let out = zip(pa, pb).map { max($0, $1) }
        var da = [Double](repeating: 0, count: a.count), db = [Double](repeating: 0, count: b.count)
        var index = [Int](repeating: 0, count: rank)
        for i in dy.indices {
            var rest = i
            for d in (0..<rank).reversed() {
                index[d] = rest % out[d]
                rest /= out[d]
            }
            var ia = 0, ib = 0
            for d in 0..<rank {
                ia = ia * pa[d] + (pa[d] == 1 ? 0 : index[d])
                ib = ib * pb[d] + (pb[d] == 1 ? 0 : index[d])
            }
            da[ia] += Double(dy[i]) * Double(b[ib])
            db[ib] += Double(dy[i]) * Double(a[ia])
        }
        return (da.map { Float($0) }, db.map { Float($0) })
    }

    /// `y = x > 0 ? x : a·x` (`a` has 1 or `channels` elements): `dx = x > 0 ? dy : a·dy`,
    /// `da = Σ_{x <= 0} dy·x` (PyTorch's rule at 0: the slope side).
    static func preluBackward(
        _ x: [Float], dy: [Float], batch: Int, channels: Int, inner: Int, slope: [Float]
    ) -> (dx: [Float], dslope: [Float]) {
        var dx = dy
        var da = [Double](repeating: 0, count: slope.count)
        for n in 0..<batch {
            for c in 0..<channels {
                let j = slope.count == 1 ? 0 : c
                for i in 0..<inner {
                    let k = (n * channels + c) * inner + i
                    if x[k] > 0 { continue }
                    dx[k] = slope[j] * dy[k]
                    da[j] += Double(dy[k]) * Double(x[k])
                }
            }
        }
        return (dx, da.map { Float($0) })
    }
}
