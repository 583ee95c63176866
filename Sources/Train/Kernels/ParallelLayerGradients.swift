import Engine

/// Multi-threaded forms of the element-wise and batch-norm passes of ``LayerGradients``:
/// the same arithmetic in the same order per element and per channel, split over channels
/// (batch norm) or element ranges (activations), so their results are bit-identical to the
/// single-threaded twins in ``LayerGradients`` at any thread count.
enum ParallelLayerGradients {
    /// ``LayerGradients/batchNormForward(_:batch:channels:inner:gamma:beta:epsilon:)`` with the
    /// channels split over `threads`.
    static func batchNormForward(
        _ x: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float], beta: [Float], epsilon: Float,
        threads: Int
    ) -> (y: [Float], statistics: LayerGradients.BatchStatistics) {
        let count = batch * inner
        var mean = [Double](repeating: 0, count: channels), variance = mean
        var y = [Float](repeating: 0, count: x.count)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe y.withUnsafeMutableBufferPointer { py in
                unsafe mean.withUnsafeMutableBufferPointer { pm in
                    unsafe variance.withUnsafeMutableBufferPointer { pv in
                        let (xs, ys, ms, vs) = unsafe (px.baseAddress!, py.baseAddress!, pm.baseAddress!, pv.baseAddress!)
                        Parallel.forRanges(channels, threads: threads) { range in
                            for c in range {
                                var s = 0.0
                                for n in 0..<batch {
                                    let row = unsafe xs + (n * channels + c) * inner
                                    for i in 0..<inner { s += Double(unsafe row[i]) }
                                }
                                let m = s / Double(count)
                                var ss = 0.0
                                for n in 0..<batch {
                                    let row = unsafe xs + (n * channels + c) * inner
                                    for i in 0..<inner {
                                        let d = Double(unsafe row[i]) - m
                                        ss += d * d
                                    }
                                }
                                let v = ss / Double(count)
                                unsafe ms[c] = m
                                unsafe vs[c] = v
                                let invstd = 1 / (v + Double(epsilon)).squareRoot()
                                let (gc, bc) = (Double(gamma[c]), Double(beta[c]))
                                for n in 0..<batch {
                                    let k = (n * channels + c) * inner
                                    for i in 0..<inner {
                                        unsafe ys[k + i] = Float((Double(unsafe xs[k + i]) - m) * invstd * gc + bc)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (y, LayerGradients.BatchStatistics(mean: mean, variance: variance, count: count))
    }

    /// ``LayerGradients/batchNormBackward(_:dy:batch:channels:inner:gamma:statistics:epsilon:)``
    /// with the channels split over `threads`.
    static func batchNormBackward(
        _ x: [Float], dy: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float],
        statistics st: LayerGradients.BatchStatistics, epsilon: Float, threads: Int
    ) -> (dx: [Float], dgamma: [Float], dbeta: [Float]) {
        var dx = [Float](repeating: 0, count: x.count)
        var dgamma = [Float](repeating: 0, count: channels), dbeta = dgamma
        let n = Double(st.count)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe dy.withUnsafeBufferPointer { pdy in
                unsafe dx.withUnsafeMutableBufferPointer { pdx in
                    unsafe dgamma.withUnsafeMutableBufferPointer { pg in
                        unsafe dbeta.withUnsafeMutableBufferPointer { pb in
                            let (xs, dys, dxs, gs, bs) = unsafe (
                                px.baseAddress!, pdy.baseAddress!, pdx.baseAddress!, pg.baseAddress!, pb.baseAddress!
                            )
                            Parallel.forRanges(channels, threads: threads) { range in
                                for c in range {
                                    let mean = st.mean[c]
                                    let invstd = 1 / (st.variance[c] + Double(epsilon)).squareRoot()
                                    var sdy = 0.0, sdyx = 0.0
                                    for b in 0..<batch {
                                        let k = (b * channels + c) * inner
                                        for i in 0..<inner {
                                            let d = Double(unsafe dys[k + i])
                                            sdy += d
                                            sdyx += d * (Double(unsafe xs[k + i]) - mean) * invstd
                                        }
                                    }
                                    unsafe gs[c] = Float(sdyx)
                                    unsafe bs[c] = Float(sdy)
                                    let scale = Double(gamma[c]) * invstd / n
                                    for b in 0..<batch {
                                        let k = (b * channels + c) * inner
                                        for i in 0..<inner {
                                            let xhat = (Double(unsafe xs[k + i]) - mean) * invstd
                                            unsafe dxs[k + i] = Float(scale * (n * Double(unsafe dys[k + i]) - sdy - xhat * sdyx))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dgamma, dbeta)
    }

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
