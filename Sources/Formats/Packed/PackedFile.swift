import Tensors

/// The `bnnpack` version 1 file (`.qpack`): a safetensors file whose `__metadata__` declares the
/// bit layout and carries a ``PackedManifest`` (bitpacking.md §8.2).
///
/// ```
/// __metadata__   bnnpack.version "1", bnnpack.bit_order "lsb0", bnnpack.one_bit_means "-1",
///                bnnpack.row_align_bits "64", bnnpack.sign_tie "zero_is_plus_one",
///                bnnpack.manifest <JSON>, qtools_config <the QTool config record>
/// <layer>.w.bits   U8 [Cout, KH, KW, rowBytes(Cin_g)]   binary weights (see BitPlanes)
/// <layer>.w.sign   U8 same shape                          ternary weights: sign plane
/// <layer>.w.mask   U8 same shape                          ternary weights: mask plane
/// <layer>.w.scale  F32 [Cout]                             weight = scale[o] * (1 - 2 bit) (* mask)
/// everything else  the model's state dict as stored (float stem, fc, BN, skips, quantizers)
/// ```
public enum PackedFile {
    /// `bnnpack`.
    public static let formatName = "bnnpack"
    /// The version this reader and writer implement.
    public static let version = 1
    /// Metadata key of the version.
    public static let versionKey = "bnnpack.version"
    /// Metadata key of the manifest.
    public static let manifestKey = "bnnpack.manifest"
    /// The fixed layout declarations of version 1 (besides the version and the manifest).
    public static let layoutMetadata: [String: String] = [
        "bnnpack.bit_order": "lsb0",
        "bnnpack.one_bit_means": "-1",
        "bnnpack.row_align_bits": "64",
        "bnnpack.sign_tie": "zero_is_plus_one",
    ]

    /// True when safetensors metadata declares a bnnpack file.
    public static func declares(_ metadata: [(key: String, value: String)]) -> Bool {
        metadata.contains { $0.key == versionKey }
    }

    /// Writes a packed file: the planes and scales of `manifest`'s layers (`packed`) and the
    /// model's other tensors (`others`), with `metadata` (e.g. the config record) added to
    /// the layout declarations.
    ///
    /// - Throws: ``FormatError`` from ``SafeTensorsWriter``, or the sink's write error.
    public static func write(
        manifest: PackedManifest, packed: [(name: String, tensor: Tensor)],
        others: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to sink: ByteSink
    ) throws {
        var meta = metadata
        meta.merge(layoutMetadata) { _, fixed in fixed }
        meta[versionKey] = String(version)
        meta[manifestKey] = try manifest.encoded()
        try SafeTensorsWriter.write(packed + others, metadata: meta, to: sink)
    }

    /// Checks a read safetensors checkpoint against the bnnpack rules and returns its manifest.
    ///
    /// Beyond the container checks safetensors already made (offsets, sizes): the version and
    /// the layout declarations, the manifest, and per layer that every plane and scale tensor
    /// exists with the dtype and shape the manifest implies, that padding bits are 0, and for
    /// ternary weights that `sign & ~mask = 0`; no `.w.*` tensor may be left out of the manifest.
    ///
    /// - Throws: ``FormatError`` naming the tensor (or metadata key) and what is wrong.
    public static func validate(_ checkpoint: Checkpoint) throws(FormatError) -> PackedManifest {
        let meta = checkpoint.safeTensorsMetadata
        func value(_ key: String) -> String? { meta.first { $0.key == key }?.value }
        guard let v = value(versionKey) else {
            throw FormatError(.missing("metadata \"\(versionKey)\" (not a bnnpack file)"))
        }
        guard let found = Int(v) else {
            throw FormatError(.invalid("metadata \"\(versionKey)\" is \"\(v)\", not an integer"))
        }
        guard found == version else {
            throw FormatError(.unsupportedVersion(found: found, newestSupported: version))
        }
        for (key, expected) in layoutMetadata.sorted(by: { $0.key < $1.key }) {
            guard let got = value(key) else { throw FormatError(.missing("metadata \"\(key)\"")) }
            guard got == expected else {
                throw FormatError(
                    .unsupported("metadata \"\(key)\" is \"\(got)\"; bnnpack version 1 requires \"\(expected)\""))
            }
        }
        guard let text = value(manifestKey) else { throw FormatError(.missing("metadata \"\(manifestKey)\"")) }
        let manifest = try PackedManifest.decode(text)
        guard manifest.format == formatName, manifest.version == version else {
            throw FormatError(
                .invalid(
                    "the manifest says format \"\(manifest.format)\" version \(manifest.version); the metadata says bnnpack \(version)"))
        }
        var tensors: [String: StoredTensor] = [:]
        for (name, t) in checkpoint.root.allTensors() { tensors[name] = t }
        var claimed = Set<String>()
        for layer in manifest.layers {
            guard claimed.insert(layer.name).inserted else { throw FormatError(.duplicateName(layer.name)) }
            try validate(layer, tensors)
        }
        let owned = Set(manifest.layers.flatMap { $0.planeNames + [$0.scaleName] })
        for name in tensors.keys.sorted() where !owned.contains(name) {
            for suffix in [".w.bits", ".w.sign", ".w.mask", ".w.scale"] where name.hasSuffix(suffix) {
                throw FormatError(
                    .invalid("a packed-weight tensor that no manifest layer lists (manifest/tensor mismatch)"), tensor: name)
            }
        }
        return manifest
    }

    private static func validate(_ layer: PackedManifest.Layer, _ tensors: [String: StoredTensor]) throws(FormatError) {
        guard layer.op == "bconv2d" || layer.op == "tconv2d" || layer.op == "bdense" || layer.op == "tdense" else {
            throw FormatError(.unsupported("layer \"\(layer.name)\": op \"\(layer.op)\" (bnnpack 1 has bconv2d, tconv2d, bdense, tdense)"))
        }
        guard layer.weightEncoding == (layer.op.hasPrefix("t") ? "ternary" : "binary") else {
            throw FormatError(.invalid("layer \"\(layer.name)\": op \(layer.op) with weight_encoding \"\(layer.weightEncoding)\""))
        }
        // Bounded so that no product below can overflow (kernel <= 2^16 each, channels < 2^24).
        let dims = [layer.inChannels, layer.outChannels, layer.groups]
        guard dims.allSatisfy({ $0 > 0 && $0 < 1 << 24 }), layer.kernel.count == 2,
            layer.kernel.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }), layer.inChannels % layer.groups == 0,
            layer.outChannels % layer.groups == 0, layer.k == layer.kernel.reduce(1, *) * layer.rowCount
        else {
            throw FormatError(
                .invalid(
                    "layer \"\(layer.name)\": inconsistent geometry (in \(layer.inChannels), out \(layer.outChannels), kernel \(layer.kernel), groups \(layer.groups), K \(layer.k))"
                ))
        }
        var planes: [[UInt8]] = []
        for name in layer.planeNames {
            let t = try tensor(name, tensors, dtype: .uint8, shape: layer.planeShape, layer: layer.name)
            let bytes = t.materialize().data.toArray()
            if let (row, bit) = BitPlanes.firstSetPaddingBit(bytes, rows: layer.rows, count: layer.rowCount) {
                throw FormatError(
                    .invalid(
                        "padding bit set: row \(row), bit \(bit) (a row holds \(layer.rowCount) elements; bits \(layer.rowCount)..<\(BitPlanes.rowBytes(layer.rowCount) * 8) must be 0)"
                    ), tensor: name)
            }
            planes.append(bytes)
        }
        if layer.isTernary,
            let (row, element) = BitPlanes.firstSignOutsideMask(
                sign: planes[0], mask: planes[1], rows: layer.rows, count: layer.rowCount)
        {
            throw FormatError(
                .invalid("sign bit set where the mask is 0 (row \(row), element \(element)); ternary planes need sign & ~mask = 0"),
                tensor: layer.planeNames[0])
        }
        _ = try tensor(layer.scaleName, tensors, dtype: .float32, shape: [layer.outChannels], layer: layer.name)
    }

    private static func tensor(
        _ name: String, _ tensors: [String: StoredTensor], dtype: DType, shape: [Int], layer: String
    ) throws(FormatError) -> StoredTensor {
        guard let t = tensors[name] else {
            throw FormatError(.missing("tensor of manifest layer \"\(layer)\" (manifest/tensor mismatch)"), tensor: name)
        }
        guard t.dtype == dtype else {
            throw FormatError(
                .invalid("dtype \(t.dtype.safeTensorsName ?? t.dtype.rawValue), the manifest implies \(dtype.safeTensorsName ?? "")"),
                tensor: name)
        }
        guard t.shape == shape else {
            throw FormatError(
                .invalid("shape \(Shapes.describe(t.shape)), the manifest implies \(Shapes.describe(shape))"), tensor: name)
        }
        return t
    }
}
