import Formats
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// ``IntegerConvLowering`` on the golden cases with uniform quantizers (LSQ, DoReFa, PACT):
/// the quantized convs run as the engine's int8 conv and the logits still match PyTorch's
/// `output.npy` (the data of the real QTool code, not of the code under test).
@Suite struct IntegerConvLoweringTests {
    /// Case -> convs lowered: resnet20's 18 block convs (the stem, the skip convs and fc have no
    /// quantized input); LSQ's resnet18 has 16 block convs and 3 quantized downsample convs.
    static let cases: [(String, Int)] = [
        ("resnet20_lsq_a2w2", 18), ("resnet18_lsq_a2w2", 19), ("resnet20_dorefa_a2w2", 18), ("resnet20_dorefa_a4w4_varmean", 18),
        ("resnet20_pact_a2w2", 18),
    ]

    @Test(arguments: cases)
    func loweredGoldenModelsMatchPyTorch(name: String, count: Int) throws {
        let c = try GoldenCase(name)
        let model = try ModelGoldenTests.model(c)
        let r = IntegerConvLowering.lower(model.graph)
        #expect(r.lowered.count == count, "\(name): lowered \(r.lowered), kept \(r.kept)")
        #expect(r.kept.isEmpty, "\(r.kept)")
        let ops = Dictionary(r.graph.nodes.map { ($0.op.typeName, 1) }, uniquingKeysWith: +)
        #expect(ops["integerConv"] == r.lowered.count, "\(ops)")
        // Every lowered conv reads a level-index quantizer, none the float fake-quant one.
        for n in r.graph.nodes where n.op.typeName == "integerConv" {
            let source = r.graph.producer(of: n.inputs[0])
            guard case .quantize(let q) = source?.op else {
                Issue.record("\(n.name) reads \(n.inputs[0])")
                continue
            }
            #expect(q.method == "levels" && q.function.gridForm?.indices == true, "\(n.name)")
        }
        let x = try c.npy("input.npy")
        let expected = try c.npy("output.npy").floats()
        let lowered = try Executor(graph: r.graph).run([model.input: x])[model.output]!
        let float = try Executor(graph: model.graph).run([model.input: x])[model.output]!
        let d = Difference(lowered.floats(), expected)
        #expect(d.maxAbs <= 1e-4, "\(name) integer path vs PyTorch: \(d)")
        let f = Difference(lowered.floats(), float.floats())
        #expect(f.maxAbs <= 1e-4, "\(name) integer path vs the float path: \(f)")
        // The reference interpreter runs the lowered graph with the naive twins.
        let reference = try ReferenceExecutor.run(r.graph, inputs: [model.input: x])[model.output]!
        #expect(Difference(reference.floats(), expected).maxAbs <= 1e-4)
    }

    /// A wrong pad index (the index of the largest level instead of zero's) or a rescale off by
    /// 1% is caught by the golden logits: the anti-tests of the padding and the rescale.
    @Test(arguments: ["pad", "scale"])
    func wrongPadIndexOrScaleMissesTheGoldenLogits(mistake: String) throws {
        let c = try GoldenCase("resnet20_lsq_a2w2")
        let model = try ModelGoldenTests.model(c)
        var g = IntegerConvLowering.lower(model.graph).graph
        var changed = 0
        for n in g.nodes {
            guard case .integerConv(var a) = n.op else { continue }
            if mistake == "pad" {
                guard !a.conv.padding.isZero else { continue }
                #expect(a.padIndex == 0)  // zero is level 0 of the unsigned LSQ activation grid
                a.padIndex = a.maxIndex
                _ = g.replaceOp(ofNode: n.name, with: .integerConv(a))
            } else {
                let name = n.inputs[2]
                let s = g.constants[name]!
                g.removeConstant(name)
                g.addConstant(name, Tensor(floats: s.floats().map { $0 * 1.01 }, shape: s.shape))
            }
            changed += 1
        }
        #expect(changed > 0)
        let out = try Executor(graph: g).run([model.input: try c.npy("input.npy")])[model.output]!
        let d = Difference(out.floats(), try c.npy("output.npy").floats())
        #expect(d.maxAbs > 1e-3, "\(mistake): \(d)")
    }

    /// Models without uniform quantizers keep their float convs; the non-uniform ones say why.
    @Test func nonUniformModelsAreUnchanged() throws {
        for name in ["resnet20_fp", "resnet20_lq_a2w2", "resnet20_bireal_xnor"] {
            let model = try ModelGoldenTests.model(try GoldenCase(name))
            let r = IntegerConvLowering.lower(model.graph)
            #expect(r.lowered.isEmpty, "\(name): \(r.lowered)")
            #expect(r.graph.nodes.count == model.graph.nodes.count)
            #expect(r.kept.allSatisfy { $0.reason.contains("no uniform grid form") }, "\(name): \(r.kept)")
            #expect(name == "resnet20_fp" ? r.kept.isEmpty : !r.kept.isEmpty, "\(name)")
        }
    }
}
