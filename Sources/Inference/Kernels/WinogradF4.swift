import CKernels

/// The F(4x4, 3x3) transforms of ``Winograd`` (6x6 input tiles, 4x4 output tiles;
/// interpolation points 0, ±1, ±2, ∞):
/// ```
/// B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
/// G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
/// A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
/// ```
/// 4x fewer multiplies than direct convolution, at the price of larger transform
/// coefficients: results differ from direct convolution by about 1e-6 of the accumulated
/// magnitude (F(2x2): about 1e-7).
extension Winograd {
    /// F(4x4)'s `G` (6 x 3).
    static let gF4: [[Double]] = [
        [1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
        [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1],
    ]

    /// `V[ξ][c][tile] = (B^T d B)[ξ]` for one channel in the packed layout `layout`; `v`
    /// points at the channel (``PackedV/channel(_:)``). Row-wise like
    /// ``inputTransformF2(_:plane:v:layout:tiles:)``: the 6 input rows of a tile row are
    /// transformed horizontally (`h[r][c][tx]`), then combined vertically into 36 runs of `V`
    /// (loops over `tx` on contiguous rows, which vectorize).
    @inline(__always)
    static func inputTransformF4(
        _ g: ConvGeometry, plane: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>, layout: PackedV,
        tiles: (h: Int, w: Int)
    ) {
        let (h, w) = (g.inHeight, g.inWidth)
        let tw = tiles.w
        let padded = 4 * tw + 2  // columns 4*tx ... 4*tx+5 for every tile
        let rowCapacity = padded + 8  // the vector pass reads a little past the last tile
        unsafe withUnsafeTemporaryAllocation(of: Float.self, capacity: rowCapacity + 36 * tw) { tmp in
            let row = tmp.baseAddress!
            unsafe row.update(repeating: 0, count: rowCapacity)
            let hb = unsafe row + rowCapacity  // h[r][c][tx] at hb[(r*6 + c)*tw + tx]
            for ty in 0..<tiles.h {
                for r in 0..<6 {
                    let iy = 4 * ty - g.padTop + r
                    unsafe row.update(repeating: 0, count: padded)
                    if iy >= 0 && iy < h {
                        let lo = max(0, -g.padLeft), hi = min(w, padded - g.padLeft)
                        if hi > lo { unsafe (row + lo + g.padLeft).update(from: plane + iy * w + lo, count: hi - lo) }
                    }
                    let o = unsafe hb + r * 6 * tw
                    unsafe qk_wino4_rows_in(row, tw, o, o + tw, o + 2 * tw, o + 3 * tw, o + 4 * tw, o + 5 * tw, 0)
                }
                forEachStripRun(tileRow: ty, tiles: tiles, layout: layout) { tx0, off, len in
                    for c in 0..<6 {
                        let i = unsafe UnsafePointer(hb + c * tw + tx0), s = 6 * tw
                        let o = unsafe v + c * layout.pointStride + off, os = 6 * layout.pointStride
                        unsafe forwardRows(
                            (i, i + s, i + 2 * s, i + 3 * s, i + 4 * s, i + 5 * s),
                            (o, o + os, o + 2 * os, o + 3 * os, o + 4 * os, o + 5 * os), count: len)
                    }
                }
            }
        }
    }

    /// `B^T d` for `count` 6-vectors: element `t` of vector `k` is `i.k[t]`, component `j`
    /// of the result goes to `o.j[t]` (the strided horizontal pass is `qk_wino4_rows_in`).
    @inline(__always)
    private static func forwardRows(
        _ i: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
              UnsafePointer<Float>, UnsafePointer<Float>),
        _ o: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
              UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>),
        count: Int
    ) {
        for t in 0..<count {
            let (d0, d1, d2, d3, d4, d5) = unsafe (i.0[t], i.1[t], i.2[t], i.3[t], i.4[t], i.5[t])
            unsafe o.0[t] = 4 * d0 - 5 * d2 + d4
            unsafe o.1[t] = (d3 + d4) - 4 * (d1 + d2)
            unsafe o.2[t] = (d4 - d3) + 4 * (d1 - d2)
            unsafe o.3[t] = (d4 - d2) + 2 * (d3 - d1)
            unsafe o.4[t] = (d4 - d2) - 2 * (d3 - d1)
            unsafe o.5[t] = 4 * d1 - 5 * d3 + d5
        }
    }

    /// `Y = A^T m A` for one output channel's tiles, plus bias, residual and activation.
    /// Per tile row: the 6 rows of `m` are combined vertically into `s[k][c][tx]` (k < 4),
    /// then horizontally into four output rows.
    @inline(__always)
    static func outputTransformF4(
        _ g: ConvGeometry, m: UnsafePointer<Float>, stride: Int, tiles: (h: Int, w: Int), bias: Float,
        residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, activation: Activation
    ) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        let tw = tiles.w
        unsafe withUnsafeTemporaryAllocation(of: Float.self, capacity: 24 * tw + 4 * (4 * tw)) { tmp in
            let sb = tmp.baseAddress!  // s[k][c][tx] at sb[(k*6 + c)*tw + tx]
            let yb = unsafe sb + 24 * tw  // four output rows of width 4*tw
            for ty in 0..<tiles.h {
                let base = ty * tw
                for c in 0..<6 {
                    let q = unsafe m + c * stride + base, qs = 6 * stride
                    let o = unsafe sb + c * tw, os = 6 * tw
                    unsafe inverseRows(
                        (q, q + qs, q + 2 * qs, q + 3 * qs, q + 4 * qs, q + 5 * qs),
                        (o, o + os, o + 2 * os, o + 3 * os), count: tw)
                }
                for k in 0..<4 {
                    let s = unsafe UnsafePointer(sb + k * 6 * tw)
                    let y = unsafe yb + k * 4 * tw
                    unsafe qk_wino4_rows_out(s, s + tw, s + 2 * tw, s + 3 * tw, s + 4 * tw, s + 5 * tw, tw, bias, y, 0)
                }
                for k in 0..<4 where 4 * ty + k < oh {
                    unsafe storeOutputRow(
                        yb + k * 4 * tw, offset: (4 * ty + k) * ow, count: ow, residual: residual, output: output,
                        activation: activation)
                }
            }
        }
    }

    /// `A^T q` for `count` 6-vectors: component `k` of vector `t` is `i.k[t]`; result `j`
    /// goes to `o.j[t]` (the strided horizontal pass is `qk_wino4_rows_out`).
    @inline(__always)
    private static func inverseRows(
        _ i: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
              UnsafePointer<Float>, UnsafePointer<Float>),
        _ o: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
              UnsafeMutablePointer<Float>),
        count: Int
    ) {
        for t in 0..<count {
            let (q0, q1, q2, q3, q4, q5) = unsafe (i.0[t], i.1[t], i.2[t], i.3[t], i.4[t], i.5[t])
            let (a, b, c, d) = (q1 + q2, q1 - q2, q3 + q4, q3 - q4)
            unsafe o.0[t] = q0 + a + c
            unsafe o.1[t] = b + 2 * d
            unsafe o.2[t] = a + 4 * c
            unsafe o.3[t] = b + 8 * d + q5
        }
    }
}
