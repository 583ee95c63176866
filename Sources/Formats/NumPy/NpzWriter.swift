import CZlib
import Tensors

/// Writes NumPy `.npz` archives that `np.load` reads: one `<name>.npy` member per array
/// (``NpyWriter`` format), stored like `np.savez` or deflated like `np.savez_compressed`.
///
/// Members are written in the given order with a fixed timestamp (1980-01-01 00:00), so equal
/// inputs give equal files. Stored members stream their data straight from the tensor's
/// bytes: the CRC-32 is computed first (header and data separately, combined with zlib's
/// `crc32_combine`), so nothing is copied. Zip64 records are used when a size or offset needs
/// them.
public enum NpzWriter {
    /// How members are compressed.
    public enum Compression: Sendable {
        /// Method 0, as `np.savez` (data readable in place, zero-copy on read).
        case stored
        /// Method 8 (raw deflate), as `np.savez_compressed`.
        case deflated
    }

    /// Writes `arrays` to `sink`.
    ///
    /// - Throws: ``FormatError`` `.duplicateName`, `.invalid` (empty name),
    ///   `.unsupportedDType` (bfloat16, float8), or the sink's write error.
    public static func write(
        _ arrays: [(name: String, tensor: Tensor)], compression: Compression = .stored,
        to sink: ByteSink
    ) throws {
        try write(arrays, compression: compression, forceZip64: false, to: sink)
    }

    /// As ``write(_:compression:to:)``; `forceZip64` writes zip64 fields even for small
    /// archives (as NumPy does), so tests can cover them without 4 GiB files.
    static func write(
        _ arrays: [(name: String, tensor: Tensor)], compression: Compression, forceZip64: Bool,
        to sink: ByteSink
    ) throws {
        var seen = Set<String>()
        for (name, _) in arrays {
            guard !name.isEmpty else {
                throw FormatError(.invalid("an npz member needs a name"), tensor: name)
            }
            guard seen.insert(name).inserted else {
                throw FormatError(.duplicateName(name), tensor: name)
            }
        }
        var zip = NpzZipWriter(sink: sink, forceZip64: forceZip64)
        for (name, tensor) in arrays {
            let header = try withContext(tensor: name) {
                try NpyHeader.encode(dtype: tensor.dtype, shape: tensor.shape)
            }
            switch compression {
            case .stored:
                try zip.addStored(name: name + ".npy", parts: [ByteSlice(header), tensor.data])
            case .deflated:
                try zip.addDeflated(
                    name: name + ".npy", data: ByteSlice(header + tensor.data.toArray()))
            }
        }
        try zip.finish()
    }

    /// Writes every tensor of a checkpoint tree, named by dotted path (see
    /// ``Checkpoint/flattened(rootName:)``), materialised to C order.
    ///
    /// Scalar leaves become 0-d arrays, as `np.savez` makes them: bool → `|b1`, int → `<i8`,
    /// float → `<f8`. `None` and strings have no numeric array form and throw.
    public static func write(
        _ checkpoint: Checkpoint, compression: Compression = .stored, to sink: ByteSink
    ) throws {
        let flat = try checkpoint.flattened()
        var arrays = flat.tensors.map { (name: $0.name, tensor: $0.tensor.materialize()) }
        for (name, value) in flat.scalars {
            var w = ByteWriter()
            let dtype: DType
            switch value {
            case .bool(let b):
                dtype = .bool
                w.u8(b ? 1 : 0)
            case .int(let i):
                dtype = .int64
                w.u64(UInt64(bitPattern: i))
            case .float(let d):
                dtype = .float64
                w.u64(d.bitPattern)
            default:
                throw FormatError(
                    .unsupported(
                        "\"\(name)\" is a \(value.typeName); npz holds numeric arrays only"),
                    tensor: name)
            }
            arrays.append((name, try Tensor(dtype: dtype, shape: [], data: ByteSlice(w.bytes))))
        }
        try write(arrays, compression: compression, to: sink)
    }
}

/// A minimal zip writer: local headers with CRC and sizes up front (no data descriptors), a
/// central directory, the end record, and zip64 extras/end records when needed.
///
/// Used only by the npz writer (and by tests, to build odd archives), so it can give way to a
/// shared `Zip/ZipWriter.swift` without touching callers.
struct NpzZipWriter {
    private struct Record {
        var name: [UInt8]
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var offset: Int
    }

    let sink: ByteSink
    let forceZip64: Bool
    private var records: [Record] = []

    /// DOS time 00:00:00 and date 1980-01-01: fixed, so output does not depend on the clock.
    private static let dosTime: UInt16 = 0
    private static let dosDate: UInt16 = (0 << 9) | (1 << 5) | 1
    private static let limit32 = 0xffff_ffff

    init(sink: ByteSink, forceZip64: Bool) {
        self.sink = sink
        self.forceZip64 = forceZip64
    }

    /// Adds a stored member whose data is the concatenation of `parts` (streamed, not copied).
    mutating func addStored(name: String, parts: [ByteSlice]) throws {
        var crc: UInt = 0
        var size = 0
        for p in parts {
            crc = crc32_combine(crc, UInt(Deflate.crc32(p)), off_t(p.count))
            size += p.count
        }
        try addHeader(
            name: name, method: 0, crc: UInt32(truncatingIfNeeded: crc), compressed: size,
            size: size)
        for p in parts where p.count > 0 { try sink.write(p) }
    }

    /// Adds a member compressed with raw deflate.
    mutating func addDeflated(name: String, data: ByteSlice) throws {
        let packed = Deflate.deflate(data)
        try addHeader(
            name: name, method: 8, crc: Deflate.crc32(data), compressed: packed.count,
            size: data.count)
        try sink.write(packed)
    }

    private mutating func addHeader(
        name: String, method: UInt16, crc: UInt32, compressed: Int, size: Int
    ) throws {
        let nameBytes = Array(name.utf8)
        let offset = sink.position
        let zip64 = forceZip64 || compressed >= Self.limit32 || size >= Self.limit32
        var w = ByteWriter()
        w.u32(0x0403_4b50)
        w.u16(zip64 ? 45 : 20)
        w.u16(Self.flags(nameBytes))
        w.u16(method)
        w.u16(Self.dosTime)
        w.u16(Self.dosDate)
        w.u32(crc)
        w.u32(zip64 ? UInt32(Self.limit32) : UInt32(compressed))
        w.u32(zip64 ? UInt32(Self.limit32) : UInt32(size))
        w.u16(UInt16(nameBytes.count))
        w.u16(zip64 ? 20 : 0)
        w.append(nameBytes)
        if zip64 {
            w.u16(0x0001)
            w.u16(16)
            w.u64(UInt64(size))
            w.u64(UInt64(compressed))
        }
        try sink.write(w.bytes)
        records.append(
            Record(
                name: nameBytes, method: method, crc: crc, compressedSize: compressed, size: size,
                offset: offset))
    }

    /// Bit 11 (names are UTF-8) when a name is not plain ASCII.
    private static func flags(_ name: [UInt8]) -> UInt16 {
        name.contains { $0 >= 0x80 } ? 0x0800 : 0
    }

    /// Writes the central directory and end records.
    func finish() throws {
        let cdStart = sink.position
        var w = ByteWriter()
        for r in records {
            let bigSize = forceZip64 || r.size >= Self.limit32
            let bigCompressed = forceZip64 || r.compressedSize >= Self.limit32
            let bigOffset = forceZip64 || r.offset >= Self.limit32
            var extra = ByteWriter()
            if bigSize { extra.u64(UInt64(r.size)) }
            if bigCompressed { extra.u64(UInt64(r.compressedSize)) }
            if bigOffset { extra.u64(UInt64(r.offset)) }
            let needed: UInt16 = extra.count > 0 ? 45 : 20
            w.u32(0x0201_4b50)
            w.u16(3 << 8 | needed)  // made by: Unix
            w.u16(needed)
            w.u16(Self.flags(r.name))
            w.u16(r.method)
            w.u16(Self.dosTime)
            w.u16(Self.dosDate)
            w.u32(r.crc)
            w.u32(bigCompressed ? UInt32(Self.limit32) : UInt32(r.compressedSize))
            w.u32(bigSize ? UInt32(Self.limit32) : UInt32(r.size))
            w.u16(UInt16(r.name.count))
            w.u16(extra.count > 0 ? UInt16(4 + extra.count) : 0)
            w.u16(0)  // comment
            w.u16(0)  // disk
            w.u16(0)  // internal attributes
            w.u32(0o100644 << 16)  // external: regular file, rw-r--r--
            w.u32(bigOffset ? UInt32(Self.limit32) : UInt32(r.offset))
            w.append(r.name)
            if extra.count > 0 {
                w.u16(0x0001)
                w.u16(UInt16(extra.count))
                w.append(extra.bytes)
            }
        }
        let cdSize = w.count
        let zip64End =
            forceZip64 || records.count >= 0xffff || cdStart >= Self.limit32
            || cdSize >= Self.limit32
        if zip64End {
            let recordOffset = cdStart + cdSize
            w.u32(0x0606_4b50)
            w.u64(44)
            w.u16(3 << 8 | 45)
            w.u16(45)
            w.u32(0)
            w.u32(0)
            w.u64(UInt64(records.count))
            w.u64(UInt64(records.count))
            w.u64(UInt64(cdSize))
            w.u64(UInt64(cdStart))
            w.u32(0x0706_4b50)  // zip64 end locator
            w.u32(0)
            w.u64(UInt64(recordOffset))
            w.u32(1)
        }
        w.u32(0x0605_4b50)
        w.u16(0)
        w.u16(0)
        w.u16(zip64End ? 0xffff : UInt16(records.count))
        w.u16(zip64End ? 0xffff : UInt16(records.count))
        w.u32(zip64End ? UInt32(Self.limit32) : UInt32(cdSize))
        w.u32(zip64End ? UInt32(Self.limit32) : UInt32(cdStart))
        w.u16(0)
        try sink.write(w.bytes)
    }
}
