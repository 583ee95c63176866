import Tensors

/// Name tables: torch storage classes and dtype globals to qtools' ``DType`` (formats.md §A.4).
enum TorchTypeNames {
    /// What a storage class holds.
    enum StorageKind: Equatable {
        /// A typed (legacy) storage: numel counts elements of this dtype.
        case typed(DType)
        /// `UntypedStorage` / `TypedStorage`: numel counts bytes; the dtype comes from the rebuild.
        case untyped
    }

    /// Storage class (last name component) to element type. Quantized storages map to their
    /// integer representation (`QUInt4x2`/`QUInt2x4` pack several values per byte).
    static let storages: [String: DType] = [
        "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16,
        "BFloat16Storage": .bfloat16, "LongStorage": .int64, "IntStorage": .int32,
        "ShortStorage": .int16, "CharStorage": .int8, "ByteStorage": .uint8, "BoolStorage": .bool,
        "ComplexFloatStorage": .complex64, "ComplexDoubleStorage": .complex128,
        "QInt8Storage": .int8, "QUInt8Storage": .uint8, "QInt32Storage": .int32,
        "QUInt4x2Storage": .uint8, "QUInt2x4Storage": .uint8,
    ]

    /// The storage kind of a pickled storage global (`torch.FloatStorage`,
    /// `torch.cuda.HalfStorage`, `torch.storage.UntypedStorage`); nil when unknown.
    static func storageKind(_ global: String) -> StorageKind? {
        let name = global.split(separator: ".").last.map(String.init) ?? global
        guard global.hasPrefix("torch.") || !global.contains(".") else { return nil }
        if name == "UntypedStorage" || name == "TypedStorage" { return .untyped }
        return storages[name].map { .typed($0) }
    }

    /// The legacy storage class torch writes for a dtype (nil: needs UntypedStorage + v3).
    static func legacyStorageClass(_ dtype: DType) -> String? {
        switch dtype {
        case .float32: return "FloatStorage"
        case .float64: return "DoubleStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        case .complex64: return "ComplexFloatStorage"
        case .complex128: return "ComplexDoubleStorage"
        default: return nil
        }
    }

    /// `torch.<name>` dtype global to ``DType`` (canonical names and torch's aliases).
    static func dtype(global: String) -> DType? {
        guard global.hasPrefix("torch.") else { return nil }
        let name = String(global.dropFirst(6))
        if let d = DType(rawValue: name) { return d }
        switch name {
        case "float": return .float32
        case "double": return .float64
        case "half": return .float16
        case "long": return .int64
        case "int": return .int32
        case "short": return .int16
        case "cfloat": return .complex64
        case "cdouble": return .complex128
        default: return nil
        }
    }

    /// The `torch.<name>` global for a dtype.
    static func dtypeGlobal(_ dtype: DType) -> String { "torch." + dtype.rawValue }
}
