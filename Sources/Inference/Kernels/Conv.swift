/// Fast 2-D convolution, NCHW float32.
///
/// Layout: input `[N, Cin, H, W]`, weight `[Cout, Cin/g, kH, kW]` (row-major, so each
/// group's weights are a `Cout/g x K` matrix with `K = Cin/g * kH * kW`), bias `[Cout]`,
/// output `[N, Cout, oH, oW]`. Per image and group the conv is one GEMM
/// `out[Cout/g, oH*oW] = W[Cout/g, K] * col[K, oH*oW]`, where `col` is the im2col matrix
/// (``Im2Col``) in `scratch`. A 1x1 stride-1 unpadded conv uses the input image directly as
/// `col` (no copy). Depthwise convs (one input channel per group) use a direct loop
/// (``DepthwiseConv``). The epilogue adds the bias and applies the activation in one pass.
/// With a `residual` (a fused `add`), the output is first set to the residual and the GEMM
/// accumulates onto it (beta = 1): `y = act(conv(x) + b + residual)`.
///
/// `residual` may be the same memory as `output` (then no copy is made); otherwise buffers
/// never alias. `scratch` holds at least ``scratchCount(_:)`` floats. The naive twin
/// is ``ReferenceKernels/conv2d(_:input:weight:bias:)``.
package enum Conv2d {
    /// Scratch floats the fast kernel needs for `g` (0 for pointwise and depthwise).
    package static func scratchCount(_ g: ConvGeometry) -> Int {
        g.isPointwise || g.isDepthwise ? 0 : g.patchSize * g.outPixels
    }

    /// `output = act(conv(input, weight) + bias [+ residual])`; see the type's documentation.
    ///
    /// Work split over `threads` (OpenBLAS itself should run single-threaded here):
    /// - wide outputs (`oH*oW >= 128 * threads`): column tiles of the GEMM. Each task
    ///   im2cols its tile into its own part of `scratch` (tile `[n0, n1)` lives at
    ///   `scratch[K*n0 ..< K*n1]`), runs `W * colTile` into the output columns, and applies
    ///   the epilogue to those columns while they are in cache;
    /// - narrow outputs: im2col of the whole image (parallel by channel), then row blocks of
    ///   the GEMM (output channels) per task, each with its epilogue.
    package static func forward(
        _ g: ConvGeometry, input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>? = nil,
        output: UnsafeMutableBufferPointer<Float>, scratch: UnsafeMutableBufferPointer<Float>,
        activation: Activation, threads: Int
    ) {
        precondition(input.count >= g.batch * g.inImage && output.count >= g.batch * g.outImage)
        unsafe precondition((residual?.count ?? output.count) >= g.batch * g.outImage)
        unsafe precondition(weight.count >= g.outChannels * g.patchSize && (bias?.count ?? g.outChannels) >= g.outChannels)
        if g.isDepthwise {
            unsafe DepthwiseConv.forward(
                g, input: input, weight: weight, bias: bias, residual: residual, output: output,
                activation: activation, threads: threads)
            return
        }
        precondition(scratch.count >= scratchCount(g))
        let k = g.patchSize, n = g.outPixels, m = g.groupOutChannels
        let inGroup = g.groupInChannels * g.inHeight * g.inWidth
        let hasResidual = unsafe residual != nil
        let col0 = scratch.baseAddress
        for b in 0..<g.batch {
            for grp in 0..<g.groups {
                let x = unsafe input.baseAddress! + b * g.inImage + grp * inGroup
                let w = unsafe weight.baseAddress! + grp * m * k
                let y = unsafe output.baseAddress! + b * g.outImage + grp * m * n
                let res = unsafe residual.map { unsafe $0.baseAddress! + b * g.outImage + grp * m * n }
                let bi = unsafe bias.map { unsafe UnsafeBufferPointer(rebasing: $0[(grp * m)..<(grp * m + m)]) }
                if n >= 128 * threads || threads == 1 {
                    // Column tiles: about 1 MB of im2col per tile, a multiple of `threads` tiles.
                    let bytes = 4 * k * n
                    var tiles = max(threads, (bytes + (1 << 20) - 1) >> 20)
                    tiles = (tiles + threads - 1) / threads * threads
                    let width = min(n, ((n + tiles - 1) / tiles + 15) & ~15)
                    let count = (n + width - 1) / width
                    Parallel.forRanges(count, threads: threads) { r in
                        for t in r {
                            let n0 = t * width, n1 = min(n, n0 + width)
                            let colTile: UnsafePointer<Float>
                            let ldb: Int
                            if g.isPointwise {
                                unsafe colTile = x + n0
                                ldb = n
                            } else {
                                let dst = unsafe col0! + k * n0
                                unsafe Im2Col.fillColumns(g, image: x, col: dst, from: n0, to: n1)
                                unsafe colTile = UnsafePointer(dst)
                                ldb = n1 - n0
                            }
                            if let res = unsafe res, unsafe res != UnsafePointer(y) {
                                for i in 0..<m { unsafe (y + i * n + n0).update(from: res + i * n + n0, count: n1 - n0) }
                            }
                            unsafe Gemm.sgemm(
                                m: m, n: n1 - n0, k: k, a: w, lda: k, b: colTile, ldb: ldb,
                                c: y + n0, ldc: n, beta: hasResidual ? 1 : 0)
                            unsafe Epilogue.apply(
                                y, rows: 0..<m, columns: n0..<n1, stride: n, bias: bi, activation: activation)
                        }
                    }
                } else {
                    let colMatrix: UnsafePointer<Float>
                    if g.isPointwise {
                        unsafe colMatrix = x
                    } else {
                        unsafe Im2Col.fill(g, image: x, col: col0!, threads: threads)
                        unsafe colMatrix = UnsafePointer(col0!)
                    }
                    let blocks = min(threads, max(1, m / 16))
                    Parallel.forRanges(blocks, threads: threads) { r in
                        for blk in r {
                            let m0 = (m * blk / blocks) & ~7, m1 = blk == blocks - 1 ? m : (m * (blk + 1) / blocks) & ~7
                            if m1 <= m0 { continue }
                            if let res = unsafe res, unsafe res != UnsafePointer(y) {
                                unsafe (y + m0 * n).update(from: res + m0 * n, count: (m1 - m0) * n)
                            }
                            unsafe Gemm.sgemm(
                                m: m1 - m0, n: n, k: k, a: w + m0 * k, lda: k, b: colMatrix, ldb: n,
                                c: y + m0 * n, ldc: n, beta: hasResidual ? 1 : 0)
                            unsafe Epilogue.apply(
                                y, rows: m0..<m1, columns: 0..<n, stride: n, bias: bi, activation: activation)
                        }
                    }
                }
            }
        }
    }
}

/// In-place per-channel `y = act(y + bias[c])` over `[channels, inner]`.
package enum Epilogue {
    /// Applies bias and activation to `rows x columns` of a row-major matrix with row `stride`.
    @inline(__always)
    package static func apply(
        _ y: UnsafeMutablePointer<Float>, rows: Range<Int>, columns: Range<Int>, stride: Int,
        bias: UnsafeBufferPointer<Float>?, activation: Activation
    ) {
        if unsafe bias == nil && activation == .none { return }
        for c in rows {
            let row = unsafe y + c * stride
            let b = unsafe bias?[c] ?? 0
            switch activation {
            case .none:
                for i in columns { unsafe row[i] += b }
            case .relu:
                for i in columns { unsafe row[i] = max(row[i] + b, 0) }
            case .clamp(let lo, let hi):
                for i in columns { unsafe row[i] = min(max(row[i] + b, lo), hi) }
            }
        }
    }

    /// Applies bias and activation; a no-op when both are absent.
    package static func biasActivation(
        _ y: UnsafeMutablePointer<Float>, channels: Int, inner: Int,
        bias: UnsafeBufferPointer<Float>?, activation: Activation, threads: Int
    ) {
        if unsafe bias == nil && activation == .none { return }
        Parallel.forRanges(channels, threads: threads, grain: max(1, 16384 / max(inner, 1))) { r in
            for c in r {
                let row = unsafe y + c * inner
                let b = unsafe bias?[c] ?? 0
                switch activation {
                case .none:
                    for i in 0..<inner { unsafe row[i] += b }
                case .relu:
                    for i in 0..<inner { unsafe row[i] = max(row[i] + b, 0) }
                case .clamp(let lo, let hi):
                    for i in 0..<inner { unsafe row[i] = min(max(row[i] + b, lo), hi) }
                }
            }
        }
    }
}

/// im2col for one image and one group: `col[K, oH*oW]` with `K = Cin/g * kH * kW`.
///
/// Row `(c*kH + ky)*kW + kx`, column `oy*oW + ox` holds input `(c, oy*sH - padT + ky*dH,
/// ox*sW - padL + kx*dW)`, or 0 outside the input. Rows are filled in parallel by channel.
package enum Im2Col {
    /// Fills `col` from the group's first channel at `image` (`[Cin/g, H, W]`).
    package static func fill(
        _ g: ConvGeometry, image: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>, threads: Int
    ) {
        let cig = g.groupInChannels
        let perChannel = g.kernelH * g.kernelW * g.outPixels
        Parallel.forRanges(cig, threads: threads, grain: max(1, 32768 / max(perChannel, 1))) { r in
            for c in r {
                unsafe fillChannel(g, plane: image + c * g.inHeight * g.inWidth, rows: col + c * perChannel)
            }
        }
    }

    /// Fills columns `[n0, n1)` of the col matrix into `col` as a dense `K x (n1-n0)` block.
    package static func fillColumns(
        _ g: ConvGeometry, image: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>,
        from n0: Int, to n1: Int
    ) {
        let (h, w, ow) = (g.inHeight, g.inWidth, g.outWidth)
        let sw = g.strideW
        let width = n1 - n0
        var dst = unsafe col
        for c in 0..<g.groupInChannels {
            let plane = unsafe image + c * h * w
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let ix0 = kx * g.dilationW - g.padLeft
                    let lo = ix0 >= 0 ? 0 : min((-ix0 + sw - 1) / sw, ow)
                    let hi = max(lo, min(ow, w - ix0 > 0 ? (w - ix0 + sw - 1) / sw : 0))
                    var p = n0
                    var d = unsafe dst
                    while p < n1 {
                        let oy = p / ow, ox0 = p % ow
                        let ox1 = min(ow, ox0 + (n1 - p))
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= h {
                            unsafe d.update(repeating: 0, count: ox1 - ox0)
                        } else {
                            let src = unsafe plane + iy * w + ix0
                            let a = max(ox0, lo), e = min(ox1, hi)
                            if a >= e {
                                unsafe d.update(repeating: 0, count: ox1 - ox0)
                            } else {
                                if a > ox0 { unsafe d.update(repeating: 0, count: a - ox0) }
                                if sw == 1 {
                                    unsafe (d + (a - ox0)).update(from: src + a, count: e - a)
                                } else if sw == 2 {
                                    // A constant stride lets LLVM vectorize the interleaved loads.
                                    let dd = unsafe d - ox0
                                    for ox in a..<e { unsafe dd[ox] = src[2 * ox] }
                                } else {
                                    for ox in a..<e { unsafe d[ox - ox0] = src[ox * sw] }
                                }
                                if e < ox1 { unsafe (d + (e - ox0)).update(repeating: 0, count: ox1 - e) }
                            }
                        }
                        unsafe d += ox1 - ox0
                        p += ox1 - ox0
                    }
                    unsafe dst += width
                }
            }
        }
    }

    @inline(__always)
    private static func fillChannel(
        _ g: ConvGeometry, plane: UnsafePointer<Float>, rows: UnsafeMutablePointer<Float>
    ) {
        let (h, w, oh, ow) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
        let sw = g.strideW
        var dst = unsafe rows
        for ky in 0..<g.kernelH {
            for kx in 0..<g.kernelW {
                let ix0 = kx * g.dilationW - g.padLeft
                // Valid ox: 0 <= ix0 + ox*sw < w.
                let lo = ix0 >= 0 ? 0 : min((-ix0 + sw - 1) / sw, ow)
                let hi = max(lo, min(ow, w - ix0 > 0 ? (w - ix0 + sw - 1) / sw : 0))
                for oy in 0..<oh {
                    let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                    if iy < 0 || iy >= h {
                        unsafe dst.update(repeating: 0, count: ow)
                    } else {
                        let src = unsafe plane + iy * w + ix0
                        if lo > 0 { unsafe dst.update(repeating: 0, count: lo) }
                        if sw == 1 {
                            unsafe (dst + lo).update(from: src + lo, count: hi - lo)
                        } else if sw == 2 {
                            for ox in lo..<hi { unsafe dst[ox] = src[2 * ox] }
                        } else {
                            for ox in lo..<hi { unsafe dst[ox] = src[ox * sw] }
                        }
                        if hi < ow { unsafe (dst + hi).update(repeating: 0, count: ow - hi) }
                    }
                    unsafe dst += ow
                }
            }
        }
    }
}

/// Direct depthwise convolution: one input channel per group (any channel multiplier).
///
/// Output channel `oc` reads input channel `oc / (Cout/g)`. Each output row is accumulated
/// tap by tap over its valid column range, so the inner loop has no bounds checks.
package enum DepthwiseConv {
    /// `output = act(dwconv(input, weight) + bias)`, planes in parallel.
    package static func forward(
        _ g: ConvGeometry, input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, activation: Activation, threads: Int
    ) {
        let planes = g.batch * g.outChannels
        let (h, w, oh, ow) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
        let (kh, kw, sw) = (g.kernelH, g.kernelW, g.strideW)
        let mult = g.groupOutChannels
        let x0 = input.baseAddress!, w0 = weight.baseAddress!, y0 = output.baseAddress!
        let r0 = unsafe residual?.baseAddress
        Parallel.forRanges(planes, threads: threads, grain: max(1, 8192 / max(oh * ow, 1))) { r in
            for p in r {
                let n = p / g.outChannels, oc = p % g.outChannels
                let src = unsafe x0 + (n * g.inChannels + oc / mult) * h * w
                let ker = unsafe w0 + oc * kh * kw
                let b = unsafe bias?[oc] ?? 0
                for oy in 0..<oh {
                    let dst = unsafe y0 + (p * oh + oy) * ow
                    if let base = unsafe r0 {
                        // Element-wise, so `residual` may be `output` itself.
                        let res = unsafe base + (p * oh + oy) * ow
                        for ox in 0..<ow { unsafe dst[ox] = res[ox] + b }
                    } else {
                        unsafe dst.update(repeating: b, count: ow)
                    }
                    for ky in 0..<kh {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= h { continue }
                        let row = unsafe src + iy * w
                        for kx in 0..<kw {
                            let ix0 = kx * g.dilationW - g.padLeft
                            let lo = ix0 >= 0 ? 0 : min((-ix0 + sw - 1) / sw, ow)
                            let hi = max(lo, min(ow, w - ix0 > 0 ? (w - ix0 + sw - 1) / sw : 0))
                            let wv = unsafe ker[ky * kw + kx]
                            let s = unsafe row + ix0
                            if sw == 1 {
                                for ox in lo..<hi { unsafe dst[ox] += wv * s[ox] }
                            } else {
                                for ox in lo..<hi { unsafe dst[ox] += wv * s[ox * sw] }
                            }
                        }
                    }
                    if activation != .none {
                        for ox in 0..<ow { unsafe dst[ox] = activation.apply(dst[ox]) }
                    }
                }
            }
        }
    }
}
