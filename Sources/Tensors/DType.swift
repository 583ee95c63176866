/// Element types a checkpoint tensor can hold.
///
/// The raw value is qtools' own name (also used in `--json` output and `keys.txt`-style
/// listings, which follow torch: `float32`, `int64`, ...). Each file format maps its own
/// spelling to these cases; unknown names are reported by the format reader, never trapped.
public enum DType: String, Sendable, CaseIterable, Codable {
    case float64, float32, float16, bfloat16
    case int64, int32, int16, int8
    case uint64, uint32, uint16, uint8
    case bool
    case complex64, complex128
    case float8e4m3fn = "float8_e4m3fn"
    case float8e5m2 = "float8_e5m2"
    case float8e4m3fnuz = "float8_e4m3fnuz"
    case float8e5m2fnuz = "float8_e5m2fnuz"
    case float8e8m0fnu = "float8_e8m0fnu"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float64, .int64, .uint64, .complex64: return 8
        case .complex128: return 16
        case .float32, .int32, .uint32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool, .float8e4m3fn, .float8e5m2, .float8e4m3fnuz,
            .float8e5m2fnuz, .float8e8m0fnu:
            return 1
        }
    }

    /// True for the real floating-point types that convert to `Float` without loss of meaning.
    public var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16, .float8e4m3fn, .float8e5m2,
            .float8e4m3fnuz, .float8e5m2fnuz, .float8e8m0fnu:
            return true
        default: return false
        }
    }

    /// True for complex types (statistics treat them as pairs and skip them).
    public var isComplex: Bool { self == .complex64 || self == .complex128 }
}
