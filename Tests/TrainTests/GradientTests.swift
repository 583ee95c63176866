import Engine
import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// The training kernels against their naive twins, and every backward rule against central
/// finite differences of its own forward.
@Suite struct GradientTests {
    /// A random conv geometry: groups, depthwise, strides, dilation, asymmetric pads, batch > 1.
    static func geometry(_ rng: inout SplitMix64) -> (ConvGeometry, Conv2dAttributes, [Int], [Int]) {
        while true {
            let groups = [1, 1, 2, 3][rng.int(0...3)]
            let cig = rng.int(1...4), cog = rng.int(1...4)
            let (k, s, d, p) = (rng.int(1...3), rng.int(1...2), rng.int(1...2), rng.int(0...2))
            let (h, w) = (rng.int(2...9), rng.int(2...9))
            let attrs = Conv2dAttributes(stride: s, padding: p, dilation: d, groups: groups)
            let xs = [rng.int(1...3), cig * groups, h, w], ws = [cog * groups, cig, k, k]
            guard let g = try? ShapeInference.conv(attrs, input: xs, weight: ws, bias: nil) else { continue }
            return (g, attrs, xs, ws)
        }
    }

    @Test(arguments: Array(0..<24 as Range<UInt64>))
    func convGradientsMatchTheNaiveTwin(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let (g, _, xs, ws) = Self.geometry(&rng)
        let x = rng.floats(xs.reduce(1, *)), w = rng.floats(ws.reduce(1, *)), b = rng.floats(g.outChannels)
        let y = ConvGradient.forward(g, x: x, w: w, b: b)
        let ref = ReferenceKernels.conv2d(g, input: x, weight: w, bias: b)
        #expect(Difference(y, ref).maxAbs <= 1e-5, "forward \(g)")
        let dy = rng.floats(y.count)
        let fast = ConvGradient.backward(g, x: x, w: w, dy: dy, inputGradient: true)
        let slow = ReferenceConvGradient.backward(g, x: x, w: w, dy: dy)
        #expect(Difference(fast.dx!, slow.dx).maxAbs <= 1e-5, "dx \(g)")
        #expect(Difference(fast.dw, slow.dw).maxAbs <= 1e-5, "dw \(g)")
        #expect(Difference(fast.db, slow.db).maxAbs <= 1e-5, "db \(g)")
    }

    /// A smooth graph (conv, train-mode BN, pad, avg/adaptive pooling, concat, add, linear):
    /// the gradient of `sum(r * logits)` for every constant and a few input-side values,
    /// against central differences.
    static func smoothGraph(_ rng: inout SplitMix64) -> Graph {
        var g = Graph()
        g.addInput("x")
        func v(_ name: String, _ shape: [Int], _ lo: Float = -0.5, _ hi: Float = 0.5) {
            g.addVariable(name, Tensor(floats: rng.floats(shape.reduce(1, *), lo, hi), shape: shape))
        }
        v("c1.w", [4, 2, 3, 3]); v("c1.b", [4])
        v("bn.g", [4], 0.5, 1.5); v("bn.b", [4]); v("bn.m", [4]); v("bn.v", [4], 0.5, 1.5)
        v("c2.w", [4, 2, 1, 1])
        v("fc.w", [3, 8 * 4]); v("fc.b", [3])
        g.add(.conv2d(.init(stride: 1, padding: 1)), name: "c1", inputs: ["x", "c1.w", "c1.b"])
        g.add(.batchNorm(epsilon: 1e-5), name: "bn", inputs: ["c1", "bn.g", "bn.b", "bn.m", "bn.v"])
        g.add(.pad(.init(Padding2d(top: 1, left: 0, bottom: 0, right: 1))), name: "pad", inputs: ["bn"])
        g.add(.avgPool2d(.init(kernel: 2, stride: 1)), name: "avg", inputs: ["pad"])
        g.add(.conv2d(.init(groups: 2)), name: "c2", inputs: ["avg", "c2.w"])
        g.add(.add, name: "sum", inputs: ["c2", "avg"])
        g.add(.concat, name: "cat", inputs: ["sum", "avg"])
        g.add(.adaptiveAvgPool2d(outputHeight: 2, outputWidth: 2), name: "ada", inputs: ["cat"])
        g.add(.flatten(startDim: 1), name: "flat", inputs: ["ada"])
        g.add(.linear, name: "fc", inputs: ["flat", "fc.w", "fc.b"], output: "logits")
        g.markOutput("logits")
        return g
    }

    @Test(arguments: [1, 2] as [UInt64])
    func backwardMatchesFiniteDifferences(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let graph = Self.smoothGraph(&rng)
        let t = try TrainingGraph(graph)
        let x = Tensor(floats: rng.floats(2 * 2 * 5 * 5), shape: [2, 2, 5, 5])
        let state = t.initialState
        let tape = try t.forward(inputs: ["x": x], state: state)
        let r = rng.floats(tape.values["logits"]!.count)
        let grads = try t.backward(tape, outputGradients: ["logits": r])
        func objective(_ s: [String: [Float]]) throws -> Double {
            let y = try t.forward(inputs: ["x": x], state: s).values["logits"]!
            return zip(y, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        for name in ["c1.w", "c1.b", "bn.g", "bn.b", "c2.w", "fc.w", "fc.b"] {
            let grad = try #require(grads[name], "\(name)")
            for i in stride(from: 0, to: grad.count, by: max(1, grad.count / 5)) {
                let h: Float = 1e-2
                var plus = state, minus = state
                plus[name]![i] += h
                minus[name]![i] -= h
                let numeric = (try objective(plus) - objective(minus)) / Double(2 * h)
                #expect(abs(numeric - Double(grad[i])) <= 2e-3 * max(1, abs(numeric)), "\(name)[\(i)]: \(grad[i]) vs \(numeric)")
            }
        }
        // Running statistics get no gradient: they do not enter the train-mode forward.
        #expect(grads["bn.m"] == nil && grads["bn.v"] == nil)
    }

    /// relu passes where `x > 0`; max pooling routes to the first maximum of its window.
    @Test func piecewiseRulesRouteAsPyTorch() throws {
        let relu = LayerGradients.activationBackward([-1, 0, 2], dy: [5, 6, 7]) { $0 > 0 }
        #expect(relu == [0, 0, 7])
        // One 2x3 plane, 2x2 windows at stride 1: ties go to the earlier position.
        let g = try ShapeInference.pool(.init(kernel: 2, stride: 1), input: [1, 1, 2, 3], isMax: true)
        let dx = LayerGradients.maxPoolBackward(g, x: [1, 3, 3, 0, 2, 3], dy: [10, 20])
        #expect(dx == [0, 10 + 20, 0, 0, 0, 0])
    }

    @Test func crossEntropyMatchesItsDefinition() throws {
        // Two samples, three classes; the loss by hand: mean of logsumexp(z) - z_y.
        let z: [Float] = [1, 2, 3, 0, 0, 0]
        let (loss, grad) = try CrossEntropy()(logits: z, classes: 3, labels: [2, 0])
        let l0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3, l1 = log(3.0)
        #expect(abs(Double(loss) - (l0 + l1) / 2) < 1e-6)
        #expect(abs(Double(grad[3]) - (1.0 / 3 - 1) / 2) < 1e-6)
        let smooth = try CrossEntropy(labelSmoothing: 0.3)(logits: [0, 0], classes: 2, labels: [1]).loss
        #expect(abs(Double(smooth) - log(2.0)) < 1e-6)  // uniform logits: every target mix gives log K
        #expect(throws: TrainError.self) { try CrossEntropy()(logits: z, classes: 3, labels: [3, 0]) }
        #expect(throws: TrainError.self) { try CrossEntropy()(logits: [.nan, 0, 0], classes: 3, labels: [0]) }
    }
}
