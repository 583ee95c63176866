/// Errors raised by shape arithmetic on untrusted dimensions.
public enum ShapeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A dimension was negative.
    case negativeDimension(Int)
    /// The element or byte count does not fit in an `Int`.
    case overflow([Int])

    public var description: String {
        switch self {
        case .negativeDimension(let d): return "negative dimension \(d)"
        case .overflow(let dims): return "element count of shape \(dims) overflows"
        }
    }
}

/// Shape helpers over plain `[Int]` dimension lists (row-major, C order).
public enum Shapes {
    /// Product of the dimensions with overflow and sign checks; `[]` (a scalar) has 1 element.
    public static func elementCount(_ dims: [Int]) throws(ShapeError) -> Int {
        var n = 1
        for d in dims {
            guard d >= 0 else { throw .negativeDimension(d) }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw .overflow(dims) }
            n = p
        }
        return n
    }

    /// Byte count of `dims` elements of `dtype`, overflow-checked.
    public static func byteCount(_ dims: [Int], _ dtype: DType) throws(ShapeError) -> Int {
        let n = try elementCount(dims)
        let (b, o) = n.multipliedReportingOverflow(by: dtype.byteWidth)
        guard !o else { throw .overflow(dims) }
        return b
    }

    /// Row-major (contiguous) strides in elements.
    public static func contiguousStrides(_ dims: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: dims.count)
        var acc = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc = acc &* max(dims[i], 1)  // wrapping: a zero dim elsewhere can make huge dims legal
        }
        return strides
    }

    /// `[64, 3, 3, 3]`: the form used in listings and `keys.txt`.
    public static func describe(_ dims: [Int]) -> String {
        "[" + dims.map(String.init).joined(separator: ",") + "]"
    }
}
