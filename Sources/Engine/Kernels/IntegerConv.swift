import CKernels

/// The ``Op/integerConv(_:)`` kernel (`Sources/CKernels/int8_conv.c`): input level indices
/// (floats holding integers `0...maxIndex`) converted to unsigned bytes once, then gathered, int8 weights packed at
/// plan time, int32 sums, then `y = act((Float(acc) * scale[m] + bias[m]) + residual)`.
///
/// The inner loop is chosen at run time. With AVX-512 VNNI the conv runs without im2col
/// (`int8_direct.c`): the input is converted once into padded stride-phase planes of
/// 4-channel byte words, and each kernel tap of 16 consecutive outputs is one 64-byte load
/// multiplied by `vpdpbusd` with the broadcast weights of 4 output channels. Otherwise the
/// im2col matrix of bytes is gathered per 64-pixel block (`int8_conv.c`) for AVX2 `vpmaddubsw` +
/// `vpmaddwd` (when `2 * maxIndex * max|w| > 32767` a pair of products could saturate int16,
/// so the indices are split into nibbles) or portable C. Twin: ``ReferenceKernels/integerConv(_:input:weight:scale:bias:padIndex:maxIndex:residual:activation:)``.
package enum IntegerConv {
    /// A value-form grid quantizer fused into the output transform, with the constant
    /// padding a `pad` before it adds: the output is the padded plane, its border the quantized
    /// pad value of each channel.
    package struct OutputQuantizer: Sendable, Equatable {
        package var form: GridQuantization
        package var padding = Padding2d(0)
        package var padValue: Float = 0

        package init(_ form: GridQuantization, padding: Padding2d = Padding2d(0), padValue: Float = 0) {
            self.form = form
            self.padding = padding
            self.padValue = padValue
        }
    }

    /// The inner loops (`QK_I8_*`).
    package enum Path: Int32, Sendable, CaseIterable {
        case portable = 0, avx2 = 1, vnni = 2
    }

    /// The fastest path this CPU runs.
    package static var bestPath: Path { Path(rawValue: qk_i8_best_path()) ?? .portable }

    /// Whether whole-byte `vpmaddubsw` is exact for these ranges.
    package static func maddubsSafe(maxIndex: Int, maxAbsWeight: Int) -> Bool {
        qk_i8_maddubs_safe(Int32(maxIndex), Int32(maxAbsWeight)) != 0
    }

    static func shape(_ g: ConvGeometry, padIndex: Int, maxIndex: Int, maddubsSafe: Bool) -> qk_i8_shape {
        qk_i8_shape(
            channels: g.groupInChannels, height: g.inHeight, width: g.inWidth, kernel_h: g.kernelH, kernel_w: g.kernelW,
            stride_h: g.strideH, stride_w: g.strideW, pad_top: g.padTop, pad_left: g.padLeft, dilation_h: g.dilationH,
            dilation_w: g.dilationW, out_height: g.outHeight, out_width: g.outWidth, out_channels: g.groupOutChannels,
            pad_value: UInt8(padIndex), max_index: UInt8(maxIndex), maddubs_safe: maddubsSafe ? 1 : 0)
    }

    /// Whether this CPU runs the direct kernel, which makes a quantized conv 2-3x faster than
    /// its float twin (the gathering paths are not faster than the float path: `qtools run`
    /// lowers quantized convs by default only when this holds).
    package static var isFasterThanFloat: Bool { isDirect(bestPath) }

    /// The kernel ``bestPath`` runs: `direct-vnni`, `gather-avx2` or `gather-portable`.
    package static var kernelName: String {
        isFasterThanFloat ? "direct-vnni" : bestPath == .avx2 ? "gather-avx2" : "gather-portable"
    }

    /// Whether `path` runs the direct kernel (`int8_direct.c`), which packs its weights
    /// differently.
    static func isDirect(_ path: Path) -> Bool { path == .vnni && qk_i8d_supported() != 0 }

    /// Packed bytes of one group's weights.
    static func groupBytes(_ g: ConvGeometry, path: Path) -> Int {
        var s = shape(g, padIndex: 0, maxIndex: 0, maddubsSafe: false)
        return unsafe Int(isDirect(path) ? qk_i8d_weight_bytes(&s) : qk_i8_packed_weight_bytes(&s))
    }

    /// Floats that hold the packed int8 weights (4 bytes each) for `path`.
    package static func packedWeightCount(_ g: ConvGeometry, path: Path = bestPath) -> Int {
        (g.groups * groupBytes(g, path: path) + 3) / 4
    }

    /// Packs `w` (`[Cout, Cin/groups, kH, kW]`, integers in `-128...127`, checked by the
    /// caller) into `dst` (``packedWeightCount(_:path:)`` floats, as bytes) for `path`.
    package static func packWeights(
        _ g: ConvGeometry, _ w: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<Float>, path: Path = bestPath
    ) {
        precondition(w.count >= g.outChannels * g.patchSize && dst.count >= packedWeightCount(g, path: path))
        let bytes = unsafe w.map { Int8($0) }
        var s = shape(g, padIndex: 0, maxIndex: 0, maddubsSafe: false)
        let per = groupBytes(g, path: path), rows = g.groupOutChannels * g.patchSize
        let raw = unsafe UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: Int8.self)
        let direct = isDirect(path)
        unsafe bytes.withUnsafeBufferPointer { b in
            for gi in 0..<g.groups {
                if direct {
                    unsafe qk_i8d_pack_weights(&s, b.baseAddress! + gi * rows, raw + gi * per)
                } else {
                    unsafe qk_i8_pack_weights(&s, b.baseAddress! + gi * rows, raw + gi * per)
                }
            }
        }
    }

    /// `y = act((Float(acc) * scale[m] + bias[m]) + residual)` for `x` `[N, Cin, H, W]`;
    /// `residual` may be the output itself. With `grid` (an ``GridQuantization/indices`` form
    /// that fits `Cin`), `x` holds the values that quantizer turns into the indices (its
    /// quantize step fused in: the direct kernel applies it while preparing its input). With
    /// `outputQuantizer` (a value form that fits `Cout`), the quantize step that follows is fused
    /// into the output transform, `y = q(act(...))`, written into a padded plane when it has
    /// padding (then without `residual` and `sums`). With `sums`, the int32 sums are written
    /// there instead (for tests; `[N, Cout, oH, oW]`).
    package static func forward(
        _ g: ConvGeometry, padIndex: Int, maxIndex: Int, maddubsSafe: Bool, input: UnsafeBufferPointer<Float>,
        weight: UnsafeBufferPointer<Float>, scale: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>,
        residual: UnsafeBufferPointer<Float>?, output: UnsafeMutableBufferPointer<Float>, activation: Activation,
        grid: GridQuantization? = nil, outputQuantizer: OutputQuantizer? = nil, threads: Int, path: Path = bestPath,
        sums: UnsafeMutablePointer<Int32>? = nil
    ) {
        let pad = outputQuantizer?.padding ?? Padding2d(0)
        let (rows, row) = (g.outHeight + pad.top + pad.bottom, g.outWidth + pad.left + pad.right)
        let padded = rows * row != g.outPixels
        precondition(input.count >= g.batch * g.inImage && output.count >= g.batch * g.outChannels * rows * row)
        unsafe precondition(!padded || (residual == nil && sums == nil))
        precondition(weight.count >= packedWeightCount(g, path: path) && scale.count >= g.outChannels && bias.count >= g.outChannels)
        precondition(grid.map { $0.indices && $0.fits(channels: g.inChannels) } ?? true)
        let q = outputQuantizer?.form
        precondition(q.map { !$0.indices && $0.fits(channels: g.outChannels) } ?? true)
        let outGrids = (q.map { q in (0..<g.outChannels).map { GridQuantizeKernel.grid(q, channel: $0) } } ?? [])
        unsafe outGrids.withUnsafeBufferPointer { og in
            let o = q == nil ? nil : og.baseAddress
            let y = unsafe Output(plane: rows * row, row: padded ? row : 0, offset: pad.top * row + pad.left, grids: o)
            unsafe forward(
                g, padIndex: padIndex, maxIndex: maxIndex, maddubsSafe: maddubsSafe, input: input, weight: weight, scale: scale,
                bias: bias, residual: residual, output: output, activation: activation, grid: grid, y: y, threads: threads,
                path: path, sums: sums)
        }
        if padded, let oq = outputQuantizer { unsafe fillBorder(g, oq, output: output, threads: threads) }
    }

    /// The border of padded output planes: each channel's quantized pad value.
    private static func fillBorder(_ g: ConvGeometry, _ oq: OutputQuantizer, output: UnsafeMutableBufferPointer<Float>, threads: Int) {
        let pad = oq.padding
        let (rows, row) = (g.outHeight + pad.top + pad.bottom, g.outWidth + pad.left + pad.right)
        let border = (0..<g.outChannels).map { oq.form.apply(oq.padValue, channel: $0) }
        let y0 = output.baseAddress!, interior = pad.top..<(pad.top + g.outHeight)
        Parallel.forRanges(g.batch * g.outChannels, threads: threads) { range in
            for p in range {
                let v = border[p % g.outChannels], plane = unsafe y0 + p * rows * row
                for r in 0..<rows {
                    let line = unsafe plane + r * row
                    if interior.contains(r) {
                        unsafe line.update(repeating: v, count: pad.left)
                        unsafe (line + pad.left + g.outWidth).update(repeating: v, count: pad.right)
                    } else {
                        unsafe line.update(repeating: v, count: row)
                    }
                }
            }
        }
    }

    /// Where the output goes: planes of `plane` floats, rows of `row` (0: unpadded), the
    /// interior at `offset`; the fused quantizer's C parameters per output channel.
    @unsafe struct Output {
        var plane: Int, row: Int, offset: Int
        var grids: UnsafePointer<qk_grid>?
    }

    private static func forward(
        _ g: ConvGeometry, padIndex: Int, maxIndex: Int, maddubsSafe: Bool, input: UnsafeBufferPointer<Float>,
        weight: UnsafeBufferPointer<Float>, scale: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>,
        residual: UnsafeBufferPointer<Float>?, output: UnsafeMutableBufferPointer<Float>, activation: Activation,
        grid: GridQuantization?, y: Output, threads: Int, path: Path, sums: UnsafeMutablePointer<Int32>?
    ) {
        let s0 = shape(g, padIndex: padIndex, maxIndex: maxIndex, maddubsSafe: maddubsSafe)
        let (lo, hi) = activation.bounds
        if isDirect(path) {
            let grids = grid.map { q in (0..<g.inChannels).map { GridQuantizeKernel.grid(q, channel: $0) } }
            unsafe forwardDirect(
                g, s0, input: input, grids: grids, weight: weight, scale: scale, bias: bias, residual: residual, output: output,
                lo: lo, hi: hi, y: y, threads: threads, sums: sums)
            return
        }
        if let grid {
            // The gathering paths read indices: run the quantize step first.
            var indices = [Float](repeating: 0, count: g.batch * g.inImage)
            unsafe indices.withUnsafeMutableBufferPointer { ix in
                unsafe GridQuantizeKernel.forward(
                    grid, batch: g.batch, channels: g.inChannels, height: g.inHeight, width: g.inWidth, padding: Padding2d(0),
                    border: .value(0), input: input, output: ix, threads: threads)
            }
            unsafe indices.withUnsafeBufferPointer { ix in
                unsafe forward(
                    g, padIndex: padIndex, maxIndex: maxIndex, maddubsSafe: maddubsSafe, input: ix, weight: weight, scale: scale,
                    bias: bias, residual: residual, output: output, activation: activation, grid: nil, y: y,
                    threads: threads, path: path, sums: sums)
            }
            return
        }
        let block = 64
        let blocks = (g.outPixels + block - 1) / block
        let per = groupBytes(g, path: path)
        // The level indices as bytes, converted once (each is gathered up to kH * kW times).
        let n = g.batch * g.inImage
        var levels = [UInt8](repeating: 0, count: n)
        let chunk = 1 << 16
        unsafe levels.withUnsafeMutableBufferPointer { dst in
            let d0 = dst.baseAddress!, x = input.baseAddress!
            Parallel.forRanges((n + chunk - 1) / chunk, threads: threads) { r in
                for i in r {
                    let lo = i * chunk, count = min(n, lo + chunk) - lo
                    unsafe qk_i8_levels(x + lo, count, UInt8(maxIndex), d0 + lo)
                }
            }
        }
        let y0 = output.baseAddress!, s = scale.baseAddress!, b = bias.baseAddress!
        let r0 = unsafe residual?.baseAddress
        let w0 = unsafe UnsafeRawPointer(weight.baseAddress!).assumingMemoryBound(to: Int8.self)
        let (cg, mg, plane) = (g.groupInChannels, g.groupOutChannels, g.outPixels)
        unsafe levels.withUnsafeBufferPointer { lv in
            let x0 = lv.baseAddress!
            Parallel.forRanges(g.batch * g.groups * blocks, threads: threads) { range in
                var sh = s0
                for item in range {
                    let (img, rest) = item.quotientAndRemainder(dividingBy: g.groups * blocks)
                    let (gi, blk) = rest.quotientAndRemainder(dividingBy: blocks)
                    let out = (img * g.outChannels + gi * mg) * plane, yOut = unsafe (img * g.outChannels + gi * mg) * y.plane + y.offset
                    var ep = unsafe qk_i8_epilogue(
                        scale: s + gi * mg, bias: b + gi * mg, residual: r0.map { unsafe $0 + out }, lo: lo, hi: hi,
                        grid: y.grids.map { unsafe $0 + gi * mg }, row: y.row)
                    let p0 = blk * block, p1 = min(plane, p0 + block)
                    unsafe qk_i8_conv(
                        &sh, x0 + (img * g.inChannels + gi * cg) * g.inHeight * g.inWidth, w0 + gi * per, p0, p1, y0 + yOut, y.plane,
                        &ep, sums.map { unsafe $0 + out }, path.rawValue)
                }
            }
        }
    }

    /// The direct kernel: every image and group's input prepared once (in parallel over
    /// channel quads), then tiles of 96 output positions times blocks of output channels (split
    /// finer when there are few tiles, as for 7x7 planes at batch 1) in parallel.
    private static func forwardDirect(
        _ g: ConvGeometry, _ s0: qk_i8_shape, input: UnsafeBufferPointer<Float>, grids: [qk_grid]?, weight: UnsafeBufferPointer<Float>,
        scale: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>, residual: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, lo: Float, hi: Float, y: Output, threads: Int,
        sums: UnsafeMutablePointer<Int32>?
    ) {
        var s1 = s0
        let per = unsafe Int(qk_i8d_input_bytes(&s1)), tiles = unsafe qk_i8d_tiles(&s1)
        let quads = (g.groupInChannels + 3) / 4, images = g.batch * g.groups
        let (cg, mg, plane) = (g.groupInChannels, g.groupOutChannels, g.outPixels)
        let prepared = unsafe [UInt8](unsafeUninitializedCapacity: images * per) { _, n in n = images * per }
        let x0 = input.baseAddress!, y0 = output.baseAddress!, s = scale.baseAddress!, b = bias.baseAddress!
        let r0 = unsafe residual?.baseAddress
        let w0 = unsafe UnsafeRawPointer(weight.baseAddress!).assumingMemoryBound(to: Int8.self)
        let perWeights = groupBytes(g, path: .vnni)
        // Output channels per work item: all of the group's unless that leaves a thread idle.
        let units = images * tiles, mTiles = (mg + 3) / 4
        let split = min(mTiles, max(1, (8 * threads + units - 1) / units))
        let mBlock = (mTiles + split - 1) / split * 4
        unsafe prepared.withUnsafeBufferPointer { p in
            let p0 = unsafe UnsafeMutablePointer(mutating: p.baseAddress!)
            unsafe (grids ?? []).withUnsafeBufferPointer { gs in
                let q0 = grids == nil ? nil : gs.baseAddress
                Parallel.forRanges(images * quads, threads: threads) { range in
                    var sh = s0
                    for item in range {
                        let (ig, q) = item.quotientAndRemainder(dividingBy: quads)
                        let (img, gi) = ig.quotientAndRemainder(dividingBy: g.groups)
                        let x = unsafe x0 + (img * g.inChannels + gi * cg) * g.inHeight * g.inWidth
                        unsafe qk_i8d_prepare(&sh, x, q0.map { unsafe $0 + gi * cg }, q, q + 1, p0 + ig * per)
                    }
                }
            }
            Parallel.forRanges(units * split, threads: threads) { range in
                var sh = s0
                for item in range {
                    let (unit, part) = item.quotientAndRemainder(dividingBy: split)
                    let (ig, t) = unit.quotientAndRemainder(dividingBy: tiles)
                    let (img, gi) = ig.quotientAndRemainder(dividingBy: g.groups)
                    let m0 = part * mBlock, m1 = min(mg, m0 + mBlock)
                    guard m0 < m1 else { continue }
                    let out = (img * g.outChannels + gi * mg) * plane, yOut = unsafe (img * g.outChannels + gi * mg) * y.plane + y.offset
                    var ep = unsafe qk_i8_epilogue(
                        scale: s + gi * mg, bias: b + gi * mg, residual: r0.map { unsafe $0 + out }, lo: lo, hi: hi,
                        grid: y.grids.map { unsafe $0 + gi * mg }, row: y.row)
                    unsafe qk_i8d_conv(
                        &sh, p0 + ig * per, w0 + gi * perWeights, t, t + 1, m0, m1, y0 + yOut, y.plane, &ep,
                        sums.map { unsafe $0 + out })
                }
            }
        }
    }
}
