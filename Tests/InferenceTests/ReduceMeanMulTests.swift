import Formats
import Tensors
import TestSupport
import Testing

@testable import Inference

/// ``Op/reduceMean(axes:keepDims:)`` and ``Op/mul`` (what an imported XNOR `fm_custom`
/// activation runs on): the fast kernels against their naive twins, the ONNX-form XNOR
/// scaling (`sign(x) · mean|x|`) against the engine's own XNOR quantizer bit for bit, and
/// the fast executor against the reference interpreter.
@Suite struct ReduceMeanMulTests {
    static let seeds = Array(0..<8 as Range<UInt64>)

    static func reduceMean(_ x: [Float], shape: [Int], axes: [Int], threads: Int) throws -> [Float] {
        let g = try ShapeInference.reduce(axes, input: shape)
        return Fast.unary(x, outputCount: g.outer * g.inner) { ReduceMean.forward(g, input: $0, output: $1, threads: threads) }
    }

    static func mul(_ a: [Float], _ sa: [Int], _ b: [Float], _ sb: [Int], threads: Int) throws -> [Float] {
        let out = try ShapeInference.broadcast(sa, sb)
        let g = BroadcastGeometry(a: sa, b: sb, output: out)
        return Fast.unary(a, outputCount: out.reduce(1, *)) { pa, py in
            b.withUnsafeBufferPointer { pb in BroadcastMul.forward(g, pa, pb, output: py, threads: threads) }
        }
    }

    /// Random shapes of rank 1...4, every run of adjacent axes; some big enough to split over threads.
    @Test(arguments: seeds, [1, 2])
    func reduceMeanMatchesItsTwin(seed: UInt64, threads: Int) throws {
        var rng = SplitMix64(seed: seed)
        let rank = rng.int(1...4)
        let shape = (0..<rank).map { _ in seed % 2 == 0 ? rng.int(1...7) : rng.int(1...40) }
        let x = rng.floats(shape.reduce(1, *), -2, 2)
        for lo in 0..<rank {
            for hi in lo..<rank {
                let axes = Array(lo...hi)
                let fast = try Self.reduceMean(x, shape: shape, axes: axes, threads: threads)
                let slow = ReferenceKernels.reduceMean(x, shape: shape, axes: axes)
                #expect(Difference(fast, slow).maxAbs <= 2e-6, "\(shape) axes \(axes): \(Difference(fast, slow))")
            }
        }
    }

    /// NumPy broadcasting in both directions (and both at once); multiplication is exact, so
    /// bit-identical to the twin. With `a` full, the kernel may write over `a` itself.
    @Test(arguments: seeds, [1, 2])
    func mulMatchesItsTwin(seed: UInt64, threads: Int) throws {
        var rng = SplitMix64(seed: seed)
        let full = [rng.int(1...3), rng.int(1...9), rng.int(1...12), seed % 2 == 0 ? rng.int(1...12) : rng.int(200...400)]
        let shapes: [([Int], [Int])] = [
            (full, full), (full, [full[0], 1, full[2], full[3]]), (full, [full[0], full[1], 1, 1]),
            ([full[1], 1, 1], full), (full, [1]), ([full[0], 1, full[2], full[3]], [full[0], full[1], 1, 1]),
            (Array(full.suffix(2)), full),
        ]
        for (sa, sb) in shapes {
            let a = rng.floats(sa.reduce(1, *)), b = rng.floats(sb.reduce(1, *))
            let fast = try Self.mul(a, sa, b, sb, threads: threads)
            let slow = ReferenceKernels.mul(a, sa, b, sb)
            #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern), "\(sa) * \(sb)")
        }
        let sb = [full[0], 1, full[2], full[3]]
        let b = rng.floats(sb.reduce(1, *))
        var a = rng.floats(full.reduce(1, *))
        let want = ReferenceKernels.mul(a, full, b, sb)
        let g = BroadcastGeometry(a: full, b: sb, output: full)
        #expect(g.aIsFull && g.bIsFull == (full[1] == 1))
        a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in BroadcastMul.forward(g, UnsafeBufferPointer(pa), pb, output: pa, threads: threads) }
        }
        #expect(a == want, "in place")
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
            let mean = try Self.reduceMean(x.map { abs($0) }, shape: shape, axes: axes, threads: 2)
            let meanShape = try ShapeInference.outputShape(.reduceMean(axes: axes, keepDims: true), [shape])
            let onnx = try Self.mul(sign, shape, mean, meanShape, threads: 2)
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
