import Engine
import Formats
import Foundation
import Models
import QToolConfig
import Tensors

/// `qtools convert CKPT --config CFG --to packed -o model.qpack`: binary and ternary layers as
/// bit planes (bnnpack 1), the rest of the model as float, in one file that runs alone.
extension ConvertCommand {
    /// True when the output is a packed model (`--to packed`, or a `.qpack` output without `--to`).
    var writesPacked: Bool { target == "packed" || (target == nil && output.lowercased().hasSuffix(".qpack")) }

    func runPackedExport() throws {
        try ExitCodes.reporting {
            let file = try OutputFile(path: output, overwrite: force, reading: [input, config])
            if try ModelFile.open(path: input).checkpoint.format == .bnnpack {
                throw UsageError("\(input) is already a packed model (bnnpack); pack the checkpoint it was made from")
            }
            let record = try packedConfigRecord()
            let (options, stateDict) = try ModelLoader.checkpoint(input, config: config, overrides: overrides)
            let packed: ModelPacker.Packed
            do {
                packed = try ModelPacker.pack(options: options, stateDict: stateDict, keepFloat: keepFloat)
            } catch let e as InferenceError { throw ModelLoadError(file: input, error: e) }
            if packed.manifest.layers.isEmpty {
                throw UsageError(
                    "\(input): no binary or ternary layer to pack (\(options.model) [\(options.keywords.joined(separator: ","))])"
                        + (packed.manifest.floatLayers.isEmpty
                            ? "" : "; kept as float: " + packed.manifest.floatLayers.map(\.name).joined(separator: ", ")))
            }
            let json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
            try PackedFile.write(
                manifest: packed.manifest, packed: packed.packed, others: packed.others,
                metadata: [ConfigRecord.key: json], to: file)
            try file.flush()
            if !noVerify { try verifyPacked(file.temporaryPath, against: packed, options: options) }
            try file.commit()
            let fileBytes = file.position
            let report = PackedConvertReport(output: output, packed: packed, fileBytes: fileBytes)
            if keepFloat, !packed.manifest.floatLayers.isEmpty {
                Terminal.warning(
                    "kept \(packed.manifest.floatLayers.count) quantized layer(s) as float: "
                        + packed.manifest.floatLayers.prefix(4).map { "\($0.name) (\($0.reason))" }.joined(separator: "; "),
                    quiet: outputOptions.quiet)
            }
            Terminal.out(outputOptions.json ? try JSONOutput.render(report) : report.text)
        }
    }

    /// The config record the file carries so that it runs alone: `--config` (with the
    /// overrides), else the one the checkpoint records.
    private func packedConfigRecord() throws -> ConfigRecord {
        let env = ProcessInfo.processInfo.environment
        if let config { return try ConfigRecord.load(path: config, overrides: overrides, environment: env).record }
        if var recorded = try ConfigRecord.read(from: ModelFile.open(path: input).checkpoint) {
            recorded.overrides += overrides
            return recorded
        }
        throw UsageError("\(input) records no config; pass --config CFG (the QTool config the checkpoint was trained with)")
    }

    /// Reads the written file back as `run` will: it must validate, and each packed layer's
    /// weight must unpack to exactly the float weight the checkpoint's float path uses.
    private func verifyPacked(_ path: String, against packed: ModelPacker.Packed, options: QToolOptions) throws {
        let opened = try ModelFile.open(path: path)
        guard let manifest = try PackedModelBuilder.manifest(opened.checkpoint), manifest == packed.manifest else {
            throw ConversionError(.verificationFailed, "\(output): the written manifest does not read back as written")
        }
        var tensors: [String: Tensor] = [:]
        for (name, t) in opened.checkpoint.root.allTensors() { tensors[name] = t.materialize() }
        for layer in manifest.layers {
            let w = try PackedLayerLowering.weight(layer) { tensors[$0] }.floats()
            guard let expected = packed.floatWeights[layer.name], w == expected else {
                throw ConversionError(
                    .verificationFailed, "\(output): layer \(layer.name) does not unpack to the weight the float path uses")
            }
        }
    }
}

/// The result of `convert --to packed` (the `--json` document).
struct PackedConvertReport: Encodable {
    var output: String
    var format = "bnnpack"
    var version = PackedFile.version
    var binaryLayers: Int
    var ternaryLayers: Int
    var floatLayers: [PackedManifest.FloatLayer]
    var packedBytes: Int
    var packedLayersFloat32Bytes: Int
    var fileBytes: Int
    var modelFloat32Bytes: Int

    enum CodingKeys: String, CodingKey {
        case output, format, version, binaryLayers = "binary_layers", ternaryLayers = "ternary_layers"
        case floatLayers = "float_layers", packedBytes = "packed_bytes"
        case packedLayersFloat32Bytes = "packed_layers_float32_bytes", fileBytes = "file_bytes"
        case modelFloat32Bytes = "model_float32_bytes"
    }

    init(output: String, packed: ModelPacker.Packed, fileBytes: Int) {
        self.output = output
        let layers = packed.manifest.layers
        ternaryLayers = layers.filter(\.isTernary).count
        binaryLayers = layers.count - ternaryLayers
        floatLayers = packed.manifest.floatLayers
        packedBytes = packed.packed.reduce(0) { $0 + $1.tensor.byteCount }
        packedLayersFloat32Bytes = layers.reduce(0) { $0 + $1.outChannels * $1.k * 4 }
        self.fileBytes = fileBytes
        modelFloat32Bytes =
            packedLayersFloat32Bytes
            + packed.others.reduce(0) { $0 + ($1.tensor.dtype.isFloatingPoint ? $1.tensor.elementCount * 4 : 0) }
    }

    var text: String {
        func ratio(_ a: Int, _ b: Int) -> String { b == 0 ? "-" : "1/" + Numbers.short(Double(b) / Double(a), digits: 3) }
        var lines = [
            "wrote \(output): bnnpack \(version), \(binaryLayers) binary + \(ternaryLayers) ternary layers packed"
                + (floatLayers.isEmpty ? "" : ", \(floatLayers.count) quantized layer(s) kept as float")
        ]
        lines.append(
            "  packed weights \(Numbers.bytes(packedBytes)) (\(ratio(packedBytes, packedLayersFloat32Bytes)) of their float32 \(Numbers.bytes(packedLayersFloat32Bytes)))"
        )
        lines.append(
            "  file \(Numbers.bytes(fileBytes)) (\(ratio(fileBytes, modelFloat32Bytes)) of the model's float32 weights, \(Numbers.bytes(modelFloat32Bytes)))"
        )
        return lines.joined(separator: "\n")
    }
}
