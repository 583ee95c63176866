import Engine
import Formats
import QToolConfig
import Tensors

/// Builds the runnable model a packed (`bnnpack`) file holds.
///
/// The file's float tensors are the model's state dict minus the packed weights; each packed
/// layer's weight comes from ``PackedLayerLowering``, and the model is built by
/// ``ModelBuilder`` as for a checkpoint, with the packed layers' weight quantizers not applied
/// again (their weights are already the quantized ones).
package enum PackedModelBuilder {
    /// The manifest of a packed checkpoint (``Formats/ModelFile`` validated it), nil for any other file.
    package static func manifest(_ checkpoint: Checkpoint) throws(FormatError) -> PackedManifest? {
        guard checkpoint.format == .bnnpack else { return nil }
        guard let text = checkpoint.safeTensorsMetadata.first(where: { $0.key == PackedFile.manifestKey })?.value else {
            throw FormatError(.missing("metadata \"\(PackedFile.manifestKey)\""))
        }
        return try PackedManifest.decode(text)
    }

    /// Builds the model of `manifest` from the file's tensors (`tensors`, in file order).
    /// - Throws: ``InferenceError`` naming a missing or mis-shaped tensor, as for checkpoints.
    package static func build(
        options: QToolOptions, manifest: PackedManifest, tensors: [(name: String, tensor: Tensor)]
    ) throws(InferenceError) -> BuiltModel {
        let owned = Set(manifest.layers.flatMap { $0.planeNames + [$0.scaleName] })
        var byName: [String: Tensor] = [:]
        for (n, t) in tensors { byName[n] = t }
        var stateDict = tensors.filter { !owned.contains($0.name) }
        for layer in manifest.layers {
            stateDict.append((layer.name + ".weight", try PackedLayerLowering.weight(layer) { byName[$0] }))
        }
        return try ModelBuilder.build(
            options: options, stateDict: stateDict, prequantized: Set(manifest.layers.map(\.name)))
    }
}

/// How a packed layer reaches the engine: the one place to change when the engine runs
/// binary and ternary convolutions on the planes.
///
/// Today the planes are unpacked to the float weight `scale[o] * (1 - 2 bit) (* mask)`, which
/// the ordinary float conv runs (exactly the weight the checkpoint's float path computes
/// with). The bit-packed kernels replace this with a conv op that takes the planes and scales
/// (``WeightPlanes/bits``, ``WeightPlanes/mask``, ``WeightPlanes/scales``) and the manifest
/// layer's `K`, pads, `pad_value` and `input_encoding` directly.
package enum PackedLayerLowering {
    /// The float weight `[Cout, Cin_g, KH, KW]` (dense `[Out, In]`) of `layer`.
    package static func weight(
        _ layer: PackedManifest.Layer, tensor: (String) -> Tensor?
    ) throws(InferenceError) -> Tensor {
        let planes = try WeightPlanes(layer, tensor: tensor)
        return Tensor(floats: planes.unpacked(), shape: planes.shape)
    }
}
