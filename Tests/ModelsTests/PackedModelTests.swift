import Engine
import Formats
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Models

/// Packing QTool models into bnnpack files (`ModelPacker`) and running them again
/// (`PackedModelBuilder`): the binary and ternary golden cases reproduce PyTorch's
/// `output.npy` from the packed file alone, every packed weight unpacks to exactly the weight
/// the float path uses, and models that are not binary/ternary are refused by layer.
@Suite struct PackedModelTests {
    static let cases = ["resnet20_bireal_xnor", "resnet20_xnorpp", "resnet20_ternary_fatnn"]

    /// A golden case's options and its state dict in file order.
    static func load(_ name: String, overrides: [String] = []) throws -> (QToolOptions, [(name: String, tensor: Tensor)]) {
        let options = try QToolOptions(config: ConfigFile(contentsOf: Fixtures.path("golden/\(name)/config.txt")))
            .applying(arguments: overrides)
        let opened = try ModelFile.open(path: Fixtures.path("golden/\(name)/checkpoint.pth"))
        let entries = (opened.checkpoint.stateDict()?.entries ?? []).map { (name: $0.name, tensor: $0.tensor.materialize()) }
        return (options, entries)
    }

    /// Writes `packed` to memory and reads it back as `ModelFile` reads a `.qpack`.
    static func roundTrip(_ packed: ModelPacker.Packed) throws -> (bytes: [UInt8], checkpoint: Checkpoint) {
        let sink = MemorySink()
        try PackedFile.write(manifest: packed.manifest, packed: packed.packed, others: packed.others, to: sink)
        let (_, checkpoint) = try ModelFile.read(ByteSlice(sink.bytes))
        return (sink.bytes, checkpoint)
    }

    /// The model a packed file holds.
    static func build(_ checkpoint: Checkpoint, options: QToolOptions) throws -> BuiltModel {
        let manifest = try #require(try PackedModelBuilder.manifest(checkpoint))
        let tensors = checkpoint.root.allTensors().map { (name: $0.path, tensor: $0.tensor.materialize()) }
        return try PackedModelBuilder.build(options: options, manifest: manifest, tensors: tensors)
    }

    static func logits(_ model: BuiltModel, _ name: String) throws -> [Float] {
        let x = try NpyReader.readArray(ByteStore.map(path: Fixtures.path("golden/\(name)/input.npy")).all)
        return try #require(try Executor(graph: model.graph).run([model.input: x])[model.output]).floats()
    }

    static func expected(_ name: String) throws -> [Float] {
        try NpyReader.readArray(ByteStore.map(path: Fixtures.path("golden/\(name)/output.npy")).all).floats()
    }

    @Test(arguments: cases)
    func packedRunReproducesPyTorch(name: String) throws {
        let (options, sd) = try Self.load(name)
        let packed = try ModelPacker.pack(options: options, stateDict: sd)
        // Every quantized conv of these models is packed.
        let float = try ModelBuilder.build(options: options, stateDict: sd)
        let quantizedLayers = float.layers.filter { $0.weightQuantizer?.isEnabled == true }.map(\.name)
        #expect(packed.manifest.layers.map(\.name) == quantizedLayers)
        #expect(packed.manifest.floatLayers.isEmpty)
        let ternary = name.contains("ternary")
        #expect(packed.manifest.layers.allSatisfy { $0.isTernary == ternary })

        let (_, checkpoint) = try Self.roundTrip(packed)
        #expect(checkpoint.format == .bnnpack)
        let model = try Self.build(checkpoint, options: options)
        // No raw weight of a packed layer is in the file: the planes are the only copy.
        let names = Set(checkpoint.root.allTensors().map(\.path))
        for l in packed.manifest.layers { #expect(!names.contains(l.name + ".weight"), "\(l.name).weight stored as float") }
        // The unpacked weights are exactly the float path's quantized weights.
        for l in packed.manifest.layers {
            let got = try #require(model.graph.constants[l.name + ".weight"]).floats()
            let want = try #require(float.graph.constants[l.name + ".weight"]).floats()
            #expect(FirstDifference(got, want) == nil, "\(name) \(l.name): \(FirstDifference(got, want)!)")
        }
        let d = Difference(try Self.logits(model, name), try Self.expected(name))
        #expect(d.maxAbs <= 1e-4, "\(name) packed logits vs PyTorch: \(d)")

        // The hooked activations of PyTorch's run (into and out of a packed layer) too.
        var hooked = model
        let layer = try #require(model.layer("layer1.0.conv1.0"))
        for v in [layer.input, layer.output] { hooked.graph.markOutput(v) }
        let x = try NpyReader.readArray(ByteStore.map(path: Fixtures.path("golden/\(name)/input.npy")).all)
        let out = try Executor(graph: hooked.graph).run([model.input: x])
        for (file, value) in [("act_layer1.0.conv1.0_in.npy", layer.input), ("act_layer1.0.conv1.0_out.npy", layer.output)] {
            let want = try NpyReader.readArray(ByteStore.map(path: Fixtures.path("golden/\(name)/\(file)")).all).floats()
            let got = try #require(out[value]).floats()
            let h = Difference(got, want)
            #expect(h.maxAbs <= 1e-5 * max(1, want.map { abs($0) }.max() ?? 1), "\(name) \(file): \(h)")
        }
    }

    @Test(arguments: cases)
    func packedWeightsAreAFractionOfFloat32(name: String) throws {
        let (options, sd) = try Self.load(name)
        let packed = try ModelPacker.pack(options: options, stateDict: sd)
        let (bytes, checkpoint) = try Self.roundTrip(packed)
        let summary = try #require(PackedSummary.of(checkpoint, fileBytes: bytes.count))
        // Binary: 1 bit per weight (rows padded to 64 bits: 8 input channels fill 1/8 of a row
        // in layer1 of these width-1/8 models) + a float scale per channel. Ternary: 2 planes.
        let bound = name.contains("ternary") ? 0.2 : 0.1
        #expect(summary.packedLayersRatio <= bound, "\(name): packed/float32 = \(summary.packedLayersRatio)")
        #expect(summary.packedLayersRatio > 1.0 / 33, "\(name): impossible ratio \(summary.packedLayersRatio)")
        #expect(summary.fileRatio < 1, "\(name): whole file/float32 = \(summary.fileRatio)")
        print(
            "\(name): packed layers \(summary.packedBytes) B / float32 \(summary.packedLayersFloat32Bytes) B = \(summary.packedLayersRatio); "
                + "file \(bytes.count) B / model float32 \(summary.modelFloat32Bytes) B = \(summary.fileRatio)")
    }

    @Test func manifestRecordsPaddingAndEncodings() throws {
        let (options, sd) = try Self.load("resnet20_bireal_xnor")
        let m = try ModelPacker.pack(options: options, stateDict: sd).manifest
        #expect(m.padding == "after_quant")
        let l = try #require(m.layers.first { $0.name == "layer1.0.conv1.0" })
        #expect(l.op == "bconv2d" && l.inputEncoding == "binary" && l.padValue == "0")
        #expect(l.k == 9 * 8 && l.kernel == [3, 3] && l.pads == [1, 1, 1, 1] && l.inChannels == 8)
        #expect(l.planeShape == [8, 3, 3, 8])
        let (fo, fsd) = try Self.load("resnet20_ternary_fatnn")
        let t = try #require(try ModelPacker.pack(options: fo, stateDict: fsd).manifest.layers.first)
        // FATNN: padded before quantization, activations {0, 1, 2}: the padding is level 0.
        #expect(t.op == "tconv2d" && t.inputEncoding == "unipolar:3" && t.padValue == "0")
    }

    @Test func xnorThatPassesFloatsThroughIsRefusedByLayer() throws {
        // QTool's default --stable 0: XNOR never counts iterations, so iteration 0 <= 0 and
        // every XNOR quantizer returns its float input.
        let (options, sd) = try Self.load("resnet20_bireal_xnor", overrides: ["--stable", "0"])
        let e = try #require(throws: InferenceError.self) { try ModelPacker.pack(options: options, stateDict: sd) }
        #expect(e.node == "layer1.0.conv1.0")
        #expect("\(e)".contains("passes floats through (iteration 0 <= stable 0"), "\(e)")
        #expect("\(e)".contains("--keep-float"), "\(e)")
        let kept = try ModelPacker.pack(options: options, stateDict: sd, keepFloat: true)
        #expect(kept.manifest.layers.isEmpty)
        #expect(kept.manifest.floatLayers.count == 18)
        #expect(kept.others.count == sd.count)
    }

    @Test func moreLevelsThanTheEncodingIsRefused() throws {
        let (options, sd) = try Self.load("resnet20_dorefa_a2w2")
        let e = try #require(throws: InferenceError.self) { try ModelPacker.pack(options: options, stateDict: sd) }
        #expect("\(e)".contains("has 4 levels"), "\(e)")
        #expect(e.node != nil)
    }

    @Test func weightsThatAreNotPlusMinusSAreRefused() throws {
        // A weight quantizer that declares 2 levels but whose output has 3 values per channel
        // cannot come out of QTool; the level check itself is what refuses it.
        let w: [Float] = [0.5, -0.5, 0, 0.5]
        #expect(throws: WeightPlanes.Mismatch.self) { try WeightPlanes.pack(w, shape: [1, 4], ternary: false) }
        let t = try WeightPlanes.pack(w, shape: [1, 4], ternary: true)
        #expect(t.unpacked() == w)
        let four: [Float] = [0.5, -0.5, 0.25, 0]
        let e = try #require(throws: WeightPlanes.Mismatch.self) { try WeightPlanes.pack(four, shape: [1, 4], ternary: true) }
        #expect(e.description.contains("output channel 0 holds 4 distinct values"), "\(e.description)")
    }

    @Test(arguments: [1, 7, 8, 63, 64, 65, 130] as [Int])
    func planesRoundTripOverChannelCounts(cin: Int) throws {
        var rng = SplitMix64(seed: UInt64(cin))
        let shape = [3, cin, 3, 2]
        let n = shape.reduce(1, *)
        let scales: [Float] = [0.25, 1.5, 0]
        var w = [Float](repeating: 0, count: n)
        var t = w
        for i in 0..<n {
            let s = scales[i / (n / 3)]
            let r = rng.next()
            w[i] = r & 1 == 0 ? s : -s
            t[i] = r % 3 == 0 ? 0 : w[i]
        }
        let b = try WeightPlanes.pack(w, shape: shape, ternary: false)
        #expect(b.unpacked() == w)
        #expect(b.bits.count == 3 * 6 * BitPlanes.rowBytes(cin))
        #expect(BitPlanes.firstSetPaddingBit(b.bits, rows: 18, count: cin) == nil)
        let tern = try WeightPlanes.pack(t, shape: shape, ternary: true)
        #expect(tern.unpacked() == t)
        let mask = try #require(tern.mask)
        #expect(BitPlanes.firstSignOutsideMask(sign: tern.bits, mask: mask, rows: 18, count: cin) == nil)
        // Element c of tap (kh, kw) of channel o sits at row (o*KH + kh)*KW + kw, bit c.
        let o = 1, c = cin - 1, kh = 2, kw = 1
        let v = w[((o * cin + c) * 3 + kh) * 2 + kw]
        #expect(BitPlanes.bit(b.bits, row: (o * 3 + kh) * 2 + kw, c, count: cin) == (v < 0))
    }

    @Test func flippedPolarityFailsTheComparison() throws {
        // Anti-test: the same file with one layer's bits inverted (on valid positions only, so
        // it still validates) must no longer reproduce PyTorch.
        let name = "resnet20_bireal_xnor"
        let (options, sd) = try Self.load(name)
        var packed = try ModelPacker.pack(options: options, stateDict: sd)
        let layer = packed.manifest.layers[0]
        let i = try #require(packed.packed.firstIndex { $0.name == layer.name + ".w.bits" })
        let valid = BitPlanes.pack(rows: layer.rows, count: layer.rowCount) { _, _ in true }
        let flipped = zip(packed.packed[i].tensor.data.toArray(), valid).map { $0 ^ $1 }
        packed.packed[i].tensor = try Tensor(dtype: .uint8, shape: layer.planeShape, data: ByteSlice(flipped))
        let (_, checkpoint) = try Self.roundTrip(packed)
        let d = Difference(try Self.logits(try Self.build(checkpoint, options: options), name), try Self.expected(name))
        #expect(d.maxAbs > 1e-2, "flipped polarity still matches PyTorch: \(d)")
    }
}
