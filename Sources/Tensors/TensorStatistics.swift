/// Summary statistics of a tensor's values, as `qtools inspect --stats` prints them.
///
/// Mean and standard deviation are population statistics (divide by n) accumulated in
/// Double. NaNs are counted apart and excluded from min/max/mean/std. `levels` holds the
/// sorted distinct values when there are at most ``TensorStatistics/maxLevels`` of them,
/// so a quantized weight shows its levels (e.g. `[-1, 0, 1]` times a scale). Complex tensors
/// are summarised by their modulus `|z|` (``ofModulus``): an element is NaN when either part
/// is, zero when both are.
public struct TensorStatistics: Sendable, Equatable, Codable {
    /// Largest number of distinct values reported as `levels`.
    public static let maxLevels = 16

    /// Elements examined.
    public var count: Int = 0
    /// Minimum (ignoring NaN); nil when there is no finite-or-infinite value.
    public var min: Double?
    /// Maximum (ignoring NaN).
    public var max: Double?
    /// Mean of non-NaN values.
    public var mean: Double?
    /// Population standard deviation of non-NaN values.
    public var std: Double?
    /// Fraction of elements equal to zero.
    public var zeroFraction: Double = 0
    /// NaN count.
    public var nanCount: Int = 0
    /// Sorted distinct values, when there are at most `maxLevels`.
    public var levels: [Double]?
    /// True for a complex tensor: every statistic is of `|z|`, not of the real part.
    public var ofModulus = false

    /// Creates empty statistics.
    public init() {}

    /// Statistics of a dense tensor (fast path for float32; complex values by modulus).
    public static func of(_ t: Tensor) -> TensorStatistics {
        if t.dtype.isComplex { return reference(t) }
        var acc = Accumulator()
        if t.dtype == .float32 {
            StatisticsKernel.accumulateFloat32(t.data, into: &acc)
        } else {
            for i in 0..<t.elementCount { acc.add(t.element(i)) }
        }
        return acc.result()
    }

    /// The naive twin of ``of(_:)``: decodes every element through ``Tensor/element(_:)``
    /// (and ``Tensor/imaginaryPart(_:)`` for complex tensors).
    public static func reference(_ t: Tensor) -> TensorStatistics {
        var acc = Accumulator()
        if t.dtype.isComplex {
            for i in 0..<t.elementCount {
                let re = t.element(i), im = t.imaginaryPart(i)
                acc.add(re.isNaN || im.isNaN ? .nan : (re * re + im * im).squareRoot())
            }
            var s = acc.result()
            s.ofModulus = true
            return s
        }
        for i in 0..<t.elementCount { acc.add(t.element(i)) }
        return acc.result()
    }
}

/// Running sums for ``TensorStatistics``.
struct Accumulator {
    var count = 0
    var nan = 0
    var zeros = 0
    var lo = Double.infinity
    var hi = -Double.infinity
    var sum = 0.0
    var sumSq = 0.0
    var distinct: [Double] = []
    var tooMany = false

    @inline(__always)
    mutating func add(_ v: Double) {
        count += 1
        if v.isNaN {
            nan += 1
            return
        }
        if v == 0 { zeros += 1 }
        if v < lo { lo = v }
        if v > hi { hi = v }
        sum += v
        sumSq += v * v
        if !tooMany, !distinct.contains(v) {
            if distinct.count == TensorStatistics.maxLevels {
                tooMany = true; distinct = []
            } else {
                distinct.append(v)
            }
        }
    }

    func result() -> TensorStatistics {
        var s = TensorStatistics()
        s.count = count
        s.nanCount = nan
        s.zeroFraction = count == 0 ? 0 : Double(zeros) / Double(count)
        let n = count - nan
        if n > 0 {
            s.min = lo
            s.max = hi
            let m = sum / Double(n)
            s.mean = m
            s.std = (Swift.max(0, sumSq / Double(n) - m * m)).squareRoot()
            if !tooMany { s.levels = distinct.sorted() }
        }
        return s
    }
}
