extension ReferenceKernels {
    /// The level index an input value reads as in ``Op/integerConv(_:)``: clamped to
    /// `0...maxIndex` and truncated; NaN reads as 0.
    static func levelIndex(_ v: Float, maxIndex: Int) -> Int {
        if !(v > 0) { return 0 }
        if v >= Float(maxIndex) { return maxIndex }
        return Int(v)
    }

    /// Naive integer convolution sums (Int64, so nothing can overflow): `acc[n, m, p]` =
    /// `Σ index(x) · w` over the group's taps, padded positions reading `padIndex`. Twin of
    /// ``IntegerConv``'s int32 accumulation.
    static func integerConvSums(_ g: ConvGeometry, input x: [Float], weight w: [Float], padIndex: Int, maxIndex: Int) -> [Int64] {
        let (cg, mg) = (g.groupInChannels, g.groupOutChannels)
        var y = [Int64](repeating: 0, count: g.batch * g.outImage)
        for n in 0..<g.batch {
            for m in 0..<g.outChannels {
                let grp = m / mg
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        var s: Int64 = 0
                        for c in 0..<cg {
                            for ky in 0..<g.kernelH {
                                for kx in 0..<g.kernelW {
                                    let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                    let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                    var v = padIndex
                                    if iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth {
                                        let ci = grp * cg + c
                                        v = levelIndex(x[((n * g.inChannels + ci) * g.inHeight + iy) * g.inWidth + ix], maxIndex: maxIndex)
                                    }
                                    s += Int64(v) * Int64(w[((m * cg + c) * g.kernelH + ky) * g.kernelW + kx])
                                }
                            }
                        }
                        y[((n * g.outChannels + m) * g.outHeight + oy) * g.outWidth + ox] = s
                    }
                }
            }
        }
        return y
    }

    /// Naive ``Op/integerConv(_:)``: `y = act((Float(acc) * scale[m] + bias[m]) + residual)`,
    /// each step rounded in float32 in that order, `act` = `v < lo ? lo : v`, then
    /// `v > hi ? hi : v` with the activation's bounds (the fast kernel's output transform).
    static func integerConv(
        _ g: ConvGeometry, input x: [Float], weight w: [Float], scale: [Float], bias: [Float], padIndex: Int, maxIndex: Int,
        residual: [Float]? = nil, activation: Activation = .none
    ) -> [Float] {
        let sums = integerConvSums(g, input: x, weight: w, padIndex: padIndex, maxIndex: maxIndex)
        let plane = g.outPixels
        return sums.indices.map { i in
            let m = (i / plane) % g.outChannels
            var v = Float(sums[i]) * scale[m]
            v = v + bias[m]
            if let residual { v = v + residual[i] }
            let (lo, hi) = activation.bounds
            v = v < lo ? lo : v
            return v > hi ? hi : v
        }
    }
}
