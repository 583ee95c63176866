/// The fast float32 statistics loop (the only unsafe code of the statistics path).
///
/// Layout: contiguous little-endian float32 (the host order on every platform qtools runs on).
/// Blocks of 4096 values are reduced in Float-free Double accumulators; distinct values are
/// tracked only until more than 16 are seen. Naive twin: ``TensorStatistics/reference(_:)``.
enum StatisticsKernel {
    static func accumulateFloat32(_ data: ByteSlice, into acc: inout Accumulator) {
        let n = data.count / 4
        unsafe data.withUnsafeBytes { raw in
            var i = 0
            while i < n {
                let end = Swift.min(n, i + 4096)
                var lo = Float.infinity, hi = -Float.infinity
                var sum = 0.0, sumSq = 0.0
                var zeros = 0, nans = 0
                for j in i..<end {
                    let v = unsafe raw.loadUnaligned(fromByteOffset: j * 4, as: Float.self)
                    if v.isNaN { nans += 1; continue }
                    if v == 0 { zeros += 1 }
                    lo = Swift.min(lo, v)
                    hi = Swift.max(hi, v)
                    let d = Double(v)
                    sum += d
                    sumSq += d * d
                }
                acc.count += end - i
                acc.nan += nans
                acc.zeros += zeros
                if Double(lo) < acc.lo { acc.lo = Double(lo) }
                if Double(hi) > acc.hi { acc.hi = Double(hi) }
                acc.sum += sum
                acc.sumSq += sumSq
                if !acc.tooMany {
                    for j in i..<end {
                        let v = unsafe raw.loadUnaligned(fromByteOffset: j * 4, as: Float.self)
                        if v.isNaN { continue }
                        let d = Double(v)
                        if !acc.distinct.contains(d) {
                            if acc.distinct.count == TensorStatistics.maxLevels {
                                acc.tooMany = true
                                acc.distinct = []
                                break
                            }
                            acc.distinct.append(d)
                        }
                    }
                }
                i = end
            }
        }
    }
}
