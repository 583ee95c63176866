/// Naive loops: the executable specification of every fast kernel.
package enum ReferenceKernels {
    /// `C = alpha * A * B + beta * C`, row-major, a triple loop in Double.
    package static func gemm(
        m: Int, n: Int, k: Int, a: [Float], b: [Float], c: inout [Float], alpha: Float = 1,
        beta: Float = 0
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k { acc += Double(a[i * k + p]) * Double(b[p * n + j]) }
                c[i * n + j] = Float(Double(alpha) * acc + (beta == 0 ? 0 : Double(beta) * Double(c[i * n + j])))
            }
        }
    }
}
