import Formats
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// Binding quantizer state from a state dict (§11.2) and what the stored `iteration` means.
@Suite struct QuantizerStateTests {
    static let layer = "layer1.0.conv1.0"

    /// The golden cases store `iteration` = 1 for the DoReFa family (one calibration pass),
    /// 20 for LQ-Nets (training passes), 0 for XNOR; all quantize on the first eval forward.
    @Test(arguments: [
        ("resnet20_dorefa_a2w2", Float(1)), ("resnet20_lsq_a2w2", 1), ("resnet20_fatnn_a2w2", 1),
        ("resnet20_lq_a2w2", 20), ("resnet20_bireal_xnor", 0), ("resnet20_xnorpp", 0),
    ])
    func storedIterationQuantizes(name: String, iteration: Float) throws {
        let c = try GoldenCase(name)
        let q = try QuantizerGoldenTests.quantizers(c, Self.layer)
        for quantizer in [q.activation, q.weight] {
            #expect(quantizer.state.iteration == iteration)
            #expect(!quantizer.config.passesThrough(iteration: quantizer.state.iteration))
        }
    }

    /// With `iteration <= stable` the weight comes back unquantized, but var-mean-normalised
    /// (QTool returns the `x` its DoReFa branch saw).
    @Test func passThroughReturnsNormalisedWeight() throws {
        let c = try GoldenCase("resnet20_lsq_a2w2")
        let w = try c.tensor(Self.layer + ".weight")
        var q = try QuantizerGoldenTests.quantizers(c, Self.layer).weight
        q.config.stable = 5
        let y = try q(w.floats(), shape: w.shape)
        let stats = try WeightNormalization(w.floats(), shape: w.shape, groups: 1)
        #expect(y == stats.normalise(w.floats()))
        #expect(Set(y).count > 100)  // not quantized
        let a = try QuantizerGoldenTests.quantizers(c, Self.layer).activation
        var passing = a
        passing.config.stable = 5
        let x = try c.npy("act_\(Self.layer)_in.npy")
        #expect(try passing(x.floats(), shape: x.shape) == x.floats())
        #expect(try a(x.floats(), shape: x.shape) != x.floats())
    }

    @Test func missingTensorIsNamed() throws {
        let c = try GoldenCase("resnet20_lsq_a2w2")
        var tensors = c.tensors
        tensors["\(Self.layer).quant_weight.clip_val"] = nil
        let e = try #require(throws: QuantizerError.self) {
            try ConvQuantizers(
                options: c.options, layer: Self.layer, inChannels: 8, outChannels: 8, kernel: 3,
                padding: 1, tensors: tensors)
        }
        #expect(
            e.reason
                == .missingTensor("\(Self.layer).quant_weight.clip_val", expected: [1, 1, 1, 1]))
        #expect(e.description.hasPrefix("\(Self.layer).quant_weight: missing tensor"))
    }

    @Test func misShapedTensorIsNamed() throws {
        let c = try GoldenCase("resnet18_lsq_a2w2")
        var tensors = c.tensors
        let key = "\(Self.layer).quant_weight.clip_val"
        tensors[key] = Tensor(floats: [1, 1], shape: [2, 1, 1, 1])
        let e = try #require(throws: QuantizerError.self) {
            try ConvQuantizers(
                options: c.options, layer: Self.layer, inChannels: 8, outChannels: 8, kernel: 3,
                padding: 1, tensors: tensors)
        }
        #expect(e.reason == .shapeMismatch(key, expected: [8, 1, 1, 1], found: [2, 1, 1, 1]))
    }

    @Test func lqStateNeedsItsTables() throws {
        let c = try GoldenCase("resnet20_lq_a2w2")
        let q = try QuantizerGoldenTests.quantizers(c, Self.layer)
        #expect(q.weight.state.basis.count == 2 * 8)
        #expect(q.activation.state.codecVector == [0, 0, 1, 0, 0, 1, 1, 1])
        var tensors = c.tensors
        tensors["\(Self.layer).quant_activation.thrs_multiplier"] = nil
        #expect(throws: QuantizerError.self) {
            try QuantizerGoldenTests.quantizers(Self.replacing(c, tensors), Self.layer)
        }
    }

    @Test func disabledQuantizerIsIdentity() throws {
        let c = try GoldenCase("resnet20_dorefa_a2w2")
        let q = try QuantizerGoldenTests.quantizers(c, Self.layer)
        #expect(!q.output.isEnabled)
        #expect(try q.quantizeOutput([1.5, -2], shape: [1, 2, 1, 1]) == [1.5, -2])
    }

    static func replacing(_ c: GoldenCase, _ tensors: [String: Tensor]) -> GoldenCase {
        var copy = c
        copy.tensors = tensors
        return copy
    }
}
