import Engine
import Formats
import QToolConfig
import Tensors

/// Builds the runnable model a packed (`bnnpack`) file holds.
///
/// The file's float tensors are the model's state dict minus the packed weights; each packed
/// layer's weight comes from ``PackedLayerLowering`` (or stays in its planes, `planes: true`),
/// and the model is built by ``ModelBuilder`` as for a checkpoint, with the packed layers'
/// weight quantizers not applied again (their weights are already the quantized ones).
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
    ///
    /// With `planes` the packed layers' weights are not unpacked: each weight constant is a
    /// zero placeholder of the weight's shape (windows into one shared buffer of the largest
    /// layer's size) and ``BuiltModel/packedWeights`` holds the planes under the constant's
    /// name, for ``BinaryConvLowering/lower(_:planes:)``, which builds the bit-packed convs from
    /// the planes and unpacks any weight it does not lower. Only a caller that lowers may ask
    /// for it; every other use (the float engine, `verify`, hooks) needs the float weights.
    /// - Throws: ``InferenceError`` naming a missing or mis-shaped tensor, as for checkpoints.
    package static func build(
        options: QToolOptions, manifest: PackedManifest, tensors: [(name: String, tensor: Tensor)], planes: Bool = false
    ) throws(InferenceError) -> BuiltModel {
        let owned = Set(manifest.layers.flatMap { $0.planeNames + [$0.scaleName] })
        var byName: [String: Tensor] = [:]
        for (n, t) in tensors { byName[n] = t }
        var stateDict = tensors.filter { !owned.contains($0.name) }
        guard planes else {
            for layer in manifest.layers {
                stateDict.append((layer.name + ".weight", try PackedLayerLowering.weight(layer) { byName[$0] }))
            }
            return try ModelBuilder.build(
                options: options, stateDict: stateDict, prequantized: Set(manifest.layers.map(\.name)))
        }
        var weights: [String: WeightPlanes] = [:]
        for layer in manifest.layers {
            weights[layer.name + ".weight"] = try WeightPlanes(layer) { byName[$0] }
        }
        byName = [:]
        let largest = weights.values.map { 4 * $0.shape.reduce(1, *) }.max() ?? 0
        let zeros = ByteStore([UInt8](repeating: 0, count: largest))
        for (name, w) in weights.sorted(by: { $0.key < $1.key }) {
            let bytes = 4 * w.shape.reduce(1, *)
            guard let placeholder = try? Tensor(dtype: .float32, shape: w.shape, data: ByteSlice(store: zeros, range: 0..<bytes))
            else { throw InferenceError(.tensorShape(name, expected: w.shape, found: [bytes / 4])) }
            stateDict.append((name, placeholder))
        }
        var model = try ModelBuilder.build(
            options: options, stateDict: stateDict, prequantized: Set(manifest.layers.map(\.name)))
        model.packedWeights = weights
        return model
    }
}

/// A packed layer's float weight, for the float path (`--engine float`, `verify`, hooks) and for
/// a packed conv the bit-packed lowering keeps float.
///
/// The planes unpack to `scale[o] * (1 - 2 bit) (* mask)`, exactly the weight the checkpoint's
/// float path computes with. The bit-packed path does not come here: it takes the planes as
/// ``Engine/PackedConvWeights`` (``WeightPlanes/convWeights(shape:)``, through
/// ``BinaryConvLowering/lower(_:planes:)``).
package enum PackedLayerLowering {
    /// The float weight `[Cout, Cin_g, KH, KW]` (dense `[Out, In]`) of `layer`.
    package static func weight(
        _ layer: PackedManifest.Layer, tensor: (String) -> Tensor?
    ) throws(InferenceError) -> Tensor {
        let planes = try WeightPlanes(layer, tensor: tensor)
        return Tensor(floats: planes.unpacked(), shape: planes.shape)
    }
}
