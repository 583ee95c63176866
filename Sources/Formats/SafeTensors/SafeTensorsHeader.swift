import Tensors

/// The parsed and validated header of a safetensors file (formats.md §B).
///
/// ```
/// bytes 0..<8       N, u64 little-endian
/// bytes 8..<8+N     UTF-8 JSON object, starts with '{', may be right-padded with spaces
/// bytes 8+N..<EOF   data buffer; every tensor's data_offsets are relative to its start
/// ```
///
/// ``parse(_:)`` enforces everything the reference reader does: `N ≤ 100,000,000`,
/// `8 + N ≤ file size`, a strict JSON object with unique keys, known dtype names, checked
/// shape products, `end − begin == elements × size`, and offsets that tile the buffer exactly
/// (first begins at 0, each begins where the previous ended, the last ends at EOF).
public struct SafeTensorsHeader: Sendable {
    /// One tensor's header entry.
    public struct Entry: Sendable {
        /// Tensor name (the JSON key).
        public var name: String
        /// Element type.
        public var dtype: DType
        /// Dimensions; `[]` is a scalar.
        public var shape: [Int]
        /// `data_offsets`, relative to the start of the data buffer.
        public var dataOffsets: Range<Int>
    }

    /// Largest header the reference reader accepts (`HeaderTooLarge` above it).
    public static let maxHeaderBytes = 100_000_000

    /// `N`: the JSON header's length in bytes, padding included.
    public var headerByteCount: Int
    /// `__metadata__` in file order, or nil when the header has none.
    public var metadata: [(key: String, value: String)]?
    /// Tensors in data-offset order (ties, which only empty tensors can have, keep header order).
    public var entries: [Entry]
    /// Length of the data buffer (file size − 8 − N).
    public var dataByteCount: Int

    /// File offset of the data buffer.
    public var dataStart: Int { 8 + headerByteCount }

    /// Reads and validates the header of a whole safetensors file.
    ///
    /// - Throws: ``FormatError`` naming the tensor and/or file offset: `.truncated` (file shorter
    ///   than 8 bytes, than `8 + N`, or than a tensor's end), `.tooLarge` (N), `.invalid` (JSON,
    ///   structure, holes, overlaps, trailing bytes), `.duplicateName`, `.unsupportedDType`,
    ///   `.missing` (a required field) and `.sizeMismatch` (bytes vs shape).
    public static func parse(_ bytes: ByteSlice) throws(FormatError) -> SafeTensorsHeader {
        var r = ByteReader(bytes)
        let declared = try r.u64()
        guard declared <= UInt64(maxHeaderBytes) else {
            throw FormatError(
                .tooLarge(
                    what: "safetensors header (is this really a safetensors file?)",
                    size: declared > UInt64(Int.max) ? Int.max : Int(declared),
                    limit: maxHeaderBytes),
                offset: 0)
        }
        let n = Int(declared)
        guard n <= r.remaining else {
            throw FormatError(.truncated(needed: 8 + n, available: bytes.count), offset: 0)
        }
        let json = try r.bytes(n)
        guard json.first == UInt8(ascii: "{") else {
            let found = json.first.map { "0x" + String($0, radix: 16) } ?? "an empty header"
            throw FormatError(.invalid("header must start with '{', found \(found)"), offset: 8)
        }
        guard String(validating: json, as: UTF8.self) != nil else {
            throw FormatError(.invalid("header is not valid UTF-8"), offset: 8)
        }
        let root = try JSONParser.parse(json, base: 8)
        guard case .object(let members) = root else {
            throw FormatError(.invalid("header is not a JSON object"), offset: 8)
        }
        var metadata: [(key: String, value: String)]? = nil
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for m in members {
            if m.key == "__metadata__" {
                metadata = try decodeMetadata(m)
            } else {
                entries.append(try decodeEntry(m))
            }
        }
        let dataCount = bytes.count - 8 - n
        let ordered = try validate(entries, dataByteCount: dataCount, dataStart: 8 + n)
        return SafeTensorsHeader(
            headerByteCount: n, metadata: metadata, entries: ordered, dataByteCount: dataCount)
    }

    private static func decodeMetadata(
        _ member: JSONMember
    ) throws(FormatError) -> [(
        key: String, value: String
    )] {
        guard case .object(let members) = member.value else {
            throw FormatError(
                .invalid(
                    "__metadata__ is \(member.value.kindName); it must be an object of strings"),
                offset: member.offset)
        }
        var out: [(key: String, value: String)] = []
        for m in members {
            let k = m.key, v = m.value
            guard case .string(let s) = v else {
                throw FormatError(
                    .invalid(
                        "__metadata__ value for key \"\(k)\" is \(v.kindName); safetensors metadata values must be strings"
                    ), offset: m.offset)
            }
            out.append((k, s))
        }
        return out
    }

    private static func decodeEntry(_ member: JSONMember) throws(FormatError) -> Entry {
        let name = member.key, value = member.value
        func bad(_ what: String) -> FormatError {
            FormatError(.invalid(what), offset: member.offset, tensor: name)
        }
        guard case .object(let fields) = value else {
            throw bad(
                "header entry is \(value.kindName), expected {\"dtype\", \"shape\", \"data_offsets\"}"
            )
        }
        // Unknown fields are ignored, as the reference reader (serde without deny_unknown_fields) does.
        func field(_ f: String) throws(FormatError) -> JSONValue {
            guard let v = fields.first(where: { $0.key == f })?.value else {
                throw FormatError(.missing("\"\(f)\" field"), offset: member.offset, tensor: name)
            }
            return v
        }
        guard case .string(let dtypeName) = try field("dtype") else {
            throw bad("\"dtype\" is not a string")
        }
        guard let dtype = DType(safeTensorsName: dtypeName) else {
            throw FormatError(.unsupportedDType(dtypeName), offset: member.offset, tensor: name)
        }
        guard case .array(let dims) = try field("shape") else {
            throw bad("\"shape\" is not an array")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for d in dims {
            guard let v = d.nonNegativeInt else {
                throw bad("\"shape\" must hold non-negative integers")
            }
            shape.append(v)
        }
        guard case .array(let offs) = try field("data_offsets"), offs.count == 2,
            let begin = offs[0].nonNegativeInt, let end = offs[1].nonNegativeInt
        else { throw bad("\"data_offsets\" must be [begin, end] with non-negative integers") }
        guard begin <= end else {
            throw bad("data_offsets [\(begin), \(end)] end before they begin")
        }
        return Entry(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// Sorts by data offsets and checks that the tensors tile `0..<dataByteCount` exactly.
    private static func validate(
        _ entries: [Entry], dataByteCount: Int, dataStart: Int
    ) throws(FormatError) -> [Entry] {
        let order = entries.indices.sorted { a, b in
            let x = entries[a].dataOffsets, y = entries[b].dataOffsets
            if x.lowerBound != y.lowerBound { return x.lowerBound < y.lowerBound }
            if x.upperBound != y.upperBound { return x.upperBound < y.upperBound }
            return a < b
        }
        var out: [Entry] = []
        out.reserveCapacity(entries.count)
        var previousEnd = 0
        var previousName: String? = nil
        for i in order {
            let e = entries[i]
            // Offsets come from the file and may be near Int.max: never add unchecked.
            let (sum, overflow) = dataStart.addingReportingOverflow(e.dataOffsets.lowerBound)
            let at: Int? = overflow ? nil : sum
            let need: Int
            do { need = try Shapes.byteCount(e.shape, e.dtype) } catch {
                throw FormatError(.invalid(error.description), offset: at, tensor: e.name)
            }
            guard need == e.dataOffsets.count else {
                throw FormatError(
                    .sizeMismatch(expectedBytes: need, foundBytes: e.dataOffsets.count), offset: at,
                    tensor: e.name)
            }
            if e.dataOffsets.lowerBound > previousEnd {
                throw FormatError(
                    .invalid(
                        "hole in the data buffer: bytes \(previousEnd)..<\(e.dataOffsets.lowerBound) belong to no tensor"
                    ), offset: dataStart + previousEnd, tensor: e.name)
            }
            if e.dataOffsets.lowerBound < previousEnd {
                let other = previousName.map { "tensor \"\($0)\"" } ?? "the previous tensor"
                throw FormatError(
                    .invalid(
                        "overlap: data begins at \(e.dataOffsets.lowerBound) but \(other) ends at \(previousEnd)"
                    ), offset: at, tensor: e.name)
            }
            guard e.dataOffsets.upperBound <= dataByteCount else {
                throw FormatError(
                    .truncated(needed: e.dataOffsets.upperBound, available: dataByteCount),
                    offset: at,
                    tensor: e.name)
            }
            previousEnd = e.dataOffsets.upperBound
            previousName = e.name
            out.append(e)
        }
        guard previousEnd == dataByteCount else {
            throw FormatError(
                .invalid(
                    "\(dataByteCount - previousEnd) trailing bytes after the last tensor (data buffer has \(dataByteCount) bytes, tensors cover \(previousEnd))"
                ), offset: dataStart + previousEnd, tensor: previousName)
        }
        return out
    }
}

extension DType {
    /// The safetensors dtype name (`F32`, `BF16`, ...); nil for types safetensors lacks (`complex128`).
    public var safeTensorsName: String? {
        switch self {
        case .bool: return "BOOL"
        case .uint8: return "U8"
        case .int8: return "I8"
        case .int16: return "I16"
        case .uint16: return "U16"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .int32: return "I32"
        case .uint32: return "U32"
        case .float32: return "F32"
        case .float64: return "F64"
        case .int64: return "I64"
        case .uint64: return "U64"
        case .complex64: return "C64"
        case .float8e4m3fn: return "F8_E4M3"
        case .float8e5m2: return "F8_E5M2"
        case .float8e8m0fnu: return "F8_E8M0"
        case .float8e4m3fnuz: return "F8_E4M3FNUZ"
        case .float8e5m2fnuz: return "F8_E5M2FNUZ"
        case .complex128: return nil
        }
    }

    /// Maps a safetensors dtype name; nil for unknown names and for the sub-byte `F4`/`F6_*`,
    /// which qtools does not model.
    public init?(safeTensorsName name: String) {
        guard let d = DType.allCases.first(where: { $0.safeTensorsName == name }) else {
            return nil
        }
        self = d
    }

    /// Position in the reference writer's `Dtype` enum, whose derived order it sorts by
    /// (descending) before names. Observed with safetensors 0.8:
    /// `BOOL < U8 < I8 < F8_E5M2 < F8_E4M3 < F8_E8M0 < F8_E4M3FNUZ < F8_E5M2FNUZ < I16 < U16
    ///  < F16 < BF16 < I32 < U32 < F32 < C64 < F64 < I64 < U64`.
    var safeTensorsRank: Int {
        switch self {
        case .bool: return 0
        case .uint8: return 1
        case .int8: return 2
        case .float8e5m2: return 3
        case .float8e4m3fn: return 4
        case .float8e8m0fnu: return 5
        case .float8e4m3fnuz: return 6
        case .float8e5m2fnuz: return 7
        case .int16: return 8
        case .uint16: return 9
        case .float16: return 10
        case .bfloat16: return 11
        case .int32: return 12
        case .uint32: return 13
        case .float32: return 14
        case .complex64: return 15
        case .float64: return 16
        case .int64: return 17
        case .uint64: return 18
        case .complex128: return 19
        }
    }
}
