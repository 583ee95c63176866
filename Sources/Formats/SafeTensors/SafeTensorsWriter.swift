import Tensors

/// Writes safetensors files the way the reference writer (safetensors 0.8 `serialize`) does,
/// so the same tensors and metadata give byte-identical files:
///
/// 1. sort tensors by the reference `Dtype` order, descending (wider types first, see
///    ``Tensors/DType/safeTensorsName``), then by name (UTF-8 byte order), and give them
///    consecutive `data_offsets`; each tensor is then naturally aligned within the buffer;
/// 2. compact JSON: `__metadata__` first, then tensors in offset order, each
///    `{"dtype":…,"shape":[…],"data_offsets":[b,e]}`, strings escaped as serde_json does;
/// 3. pad the header with spaces to a multiple of 8, write `N` (u64 LE), the header, the data.
///
/// Metadata keys are written sorted by UTF-8 bytes. (The reference writer uses a hash map, so
/// its order for two or more keys varies run to run; with one key the files are identical.)
/// `{"format":"pt"}` is added unless the caller gives a `format` key: transformers refuses
/// safetensors files whose metadata lacks it.
public enum SafeTensorsWriter {
    /// Writes `tensors` with `metadata` to `sink`.
    ///
    /// Tensor bytes are written straight from their ``Tensors/ByteSlice`` (no copy for mapped
    /// inputs). `Tensor` is always dense, row-major and little-endian, as safetensors requires.
    ///
    /// - Throws: ``FormatError`` `.duplicateName`, `.invalid` (the reserved name
    ///   `__metadata__`), `.unsupportedDType` (`complex128`), or the sink's write error.
    public static func write(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
        to sink: ByteSink
    ) throws {
        let (header, ordered) = try prepare(tensors, metadata: metadata)
        var prefix = ByteWriter()
        prefix.u64(UInt64(header.count))
        prefix.append(header)
        try sink.write(prefix.bytes)
        for t in ordered where t.data.count > 0 { try sink.write(t.data) }
    }

    /// The padded JSON header and the tensors in data order.
    static func prepare(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]
    ) throws(FormatError) -> (header: [UInt8], ordered: [Tensor]) {
        var seen = Set<String>()
        for (name, t) in tensors {
            guard name != "__metadata__" else {
                throw FormatError(
                    .invalid("\"__metadata__\" is reserved and cannot name a tensor"), tensor: name)
            }
            guard seen.insert(name).inserted else {
                throw FormatError(.duplicateName(name), tensor: name)
            }
            guard t.dtype.safeTensorsName != nil else {
                throw FormatError(
                    .unsupportedDType("\(t.dtype.rawValue) (safetensors has no such type)"),
                    tensor: name)
            }
        }
        let sorted = tensors.sorted { a, b in
            let ra = a.tensor.dtype.safeTensorsRank, rb = b.tensor.dtype.safeTensorsRank
            if ra != rb { return ra > rb }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var meta = metadata
        if meta["format"] == nil { meta["format"] = "pt" }
        var json: [UInt8] = Array("{\"__metadata__\":{".utf8)
        let keys = meta.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for (i, k) in keys.enumerated() {
            if i > 0 { json.append(UInt8(ascii: ",")) }
            json += JSONText.quoted(k) + [UInt8(ascii: ":")] + JSONText.quoted(meta[k] ?? "")
        }
        json.append(UInt8(ascii: "}"))
        var offset = 0
        for (name, t) in sorted {
            let end = offset + t.data.count
            json.append(UInt8(ascii: ","))
            json += JSONText.quoted(name)
            json += Array(":{\"dtype\":\"\(t.dtype.safeTensorsName ?? "")\",\"shape\":".utf8)
            json += Array(("[" + t.shape.map(String.init).joined(separator: ",") + "]").utf8)
            json += Array(",\"data_offsets\":[\(offset),\(end)]}".utf8)
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
        guard json.count <= SafeTensorsHeader.maxHeaderBytes else {
            throw FormatError(
                .tooLarge(
                    what: "safetensors header", size: json.count,
                    limit: SafeTensorsHeader.maxHeaderBytes))
        }
        return (json, sorted.map(\.tensor))
    }
}

extension SafeTensorsWriter {
    /// Writes every tensor of a checkpoint tree, named by dotted path (see
    /// ``Checkpoint/flattened(rootName:)``).
    ///
    /// Views are materialised first: contiguous ones stay windows into their storage, strided
    /// ones are copied, and tensors that share a storage (tied weights) each get their own
    /// bytes, since safetensors has no sharing. With `scalarsAsMetadata`, scalar leaves
    /// (`epoch`, `arch`, ...) are kept as metadata strings under their dotted name, written as
    /// Python's `str()` would; without it they are an error. A scalar whose name collides with a
    /// metadata key is a `.duplicateName` error.
    ///
    /// A checkpoint read from safetensors keeps its `__metadata__` (``Checkpoint/safeTensorsMetadata``);
    /// keys in `metadata` replace it key by key. So reading a file and writing the checkpoint
    /// back reproduces the file when it follows the reference layout.
    ///
    /// - Throws: ``FormatError`` for values safetensors cannot represent, plus the errors of
    ///   ``write(_:metadata:to:)``.
    public static func write(
        _ checkpoint: Checkpoint, metadata: [String: String] = [:], scalarsAsMetadata: Bool = true,
        to sink: ByteSink
    ) throws {
        let flat = try checkpoint.flattened()
        var meta: [String: String] = [:]
        for (k, v) in checkpoint.safeTensorsMetadata { meta[k] = v }
        meta.merge(metadata) { _, given in given }
        for (name, value) in flat.scalars {
            guard scalarsAsMetadata, let text = value.pythonText else {
                throw FormatError(
                    .unsupported(
                        "\"\(name)\" is a \(value.typeName), not a tensor (safetensors holds only tensors)"
                    ),
                    tensor: name)
            }
            guard meta[name] == nil else { throw FormatError(.duplicateName(name), tensor: name) }
            meta[name] = text
        }
        try write(flat.tensors.map { ($0.name, $0.tensor.materialize()) }, metadata: meta, to: sink)
    }
}
