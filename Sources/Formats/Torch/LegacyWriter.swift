import Tensors

/// Writes the legacy magic-number format (formats.md §A.3.1) for users on torch <= 1.5.
///
/// magic pickle, protocol 1001, sys_info `{'protocol_version': 1001, 'little_endian': True,
/// 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}`, the object pickle (6-tuple persistent
/// ids, `view_metadata` None), the storage keys (sequential decimal strings, listed sorted as
/// strings like torch), then per key an 8-byte LE element count and the bytes.
/// Dtypes without a legacy storage class (uint16, float8, ...) cannot be written.
public enum LegacyWriter {
    /// Writes `value` to `sink`.
    /// - Throws: ``FormatError`` for values that cannot be written, or the sink's error.
    public static func write(_ value: CheckpointValue, to sink: ByteSink) throws {
        var p = Pickler(flavor: .legacy)
        let object = try p.pickle(value)
        for s in p.storages where TorchTypeNames.legacyStorageClass(s.dtype) == nil {
            throw FormatError(.unsupported("dtype \(s.dtype.rawValue) has no legacy storage class; write the zip format"))
        }
        try sink.write(LegacyReader.magic)
        try sink.write([0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e])
        var info = Pickler(flavor: .legacy)
        let sizes = CheckpointDict([(.string("short"), .int(2)), (.string("int"), .int(4)), (.string("long"), .int(4))])
        try sink.write(
            info.pickle(
                .dict(
                    CheckpointDict([
                        (.string("protocol_version"), .int(1001)), (.string("little_endian"), .bool(true)),
                        (.string("type_sizes"), .dict(sizes)),
                    ]))))
        try sink.write(object)
        let sorted = p.storages.sorted { $0.key < $1.key }
        var keys = Pickler(flavor: .legacy)
        try sink.write(keys.pickle(.list(sorted.map { .string($0.key) })))
        for s in sorted {
            var w = ByteWriter()
            w.u64(UInt64(s.numel))
            try sink.write(w.bytes)
            try sink.write(s.bytes)
        }
    }

    /// Writes a checkpoint's object tree.
    public static func write(_ checkpoint: Checkpoint, to sink: ByteSink) throws {
        try write(checkpoint.root, to: sink)
    }
}
