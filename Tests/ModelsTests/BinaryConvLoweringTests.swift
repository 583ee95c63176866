import Formats
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// ``BinaryConvLowering`` on the XNOR and FATNN golden cases: the binary and ternary convs run
/// as the engine's bit-packed conv and the logits still match PyTorch's `output.npy`.
@Suite struct BinaryConvLoweringTests {
    static let cases = ["resnet20_bireal_xnor", "resnet20_xnorpp"]

    @Test(arguments: cases, BitKernelPath.supported)
    func loweredGoldenModelsMatchPyTorch(name: String, path: BitKernelPath) throws {
        let c = try GoldenCase(name)
        let model = try ModelGoldenTests.model(c)
        let r = BinaryConvLowering.lower(model.graph)
        // resnet20: the 18 block convs are binary; the stem, the skip convs and fc stay float.
        #expect(r.lowered.count == 18, "\(name): lowered \(r.lowered), kept \(r.kept)")
        #expect(r.kept.isEmpty, "\(r.kept)")
        let ops = Dictionary(r.graph.nodes.map { ($0.op.typeName, 1) }, uniquingKeysWith: +)
        #expect(ops["binaryConv2d"] == 18 && ops["quantize"] == nil && ops["pad"] == nil, "\(ops)")
        #expect(r.graph.parameterBytes < model.graph.parameterBytes)
        let x = try c.npy("input.npy")
        let expected = try c.npy("output.npy").floats()
        let lowered = try Executor(graph: r.graph, options: PlanOptions(bitKernelPath: path)).run([model.input: x])[model.output]!
        let float = try Executor(graph: model.graph).run([model.input: x])[model.output]!
        let d = Difference(lowered.floats(), expected)
        #expect(d.maxAbs <= 1e-4, "\(name) \(path) vs PyTorch: \(d)")
        let f = Difference(lowered.floats(), float.floats())
        #expect(f.maxAbs <= 1e-4, "\(name) \(path) vs the float path: \(f)")
        // The reference interpreter runs the lowered graph with the naive twin.
        let reference = try ReferenceExecutor.run(r.graph, inputs: [model.input: x])[model.output]!
        #expect(Difference(reference.floats(), expected).maxAbs <= 1e-4)
    }

    /// FATNN (non-uniform activations {0, 1, 2}, ternary weights {-1, 0, 1}): the block convs
    /// run as ternary-weight x unsigned-level bit-packed convs and reproduce PyTorch.
    @Test(arguments: BitKernelPath.supported)
    func loweredTernaryGoldenModelMatchesPyTorch(path: BitKernelPath) throws {
        let name = "resnet20_ternary_fatnn"
        let c = try GoldenCase(name)
        let model = try ModelGoldenTests.model(c)
        let r = BinaryConvLowering.lower(model.graph)
        #expect(r.lowered.count == 18, "\(name): lowered \(r.lowered), kept \(r.kept)")
        #expect(r.kept.isEmpty, "\(r.kept)")
        var ternary = 0
        for n in r.graph.nodes {
            guard case .binaryConv2d(let a) = n.op else { continue }
            #expect(a.input == .unsigned(levels: 2, step: 1) && a.padCode == 0, "\(n.name): \(a.input) pad \(a.padCode)")
            if a.weights.encoding == .ternary { ternary += 1 }
        }
        #expect(ternary == 18)
        // Padding before the quantizer: pad -> quantize -> conv, all taken into the conv.
        let fused = r.graph.nodes.filter { if case .binaryConv2d(let a) = $0.op { a.thresholds != nil } else { false } }
        #expect(fused.count == 18 && !r.graph.nodes.contains { if case .pad = $0.op { true } else { false } })
        let x = try c.npy("input.npy")
        let expected = try c.npy("output.npy").floats()
        let lowered = try Executor(graph: r.graph, options: PlanOptions(bitKernelPath: path)).run([model.input: x])[model.output]!
        let d = Difference(lowered.floats(), expected)
        #expect(d.maxAbs <= 1e-4, "\(name) \(path) vs PyTorch: \(d)")
        let reference = try ReferenceExecutor.run(r.graph, inputs: [model.input: x])[model.output]!
        #expect(Difference(reference.floats(), expected).maxAbs <= 1e-4)
    }

    /// FATNN with `--padding_after_quant` (quantize -> pad -> conv): the quantizer and the pad
    /// move into the conv (thresholds, padding 1 with code 0), and the logits stay PyTorch's.
    @Test func loweredTernaryBehindAPadMatchesPyTorch() throws {
        let c = try GoldenCase("resnet20_ternary_fatnn")
        let options = try c.options.applying(arguments: ["--padding_after_quant"])
        let model = try ModelBuilder.build(options: options, stateDict: c.tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        let r = BinaryConvLowering.lower(model.graph)
        #expect(r.lowered.count == 18 && r.kept.isEmpty, "lowered \(r.lowered), kept \(r.kept)")
        var fused = 0
        for n in r.graph.nodes {
            guard case .binaryConv2d(let a) = n.op else { continue }
            let p = r.graph.producer(of: n.inputs[0])
            if case .pad = p?.op { continue }
            if case .quantize = p?.op { continue }
            if a.thresholds?.count == 2, a.conv.padding == Padding2d(1), a.padCode == 0 { fused += 1 }
        }
        #expect(fused == 18)  // every block conv is 3x3 with padding 1
        #expect(!r.graph.nodes.contains { if case .quantize = $0.op { return true } else { return false } })
        let x = try c.npy("input.npy")
        let lowered = try Executor(graph: r.graph).run([model.input: x])[model.output]!
        let d = Difference(lowered.floats(), try c.npy("output.npy").floats())
        #expect(d.maxAbs <= 1e-4, "\(d)")
    }

    /// Lowering with the wrong pad code (padding before the sign instead of after) is caught
    /// by the golden logits: the anti-test of the padding convention.
    @Test func wrongPadCodeMissesTheGoldenLogits() throws {
        let c = try GoldenCase("resnet20_bireal_xnor")
        let model = try ModelGoldenTests.model(c)
        var g = BinaryConvLowering.lower(model.graph).graph
        for n in g.nodes {
            guard case .binaryConv2d(var a) = n.op else { continue }
            #expect(a.padCode == 0)  // --padding_after_quant
            a.padCode = 1
            _ = g.replaceOp(ofNode: n.name, with: .binaryConv2d(a))
        }
        let out = try Executor(graph: g).run([model.input: try c.npy("input.npy")])[model.output]!
        let d = Difference(out.floats(), try c.npy("output.npy").floats())
        #expect(d.maxAbs > 1e-2, "\(d)")
    }

    /// Models that are not binary keep their float convs.
    @Test func nonBinaryModelsAreUnchanged() throws {
        for name in ["resnet20_lsq_a2w2", "resnet20_fp"] {
            let model = try ModelGoldenTests.model(try GoldenCase(name))
            let r = BinaryConvLowering.lower(model.graph)
            #expect(r.lowered.isEmpty && r.kept.isEmpty)
            #expect(r.graph.nodes.count == model.graph.nodes.count)
        }
    }
}
