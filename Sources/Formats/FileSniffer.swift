import Tensors

/// What a file's leading bytes say it is (formats.md §A.0).
public enum FileKind: String, Sendable, Equatable {
    /// A zip archive: torch checkpoint or NumPy .npz, decided by its records.
    case zip
    /// The legacy torch magic-number stream.
    case torchLegacy
    /// The legacy torch tar archive (`ustar` at offset 257).
    case tar
    /// safetensors (8-byte header length, then `{`).
    case safetensors
    /// NumPy .npy (`\x93NUMPY`).
    case npy
    /// ONNX ModelProto (protobuf, field 1 varint first).
    case onnx
    /// A Git LFS pointer instead of the real file.
    case gitLFSPointer
    /// An HTML page (a failed download).
    case html
    /// torch's rejected "preview release" container.
    case torchPreview
    /// None of the above.
    case unknown
}

/// Format sniffing by magic bytes. Cheap: reads at most the first 512 bytes.
public enum FileSniffer {
    static let legacyMagic: [UInt8] = [
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
    ]

    /// Classifies `bytes` by their first bytes.
    public static func sniff(_ bytes: ByteSlice) -> FileKind {
        let n = bytes.count
        func starts(_ p: [UInt8]) -> Bool { startsWith(p, at: 0, bytes) }
        if starts([0x50, 0x4b, 0x03, 0x04]) || starts([0x50, 0x4b, 0x05, 0x06]) { return .zip }
        if starts(legacyMagic) { return .torchLegacy }
        if n >= 262, startsWith(Array("ustar".utf8), at: 257, bytes) { return .tar }
        if starts([0x93] + Array("NUMPY".utf8)) { return .npy }
        if starts(Array("PYTORCH1".utf8)) { return .torchPreview }
        if starts(Array("version https://git-lfs".utf8)) { return .gitLFSPointer }
        if looksLikeHTML(bytes) { return .html }
        if n >= 9 {
            // safetensors: u64 LE header length that fits the file, then '{'.
            let len = Elements.loadLE(bytes, 0, 8)
            if len >= 2, len <= UInt64(n - 8), bytes[8] == UInt8(ascii: "{") { return .safetensors }
        }
        if looksLikeONNX(bytes) { return .onnx }
        return .unknown
    }

    /// ONNX: protobuf serializers write fields in ascending order, so a ModelProto starts with
    /// field 1 (ir_version, varint: `08 07` from torch.onnx.export, `08 0e` from onnx 1.23), and
    /// the next tag is another ModelProto field of the right wire type (`12` producer_name,
    /// `3a` graph, `42` opset_import, ...). Checking that second tag keeps a truncated
    /// safetensors file whose header length starts with 0x08 from passing as ONNX.
    static func looksLikeONNX(_ bytes: ByteSlice) -> Bool {
        let n = bytes.count
        guard n >= 2, bytes[0] == 0x08, bytes[1] > 0, bytes[1] < 0x40 else { return false }
        guard n >= 3 else { return true }
        let tag = bytes[2]
        let field = Int(tag >> 3)
        let wire = tag & 7
        switch field {
        case 2, 3, 4, 6, 7, 8, 14: return wire == 2  // strings, graph, opset_import, metadata_props
        case 5: return wire == 0  // model_version
        default:
            // Tags of fields 16+ take two bytes: training_info 20, functions 25, configuration 26.
            guard n >= 4, tag & 0x80 != 0, wire == 2 else { return false }
            let number = Int(tag & 0x7f) >> 3 | Int(bytes[3]) << 4
            return [20, 25, 26].contains(number)
        }
    }

    static func startsWith(_ p: [UInt8], at offset: Int, _ bytes: ByteSlice) -> Bool {
        guard bytes.count >= offset + p.count else { return false }
        for (i, b) in p.enumerated() where bytes[offset + i] != b { return false }
        return true
    }

    static func looksLikeHTML(_ bytes: ByteSlice) -> Bool {
        let head = String(decoding: bytes.slice(0..<min(bytes.count, 64)).toArray(), as: UTF8.self)
            .trimmingPrefix { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
            .lowercased()
        return head.hasPrefix("<!doctype html") || head.hasPrefix("<html")
    }
}
