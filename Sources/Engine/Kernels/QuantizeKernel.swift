/// The ``Op/quantize(_:)`` kernel: copies the input out of the arena, runs the op's
/// ``QuantizeFunction`` (the same function the reference interpreter calls), and writes the
/// result.
///
/// Functions are element-wise or need per-sample / per-group statistics, so the whole tensor
/// is handed over at once. The shape was
/// checked at plan time (``QuantizeAttributes/check(shape:)``), so a failure here is a bug.
enum QuantizeKernel {
    static func forward(
        _ q: QuantizeAttributes, shape: [Int], input: UnsafeBufferPointer<Float>,
        output: UnsafeMutableBufferPointer<Float>, threads: Int = 1
    ) {
        let x = unsafe Array(input)
        let y: [Float]
        do {
            y = try q.apply(x, shape: shape, threads: threads)
        } catch {
            preconditionFailure("quantize function \(q.name) failed after plan-time check: \(error)")
        }
        precondition(y.count == output.count)
        unsafe y.withUnsafeBufferPointer { unsafe output.baseAddress!.update(from: $0.baseAddress!, count: y.count) }
    }
}
