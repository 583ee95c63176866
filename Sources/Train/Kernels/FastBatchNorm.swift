import Engine

/// Train-mode batch norm in float32, 16 lanes at a time, the channels split over threads: the
/// fast counterpart of ``LayerGradients/batchNormForward(_:batch:channels:inner:gamma:beta:epsilon:)``
/// and its backward (which accumulate every element in double), as PyTorch's CPU kernel
/// computes it. Each image row of a channel is summed in float32 lanes, the row sums added
/// in double: the statistics stay within float32 rounding of the double twin's. The forward
/// reads its input once for the statistics (sums of `x - s` and `(x - s)^2` about the
/// channel's first value `s`, which keeps the variance from cancelling) and once to
/// normalise. The results do not depend on the thread count.
enum FastBatchNorm {
    typealias Statistics = LayerGradients.BatchStatistics
    private typealias V = SIMD16<Float>

    /// `y = (x - mean_B) * (gamma / sqrt(var_B + eps)) + beta`, and the batch statistics.
    static func forward(
        _ x: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float], beta: [Float], epsilon: Float,
        threads: Int
    ) -> (y: [Float], statistics: Statistics) {
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
                                let shift = unsafe xs[c * inner]
                                var (s1, s2) = (0.0, 0.0)
                                for n in 0..<batch {
                                    let (a, b) = unsafe shiftedSums(xs + (n * channels + c) * inner, inner, shift)
                                    s1 += a
                                    s2 += b
                                }
                                let d = s1 / Double(count)
                                let v = max(0, s2 / Double(count) - d * d)
                                unsafe ms[c] = Double(shift) + d
                                unsafe vs[c] = v
                                let scale = Double(gamma[c]) / (v + Double(epsilon)).squareRoot()
                                let (m, a, b) = (Float(Double(shift) + d), Float(scale), beta[c])
                                for n in 0..<batch {
                                    let k = (n * channels + c) * inner
                                    unsafe mapLanes(xs + k, ys + k, inner) { ($0 - V(repeating: m)) * V(repeating: a) + V(repeating: b) }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (y, Statistics(mean: mean, variance: variance, count: count))
    }

    /// `dx = gamma * invstd / n * (n dy - sum dy - xhat sum(dy xhat))`, `dgamma = sum dy xhat`,
    /// `dbeta = sum dy`, with `xhat = (x - mean) * invstd`.
    static func backward(
        _ x: [Float], dy: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float],
        statistics st: Statistics, epsilon: Float, threads: Int
    ) -> (dx: [Float], dgamma: [Float], dbeta: [Float]) {
        var dx = [Float](repeating: 0, count: x.count)
        var dgamma = [Float](repeating: 0, count: channels), dbeta = dgamma
        let count = Double(st.count)
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
                                    let invstd = 1 / (st.variance[c] + Double(epsilon)).squareRoot()
                                    let m = Float(st.mean[c])
                                    var (sdy, sdyc) = (0.0, 0.0)  // sum dy, sum dy * (x - m)
                                    for n in 0..<batch {
                                        let k = (n * channels + c) * inner
                                        let (a, b) = unsafe gradientSums(xs + k, dys + k, inner, m)
                                        sdy += a
                                        sdyc += b
                                    }
                                    let sdyx = sdyc * invstd
                                    unsafe gs[c] = Float(sdyx)
                                    unsafe bs[c] = Float(sdy)
                                    // dx = k1 dy - k2 (x - m) - k3
                                    let g = Double(gamma[c]) * invstd
                                    let (k1, k2, k3) = (Float(g), Float(g * invstd * sdyx / count), Float(g * sdy / count))
                                    for n in 0..<batch {
                                        let k = (n * channels + c) * inner
                                        unsafe mapLanes(xs + k, dys + k, dxs + k, inner) { x, d in
                                            V(repeating: k1) * d - V(repeating: k2) * (x - V(repeating: m)) - V(repeating: k3)
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

    /// `(sum (x - s), sum (x - s)^2)` of `n` floats, in float32 lanes added in double.
    @inline(__always)
    private static func shiftedSums(_ x: UnsafePointer<Float>, _ n: Int, _ s: Float) -> (Double, Double) {
        var (a, b) = (V(), V())
        var i = 0
        while i + 16 <= n {
            let d = unsafe UnsafeRawPointer(x + i).loadUnaligned(as: V.self) - V(repeating: s)
            a += d
            b += d * d
            i += 16
        }
        var (ta, tb) = (Double(a.sum()), Double(b.sum()))
        while i < n {
            let d = unsafe x[i] - s
            ta += Double(d)
            tb += Double(d * d)
            i += 1
        }
        return (ta, tb)
    }

    /// `(sum dy, sum dy * (x - m))` of `n` floats, in float32 lanes added in double.
    @inline(__always)
    private static func gradientSums(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ n: Int, _ m: Float
    ) -> (Double, Double) {
        var (a, b) = (V(), V())
        var i = 0
        while i + 16 <= n {
            let d = unsafe UnsafeRawPointer(dy + i).loadUnaligned(as: V.self)
            a += d
            b += d * (unsafe UnsafeRawPointer(x + i).loadUnaligned(as: V.self) - V(repeating: m))
            i += 16
        }
        var (ta, tb) = (Double(a.sum()), Double(b.sum()))
        while i < n {
            let d = unsafe dy[i]
            ta += Double(d)
            tb += Double(d * (unsafe x[i] - m))
            i += 1
        }
        return (ta, tb)
    }

    /// `y[i] = f(x[i])` over `n` floats, 16 at a time (the tail through a zero-padded vector).
    @inline(__always)
    private static func mapLanes(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V) -> V) {
        var i = 0
        while i + 16 <= n {
            unsafe UnsafeMutableRawPointer(y + i).storeBytes(
                of: f(unsafe UnsafeRawPointer(x + i).loadUnaligned(as: V.self)), as: V.self)
            i += 16
        }
        if i < n {
            var v = V()
            for j in 0..<(n - i) { v[j] = unsafe x[i + j] }
            let r = f(v)
            for j in 0..<(n - i) { unsafe y[i + j] = r[j] }
        }
    }

    /// `out[i] = f(x[i], dy[i])` over `n` floats, 16 at a time.
    @inline(__always)
    private static func mapLanes(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int,
        _ f: (V, V) -> V
    ) {
        var i = 0
        while i + 16 <= n {
            let r = f(
                unsafe UnsafeRawPointer(x + i).loadUnaligned(as: V.self), unsafe UnsafeRawPointer(dy + i).loadUnaligned(as: V.self))
            unsafe UnsafeMutableRawPointer(out + i).storeBytes(of: r, as: V.self)
            i += 16
        }
        if i < n {
            var (a, b) = (V(), V())
            for j in 0..<(n - i) { (a[j], b[j]) = unsafe (x[i + j], dy[i + j]) }
            let r = f(a, b)
            for j in 0..<(n - i) { unsafe out[i + j] = r[j] }
        }
    }
}
