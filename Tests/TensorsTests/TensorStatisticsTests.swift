import TestSupport
import Testing

@testable import Tensors

@Suite struct TensorStatisticsTests {
    /// The SIMD float32 kernel against its naive twin, on sizes around the block and lane edges.
    @Test(arguments: 0..<12 as Range<UInt64>)
    func fastMatchesReference(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let sizes = [0, 1, 7, 8, 9, 1023, 1024, 1025, 4099, 20_000]
        let n = sizes[Int(seed) % sizes.count]
        var values = rng.floats(n, -3, 3)
        if seed % 3 == 1 { for i in stride(from: 0, to: n, by: 5) { values[i] = 0 } }
        if seed % 4 == 2, n > 3 { values[n / 2] = .nan; values[n - 1] = .nan }
        if seed % 5 == 3 { values = values.map { ($0 * 1.5).rounded() / 1.5 } }  // few levels
        let t = Tensor(floats: values, shape: [n])
        let fast = TensorStatistics.of(t), slow = TensorStatistics.reference(t)
        #expect(fast.count == slow.count)
        #expect(fast.nanCount == slow.nanCount)
        #expect(fast.zeroFraction == slow.zeroFraction)
        #expect(fast.min == slow.min)
        #expect(fast.max == slow.max)
        #expect(fast.levels == slow.levels)
        if let a = fast.mean, let b = slow.mean {
            #expect(abs(a - b) <= 1e-5 * max(1, abs(b)))
        } else {
            #expect(fast.mean == nil && slow.mean == nil)
        }
        if let a = fast.std, let b = slow.std { #expect(abs(a - b) <= 1e-5 * max(1, b)) }
    }

    @Test func levelsOfATernaryTensor() {
        let t = Tensor(floats: [0.5, -0.5, 0, 0, 0.5, -0.5, 0.5], shape: [7])
        let s = TensorStatistics.of(t)
        #expect(s.levels == [-0.5, 0, 0.5])
        #expect(s.zeroFraction == 2.0 / 7.0)
        #expect(s.min == -0.5 && s.max == 0.5)
    }

    @Test func moreThanSixteenValuesHasNoLevels() {
        let t = Tensor(floats: (0..<17).map(Float.init), shape: [17])
        #expect(TensorStatistics.of(t).levels == nil)
        #expect(TensorStatistics.of(Tensor(floats: (0..<16).map(Float.init), shape: [16])).levels?.count == 16)
    }

    /// Complex values are summarised by modulus (the imaginary part used to be ignored).
    @Test(arguments: [DType.complex64, .complex128])
    func complexStatisticsUseTheModulus(dtype: DType) throws {
        let parts: [(Double, Double)] = [(3, 4), (0, 0), (.nan, 1), (-0.0, 2), (0, -5)]
        var bytes: [UInt8] = []
        for (re, im) in parts {
            for v in [re, im] {
                if dtype == .complex64 {
                    withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes += $0 }
                } else {
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
                }
            }
        }
        let t = try Tensor(dtype: dtype, shape: [5], data: ByteSlice(bytes))
        #expect(t.imaginaryPart(0) == 4 && t.imaginaryPart(4) == -5)
        let s = TensorStatistics.of(t)
        #expect(s.ofModulus)
        #expect(s.count == 5 && s.nanCount == 1)
        #expect(s.zeroFraction == 0.2)
        #expect(s.min == 0 && s.max == 5)
        #expect(s.mean == 3)  // (5 + 0 + 2 + 5) / 4
        #expect(s.levels == [0, 2, 5])
        #expect(!TensorStatistics.of(Tensor(floats: [1], shape: [1])).ofModulus)
    }
}
