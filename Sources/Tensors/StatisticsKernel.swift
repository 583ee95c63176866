/// The fast float32 statistics loop (the only unsafe code of the statistics path).
///
/// Layout: contiguous little-endian float32 (the host order on every platform qtools runs on),
/// any alignment (loads are unaligned). Per block of 1024 values, min/max/zero counts use 8-wide
/// SIMD lanes and the sums use 8 float lanes (a block holding a NaN is redone by a scalar loop) (a 1024-value partial sum in float has a relative
/// error near 1e-6, far below what `--stats` prints); block sums are added in Double.
/// Distinct values are tracked only until more than 16 are seen.
/// Naive twin: ``TensorStatistics/reference(_:)``.
enum StatisticsKernel {
    static let block = 1024

    static func accumulateFloat32(_ data: ByteSlice, into acc: inout Accumulator) {
        let n = data.count / 4
        unsafe data.withUnsafeBytes { raw in
            var i = 0
            while i < n {
                let end = Swift.min(n, i + block)
                var lo = SIMD8<Float>(repeating: .infinity)
                var hi = SIMD8<Float>(repeating: -.infinity)
                var sum = SIMD8<Float>(), sumSq = SIMD8<Float>()
                var zeros = SIMD8<Int32>()
                var j = i
                // NaN-oblivious fast loop; a NaN poisons `sum`, and then the block is redone
                // by the scalar loop below, which skips NaNs.
                while j + 8 <= end {
                    let v = unsafe raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
                    lo.replace(with: v, where: v .< lo)
                    hi.replace(with: v, where: v .> hi)
                    sum += v
                    sumSq += v * v
                    // A true mask lane is all ones (-1 as Int32).
                    zeros &-= unsafe unsafeBitCast(v .== 0, to: SIMD8<Int32>.self)
                    j += 8
                }
                var blockSum = Double(sum.sum()), blockSumSq = Double(sumSq.sum())
                var blockLo = lo.min(), blockHi = hi.max()
                var z = Int(zeros.wrappedSum()), nn = 0
                if blockSum.isNaN || blockSumSq.isNaN {
                    // Redo the whole block by the scalar path (NaNs present, or inf - inf).
                    blockSum = 0; blockSumSq = 0; blockLo = .infinity; blockHi = -.infinity; z = 0
                    j = i
                }
                while j < end {
                    let v = unsafe raw.loadUnaligned(fromByteOffset: j * 4, as: Float.self)
                    j += 1
                    if v.isNaN { nn += 1; continue }
                    if v == 0 { z += 1 }
                    blockLo = Swift.min(blockLo, v)
                    blockHi = Swift.max(blockHi, v)
                    blockSum += Double(v)
                    blockSumSq += Double(v) * Double(v)
                }
                acc.count += end - i
                acc.nan += nn
                acc.zeros += z
                if nn < end - i {
                    acc.lo = Swift.min(acc.lo, Double(blockLo))
                    acc.hi = Swift.max(acc.hi, Double(blockHi))
                }
                acc.sum += blockSum
                acc.sumSq += blockSumSq
                if !acc.tooMany { unsafe trackDistinct(raw, i, end, &acc) }
                i = end
            }
        }
    }

    private static func trackDistinct(
        _ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ acc: inout Accumulator
    ) {
        for j in start..<end {
            let v = unsafe raw.loadUnaligned(fromByteOffset: j * 4, as: Float.self)
            if v.isNaN { continue }
            let d = Double(v)
            if acc.distinct.contains(d) { continue }
            if acc.distinct.count == TensorStatistics.maxLevels {
                acc.tooMany = true
                acc.distinct = []
                return
            }
            acc.distinct.append(d)
        }
    }
}
