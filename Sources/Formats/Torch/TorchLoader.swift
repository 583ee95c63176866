import Tensors

/// The public entry for PyTorch checkpoints: sniffs the container and reads it.
///
/// | first bytes | format |
/// |---|---|
/// | `PK\3\4` | zip (``TorchZipReader``) |
/// | `80 02 8A 0A 6C FC 9C 46 F9 20 6A A8 50 19 2E` | legacy magic-number stream (``LegacyReader``) |
/// | `ustar` at offset 257 | legacy tar (``TarReader``) |
///
/// Git LFS pointers, HTML pages, safetensors files and torch's preview-release container are
/// recognised and reported as such.
public enum TorchCheckpointReader {
    /// Reads any torch checkpoint format without executing its pickle.
    /// - Parameters:
    ///   - bytes: the whole file (usually memory-mapped; storages stay windows into it).
    ///   - verifyCRC: for zip archives, check every record's CRC-32.
    /// - Throws: ``FormatError``.
    public static func read(_ bytes: ByteSlice, verifyCRC: Bool = false) throws -> Checkpoint {
        switch try sniff(bytes) {
        case .torchZip: return try TorchZipReader.read(bytes, verifyCRC: verifyCRC)
        case .torchLegacy: return try LegacyReader.read(bytes)
        default: return try TarReader.read(bytes)
        }
    }

    /// The torch container format of `bytes`, or a ``FormatError`` saying what the bytes are.
    public static func sniff(_ bytes: ByteSlice) throws(FormatError) -> CheckpointFormat {
        let head = bytes.slice(0..<min(bytes.count, 512)).toArray()
        func starts(_ p: [UInt8]) -> Bool { head.count >= p.count && Array(head.prefix(p.count)) == p }
        if starts([0x50, 0x4b, 0x03, 0x04]) || starts([0x50, 0x4b, 0x05, 0x06]) { return .torchZip }
        if starts(LegacyReader.magic) { return .torchLegacy }
        if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) { return .torchTar }
        if starts(Array("PYTORCH1".utf8)) {
            throw FormatError(.unsupported("archive format of the torch preview release (PYTORCH1)"), offset: 0)
        }
        if starts(Array("version https://git-lfs".utf8)) {
            throw FormatError(.notACheckpoint("a Git LFS pointer, not a checkpoint (run `git lfs pull`)"), offset: 0)
        }
        let text = String(decoding: head.prefix(64), as: UTF8.self).lowercased().trimmingSpaces
        if text.hasPrefix("<!doctype html") || text.hasPrefix("<html") || text.hasPrefix("<?xml") {
            throw FormatError(.notACheckpoint("an HTML/XML page, not a checkpoint (failed download?)"), offset: 0)
        }
        if head.count >= 9, head[8] == 0x7b, Elements.loadLE(ByteSlice(head), 0, 8) < UInt64(bytes.count) {
            throw FormatError(.notACheckpoint("a safetensors file, not a torch checkpoint"), offset: 0)
        }
        throw FormatError(
            .badMagic(expected: "a torch checkpoint (zip PK\\3\\4, legacy magic number, or tar)", found: Array(head.prefix(16))),
            offset: 0)
    }
}
