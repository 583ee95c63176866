/// The largest absolute difference between two float arrays and where it is.
public struct Difference: CustomStringConvertible, Sendable {
    /// Max |a - b|.
    public var maxAbs: Float
    /// Index of the max.
    public var index: Int
    /// Values at that index.
    public var a: Float, b: Float
    public var description: String { "max |a-b| = \(maxAbs) at [\(index)] (a=\(a), b=\(b))" }

    /// Compares element-wise (precondition: equal counts).
    public init(_ x: [Float], _ y: [Float]) {
        precondition(x.count == y.count, "count \(x.count) vs \(y.count)")
        maxAbs = 0; index = 0; a = x.first ?? 0; b = y.first ?? 0
        for i in 0..<x.count {
            let d = abs(x[i] - y[i])
            if d > maxAbs || d.isNaN { maxAbs = d; index = i; a = x[i]; b = y[i] }
        }
    }

    /// True when every |a-b| <= atol + rtol*|b|.
    public static func close(_ x: [Float], _ y: [Float], rtol: Float = 0, atol: Float) -> Bool {
        guard x.count == y.count else { return false }
        for i in 0..<x.count where !(abs(x[i] - y[i]) <= atol + rtol * abs(y[i])) { return false }
        return true
    }
}
