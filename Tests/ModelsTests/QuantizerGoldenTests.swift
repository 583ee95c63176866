import Formats
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// Every quantized golden case: the quantizers of `layer1.0.conv1.0` and `layer2.0.conv1.0`
/// resolved from `config.txt`, bound to `checkpoint.pth`, applied to the stored float weight and
/// to the hooked conv input, and compared with `qweight_*.npy` / `qact_*.npy`.
@Suite struct QuantizerGoldenTests {
    static let cases = [
        "resnet20_dorefa_a2w2", "resnet20_pact_a2w2", "resnet20_lsq_a2w2", "resnet20_lq_a2w2",
        "resnet20_fatnn_a2w2", "resnet20_bireal_xnor", "resnet20_xnorpp", "resnet20_ternary_fatnn",
        "resnet20_dorefa_a4w4_varmean", "resnet18_lsq_a2w2",
    ]

    /// Both layers are 3×3 convs with padding 1 (layer2.0's has stride 2).
    static func quantizers(_ c: GoldenCase, _ layer: String) throws -> ConvQuantizers {
        let w = try c.tensor(layer + ".weight")
        return try ConvQuantizers(
            options: c.options, layer: layer, inChannels: w.shape[1], outChannels: w.shape[0],
            kernel: w.shape[2], padding: 1, tensors: c.tensors)
    }

    @Test(arguments: cases)
    func quantizedWeightsMatch(name: String) throws {
        let c = try GoldenCase(name)
        for layer in ["layer1.0.conv1.0", "layer2.0.conv1.0"] {
            let w = try c.tensor(layer + ".weight")
            let q = try Self.quantizers(c, layer)
            #expect(q.weight.isEnabled)
            let got = try q.quantizeWeight(w.floats(), shape: w.shape)
            let expected = try c.npy("qweight_\(layer).npy")
            try #require(expected.shape == w.shape)
            let diff = FirstDifference(got, expected.floats())
            #expect(diff == nil, "\(name) \(layer): \(diff.map(String.init(describing:)) ?? "")")
        }
    }

    @Test(arguments: cases)
    func quantizedActivationsMatch(name: String) throws {
        let c = try GoldenCase(name)
        let layer = "layer1.0.conv1.0"
        let q = try Self.quantizers(c, layer)
        #expect(q.activation.isEnabled)
        let x = try c.npy("act_\(layer)_in.npy")
        let expected = try c.npy("qact_\(layer).npy")
        let (input, shape) = try q.quantizeInput(x.floats(), shape: x.shape)
        var got = input
        if c.options.paddingAfterQuant {
            // qact is the unpadded quantizer output; quantizeInput pads it with zeros afterwards.
            got = try q.activation(x.floats(), shape: x.shape)
            #expect(try ZeroPadding.pad(got, shape: x.shape, by: 1) == (input, shape))
        } else {
            // Padding first: the quantized border is part of qact (…x34x34).
            #expect(shape == [x.shape[0], x.shape[1], x.shape[2] + 2, x.shape[3] + 2])
        }
        try #require(expected.shape == (c.options.paddingAfterQuant ? x.shape : shape))
        let diff = FirstDifference(got, expected.floats())
        #expect(diff == nil, "\(name): \(diff.map(String.init(describing:)) ?? "")")
    }
}
