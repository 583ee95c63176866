import Engine

/// Convolution forward and backward for training, as double-precision GEMMs over the im2col
/// matrix (OpenBLAS `dgemm` through ``Gemm``), rounded to float32 once. Per image and group, with `K = Cin/g * kH * kW` and `P = oH * oW`:
/// - forward: `y[Cout/g, P] = W[Cout/g, K] * col[K, P] (+ b)`;
/// - weight gradient: `dW[Cout/g, K] += dy[Cout/g, P] * col[K, P]^T`;
/// - input gradient: `dcol[K, P] = W^T[K, Cout/g] * dy[Cout/g, P]`, scattered back by col2im.
/// ``ReferenceConvGradient`` is the naive twin the tests compare it with.
enum ConvGradient {
    /// `y [N, Cout, oH, oW]` of `x [N, Cin, H, W]`, `w [Cout, Cin/g, kH, kW]`, `b [Cout]`,
    /// accumulated in double and rounded once: the result does not depend on the GEMM's
    /// blocking or thread count (a float32 GEMM's does, and with it which side of a ReLU's
    /// kink a value within rounding of zero falls on).
    static func forward(_ g: ConvGeometry, x: [Float], w: [Float], b: [Float]?) -> [Float] {
        var y = [Float](repeating: 0, count: g.batch * g.outImage)
        let (k, p, cog) = (g.patchSize, g.outPixels, g.groupOutChannels)
        let wd = (0..<g.groups).map { grp in w[(grp * cog * k)..<((grp + 1) * cog * k)].map(Double.init) }
        for n in 0..<g.batch {
            for grp in 0..<g.groups {
                let col = im2col(g, x, image: n, group: grp).map(Double.init)
                var yg = [Double](repeating: 0, count: cog * p)
                Gemm.dgemm(m: cog, n: p, k: k, a: wd[grp], b: col, c: &yg)
                let base = (n * g.outChannels + grp * cog) * p
                for oc in 0..<cog {
                    let bias = Double(b?[grp * cog + oc] ?? 0)
                    for i in 0..<p { y[base + oc * p + i] = Float(yg[oc * p + i] + bias) }
                }
            }
        }
        return y
    }

    /// The gradients of `x`, `w` and `b` for the output gradient `dy` (`dx` only when
    /// `inputGradient`). The GEMMs run in double (`dgemm`): a weight gradient sums
    /// `N * oH * oW` products, and float32 accumulation would leave it about 1e-6 of its size
    /// away from the exact value, as far as PyTorch's own float32 result is.
    static func backward(
        _ g: ConvGeometry, x: [Float], w: [Float], dy: [Float], inputGradient: Bool
    ) -> (dx: [Float]?, dw: [Float], db: [Float]) {
        let (k, p, cog) = (g.patchSize, g.outPixels, g.groupOutChannels)
        var dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: g.outChannels)
        var dx: [Double]? = inputGradient ? [Double](repeating: 0, count: g.batch * g.inImage) : nil
        let wt = (0..<g.groups).map { grp in
            transpose(w[(grp * cog * k)..<((grp + 1) * cog * k)].map(Double.init), rows: cog, cols: k)
        }
        for n in 0..<g.batch {
            for grp in 0..<g.groups {
                let base = (n * g.outChannels + grp * cog) * p
                let dyg = dy[base..<(base + cog * p)].map(Double.init)
                for oc in 0..<cog {
                    var s = 0.0
                    for i in 0..<p { s += dyg[oc * p + i] }
                    db[grp * cog + oc] += s
                }
                let col = im2col(g, x, image: n, group: grp).map(Double.init)
                var dwg = Array(dw[(grp * cog * k)..<((grp + 1) * cog * k)])
                Gemm.dgemm(m: cog, n: k, k: p, a: dyg, b: transpose(col, rows: k, cols: p), c: &dwg, beta: 1)
                dw.replaceSubrange((grp * cog * k)..<((grp + 1) * cog * k), with: dwg)
                if dx != nil {
                    var dcol = [Double](repeating: 0, count: k * p)
                    Gemm.dgemm(m: k, n: p, k: cog, a: wt[grp], b: dyg, c: &dcol)
                    col2im(g, dcol, into: &dx!, image: n, group: grp)
                }
            }
        }
        return (dx?.map { Float($0) }, dw.map { Float($0) }, db.map { Float($0) })
    }

    /// The `[K, P]` patch matrix of image `n`, group `grp` (zeros where the window is in the padding).
    static func im2col(_ g: ConvGeometry, _ x: [Float], image n: Int, group grp: Int) -> [Float] {
        let p = g.outPixels
        var col = [Float](repeating: 0, count: g.patchSize * p)
        for ic in 0..<g.groupInChannels {
            let plane = (n * g.inChannels + grp * g.groupInChannels + ic) * g.inHeight * g.inWidth
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let row = ((ic * g.kernelH + ky) * g.kernelW + kx) * p
                    for oy in 0..<g.outHeight {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= g.inHeight { continue }
                        for ox in 0..<g.outWidth {
                            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                            if ix < 0 || ix >= g.inWidth { continue }
                            col[row + oy * g.outWidth + ox] = x[plane + iy * g.inWidth + ix]
                        }
                    }
                }
            }
        }
        return col
    }

    /// Adds the `[K, P]` patch gradients back onto image `n`, group `grp` of `dx`.
    static func col2im(_ g: ConvGeometry, _ dcol: [Double], into dx: inout [Double], image n: Int, group grp: Int) {
        let p = g.outPixels
        for ic in 0..<g.groupInChannels {
            let plane = (n * g.inChannels + grp * g.groupInChannels + ic) * g.inHeight * g.inWidth
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let row = ((ic * g.kernelH + ky) * g.kernelW + kx) * p
                    for oy in 0..<g.outHeight {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= g.inHeight { continue }
                        for ox in 0..<g.outWidth {
                            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                            if ix < 0 || ix >= g.inWidth { continue }
                            dx[plane + iy * g.inWidth + ix] += dcol[row + oy * g.outWidth + ox]
                        }
                    }
                }
            }
        }
    }

    /// The transpose of a row-major `rows x cols` matrix.
    static func transpose<T: Numeric>(_ a: [T], rows: Int, cols: Int) -> [T] {
        var t = [T](repeating: 0, count: a.count)
        for r in 0..<rows { for c in 0..<cols { t[c * rows + r] = a[r * cols + c] } }
        return t
    }
}

/// Naive twin of ``ConvGradient``: direct loops over the convolution's definition, in Double.
enum ReferenceConvGradient {
    /// `dx`, `dw`, `db` of `y = conv(x, w) + b` for output gradient `dy`.
    static func backward(_ g: ConvGeometry, x: [Float], w: [Float], dy: [Float]) -> (dx: [Float], dw: [Float], db: [Float]) {
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: g.outChannels)
        let cig = g.groupInChannels, cog = g.groupOutChannels
        for n in 0..<g.batch {
            for oc in 0..<g.outChannels {
                let grp = oc / cog
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        let d = Double(dy[((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox])
                        db[oc] += d
                        for ic in 0..<cig {
                            let c = grp * cig + ic
                            for ky in 0..<g.kernelH {
                                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                if iy < 0 || iy >= g.inHeight { continue }
                                for kx in 0..<g.kernelW {
                                    let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                    if ix < 0 || ix >= g.inWidth { continue }
                                    let xi = ((n * g.inChannels + c) * g.inHeight + iy) * g.inWidth + ix
                                    let wi = ((oc * cig + ic) * g.kernelH + ky) * g.kernelW + kx
                                    dx[xi] += d * Double(w[wi])
                                    dw[wi] += d * Double(x[xi])
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx.map { Float($0) }, dw.map { Float($0) }, db.map { Float($0) })
    }
}
