import CKernels

/// Fast pooling over `[N*C planes, H, W]` -> `[planes, oH, oW]`, planes in parallel.
///
/// Semantics are PyTorch's (see ``Pool2dAttributes``); twins are
/// ``ReferenceKernels/maxPool2d(_:input:)``, ``ReferenceKernels/avgPool2d(_:input:)`` and
/// ``ReferenceKernels/adaptiveAvgPool2d(_:planes:height:width:outHeight:outWidth:)``.
/// Input and output never alias.
package enum Pooling {
    /// Max pooling: padded positions are skipped; NaN wins (as PyTorch), planes split over
    /// threads.
    ///
    /// The C kernel `qk_maxpool` (`Sources/CKernels/maxpool.c`) reproduces the per-element
    /// rule `v > m || v.isNaN` bit for bit: planes without NaN are reduced along rows, then
    /// down columns (AVX2, 8 outputs at a time, for strides 1 and 2 along the width), keeping
    /// the earlier value on ties; planes containing NaN take the exact rule. `portable` runs
    /// its scalar path even where AVX2 is available (for tests).
    package static func maxPool(
        _ g: PoolGeometry, input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
        threads: Int, portable: Bool = false
    ) {
        precondition(input.count >= g.planes * g.inHeight * g.inWidth && output.count >= g.planes * g.outHeight * g.outWidth)
        let shape = qk_pool_shape(
            height: g.inHeight, width: g.inWidth, out_height: g.outHeight, out_width: g.outWidth,
            kernel_h: g.kernelH, kernel_w: g.kernelW, stride_h: g.strideH, stride_w: g.strideW,
            pad_top: g.padTop, pad_left: g.padLeft, dilation_h: g.dilationH, dilation_w: g.dilationW)
        let x0 = input.baseAddress!, y0 = output.baseAddress!
        let flag: Int32 = portable ? 1 : 0
        Parallel.forRanges(g.planes, threads: threads, grain: max(1, 8192 / max(g.outHeight * g.outWidth, 1))) { r in
            var s = shape
            unsafe qk_maxpool(&s, x0, y0, r.lowerBound, r.upperBound, flag)
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
