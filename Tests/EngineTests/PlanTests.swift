import Engine
import Tensors
import TestSupport
import Testing

/// The fast executor (fusion, buffer reuse, in-place) against the reference interpreter.
@Suite struct PlanTests {
    static func tensor(_ rng: inout SplitMix64, _ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        Tensor(floats: rng.floats(shape.reduce(1, *), lo, hi), shape: shape)
    }

    /// Branches, a residual add, concat, a value read by two consumers, pad-then-conv,
    /// depthwise, every activation, pools, flatten, linear, softmax; two outputs.
    static func branchyGraph(seed: UInt64) -> Graph {
        var rng = SplitMix64(seed: seed)
        var g = Graph()
        g.addInput("x")
        func c(_ name: String, _ shape: [Int], _ lo: Float = -0.5, _ hi: Float = 0.5) {
            g.addConstant(name, tensor(&rng, shape, lo, hi))
        }
        func bn(_ name: String, _ ch: Int, _ x: String) -> String {
            c("\(name).g", [ch], 0.5, 1.5); c("\(name).b", [ch]); c("\(name).m", [ch]); c("\(name).v", [ch], 0.5, 1.5)
            return g.add(.batchNorm(epsilon: 1e-5), name: name, inputs: [x, "\(name).g", "\(name).b", "\(name).m", "\(name).v"])
        }
        c("stem.w", [8, 3, 3, 3]); c("stem.b", [8])
        var x = g.add(.conv2d(.init(stride: 1, padding: 1)), name: "stem", inputs: ["x", "stem.w", "stem.b"])
        x = g.add(.relu, name: "stem.relu", inputs: [bn("stem.bn", 8, x)])
        // Branch A: 1x1 conv + hardtanh. Branch B: maxpool 3/1/1 then 3x3 conv. Both read x.
        c("a.w", [6, 8, 1, 1])
        let a = g.add(.hardtanh(min: -0.5, max: 0.5), name: "a.act", inputs: [g.add(.conv2d(.init()), name: "a", inputs: [x, "a.w"])])
        let pooled = g.add(.maxPool2d(.init(kernel: 3, stride: 1, padding: 1)), name: "b.pool", inputs: [x])
        c("b.w", [10, 8, 3, 3])
        let bconv = g.add(.conv2d(.init(padding: 1)), name: "b", inputs: [pooled, "b.w"])
        let cat = g.add(.concat, name: "cat", inputs: [a, bn("b.bn", 10, bconv)])  // 16 channels
        // Residual: quantized-conv style pad, then unpadded conv, + cat, then clamp.
        let padded = g.add(.pad(.init(Padding2d(top: 1, left: 3, bottom: 1, right: 1))), name: "pad", inputs: [cat])
        c("r.w", [16, 8, 3, 3])
        let r = g.add(
            .conv2d(.init(stride: (1, 1), padding: Padding2d(0), dilation: (1, 2), groups: 2)), name: "r", inputs: [padded, "r.w"])
        c("r.s", [16]); c("r.sb", [16])
        let ra = g.add(.channelAffine, name: "r.affine", inputs: [r, "r.s", "r.sb"])
        let sum = g.add(.add, name: "sum", inputs: [ra, cat])
        let clamped = g.add(.clamp(min: -1, max: nil), name: "clamp", inputs: [sum])
        // Depthwise with bias, PReLU, avg pool with ceil mode.
        c("dw.w", [16, 1, 3, 3]); c("dw.b", [16]); c("prelu.a", [16], 0, 0.3)
        let dw = g.add(.conv2d(.init(stride: 2, padding: 1, groups: 16)), name: "dw", inputs: [clamped, "dw.w", "dw.b"])
        let pr = g.add(.prelu, name: "prelu", inputs: [dw, "prelu.a"])
        let ap = g.add(
            .avgPool2d(.init(kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false)), name: "apool", inputs: [pr])
        let ad = g.add(.adaptiveAvgPool2d(outputHeight: 2, outputWidth: 3), name: "adapt", inputs: [ap])
        let fl = g.add(.flatten(startDim: 1), name: "flat", inputs: [ad])
        c("fc.w", [5, 96]); c("fc.b", [5])
        let fc = g.add(.linear, name: "fc", inputs: [fl, "fc.w", "fc.b"])
        g.add(.softmax(axis: 1), name: "prob", inputs: [fc])
        g.markOutput("prob")
        g.markOutput("clamp")  // an intermediate output that also feeds more nodes
        return g
    }

    static let optionGrid: [PlanOptions] = [
        PlanOptions(),
        PlanOptions(fuse: false),
        PlanOptions(fuse: true, reuseBuffers: false, inPlace: false),
        PlanOptions(fuse: false, reuseBuffers: true, inPlace: false),
    ]

    @Test(arguments: Array(0..<4 as Range<UInt64>), optionGrid)
    func branchyGraphMatchesReference(seed: UInt64, options: PlanOptions) throws {
        let g = Self.branchyGraph(seed: seed)
        var rng = SplitMix64(seed: seed + 99)
        let x = Self.tensor(&rng, [2, 3, 11, 14])
        let slow = try ReferenceExecutor.run(g, inputs: ["x": x])
        let exec = try Executor(graph: g, threads: Int(seed % 2) + 1, options: options)
        for _ in 0..<2 {  // a second run reuses the arena: stale data must not leak in
            let fast = try exec.run(["x": x])
            for name in ["prob", "clamp"] {
                let f = try #require(fast[name]), s = try #require(slow[name])
                #expect(f.shape == s.shape)
                let d = Difference(f.floats(), s.floats())
                #expect(d.maxAbs <= 1e-4, "\(name): \(d)")
            }
        }
    }

    @Test func reuseShrinksTheArenaAndFusionRemovesSteps() throws {
        let g = Self.branchyGraph(seed: 1)
        let shapes = ["x": [1, 3, 32, 32]]
        let full = try Plan(graph: g, inputShapes: shapes)
        let noReuse = try Plan(graph: g, inputShapes: shapes, options: PlanOptions(reuseBuffers: false, inPlace: false))
        let unfused = try Plan(graph: g, inputShapes: shapes, options: PlanOptions(fuse: false))
        #expect(full.arenaBytes < noReuse.arenaBytes)
        #expect(full.stepCount < unfused.stepCount)
        // stem+bn+relu, a+hardtanh, b+bn, r+affine+add+clamp ("clamp" is a graph output, and
        // the fused step writes it; "sum" is not, so it may disappear).
        #expect(full.stepDescriptions.contains { $0.hasPrefix("conv2d [stem + stem.bn + stem.relu]") }, "\(full.stepDescriptions)")
        #expect(full.stepDescriptions.contains { $0.hasPrefix("conv2d [r + r.affine + sum + clamp]") }, "\(full.stepDescriptions)")
    }

    /// `relu(bn(conv(x)) + x)` where x is produced by an earlier step and read only here: the
    /// fused conv+add step reads x as its input and as its residual, so it must not write its
    /// output over x (a ReShapeResolution `f0x0` block has this shape). Wide maps run the
    /// direct conv in column ranges (a later range reads input pixels an earlier one would have
    /// overwritten); 64 channels at 28x28 may run Winograd.
    @Test(arguments: [(8, 32), (32, 16), (64, 28)])
    func convWhoseResidualIsItsInputIsNotInPlace(channels: Int, size: Int) throws {
        var rng = SplitMix64(seed: 5)
        var g = Graph()
        g.addInput("x")
        g.addConstant("w0", Self.tensor(&rng, [channels, 3, 1, 1]))
        let x = g.add(.conv2d(.init()), name: "pre", inputs: ["x", "w0"])
        g.addConstant("w", Self.tensor(&rng, [channels, channels, 3, 3], -0.1, 0.1))
        let c = g.add(.conv2d(.init(padding: 1)), name: "conv", inputs: [x, "w"])
        for (k, lo) in [("g", Float(0.5)), ("b", -0.5), ("m", -0.5), ("v", 0.5)] {
            g.addConstant("bn.\(k)", Self.tensor(&rng, [channels], lo, lo + 1))
        }
        let bn = g.add(.batchNorm(epsilon: 1e-5), name: "bn", inputs: [c, "bn.g", "bn.b", "bn.m", "bn.v"])
        let sum = g.add(.add, name: "sum", inputs: [bn, x])
        g.add(.relu, name: "out", inputs: [sum])
        g.markOutput("out")
        let input = Self.tensor(&rng, [1, 3, size, size])
        let slow = try #require(try ReferenceExecutor.run(g, inputs: ["x": input])["out"])
        let plan = try Plan(graph: g, inputShapes: ["x": input.shape])
        #expect(plan.stepDescriptions.contains { $0.contains("conv + bn + sum + out") }, "\(plan.stepDescriptions)")
        let fast = try #require(try Executor(graph: g, threads: 2).run(["x": input])["out"])
        let d = Difference(fast.floats(), slow.floats())
        #expect(d.maxAbs <= 1e-4, "\(d)")
    }

    @Test func newInputShapeReplans() throws {
        var g = Graph()
        g.addInput("x")
        g.add(.relu, name: "r", inputs: ["x"])
        g.markOutput("r")
        let exec = try Executor(graph: g)
        let a = try exec.run(floats: [-1, 2], shape: [1, 2])["r"]?.floats()
        let b = try exec.run(floats: [3, -4, 5], shape: [3, 1])["r"]?.floats()
        #expect(a == [0, 2])
        #expect(b == [3, 0, 5])
    }
}
