/// Fast 2-D convolution, NCHW float32.
///
/// Layout: input `[N, Cin, H, W]`, bias `[Cout]`, output `[N, Cout, oH, oW]`. The plan
/// stores the weights `[Cout, Cin/g, kH, kW]` packed per group (``packWeights(_:_:)``), so
/// that per image and group the conv is one packed GEMM
/// `out[Cout/g, oH*oW] = W[Cout/g, K] * im2col(x)[K, oH*oW]` (``PackedGemm``) whose B panels
/// are gathered straight from the image: no im2col matrix, no scratch. A 1x1 stride-1
/// unpadded conv reads the image as B directly. The GEMM's epilogue adds the bias and a
/// fused residual (`y = act(conv(x) + b + residual)`) and applies the activation while the
/// tile is in registers. Depthwise convs (one input channel per group) keep unpacked
/// weights and use a direct loop (``DepthwiseConv``).
///
/// `residual` may be the same memory as `output`; otherwise buffers never alias. The naive
/// twin is ``ReferenceKernels/conv2d(_:input:weight:bias:)``.
package enum Conv2d {
    /// Scratch floats for one shared packed im2col matrix (convs with few output pixels,
    /// whose threads split rows; see ``forward``); 0 otherwise (the GEMM packs into
    /// per-thread workspaces).
    package static func scratchCount(_ g: ConvGeometry) -> Int {
        g.isPointwise || g.isDepthwise || g.outPixels >= 1024 ? 0 : PackedGemm.packedBCount(depth: g.patchSize, columns: g.outPixels)
    }

    /// Floats of the weights in the layout ``forward`` expects.
    package static func packedWeightCount(_ g: ConvGeometry) -> Int {
        g.isDepthwise
            ? g.outChannels * g.patchSize
            : g.groups * PackedGemm.packedCount(rows: g.groupOutChannels, depth: g.patchSize)
    }

    /// The weights `[Cout, Cin/g, kH, kW]` in the layout ``forward`` expects: per group, the
    /// `Cout/g x K` matrix in GEMM panels (depthwise weights are returned unchanged).
    package static func packWeights(_ g: ConvGeometry, _ w: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: packedWeightCount(g))
        unsafe w.withUnsafeBufferPointer { pw in
            unsafe out.withUnsafeMutableBufferPointer { unsafe packWeights(g, pw, into: $0) }
        }
        return out
    }

    /// ``packWeights(_:_:)`` from `w` into `dst` (``packedWeightCount(_:)`` floats, zeroed).
    package static func packWeights(_ g: ConvGeometry, _ w: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(w.count == g.outChannels * g.patchSize && dst.count == packedWeightCount(g))
        if g.isDepthwise {
            unsafe dst.baseAddress!.update(from: w.baseAddress!, count: w.count)
            return
        }
        let m = g.groupOutChannels, k = g.patchSize
        let packed = PackedGemm.packedCount(rows: m, depth: k)
        for grp in 0..<g.groups {
            unsafe PackedGemm.pack(w.baseAddress! + grp * m * k, rows: m, depth: k, into: dst.baseAddress! + grp * packed)
        }
    }

    /// Multiplies output channel `oc` of packed weights (``packWeights(_:_:)``) by `scale[oc]`
    /// (a folded batch norm).
    package static func scalePackedRows(_ g: ConvGeometry, _ packed: UnsafeMutableBufferPointer<Float>, by scale: [Float]) {
        precondition(packed.count == packedWeightCount(g) && scale.count == g.outChannels)
        if g.isDepthwise {
            for oc in 0..<g.outChannels { for i in 0..<g.patchSize { unsafe packed[oc * g.patchSize + i] *= scale[oc] } }
            return
        }
        let m = g.groupOutChannels, k = g.patchSize
        let size = PackedGemm.packedCount(rows: m, depth: k)
        for grp in 0..<g.groups {
            unsafe PackedGemm.scaleRows(
                UnsafeMutableBufferPointer(rebasing: packed[(grp * size)..<((grp + 1) * size)]), rows: m, depth: k,
                by: Array(scale[(grp * m)..<((grp + 1) * m)]))
        }
    }

    /// `output = act(conv(input, weight) + bias [+ residual])`; `weight` is packed
    /// (``packWeights(_:_:)``); see the type's documentation.
    ///
    /// Work split over `threads`: wide outputs (`oH*oW >= 128 * threads`) in column ranges
    /// (multiples of 16 pixels), narrow ones in row ranges (whole panels of output channels)
    /// after packing the im2col matrix once into `scratch` (``scratchCount(_:)``).
    package static func forward(
        _ g: ConvGeometry, input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>? = nil,
        output: UnsafeMutableBufferPointer<Float>, scratch: UnsafeMutableBufferPointer<Float>,
        activation: Activation, threads: Int
    ) {
        precondition(input.count >= g.batch * g.inImage && output.count >= g.batch * g.outImage)
        unsafe precondition((residual?.count ?? output.count) >= g.batch * g.outImage)
        unsafe precondition(weight.count >= packedWeightCount(g) && (bias?.count ?? g.outChannels) >= g.outChannels)
        if g.isDepthwise {
            unsafe DepthwiseConv.forward(
                g, input: input, weight: weight, bias: bias, residual: residual, output: output,
                activation: activation, threads: threads)
            return
        }
        let k = g.patchSize, n = g.outPixels, m = g.groupOutChannels
        let inGroup = g.groupInChannels * g.inHeight * g.inWidth
        let packedGroup = PackedGemm.packedCount(rows: m, depth: k)
        let panel = PackedGemm.panelRows
        for b in 0..<g.batch {
            for grp in 0..<g.groups {
                let x = unsafe input.baseAddress! + b * g.inImage + grp * inGroup
                let w = unsafe weight.baseAddress! + grp * packedGroup
                let y = unsafe output.baseAddress! + b * g.outImage + grp * m * n
                let res = unsafe residual.map { unsafe UnsafePointer($0.baseAddress! + b * g.outImage + grp * m * n) }
                let bi = unsafe bias.map { unsafe $0.baseAddress! + grp * m }
                // Rows r0..<r1 (r0 a panel boundary), columns c0..<c1.
                func block(_ r0: Int, _ r1: Int, _ c0: Int, _ c1: Int) {
                    let e = unsafe PackedGemm.Epilogue(
                        add: res.map { unsafe $0 + r0 * n }, bias: bi.map { unsafe $0 + r0 }, activation: activation)
                    let wp = unsafe w + r0 * k  // panel r0 / panel starts at r0 * k
                    if g.isPointwise {
                        unsafe PackedGemm.multiply(
                            rows: r1 - r0, columns: c1 - c0, depth: k, packedA: wp, b: x + c0, ldb: n,
                            c: y + r0 * n + c0, ldc: n,
                            epilogue: PackedGemm.Epilogue(add: e.add.map { unsafe $0 + c0 }, bias: e.bias, activation: activation))
                    } else {
                        unsafe PackedGemm.convolve(g, rows: r1 - r0, columns: c0..<c1, packedA: wp, image: x, c: y + r0 * n, epilogue: e)
                    }
                }
                if n >= 128 * threads || threads == 1 {
                    // Up to 4 column ranges per thread (taken dynamically), at least 64 wide.
                    let tiles = max(1, min(4 * threads, n / 64))
                    let width = ((n + tiles - 1) / tiles + 15) & ~15
                    let count = (n + width - 1) / width
                    Parallel.forRanges(count, threads: threads) { r in
                        for t in r { block(0, m, t * width, min(n, (t + 1) * width)) }
                    }
                } else if !g.isPointwise, scratch.count >= PackedGemm.packedBCount(depth: k, columns: n) {
                    // Few pixels: pack im2col once (by strips), then split rows dynamically.
                    let pb = scratch.baseAddress!
                    Parallel.forRanges((n + 15) / 16, threads: threads) { r in
                        unsafe PackedGemm.packConvolutionB(
                            g, columns: (16 * r.lowerBound)..<min(n, 16 * r.upperBound), image: x,
                            into: pb + 16 * k * r.lowerBound)
                    }
                    Parallel.forRanges((m + panel - 1) / panel, threads: threads) { r in
                        let r0 = r.lowerBound * panel, r1 = min(m, r.upperBound * panel)
                        let e = unsafe PackedGemm.Epilogue(
                            add: res.map { unsafe $0 + r0 * n }, bias: bi.map { unsafe $0 + r0 }, activation: activation)
                        unsafe PackedGemm.multiply(
                            rows: r1 - r0, columns: n, depth: k, packedA: w + r0 * k, packedB: pb, c: y + r0 * n, ldc: n,
                            epilogue: e)
                    }
                } else {
                    let panels = (m + panel - 1) / panel
                    let blocks = min(threads, panels)
                    Parallel.forRanges(blocks, threads: threads) { r in
                        for blk in r {
                            let r0 = panels * blk / blocks * panel, r1 = min(m, panels * (blk + 1) / blocks * panel)
                            if r1 > r0 { block(r0, r1, 0, n) }
                        }
                    }
                }
            }
        }
    }
}
