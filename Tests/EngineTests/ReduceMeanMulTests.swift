import Tensors
import TestSupport
import Testing

@testable import Engine

/// ``Op/reduceMean(axes:keepDims:)`` and ``Op/mul`` (what an imported XNOR `fm_custom`
/// activation runs on): the fast kernels against their naive twins, and the fast executor
/// against the reference interpreter. `XnorONNXFormTests` (ModelsTests) checks the XNOR
/// scaling built from them against the XNOR quantizer bit for bit.
@Suite struct ReduceMeanMulTests {
    static let seeds = Array(0..<8 as Range<UInt64>)

    static func reduceMean(_ x: [Float], shape: [Int], axes: [Int], threads: Int) throws -> [Float] {
        let g = try ShapeInference.reduce(axes, input: shape)
        return Fast.unary(x, outputCount: g.outer * g.inner) { ReduceMean.forward(g, input: $0, output: $1, threads: threads) }
    }

    static func mul(_ a: [Float], _ sa: [Int], _ b: [Float], _ sb: [Int], threads: Int) throws -> [Float] {
        let out = try ShapeInference.broadcast(sa, sb)
        let g = BroadcastGeometry(a: sa, b: sb, output: out)
        return Fast.unary(a, outputCount: out.reduce(1, *)) { pa, py in
            b.withUnsafeBufferPointer { pb in BroadcastMul.forward(g, pa, pb, output: py, threads: threads) }
        }
    }

    /// Random shapes of rank 1...4, every run of adjacent axes; some big enough to split over threads.
    @Test(arguments: seeds, [1, 2])
    func reduceMeanMatchesItsTwin(seed: UInt64, threads: Int) throws {
        var rng = SplitMix64(seed: seed)
        let rank = rng.int(1...4)
        let shape = (0..<rank).map { _ in seed % 2 == 0 ? rng.int(1...7) : rng.int(1...40) }
        let x = rng.floats(shape.reduce(1, *), -2, 2)
        for lo in 0..<rank {
            for hi in lo..<rank {
                let axes = Array(lo...hi)
                let fast = try Self.reduceMean(x, shape: shape, axes: axes, threads: threads)
                let slow = ReferenceKernels.reduceMean(x, shape: shape, axes: axes)
                #expect(Difference(fast, slow).maxAbs <= 2e-6, "\(shape) axes \(axes): \(Difference(fast, slow))")
            }
        }
    }

    /// NumPy broadcasting in both directions (and both at once); multiplication is exact, so
    /// bit-identical to the twin. With `a` full, the kernel may write over `a` itself.
    @Test(arguments: seeds, [1, 2])
    func mulMatchesItsTwin(seed: UInt64, threads: Int) throws {
        var rng = SplitMix64(seed: seed)
        let full = [rng.int(1...3), rng.int(1...9), rng.int(1...12), seed % 2 == 0 ? rng.int(1...12) : rng.int(200...400)]
        let shapes: [([Int], [Int])] = [
            (full, full), (full, [full[0], 1, full[2], full[3]]), (full, [full[0], full[1], 1, 1]),
            ([full[1], 1, 1], full), (full, [1]), ([full[0], 1, full[2], full[3]], [full[0], full[1], 1, 1]),
            (Array(full.suffix(2)), full),
        ]
        for (sa, sb) in shapes {
            let a = rng.floats(sa.reduce(1, *)), b = rng.floats(sb.reduce(1, *))
            let fast = try Self.mul(a, sa, b, sb, threads: threads)
            let slow = ReferenceKernels.mul(a, sa, b, sb)
            #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern), "\(sa) * \(sb)")
        }
        let sb = [full[0], 1, full[2], full[3]]
        let b = rng.floats(sb.reduce(1, *))
        var a = rng.floats(full.reduce(1, *))
        let want = ReferenceKernels.mul(a, full, b, sb)
        let g = BroadcastGeometry(a: full, b: sb, output: full)
        #expect(g.aIsFull && g.bIsFull == (full[1] == 1))
        a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in BroadcastMul.forward(g, UnsafeBufferPointer(pa), pb, output: pa, threads: threads) }
        }
        #expect(a == want, "in place")
    }
}
