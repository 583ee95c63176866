/// Fast pooling over `[N*C planes, H, W]` -> `[planes, oH, oW]`, planes in parallel.
///
/// Semantics are PyTorch's (see ``Pool2dAttributes``); twins are
/// ``ReferenceKernels/maxPool2d(_:input:)``, ``ReferenceKernels/avgPool2d(_:input:)`` and
/// ``ReferenceKernels/adaptiveAvgPool2d(_:planes:height:width:outHeight:outWidth:)``.
/// Input and output never alias.
package enum Pooling {
    /// Max pooling: padded positions are skipped; NaN wins (as PyTorch).
    package static func maxPool(
        _ g: PoolGeometry, input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) {
        precondition(input.count >= g.planes * g.inHeight * g.inWidth && output.count >= g.planes * g.outHeight * g.outWidth)
        let (h, w, oh, ow) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
        let sw = g.strideW
        let x0 = input.baseAddress!, y0 = output.baseAddress!
        Parallel.forRanges(g.planes, threads: threads, grain: max(1, 8192 / max(oh * ow, 1))) { r in
            for p in r {
                let src = unsafe x0 + p * h * w
                // NaN must win (PyTorch); planes without NaN take the branch-free path.
                var nanCount = 0
                for i in 0..<(h * w) { nanCount &+= unsafe src[i].isNaN ? 1 : 0 }
                let hasNaN = nanCount > 0
                for oy in 0..<oh {
                    let dst = unsafe y0 + (p * oh + oy) * ow
                    unsafe dst.update(repeating: -.infinity, count: ow)
                    for ky in 0..<g.kernelH {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= h { continue }
                        let row = unsafe src + iy * w
                        for kx in 0..<g.kernelW {
                            let ix0 = kx * g.dilationW - g.padLeft
                            let lo = ix0 >= 0 ? 0 : min((-ix0 + sw - 1) / sw, ow)
                            let hi = max(lo, min(ow, w - ix0 > 0 ? (w - ix0 + sw - 1) / sw : 0))
                            if hasNaN {
                                for ox in lo..<hi {
                                    let v = unsafe row[ix0 + ox * sw]
                                    let m = unsafe dst[ox]
                                    unsafe dst[ox] = (v > m || v.isNaN) ? v : m
                                }
                            } else {
                                // A plain select: compiles to maxss/maxps, no branches.
                                for ox in lo..<hi {
                                    let v = unsafe row[ix0 + ox * sw]
                                    let m = unsafe dst[ox]
                                    unsafe dst[ox] = v > m ? v : m
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Average pooling with PyTorch's divisor rule.
    package static func avgPool(
        _ g: PoolGeometry, input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) {
        precondition(input.count >= g.planes * g.inHeight * g.inWidth && output.count >= g.planes * g.outHeight * g.outWidth)
        let (h, w, oh, ow) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
        let x0 = input.baseAddress!, y0 = output.baseAddress!
        Parallel.forRanges(g.planes, threads: threads, grain: max(1, 8192 / max(oh * ow, 1))) { r in
            for p in r {
                let src = unsafe x0 + p * h * w
                for oy in 0..<oh {
                    let (ys, ye, ph) = PoolGeometry.avgWindow(
                        oy, stride: g.strideH, kernel: g.kernelH, padBefore: g.padTop,
                        padAfter: g.padBottom, size: h)
                    for ox in 0..<ow {
                        let (xs, xe, pw) = PoolGeometry.avgWindow(
                            ox, stride: g.strideW, kernel: g.kernelW, padBefore: g.padLeft,
                            padAfter: g.padRight, size: w)
                        var s: Float = 0
                        var iy = ys
                        while iy < ye {
                            var ix = xs
                            while ix < xe {
                                s += unsafe src[iy * w + ix]
                                ix += 1
                            }
                            iy += 1
                        }
                        let count = g.countIncludePad ? ph * pw : max(ye - ys, 0) * max(xe - xs, 0)
                        unsafe y0[(p * oh + oy) * ow + ox] = s / Float(count)
                    }
                }
            }
        }
    }

    /// Adaptive average pooling; `outHeight == outWidth == 1` is a plain mean per plane.
    package static func adaptiveAvgPool(
        planes: Int, height h: Int, width w: Int, outHeight oh: Int, outWidth ow: Int,
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, threads: Int
    ) {
        precondition(input.count >= planes * h * w && output.count >= planes * oh * ow)
        let x0 = input.baseAddress!, y0 = output.baseAddress!
        Parallel.forRanges(planes, threads: threads, grain: max(1, 16384 / max(h * w, 1))) { r in
            for p in r {
                let src = unsafe x0 + p * h * w
                if oh == 1 && ow == 1 {
                    var s: Float = 0
                    for i in 0..<(h * w) { s += unsafe src[i] }
                    unsafe y0[p] = s / Float(h * w)
                    continue
                }
                for oy in 0..<oh {
                    let ys = oy * h / oh, ye = ((oy + 1) * h + oh - 1) / oh
                    for ox in 0..<ow {
                        let xs = ox * w / ow, xe = ((ox + 1) * w + ow - 1) / ow
                        var s: Float = 0
                        for iy in ys..<ye { for ix in xs..<xe { s += unsafe src[iy * w + ix] } }
                        unsafe y0[(p * oh + oy) * ow + ox] = s / Float((ye - ys) * (xe - xs))
                    }
                }
            }
        }
    }
}
