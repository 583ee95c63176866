import Foundation

/// Naive twins of the fast op kernels: straight loops over arrays, obviously correct.
///
/// Each returns a fresh array; accumulation is in Double. Layout is NCHW row-major and
/// every shape argument was validated by the caller (the reference executor or a test).
extension ReferenceKernels {
    /// Direct convolution. `x [N, Cin, H, W]`, `w [Cout, Cin/g, kH, kW]`, `b [Cout]` -> `[N, Cout, oH, oW]`.
    package static func conv2d(
        _ g: ConvGeometry, input x: [Float], weight w: [Float], bias b: [Float]?
    ) -> [Float] {
        var y = [Float](repeating: 0, count: g.batch * g.outImage)
        let cig = g.groupInChannels, cog = g.groupOutChannels
        for n in 0..<g.batch {
            for oc in 0..<g.outChannels {
                let grp = oc / cog
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        var acc = Double(b?[oc] ?? 0)
                        for ic in 0..<cig {
                            let c = grp * cig + ic
                            for ky in 0..<g.kernelH {
                                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                if iy < 0 || iy >= g.inHeight { continue }
                                for kx in 0..<g.kernelW {
                                    let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                    if ix < 0 || ix >= g.inWidth { continue }
                                    let xv = x[((n * g.inChannels + c) * g.inHeight + iy) * g.inWidth + ix]
                                    let wv = w[((oc * cig + ic) * g.kernelH + ky) * g.kernelW + kx]
                                    acc += Double(xv) * Double(wv)
                                }
                            }
                        }
                        y[((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox] = Float(acc)
                    }
                }
            }
        }
        return y
    }

    /// Inference batch norm with the textbook formula: `(x - mean) / sqrt(var + eps) * gamma + beta`.
    /// `x` is `[N, C, inner...]` flattened as `batch x channels x inner`.
    package static func batchNorm(
        _ x: [Float], batch: Int, channels: Int, inner: Int, gamma: [Float], beta: [Float],
        mean: [Float], variance: [Float], epsilon: Float
    ) -> [Float] {
        var y = x
        for n in 0..<batch {
            for c in 0..<channels {
                let sd = (Double(variance[c]) + Double(epsilon)).squareRoot()
                for i in 0..<inner {
                    let k = (n * channels + c) * inner + i
                    y[k] = Float((Double(x[k]) - Double(mean[c])) / sd * Double(gamma[c]) + Double(beta[c]))
                }
            }
        }
        return y
    }

    /// `y = x * scale[c] + bias[c]`.
    package static func channelAffine(
        _ x: [Float], batch: Int, channels: Int, inner: Int, scale: [Float], bias: [Float]
    ) -> [Float] {
        var y = x
        for n in 0..<batch {
            for c in 0..<channels {
                for i in 0..<inner {
                    let k = (n * channels + c) * inner + i
                    y[k] = x[k] * scale[c] + bias[c]
                }
            }
        }
        return y
    }

    /// Elementwise activation (relu / clamp).
    package static func activation(_ x: [Float], _ a: Activation) -> [Float] {
        x.map { v in
            switch a {
            case .none: return v
            case .relu: return v < 0 ? 0 : v  // NaN stays NaN, as torch.relu
            case .clamp(let lo, let hi): return v < lo ? lo : (v > hi ? hi : v)
            }
        }
    }

    /// `y = x > 0 ? x : a[c] * x`; `slope` has 1 or `channels` elements.
    package static func prelu(
        _ x: [Float], batch: Int, channels: Int, inner: Int, slope: [Float]
    ) -> [Float] {
        var y = x
        for n in 0..<batch {
            for c in 0..<channels {
                let a = slope.count == 1 ? slope[0] : slope[c]
                for i in 0..<inner {
                    let k = (n * channels + c) * inner + i
                    if x[k] <= 0 { y[k] = a * x[k] }
                }
            }
        }
        return y
    }

    /// Max pooling; out-of-input positions are skipped (PyTorch's -inf padding). NaN propagates.
    package static func maxPool2d(_ g: PoolGeometry, input x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: g.planes * g.outHeight * g.outWidth)
        for p in 0..<g.planes {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    var m = -Float.infinity
                    for ky in 0..<g.kernelH {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= g.inHeight { continue }
                        for kx in 0..<g.kernelW {
                            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                            if ix < 0 || ix >= g.inWidth { continue }
                            let v = x[(p * g.inHeight + iy) * g.inWidth + ix]
                            if v > m || v.isNaN { m = v }
                        }
                    }
                    y[(p * g.outHeight + oy) * g.outWidth + ox] = m
                }
            }
        }
        return y
    }

    /// Average pooling with PyTorch's divisor rule (``PoolGeometry/avgWindow(_:stride:kernel:padBefore:padAfter:size:)``).
    package static func avgPool2d(_ g: PoolGeometry, input x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: g.planes * g.outHeight * g.outWidth)
        for p in 0..<g.planes {
            for oy in 0..<g.outHeight {
                let (y0, y1, ph) = PoolGeometry.avgWindow(
                    oy, stride: g.strideH, kernel: g.kernelH, padBefore: g.padTop,
                    padAfter: g.padBottom, size: g.inHeight)
                for ox in 0..<g.outWidth {
                    let (x0, x1, pw) = PoolGeometry.avgWindow(
                        ox, stride: g.strideW, kernel: g.kernelW, padBefore: g.padLeft,
                        padAfter: g.padRight, size: g.inWidth)
                    var s = 0.0
                    for iy in y0..<max(y0, y1) {
                        for ix in x0..<max(x0, x1) { s += Double(x[(p * g.inHeight + iy) * g.inWidth + ix]) }
                    }
                    let count = g.countIncludePad ? ph * pw : max(y1 - y0, 0) * max(x1 - x0, 0)
                    y[(p * g.outHeight + oy) * g.outWidth + ox] = Float(s / Double(count))
                }
            }
        }
        return y
    }

    /// Adaptive average pooling: bin `i` covers `[floor(i*H/oh), ceil((i+1)*H/oh))`.
    package static func adaptiveAvgPool2d(
        _ x: [Float], planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int
    ) -> [Float] {
        var y = [Float](repeating: 0, count: planes * outHeight * outWidth)
        for p in 0..<planes {
            for oy in 0..<outHeight {
                let y0 = oy * height / outHeight, y1 = ((oy + 1) * height + outHeight - 1) / outHeight
                for ox in 0..<outWidth {
                    let x0 = ox * width / outWidth, x1 = ((ox + 1) * width + outWidth - 1) / outWidth
                    var s = 0.0
                    for iy in y0..<y1 { for ix in x0..<x1 { s += Double(x[(p * height + iy) * width + ix]) } }
                    y[(p * outHeight + oy) * outWidth + ox] = Float(s / Double((y1 - y0) * (x1 - x0)))
                }
            }
        }
        return y
    }

    /// `y [N, out] = x [N, in] * w[out, in]^T + b`.
    package static func linear(
        _ x: [Float], batch: Int, inFeatures: Int, weight w: [Float], outFeatures: Int, bias: [Float]?
    ) -> [Float] {
        var y = [Float](repeating: 0, count: batch * outFeatures)
        for n in 0..<batch {
            for o in 0..<outFeatures {
                var acc = Double(bias?[o] ?? 0)
                for i in 0..<inFeatures { acc += Double(x[n * inFeatures + i]) * Double(w[o * inFeatures + i]) }
                y[n * outFeatures + o] = Float(acc)
            }
        }
        return y
    }

    /// `y = a + b`.
    package static func add(_ a: [Float], _ b: [Float]) -> [Float] {
        zip(a, b).map { $0 + $1 }
    }

    /// Softmax along the middle axis of `[outer, axis, inner]` (max-subtracted, in Double).
    package static func softmax(_ x: [Float], outer: Int, axis: Int, inner: Int) -> [Float] {
        var y = x
        for o in 0..<outer {
            for i in 0..<inner {
                var m = -Double.infinity
                for a in 0..<axis { m = max(m, Double(x[(o * axis + a) * inner + i])) }
                var s = 0.0
                for a in 0..<axis { s += exp(Double(x[(o * axis + a) * inner + i]) - m) }
                for a in 0..<axis {
                    let k = (o * axis + a) * inner + i
                    y[k] = Float(exp(Double(x[k]) - m) / s)
                }
            }
        }
        return y
    }

    /// Constant padding of `[planes, H, W]`.
    package static func pad(
        _ x: [Float], planes: Int, height: Int, width: Int, padding p: Padding2d, value: Float
    ) -> [Float] {
        let oh = height + p.top + p.bottom, ow = width + p.left + p.right
        var y = [Float](repeating: value, count: planes * oh * ow)
        for q in 0..<planes {
            for iy in 0..<height {
                for ix in 0..<width {
                    y[(q * oh + iy + p.top) * ow + ix + p.left] = x[(q * height + iy) * width + ix]
                }
            }
        }
        return y
    }

    /// Space-to-depth (`toDepth`) or depth-to-space of `[N, C, H, W]` (space-side shape) by `s`.
    /// Depth side: `[N, C*s*s, H/s, W/s]`, channel `c*s*s + dy*s + dx` at `(i, j)` <->
    /// space side channel `c` at `(i*s + dy, j*s + dx)`.
    package static func spaceDepth(
        _ x: [Float], batch: Int, channels: Int, height: Int, width: Int, block s: Int, toDepth: Bool
    ) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        let (oh, ow) = (height / s, width / s)
        for n in 0..<batch {
            for c in 0..<channels {
                for i in 0..<oh {
                    for j in 0..<ow {
                        for dy in 0..<s {
                            for dx in 0..<s {
                                let spaceIndex = ((n * channels + c) * height + i * s + dy) * width + j * s + dx
                                let depthIndex = ((n * channels * s * s + c * s * s + dy * s + dx) * oh + i) * ow + j
                                if toDepth { y[depthIndex] = x[spaceIndex] } else { y[spaceIndex] = x[depthIndex] }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Channel concatenation of `[N, Ci, H, W]` tensors.
    package static func concat(_ xs: [[Float]], batch: Int, channels: [Int], spatial: Int) -> [Float] {
        var y: [Float] = []
        for n in 0..<batch {
            for (x, c) in zip(xs, channels) {
                y += x[(n * c * spatial)..<((n + 1) * c * spatial)]
            }
        }
        return y
    }
}
