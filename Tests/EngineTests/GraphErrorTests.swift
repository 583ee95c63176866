import Engine
import Tensors
import Testing

@Suite struct GraphErrorTests {
    static func weight(_ shape: [Int]) -> Tensor {
        Tensor(floats: [Float](repeating: 0.1, count: shape.reduce(1, *)), shape: shape)
    }

    @Test func unknownValueNamesTheNode() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.relu, name: "act", inputs: ["nope"])
        g.markOutput("act")
        let e = try #require(throws: InferenceError.self) { try g.validate() }
        #expect(e.reason == .unknownValue("nope"))
        #expect(e.node == "act")
        #expect(e.description.contains("\"act\""))
    }

    @Test func cycleNamesANodeOnIt() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.add, name: "a", inputs: ["x", "b"])
        g.add(.relu, name: "b", inputs: ["a"])
        g.markOutput("b")
        let e = try #require(throws: InferenceError.self) { try g.validate() }
        #expect(e.reason == .cycle)
        #expect(e.node == "a" || e.node == "b")
    }

    @Test func wrongArityNamesTheNode() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.add, name: "sum", inputs: ["x"])
        g.markOutput("sum")
        let e = try #require(throws: InferenceError.self) { try g.validate() }
        #expect(e.node == "sum")
        guard case .arity(_, let expected, let found) = e.reason else {
            Issue.record("expected arity, got \(e)")
            return
        }
        #expect(expected == "2" && found == 1)
    }

    @Test func duplicateProducerIsRejected() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.relu, name: "r1", inputs: ["x"], output: "y")
        g.add(.relu, name: "r2", inputs: ["x"], output: "y")
        g.markOutput("y")
        let e = try #require(throws: InferenceError.self) { try g.validate() }
        #expect(e.reason == .duplicateName("y"))
        #expect(e.node == "r2")
    }

    @Test func computedWeightIsRejected() throws {
        var g = Graph()
        g.addInput("x")
        g.addInput("w")
        g.add(.conv2d(.init()), name: "conv", inputs: ["x", "w"])
        g.markOutput("conv")
        let e = try #require(throws: InferenceError.self) { try g.validate() }
        #expect(e.reason == .notConstant("w"))
        #expect(e.node == "conv")
    }

    @Test func shapeMismatchAtPlanTimeNamesTheNode() throws {
        var g = Graph()
        g.addInput("x")
        g.addConstant("w", Self.weight([4, 5, 3, 3]))
        g.add(.conv2d(.init(padding: 1)), name: "layer1.conv", inputs: ["x", "w"])
        g.markOutput("layer1.conv")
        let e = try #require(throws: InferenceError.self) { try Plan(graph: g, inputShapes: ["x": [1, 3, 8, 8]]) }
        #expect(e.node == "layer1.conv")
        guard case .shapeMismatch = e.reason else {
            Issue.record("expected shape mismatch, got \(e)")
            return
        }
    }

    @Test func missingInputShapeAndBadAttributes() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.maxPool2d(.init(kernel: 2, stride: 0)), name: "pool", inputs: ["x"])
        g.markOutput("pool")
        let e1 = try #require(throws: InferenceError.self) { try Plan(graph: g, inputShapes: [:]) }
        #expect(e1.value == "x")
        let e2 = try #require(throws: InferenceError.self) { try Plan(graph: g, inputShapes: ["x": [1, 1, 4, 4]]) }
        #expect(e2.node == "pool")
        let exec = try Executor(graph: g)
        let e3 = try #require(throws: InferenceError.self) { try exec.run([:]) }
        #expect(e3.value == "x")
    }
}
