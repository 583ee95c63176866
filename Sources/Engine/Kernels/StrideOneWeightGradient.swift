import CKernels

/// The weight gradient of a stride-1 convolution over a block of images, as dot products
/// along the pixels (`qk_conv_wgrad`, AVX-512): no im2col matrix, no transposes. Training's
/// fast path uses it; its naive twins are the double-precision conv gradients in Train.
package struct StrideOneWeightGradient: Sendable {
    package let geometry: ConvGeometry
    /// Images per block, and the rows of a padded input plane (the vertical padding as zero rows).
    let images: Int, paddedRows: Int

    /// Nil unless `g` has stride 1 and the CPU runs the kernel.
    package init?(_ g: ConvGeometry, imagesPerBlock: Int) {
        guard Self.isAvailable, g.strideH == 1, g.strideW == 1, g.padTop >= 0, g.padLeft >= 0 else { return nil }
        geometry = g
        images = imagesPerBlock
        paddedRows = g.outHeight + g.dilationH * (g.kernelH - 1)
    }

    /// Whether this CPU runs the kernel (AVX-512F).
    package static let isAvailable = qk_conv_wgrad_available() != 0

    /// Floats before and after the padded block, so that no tap's row pointer leaves the buffer.
    private var margin: Int { geometry.dilationW * geometry.kernelW + geometry.padLeft + 16 }

    /// Floats of the per-thread buffer ``weightGradient(x:dy:images:padded:into:)`` fills.
    package var blockFloats: Int { images * geometry.inChannels * paddedRows * geometry.inWidth + 2 * margin }

    /// `dw [Cout, Cin/g, kH, kW]` (overwritten) of the images `range` of `x [N, Cin, H, W]` and
    /// `dy [N, Cout, oH, oW]`, in float32 in a fixed order; `padded` is a ``blockFloats`` scratch.
    package func weightGradient(
        x: UnsafePointer<Float>, dy: UnsafePointer<Float>, images range: Range<Int>, padded: inout [Float],
        into dw: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        let (w, plane) = (g.inWidth, paddedRows * g.inWidth)
        // Padded rows [top, top + rows) hold input rows [0, rows); the rest are zero.
        let (top, rows) = (min(g.padTop, paddedRows), max(0, min(g.inHeight, paddedRows - g.padTop)))
        precondition(range.count <= images && padded.count == blockFloats)
        unsafe padded.withUnsafeMutableBufferPointer { pb in
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
            var s = qk_wgrad_shape(
                images: range.count, groups: g.groups, in_group: g.groupInChannels, out_group: g.groupOutChannels,
                kernel_h: g.kernelH, kernel_w: g.kernelW, dilation_h: g.dilationH, dilation_w: g.dilationW,
                pad_left: g.padLeft, in_width: w, out_height: g.outHeight, out_width: g.outWidth, plane: plane)
            unsafe qk_conv_wgrad(&s, base, dy + range.lowerBound * g.outImage, dw)
        }
    }
}
