import Formats
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// Packed files lowered on their planes (``PackedModelBuilder`` with `planes`, then
/// ``BinaryConvLowering/lower(_:planes:)``): the bit-packed convs take their codes and scales
/// from the file's planes, no float copy of a packed weight is left in the graph, and the
/// logits are PyTorch's, bit for bit those of lowering the checkpoint's float build.
@Suite struct PackedPlanesLoweringTests {
    /// A golden case packed and read back, its options and its checkpoint's float build.
    static func packed(_ name: String) throws -> (Checkpoint, PackedManifest, QToolOptions, BuiltModel) {
        let (options, sd) = try PackedModelTests.load(name)
        let packed = try ModelPacker.pack(options: options, stateDict: sd)
        let (_, checkpoint) = try PackedModelTests.roundTrip(packed)
        return (checkpoint, packed.manifest, options, try ModelBuilder.build(options: options, stateDict: sd))
    }

    /// The model of a packed file with its planes kept.
    static func planesBuild(_ checkpoint: Checkpoint, _ options: QToolOptions) throws -> BuiltModel {
        let manifest = try #require(try PackedModelBuilder.manifest(checkpoint))
        let tensors = checkpoint.root.allTensors().map { (name: $0.path, tensor: $0.tensor.materialize()) }
        return try PackedModelBuilder.build(options: options, manifest: manifest, tensors: tensors, planes: true)
    }

    @Test(arguments: PackedModelTests.cases)
    func packedFilesRunOnTheirPlanes(name: String) throws {
        let (checkpoint, manifest, options, float) = try Self.packed(name)
        let model = try Self.planesBuild(checkpoint, options)
        let weightNames = Set(manifest.layers.map { $0.name + ".weight" })
        #expect(Set(model.packedWeights.keys) == weightNames)
        let r = BinaryConvLowering.lower(model.graph, planes: model.packedWeights)
        // resnet20: every packed layer (the 18 block convs) runs bit-packed, none kept.
        #expect(r.lowered.count == 18 && r.lowered.count == manifest.layers.count, "\(name): \(r.lowered), kept \(r.kept)")
        #expect(r.kept.isEmpty, "\(r.kept)")
        // No float weight of a lowered layer is left: no constant of that name, and the
        // parameters are the planes' (as for lowering the checkpoint's build).
        for w in weightNames { #expect(r.graph.constants[w] == nil, "\(name): \(w) still a float constant") }
        let fromCheckpoint = BinaryConvLowering.lower(float.graph)
        #expect(fromCheckpoint.lowered == r.lowered)
        #expect(r.graph.parameterBytes == fromCheckpoint.graph.parameterBytes)
        let packedBytes = manifest.layers.reduce(0) { $0 + $1.planeNames.count * $1.rows * BitPlanes.rowBytes($1.rowCount) }
        let floatBytes = manifest.layers.reduce(0) { $0 + 4 * $1.k * $1.outChannels }
        #expect(float.graph.parameterBytes - r.graph.parameterBytes >= floatBytes - packedBytes - 8 * 1024)

        let c = try GoldenCase(name)
        let x = try c.npy("input.npy")
        let got = try #require(try Executor(graph: r.graph).run([model.input: x])[model.output]).floats()
        let d = Difference(got, try c.npy("output.npy").floats())
        #expect(d.maxAbs <= 1e-4, "\(name) packed planes vs PyTorch: \(d)")
        let same = try #require(try Executor(graph: fromCheckpoint.graph).run([float.input: x])[float.output]).floats()
        #expect(FirstDifference(got, same) == nil, "\(name) planes vs checkpoint lowering: \(FirstDifference(got, same)!)")
    }

    /// A packed layer the lowering keeps float (here: XNOR quantizers passing through, as with
    /// `iteration <= stable`) gets the weight its planes hold, not the zero placeholder.
    @Test func keptLayersGetTheirUnpackedWeights() throws {
        let name = "resnet20_bireal_xnor"
        let (checkpoint, manifest, options, _) = try Self.packed(name)
        let passing = try options.applying(arguments: ["--stable", "1000000000"])
        let model = try Self.planesBuild(checkpoint, passing)
        let r = BinaryConvLowering.lower(model.graph, planes: model.packedWeights)
        #expect(r.lowered.isEmpty)
        let unpacked = try PackedModelTests.build(checkpoint, options: passing)
        for l in manifest.layers {
            let got = try #require(r.graph.constants[l.name + ".weight"]).floats()
            let want = try #require(unpacked.graph.constants[l.name + ".weight"]).floats()
            #expect(got.contains { $0 != 0 }, "\(l.name): the zero placeholder")
            #expect(FirstDifference(got, want) == nil, "\(l.name): \(FirstDifference(got, want)!)")
        }
        let x = try GoldenCase(name).npy("input.npy")
        let a = try #require(try Executor(graph: r.graph).run([model.input: x])[model.output]).floats()
        let b = try #require(try Executor(graph: unpacked.graph).run([unpacked.input: x])[unpacked.output]).floats()
        #expect(FirstDifference(a, b) == nil)
    }
}
