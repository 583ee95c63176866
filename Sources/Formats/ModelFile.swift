import Tensors

/// The one entry point for reading any checkpoint file: sniff, pick a reader, add the file name
/// to every error.
public enum ModelFile {
    /// A file read into a ``Checkpoint``; `store` keeps the mapping alive.
    public struct Opened: Sendable {
        public var checkpoint: Checkpoint
        public var fileBytes: Int
        public var kind: FileKind
        /// Other files read (ONNX external data), as paths: no output may be one of them.
        public var externalFiles: [String] = []
    }

    /// Memory-maps `path` and reads it with the reader its magic bytes select.
    ///
    /// - Throws: ``ByteStore/OpenError`` when the file cannot be opened; ``FormatError`` (with
    ///   `file` set) when it is malformed or of an unsupported kind.
    public static func open(path: String, verifyCRC: Bool = false) throws -> Opened {
        let store = try ByteStore.map(path: path)
        do {
            let slash = path.lastIndex(of: "/")
            let dir = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
            if FileSniffer.sniff(store.all) == .onnx {
                let m = try ONNXReader.model(store.all, baseDirectory: dir)
                let files = Set(m.summary.initializers.compactMap(\.location)).sorted().map { dir + "/" + $0 }
                return Opened(checkpoint: m.checkpoint, fileBytes: store.count, kind: .onnx, externalFiles: files)
            }
            let (kind, checkpoint) = try read(store.all, verifyCRC: verifyCRC, baseDirectory: dir)
            return Opened(checkpoint: checkpoint, fileBytes: store.count, kind: kind)
        } catch var e as FormatError {
            if e.file == nil { e.file = path }
            throw e
        }
    }

    /// Reads in-memory bytes (used by `open`, tests and the fuzz targets); `baseDirectory` is
    /// where ONNX external data is looked for (none when nil).
    public static func read(
        _ bytes: ByteSlice, verifyCRC: Bool = false, baseDirectory: String? = nil
    ) throws -> (FileKind, Checkpoint) {
        let kind = FileSniffer.sniff(bytes)
        switch kind {
        case .zip:
            let zip = try ZipArchive(bytes)
            if isNpz(zip) { return (kind, try NpzReader.read(bytes, verifyCRC: verifyCRC)) }
            return (kind, try TorchCheckpointReader.read(bytes, verifyCRC: verifyCRC))
        case .torchLegacy, .tar:
            return (kind, try TorchCheckpointReader.read(bytes, verifyCRC: verifyCRC))
        case .safetensors:
            var checkpoint = try SafeTensorsReader.read(bytes)
            if PackedFile.declares(checkpoint.safeTensorsMetadata) {
                let manifest = try PackedFile.validate(checkpoint)
                checkpoint.format = .bnnpack
                checkpoint.facts += [
                    ("bnnpack version", String(manifest.version)), ("packed layers", String(manifest.layers.count)),
                ]
            }
            return (kind, checkpoint)
        case .npy: return (kind, try NpyReader.read(bytes))
        case .onnx: return (kind, try ONNXReader.read(bytes, baseDirectory: baseDirectory))
        case .gitLFSPointer:
            throw FormatError(
                .notACheckpoint(
                    "this is a Git LFS pointer, not the checkpoint itself; run `git lfs pull` to fetch the real file"
                ))
        case .html:
            throw FormatError(
                .notACheckpoint("this is an HTML page (a failed or redirected download?), not a checkpoint"))
        case .torchPreview:
            throw FormatError(
                .unsupported("the PYTORCH1 container of torch's 2018 preview release (torch refuses it too)"))
        case .unknown:
            if bytes.count >= 9, bytes[8] == UInt8(ascii: "{") {
                // A safetensors start (u64 header length, '{') whose header runs past the end.
                let len = Elements.loadLE(bytes, 0, 8)
                if len > UInt64(bytes.count - 8), len < 1 << 40 {
                    throw FormatError(
                        .notACheckpoint(
                            "a truncated safetensors file: its JSON header alone needs \(len) bytes after the 8-byte length, "
                                + "the file has \(bytes.count - 8) (an interrupted download or copy?)"))
                }
            }
            let head = bytes.slice(0..<min(bytes.count, 16)).toArray()
            throw FormatError(
                .notACheckpoint(
                    bytes.count == 0
                        ? "the file is empty"
                        : "unrecognised format (first bytes \(FormatError.hex(head))); qtools reads PyTorch zip/legacy/tar checkpoints, safetensors, .npy, .npz and ONNX"
                ))
        }
    }

    /// A zip whose records are all `.npy` files (np.savez) rather than a torch archive.
    static func isNpz(_ zip: ZipArchive) -> Bool {
        !zip.entries.isEmpty && !zip.entries.contains { $0.name.hasSuffix("data.pkl") }
            && zip.entries.allSatisfy { $0.name.hasSuffix(".npy") || $0.name.hasSuffix("/") }
    }
}
