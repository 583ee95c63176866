import Tensors

/// ONNX `TensorProto.DataType` codes and their qtools ``DType`` counterparts (formats.md §A.4, §C.1).
///
/// Packed sub-byte types (INT4/UINT4: two values per byte, first in the low nibble; INT2/UINT2:
/// four per byte, `x0 | x1<<2 | x2<<4 | x3<<6`) have no qtools dtype of their own: the reader
/// unpacks them to one `int8`/`uint8` per value (sign-extended for INT4/INT2).
public enum ONNXDataType {
    /// The enum names of onnx.proto (onnx 1.23), by code.
    static let names: [String] = [
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL",
        "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0",
        "UINT2", "INT2", "FLOAT6E2M3", "FLOAT6E3M2",
    ]

    /// The onnx.proto name of a code (`FLOAT`, `INT4`), or `DATATYPE_<n>` for an unknown code.
    public static func name(_ code: Int32) -> String {
        code >= 0 && Int(code) < names.count ? names[Int(code)] : "DATATYPE_\(code)"
    }

    /// How a data type is held in memory by qtools: the element dtype and how many values one
    /// stored byte packs (1, or 2 for 4-bit and 4 for 2-bit types, unpacked on reading).
    public struct Storage: Equatable, Sendable {
        /// qtools element type after unpacking.
        public var dtype: DType
        /// Values per stored byte in `raw_data` (and per `int32_data` entry for packed types).
        public var valuesPerByte: Int
        /// True when packed values are signed (sign-extend on unpacking).
        public var signedPacked: Bool
    }

    /// The storage of `code`, or nil when qtools cannot hold it (STRING, FLOAT4E2M1, FLOAT6*, unknown).
    public static func storage(_ code: Int32) -> Storage? {
        func s(_ d: DType, _ per: Int = 1, _ signed: Bool = false) -> Storage {
            Storage(dtype: d, valuesPerByte: per, signedPacked: signed)
        }
        switch code {
        case 1: return s(.float32)
        case 2: return s(.uint8)
        case 3: return s(.int8)
        case 4: return s(.uint16)
        case 5: return s(.int16)
        case 6: return s(.int32)
        case 7: return s(.int64)
        case 9: return s(.bool)
        case 10: return s(.float16)
        case 11: return s(.float64)
        case 12: return s(.uint32)
        case 13: return s(.uint64)
        case 14: return s(.complex64)
        case 15: return s(.complex128)
        case 16: return s(.bfloat16)
        case 17: return s(.float8e4m3fn)
        case 18: return s(.float8e4m3fnuz)
        case 19: return s(.float8e5m2)
        case 20: return s(.float8e5m2fnuz)
        case 21: return s(.uint8, 2)
        case 22: return s(.int8, 2, true)
        case 24: return s(.float8e8m0fnu)
        case 25: return s(.uint8, 4)
        case 26: return s(.int8, 4, true)
        default: return nil
        }
    }

    /// The ONNX code of a qtools dtype (every ``DType`` has one).
    public static func code(for dtype: DType) -> Int32 {
        switch dtype {
        case .float32: return 1
        case .uint8: return 2
        case .int8: return 3
        case .uint16: return 4
        case .int16: return 5
        case .int32: return 6
        case .int64: return 7
        case .bool: return 9
        case .float16: return 10
        case .float64: return 11
        case .uint32: return 12
        case .uint64: return 13
        case .complex64: return 14
        case .complex128: return 15
        case .bfloat16: return 16
        case .float8e4m3fn: return 17
        case .float8e4m3fnuz: return 18
        case .float8e5m2: return 19
        case .float8e5m2fnuz: return 20
        case .float8e8m0fnu: return 24
        }
    }

    /// Packed units (bytes, or int32_data entries) for `count` values, rounding up (no overflow).
    static func packedCount(_ count: Int, _ perUnit: Int) -> Int {
        count / perUnit + (count % perUnit == 0 ? 0 : 1)
    }

    /// Bytes of `count` values of `storage` in `raw_data` (packed types round up).
    static func rawByteCount(_ count: Int, _ storage: Storage) -> Int? {
        if storage.valuesPerByte > 1 { return packedCount(count, storage.valuesPerByte) }
        let (b, o) = count.multipliedReportingOverflow(by: storage.dtype.byteWidth)
        return o ? nil : b
    }
}
