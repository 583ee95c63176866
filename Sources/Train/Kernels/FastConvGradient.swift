import Engine

/// Convolution forward and backward for training in float32, with the images split over
/// threads. The fast counterpart of ``ConvGradient`` (double GEMMs); ``ReferenceConvGradient``
/// is the naive twin the tests compare both with.
///
/// Per image and group, with `K = Cin/g * kH * kW` and `P = oH * oW`:
/// - forward: `y[Cout/g, P] = W[Cout/g, K] * col[K, P] (+ b)`;
/// - weight gradient: `dW[Cout/g, K] += dy[Cout/g, P] * col[K, P]^T`;
/// - input gradient: `dx = conv(dy, flip(W)^T)` for stride 1, else
///   `dcol[K, P] = W^T[K, Cout/g] * dy[Cout/g, P]`, scattered back by col2im.
///
/// Stride-1 convs (every conv of a CIFAR ResNet but the two downsampling ones, and every
/// input gradient by the transposed conv) run on ``StrideOneConv`` where the CPU has it: the
/// forward and the weight gradient straight from the input rows, no im2col matrix or packing,
/// which at training's 16-64 channels cost as much as the GEMM itself. The rest: the forward
/// through the engine's ``Conv2d`` and the weight gradient through the im2col matrix and
/// single-threaded OpenBLAS `sgemm`s.
///
/// The results do not depend on the thread count: every image's products are the same calls
/// on any thread, and the weight gradient is summed per fixed block of ``imagesPerBlock``
/// images in float32, the block sums then added in block order in double. OpenBLAS must run
/// single-threaded (``Gemm/setThreads(_:)``; ``FastConvGradient`` sets it), so that its
/// blocking, and with it the rounding, is the same on every call.
enum FastConvGradient {
    /// Images whose weight-gradient products one float32 accumulator sums.
    static let imagesPerBlock = 8

    /// `y [N, Cout, oH, oW]` of `x [N, Cin, H, W]`, `w [Cout, Cin/g, kH, kW]`, `b [Cout]`, one
    /// image at a time per thread (``ImageConv``).
    static func forward(_ g: ConvGeometry, x: [Float], w: [Float], b: [Float]?, threads: Int) -> [Float] {
        var y = [Float](repeating: 0, count: g.batch * g.outImage)
        let conv = ImageConv(g, weights: w)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe y.withUnsafeMutableBufferPointer { py in
                unsafe withOptionalBuffer(b) { pb in
                    let (xs, ys) = unsafe (px.baseAddress!, py.baseAddress!)
                    Parallel.forRanges(g.batch, threads: threads) { images in
                        var scratch = conv.scratch()
                        for n in images { unsafe conv.run(xs, image: n, bias: pb, scratch: &scratch, into: ys) }
                    }
                }
            }
        }
        return y
    }

    /// One image of a convolution at a time: straight from the input rows for a stride-1 conv
    /// on a CPU that runs ``StrideOneConv`` (no packing, which at training's channel counts
    /// costs as much as the GEMM), else the engine's single-threaded ``Conv2d`` (packed
    /// weights, im2col gathered on the fly, bias in the epilogue).
    struct ImageConv {
        let geometry: ConvGeometry
        let direct: StrideOneConv?
        /// `w` as it is for the direct kernel, packed for the engine.
        let weights: [Float]

        init(_ g: ConvGeometry, weights w: [Float]) {
            geometry = g
            direct = StrideOneConv(g, imagesPerBlock: 1)
            weights = direct != nil ? w : Conv2d.packWeights(g, w)
        }

        /// The per-thread scratch of ``run(_:image:bias:scratch:into:)``.
        func scratch() -> [Float] { [Float](repeating: 0, count: direct?.scratchFloats ?? 0) }

        /// Image `n` of `x` (the batch's start) into image `n` of `y`.
        func run(
            _ x: UnsafePointer<Float>, image n: Int, bias: UnsafeBufferPointer<Float>?, scratch: inout [Float],
            into y: UnsafeMutablePointer<Float>
        ) {
            let g = geometry
            unsafe weights.withUnsafeBufferPointer { pw in
                if let direct {
                    unsafe direct.forward(
                        x: x, weight: pw.baseAddress!, bias: bias?.baseAddress, images: n..<n + 1, scratch: &scratch, into: y)
                    return
                }
                var one = g
                one.batch = 1
                unsafe Conv2d.forward(
                    one, input: UnsafeBufferPointer(start: x + n * g.inImage, count: g.inImage), weight: pw, bias: bias,
                    output: UnsafeMutableBufferPointer(start: y + n * g.outImage, count: g.outImage),
                    scratch: UnsafeMutableBufferPointer(start: nil, count: 0), activation: .none, threads: 1)
            }
        }
    }

    private static func withOptionalBuffer<R>(_ a: [Float]?, _ body: (UnsafeBufferPointer<Float>?) -> R) -> R {
        guard let a else { return unsafe body(nil) }
        return unsafe a.withUnsafeBufferPointer { unsafe body($0) }
    }

    /// The input gradient of a stride-1 conv as a convolution of `dy` (its transpose): weights
    /// `[Cin, Cout/g, kH, kW]` flipped in both spatial axes, padding `dilation * (k - 1) - pad`
    /// on the top and left. Nil when the conv has a stride or pads more than that.
    static func transposedGeometry(_ g: ConvGeometry) -> ConvGeometry? {
        let top = g.dilationH * (g.kernelH - 1) - g.padTop, left = g.dilationW * (g.kernelW - 1) - g.padLeft
        guard g.strideH == 1, g.strideW == 1, top >= 0, left >= 0 else { return nil }
        return ConvGeometry(
            batch: 1, inChannels: g.outChannels, inHeight: g.outHeight, inWidth: g.outWidth, outChannels: g.inChannels,
            outHeight: g.inHeight, outWidth: g.inWidth, kernelH: g.kernelH, kernelW: g.kernelW, strideH: 1, strideW: 1,
            padTop: top, padLeft: left, dilationH: g.dilationH, dilationW: g.dilationW, groups: g.groups)
    }

    /// `w [Cout, Cin/g, kH, kW]` as the weights of ``transposedGeometry(_:)``.
    static func transposedWeights(_ g: ConvGeometry, _ w: [Float]) -> [Float] {
        let (cig, cog, kh, kw) = (g.groupInChannels, g.groupOutChannels, g.kernelH, g.kernelW)
        var out = [Float](repeating: 0, count: w.count)
        for grp in 0..<g.groups {
            for i in 0..<cig {
                for j in 0..<cog {
                    let src = ((grp * cog + j) * cig + i) * kh * kw, dst = ((grp * cig + i) * cog + j) * kh * kw
                    for ky in 0..<kh {
                        for kx in 0..<kw { out[dst + ky * kw + kx] = w[src + (kh - 1 - ky) * kw + (kw - 1 - kx)] }
                    }
                }
            }
        }
        return out
    }

    /// The gradients of `x`, `w` and `b` for the output gradient `dy` (`dx` only when
    /// `inputGradient`, `db` only when `biasGradient`, else empty).
    ///
    /// The weight gradient of a stride-1 conv by ``StrideOneConv`` per block of images, of any
    /// other by an sgemm per image against its im2col matrix; the input gradient of a stride-1
    /// conv by the convolution of `dy` with the flipped weights (``transposedGeometry(_:)``,
    /// ``ImageConv``), of a pointwise conv by one sgemm, of any other by an sgemm into a
    /// patch-gradient matrix scattered back by col2im.
    static func backward(
        _ g: ConvGeometry, x: [Float], w: [Float], dy: [Float], inputGradient: Bool, biasGradient: Bool = true,
        threads: Int
    ) -> (dx: [Float]?, dw: [Float], db: [Float]) {
        Gemm.setThreads(1)
        let (k, p, cog) = (g.patchSize, g.outPixels, g.groupOutChannels)
        let blocks = (g.batch + imagesPerBlock - 1) / imagesPerBlock
        var partial = [Float](repeating: 0, count: blocks * w.count)
        var dx = [Float](repeating: 0, count: inputGradient ? g.batch * g.inImage : 0)
        let direct = g.isPointwise  // the input is the `[K, P]` matrix itself
        let strideOne = StrideOneConv(g, imagesPerBlock: imagesPerBlock)
        let transposed = inputGradient && !direct ? transposedGeometry(g) : nil
        let transposedConv = transposed.map { ImageConv($0, weights: transposedWeights(g, w)) }
        // W^T per group, [K, Cout/g], for the sgemm forms of the input gradient.
        var wt = [Float](repeating: 0, count: inputGradient && transposed == nil ? w.count : 0)
        if !wt.isEmpty {
            for grp in 0..<g.groups {
                for r in 0..<cog { for c in 0..<k { wt[grp * cog * k + c * cog + r] = w[grp * cog * k + r * k + c] } }
            }
        }
        unsafe x.withUnsafeBufferPointer { px in
            unsafe dy.withUnsafeBufferPointer { pdy in
                unsafe wt.withUnsafeBufferPointer { pwt in
                    unsafe partial.withUnsafeMutableBufferPointer { ppart in
                        unsafe dx.withUnsafeMutableBufferPointer { pdx in
                            let (xs, dys, wts, parts) = unsafe (
                                px.baseAddress!, pdy.baseAddress!, pwt.baseAddress, ppart.baseAddress!
                            )
                            let dxs = unsafe pdx.baseAddress
                            Parallel.forRanges(blocks, threads: threads) { range in
                                var strideOneScratch = [Float](repeating: 0, count: strideOne?.scratchFloats ?? 0)
                                var transposedScratch = transposedConv?.scratch() ?? []
                                var col = [Float](repeating: 0, count: direct || strideOne != nil ? 0 : k * p)
                                let scatter = inputGradient && !direct && transposed == nil
                                var dcol = [Float](repeating: 0, count: scatter ? k * p : 0)
                                unsafe col.withUnsafeMutableBufferPointer { pc in
                                    unsafe dcol.withUnsafeMutableBufferPointer { pdc in
                                        for block in range {
                                            let acc = unsafe parts + block * w.count
                                            let first = block * imagesPerBlock
                                            let last = min(first + imagesPerBlock, g.batch)
                                            if let strideOne {
                                                unsafe strideOne.weightGradient(
                                                    x: xs, dy: dys, images: first..<last, scratch: &strideOneScratch, into: acc)
                                            }
                                            for n in first..<last {
                                                for grp in 0..<g.groups where strideOne == nil || scatter || direct {
                                                    let dyg = unsafe dys + (n * g.outChannels + grp * cog) * p
                                                    let xOffset =
                                                        (n * g.inChannels + grp * g.groupInChannels) * g.inHeight * g.inWidth
                                                    if strideOne == nil {
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
                                                    }
                                                    // (An empty array's base address is not nil: test the flags.)
                                                    guard inputGradient, transposed == nil, let dxs = unsafe dxs,
                                                        let wts = unsafe wts
                                                    else { continue }
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
                                                if inputGradient, let tc = transposedConv, let dxs = unsafe dxs {
                                                    unsafe tc.run(dys, image: n, bias: nil, scratch: &transposedScratch, into: dxs)
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
        // The bias gradient per channel: each image's row in float32 lanes, the rows in double.
        var db = [Float](repeating: 0, count: biasGradient ? g.outChannels : 0)
        unsafe dy.withUnsafeBufferPointer { pdy in
            for oc in db.indices {
                var s = 0.0
                for n in 0..<g.batch {
                    let row = unsafe pdy.baseAddress! + (n * g.outChannels + oc) * p
                    var lanes = SIMD16<Float>()
                    var i = 0
                    while i + 16 <= p {
                        lanes += unsafe UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self)
                        i += 16
                    }
                    s += Double(lanes.sum())
                    while i < p {
                        s += Double(unsafe row[i])
                        i += 1
                    }
                }
                db[oc] = Float(s)
            }
        }
        return (inputGradient ? dx : nil, dw, db)
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
