import CKernels

/// A stride-1 convolution computed straight from its input rows (`qk_conv_direct`,
/// `qk_conv_wgrad`, AVX-512): the forward and the weight gradient over a block of images, with
/// no im2col matrix, packing or transposes. Training's fast path uses it, where channel counts
/// are small and packing costs as much as the GEMM; its naive twins are the reference
/// convolution and the double-precision conv gradients in Train.
package struct StrideOneConv: Sendable {
    package let geometry: ConvGeometry
    /// Images per block, and the rows of a padded input plane (the vertical padding as zero rows).
    let images: Int, paddedRows: Int
    /// The row stride the kernels see the output side (y, dy) at: its own width, or the
    /// input's when the input rows are wider (a conv reading an explicitly padded input) and
    /// that stride lets 16-pixel vectors run across rows with fewer idle lanes (8-wide rows
    /// fill half of one vector in place, 8 of every 10 lanes at stride 10). Then the output
    /// side goes through a copy at that stride.
    let outStride: Int
    /// The kernels' plan (`qk_conv_direct_plan`): vector and tap offsets, lane masks.
    let offsets: [Int], masks: [UInt16]

    /// Nil unless `g` has stride 1 and the CPU runs the kernels.
    package init?(_ g: ConvGeometry, imagesPerBlock: Int) {
        guard Self.isAvailable, g.strideH == 1, g.strideW == 1, g.padTop >= 0, g.padLeft >= 0 else { return nil }
        geometry = g
        images = imagesPerBlock
        paddedRows = g.outHeight + g.dilationH * (g.kernelH - 1)
        let vectors = { (n: Int) in (n + 15) / 16 }
        let restride = g.inWidth > g.outWidth && vectors(g.outHeight * g.inWidth) < g.outHeight * vectors(g.outWidth)
        outStride = restride ? g.inWidth : g.outWidth
        var shape = Self.shape(g, images: imagesPerBlock, outStride: outStride, paddedRows: paddedRows)
        let count = unsafe qk_conv_direct_vectors(&shape)
        var offsets = [Int](repeating: 0, count: 2 * count + 2 * g.patchSize)
        var masks = [UInt16](repeating: 0, count: count * (g.kernelW + 1))
        unsafe qk_conv_direct_plan(&shape, &offsets, &masks)
        (self.offsets, self.masks) = (offsets, masks)
    }

    private static func shape(_ g: ConvGeometry, images: Int, outStride: Int, paddedRows: Int) -> qk_direct_shape {
        qk_direct_shape(
            images: images, groups: g.groups, in_group: g.groupInChannels, out_group: g.groupOutChannels,
            kernel_h: g.kernelH, kernel_w: g.kernelW, dilation_h: g.dilationH, dilation_w: g.dilationW,
            pad_left: g.padLeft, in_width: g.inWidth, out_height: g.outHeight, out_width: g.outWidth,
            out_stride: outStride, plane: paddedRows * g.inWidth)
    }

    /// Whether this CPU runs the kernels (AVX-512F).
    package static let isAvailable = qk_conv_direct_available() != 0

    /// Floats before and after the padded block, so that no tap's row pointer leaves the buffer.
    private var margin: Int { geometry.dilationW * geometry.kernelW + geometry.padLeft + 16 }

    /// Floats of the padded input block (margins included).
    private var inputFloats: Int { images * geometry.inChannels * paddedRows * geometry.inWidth + 2 * margin }

    /// Floats of the per-thread scratch the kernels take: the padded input block, then the
    /// output side at ``outStride`` when that is not its own width.
    package var scratchFloats: Int {
        inputFloats + (outStride == geometry.outWidth ? 0 : images * geometry.outChannels * geometry.outHeight * outStride)
    }

    /// `dw [Cout, Cin/g, kH, kW]` (overwritten) of the images `range` of `x [N, Cin, H, W]` and
    /// `dy [N, Cout, oH, oW]`, in float32 in a fixed order.
    package func weightGradient(
        x: UnsafePointer<Float>, dy: UnsafePointer<Float>, images range: Range<Int>, scratch: inout [Float],
        into dw: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        unsafe withBlock(x: x, images: range, scratch: &scratch) { shape, padded, outSide in
            var dyBlock = unsafe dy + range.lowerBound * g.outImage
            if let outSide = unsafe outSide {
                unsafe Self.copyRows(range.count * g.outChannels * g.outHeight, g.outWidth, dyBlock, g.outWidth, outSide, outStride)
                unsafe dyBlock = UnsafePointer(outSide)
            }
            unsafe qk_conv_wgrad(&shape, offsets, masks, padded, dyBlock, dw)
        }
    }

    /// `y [N, Cout, oH, oW]` of the images `range` of `x`, with weights `w [Cout, Cin/g, kH,
    /// kW]` and an optional bias: each output summed over the taps in order in float32.
    package func forward(
        x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, images range: Range<Int>,
        scratch: inout [Float], into y: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        unsafe withBlock(x: x, images: range, scratch: &scratch) { shape, padded, outSide in
            let yBlock = unsafe y + range.lowerBound * g.outImage
            unsafe qk_conv_direct(&shape, offsets, masks, padded, w, bias, outSide ?? yBlock)
            if let outSide = unsafe outSide {
                unsafe Self.copyRows(range.count * g.outChannels * g.outHeight, g.outWidth, outSide, outStride, yBlock, g.outWidth)
            }
        }
    }

    /// `rows` rows of `width` floats from `src` (row stride `srcStride`) to `dst` (row stride `dstStride`).
    private static func copyRows(
        _ rows: Int, _ width: Int, _ src: UnsafePointer<Float>, _ srcStride: Int, _ dst: UnsafeMutablePointer<Float>,
        _ dstStride: Int
    ) {
        for r in 0..<rows { unsafe (dst + r * dstStride).update(from: src + r * srcStride, count: width) }
    }

    /// Copies the images `range` of `x` into the padded block of `scratch` (plane row `r`
    /// holding input row `r - padTop`, zero rows outside) and runs `body` with the kernels'
    /// shape, the block and the output-side buffer (nil when the output is used in place).
    private func withBlock(
        x: UnsafePointer<Float>, images range: Range<Int>, scratch: inout [Float],
        _ body: (inout qk_direct_shape, UnsafePointer<Float>, UnsafeMutablePointer<Float>?) -> Void
    ) {
        let g = geometry
        let (w, plane) = (g.inWidth, paddedRows * g.inWidth)
        // Padded rows [top, top + rows) hold input rows [0, rows); the rest are zero.
        let (top, rows) = (min(g.padTop, paddedRows), max(0, min(g.inHeight, paddedRows - g.padTop)))
        precondition(range.count <= images && scratch.count == scratchFloats)
        unsafe scratch.withUnsafeMutableBufferPointer { pb in
            let base = unsafe pb.baseAddress! + margin
            for (i, n) in range.enumerated() {
                for c in 0..<g.inChannels {
                    let dst = unsafe base + (i * g.inChannels + c) * plane
                    let src = unsafe x + (n * g.inChannels + c) * g.inHeight * w
                    unsafe dst.update(repeating: 0, count: top * w)
                    unsafe (dst + top * w).update(from: src, count: rows * w)
                    unsafe (dst + (top + rows) * w).update(repeating: 0, count: (paddedRows - top - rows) * w)
                }
            }
            var shape = Self.shape(g, images: range.count, outStride: outStride, paddedRows: paddedRows)
            let outSide = outStride == g.outWidth ? nil : unsafe pb.baseAddress! + inputFloats
            unsafe body(&shape, UnsafePointer(base), outSide)
        }
    }
}
