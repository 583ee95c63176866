#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The JSON manifest of a `bnnpack` file (`__metadata__["bnnpack.manifest"]`, bitpacking.md §8.2).
///
/// It lists every packed layer with what a kernel needs to run it without the model code:
/// geometry, `K`, the weight encoding and its tensors, the input (activation) encoding and the
/// value the spatial padding has in that encoding. Everything else in the file is an ordinary
/// tensor of the model's state dict (stem, fc, BN, real-valued skips, quantizer parameters).
public struct PackedManifest: Codable, Sendable, Equatable {
    /// Always `bnnpack`.
    public var format: String = PackedFile.formatName
    /// The format version (``PackedFile/version``).
    public var version: Int = PackedFile.version
    /// The model-zoo name the file was packed from (`--model`).
    public var model: String
    /// `before_quant` (QTool's default: zero-pad the real input, then quantize) or
    /// `after_quant` (`--padding_after_quant`: pad the quantized input with 0).
    public var padding: String
    /// The packed layers, in model order.
    public var layers: [Layer]
    /// Quantized layers stored as float (`--keep-float`), with the reason they are not packed.
    public var floatLayers: [FloatLayer] = []

    /// Creates a manifest.
    public init(model: String, padding: String, layers: [Layer], floatLayers: [FloatLayer] = []) {
        self.model = model
        self.padding = padding
        self.layers = layers
        self.floatLayers = floatLayers
    }

    /// One packed conv or dense layer.
    public struct Layer: Codable, Sendable, Equatable {
        /// Module path (`layer1.0.conv1.0`); its tensors are `<name>.w.*`.
        public var name: String
        /// `bconv2d`, `tconv2d` (conv with binary / ternary weights), `bdense`, `tdense`.
        public var op: String
        /// Input and output channels (features for dense layers).
        public var inChannels: Int, outChannels: Int
        /// `[kh, kw]` (`[1, 1]` for dense).
        public var kernel: [Int]
        /// `[sh, sw]`.
        public var stride: [Int]
        /// `[dh, dw]`.
        public var dilation: [Int]
        /// Groups (`Cin_g = inChannels / groups`).
        public var groups: Int
        /// Spatial zero padding `[top, left, bottom, right]` of the module.
        public var pads: [Int]
        /// The padding's value in the input encoding: `+1` (padded before a sign quantizer),
        /// `0` (padded after quantization, or a level 0 of unipolar/ternary input), `none`.
        public var padValue: String
        /// `binary` (sign), `ternary`, `unipolar:<levels>`, `float`, or `levels:<n>`.
        public var inputEncoding: String
        /// The input quantizer (method and, for XNOR, its scale: `xnor(scale=none)`).
        public var inputQuantizer: String
        /// `binary` (one plane) or `ternary` (sign and mask planes).
        public var weightEncoding: String
        /// The weight quantizer's method (`xnor`, `dorefa`, `non-uniform`, ...).
        public var weightQuantizer: String
        /// `KH * KW * Cin_g`: the unpadded dot-product length.
        public var k: Int

        /// Creates a layer entry.
        public init(
            name: String, op: String, inChannels: Int, outChannels: Int, kernel: [Int], stride: [Int],
            dilation: [Int], groups: Int, pads: [Int], padValue: String, inputEncoding: String,
            inputQuantizer: String, weightEncoding: String, weightQuantizer: String
        ) {
            self.name = name
            self.op = op
            self.inChannels = inChannels
            self.outChannels = outChannels
            self.kernel = kernel
            self.stride = stride
            self.dilation = dilation
            self.groups = groups
            self.pads = pads
            self.padValue = padValue
            self.inputEncoding = inputEncoding
            self.inputQuantizer = inputQuantizer
            self.weightEncoding = weightEncoding
            self.weightQuantizer = weightQuantizer
            self.k = kernel.reduce(1, *) * (groups > 0 ? inChannels / groups : 0)
        }

        /// Elements per packed row: `Cin_g` (the packed axis).
        public var rowCount: Int { groups > 0 ? inChannels / groups : 0 }
        /// Rows of each plane: `Cout * KH * KW`.
        public var rows: Int { outChannels * kernel.reduce(1, *) }
        /// True for ternary weights (two planes).
        public var isTernary: Bool { weightEncoding == "ternary" }
        /// The plane tensors' shape: `[Cout, KH, KW, rowBytes(Cin_g)]` (dense: `[Out, rowBytes(In)]`).
        public var planeShape: [Int] {
            let rb = BitPlanes.rowBytes(rowCount)
            return op.hasSuffix("dense") ? [outChannels, rb] : [outChannels] + kernel + [rb]
        }
        /// Names of the plane tensors (`.w.bits`, or `.w.sign` and `.w.mask`).
        public var planeNames: [String] {
            isTernary ? [name + ".w.sign", name + ".w.mask"] : [name + ".w.bits"]
        }
        /// Name of the per-output-channel scale tensor (F32 `[Cout]`).
        public var scaleName: String { name + ".w.scale" }
        /// The fraction of each packed row that is padding: `1 - Cin_g / (64 * ceil(Cin_g / 64))`.
        public var paddingWaste: Double {
            let bits = BitPlanes.rowBytes(rowCount) * 8
            return bits == 0 ? 0 : Double(bits - rowCount) / Double(bits)
        }

        enum CodingKeys: String, CodingKey {
            case name, op, kernel, stride, dilation, groups, pads, k = "K"
            case inChannels = "in_channels", outChannels = "out_channels", padValue = "pad_value"
            case inputEncoding = "input_encoding", inputQuantizer = "input_quantizer"
            case weightEncoding = "weight_encoding", weightQuantizer = "weight_quantizer"
        }
    }

    /// A quantized layer kept as float, and why.
    public struct FloatLayer: Codable, Sendable, Equatable {
        /// Module path.
        public var name: String
        /// Why it is not packed (what the packer found).
        public var reason: String
        /// Creates an entry.
        public init(name: String, reason: String) {
            self.name = name
            self.reason = reason
        }
    }

    enum CodingKeys: String, CodingKey {
        case format, version, model, padding, layers, floatLayers = "float_layers"
    }

    /// Compact JSON with sorted keys.
    public func encoded() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }

    /// Decodes the manifest text.
    /// - Throws: ``FormatError`` `.invalid` naming what is wrong.
    public static func decode(_ text: String) throws(FormatError) -> PackedManifest {
        do {
            return try JSONDecoder().decode(PackedManifest.self, from: Data(text.utf8))
        } catch {
            throw FormatError(.invalid("the bnnpack manifest is not valid: \(describe(error))"))
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let c):
            return "missing \"\(key.stringValue)\"" + path(c.codingPath)
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "wrong type" + path(c.codingPath)
        case DecodingError.dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not JSON" : "bad value" + path(c.codingPath)
        default: return "\(error)"
        }
    }

    private static func path(_ p: [any CodingKey]) -> String {
        p.isEmpty ? "" : " at " + p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
