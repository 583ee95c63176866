import Tensors

/// Writes a checkpoint in `torch.save`'s zip format, laid out exactly as torch 2.x does
/// (formats.md §A.1.4), so `torch.load(weights_only=True)` and `mmap=True` accept it.
///
/// Records, in torch's order: `data.pkl`, `.format_version` (`1`), `.storage_alignment` (`64`),
/// `byteorder` (`little`), `data/0` ... `data/N-1` (first-use order), `version` (`3\n`),
/// `.data/serialization_id` (40 decimal digits). All stored, 64-byte aligned, real CRC-32.
public enum TorchZipWriter {
    /// Writes `value` (the object `torch.save` would have been given) to `sink`.
    /// - Parameters:
    ///   - archiveName: the top-level folder; use ``archiveName(forOutputPath:)`` for files.
    ///   - serializationID: 40 decimal digits; random when nil.
    /// - Throws: ``FormatError`` naming the path of a value that cannot be written safely,
    ///   or the sink's write error.
    public static func write(
        _ value: CheckpointValue, to sink: ByteSink, archiveName: String = "archive", serializationID: String? = nil
    ) throws {
        var p = Pickler(flavor: .zip)
        let pkl = try p.pickle(value)
        let zip = ZipWriter(sink: sink, layout: .torch(alignment: 64))
        let prefix = archiveName + "/"
        try zip.add(prefix + "data.pkl", pkl)
        try zip.add(prefix + ".format_version", Array("1".utf8))
        try zip.add(prefix + ".storage_alignment", Array("64".utf8))
        try zip.add(prefix + "byteorder", Array("little".utf8))
        for s in p.storages { try zip.add(prefix + "data/" + s.key, s.bytes) }
        try zip.add(prefix + "version", Array("3\n".utf8))
        var id = serializationID ?? ""
        if id.isEmpty {
            var rng = SystemRandomNumberGenerator()
            id = String((0..<40).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
        }
        try zip.add(prefix + ".data/serialization_id", Array(id.utf8))
        try zip.finish()
    }

    /// Writes a checkpoint's object tree.
    public static func write(_ checkpoint: Checkpoint, to sink: ByteSink, archiveName: String = "archive") throws {
        try write(checkpoint.root, to: sink, archiveName: archiveName)
    }

    /// torch's folder name for a file path: the basename without its last extension
    /// (`model.v1.pth` → `model.v1`, `noext` → `noext`); `archive` when that is empty or not ASCII.
    public static func archiveName(forOutputPath path: String) -> String {
        let base = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        var name = base
        if let dot = base.lastIndex(of: ".") { name = String(base[..<dot]) }
        if name.isEmpty || !name.unicodeScalars.allSatisfy(\.isASCII) { return "archive" }
        return name
    }
}
