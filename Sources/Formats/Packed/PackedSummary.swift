import Tensors

/// What `qtools inspect` shows of a packed file: the manifest, each layer's encoding, `K`,
/// padding waste and bytes, and the size against the same model in float32.
public struct PackedSummary: Codable, Sendable {
    /// One packed layer.
    public struct Layer: Codable, Sendable {
        /// Module path.
        public var name: String
        /// `bconv2d`, `tconv2d`, `bdense`, `tdense`.
        public var op: String
        /// Weight encoding (`binary`, `ternary`) and input encoding (`binary`, `unipolar:3`, ...).
        public var weightEncoding: String, inputEncoding: String
        /// Padding value in the input encoding (`+1`, `0`, `none`).
        public var padValue: String
        /// Dot-product length `KH * KW * Cin_g`.
        public var k: Int
        /// Fraction of each packed row that is padding bits.
        public var paddingWaste: Double
        /// Bytes of the planes and the scale.
        public var packedBytes: Int
        /// Bytes of the same weight as float32.
        public var float32Bytes: Int
    }

    /// The manifest as stored.
    public var manifest: PackedManifest
    /// The packed layers.
    public var layers: [Layer]
    /// Planes and scales of all packed layers.
    public var packedBytes: Int
    /// Those layers' weights as float32.
    public var packedLayersFloat32Bytes: Int
    /// `packedBytes / packedLayersFloat32Bytes`.
    public var packedLayersRatio: Double
    /// Every weight of the model as float32 (packed layers unpacked, other tensors widened).
    public var modelFloat32Bytes: Int
    /// The whole file against ``modelFloat32Bytes``.
    public var fileRatio: Double

    /// The summary of a validated packed checkpoint of `fileBytes` bytes; nil for other formats
    /// or an unreadable manifest.
    public static func of(_ checkpoint: Checkpoint, fileBytes: Int) -> PackedSummary? {
        guard checkpoint.format == .bnnpack,
            let text = checkpoint.safeTensorsMetadata.first(where: { $0.key == PackedFile.manifestKey })?.value,
            let manifest = try? PackedManifest.decode(text)
        else { return nil }
        var sizes: [String: StoredTensor] = [:]
        for (name, t) in checkpoint.root.allTensors() { sizes[name] = t }
        var layers: [Layer] = []
        var owned = Set<String>()
        for l in manifest.layers {
            let names = l.planeNames + [l.scaleName]
            owned.formUnion(names)
            let packed = names.reduce(0) { $0 + (sizes[$1]?.byteCount ?? 0) }
            let float = l.outChannels * l.k * 4
            layers.append(
                Layer(
                    name: l.name, op: l.op, weightEncoding: l.weightEncoding, inputEncoding: l.inputEncoding,
                    padValue: l.padValue, k: l.k, paddingWaste: l.paddingWaste, packedBytes: packed, float32Bytes: float))
        }
        let packed = layers.reduce(0) { $0 + $1.packedBytes }
        let packedFloat = layers.reduce(0) { $0 + $1.float32Bytes }
        var others = 0
        for (name, t) in sizes where !owned.contains(name) && t.dtype.isFloatingPoint { others += t.elementCount * 4 }
        let model = packedFloat + others
        return PackedSummary(
            manifest: manifest, layers: layers, packedBytes: packed, packedLayersFloat32Bytes: packedFloat,
            packedLayersRatio: packedFloat == 0 ? 0 : Double(packed) / Double(packedFloat), modelFloat32Bytes: model,
            fileRatio: model == 0 ? 0 : Double(fileBytes) / Double(model))
    }
}
