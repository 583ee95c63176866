/// PyTorch CPU reductions, in PyTorch's summation order.
///
/// `sum` follows ATen `SumKernel.cpp` for a contiguous row on an AVX2 build with one thread:
/// rows of at least 8 elements are read as 8-lane vectors, the vectors as a `(-1, 4)` array
/// summed by `multi_row_sum` (four cascade levels of `2^max(4, ⌈log2 n⌉/4)` steps), the tail
/// vectors into lane set 0, the four lane sets together, then the scalar tail and the 8 lanes in
/// order; shorter rows take the same path with 1 lane. Means are `sum / n` in float32 (CPU
/// `mean` is `sum().div_(n)`). `meanStd` is ATen's `std_mean` (sequential Welford in double,
/// unbiased, rounded to float). ``ReferenceReductions`` holds the plain double-precision twins.
package enum TorchReduction {
    /// `torch.sum` of a contiguous float32 row.
    package static func sum(_ v: ArraySlice<Float>) -> Float {
        let lanes = v.count >= 8 ? 8 : 1
        let vectorCount = v.count / lanes
        let base = v.startIndex
        // Lane-wise vector accumulators: acc[level][ilp][lane].
        let ilp = 4
        let levels = 4
        let rows = vectorCount / ilp
        let power = max(4, ceilLog2(rows) / levels)
        let step = 1 << power
        let mask = step - 1
        var acc = [[[Float]]](
            repeating: [[Float]](repeating: [Float](repeating: 0, count: lanes), count: ilp),
            count: levels)
        func addRow(_ r: Int) {
            for k in 0..<ilp {
                let start = base + (r * ilp + k) * lanes
                for l in 0..<lanes { acc[0][k][l] += v[start + l] }
            }
        }
        var i = 0
        while i + step <= rows {
            for _ in 0..<step {
                addRow(i)
                i += 1
            }
            for j in 1..<levels {
                for k in 0..<ilp {
                    for l in 0..<lanes { acc[j][k][l] += acc[j - 1][k][l] }
                    acc[j - 1][k] = [Float](repeating: 0, count: lanes)
                }
                if i & (mask << (j * power)) != 0 { break }
            }
        }
        while i < rows {
            addRow(i)
            i += 1
        }
        for j in 1..<levels {
            for k in 0..<ilp { for l in 0..<lanes { acc[0][k][l] += acc[j][k][l] } }
        }
        var partial = acc[0]
        for t in (rows * ilp)..<vectorCount {
            for l in 0..<lanes { partial[0][l] += v[base + t * lanes + l] }
        }
        for k in 1..<ilp { for l in 0..<lanes { partial[0][l] += partial[k][l] } }
        if lanes == 1 { return partial[0][0] }
        var total: Float = 0
        for t in (vectorCount * lanes)..<v.count { total += v[base + t] }
        for l in 0..<lanes { total += partial[0][l] }
        return total
    }

    /// `torch.mean` of a contiguous float32 row: `sum / n`.
    package static func mean(_ v: ArraySlice<Float>) -> Float { sum(v) / Float(v.count) }

    /// `torch.std_mean(v)` (unbiased): sequential Welford in double, rounded to float.
    package static func meanStd(_ v: ArraySlice<Float>) -> (mean: Float, std: Float) {
        var n = 0.0
        var mean = 0.0
        var m2 = 0.0
        for x in v {
            let d = Double(x)
            n += 1
            let delta = d - mean
            mean += delta / n
            m2 += delta * (d - mean)
        }
        return (Float(mean), Float((m2 / (n - 1)).squareRoot()))
    }

    static func ceilLog2(_ x: Int) -> Int {
        guard x > 1 else { return 0 }
        return Int.bitWidth - (x - 1).leadingZeroBitCount
    }
}

/// Plain double-precision reductions: the obviously-correct twins of ``TorchReduction``.
package enum ReferenceReductions {
    /// Σ v in double, rounded once.
    package static func sum(_ v: ArraySlice<Float>) -> Float { Float(v.reduce(0.0) { $0 + Double($1) }) }
    /// Two-pass mean and unbiased standard deviation in double.
    package static func meanStd(_ v: ArraySlice<Float>) -> (mean: Float, std: Float) {
        let n = Double(v.count)
        let mean = v.reduce(0.0) { $0 + Double($1) } / n
        let ss = v.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
        return (Float(mean), Float((ss / (n - 1)).squareRoot()))
    }
}
