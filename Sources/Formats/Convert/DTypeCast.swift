import Tensors

/// `--dtype`: casts floating tensors to float16, bfloat16 or float32 and measures the error.
///
/// Rounding is to nearest, ties to even, as torch's `.half()`, `.bfloat16()` and `.float()`:
/// ```
/// y = round_to_target(x)          (float64 sources: x → float32 → target)
/// error = max over elements |y − x|   (computed in float64)
/// ```
/// A finite value beyond the target's range becomes ±inf (an *overflow*; its error is inf).
/// NaN stays NaN and counts no error; ±inf stays ±inf with error 0. Integer and bool tensors
/// (quantizer `codec_index` int32, `num_batches_tracked` int64, ...) are never cast.
public enum DTypeCast {
    /// The types `--dtype` accepts.
    public static let targets: [DType] = [.float16, .bfloat16, .float32]

    /// What casting one tensor did.
    public struct Outcome: Sendable {
        /// The cast tensor.
        public var tensor: Tensor
        /// max |cast − original| over the elements (0 for an empty tensor; inf on overflow).
        public var maxAbsError: Double
        /// Finite elements that became ±inf.
        public var overflows: Int
    }

    /// True when `dtype` is a floating type `cast` converts (complex types are not).
    public static func isCastable(_ dtype: DType) -> Bool { dtype.isFloatingPoint }

    /// Casts a floating tensor to `target` (precondition: both are floating, target in ``targets``).
    /// - Throws: `ShapeError` only if the tensor's shape is inconsistent (a bug).
    public static func cast(_ t: Tensor, to target: DType) throws -> Outcome {
        precondition(isCastable(t.dtype) && targets.contains(target), "cast \(t.dtype) to \(target)")
        let n = t.elementCount
        var bytes = [UInt8](repeating: 0, count: n * target.byteWidth)
        var maxError = 0.0
        var overflows = 0
        let sourceFloats: [Float]? = t.dtype == .float32 ? t.floats() : nil
        for i in 0..<n {
            let x: Double = sourceFloats.map { Double($0[i]) } ?? t.element(i)
            let f = Float(x)
            let y: Double
            switch target {
            case .float16:
                let h = Elements.floatToHalf(f)
                bytes[2 * i] = UInt8(truncatingIfNeeded: h)
                bytes[2 * i + 1] = UInt8(truncatingIfNeeded: h >> 8)
                y = Double(Elements.halfToFloat(h))
            case .bfloat16:
                let b = Elements.floatToBFloat16(f)
                bytes[2 * i] = UInt8(truncatingIfNeeded: b)
                bytes[2 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
                y = Double(Elements.bfloat16ToFloat(b))
            default:
                let u = f.bitPattern
                for k in 0..<4 { bytes[4 * i + k] = UInt8(truncatingIfNeeded: u >> (8 * UInt32(k))) }
                y = Double(f)
            }
            if x.isNaN || x == y { continue }
            if x.isFinite && y.isInfinite { overflows += 1 }
            let e = abs(y - x)
            if e > maxError { maxError = e }
        }
        let out = try Tensor(dtype: target, shape: t.shape, data: ByteSlice(bytes))
        return Outcome(tensor: out, maxAbsError: maxError, overflows: overflows)
    }
}
