import Engine
import Tensors
import TestSupport
import Testing

/// The peak-memory anchor's parts, and planning that frees the weights it has packed.
@Suite struct MemoryAnchorTests {
    /// x [1, 4, 4, 4] -> conv a (3x3, pad 1) + relu -> conv b (3x3, pad 1) + x -> maxpool 2 -> y.
    static func residualGraph(seed: UInt64 = 1) -> Graph {
        var rng = SplitMix64(seed: seed)
        var g = Graph()
        g.addInput("x")
        g.addConstant("a.w", Tensor(floats: rng.floats(144, -0.5, 0.5), shape: [4, 4, 3, 3]))
        g.addConstant("b.w", Tensor(floats: rng.floats(144, -0.5, 0.5), shape: [4, 4, 3, 3]))
        let a = g.add(.relu, name: "a.relu", inputs: [g.add(.conv2d(.init(padding: 1)), name: "a", inputs: ["x", "a.w"])])
        let b = g.add(.conv2d(.init(padding: 1)), name: "b", inputs: [a, "b.w"])
        let sum = g.add(.add, name: "sum", inputs: [b, "x"])
        g.add(.maxPool2d(.init(kernel: 2, stride: 2)), name: "y", inputs: [sum])
        g.markOutput("y")
        return g
    }

    @Test func largestActivationSetCountsTheHeldSkipInput() throws {
        // Fused steps: [a + a.relu] reads x, writes a (64 + 64 floats); [b + sum] reads a and
        // x and writes sum (over x, in place: all three still count, 192); the pool reads sum
        // and writes y (64 + 16). Largest: 192 floats.
        let g = Self.residualGraph()
        let plan = try Plan(graph: g, inputShapes: ["x": [1, 4, 4, 4]])
        #expect(plan.stepCount == 3, "\(plan.stepDescriptions)")
        #expect(plan.largestActivationBytes == 4 * 192)
        #expect(plan.largestValueBytes == 4 * 64)
        // Batch 2 doubles every value.
        #expect(try Plan(graph: g, inputShapes: ["x": [2, 4, 4, 4]]).largestActivationBytes == 8 * 192)
        // Unfused, the relu and add outputs are values too, and each step after the first
        // holds three 64-float values (x is kept for the add): still 192.
        #expect(try Plan(graph: g, inputShapes: ["x": [1, 4, 4, 4]], options: PlanOptions(fuse: false)).largestActivationBytes == 4 * 192)
    }

    @Test func plainChainIsTheLargestInputPlusOutput() throws {
        var g = Graph()
        g.addInput("x")  // [1, 2, 6, 6] = 72 floats
        g.addConstant("w", Tensor(floats: [Float](repeating: 0.1, count: 8 * 2 * 9), shape: [8, 2, 3, 3]))
        let c = g.add(.conv2d(.init(padding: 1)), name: "c", inputs: ["x", "w"])  // 288 floats
        let p = g.add(.maxPool2d(.init(kernel: 2, stride: 2)), name: "p", inputs: [c])  // 72
        g.add(.flatten(startDim: 1), name: "f", inputs: [p])  // an alias of p: no step
        g.markOutput("f")
        let plan = try Plan(graph: g, inputShapes: ["x": [1, 2, 6, 6]])
        #expect(plan.largestActivationBytes == 4 * (72 + 288))
        let anchor = MemoryAnchor(graph: g, plan: plan)
        #expect(anchor.weightBytes == 4 * 144)
        #expect(anchor.largestActivationBytes == 4 * 360)
        #expect(anchor.totalBytes == 4 * 144 + 2 * 4 * 360 + (64 << 20))
        #expect(anchor.isMet(byPeak: anchor.totalBytes) && !anchor.isMet(byPeak: anchor.totalBytes + 1))
    }

    @Test func parameterBytesCountEveryConstantAsFloat32() throws {
        var g = Graph()
        g.addConstant("w", Tensor(floats: [1, 2, 3], shape: [3]))
        g.addConstant("h", try Tensor(dtype: .float16, shape: [2], data: ByteSlice([0, 0x3c, 0, 0x40])))
        #expect(g.parameterBytes == 4 * 5)
    }

    /// A weight shared by two convs (one with a folded batch norm, one without) and a batch norm
    /// whose constants feed two nodes: planning retires each constant only after its last
    /// reader, whether the caller keeps the graph or hands it over.
    @Test func handedOverGraphPlansLikeAKeptOne() throws {
        var rng = SplitMix64(seed: 5)
        var g = Graph()
        g.addInput("x")
        g.addConstant("w", Tensor(floats: rng.floats(8 * 3 * 9, -0.5, 0.5), shape: [8, 3, 3, 3]))
        for (k, lo) in [("g", Float(0.5)), ("b", -0.1), ("m", -0.1), ("v", 0.5)] {
            g.addConstant("bn.\(k)", Tensor(floats: rng.floats(8, lo, lo + 1), shape: [8]))
        }
        let bnInputs = ["bn.g", "bn.b", "bn.m", "bn.v"]
        let c1 = g.add(.conv2d(.init(padding: 1)), name: "c1", inputs: ["x", "w"])
        let c2 = g.add(.conv2d(.init(padding: 1)), name: "c2", inputs: ["x", "w"])
        let n1 = g.add(.batchNorm(epsilon: 1e-5), name: "n1", inputs: [c1] + bnInputs)  // folded into c1
        let n2 = g.add(.batchNorm(epsilon: 1e-5), name: "n2", inputs: [c2] + bnInputs)  // c2 has 2 readers: a step
        let r2 = g.add(.relu, name: "r2", inputs: [c2])
        let y = g.add(.add, name: "y", inputs: [n1, n2])
        g.add(.add, name: "z", inputs: [y, r2], output: "y2")
        g.markOutput("y2")
        var xr = SplitMix64(seed: 6)
        let x = Tensor(floats: xr.floats(2 * 3 * 9 * 9, -1, 1), shape: [2, 3, 9, 9])
        let want = try #require(ReferenceExecutor.run(g, inputs: ["x": x])["y2"]).floats()

        let kept = try Executor(graph: g).run(["x": x])["y2"]
        #expect(Difference(try #require(kept).floats(), want).maxAbs <= 1e-4)
        let copy = g
        let plan = try Plan(graph: consume copy, inputShapes: ["x": [2, 3, 9, 9]])
        let exec = Executor(plan: plan)
        let handed = try #require(try exec.run(["x": x])["y2"])
        #expect(Difference(handed.floats(), want).maxAbs <= 1e-4)
        #expect(g.constants.count == 5)  // the caller's graph is untouched
        // An executor made from a plan runs that plan's shapes only.
        #expect(throws: InferenceError.self) {
            try exec.run(["x": Tensor(floats: [Float](repeating: 0, count: 243), shape: [1, 3, 9, 9])])
        }
    }
}
