import Tensors

/// Reads safetensors files (formats.md §B) into a ``Checkpoint``.
///
/// The root is a dict of tensor name → ``CheckpointValue/tensor(_:)`` in data-offset order.
/// Each tensor is a zero-copy window into `bytes` (safetensors data is already little-endian
/// and row-major), so reading a mapped file touches only the header's pages.
///
/// `__metadata__` is not a tensor, so it is kept out of the root: its pairs appear in
/// ``Checkpoint/facts`` as `metadata.<key>` → value, in file order (see
/// ``Checkpoint/safeTensorsMetadata``), after the facts `header bytes`, `data bytes` and
/// `tensors`. ``SafeTensorsHeader/parse(_:)`` gives the same information without a checkpoint.
public enum SafeTensorsReader {
    /// Prefix of the facts that carry `__metadata__` pairs.
    public static let metadataFactPrefix = "metadata."

    /// Parses and validates a whole safetensors file.
    ///
    /// - Throws: ``FormatError`` (see ``SafeTensorsHeader/parse(_:)``), naming the tensor and
    ///   the file offset of the problem.
    public static func read(_ bytes: ByteSlice) throws -> Checkpoint {
        let header = try SafeTensorsHeader.parse(bytes)
        var dict = CheckpointDict()
        dict.entries.reserveCapacity(header.entries.count)
        for e in header.entries {
            let start = header.dataStart + e.dataOffsets.lowerBound
            let window = bytes.slice(start..<(start + e.dataOffsets.count))
            let stored: StoredTensor
            do {
                stored = try StoredTensor(
                    storage: window, storageKey: e.name, dtype: e.dtype, shape: e.shape,
                    strides: Shapes.contiguousStrides(e.shape), storageOffset: 0)
            } catch {
                var fe = FormatError(error, tensor: e.name)
                fe.offset = start
                throw fe
            }
            dict.entries.append((.string(e.name), .tensor(stored)))
        }
        var facts: [(key: String, value: String)] = [
            ("header bytes", String(header.headerByteCount)),
            ("data bytes", String(header.dataByteCount)),
            ("tensors", String(header.entries.count)),
        ]
        for (k, v) in header.metadata ?? [] { facts.append((metadataFactPrefix + k, v)) }
        return Checkpoint(format: .safetensors, root: .dict(dict), facts: facts)
    }
}

extension Checkpoint {
    /// The safetensors `__metadata__` pairs recorded by ``SafeTensorsReader`` (empty otherwise).
    public var safeTensorsMetadata: [(key: String, value: String)] {
        guard format == .safetensors || format == .bnnpack else { return [] }
        let p = SafeTensorsReader.metadataFactPrefix
        return facts.filter { $0.key.hasPrefix(p) }.map {
            (String($0.key.dropFirst(p.count)), $0.value)
        }
    }
}
