import Formats
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// Every golden case built from `config.txt` + `checkpoint.pth` by ``ModelBuilder`` and run on
/// `input.npy`: logits against `output.npy` (PyTorch, float32) and the hooked activations.
@Suite struct ModelGoldenTests {
    static let cases = [
        "resnet20_fp", "resnet20_fixup", "pytorch_resnet18_fp", "resnet20_dorefa_a2w2",
        "resnet20_pact_a2w2", "resnet20_lsq_a2w2", "resnet20_lq_a2w2", "resnet20_fatnn_a2w2",
        "resnet20_bireal_xnor", "resnet20_xnorpp", "resnet20_ternary_fatnn",
        "resnet20_dorefa_a4w4_varmean", "resnet18_lsq_a2w2",
    ]

    /// Builds a case's model (the pytorch-resnet18 golden has every width divided by 8).
    static func model(_ c: GoldenCase) throws -> BuiltModel {
        var options = c.options
        if c.name == "pytorch_resnet18_fp" { options = try options.applying(arguments: ["--width_alpha", "0.125"]) }
        return try ModelBuilder.build(
            options: options, stateDict: c.tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// Hooked modules: (file stem, module path).
    static func hooks(_ name: String) -> [String] {
        ["conv1", name == "pytorch_resnet18_fp" ? "layer1.0.conv1" : "layer1.0.conv1.0", "fc"]
    }

    @Test(arguments: cases)
    func logitsMatchPyTorch(name: String) throws {
        let c = try GoldenCase(name)
        var model = try Self.model(c)
        var hooked: [(String, String)] = []
        for module in Self.hooks(name) {
            let layer = try #require(model.layer(module), "no layer \(module)")
            hooked.append(("act_\(module)_in.npy", layer.input))
            hooked.append(("act_\(module)_out.npy", layer.output))
        }
        for (_, v) in hooked where v != model.output && v != model.input { model.graph.markOutput(v) }
        let x = try c.npy("input.npy")
        let out = try Executor(graph: model.graph).run([model.input: x])
        let logits = try #require(out[model.output])
        let expected = try c.npy("output.npy")
        try #require(logits.shape == expected.shape)
        let d = Difference(logits.floats(), expected.floats())
        #expect(d.maxAbs <= 1e-4, "\(name) logits: \(d)")

        for (file, value) in hooked {
            let want = try c.npy(file)
            let got = value == model.input ? x : try #require(out[value], "\(value)")
            try #require(got.shape == want.shape, "\(file): \(got.shape) vs \(want.shape)")
            let w = want.floats()
            let scale = w.map { abs($0) }.max() ?? 1
            let d = Difference(got.floats(), w)
            #expect(d.maxAbs <= 1e-5 * max(scale, 1), "\(name) \(file): \(d) (max |x| \(scale))")
        }
    }

    /// The naive interpreter (reference kernels, the same quantizer function) agrees too
    /// (CIFAR cases; the 64x64 ImageNet-style ones are slow through the naive conv).
    @Test(arguments: cases.filter { $0.hasPrefix("resnet20") })
    func referenceInterpreterMatchesPyTorch(name: String) throws {
        let c = try GoldenCase(name)
        let model = try Self.model(c)
        let out = try ReferenceExecutor.run(model.graph, inputs: [model.input: try c.npy("input.npy")])
        let d = Difference(try #require(out[model.output]).floats(), try c.npy("output.npy").floats())
        #expect(d.maxAbs <= 1e-4, "\(name) reference interpreter: \(d)")
    }

    /// Negative control: the same checkpoint built as another variant with identical keys
    /// (`fix` removed: ReLU before the addition instead of after) must not match, so the
    /// comparison above can fail.
    @Test func wrongVariantDoesNotMatch() throws {
        let c = try GoldenCase("resnet20_fp")
        let options = try c.options.applying(arguments: ["--keyword", "cifar10,origin,cbsa,fix_pooling,singleconv"])
        let model = try ModelBuilder.build(options: options, stateDict: c.tensors.map { ($0.key, $0.value) })
        let out = try Executor(graph: model.graph).run([model.input: try c.npy("input.npy")])
        let d = Difference(try #require(out[model.output]).floats(), try c.npy("output.npy").floats())
        #expect(d.maxAbs > 1e-2, "\(d)")
    }
}
