/// Naive twins of the bit-packed convolution: integer codes, a direct integer convolution
/// with the pad code written into the padded positions, and the output transform.
extension ReferenceKernels {
    /// The exact integer accumulators `acc[n][o][oy][ox] = sum a * w` of a binary conv:
    /// `a` the input's codes (``BinaryConv2dAttributes/code(_:)``) or `padCode` outside the
    /// image, `w` the weight codes. `[N, Cout, oH, oW]`.
    package static func binaryConvAccumulators(
        _ g: ConvGeometry, _ a: BinaryConv2dAttributes, input x: [Float]
    ) -> [Int] {
        let codes = x.map { a.code($0) }
        let w = a.weights.codes().map { Int($0) }
        var acc = [Int](repeating: 0, count: g.batch * g.outImage)
        let cig = g.groupInChannels, cog = g.groupOutChannels
        for n in 0..<g.batch {
            for oc in 0..<g.outChannels {
                let grp = oc / cog
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        var sum = 0
                        for ic in 0..<cig {
                            let c = grp * cig + ic
                            for ky in 0..<g.kernelH {
                                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                for kx in 0..<g.kernelW {
                                    let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                    let inside = iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth
                                    let av = inside ? codes[((n * g.inChannels + c) * g.inHeight + iy) * g.inWidth + ix] : a.padCode
                                    sum += av * w[((oc * cig + ic) * g.kernelH + ky) * g.kernelW + kx]
                                }
                            }
                        }
                        acc[((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox] = sum
                    }
                }
            }
        }
        return acc
    }

    /// The binary conv: `y = Float(acc) * multiplier[o] + bias[o]` (a float product, then a
    /// float sum) over ``binaryConvAccumulators(_:_:input:)``.
    package static func binaryConv2d(_ g: ConvGeometry, _ a: BinaryConv2dAttributes, input x: [Float]) -> [Float] {
        let acc = binaryConvAccumulators(g, a, input: x)
        let pixels = g.outPixels
        return acc.indices.map { i in
            let o = (i / pixels) % g.outChannels
            let p = Float(acc[i]) * a.multiplier[o]
            return p + a.bias[o]
        }
    }

    /// Bit packing of one image's channels, the naive way: for every pixel (row-major) of
    /// `[channels, pixels]` floats, `ceil(channels / 64)` words with bit `c % 64` of word
    /// `c / 64` set when the code of channel c satisfies `bit` (sign: code < 0).
    package static func packBits(_ x: [Float], channels: Int, pixels: Int, bit: (Float) -> Bool) -> [UInt64] {
        let words = (channels + 63) / 64
        var out = [UInt64](repeating: 0, count: pixels * words)
        for c in 0..<channels {
            for p in 0..<pixels where bit(x[c * pixels + p]) {
                out[p * words + c / 64] |= UInt64(1) << UInt64(c % 64)
            }
        }
        return out
    }
}
