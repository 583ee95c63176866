import Engine

/// Train-mode forward and backward of the layers other than convolution, on NCHW arrays
/// (`x` is `batch x channels x inner`), accumulating in Double. Each is the direct formula
/// of PyTorch's CPU op; the finite-difference tests check the backward of each against its
/// forward.
package enum LayerGradients {
    // MARK: - Batch norm (training mode)

    /// The batch statistics a train-mode batch norm normalises with.
    package struct BatchStatistics: Sendable {
        /// Per-channel batch mean and biased variance (what the forward divides by).
        package var mean: [Double], variance: [Double]
        /// Elements per channel (`batch * inner`).
        package var count: Int
        /// The unbiased variance, which PyTorch puts into `running_var`.
        package var unbiasedVariance: [Double] { variance.map { count > 1 ? $0 * Double(count) / Double(count - 1) : $0 } }
    }

    /// `y = (x - mean_B) / sqrt(var_B + eps) * gamma + beta` with the batch's own statistics.
    static func batchNormForward(
        _ x: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float], beta: [Float], epsilon: Float
    ) -> (y: [Float], statistics: BatchStatistics) {
        let count = batch * inner
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for c in 0..<channels {
            var s = 0.0
            for n in 0..<batch { for i in 0..<inner { s += Double(x[(n * channels + c) * inner + i]) } }
            let m = s / Double(count)
            var ss = 0.0
            for n in 0..<batch {
                for i in 0..<inner {
                    let d = Double(x[(n * channels + c) * inner + i]) - m
                    ss += d * d
                }
            }
            mean[c] = m
            variance[c] = ss / Double(count)
        }
        var y = x
        for c in 0..<channels {
            let invstd = 1 / (variance[c] + Double(epsilon)).squareRoot()
            for n in 0..<batch {
                for i in 0..<inner {
                    let k = (n * channels + c) * inner + i
                    y[k] = Float((Double(x[k]) - mean[c]) * invstd * Double(gamma[c]) + Double(beta[c]))
                }
            }
        }
        return (y, BatchStatistics(mean: mean, variance: variance, count: count))
    }

    /// Gradients of ``batchNormForward(_:batch:channels:inner:gamma:beta:epsilon:)``:
    /// `dx = gamma * invstd / n * (n dy - sum dy - xhat sum(dy xhat))`, `dgamma = sum dy xhat`,
    /// `dbeta = sum dy`.
    static func batchNormBackward(
        _ x: [Float], dy: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float],
        statistics st: BatchStatistics, epsilon: Float
    ) -> (dx: [Float], dgamma: [Float], dbeta: [Float]) {
        var dx = [Float](repeating: 0, count: x.count)
        var dgamma = [Float](repeating: 0, count: channels), dbeta = dgamma
        let n = Double(st.count)
        for c in 0..<channels {
            let invstd = 1 / (st.variance[c] + Double(epsilon)).squareRoot()
            var sdy = 0.0, sdyx = 0.0
            for b in 0..<batch {
                for i in 0..<inner {
                    let k = (b * channels + c) * inner + i
                    sdy += Double(dy[k])
                    sdyx += Double(dy[k]) * (Double(x[k]) - st.mean[c]) * invstd
                }
            }
            dgamma[c] = Float(sdyx)
            dbeta[c] = Float(sdy)
            let scale = Double(gamma[c]) * invstd / n
            for b in 0..<batch {
                for i in 0..<inner {
                    let k = (b * channels + c) * inner + i
                    let xhat = (Double(x[k]) - st.mean[c]) * invstd
                    dx[k] = Float(scale * (n * Double(dy[k]) - sdy - xhat * sdyx))
                }
            }
        }
        return (dx, dgamma, dbeta)
    }

    // MARK: - Element-wise

    /// `dx = dy` where the activation passes its input (relu: `x > 0`; hardtanh: `lo < x < hi`;
    /// clamp: `lo <= x <= hi`), else 0; as PyTorch's backward formulas.
    static func activationBackward(_ x: [Float], dy: [Float], passes: (Float) -> Bool) -> [Float] {
        var dx = dy
        for i in dx.indices where !passes(x[i]) { dx[i] = 0 }
        return dx
    }

    // MARK: - Pooling

    /// Max pooling: each output's gradient goes to the first maximum of its window (PyTorch's
    /// CPU index rule: a later equal value does not win; NaN does).
    static func maxPoolBackward(_ g: PoolGeometry, x: [Float], dy: [Float]) -> [Float] {
        var dx = [Float](repeating: 0, count: x.count)
        for p in 0..<g.planes {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    var best = -Float.infinity, at = -1
                    for ky in 0..<g.kernelH {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= g.inHeight { continue }
                        for kx in 0..<g.kernelW {
                            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                            if ix < 0 || ix >= g.inWidth { continue }
                            let k = (p * g.inHeight + iy) * g.inWidth + ix
                            if at < 0 || x[k] > best || (x[k].isNaN && !best.isNaN) {
                                best = x[k]
                                at = k
                            }
                        }
                    }
                    if at >= 0 { dx[at] += dy[(p * g.outHeight + oy) * g.outWidth + ox] }
                }
            }
        }
        return dx
    }

    /// Average pooling: each output's gradient spread evenly over its window, divided by the
    /// forward's divisor.
    static func avgPoolBackward(_ g: PoolGeometry, dy: [Float]) -> [Float] {
        var dx = [Float](repeating: 0, count: g.planes * g.inHeight * g.inWidth)
        for p in 0..<g.planes {
            for oy in 0..<g.outHeight {
                let (y0, y1, ph) = PoolGeometry.avgWindow(
                    oy, stride: g.strideH, kernel: g.kernelH, padBefore: g.padTop, padAfter: g.padBottom,
                    size: g.inHeight)
                for ox in 0..<g.outWidth {
                    let (x0, x1, pw) = PoolGeometry.avgWindow(
                        ox, stride: g.strideW, kernel: g.kernelW, padBefore: g.padLeft, padAfter: g.padRight,
                        size: g.inWidth)
                    let count = g.countIncludePad ? ph * pw : max(y1 - y0, 0) * max(x1 - x0, 0)
                    let d = dy[(p * g.outHeight + oy) * g.outWidth + ox] / Float(count)
                    for iy in y0..<max(y0, y1) {
                        for ix in x0..<max(x0, x1) { dx[(p * g.inHeight + iy) * g.inWidth + ix] += d }
                    }
                }
            }
        }
        return dx
    }

    /// Adaptive average pooling: bin `i` covers `[floor(i*H/oh), ceil((i+1)*H/oh))`.
    static func adaptiveAvgPoolBackward(
        dy: [Float], planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int
    ) -> [Float] {
        var dx = [Float](repeating: 0, count: planes * height * width)
        for p in 0..<planes {
            for oy in 0..<outHeight {
                let y0 = oy * height / outHeight, y1 = ((oy + 1) * height + outHeight - 1) / outHeight
                for ox in 0..<outWidth {
                    let x0 = ox * width / outWidth, x1 = ((ox + 1) * width + outWidth - 1) / outWidth
                    let d = dy[(p * outHeight + oy) * outWidth + ox] / Float((y1 - y0) * (x1 - x0))
                    for iy in y0..<y1 { for ix in x0..<x1 { dx[(p * height + iy) * width + ix] += d } }
                }
            }
        }
        return dx
    }

    // MARK: - Linear, pad, concat

    /// `y = x w^T + b` (`x [N, in]`, `w [out, in]`), in double, rounded once.
    static func linearForward(
        x: [Float], w: [Float], b: [Float]?, batch: Int, inFeatures: Int, outFeatures: Int
    ) -> [Float] {
        var y = [Double](repeating: 0, count: batch * outFeatures)
        let wT = ConvGradient.transpose(w.map(Double.init), rows: outFeatures, cols: inFeatures)
        Gemm.dgemm(m: batch, n: outFeatures, k: inFeatures, a: x.map(Double.init), b: wT, c: &y)
        return y.indices.map { Float(y[$0] + Double(b?[$0 % outFeatures] ?? 0)) }
    }

    /// `y = x w^T + b`: `dx = dy w`, `dw = dy^T x`, `db = sum_n dy`, in double.
    static func linearBackward(
        x: [Float], w: [Float], dy: [Float], batch: Int, inFeatures: Int, outFeatures: Int
    ) -> (dx: [Float], dw: [Float], db: [Float]) {
        let dyd = dy.map(Double.init)
        var dx = [Double](repeating: 0, count: batch * inFeatures)
        var dw = [Double](repeating: 0, count: outFeatures * inFeatures)
        Gemm.dgemm(m: batch, n: inFeatures, k: outFeatures, a: dyd, b: w.map(Double.init), c: &dx)
        let dyT = ConvGradient.transpose(dyd, rows: batch, cols: outFeatures)
        Gemm.dgemm(m: outFeatures, n: inFeatures, k: batch, a: dyT, b: x.map(Double.init), c: &dw)
        let db = (0..<outFeatures).map { o in Float((0..<batch).reduce(0.0) { $0 + dyd[$1 * outFeatures + o] }) }
        return (dx.map { Float($0) }, dw.map { Float($0) }, db)
    }

    /// Constant padding: the gradient of the unpadded window.
    static func padBackward(dy: [Float], planes: Int, height: Int, width: Int, padding: Padding2d) -> [Float] {
        let ow = width + padding.left + padding.right, oh = height + padding.top + padding.bottom
        var dx = [Float](repeating: 0, count: planes * height * width)
        for p in 0..<planes {
            for y in 0..<height {
                for x in 0..<width { dx[(p * height + y) * width + x] = dy[(p * oh + y + padding.top) * ow + x + padding.left] }
            }
        }
        return dx
    }

    /// Channel concatenation: input `i`'s slice of the gradient.
    static func concatBackward(dy: [Float], batch: Int, channels: [Int], spatial: Int, input i: Int) -> [Float] {
        let total = channels.reduce(0, +), offset = channels[..<i].reduce(0, +)
        var dx = [Float](repeating: 0, count: batch * channels[i] * spatial)
        for n in 0..<batch {
            for c in 0..<channels[i] {
                for s in 0..<spatial { dx[(n * channels[i] + c) * spatial + s] = dy[(n * total + offset + c) * spatial + s] }
            }
        }
        return dx
    }
}
