import Foundation
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
/// ``PackedGemm`` (made once at plan time by ``transformWeights(_:outChannels:inChannels:tile:)``);
/// scratch holds `V [α², Cin, T]` (each point's matrix in ``PackedGemm``'s B layout, see
/// ``PackedV``) then `M [α², Cout, T]`. The naive twin is the direct
/// ``ReferenceKernels/conv2d(_:input:weight:bias:)``.
package enum Winograd {
    /// True when `g` is a conv this kernel computes.
    package static func applies(_ g: ConvGeometry) -> Bool {
        g.kernelH == 3 && g.kernelW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1
            && g.dilationW == 1 && g.groups == 1
    }

    /// The output tile side (4 or 2) expected to beat im2col + GEMM on `g`, or nil.
    ///
    /// Measured on ResNet-18 shapes (AVX2, 2 threads): with at least 64 input channels and
    /// 16 tiles per image both variants beat the packed direct GEMM; F(4x4) is preferred
    /// where it still has 16 tiles (56x56, 28x28, 14x14), F(2x2) below (7x7). With fewer
    /// input channels the transforms outweigh the shortened GEMMs.
    package static func preferredTile(_ g: ConvGeometry) -> Int? {
        guard applies(g), g.inChannels >= 64 else { return nil }
        let tilesToTry = ProcessInfo.processInfo.environment["QTOOLS_WG"] == "2" ? [2] : [4, 2]
        for tile in tilesToTry {
            let (th, tw) = tiles(g, tile: tile)
            if th * tw >= 16 { return tile }
        }
        return nil
    }

    /// Tiles per image for output tile side `tile`.
    package static func tiles(_ g: ConvGeometry, tile: Int) -> (h: Int, w: Int) {
        ((g.outHeight + tile - 1) / tile, (g.outWidth + tile - 1) / tile)
    }

    /// Scratch floats for one image: `V` (packed) and `M`.
    package static func scratchCount(_ g: ConvGeometry, tile: Int) -> Int {
        let (th, tw) = tiles(g, tile: tile)
        let layout = PackedV(channels: g.inChannels, tiles: th * tw)
        return (tile + 2) * (tile + 2) * (layout.pointStride + th * tw * g.outChannels)
    }

    /// Where the input transform writes `V[ξ][c][tile]`: each point's `Cin x T` matrix in
    /// ``PackedGemm``'s B layout (strips of 16 tiles, `[T/16][Cin][16]`), so the GEMMs read
    /// it without packing.
    struct PackedV {
        /// Input channels (GEMM depth) and tiles (GEMM columns).
        let channels: Int, tiles: Int
        /// Floats from one point `ξ` to the next.
        let pointStride: Int

        init(channels: Int, tiles: Int) {
            self.channels = channels
            self.tiles = tiles
            pointStride = PackedGemm.packedBCount(depth: channels, columns: tiles)
        }

        /// Offset of channel `c`, tile 0.
        func channel(_ c: Int) -> Int { 16 * c }
        /// Offset of tile `t` from its channel's offset.
        func tile(_ t: Int) -> Int { (t >> 4) * 16 * channels + (t & 15) }
    }

    /// Calls `body(tx0, offset, count)` for runs of tile row `ty` that stay in one strip:
    /// tiles `tx0 ..< tx0 + count` of the row sit at `offset + 0 ..< count` (from a channel's
    /// offset) in `layout`.
    @inline(__always)
    static func forEachStripRun(
        tileRow ty: Int, tiles: (h: Int, w: Int), layout: PackedV, _ body: (Int, Int, Int) -> Void
    ) {
        var tx = 0
        while tx < tiles.w {
            let t = ty * tiles.w + tx
            let count = min(tiles.w - tx, 16 - (t & 15))
            body(tx, layout.tile(t), count)
            tx += count
        }
    }

    /// Floats of the packed transformed weights.
    package static func transformedWeightCount(outChannels: Int, inChannels: Int, tile: Int) -> Int {
        (tile + 2) * (tile + 2) * PackedGemm.packedCount(rows: outChannels, depth: inChannels)
    }

    /// `U = G g G^T` for every `(oc, ic)`: `α²` matrices `Cout x Cin`, each packed for
    /// ``PackedGemm``. `w` is `[Cout, Cin, 3, 3]`; `tile` is 2 or 4.
    package static func transformWeights(_ w: [Float], outChannels: Int, inChannels: Int, tile: Int) -> [Float] {
        precondition(tile == 2 || tile == 4)
        let u = tile == 2
            ? weightTransformF2(w, outChannels: outChannels, inChannels: inChannels)
            : weightTransformF4(w, outChannels: outChannels, inChannels: inChannels)
        let plane = outChannels * inChannels, points = (tile + 2) * (tile + 2)
        var out: [Float] = []
        out.reserveCapacity(transformedWeightCount(outChannels: outChannels, inChannels: inChannels, tile: tile))
        for xi in 0..<points {
            out += PackedGemm.pack(Array(u[(xi * plane)..<((xi + 1) * plane)]), rows: outChannels, depth: inChannels)
        }
        return out
    }

    /// `output = act(conv3x3(input) + bias [+ residual])` via F(tile x tile, 3x3).
    ///
    /// Three phases per image, each split over `threads`: input transform (by channel),
    /// the `α²` GEMMs, output transform with the epilogue (by output channel). `residual`
    /// may be `output` itself (each output element is read, then written, by one task);
    /// otherwise buffers never alias.
    package static func forward(
        _ g: ConvGeometry, tile: Int, input: UnsafeBufferPointer<Float>, transformedWeight u: UnsafeBufferPointer<Float>,
        bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, scratch: UnsafeMutableBufferPointer<Float>,
        activation: Activation, threads: Int
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
        for b in 0..<g.batch {
            let x = unsafe input.baseAddress! + b * g.inImage
            let y = unsafe output.baseAddress! + b * g.outImage
            let res = unsafe residual.map { unsafe $0.baseAddress! + b * g.outImage }
            Parallel.forRanges(cin, threads: threads, grain: max(1, 4096 / max(t, 1))) { r in
                for c in r {
                    let plane = unsafe x + c * g.inHeight * g.inWidth
                    let vc = unsafe v + layout.channel(c)
                    if tile == 2 {
                        unsafe inputTransformF2(g, plane: plane, v: vc, layout: layout, tiles: (th, tw))
                    } else {
                        unsafe inputTransformF4(g, plane: plane, v: vc, layout: layout, tiles: (th, tw))
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
            Parallel.forRanges(cout, threads: threads, grain: max(1, 4096 / max(t, 1))) { r in
                for oc in r {
                    let off = oc * g.outPixels
                    let (mo, bo, ro, yo) = unsafe (m + oc * t, bias?[oc] ?? 0, res.map { unsafe $0 + off }, y + off)
                    if tile == 2 {
                        unsafe outputTransformF2(
                            g, m: mo, stride: cout * t, tiles: (th, tw), bias: bo, residual: ro, output: yo,
                            activation: activation)
                    } else {
                        unsafe outputTransformF4(
                            g, m: mo, stride: cout * t, tiles: (th, tw), bias: bo, residual: ro, output: yo,
                            activation: activation)
                    }
                }
            }
        }
    }
}
