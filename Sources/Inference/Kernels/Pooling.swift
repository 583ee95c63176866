/// Fast pooling over `[N*C planes, H, W]` -> `[planes, oH, oW]`, planes in parallel.
///
/// Semantics are PyTorch's (see ``Pool2dAttributes``); twins are
/// ``ReferenceKernels/maxPool2d(_:input:)``, ``ReferenceKernels/avgPool2d(_:input:)`` and
/// ``ReferenceKernels/adaptiveAvgPool2d(_:planes:height:width:outHeight:outWidth:)``.
/// Input and output never alias.
package enum Pooling {
    /// Max pooling: padded positions are skipped; NaN wins (as PyTorch).
    ///
    /// Windows fully inside the input of a NaN-free plane are reduced in a register with a
    /// plain select (no branches); border windows and planes containing NaN use the exact
    /// per-element rule `v > m || v.isNaN`.
    package static func maxPool(
        _ g: PoolGeometry, input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) {
        precondition(input.count >= g.planes * g.inHeight * g.inWidth && output.count >= g.planes * g.outHeight * g.outWidth)
        let (h, w, oh, ow) = (g.inHeight, g.inWidth, g.outHeight, g.outWidth)
        let (kh, kw, sh, sw, dh, dw) = (g.kernelH, g.kernelW, g.strideH, g.strideW, g.dilationH, g.dilationW)
        let x0 = input.baseAddress!, y0 = output.baseAddress!
        // Output rows/columns whose whole window lies inside the input.
        func interior(_ n: Int, _ size: Int, _ s: Int, _ pad: Int, _ k: Int, _ d: Int) -> Range<Int> {
            let lo = (pad + s - 1) / s
            let hiIncl = size - 1 - (k - 1) * d + pad
            let hi = hiIncl < 0 ? 0 : min(n, hiIncl / s + 1)
            return lo < hi ? lo..<hi : 0..<0
        }
        let rows = interior(oh, h, sh, g.padTop, kh, dh), cols = interior(ow, w, sw, g.padLeft, kw, dw)
        Parallel.forRanges(g.planes, threads: threads, grain: max(1, 8192 / max(oh * ow, 1))) { r in
            for p in r {
                let src = unsafe x0 + p * h * w
                let dst = unsafe y0 + p * oh * ow
                // NaN iff |bits| > +inf's bits; an unsigned max reduction vectorizes.
                var largest: UInt32 = 0
                for i in 0..<(h * w) { largest = max(largest, unsafe src[i].bitPattern & 0x7fff_ffff) }
                let nanCount = largest > 0x7f80_0000 ? 1 : 0
                @inline(__always) func exact(_ oy: Int, _ ox: Int) -> Float {
                    var m = -Float.infinity
                    for ky in 0..<kh {
                        let iy = oy * sh - g.padTop + ky * dh
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<kw {
                            let ix = ox * sw - g.padLeft + kx * dw
                            if ix < 0 || ix >= w { continue }
                            let v = unsafe src[iy * w + ix]
                            if v > m || v.isNaN { m = v }
                        }
                    }
                    return m
                }
                for oy in 0..<oh {
                    let out = unsafe dst + oy * ow
                    if nanCount > 0 || !rows.contains(oy) || cols.isEmpty {
                        for ox in 0..<ow { unsafe out[ox] = exact(oy, ox) }
                        continue
                    }
                    for ox in 0..<cols.lowerBound { unsafe out[ox] = exact(oy, ox) }
                    let top = unsafe src + (oy * sh - g.padTop) * w - g.padLeft
                    if kh == 3 && kw == 3 && dh == 1 && dw == 1 {
                        for ox in cols {
                            let a = unsafe top + ox * sw, b = unsafe a + w, c = unsafe b + w
                            var m = unsafe a[0]
                            var v = unsafe a[1]; m = v > m ? v : m
                            v = unsafe a[2]; m = v > m ? v : m
                            v = unsafe b[0]; m = v > m ? v : m
                            v = unsafe b[1]; m = v > m ? v : m
                            v = unsafe b[2]; m = v > m ? v : m
                            v = unsafe c[0]; m = v > m ? v : m
                            v = unsafe c[1]; m = v > m ? v : m
                            v = unsafe c[2]; m = v > m ? v : m
                            unsafe out[ox] = m
                        }
                        for ox in cols.upperBound..<ow { unsafe out[ox] = exact(oy, ox) }
                        continue
                    }
                    for ox in cols {
                        let corner = unsafe top + ox * sw
                        var m = unsafe corner[0]
                        for ky in 0..<kh {
                            let line = unsafe corner + ky * dh * w
                            for kx in 0..<kw {
                                let v = unsafe line[kx * dw]
                                m = v > m ? v : m
                            }
                        }
                        unsafe out[ox] = m
                    }
                    for ox in cols.upperBound..<ow { unsafe out[ox] = exact(oy, ox) }
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
