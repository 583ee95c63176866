import Engine
import Tensors
import TestSupport
import Testing

/// The packed GEMM (C micro-kernels) against the naive GEMM twin.
@Suite struct PackedGemmTests {
    /// Shapes around the tile and block edges: rows around the 6-row panel, columns around
    /// the 16-wide strip and the 384-column block, depth around the 256-deep block.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (5, 15, 3), (6, 16, 256), (7, 17, 257), (13, 49, 600), (64, 400, 64), (121, 33, 255),
        (12, 385, 9),
    ]

    /// `act(a * b + add + bias)` by the naive twin.
    static func expected(
        m: Int, n: Int, k: Int, a: [Float], b: [Float], add: [Float]?, bias: [Float]?, activation: Activation
    ) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        ReferenceKernels.gemm(m: m, n: n, k: k, a: a, b: b, c: &c)
        for i in 0..<m {
            for j in 0..<n {
                c[i * n + j] = activation.apply(c[i * n + j] + (add?[i * n + j] ?? 0) + (bias?[i] ?? 0))
            }
        }
        return c
    }

    @Test(arguments: shapes, [0, 1, 2, 3])
    func multiplyMatchesReference(shape: (Int, Int, Int), variant: Int) {
        let (m, n, k) = shape
        var rng = SplitMix64(seed: UInt64(m * 100_000 + n * 100 + k + variant))
        let a = rng.floats(m * k), b = rng.floats(k * n)
        let bias: [Float]? = variant & 1 == 1 ? rng.floats(m) : nil
        let add: [Float]? = variant & 2 == 2 ? rng.floats(m * n) : nil
        let act: Activation = [.none, .relu, .clamp(lo: -0.5, hi: 0.25), .relu][variant]
        let want = Self.expected(m: m, n: n, k: k, a: a, b: b, add: add, bias: bias, activation: act)
        let c = Self.multiply(m: m, n: n, k: k, a: a, b: b, add: add, bias: bias, activation: act)
        let d = Difference(c, want)
        #expect(d.maxAbs <= 2e-6 * Float(k).squareRoot() * 4, "\(shape) variant \(variant): \(d)")
    }

    /// `PackedGemm.multiply` of `a [m, k]` (packed here) and `b [k, n]` with the epilogue's
    /// residual `add` (accumulated in place: C starts as `add` and is its own addend), `bias`
    /// and `activation`.
    static func multiply(
        m: Int, n: Int, k: Int, a: [Float], b: [Float], add: [Float]?, bias: [Float]?, activation: Activation
    ) -> [Float] {
        var c = add ?? [Float](repeating: .nan, count: m * n)
        let packed = PackedGemm.pack(a, rows: m, depth: k)
        let biasValues = bias ?? []
        packed.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                biasValues.withUnsafeBufferPointer { pbias in
                    c.withUnsafeMutableBufferPointer { pc in
                        PackedGemm.multiply(
                            rows: m, columns: n, depth: k, packedA: pa.baseAddress!, b: pb.baseAddress!, ldb: n,
                            c: pc.baseAddress!, ldc: n,
                            epilogue: PackedGemm.Epilogue(
                                add: add == nil ? nil : UnsafePointer(pc.baseAddress!),
                                bias: bias == nil ? nil : pbias.baseAddress, activation: activation))
                    }
                }
            }
        }
        return c
    }

    @Test(arguments: [false, true], [1, 7, 300])
    func microKernelsMatchReference(portable: Bool, depth: Int) {
        var rng = SplitMix64(seed: UInt64(depth) + (portable ? 1000 : 0))
        let rows = PackedGemm.panelRows
        let a = rng.floats(rows * depth), b = rng.floats(depth * 16)  // a: [depth][rows], b: [depth][16]
        let add = rng.floats(rows * 16), bias = rng.floats(rows)
        // The same product from row-major copies by the naive twin.
        var aRows = [Float](repeating: 0, count: rows * depth)
        for p in 0..<depth { for r in 0..<rows { aRows[r * depth + p] = a[p * rows + r] } }
        let want = Self.expected(m: rows, n: 16, k: depth, a: aRows, b: b, add: add, bias: bias, activation: .relu)
        let got = PackedGemm.tile(portable: portable, depth: depth, a: a, b: b, add: add, bias: bias, activation: .relu)
        let d = Difference(got, want)
        #expect(d.maxAbs <= 1e-5 * Float(depth).squareRoot(), "\(d)")
    }

    @Test func nanPassesThroughTheClamp() {
        let rows = PackedGemm.panelRows
        var a = [Float](repeating: 1, count: rows)
        a[2] = .nan
        let b = [Float](repeating: 1, count: 16)
        for portable in [false, true] {
            let got = PackedGemm.tile(portable: portable, depth: 1, a: a, b: b, add: nil, bias: nil, activation: .relu)
            #expect(got[2 * 16].isNaN && got[0] == 1, "portable \(portable)")
        }
    }

    @Test func packLayout() {
        // 7 x 2 matrix, element (r, p) = 10r + p: two panels, the second padded with zeros.
        let a = (0..<14).map { Float(($0 / 2) * 10 + $0 % 2) }
        let p = PackedGemm.pack(a, rows: 7, depth: 2)
        #expect(p.count == 24)
        #expect(Array(p[0..<6]) == [0, 10, 20, 30, 40, 50])
        #expect(Array(p[6..<12]) == [1, 11, 21, 31, 41, 51])
        #expect(Array(p[12..<24]) == [60, 0, 0, 0, 0, 0, 61, 0, 0, 0, 0, 0])
    }
}
