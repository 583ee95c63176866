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
        let zip = ZipWriter(
            sink: sink, layout: .plain(deflate: compression == .deflated, forceZip64: forceZip64))
        for (name, tensor) in arrays {
            let header = try withContext(tensor: name) {
                try NpyHeader.encode(dtype: tensor.dtype, shape: tensor.shape)
            }
            try zip.add(name + ".npy", parts: [ByteSlice(header), tensor.data])
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
