import Engine

/// Convolution forward and backward for training in float32: per image, the im2col matrix
/// and single-threaded OpenBLAS `sgemm`s, with the images split over threads. The fast
/// counterpart of ``ConvGradient`` (double GEMMs); ``ReferenceConvGradient`` is the naive twin
/// the tests compare both with.
///
/// Per image and group, with `K = Cin/g * kH * kW` and `P = oH * oW`:
/// - forward: `y[Cout/g, P] = W[Cout/g, K] * col[K, P] (+ b)`;
/// - weight gradient: `dW[Cout/g, K] += dy[Cout/g, P] * col[K, P]^T`;
/// - input gradient: `dcol[K, P] = W^T[K, Cout/g] * dy[Cout/g, P]`, scattered back by col2im.
///
/// The results do not depend on the thread count: every image's GEMMs are the same calls on
/// any thread, and the weight gradient is summed per fixed block of ``imagesPerBlock`` images
/// (float32, sgemm with beta 1), the block sums then added in block order in double. OpenBLAS
/// must run single-threaded (``Gemm/setThreads(_:)``; ``FastConvGradient`` sets it), so that
/// its blocking, and with it the rounding, is the same on every call.
enum FastConvGradient {
    /// Images whose weight-gradient products one float32 accumulator sums.
    static let imagesPerBlock = 8

    /// `y [N, Cout, oH, oW]` of `x [N, Cin, H, W]`, `w [Cout, Cin/g, kH, kW]`, `b [Cout]`.
    static func forward(_ g: ConvGeometry, x: [Float], w: [Float], b: [Float]?, threads: Int) -> [Float] {
        Gemm.setThreads(1)
        let (k, p, cog) = (g.patchSize, g.outPixels, g.groupOutChannels)
        var y = [Float](repeating: 0, count: g.batch * g.outImage)
        let direct = isPointwise(g)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe w.withUnsafeBufferPointer { pw in
                unsafe y.withUnsafeMutableBufferPointer { py in
                    let (xs, ws, ys) = unsafe (px.baseAddress!, pw.baseAddress!, py.baseAddress!)
                    Parallel.forRanges(g.batch, threads: threads) { images in
                        var col = [Float](repeating: 0, count: direct ? 0 : k * p)
                        unsafe col.withUnsafeMutableBufferPointer { pc in
                            for n in images {
                                for grp in 0..<g.groups {
                                    let src: UnsafePointer<Float>
                                    if direct {
                                        src = unsafe xs + (n * g.inChannels + grp * g.groupInChannels) * g.inHeight * g.inWidth
                                    } else {
                                        unsafe im2col(g, xs, image: n, group: grp, into: pc.baseAddress!)
                                        src = unsafe UnsafePointer(pc.baseAddress!)
                                    }
                                    let out = unsafe ys + (n * g.outChannels + grp * cog) * p
                                    unsafe Gemm.sgemm(
                                        m: cog, n: p, k: k, a: ws + grp * cog * k, lda: k, b: src, ldb: p, c: out, ldc: p)
                                    if let b {
                                        for oc in 0..<cog {
                                            let bias = b[grp * cog + oc]
                                            for i in 0..<p { unsafe out[oc * p + i] += bias }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The gradients of `x`, `w` and `b` for the output gradient `dy` (`dx` only when `inputGradient`).
    static func backward(
        _ g: ConvGeometry, x: [Float], w: [Float], dy: [Float], inputGradient: Bool, threads: Int
    ) -> (dx: [Float]?, dw: [Float], db: [Float]) {
        Gemm.setThreads(1)
        let (k, p, cog) = (g.patchSize, g.outPixels, g.groupOutChannels)
        let blocks = (g.batch + imagesPerBlock - 1) / imagesPerBlock
        var partial = [Float](repeating: 0, count: blocks * w.count)
        var dx = [Float](repeating: 0, count: inputGradient ? g.batch * g.inImage : 0)
        // W^T per group: [K, Cout/g].
        var wt = [Float](repeating: 0, count: w.count)
        for grp in 0..<g.groups {
            for r in 0..<cog { for c in 0..<k { wt[grp * cog * k + c * cog + r] = w[grp * cog * k + r * k + c] } }
        }
        let direct = isPointwise(g)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe dy.withUnsafeBufferPointer { pdy in
                unsafe wt.withUnsafeBufferPointer { pwt in
                    unsafe partial.withUnsafeMutableBufferPointer { ppart in
                        unsafe dx.withUnsafeMutableBufferPointer { pdx in
                            let (xs, dys, wts, parts) = unsafe (
                                px.baseAddress!, pdy.baseAddress!, pwt.baseAddress!, ppart.baseAddress!
                            )
                            let dxs = unsafe pdx.baseAddress
                            Parallel.forRanges(blocks, threads: threads) { range in
                                var col = [Float](repeating: 0, count: direct ? 0 : k * p)
                                var dcol = [Float](repeating: 0, count: inputGradient && !direct ? k * p : 0)
                                unsafe col.withUnsafeMutableBufferPointer { pc in
                                    unsafe dcol.withUnsafeMutableBufferPointer { pdc in
                                        for block in range {
                                            let acc = unsafe parts + block * w.count
                                            let first = block * imagesPerBlock
                                            for n in first..<min(first + imagesPerBlock, g.batch) {
                                                for grp in 0..<g.groups {
                                                    let dyg = unsafe dys + (n * g.outChannels + grp * cog) * p
                                                    let xOffset = (n * g.inChannels + grp * g.groupInChannels) * g.inHeight * g.inWidth
                                                    let src: UnsafePointer<Float>
                                                    if direct {
                                                        src = unsafe xs + xOffset
                                                    } else {
                                                        unsafe im2col(g, xs, image: n, group: grp, into: pc.baseAddress!)
                                                        src = unsafe UnsafePointer(pc.baseAddress!)
                                                    }
                                                    unsafe Gemm.sgemm(
                                                        m: cog, n: k, k: p, a: dyg, lda: p, transB: true, b: src, ldb: p,
                                                        c: acc + grp * cog * k, ldc: k, beta: 1)
                                                    guard inputGradient, let dxs = unsafe dxs else { continue }
                                                    if direct {
                                                        unsafe Gemm.sgemm(
                                                            m: k, n: p, k: cog, a: wts + grp * cog * k, lda: cog, b: dyg,
                                                            ldb: p, c: dxs + xOffset, ldc: p)
                                                    } else {
                                                        unsafe Gemm.sgemm(
                                                            m: k, n: p, k: cog, a: wts + grp * cog * k, lda: cog, b: dyg,
                                                            ldb: p, c: pdc.baseAddress!, ldc: p)
                                                        unsafe col2im(g, pdc.baseAddress!, into: dxs, image: n, group: grp)
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Block sums in block order, in double; the bias gradient per channel in double.
        var dw = [Float](repeating: 0, count: w.count)
        for i in 0..<w.count {
            var s = 0.0
            for block in 0..<blocks { s += Double(partial[block * w.count + i]) }
            dw[i] = Float(s)
        }
        var db = [Float](repeating: 0, count: g.outChannels)
        for oc in 0..<g.outChannels {
            var s = 0.0
            for n in 0..<g.batch {
                let base = (n * g.outChannels + oc) * p
                for i in 0..<p { s += Double(dy[base + i]) }
            }
            db[oc] = Float(s)
        }
        return (inputGradient ? dx : nil, dw, db)
    }

    /// A 1x1 convolution with stride 1 and no padding reads its input as the `[K, P]` matrix.
    static func isPointwise(_ g: ConvGeometry) -> Bool {
        g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padLeft == 0
            && g.outHeight == g.inHeight && g.outWidth == g.inWidth
    }

    /// The output columns `[lo, hi)` whose tap `kx` reads inside the input row
    /// (`0 <= ox * strideW - padLeft + kx * dilationW < inWidth`).
    @inline(__always)
    static func validColumns(_ g: ConvGeometry, kx: Int) -> (Int, Int) {
        let offset = kx * g.dilationW - g.padLeft  // ix = ox * strideW + offset
        let lo = offset >= 0 ? 0 : (-offset + g.strideW - 1) / g.strideW
        let hi = g.inWidth - offset <= 0 ? 0 : min(g.outWidth, (g.inWidth - offset + g.strideW - 1) / g.strideW)
        return (min(lo, g.outWidth), max(hi, min(lo, g.outWidth)))
    }

    /// Writes the `[K, P]` patch matrix of image `n`, group `grp` of `x` to `col` (zeros in the padding).
    static func im2col(
        _ g: ConvGeometry, _ x: UnsafePointer<Float>, image n: Int, group grp: Int, into col: UnsafeMutablePointer<Float>
    ) {
        let p = g.outPixels
        for ic in 0..<g.groupInChannels {
            let plane = unsafe x + (n * g.inChannels + grp * g.groupInChannels + ic) * g.inHeight * g.inWidth
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let row = unsafe col + ((ic * g.kernelH + ky) * g.kernelW + kx) * p
                    for oy in 0..<g.outHeight {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        let out = unsafe row + oy * g.outWidth
                        if iy < 0 || iy >= g.inHeight {
                            unsafe out.update(repeating: 0, count: g.outWidth)
                            continue
                        }
                        // Columns [lo, hi) read inside the row; the rest are padding.
                        let (lo, hi) = validColumns(g, kx: kx)
                        let src = unsafe plane + iy * g.inWidth + (lo * g.strideW - g.padLeft + kx * g.dilationW)
                        if lo > 0 { unsafe out.update(repeating: 0, count: lo) }
                        if hi < g.outWidth { unsafe (out + hi).update(repeating: 0, count: g.outWidth - hi) }
                        if g.strideW == 1 {
                            if hi > lo { unsafe (out + lo).update(from: src, count: hi - lo) }
                        } else {
                            for j in 0..<max(hi - lo, 0) { unsafe out[lo + j] = src[j * g.strideW] }
                        }
                    }
                }
            }
        }
    }

    /// Adds the `[K, P]` patch gradients back onto image `n`, group `grp` of `dx`.
    static func col2im(
        _ g: ConvGeometry, _ dcol: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, image n: Int, group grp: Int
    ) {
        let p = g.outPixels
        for ic in 0..<g.groupInChannels {
            let plane = unsafe dx + (n * g.inChannels + grp * g.groupInChannels + ic) * g.inHeight * g.inWidth
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let row = unsafe dcol + ((ic * g.kernelH + ky) * g.kernelW + kx) * p
                    for oy in 0..<g.outHeight {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= g.inHeight { continue }
                        let (lo, hi) = validColumns(g, kx: kx)
                        let dst = unsafe plane + iy * g.inWidth + (lo * g.strideW - g.padLeft + kx * g.dilationW)
                        let src = unsafe row + oy * g.outWidth + lo
                        if g.strideW == 1 {
                            for j in 0..<max(hi - lo, 0) { unsafe dst[j] += src[j] }
                        } else {
                            for j in 0..<max(hi - lo, 0) { unsafe dst[j * g.strideW] += src[j] }
                        }
                    }
                }
            }
        }
    }
}
