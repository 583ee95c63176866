import CKernels

/// The engine's convolution GEMM: weights packed once at plan time, products summed by the
/// C micro-kernels of `Sources/CKernels` (AVX2+FMA 6x16 tiles, a portable twin otherwise).
///
/// `C (m x n) = epilogue(A * B)`, row-major, where A (`m x k`, the weights) is stored as
/// panels of ``panelRows`` rows (``pack(_:rows:depth:)``) and B is either a plain matrix or
/// the im2col matrix of an image, gathered while packing (no im2col buffer). The epilogue
/// adds a residual and a per-row bias and clamps, in the tile that is still in registers.
/// Each call runs on the calling thread; callers split rows or columns over threads. The
/// naive twin is ``ReferenceKernels/gemm(m:n:k:a:b:c:alpha:beta:)``.
package enum PackedGemm {
    /// Rows per packed panel of A.
    package static let panelRows = Int(QK_MR)

    /// Floats of `rows x depth` weights once packed (rows rounded up to whole panels).
    package static func packedCount(rows: Int, depth: Int) -> Int {
        Int(qk_packed_a_count(rows, depth))
    }

    /// Packs row-major `a` (`rows x depth`) into panels.
    package static func pack(_ a: [Float], rows: Int, depth: Int) -> [Float] {
        precondition(a.count >= rows * depth)
        var out = [Float](repeating: 0, count: packedCount(rows: rows, depth: depth))
        unsafe a.withUnsafeBufferPointer { pa in
            unsafe out.withUnsafeMutableBufferPointer { po in
                unsafe qk_pack_a(rows, depth, pa.baseAddress!, depth, po.baseAddress!)
            }
        }
        return out
    }

    /// Packs row-major `a` (`rows x depth`) into panels at `dst` (``packedCount(rows:depth:)`` floats).
    package static func pack(_ a: UnsafePointer<Float>, rows: Int, depth: Int, into dst: UnsafeMutablePointer<Float>) {
        unsafe qk_pack_a(rows, depth, a, depth, dst)
    }

    /// Multiplies row `r` of a packed `rows x depth` matrix by `scale[r]`.
    package static func scaleRows(_ packed: UnsafeMutableBufferPointer<Float>, rows: Int, depth: Int, by scale: [Float]) {
        precondition(packed.count == packedCount(rows: rows, depth: depth) && scale.count == rows)
        for p0 in stride(from: 0, to: rows, by: panelRows) {
            let base = p0 * depth
            for p in 0..<depth {
                for r in 0..<min(panelRows, rows - p0) { unsafe packed[base + p * panelRows + r] *= scale[p0 + r] }
            }
        }
    }

    /// Index of element `(row, p)` of a `rows x depth` matrix packed by ``pack(_:rows:depth:)``.
    @inline(__always)
    package static func packedIndex(row: Int, p: Int, depth: Int) -> Int {
        (row / panelRows) * panelRows * depth + p * panelRows + row % panelRows
    }

    /// Where results go after the sum: `c = act(sum + add + bias[row])`.
    @unsafe package struct Epilogue {
        /// Added elementwise (a residual, same row stride as C); may be C itself.
        package var add: UnsafePointer<Float>?
        /// Per-row bias.
        package var bias: UnsafePointer<Float>?
        package var activation: Activation

        package init(add: UnsafePointer<Float>? = nil, bias: UnsafePointer<Float>? = nil, activation: Activation = .none) {
            unsafe self.add = add
            unsafe self.bias = bias
            unsafe self.activation = activation
        }

        fileprivate func c(ldc: Int) -> qk_epilogue {
            let (lo, hi) = unsafe activation.bounds
            return unsafe qk_epilogue(add_src: add, add_ld: ldc, bias: bias, lo: lo, hi: hi)
        }
    }

    /// `c = epilogue(A * B)` for `rows x columns`; `packedA` points at a panel boundary,
    /// `b` is `depth x columns` with row stride `ldb`.
    package static func multiply(
        rows m: Int, columns n: Int, depth k: Int, packedA: UnsafePointer<Float>, b: UnsafePointer<Float>,
        ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue
    ) {
        guard m > 0, n > 0 else { return }
        precondition(k > 0)
        var e = unsafe epilogue.c(ldc: ldc)
        unsafe qk_sgemm(m, n, k, packedA, b, ldb, c, ldc, &e, nil)
    }

    /// Floats of a `depth x columns` B matrix in packed strips `[columns/16][depth][16]`.
    package static func packedBCount(depth: Int, columns: Int) -> Int {
        Int(qk_packed_b_count(depth, columns))
    }

    /// `c = epilogue(A * B)` for `rows x columns` with B already in packed strips (lanes
    /// past `columns` in the last strip are ignored).
    package static func multiply(
        rows m: Int, columns n: Int, depth k: Int, packedA: UnsafePointer<Float>, packedB: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue = unsafe Epilogue()
    ) {
        guard m > 0, n > 0 else { return }
        precondition(k > 0)
        var e = unsafe epilogue.c(ldc: ldc)
        unsafe qk_sgemm_packed_b(m, n, k, packedA, packedB, c, ldc, &e)
    }

    /// im2col columns `columns` (starting at a multiple of 16) of one image and group of
    /// `g`, packed as full-depth B strips at `dst` (strip `s` of the range at `dst + s*16*K`).
    package static func packConvolutionB(
        _ g: ConvGeometry, columns: Range<Int>, image: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>
    ) {
        guard !columns.isEmpty else { return }
        precondition(columns.lowerBound % 16 == 0)
        var shape = convShape(g)
        unsafe qk_pack_conv_b(&shape, image, columns.lowerBound, columns.upperBound, dst)
    }

    private static func convShape(_ g: ConvGeometry) -> qk_conv_shape {
        qk_conv_shape(
            channels: g.groupInChannels, height: g.inHeight, width: g.inWidth, kernel_h: g.kernelH,
            kernel_w: g.kernelW, stride_h: g.strideH, stride_w: g.strideW, pad_top: g.padTop,
            pad_left: g.padLeft, dilation_h: g.dilationH, dilation_w: g.dilationW,
            out_height: g.outHeight, out_width: g.outWidth)
    }

    /// Columns `columns` of `c = epilogue(A * im2col(image))` for one image and group of
    /// `g`; `c` (row stride `g.outPixels`) and the epilogue's `add` point at column 0.
    package static func convolve(
        _ g: ConvGeometry, rows m: Int, columns: Range<Int>, packedA: UnsafePointer<Float>,
        image: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, epilogue: Epilogue
    ) {
        guard m > 0, !columns.isEmpty else { return }
        var shape = convShape(g)
        var e = unsafe epilogue.c(ldc: g.outPixels)
        unsafe qk_sgemm_conv(m, columns.lowerBound, columns.upperBound, packedA, &shape, image, c, g.outPixels, &e, nil)
    }

    /// True when the AVX2+FMA micro-kernel runs on this CPU.
    package static var usesAVX2: Bool { qk_uses_avx2() != 0 }

    /// One `panelRows x 16` tile from a packed panel `a` and strip `b` (each `depth` deep):
    /// `act(a * b + add + bias)` (row stride 16; `add` is accumulated in place), by the
    /// portable micro-kernel or the one this CPU runs. For tests that compare the two
    /// micro-kernels with the naive twin.
    package static func tile(
        portable: Bool, depth: Int, a: [Float], b: [Float], add: [Float]?, bias: [Float]?, activation: Activation
    ) -> [Float] {
        precondition(a.count >= depth * panelRows && b.count >= depth * 16)
        precondition((add?.count ?? 16 * panelRows) == 16 * panelRows && (bias?.count ?? panelRows) >= panelRows)
        var c = add ?? [Float](repeating: .nan, count: 16 * panelRows)
        let biasValues = bias ?? []
        let e = unsafe Epilogue(activation: activation).c(ldc: 16)
        unsafe a.withUnsafeBufferPointer { pa in
            unsafe b.withUnsafeBufferPointer { pb in
                unsafe biasValues.withUnsafeBufferPointer { pbias in
                    unsafe c.withUnsafeMutableBufferPointer { pc in
                        unsafe qk_micro_tile(
                            portable ? 1 : 0, depth, pa.baseAddress!, pb.baseAddress!, pc.baseAddress!, 16,
                            add == nil ? nil : UnsafePointer(pc.baseAddress!), bias == nil ? nil : pbias.baseAddress,
                            e.lo, e.hi, 1)
                    }
                }
            }
        }
        return c
    }
}
