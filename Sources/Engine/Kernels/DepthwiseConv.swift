import CKernels

/// Direct depthwise convolution: one input channel per group (any channel multiplier), any
/// kernel size, stride, padding and dilation.
///
/// Layout: input `[N, Cin, H, W]`, weights `[Cout, 1, kH, kW]` as stored, bias `[Cout]`,
/// output `[N, Cout, oH, oW]`; output channel `oc` reads input channel `oc / (Cout/Cin)`.
/// `output = act(dwconv(input, weight) + bias [+ residual])`, where `residual` may be the
/// same memory as `output`. The C kernel (`qk_dwconv`, `Sources/CKernels/depthwise.c`) copies
/// each input row once into a zero-padded, stride-phase-split row and accumulates every tap
/// of an output vector in registers (AVX-512 or AVX2+FMA, chosen at run time, or portable C).
/// Output planes are split over threads. The naive twin is
/// ``ReferenceKernels/conv2d(_:input:weight:bias:)``.
package enum DepthwiseConv {
    /// Which build of the C kernel runs: the widest the CPU has, or (tests) a narrower one.
    package enum Build: Int32, Sendable, CaseIterable {
        case widest = 0, portable = 1, avx2 = 2
    }

    /// See the type's documentation; `build` picks the C kernel's build (tests).
    package static func forward(
        _ g: ConvGeometry, input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, activation: Activation, threads: Int, build: Build = .widest
    ) {
        precondition(g.isDepthwise && input.count >= g.batch * g.inImage && output.count >= g.batch * g.outImage)
        precondition(weight.count >= g.outChannels * g.kernelH * g.kernelW)
        unsafe precondition((residual?.count ?? output.count) >= g.batch * g.outImage)
        unsafe precondition((bias?.count ?? g.outChannels) >= g.outChannels)
        var shape = qk_dw_shape(
            in_channels: g.inChannels, height: g.inHeight, width: g.inWidth, out_channels: g.outChannels,
            out_height: g.outHeight, out_width: g.outWidth, kernel_h: g.kernelH, kernel_w: g.kernelW,
            stride_h: g.strideH, stride_w: g.strideW, pad_top: g.padTop, pad_left: g.padLeft,
            dilation_h: g.dilationH, dilation_w: g.dilationW)
        let (lo, hi) = activation.bounds
        let x = input.baseAddress!, w = weight.baseAddress!, y = output.baseAddress!
        let b = unsafe bias?.baseAddress, r = unsafe residual?.baseAddress
        let flag = build.rawValue
        let planes = g.batch * g.outChannels
        // About 16K multiply-adds per plane range at the least before another thread joins.
        let grain = max(1, 16384 / max(g.outPixels * g.kernelH * g.kernelW, 1))
        Parallel.forRanges(planes, threads: threads, grain: grain) { range in
            unsafe qk_dwconv(&shape, x, w, b, r, y, range.lowerBound, range.upperBound, lo, hi, flag)
        }
    }
}
