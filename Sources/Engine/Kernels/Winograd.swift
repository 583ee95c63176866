import CKernels

/// Winograd convolution F(2x2, 3x3) and F(4x4, 3x3) for 3x3, stride-1, undilated,
/// ungrouped convs.
///
/// Math (Lavin & Gray 2016): each `m x m` output tile is `Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A`
/// for an `α x α` input tile `d` (`α = m + 2`; origin `(m*ty - padT, m*tx - padL)`, zeros
/// outside the image). Summed over input channels, the `α²` element-wise products become
/// `α²` GEMMs `M[ξ] (Cout x T) = U[ξ] (Cout x Cin) * V[ξ] (Cin x T)` with `T` tiles per
/// image: 2.25x (F2) or 4x (F4) fewer multiplies than direct convolution. The transform
/// matrices are in `WinogradF2.swift` and `WinogradF4.swift`.
///
/// Layouts: transformed weights `U [α², Cout, Cin]`, each `Cout x Cin` matrix packed for
/// ``PackedGemm`` (made once at plan time by ``transformWeights(_:_:tile:into:)``); which
/// convs use which tile is the planner's choice (``WinogradSelection``);
/// scratch holds `V [α², Cin, T]` (each point's matrix in ``PackedGemm``'s B layout, see
/// ``PackedV``) then `M [α², Cout, T]`. The naive twin is the direct
/// ``ReferenceKernels/conv2d(_:input:weight:bias:)``.
package enum Winograd {
    /// True when `g` is a conv this kernel computes.
    package static func applies(_ g: ConvGeometry) -> Bool {
        g.kernelH == 3 && g.kernelW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1
            && g.dilationW == 1 && g.groups == 1
    }

    /// Tiles per image for output tile side `tile`.
    package static func tiles(_ g: ConvGeometry, tile: Int) -> (h: Int, w: Int) {
        ((g.outHeight + tile - 1) / tile, (g.outWidth + tile - 1) / tile)
    }

    /// Scratch floats for one image: `V` (packed) and `M`.
    package static func scratchCount(_ g: ConvGeometry, tile: Int) -> Int {
        let (th, tw) = tiles(g, tile: tile)
        let layout = PackedV(channels: g.inChannels, tiles: th * tw)
        // `+ 8`: the output transform's vector code reads up to 7 tiles past the end of M.
        return (tile + 2) * (tile + 2) * (layout.pointStride + th * tw * g.outChannels) + 8
    }

    /// Where the input transform writes `V[ξ][c][tile]`: each point's `Cin x T` matrix in
    /// ``PackedGemm``'s B layout (strips of 16 tiles, `[T/16][Cin][16]`), so the GEMMs read
    /// it without packing.
    struct PackedV {
        /// Input channels (GEMM depth).
        let channels: Int
        /// Floats from one point `ξ` to the next (`tiles` GEMM columns in 16-wide strips).
        let pointStride: Int

        init(channels: Int, tiles: Int) {
            self.channels = channels
            pointStride = PackedGemm.packedBCount(depth: channels, columns: tiles)
        }

        /// Offset of channel `c`, tile 0 (tile `t` is `(t / 16) * 16 * channels + t % 16`
        /// further on).
        func channel(_ c: Int) -> Int { 16 * c }
    }

    /// Floats of the packed transformed weights.
    package static func transformedWeightCount(outChannels: Int, inChannels: Int, tile: Int) -> Int {
        (tile + 2) * (tile + 2) * PackedGemm.packedCount(rows: outChannels, depth: inChannels)
    }

    /// `U = G g G^T` for every `(oc, ic)`: `α²` matrices `Cout x Cin`, each packed for
    /// ``PackedGemm``. `w` is `[Cout, Cin, 3, 3]`; `tile` is 2 or 4.
    package static func transformWeights(_ w: [Float], outChannels: Int, inChannels: Int, tile: Int) -> [Float] {
        let g = ConvGeometry(
            batch: 1, inChannels: inChannels, inHeight: 3, inWidth: 3, outChannels: outChannels, outHeight: 1,
            outWidth: 1, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 0, padLeft: 0, dilationH: 1,
            dilationW: 1, groups: 1)
        var out = [Float](repeating: 0, count: transformedWeightCount(outChannels: outChannels, inChannels: inChannels, tile: tile))
        unsafe w.withUnsafeBufferPointer { pw in
            unsafe out.withUnsafeMutableBufferPointer { unsafe transformWeights(pw, g, tile: tile, into: $0) }
        }
        return out
    }

    /// Multiplies output channel `oc` of transformed weights by `scale[oc]` (a folded batch
    /// norm: `G (s g) G^T = s (G g G^T)`).
    package static func scaleTransformedRows(
        _ g: ConvGeometry, tile: Int, _ u: UnsafeMutableBufferPointer<Float>, by scale: [Float]
    ) {
        let size = PackedGemm.packedCount(rows: g.outChannels, depth: g.inChannels)
        precondition(u.count == (tile + 2) * (tile + 2) * size)
        for xi in 0..<((tile + 2) * (tile + 2)) {
            unsafe PackedGemm.scaleRows(
                UnsafeMutableBufferPointer(rebasing: u[(xi * size)..<((xi + 1) * size)]), rows: g.outChannels,
                depth: g.inChannels, by: scale)
        }
    }

    /// ``transformWeights(_:outChannels:inChannels:tile:)`` straight into `dst` (zeroed,
    /// ``transformedWeightCount(outChannels:inChannels:tile:)`` floats): no intermediate
    /// copies, so planning a large model never holds the transformed weights twice. The
    /// products are formed in Double and rounded once.
    package static func transformWeights(
        _ w: UnsafeBufferPointer<Float>, _ g: ConvGeometry, tile: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        let (cout, cin) = (g.outChannels, g.inChannels)
        precondition((tile == 2 || tile == 4) && w.count == cout * cin * 9)
        precondition(dst.count == transformedWeightCount(outChannels: cout, inChannels: cin, tile: tile))
        let gm = tile == 2 ? gF2 : gF4
        let a = tile + 2
        let packed = PackedGemm.packedCount(rows: cout, depth: cin)
        var gg = [Double](repeating: 0, count: 3 * a)  // G g: a x 3
        for oc in 0..<cout {
            for ic in 0..<cin {
                let base = (oc * cin + ic) * 9
                for r in 0..<a {
                    for c in 0..<3 {
                        let (w0, w1, w2) = unsafe (w[base + c], w[base + 3 + c], w[base + 6 + c])
                        gg[r * 3 + c] = gm[r][0] * Double(w0) + gm[r][1] * Double(w1) + gm[r][2] * Double(w2)
                    }
                }
                let at = PackedGemm.packedIndex(row: oc, p: ic, depth: cin)
                for r in 0..<a {
                    for c in 0..<a {
                        let u = gg[r * 3] * gm[c][0] + gg[r * 3 + 1] * gm[c][1] + gg[r * 3 + 2] * gm[c][2]
                        unsafe dst[(r * a + c) * packed + at] = Float(u)
                    }
                }
            }
        }
    }

    /// `output = act(conv3x3(input) + bias [+ residual])` via F(tile x tile, 3x3).
    ///
    /// Three phases per image, each split over `threads`: input transform (by channel),
    /// the `α²` GEMMs, output transform with the epilogue (by output channel); the
    /// transforms are C kernels (`qk_wino_input`, `qk_wino_output`). `residual` may be
    /// `output` itself (each output element is read, then written, by one task); otherwise
    /// buffers never alias. `portable` runs the transforms' portable code even where AVX2
    /// is available (tests compare both).
    package static func forward(
        _ g: ConvGeometry, tile: Int, input: UnsafeBufferPointer<Float>, transformedWeight u: UnsafeBufferPointer<Float>,
        bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, scratch: UnsafeMutableBufferPointer<Float>,
        activation: Activation, threads: Int, portable: Bool = false
    ) {
        precondition((tile == 2 || tile == 4) && applies(g) && scratch.count >= scratchCount(g, tile: tile))
        precondition(u.count >= transformedWeightCount(outChannels: g.outChannels, inChannels: g.inChannels, tile: tile))
        precondition(input.count >= g.batch * g.inImage && output.count >= g.batch * g.outImage)
        let (th, tw) = tiles(g, tile: tile)
        let t = th * tw, points = (tile + 2) * (tile + 2)
        let (cin, cout) = (g.inChannels, g.outChannels)
        let layout = PackedV(channels: cin, tiles: t)
        let v = scratch.baseAddress!
        let m = unsafe v + points * layout.pointStride
        let packed = PackedGemm.packedCount(rows: cout, depth: cin)
        let (lo, hi) = activation.bounds
        let rowScratch = qk_wino_scratch_count(tile, th, tw)
        let inPlane = qk_wino_plane(
            tile: tile, height: g.inHeight, width: g.inWidth, pad_top: g.padTop, pad_left: g.padLeft,
            tiles_h: th, tiles_w: tw, channels: cin, point_stride: layout.pointStride)
        let outPlane = qk_wino_plane(
            tile: tile, height: g.outHeight, width: g.outWidth, pad_top: 0, pad_left: 0, tiles_h: th,
            tiles_w: tw, channels: 0, point_stride: cout * t)  // `channels`: input only
        for b in 0..<g.batch {
            let x = unsafe input.baseAddress! + b * g.inImage
            let y = unsafe output.baseAddress! + b * g.outImage
            let res = unsafe residual.map { unsafe $0.baseAddress! + b * g.outImage }
            Parallel.forRanges(cin, threads: threads) { r in
                unsafe withUnsafeTemporaryAllocation(of: Float.self, capacity: rowScratch) { tmp in
                    var plane = inPlane
                    for c in r {
                        unsafe qk_wino_input(
                            &plane, x + c * g.inHeight * g.inWidth, v + layout.channel(c), tmp.baseAddress!,
                            portable ? 1 : 0)
                    }
                }
            }
            Parallel.forRanges(points, threads: threads) { r in
                for xi in r {
                    unsafe PackedGemm.multiply(
                        rows: cout, columns: t, depth: cin, packedA: u.baseAddress! + xi * packed,
                        packedB: v + xi * layout.pointStride, c: m + xi * cout * t, ldc: t)
                }
            }
            Parallel.forRanges(cout, threads: threads) { r in
                unsafe withUnsafeTemporaryAllocation(of: Float.self, capacity: rowScratch) { tmp in
                    var plane = outPlane
                    for oc in r {
                        let off = oc * g.outPixels
                        unsafe qk_wino_output(
                            &plane, m + oc * t, bias?[oc] ?? 0, res.map { unsafe $0 + off }, y + off, lo, hi,
                            tmp.baseAddress!, portable ? 1 : 0)
                    }
                }
            }
        }
    }
}
