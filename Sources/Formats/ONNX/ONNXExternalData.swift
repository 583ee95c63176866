import Tensors

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Resolves initializers stored outside the model (`data_location = EXTERNAL`).
///
/// Each tensor's `external_data` entries name a `location` (a path relative to the model's
/// directory, required), an `offset` and a `length` (decimal strings, optional) and an optional
/// `checksum` (SHA-1, not verified). Files are memory-mapped once and shared by every tensor
/// that points into them. Absolute locations and `..` components are refused, as
/// `onnx.checker` does, so a model cannot make the reader open arbitrary files; so is a location
/// that resolves (through symlinks) outside the model's directory, as onnx and onnxruntime do.
struct ONNXExternalData {
    /// The model file's directory; nil when the model was read from memory.
    let baseDirectory: String?
    /// Mapped files by location.
    private var stores: [String: ByteStore] = [:]
    /// Locations used, in first-use order.
    private(set) var locations: [String] = []

    init(baseDirectory: String?) { self.baseDirectory = baseDirectory }

    /// The payload of `tensor`'s external data (its length is checked by the caller).
    mutating func payload(_ tensor: Onnx_TensorProto) throws(FormatError) -> (ByteSlice, location: String) {
        var location: String?
        var offset = 0
        var length: Int?
        for e in tensor.externalData {
            switch e.key {
            case "location": location = e.value
            case "offset": offset = try Self.decimal(e.value, "offset")
            case "length": length = try Self.decimal(e.value, "length")
            default: break
            }
        }
        guard let location, !location.isEmpty else {
            throw FormatError(.missing("external_data \"location\" (data_location is EXTERNAL)"))
        }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw FormatError(
                .invalid(
                    "external data location \"\(location)\" must be a relative path inside the model's directory"
                ))
        }
        guard let baseDirectory else {
            throw FormatError(
                .unsupported(
                    "initializer data is stored externally in \"\(location)\"; open the model from a file so that file can be found next to it"
                ))
        }
        let store = try open(location, in: baseDirectory)
        guard offset <= store.count else {
            throw FormatError(
                .truncated(needed: offset, available: store.count), entry: location)
        }
        let n = length ?? (store.count - offset)
        guard n <= store.count - offset else {
            throw FormatError(
                .truncated(needed: n, available: store.count - offset), entry: location, offset: offset)
        }
        return (store.slice(offset..<(offset + n)), location)
    }

    private mutating func open(_ location: String, in dir: String) throws(FormatError) -> ByteStore {
        if let s = stores[location] { return s }
        let path = dir.isEmpty ? location : dir + "/" + location
        try Self.requireInside(path, location: location, directory: dir.isEmpty ? "." : dir)
        let store: ByteStore
        do { store = try ByteStore.map(path: path) } catch {
            throw FormatError(.missing("external data file \"\(location)\" (\(error.reason))"))
        }
        stores[location] = store
        locations.append(location)
        return store
    }

    /// Throws when `path` (which must exist) resolves outside `directory` (a symlink out of it).
    private static func requireInside(_ path: String, location: String, directory: String) throws(FormatError) {
        guard let real = realPath(path) else { return }  // missing: ByteStore reports it
        guard let base = realPath(directory) else { return }
        let prefix = base.hasSuffix("/") ? base : base + "/"
        guard real.hasPrefix(prefix) else {
            throw FormatError(
                .invalid(
                    "external data location \"\(location)\" resolves to \(real), outside the model's directory \(base) (a symlink out of it); refused as onnx and onnxruntime refuse it"
                ))
        }
    }

    private static func realPath(_ p: String) -> String? {
        guard let r = unsafe realpath(p, nil) else { return nil }
        defer { unsafe free(r) }
        return unsafe String(cString: r)
    }

    private static func decimal(_ s: String, _ key: String) throws(FormatError) -> Int {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = Int(s) else {
            throw FormatError(.invalid("external_data \"\(key)\" is \"\(s)\", not a decimal byte count"))
        }
        return v
    }
}
