import Formats
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// The grid forms the uniform quantizers hand the engine (``Quantizer/gridForm``): the fused
/// kernel gives the bits of the quantizer's own forward (``Quantizer/callAsFunction(_:shape:)``)
/// for every activation quantizer of the golden cases, and the quantizers that cannot be a
/// grid (non-uniform, LQ-Nets, weights) offer none.
@Suite struct QuantizerGridFormTests {
    static let uniformCases = [
        "resnet20_dorefa_a2w2", "resnet20_pact_a2w2", "resnet20_lsq_a2w2", "resnet20_dorefa_a4w4_varmean", "resnet18_lsq_a2w2",
    ]

    /// Every `quantize` node's function in a golden case's model.
    static func quantizers(_ name: String) throws -> [Quantizer] {
        let model = try ModelGoldenTests.model(try GoldenCase(name))
        return model.graph.nodes.compactMap { n in
            if case .quantize(let q) = n.op { return q.quantizer }
            return nil
        }
    }

    /// Inputs around the quantizer's range: random values, NaN, infinities, signed zeros and
    /// exact half-way points of the grid (where rounding is decided).
    static func inputs(_ rng: inout SplitMix64, count: Int, form: GridQuantization) -> [Float] {
        var x = rng.floats(count, -2.5 * form.hi * form.divisor[0], 2.5 * form.hi * form.divisor[0])
        let edges: [Float] = [.nan, .infinity, -.infinity, 0, -0.0]
        for (i, e) in edges.enumerated() { x[i * 7 % count] = e }
        for i in stride(from: 11, to: count, by: 13) {
            let k = Float(rng.int(0...Int(form.steps)))
            let half = (k + 0.5) / form.steps
            x[i] = (form.centered ? half * 2 - 1 : half) * form.divisor[i % form.divisor.count]
        }
        return x
    }

    @Test(arguments: uniformCases)
    func kernelMatchesQuantizerForward(name: String) throws {
        let qs = try Self.quantizers(name)
        var rng = SplitMix64(seed: 7)
        var checked = 0
        for q in qs where q.isEnabled {
            let form = try #require(q.gridForm, "\(name): \(q.name) offers no grid form")
            let channels = max(form.divisor.count, form.scale.count, form.gain.count, 1) == 1 ? 5 : form.divisor.count
            let shape = [2, channels, 3, 7]
            let x = Self.inputs(&rng, count: shape.reduce(1, *), form: form)
            let want = try q(x, shape: shape)
            for portable in [false, true] {
                var got = [Float](repeating: .nan, count: x.count)
                x.withUnsafeBufferPointer { px in
                    got.withUnsafeMutableBufferPointer { py in
                        GridQuantizeKernel.forward(
                            form, batch: 2, channels: channels, height: 3, width: 7, padding: Padding2d(0), border: .value(0),
                            input: px, output: py, threads: 2, portable: portable)
                    }
                }
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(name) \(q.name) portable \(portable)")
            }
            checked += 1
        }
        #expect(checked > 0, "\(name): no activation quantizer checked")
    }

    /// Non-uniform (FATNN) and LQ-Nets activations, and every weight quantizer, stay on the
    /// function path.
    @Test(arguments: ["resnet20_fatnn_a2w2", "resnet20_lq_a2w2"])
    func nonGridQuantizersOfferNoForm(name: String) throws {
        let qs = try Self.quantizers(name).filter(\.isEnabled)
        #expect(!qs.isEmpty)
        for q in qs { #expect(q.gridForm == nil, "\(name): \(q.name)") }
    }

    /// The fused plan of a golden model computes every quantize step through the grid kernel
    /// (no generic quantize step left) and gives the logits of the unfused plan, whose
    /// quantize steps call the quantizer function.
    @Test(arguments: ["resnet20_lsq_a2w2", "resnet20_pact_a2w2"])
    func fusedPlanMatchesFunctionPath(name: String) throws {
        let c = try GoldenCase(name)
        let model = try ModelGoldenTests.model(c)
        let x = try c.npy("input.npy")
        let fused = try Plan(graph: model.graph, inputShapes: [model.input: x.shape])
        #expect(fused.steps.contains { if case .gridQuantize = $0.call { return true } else { return false } })
        #expect(!fused.steps.contains { if case .quantize = $0.call { return true } else { return false } })
        let fast = try Executor(graph: model.graph).run([model.input: x])[model.output]!
        let slow = try Executor(graph: model.graph, options: PlanOptions(fuse: false)).run([model.input: x])[model.output]!
        let d = Difference(fast.floats(), slow.floats())
        #expect(d.maxAbs <= 1e-4, "\(d)")
        // The fused output is PyTorch's too.
        let golden = Difference(fast.floats(), try c.npy("output.npy").floats())
        #expect(golden.maxAbs <= 1e-4, "\(golden)")
    }
}
