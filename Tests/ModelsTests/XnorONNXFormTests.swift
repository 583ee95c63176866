import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// The ONNX form of XNOR's activation scaling (`sign(x) · ReduceMean(|x|)`, what an imported
/// `fm_custom` XNOR export runs on) against the XNOR quantizer, and the imported element-wise
/// programs that carry it.
@Suite struct XnorONNXFormTests {
    static let seeds = Array(0..<8 as Range<UInt64>)

    /// `sign · reduceMean(magnitude, axes, keepDims)` through the engine's executor.
    static func signTimesMean(sign: [Float], magnitude: [Float], shape: [Int], axes: [Int]) throws -> [Float] {
        var g = Graph()
        g.addInput("sign")
        g.addInput("magnitude")
        g.add(.reduceMean(axes: axes, keepDims: true), name: "mean", inputs: ["magnitude"])
        g.add(.mul, name: "y", inputs: ["sign", "mean"])
        g.markOutput("y")
        let out = try Executor(graph: g, threads: 2).run([
            "sign": Tensor(floats: sign, shape: shape), "magnitude": Tensor(floats: magnitude, shape: shape),
        ])
        return try #require(out["y"]).floats()
    }

    /// The exported XNOR form `Where(x ≥ 0, 1, −1) · ReduceMean(|x|)` is the engine's XNOR
    /// activation (`fm_custom` channel: axis 1; resolution: axes 2, 3) to the bit.
    @Test(arguments: seeds)
    func xnorScalingIsTheQuantizerBitForBit(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let shape = [rng.int(1...3), rng.int(1...70), rng.int(1...17), rng.int(1...17)]
        let x = rng.floats(shape.reduce(1, *), -3, 3)
        let sign = x.map { $0 >= 0 ? Float(1) : -1 }
        for (custom, axes) in [(QuantizerCustom.channel, [1]), (.resolution, [2, 3])] {
            let onnx = try Self.signTimesMean(sign: sign, magnitude: x.map { abs($0) }, shape: shape, axes: axes)
            let engine = XnorQuantizer.activation(x, shape: shape, custom: custom)
            #expect(onnx.map(\.bitPattern) == engine.map(\.bitPattern), "\(custom) \(shape)")
        }
    }

    /// An imported program read at two values (XNOR's sign and |x|) splits into two pruned
    /// programs, each computing its value as the whole program does, with only its own steps.
    @Test func programPrunedPerOutput() throws {
        var p = ElementwiseProgram(name: "q")
        let zero = p.add(.constant([0]))
        let ge = p.add(.binary("GreaterOrEqual", 0, zero))
        let sign = p.add(.select(ge, p.add(.constant([1])), p.add(.constant([-1]))))
        let abs = p.add(.unary("Abs", 0))
        let scaled = p.add(.binary("Mul", abs, p.add(.constant([0.5, 2, 3]))))
        var rng = SplitMix64(seed: 3)
        let x = rng.floats(2 * 3 * 4, -2, 2)
        for (out, steps) in [(sign, 6), (abs, 2), (scaled, 4)] {
            var whole = p
            whole.output = out
            let cut = p.pruned(to: out, name: "v")
            #expect(cut.steps.count == steps && cut.steps[0] == .input && cut.name == "v", "\(cut.steps)")
            #expect(try cut.run(x, shape: [2, 3, 4]) == (try whole.run(x, shape: [2, 3, 4])))
        }
    }

    static func graph() -> Graph {
        var g = Graph()
        g.addInput("x")
        g.addConstant("c", Tensor(floats: [0.5, -2, 3, 0.25], shape: [1, 4, 1, 1]))
        g.add(.reduceMean(axes: [1], keepDims: true), name: "channel_mean", inputs: ["x"])
        g.add(.mul, name: "scaled", inputs: ["channel_mean", "x"])
        g.add(.mul, name: "weighted", inputs: ["scaled", "c"])
        g.add(.reduceMean(axes: [-2, -1], keepDims: false), name: "pooled", inputs: ["weighted"])
        g.add(.reduceMean(axes: [], keepDims: true), name: "all", inputs: ["x"])
        g.markOutput("pooled")
        g.markOutput("all")
        return g
    }

    @Test(arguments: [1, 2])
    func executorMatchesTheReferenceInterpreter(threads: Int) throws {
        var rng = SplitMix64(seed: 7)
        let x = Tensor(floats: rng.floats(2 * 4 * 9 * 11, -2, 2), shape: [2, 4, 9, 11])
        let fast = try Executor(graph: Self.graph(), threads: threads).run(["x": x])
        let slow = try ReferenceExecutor.run(Self.graph(), inputs: ["x": x])
        for o in ["pooled", "all"] {
            let f = try #require(fast[o]), s = try #require(slow[o])
            #expect(f.shape == s.shape)
            #expect(Difference(f.floats(), s.floats()).maxAbs <= 1e-5, "\(o)")
        }
        #expect(fast["pooled"]?.shape == [2, 4] && fast["all"]?.shape == [1, 1, 1, 1])
    }

    @Test func badAxesAndShapesNameTheNode() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.reduceMean(axes: [1, 3], keepDims: true), name: "gappy", inputs: ["x"])
        g.markOutput("gappy")
        let x = Tensor(floats: [Float](repeating: 1, count: 2 * 3 * 4 * 5), shape: [2, 3, 4, 5])
        let e = try #require(throws: InferenceError.self) { try Executor(graph: g).run(["x": x]) }
        #expect(e.node == "gappy" && "\(e)".contains("not adjacent"), "\(e)")
        let r = try #require(throws: InferenceError.self) { try ReferenceExecutor.run(g, inputs: ["x": x]) }
        #expect(r.node == "gappy")

        var h = Graph()
        h.addInput("x")
        h.addConstant("w", Tensor(floats: [1, 2], shape: [2, 1, 1]))
        h.add(.mul, name: "mismatch", inputs: ["x", "w"])
        h.markOutput("mismatch")
        let m = try #require(throws: InferenceError.self) { try Executor(graph: h).run(["x": x]) }
        #expect(m.node == "mismatch" && "\(m)".contains("does not broadcast"), "\(m)")

        #expect(throws: InferenceError.self) { try ShapeInference.reducedAxes([4], input: [2, 3, 4, 5]) }
        #expect(throws: InferenceError.self) { try ShapeInference.reducedAxes([1, -3], input: [2, 3, 4, 5]) }
    }
}
