/// Winograd F(2x2, 3x3) convolution for 3x3, stride-1, undilated, ungrouped convs.
///
/// Math (Lavin & Gray 2016): each 2x2 output tile is `Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A`
/// for a 4x4 input tile `d` (origin `(2*ty - padT, 2*tx - padL)`, zeros outside the image):
/// ```
/// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
/// G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
/// A^T = [1 1 1 0; 0 1 -1 -1]
/// ```
/// Summed over input channels, the 16 element-wise products become 16 GEMMs
/// `M[ξ] (Cout x T) = U[ξ] (Cout x Cin) * V[ξ] (Cin x T)` with `T` tiles per image: 2.25x
/// fewer multiplies than direct convolution. Rounding differs from direct convolution by a
/// few ulps of the accumulated magnitude (the transforms only use 1/2 and ±1).
///
/// Layouts: transformed weights `U [16, Cout, Cin]` (made once at plan time by
/// ``transformWeights(_:outChannels:inChannels:)``); scratch holds `V [16, Cin, T]` then
/// `M [16, Cout, T]`. The naive twin is the direct ``ReferenceKernels/conv2d(_:input:weight:bias:)``.
package enum Winograd {
    /// True when `g` is a conv this kernel computes.
    package static func applies(_ g: ConvGeometry) -> Bool {
        g.kernelH == 3 && g.kernelW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1
            && g.dilationW == 1 && g.groups == 1
    }

    /// True when Winograd is expected to beat im2col + GEMM on this machine class.
    ///
    /// Measured on ResNet-18 shapes (AVX2, OpenBLAS, thread CPU time): with few input
    /// channels the transforms dominate the shortened GEMMs (64 channels at 56x56: 5.6 ms vs
    /// 3.7 ms direct), and with few tiles the 16 transformed weight matrices (1.8x the
    /// weights) are streamed for little work (512 channels at 7x7: 4.5 ms vs 4.0 ms). At
    /// 128 channels / 28x28 and 256 / 14x14 it wins (2.1 vs 3.2 ms).
    package static func isProfitable(_ g: ConvGeometry) -> Bool {
        let (th, tw) = tiles(g)
        return applies(g) && g.inChannels >= 128 && th * tw >= 32
    }

    /// Tiles per image.
    package static func tiles(_ g: ConvGeometry) -> (h: Int, w: Int) {
        ((g.outHeight + 1) / 2, (g.outWidth + 1) / 2)
    }

    /// Scratch floats for one image: `V` and `M`.
    package static func scratchCount(_ g: ConvGeometry) -> Int {
        let (th, tw) = tiles(g)
        return 16 * th * tw * (g.inChannels + g.outChannels)
    }

    /// `U = G g G^T` for every `(oc, ic)`, stored `[16, Cout, Cin]`. `w` is `[Cout, Cin, 3, 3]`.
    package static func transformWeights(_ w: [Float], outChannels: Int, inChannels: Int) -> [Float] {
        var u = [Float](repeating: 0, count: 16 * outChannels * inChannels)
        let plane = outChannels * inChannels
        for oc in 0..<outChannels {
            for ic in 0..<inChannels {
                let g = (oc * inChannels + ic) * 9
                // Gg: 4 rows x 3 columns.
                var gg = [Float](repeating: 0, count: 12)
                for c in 0..<3 {
                    let (g0, g1, g2) = (w[g + c], w[g + 3 + c], w[g + 6 + c])
                    gg[c] = g0
                    gg[3 + c] = 0.5 * (g0 + g1 + g2)
                    gg[6 + c] = 0.5 * (g0 - g1 + g2)
                    gg[9 + c] = g2
                }
                for r in 0..<4 {
                    let (a0, a1, a2) = (gg[3 * r], gg[3 * r + 1], gg[3 * r + 2])
                    let row = [a0, 0.5 * (a0 + a1 + a2), 0.5 * (a0 - a1 + a2), a2]
                    for c in 0..<4 { u[(r * 4 + c) * plane + oc * inChannels + ic] = row[c] }
                }
            }
        }
        return u
    }

    /// `output = act(conv3x3(input) + bias [+ residual])` via F(2x2, 3x3).
    ///
    /// `residual` may be `output` itself (each output element is read, then written, by one
    /// task); otherwise buffers never alias.
    package static func forward(
        _ g: ConvGeometry, input: UnsafeBufferPointer<Float>, transformedWeight u: UnsafeBufferPointer<Float>,
        bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, scratch: UnsafeMutableBufferPointer<Float>,
        activation: Activation, threads: Int
    ) {
        precondition(applies(g) && scratch.count >= scratchCount(g) && u.count >= 16 * g.outChannels * g.inChannels)
        precondition(input.count >= g.batch * g.inImage && output.count >= g.batch * g.outImage)
        let (th, tw) = tiles(g)
        let t = th * tw
        let (cin, cout) = (g.inChannels, g.outChannels)
        let v = scratch.baseAddress!
        let m = unsafe v + 16 * cin * t
        for b in 0..<g.batch {
            let x = unsafe input.baseAddress! + b * g.inImage
            let y = unsafe output.baseAddress! + b * g.outImage
            let res = unsafe residual.map { unsafe $0.baseAddress! + b * g.outImage }
            Parallel.forRanges(cin, threads: threads, grain: max(1, 4096 / max(t, 1))) { r in
                for c in r { unsafe inputTransform(g, plane: x + c * g.inHeight * g.inWidth, v: v + c * t, stride: cin * t, tiles: (th, tw)) }
            }
            Parallel.forRanges(16, threads: threads) { r in
                for xi in r {
                    unsafe Gemm.sgemm(
                        m: cout, n: t, k: cin, a: u.baseAddress! + xi * cout * cin, lda: cin,
                        b: v + xi * cin * t, ldb: t, c: m + xi * cout * t, ldc: t)
                }
            }
            Parallel.forRanges(cout, threads: threads, grain: max(1, 4096 / max(t, 1))) { r in
                for oc in r {
                    let off = oc * g.outPixels
                    unsafe outputTransform(
                        g, m: m + oc * t, stride: cout * t, tiles: (th, tw), bias: bias?[oc] ?? 0,
                        residual: res.map { unsafe $0 + off }, output: y + off, activation: activation)
                }
            }
        }
    }

    /// `V[ξ][c][tile] = (B^T d B)[ξ]` for one channel; `v` points at `V[0][c][0]`, ξ-stride `stride`.
    @inline(__always)
    private static func inputTransform(
        _ g: ConvGeometry, plane: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>, stride: Int,
        tiles: (h: Int, w: Int)
    ) {
        let (h, w) = (g.inHeight, g.inWidth)
        var d = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0),
                 Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
        for ty in 0..<tiles.h {
            let iy0 = 2 * ty - g.padTop
            for tx in 0..<tiles.w {
                let ix0 = 2 * tx - g.padLeft
                let tile = ty * tiles.w + tx
                // Gather the 4x4 input patch (zeros outside).
                if iy0 >= 0 && iy0 + 3 < h && ix0 >= 0 && ix0 + 3 < w {
                    let p = unsafe plane + iy0 * w + ix0
                    unsafe d = (p[0], p[1], p[2], p[3], p[w], p[w + 1], p[w + 2], p[w + 3],
                                p[2 * w], p[2 * w + 1], p[2 * w + 2], p[2 * w + 3],
                                p[3 * w], p[3 * w + 1], p[3 * w + 2], p[3 * w + 3])
                } else {
                    func at(_ r: Int, _ c: Int) -> Float {
                        let (iy, ix) = (iy0 + r, ix0 + c)
                        return iy >= 0 && iy < h && ix >= 0 && ix < w ? unsafe plane[iy * w + ix] : 0
                    }
                    d = (at(0, 0), at(0, 1), at(0, 2), at(0, 3), at(1, 0), at(1, 1), at(1, 2), at(1, 3),
                         at(2, 0), at(2, 1), at(2, 2), at(2, 3), at(3, 0), at(3, 1), at(3, 2), at(3, 3))
                }
                // t = B^T d (rows), then V = t B (columns).
                let t0 = (d.0 - d.8, d.1 - d.9, d.2 - d.10, d.3 - d.11)
                let t1 = (d.4 + d.8, d.5 + d.9, d.6 + d.10, d.7 + d.11)
                let t2 = (d.8 - d.4, d.9 - d.5, d.10 - d.6, d.11 - d.7)
                let t3 = (d.4 - d.12, d.5 - d.13, d.6 - d.14, d.7 - d.15)
                let o = unsafe v + tile
                unsafe o[0] = t0.0 - t0.2
                unsafe o[stride] = t0.1 + t0.2
                unsafe o[2 * stride] = t0.2 - t0.1
                unsafe o[3 * stride] = t0.1 - t0.3
                unsafe o[4 * stride] = t1.0 - t1.2
                unsafe o[5 * stride] = t1.1 + t1.2
                unsafe o[6 * stride] = t1.2 - t1.1
                unsafe o[7 * stride] = t1.1 - t1.3
                unsafe o[8 * stride] = t2.0 - t2.2
                unsafe o[9 * stride] = t2.1 + t2.2
                unsafe o[10 * stride] = t2.2 - t2.1
                unsafe o[11 * stride] = t2.1 - t2.3
                unsafe o[12 * stride] = t3.0 - t3.2
                unsafe o[13 * stride] = t3.1 + t3.2
                unsafe o[14 * stride] = t3.2 - t3.1
                unsafe o[15 * stride] = t3.1 - t3.3
            }
        }
    }

    /// `Y = A^T m A` for one output channel's tiles, plus bias, residual and activation.
    @inline(__always)
    private static func outputTransform(
        _ g: ConvGeometry, m: UnsafePointer<Float>, stride: Int, tiles: (h: Int, w: Int), bias: Float,
        residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, activation: Activation
    ) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        for ty in 0..<tiles.h {
            for tx in 0..<tiles.w {
                let q = unsafe m + ty * tiles.w + tx
                let m0 = unsafe (q[0], q[stride], q[2 * stride], q[3 * stride])
                let m1 = unsafe (q[4 * stride], q[5 * stride], q[6 * stride], q[7 * stride])
                let m2 = unsafe (q[8 * stride], q[9 * stride], q[10 * stride], q[11 * stride])
                let m3 = unsafe (q[12 * stride], q[13 * stride], q[14 * stride], q[15 * stride])
                // s = A^T m (2 rows of 4), y = s A.
                let s0 = (m0.0 + m1.0 + m2.0, m0.1 + m1.1 + m2.1, m0.2 + m1.2 + m2.2, m0.3 + m1.3 + m2.3)
                let s1 = (m1.0 - m2.0 - m3.0, m1.1 - m2.1 - m3.1, m1.2 - m2.2 - m3.2, m1.3 - m2.3 - m3.3)
                let oy0 = 2 * ty, ox0 = 2 * tx
                let full = oy0 + 1 < oh && ox0 + 1 < ow
                @inline(__always) func store(_ dy: Int, _ dx: Int, _ val: Float) {
                    if !full && (oy0 + dy >= oh || ox0 + dx >= ow) { return }
                    let k = (oy0 + dy) * ow + ox0 + dx
                    let r = unsafe residual?[k] ?? 0
                    unsafe output[k] = activation.apply(val + bias + r)
                }
                store(0, 0, s0.0 + s0.1 + s0.2)
                store(0, 1, s0.1 - s0.2 - s0.3)
                store(1, 0, s1.0 + s1.1 + s1.2)
                store(1, 1, s1.1 - s1.2 - s1.3)
            }
        }
    }
}
