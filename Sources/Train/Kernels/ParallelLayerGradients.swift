import Engine

/// Multi-threaded forms of the element-wise passes of ``LayerGradients``: the same
/// arithmetic per element, split over element ranges, so their results are bit-identical to
/// the single-threaded twins in ``LayerGradients`` at any thread count. (Batch norm's fast
/// form is ``FastBatchNorm``.)
enum ParallelLayerGradients {
    /// `dx = dy` where `lo < x < hi` (`strict`: relu, hardtanh) or `lo <= x <= hi` (clamp), else 0,
    /// over element ranges split across `threads`.
    static func activationBackward(_ x: [Float], dy: [Float], lo: Float, hi: Float, strict: Bool, threads: Int) -> [Float] {
        var dx = [Float](repeating: 0, count: dy.count)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe dy.withUnsafeBufferPointer { pdy in
                unsafe dx.withUnsafeMutableBufferPointer { pdx in
                    let (xs, dys, dxs) = unsafe (px.baseAddress!, pdy.baseAddress!, pdx.baseAddress!)
                    Parallel.forRanges(dy.count, threads: threads, grain: 1 << 14) { range in
                        // Branch-free, 16 lanes at a time (a relu's gradient mask is as good as
                        // random, so a branch per element mispredicts half the time); the
                        // selection is exact, so the result equals the scalar rule's.
                        let (vlo, vhi, zero) = (SIMD16<Float>(repeating: lo), SIMD16<Float>(repeating: hi), SIMD16<Float>())
                        var i = range.lowerBound
                        while i + 16 <= range.upperBound {
                            let v = unsafe UnsafeRawPointer(xs + i).loadUnaligned(as: SIMD16<Float>.self)
                            let d = unsafe UnsafeRawPointer(dys + i).loadUnaligned(as: SIMD16<Float>.self)
                            let keep = strict ? (v .> vlo) .& (v .< vhi) : (v .>= vlo) .& (v .<= vhi)
                            unsafe UnsafeMutableRawPointer(dxs + i).storeBytes(
                                of: zero.replacing(with: d, where: keep), as: SIMD16<Float>.self)
                            i += 16
                        }
                        for j in i..<range.upperBound {
                            let v = unsafe xs[j]
                            unsafe dxs[j] = (strict ? v > lo && v < hi : v >= lo && v <= hi) ? unsafe dys[j] : 0
                        }
                    }
                }
            }
        }
        return dx
    }

    /// `y = max(x, lo)` then `min(., hi)` elementwise (relu: `lo = 0, hi = inf`), keeping NaN
    /// as ``ReferenceKernels/activation(_:_:)`` does, over element ranges split across `threads`.
    static func clamp(_ x: [Float], lo: Float, hi: Float, threads: Int) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe y.withUnsafeMutableBufferPointer { py in
                let (xs, ys) = unsafe (px.baseAddress!, py.baseAddress!)
                Parallel.forRanges(x.count, threads: threads, grain: 1 << 14) { range in
                    // Branch-free, 16 lanes at a time: a NaN compares false both ways and stays.
                    let (vlo, vhi) = (SIMD16<Float>(repeating: lo), SIMD16<Float>(repeating: hi))
                    var i = range.lowerBound
                    while i + 16 <= range.upperBound {
                        var v = unsafe UnsafeRawPointer(xs + i).loadUnaligned(as: SIMD16<Float>.self)
                        v.replace(with: vlo, where: v .< vlo)
                        v.replace(with: vhi, where: v .> vhi)
                        unsafe UnsafeMutableRawPointer(ys + i).storeBytes(of: v, as: SIMD16<Float>.self)
                        i += 16
                    }
                    for j in i..<range.upperBound {
                        let v = unsafe xs[j]
                        unsafe ys[j] = v.isNaN ? v : (v < lo ? lo : (v > hi ? hi : v))
                    }
                }
            }
        }
        return y
    }
}
