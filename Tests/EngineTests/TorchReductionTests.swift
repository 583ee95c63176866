import Tensors
import TestSupport
import Testing

@testable import Engine

/// ``TorchReduction`` (PyTorch's summation order) against its plain double twins.
@Suite struct TorchReductionTests {
    @Test(arguments: [1, 2, 5, 7, 8, 9, 31, 64, 72, 100, 288, 576, 4608, 20000, 73728])
    func sumIsCloseToExactSum(count: Int) {
        var rng = SplitMix64(seed: UInt64(count))
        let v = rng.floats(count, 0, 1)
        let fast = TorchReduction.sum(v[...])
        let exact = ReferenceReductions.sum(v[...])
        #expect(abs(fast - exact) <= 1e-6 * exact + 1e-7, "\(fast) vs \(exact)")
    }

    /// `torch.from_numpy(v).sum()` on PyTorch 2.13 (AVX2, 1 thread) for
    /// `v[i] = Float((37·i) mod 101) / 7`; at 72 and 70000 elements both a double sum and a
    /// sequential float loop round differently, at 300 and 5000 the float loop does.
    @Test(
        arguments: [
            (5, 0x1.8p+4), (9, 0x1.e36db8p+5), (72, 0x1.fe249p+8), (300, 0x1.0b4924p+11),
            (5000, 0x1.16ffb6p+15), (70000, 0x1.e84538p+18),
        ] as [(Int, Float)])
    func sumMatchesPyTorch(count: Int, expected: Float) {
        let v = (0..<count).map { Float((37 * $0) % 101) / 7 }
        #expect(TorchReduction.sum(v[...]) == expected)
    }

    @Test(arguments: [2, 9, 72, 144, 4608])
    func welfordMatchesTwoPass(count: Int) {
        var rng = SplitMix64(seed: UInt64(count) &* 7)
        let v = rng.floats(count, -0.3, 0.4)
        let a = TorchReduction.meanStd(v[...])
        let b = ReferenceReductions.meanStd(v[...])
        #expect(abs(a.mean - b.mean) <= 1e-7 && abs(a.std - b.std) <= 1e-6 * b.std)
    }

    @Test func ceilLog2() {
        #expect(
            [0, 1, 2, 3, 4, 5, 1024, 1025].map(TorchReduction.ceilLog2) == [
                0, 0, 1, 2, 2, 3, 10, 11,
            ])
    }
}
