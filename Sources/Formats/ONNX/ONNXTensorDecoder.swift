import Tensors

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Decodes one `TensorProto` into a dense tensor, by the payload rules of onnx.proto:
///
/// * `raw_data`: fixed-width little-endian values; bool one byte; float16/bfloat16/float8 as raw
///   bits; INT4/UINT4 two values per byte (first in the low nibble), INT2/UINT2 four per byte
///   (`x0 | x1<<2 | x2<<4 | x3<<6`).
/// * typed fields: `float_data` (FLOAT, COMPLEX64 as pairs), `double_data` (DOUBLE, COMPLEX128),
///   `int64_data` (INT64), `uint64_data` (UINT32, UINT64), and `int32_data` for everything
///   narrower, one value per entry (float16/bfloat16/float8 as their bits), except packed 4-/2-bit
///   types, whose entries each hold one packed byte.
/// * external data: the bytes `raw_data` would hold, in a file next to the model.
///
/// Every count is checked against `dims` before anything is allocated.
struct ONNXTensorDecoder {
    /// Where each tensor's values came from (for the summary).
    enum Source: String, Sendable, Codable {
        case rawData = "raw_data"
        case floatData = "float_data"
        case int32Data = "int32_data"
        case int64Data = "int64_data"
        case doubleData = "double_data"
        case uint64Data = "uint64_data"
        case external, none
    }

    var external: ONNXExternalData

    /// Decodes `t`; `raw` is its `raw_data` located in the file by ``ONNXWireScan`` (zero copy),
    /// `offset` the TensorProto's file offset for errors.
    mutating func decode(
        _ t: Onnx_TensorProto, raw: ByteSlice?, offset: Int?
    ) throws(FormatError) -> (
        tensor: Tensor, source: Source, storedBytes: Int, location: String?
    ) {
        do {
            return try decodeUnnamed(t, raw: raw)
        } catch var e {
            if e.tensor == nil { e.tensor = t.name }
            if e.offset == nil, e.entry == nil { e.offset = offset }
            throw e
        }
    }

    private mutating func decodeUnnamed(
        _ t: Onnx_TensorProto, raw: ByteSlice?
    ) throws(FormatError) -> (
        tensor: Tensor, source: Source, storedBytes: Int, location: String?
    ) {
        guard let storage = ONNXDataType.storage(t.dataType) else {
            throw FormatError(
                .unsupportedDType("\(ONNXDataType.name(t.dataType)) (ONNX data type \(t.dataType))"))
        }
        if let d = t.dims.first(where: { $0 < 0 }) {
            throw FormatError(.invalid("negative dimension \(d) in dims \(t.dims)"))
        }
        guard t.dims.allSatisfy({ $0 <= Int64(Int.max) }) else {
            throw FormatError(.invalid("dims \(t.dims) overflow"))
        }
        let shape = t.dims.map { Int($0) }
        let count: Int
        do { count = try Shapes.elementCount(shape) } catch {
            throw FormatError(.invalid("dims \(t.dims): \(error)"))
        }
        guard let rawBytes = ONNXDataType.rawByteCount(count, storage) else {
            throw FormatError(.invalid("dims \(t.dims) overflow"))
        }
        if t.hasSegment { throw FormatError(.unsupported("segmented TensorProto (field segment)")) }

        if t.dataLocation == .external {
            let (payload, location) = try external.payload(t)
            guard payload.count == rawBytes else {
                throw FormatError(
                    .sizeMismatch(expectedBytes: rawBytes, foundBytes: payload.count), entry: location)
            }
            return (try Self.tensor(payload, storage, shape, count), .external, rawBytes, location)
        }
        if t.hasRawData {
            let payload = raw ?? ByteSlice([UInt8](t.rawData))
            guard payload.count == rawBytes else {
                throw FormatError(.sizeMismatch(expectedBytes: rawBytes, foundBytes: payload.count))
            }
            return (try Self.tensor(payload, storage, shape, count), .rawData, rawBytes, nil)
        }
        return try typed(t, storage, shape, count)
    }

    /// Values from the typed repeated fields.
    private func typed(
        _ t: Onnx_TensorProto, _ s: ONNXDataType.Storage, _ shape: [Int], _ count: Int
    )
        throws(FormatError) -> (tensor: Tensor, source: Source, storedBytes: Int, location: String?)
    {
        func check(_ have: Int, _ count: Int, _ field: Source, perValue: Int = 1) throws(FormatError) {
            let (need, overflow) = count.multipliedReportingOverflow(by: perValue)
            guard have == need, !overflow else {
                throw FormatError(
                    .invalid(
                        "\(field.rawValue) holds \(have) values, but dims \(t.dims) of a \(ONNXDataType.name(t.dataType)) tensor need \(overflow ? "more than Int.max" : String(need))"
                    ))
            }
        }
        var w = ByteWriter()
        let source: Source
        switch t.dataType {
        case 1, 14:
            source = .floatData
            try check(t.floatData.count, count, source, perValue: t.dataType == 14 ? 2 : 1)
            for v in t.floatData { w.u32(v.bitPattern) }
        case 11, 15:
            source = .doubleData
            try check(t.doubleData.count, count, source, perValue: t.dataType == 15 ? 2 : 1)
            for v in t.doubleData { w.u64(v.bitPattern) }
        case 7:
            source = .int64Data
            try check(t.int64Data.count, count, source)
            for v in t.int64Data { w.u64(UInt64(bitPattern: v)) }
        case 12, 13:
            source = .uint64Data
            try check(t.uint64Data.count, count, source)
            let width = s.dtype.byteWidth
            for v in t.uint64Data { w.uintLE(v, width) }
        default:
            source = .int32Data
            if s.valuesPerByte > 1 {
                let packed = ONNXDataType.packedCount(count, s.valuesPerByte)
                try check(t.int32Data.count, packed, source)
                let bytes = t.int32Data.map { UInt8(truncatingIfNeeded: $0) }
                return (try Self.tensor(ByteSlice(bytes), s, shape, count), source, packed, nil)
            }
            try check(t.int32Data.count, count, source)
            let width = s.dtype.byteWidth
            for v in t.int32Data {
                if s.dtype == .bool {
                    w.u8(v != 0 ? 1 : 0)
                } else {
                    w.uintLE(UInt64(UInt32(bitPattern: v)), width)
                }
            }
        }
        if count == 0, w.count == 0 { return (try Self.tensor(ByteSlice([]), s, shape, 0), .none, 0, nil) }
        return (try Self.tensor(ByteSlice(w.bytes), s, shape, count), source, w.count, nil)
    }

    /// A tensor over `payload` (checked to be `rawByteCount` long), unpacking 4-/2-bit values.
    static func tensor(
        _ payload: ByteSlice, _ s: ONNXDataType.Storage, _ shape: [Int], _ count: Int
    )
        throws(FormatError) -> Tensor
    {
        var data = payload
        if s.valuesPerByte > 1 { data = ByteSlice(unpack(payload, s, count)) }
        do { return try Tensor(dtype: s.dtype, shape: shape, data: data) } catch {
            throw FormatError(.sizeMismatch(expectedBytes: count * s.dtype.byteWidth, foundBytes: data.count))
        }
    }

    /// One byte per value from 4-bit (low nibble first) or 2-bit (lowest bits first) packing.
    static func unpack(_ packed: ByteSlice, _ s: ONNXDataType.Storage, _ count: Int) -> [UInt8] {
        let bits = 8 / s.valuesPerByte
        let mask = UInt8((1 << bits) - 1)
        let sign = UInt8(1 << (bits - 1))
        var out = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            var v = (packed[i / s.valuesPerByte] >> UInt8((i % s.valuesPerByte) * bits)) & mask
            if s.signedPacked, v & sign != 0 { v |= ~mask }
            out[i] = v
        }
        return out
    }
}
