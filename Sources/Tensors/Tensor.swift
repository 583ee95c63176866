/// A dense tensor: dtype, shape and contiguous little-endian row-major bytes.
///
/// The bytes may be a window into a memory-mapped file (no copy) or owned memory.
public struct Tensor: Sendable {
    /// Element type.
    public var dtype: DType
    /// Dimensions, row-major; `[]` is a scalar.
    public var shape: [Int]
    /// Exactly `elementCount * dtype.byteWidth` bytes.
    public var data: ByteSlice

    /// Wraps `data`; the byte count must match the shape.
    public init(dtype: DType, shape: [Int], data: ByteSlice) throws(ShapeError) {
        let need = try Shapes.byteCount(shape, dtype)
        guard need == data.count else { throw .overflow(shape) }
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// A float32 tensor from values (precondition: `values.count` matches `shape`).
    public init(floats values: [Float], shape: [Int]) {
        precondition((try? Shapes.elementCount(shape)) == values.count, "shape/value count mismatch")
        self.dtype = .float32
        self.shape = shape
        self.data = ByteSlice(Tensor.littleEndianBytes(values))
    }

    /// The little-endian float32 bytes of `values` (4 per value; one bulk copy on
    /// little-endian hosts).
    public static func littleEndianBytes(_ values: [Float]) -> [UInt8] {
        #if _endian(little)
            return unsafe values.withUnsafeBytes { unsafe [UInt8]($0) }
        #else
            var bytes = [UInt8]()
            bytes.reserveCapacity(values.count * 4)
            for v in values {
                let b = v.bitPattern
                bytes.append(UInt8(truncatingIfNeeded: b))
                bytes.append(UInt8(truncatingIfNeeded: b >> 8))
                bytes.append(UInt8(truncatingIfNeeded: b >> 16))
                bytes.append(UInt8(truncatingIfNeeded: b >> 24))
            }
            return bytes
        #endif
    }

    /// Number of elements.
    public var elementCount: Int { data.count / dtype.byteWidth }

    /// Byte count.
    public var byteCount: Int { data.count }
}
