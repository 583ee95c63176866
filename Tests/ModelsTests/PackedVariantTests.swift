import Engine
import Formats
import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Models

/// Other binary and ternary quantizers and padding modes, on the golden checkpoints with the
/// config changed (same state-dict keys): each packs with the expected encodings, and the
/// model rebuilt from the packed file computes exactly what the float path computes.
@Suite struct PackedVariantTests {
    struct Variant: Sendable, CustomStringConvertible {
        var name: String
        var golden: String
        /// Config lines removed (e.g. `--padding_after_quant`).
        var dropLines: [String] = []
        var overrides: [String] = []
        var weights: String
        var input: String
        var padValue: String
        var description: String { name }
    }

    static let bireal = "cifar10,NReLU,fix_pooling,cbsa,singleconv,real_skip"
    static let variants: [Variant] = [
        .init(
            name: "xnor padded before quantization", golden: "resnet20_bireal_xnor", dropLines: ["--padding_after_quant"],
            weights: "binary", input: "binary", padValue: "+1"),
        .init(
            name: "xnor channel-scaled activations", golden: "resnet20_bireal_xnor", overrides: ["--fm_custom", "channel"],
            weights: "binary", input: "binary", padValue: "0"),
        .init(
            name: "xnor channel-scaled, padded before quantization", golden: "resnet20_bireal_xnor",
            dropLines: ["--padding_after_quant"], overrides: ["--fm_custom", "channel"], weights: "binary", input: "binary",
            padValue: "0"),
        .init(
            name: "xnor resolution-scaled, padded before quantization", golden: "resnet20_bireal_xnor",
            dropLines: ["--padding_after_quant"], overrides: ["--fm_custom", "resolution"], weights: "binary",
            input: "binary", padValue: "+1"),
        .init(
            name: "1-bit dorefa", golden: "resnet20_bireal_xnor", overrides: ["--keyword", bireal + ",dorefa"],
            weights: "binary", input: "unipolar:2", padValue: "0"),
        .init(
            name: "wt_bin", golden: "resnet20_bireal_xnor", overrides: ["--keyword", bireal + ",dorefa,wt_bin"],
            weights: "binary", input: "unipolar:2", padValue: "0"),
        .init(
            name: "ternary dorefa", golden: "resnet20_dorefa_a2w2", overrides: ["--wt_level", "3", "--fm_level", "3"],
            weights: "ternary", input: "unipolar:3", padValue: "0"),
        .init(
            name: "1-bit dorefa weights, 2-bit activations", golden: "resnet20_dorefa_a2w2", overrides: ["--wt_bit", "1"],
            weights: "binary", input: "unipolar:4", padValue: "0"),
    ]

    static func options(_ v: Variant) throws -> QToolOptions {
        let path = Fixtures.path("golden/\(v.golden)/config.txt")
        var text = try String(contentsOfFile: path, encoding: .utf8)
        for d in v.dropLines { text = text.split(separator: "\n").filter { !$0.contains(d) }.joined(separator: "\n") }
        return try QToolOptions(config: ConfigFile(text: text, path: path)).applying(arguments: v.overrides)
    }

    @Test(arguments: variants)
    func packsAndRunsAsTheFloatPath(_ v: Variant) throws {
        let options = try Self.options(v)
        let (_, sd) = try PackedModelTests.load(v.golden)
        let packed = try ModelPacker.pack(options: options, stateDict: sd)
        #expect(packed.manifest.layers.count == 18)
        for l in packed.manifest.layers {
            #expect(l.weightEncoding == v.weights, "\(l.name)")
            #expect(l.inputEncoding == v.input, "\(l.name)")
            #expect(l.padValue == v.padValue, "\(l.name)")
        }
        let (_, checkpoint) = try PackedModelTests.roundTrip(packed)
        let fromFile = try PackedModelTests.build(checkpoint, options: options)
        let float = try ModelBuilder.build(options: options, stateDict: sd)
        let got = try PackedModelTests.logits(fromFile, v.golden)
        let want = try PackedModelTests.logits(float, v.golden)
        let d = Difference(got, want)
        #expect(d.maxAbs == 0, "\(v): packed vs float path \(d)")
        // The variant really changed the model: it no longer computes the golden logits.
        if v.golden == "resnet20_bireal_xnor" || !v.overrides.isEmpty {
            #expect(Difference(want, try PackedModelTests.expected(v.golden)).maxAbs > 1e-3, "\(v) is the golden model itself")
        }
    }
}

/// The size target of a packed Bi-Real ResNet-18 (ImageNet, `config.bireal...resnet18`).
@Suite struct PackedResNet18SizeTests {
    @Test func biRealResNet18IsUnderATenthOfFloat32() throws {
        let options = try QToolOptions().applying(arguments: [
            "--model", "resnet18", "--keyword", "imagenet,NReLU,fix_pooling,cbsa,singleconv,real_skip,xnor",
            "--fm_bit", "1", "--fm_enable", "--wt_bit", "1", "--wt_enable", "--padding_after_quant", "--stable", "-1",
        ])
        // Seeded random weights as a checkpoint would hold them (quantizer state zero).
        let random = try ModelBuilder.buildRandom(options: options, seed: 7)
        let sd = random.declaredTensors.map { d in
            (
                name: d.key,
                tensor: random.graph.constants[d.key] ?? Tensor(floats: [Float](repeating: 0, count: d.shape.reduce(1, *)), shape: d.shape)
            )
        }
        let packed = try ModelPacker.pack(options: options, stateDict: sd)
        #expect(packed.manifest.layers.count == 16)
        let (bytes, checkpoint) = try PackedModelTests.roundTrip(packed)
        let s = try #require(PackedSummary.of(checkpoint, fileBytes: bytes.count))
        // 64..512 input channels fill whole 64-bit rows: 1 bit per weight plus the scales.
        #expect(s.packedLayersRatio < 1.0 / 31, "\(s.packedLayersRatio)")
        #expect(s.fileRatio <= 0.1, "whole file / float32 = \(s.fileRatio)")
        #expect(s.layers.allSatisfy { $0.paddingWaste == 0 })
        print(
            "Bi-Real ResNet-18: packed layers \(s.packedBytes) B / float32 \(s.packedLayersFloat32Bytes) B = 1/\(1 / s.packedLayersRatio); "
                + "file \(bytes.count) B / float32 model \(s.modelFloat32Bytes) B = 1/\(1 / s.fileRatio)")
    }
}
