import Engine
import Tensors
import Testing

/// `Op.reshape` (ONNX Reshape, allowzero 0): 0 copies a dimension in place, -1 is inferred;
/// a view, so the planned executor and the interpreter agree and the values keep their order.
@Suite struct ReshapeTests {
    @Test func shapesFollowONNX() throws {
        #expect(try ShapeInference.outputShape(.reshape(shape: [0, -1]), [[5, 4, 2, 3]]) == [5, 24])
        #expect(try ShapeInference.outputShape(.reshape(shape: [0, 0, -1]), [[2, 4, 3, 3]]) == [2, 4, 9])
        #expect(try ShapeInference.outputShape(.reshape(shape: [-1, 6]), [[2, 3, 2]]) == [2, 6])
        #expect(throws: InferenceError.self) { try ShapeInference.outputShape(.reshape(shape: [0, 7]), [[2, 3, 2]]) }
        #expect(throws: InferenceError.self) { try ShapeInference.outputShape(.reshape(shape: [-1, -1]), [[2, 3]]) }
        #expect(throws: InferenceError.self) { try ShapeInference.outputShape(.reshape(shape: [0, 0, 0]), [[2, 3]]) }
        #expect(throws: InferenceError.self) { try ShapeInference.outputShape(.reshape(shape: [-1, 5]), [[2, 3]]) }
    }

    @Test func planAndInterpreterAgreeAtTwoBatchSizes() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.relu, name: "r", inputs: ["x"])
        g.add(.reshape(shape: [0, -1]), name: "flat", inputs: ["r"])
        g.addConstant("w", Tensor(floats: (0..<(3 * 12)).map { Float($0 % 7) - 3 }, shape: [3, 12]))
        g.add(.linear, name: "fc", inputs: ["flat", "w"])
        g.markOutput("fc")
        for n in [1, 4] {
            let x = Tensor(floats: (0..<(n * 12)).map { Float($0 % 5) - 2 }, shape: [n, 3, 2, 2])
            let want = try #require(ReferenceExecutor.run(g, inputs: ["x": x])["fc"])
            let plan = try Plan(graph: g, inputShapes: ["x": x.shape])
            let got = try #require(try Executor(plan: plan).run(["x": x])["fc"])
            #expect(got.shape == [n, 3] && want.shape == [n, 3])
            #expect(got.floats() == want.floats())
            // The flattened row i is image i in NCHW order: a naive product.
            let xs = x.floats(), ws = (0..<36).map { Float($0 % 7) - 3 }
            for i in 0..<n {
                for o in 0..<3 {
                    let dot = (0..<12).reduce(Float(0)) { $0 + max(xs[i * 12 + $1], 0) * ws[o * 12 + $1] }
                    #expect(got.floats()[i * 3 + o] == dot)
                }
            }
        }
    }
}
