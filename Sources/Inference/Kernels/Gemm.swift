import COpenBLAS

/// Single-precision GEMM through OpenBLAS: `C = alpha * A * B + beta * C`, row-major.
///
/// Shapes: `A` is `m x k`, `B` is `k x n`, `C` is `m x n`, all dense row-major. This is
/// the only file that imports COpenBLAS; ``ReferenceKernels/gemm(m:n:k:a:b:c:alpha:beta:)``
/// is its naive twin.
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
                    unsafe cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                        alpha, pa.baseAddress, Int32(max(k, 1)), pb.baseAddress, Int32(n), beta,
                        pc.baseAddress, Int32(n))
                }
            }
        }
    }
}
