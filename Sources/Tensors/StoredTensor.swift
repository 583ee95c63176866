/// A tensor as a checkpoint stores it: a view (offset, shape, strides) into a storage.
///
/// Several `StoredTensor`s may share one storage (torch views, tied weights); `storageKey`
/// identifies it within one file. Bounds are validated by ``init(storage:storageKey:dtype:shape:strides:storageOffset:)``,
/// so ``materialize()`` never reads outside the storage.
public struct StoredTensor: Sendable {
    /// The whole storage's bytes.
    public let storage: ByteSlice
    /// Identifies the storage inside its file (torch record key, safetensors tensor name).
    public let storageKey: String
    /// Element type.
    public let dtype: DType
    /// Logical dimensions.
    public let shape: [Int]
    /// Element strides (may be non-contiguous, zero for broadcasts).
    public let strides: [Int]
    /// Offset of element 0 in the storage, in elements.
    public let storageOffset: Int
    /// `requires_grad` as saved (torch only).
    public var requiresGrad: Bool = false
    /// Saved as `torch.nn.Parameter` (torch only).
    public var isParameter: Bool = false

    /// Why a view does not fit its storage.
    public enum ViewError: Error, Equatable, Sendable, CustomStringConvertible {
        case rankMismatch(shape: Int, strides: Int)
        case negative(String)
        case outOfBounds(lastByte: Int, storageBytes: Int)
        case shape(ShapeError)
        public var description: String {
            switch self {
            case .rankMismatch(let s, let t): return "shape has \(s) dims but strides \(t)"
            case .negative(let what): return "negative \(what)"
            case .outOfBounds(let last, let n):
                return "view reaches byte \(last) but the storage has \(n) bytes"
            case .shape(let e): return e.description
            }
        }
    }

    /// Validates and creates a view.
    public init(
        storage: ByteSlice, storageKey: String, dtype: DType, shape: [Int], strides: [Int],
        storageOffset: Int
    ) throws(ViewError) {
        guard shape.count == strides.count else {
            throw .rankMismatch(shape: shape.count, strides: strides.count)
        }
        guard storageOffset >= 0 else { throw .negative("storage offset \(storageOffset)") }
        if let s = strides.first(where: { $0 < 0 }) { throw .negative("stride \(s)") }
        let n: Int
        do { n = try Shapes.elementCount(shape) } catch { throw .shape(error) }
        if n > 0 {
            // Highest element index touched, overflow-checked.
            var last = storageOffset
            for (d, s) in zip(shape, strides) {
                let (m, o1) = (d - 1).multipliedReportingOverflow(by: s)
                let (a, o2) = last.addingReportingOverflow(m)
                guard !o1, !o2 else { throw .shape(.overflow(shape)) }
                last = a
            }
            let (next, o0) = last.addingReportingOverflow(1)
            let (endByte, o) = next.multipliedReportingOverflow(by: dtype.byteWidth)
            guard !o0, !o, endByte <= storage.count else {
                throw .outOfBounds(lastByte: o || o0 ? Int.max : endByte, storageBytes: storage.count)
            }
        }
        self.storage = storage
        self.storageKey = storageKey
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
    }

    /// Element count.
    public var elementCount: Int { shape.contains(0) ? 0 : shape.reduce(1, *) }

    /// Bytes of the materialised tensor.
    public var byteCount: Int { elementCount * dtype.byteWidth }

    /// True when the view is row-major contiguous (any offset).
    public var isContiguous: Bool {
        let c = Shapes.contiguousStrides(shape)
        for i in 0..<shape.count where shape[i] != 1 && strides[i] != c[i] { return false }
        return true
    }

    /// The dense tensor. Contiguous views share the storage bytes (no copy); others are copied.
    public func materialize() -> Tensor {
        let w = dtype.byteWidth
        let n = elementCount
        if isContiguous || n == 0 {
            let start = storageOffset * w
            let slice = n == 0 ? ByteSlice([]) : storage.slice(start..<(start + n * w))
            // Safe: the byte count equals the shape's by construction.
            return Tensor(unchecked: dtype, shape: shape, data: slice)
        }
        var out = [UInt8](repeating: 0, count: n * w)
        var index = [Int](repeating: 0, count: shape.count)
        var src = storageOffset
        unsafe storage.withUnsafeBytes { raw in
            for e in 0..<n {
                let so = src * w
                let dst = e * w
                for k in 0..<w { out[dst + k] = unsafe raw[so + k] }
                // advance the multi-index (last dim fastest)
                var d = shape.count - 1
                while d >= 0 {
                    index[d] += 1
                    src += strides[d]
                    if index[d] < shape[d] { break }
                    src -= strides[d] * shape[d]
                    index[d] = 0
                    d -= 1
                }
            }
        }
        return Tensor(unchecked: dtype, shape: shape, data: ByteSlice(out))
    }

    /// A contiguous view over a dense tensor (storage = the tensor's bytes).
    public init(_ tensor: Tensor, key: String) {
        self.storage = tensor.data
        self.storageKey = key
        self.dtype = tensor.dtype
        self.shape = tensor.shape
        self.strides = Shapes.contiguousStrides(tensor.shape)
        self.storageOffset = 0
    }
}

extension Tensor {
    /// Internal initialiser for byte counts already known to match.
    init(unchecked dtype: DType, shape: [Int], data: ByteSlice) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }
}
