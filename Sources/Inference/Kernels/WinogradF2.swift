/// The F(2x2, 3x3) transforms of ``Winograd`` (4x4 input tiles, 2x2 output tiles):
/// ```
/// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
/// G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
/// A^T = [1 1 1 0; 0 1 -1 -1]
/// ```
/// The transforms only use 1/2 and ±1, so they add almost no rounding of their own.
extension Winograd {
    /// F(2x2)'s `G` (4 x 3).
    static let gF2: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]

    /// `V[ξ][c][tile] = (B^T d B)[ξ]` for one channel, written in the packed layout `layout`;
    /// `v` points at channel `c`'s lane 0 of point 0 (``PackedV/channel(_:)``).
    ///
    /// Row-wise over a tile row: each of the 4 input rows is copied into a zero-padded row
    /// buffer, transformed horizontally (`h[c][tx]`, contiguous in `tx`), then the 4 rows are
    /// combined vertically into 16 runs of `V` (cut where tiles cross a 16-lane strip). No
    /// bounds checks in the loops.
    @inline(__always)
    static func inputTransformF2(
        _ g: ConvGeometry, plane: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>, layout: PackedV,
        tiles: (h: Int, w: Int)
    ) {
        let (h, w) = (g.inHeight, g.inWidth)
        let tw = tiles.w
        let padded = 2 * tw + 2  // columns 2*tx ... 2*tx+3 for every tile
        unsafe withUnsafeTemporaryAllocation(of: Float.self, capacity: padded + 16 * tw) { tmp in
            let row = tmp.baseAddress!
            let hb = unsafe row + padded  // h[r][c][tx] at hb[(r*4 + c)*tw + tx]
            for ty in 0..<tiles.h {
                for r in 0..<4 {
                    let iy = 2 * ty - g.padTop + r
                    unsafe row.update(repeating: 0, count: padded)
                    if iy >= 0 && iy < h {
                        // Input column ix lands at padded column ix + padLeft.
                        let lo = max(0, -g.padLeft), hi = min(w, padded - g.padLeft)
                        if hi > lo {
                            unsafe (row + lo + g.padLeft).update(from: plane + iy * w + lo, count: hi - lo)
                        }
                    }
                    let h0 = unsafe hb + (r * 4) * tw, h1 = unsafe h0 + tw
                    let h2 = unsafe h1 + tw, h3 = unsafe h2 + tw
                    for tx in 0..<tw {
                        let x = unsafe row + 2 * tx
                        let (a, b, c, d) = unsafe (x[0], x[1], x[2], x[3])
                        unsafe h0[tx] = a - c
                        unsafe h1[tx] = b + c
                        unsafe h2[tx] = c - b
                        unsafe h3[tx] = b - d
                    }
                }
                // Vertical: V[r'*4 + c] from rows (0,2), (1,2), (2,1), (1,3) of h[.][c].
                forEachStripRun(tileRow: ty, tiles: tiles, layout: layout) { tx0, off, len in
                    for c in 0..<4 {
                        let r0 = unsafe hb + c * tw + tx0, r1 = unsafe r0 + 4 * tw
                        let r2 = unsafe r1 + 4 * tw, r3 = unsafe r2 + 4 * tw
                        let o0 = unsafe v + c * layout.pointStride + off, o1 = unsafe o0 + 4 * layout.pointStride
                        let o2 = unsafe o1 + 4 * layout.pointStride, o3 = unsafe o2 + 4 * layout.pointStride
                        for i in 0..<len {
                            let (a, b, cc, d) = unsafe (r0[i], r1[i], r2[i], r3[i])
                            unsafe o0[i] = a - cc
                            unsafe o1[i] = b + cc
                            unsafe o2[i] = cc - b
                            unsafe o3[i] = b - d
                        }
                    }
                }
            }
        }
    }

    /// `Y = A^T m A` for one output channel's tiles, plus bias, residual and activation.
    ///
    /// Per tile row: the 4 rows of `m` are combined vertically into `s0[c][tx]`, `s1[c][tx]`
    /// (contiguous in `tx`), then horizontally into the two output rows.
    @inline(__always)
    static func outputTransformF2(
        _ g: ConvGeometry, m: UnsafePointer<Float>, stride: Int, tiles: (h: Int, w: Int), bias: Float,
        residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, activation: Activation
    ) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        let tw = tiles.w
        unsafe withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * tw + 2 * (2 * tw)) { tmp in
            let sb = tmp.baseAddress!  // s[k][c][tx] at sb[(k*4 + c)*tw + tx]
            let yb = unsafe sb + 8 * tw  // two output rows of width 2*tw
            for ty in 0..<tiles.h {
                let base = ty * tw
                for c in 0..<4 {
                    let q0 = unsafe m + c * stride + base, q1 = unsafe q0 + 4 * stride
                    let q2 = unsafe q1 + 4 * stride, q3 = unsafe q2 + 4 * stride
                    let s0 = unsafe sb + c * tw, s1 = unsafe sb + (4 + c) * tw
                    for tx in 0..<tw {
                        let (a, b, cc, d) = unsafe (q0[tx], q1[tx], q2[tx], q3[tx])
                        unsafe s0[tx] = a + b + cc
                        unsafe s1[tx] = b - cc - d
                    }
                }
                for k in 0..<2 {
                    let s = unsafe sb + 4 * k * tw
                    let y = unsafe yb + k * 2 * tw
                    for tx in 0..<tw {
                        let (a, b, cc, d) = unsafe (s[tx], s[tw + tx], s[2 * tw + tx], s[3 * tw + tx])
                        unsafe y[2 * tx] = a + b + cc + bias
                        unsafe y[2 * tx + 1] = b - cc - d + bias
                    }
                }
                for k in 0..<2 where 2 * ty + k < oh {
                    unsafe storeOutputRow(
                        yb + k * 2 * tw, offset: (2 * ty + k) * ow, count: ow, residual: residual, output: output,
                        activation: activation)
                }
            }
        }
    }
}
