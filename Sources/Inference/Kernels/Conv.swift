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

    /// `output = act(conv(input, weight) + bias)`; see the type's documentation for layouts.
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
        if let src = unsafe residual?.baseAddress, unsafe src != UnsafePointer(output.baseAddress!) {
            unsafe output.baseAddress!.update(from: src, count: g.batch * g.outImage)
        }
        let beta: Float = unsafe residual == nil ? 0 : 1
        precondition(scratch.count >= scratchCount(g))
        let k = g.patchSize, n = g.outPixels, m = g.groupOutChannels
        let inGroup = g.groupInChannels * g.inHeight * g.inWidth
        for b in 0..<g.batch {
            for grp in 0..<g.groups {
                let x = unsafe input.baseAddress! + b * g.inImage + grp * inGroup
                let col: UnsafePointer<Float>
                if g.isPointwise {
                    unsafe col = x
                } else {
                    unsafe Im2Col.fill(g, image: x, col: scratch.baseAddress!, threads: threads)
                    unsafe col = UnsafePointer(scratch.baseAddress!)
                }
                unsafe Gemm.sgemm(
                    m: m, n: n, k: k, a: weight.baseAddress! + grp * m * k, lda: k,
                    b: col, ldb: n, c: output.baseAddress! + b * g.outImage + grp * m * n, ldc: n,
                    beta: beta)
            }
            unsafe Epilogue.biasActivation(
                output.baseAddress! + b * g.outImage, channels: g.outChannels, inner: n,
                bias: bias, activation: activation, threads: threads)
        }
    }
}

/// In-place per-channel `y = act(y + bias[c])` over `[channels, inner]`.
package enum Epilogue {
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
