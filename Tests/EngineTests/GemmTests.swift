import Engine
import Tensors
import TestSupport
import Testing

@Suite struct GemmTests {
    @Test(arguments: [(1, 1, 1), (3, 5, 7), (17, 9, 64), (64, 65, 577), (2, 300, 3)])
    func sgemmMatchesReference(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = SplitMix64(seed: UInt64(m * 1000 + n * 10 + k))
        let a = rng.floats(m * k), b = rng.floats(k * n)
        var fast = rng.floats(m * n)
        var slow = fast
        Gemm.sgemm(m: m, n: n, k: k, a: a, b: b, c: &fast, alpha: 0.5, beta: 2)
        ReferenceKernels.gemm(m: m, n: n, k: k, a: a, b: b, c: &slow, alpha: 0.5, beta: 2)
        let d = Difference(fast, slow)
        #expect(d.maxAbs <= 1e-4 * Float(k), "\(d)")
    }
}
