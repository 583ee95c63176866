import Formats
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// State-dict binding errors, architecture counts and trace conventions.
@Suite struct ModelBuilderTests {
    static func fp() throws -> (QToolOptions, [(name: String, tensor: Tensor)]) {
        let c = try GoldenCase("resnet20_fp")
        return (c.options, c.tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    @Test func missingTensorIsNamed() throws {
        let (o, sd) = try Self.fp()
        let e = try #require(throws: InferenceError.self) {
            try ModelBuilder.build(options: o, stateDict: sd.filter { $0.name != "layer2.0.skip.2.running_var" })
        }
        #expect(e.reason == .missingTensor("layer2.0.skip.2.running_var", expected: [32]))
        #expect("\(e)".contains("layer2.0.skip.2.running_var"))
    }

    @Test func extraTensorIsNamed() throws {
        let (o, sd) = try Self.fp()
        let extra = sd + [("layer1.0.conv3.0.weight", Tensor(floats: [0], shape: [1]))]
        let e = try #require(throws: InferenceError.self) { try ModelBuilder.build(options: o, stateDict: extra) }
        #expect(e.reason == .unexpectedTensors(["layer1.0.conv3.0.weight"]))
        #expect("\(e)".contains("'layer1.0.conv3.0.weight'"))
    }

    @Test func misShapedTensorIsNamed() throws {
        let (o, sd) = try Self.fp()
        let bad = sd.map { e -> (name: String, tensor: Tensor) in
            e.name == "layer3.1.conv2.0.weight"
                ? (e.name, Tensor(floats: [Float](repeating: 0, count: 64 * 64 * 9), shape: [64, 64, 1, 9])) : e
        }
        let e = try #require(throws: InferenceError.self) { try ModelBuilder.build(options: o, stateDict: bad) }
        #expect(e.reason == .tensorShape("layer3.1.conv2.0.weight", expected: [64, 64, 3, 3], found: [64, 64, 1, 9]))
    }

    @Test func missingQuantizerTensorIsNamed() throws {
        let c = try GoldenCase("resnet20_lsq_a2w2")
        let sd = c.tensors.filter { $0.key != "layer2.1.conv1.0.quant_weight.clip_val" }.map { ($0.key, $0.value) }
        let e = try #require(throws: InferenceError.self) { try ModelBuilder.build(options: c.options, stateDict: sd) }
        #expect(e.reason == .missingTensor("layer2.1.conv1.0.quant_weight.clip_val", expected: [1, 1, 1, 1]))
    }

    @Test func bookkeepingKeysAreExpected() throws {
        // level_num, num_batches_tracked, LQ auxil/codec_index are bound, not reported as extra.
        let c = try GoldenCase("resnet20_lq_a2w2")
        let m = try ModelBuilder.build(options: c.options, stateDict: c.tensors.map { ($0.key, $0.value) })
        #expect(Set(m.boundKeys) == Set(c.tensors.keys))
    }

    @Test func noLayerOrderKeywordIsAnError() throws {
        let o = try QToolOptions(arguments: .commandLine(["--model", "resnet18", "--keyword", "imagenet,origin"]))
        let e = try #require(throws: InferenceError.self) { try ModelBuilder.buildRandom(options: o, seed: nil) }
        guard case .unsupportedModel(let m) = e.reason else { Issue.record("\(e)"); return }
        #expect(m.contains("layer-order"))
    }

    /// Parameter counts from seed-reference §6 (measured with torch): torchvision ResNet-18
    /// 11,689,512 (flexible resnet18 with `origin,cbsa,fix_pooling,singleconv,fix` equal),
    /// ResNet-50 25,557,032.
    @Test(arguments: [
        ("pytorch-resnet18", "imagenet", 11_689_512), ("resnet18", "imagenet,origin,cbsa,fix_pooling,singleconv,fix", 11_689_512),
        ("pytorch-resnet50", "imagenet", 25_557_032), ("resnet50", "imagenet,origin,cbsa,fix_pooling,singleconv,fix", 25_557_032),
    ])
    func parameterCounts(model: String, keyword: String, expected: Int) throws {
        let o = try QToolOptions(arguments: .commandLine(["--model", model, "--keyword", keyword]))
        let m = try ModelBuilder.buildRandom(options: o, seed: nil)
        #expect(try ModelTrace(model: m, inputShape: m.inputShape()).parameters == expected)
    }

    /// ResNet-18 at 224: torchvision documents 1.81 GFLOPS (conv + fc multiply-accumulates);
    /// thop / ptflops report 1.82 G (adding batch norm, ReLU, add and pooling elements).
    @Test func resnet18FlopsAt224() throws {
        let o = try QToolOptions(arguments: .commandLine(["--model", "pytorch-resnet18", "--keyword", "imagenet"]))
        let t = try ModelTrace(model: try ModelBuilder.buildRandom(options: o, seed: nil), inputShape: [1, 3, 224, 224])
        #expect(abs(Double(t.macs) / 1e9 - 1.81) < 0.005, "\(t.macs)")
        #expect(abs(Double(t.flops) / 1e9 - 1.82) < 0.005, "\(t.flops)")
        #expect(t.bops == 0)
    }

    /// A binary layer's MACs move to BOPs (1 bit x 1 bit) and OPs = FLOPs + BOPs/64.
    @Test func binaryLayersCountBops() throws {
        let c = try GoldenCase("resnet20_bireal_xnor")
        let m = try ModelBuilder.build(options: c.options, stateDict: c.tensors.map { ($0.key, $0.value) })
        let t = try ModelTrace(model: m, inputShape: [1, 3, 32, 32])
        let row = try #require(t.rows.first { $0.name == "layer1.0.conv1.0" })
        #expect(row.macs == 8 * 32 * 32 * 8 * 9)
        #expect(row.bops == row.macs && row.flops == 0 && row.quantization == "a1w1")
        #expect(t.ops == Double(t.flops) + Double(t.bops) / 64)
    }
}
