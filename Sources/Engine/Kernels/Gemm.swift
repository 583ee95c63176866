import COpenBLAS

/// Single-precision GEMM through OpenBLAS: `C = alpha * op(A) * op(B) + beta * C`, row-major.
///
/// Shapes: `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`; leading dimensions are
/// row strides in elements. This is the only file that imports COpenBLAS;
/// ``ReferenceKernels/gemm(m:n:k:a:b:c:alpha:beta:)`` is its naive twin.
package enum Gemm {
    /// Runs sgemm on whole arrays (preconditions: array sizes match the shapes).
    package static func sgemm(
        m: Int, n: Int, k: Int, a: [Float], b: [Float], c: inout [Float], alpha: Float = 1,
        beta: Float = 0
    ) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n)
        guard m > 0, n > 0 else { return }
        unsafe a.withUnsafeBufferPointer { pa in
            unsafe b.withUnsafeBufferPointer { pb in
                unsafe c.withUnsafeMutableBufferPointer { pc in
                    unsafe sgemm(
                        m: m, n: n, k: k, a: pa.baseAddress!, lda: max(k, 1), b: pb.baseAddress!,
                        ldb: n, c: pc.baseAddress!, ldc: n, alpha: alpha, beta: beta)
                }
            }
        }
    }

    /// Double-precision GEMM on whole arrays (`dgemm`), for gradients that need more than
    /// float32 accumulation (the trainer's weight and input gradients).
    package static func dgemm(
        m: Int, n: Int, k: Int, a: [Double], b: [Double], c: inout [Double], alpha: Double = 1,
        beta: Double = 0
    ) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n)
        guard m > 0, n > 0 else { return }
        unsafe a.withUnsafeBufferPointer { pa in
            unsafe b.withUnsafeBufferPointer { pb in
                unsafe c.withUnsafeMutableBufferPointer { pc in
                    unsafe cblas_dgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                        pa.baseAddress!, Int32(max(k, 1)), pb.baseAddress!, Int32(n), beta, pc.baseAddress!,
                        Int32(n))
                }
            }
        }
    }

    /// Pointer-level sgemm. `transB` multiplies by `B^T` where `B` is stored `n x k` (ldb >= k).
    package static func sgemm(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transB: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        guard m > 0, n > 0 else { return }
        unsafe cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n),
            Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets OpenBLAS's worker count (process-wide).
    package static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(n, 1)))
    }

    /// OpenBLAS's current worker count.
    package static var threads: Int { Int(openblas_get_num_threads()) }
}
