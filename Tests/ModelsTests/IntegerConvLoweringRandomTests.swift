import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// ``IntegerConvLowering`` on one random quantize -> conv at 2, 3, 4 and 8 bits, for the
/// activation grids of LSQ (unsigned; centred with an even and an odd number of steps) and
/// DoReFa, with the padding in the conv, after the quantizer and before it: the integer path
/// against the float (fake-quant) path and a float64 oracle written here (the grid's scalar
/// definition and a naive conv).
@Suite struct IntegerConvLoweringRandomTests {
    /// A uniform activation quantizer given by its grid form.
    struct Grid: QuantizeFunction, Equatable {
        var form: GridQuantization
        var name: String { "act" }
        var method: String { "grid" }
        var levels: Int { 0 }
        var gridForm: GridQuantization? { form }
        func apply(_ x: [Float], shape: [Int]) throws -> [Float] {
            let inner = shape[2...].reduce(1, *)
            return x.indices.map { form.apply(x[$0], channel: ($0 / inner) % shape[1]) }
        }
    }

    enum Kind: String, CaseIterable { case unsigned, centeredEven, centeredOdd, dorefa }
    enum Layout: String, CaseIterable { case convPads, padAfter, padBefore }

    struct Model {
        var graph: Graph
        var form: GridQuantization
        var x: [Float], xShape: [Int]
        var w: [Float], wShape: [Int], bias: [Float]
        var layout: Layout, stride: Int
    }

    static func model(bits: Int, kind: Kind, layout: Layout, seed: UInt64) -> Model {
        var rng = SplitMix64(seed: seed)
        let n = Float((1 << bits) - 1)
        let s = Float(rng.int(1...100)) / 128
        let form: GridQuantization
        switch kind {
        case .unsigned: form = GridQuantization(divisor: [s], lo: 0, hi: 1, steps: n, scale: [s], gain: [0.75])
        case .centeredEven: form = GridQuantization(divisor: [s], lo: -1, hi: 1, centered: true, steps: n - 1, scale: [s])
        case .centeredOdd: form = GridQuantization(divisor: [s], lo: -1, hi: 1, centered: true, steps: n, scale: [s])
        case .dorefa: form = GridQuantization(lo: 0, hi: s, steps: Float(Double(n) / Double(s)))
        }
        let (cin, cout, stride) = (6, 5, rng.int(1...2))
        let xShape = [2, cin, 7, 9], wShape = [cout, cin, 3, 3]
        let x = rng.floats(xShape.reduce(1, *), -1.5 * s, 1.5 * s)
        let half = min(1 << (bits - 1), 127)
        var w = [Float]()
        for _ in 0..<cout {
            let unit = Float(rng.int(1...1000)) / 8192
            w += (0..<(cin * 9)).map { _ in Float(rng.int(-half...half - 1)) * unit }
        }
        let bias = rng.floats(cout)
        var g = Graph()
        g.addInput("x")
        g.addConstant("w", Tensor(floats: w, shape: wShape))
        g.addConstant("b", Tensor(floats: bias, shape: [cout]))
        let q = QuantizeAttributes(Grid(form: form))
        let input: String
        switch layout {
        case .convPads:
            input = g.add(.quantize(q), name: "q", inputs: ["x"])
        case .padAfter:
            g.add(.quantize(q), name: "q", inputs: ["x"])
            input = g.add(.pad(Pad2dAttributes(Padding2d(1))), name: "pad", inputs: ["q"])
        case .padBefore:
            g.add(.pad(Pad2dAttributes(Padding2d(1))), name: "pad", inputs: ["x"])
            input = g.add(.quantize(q), name: "q", inputs: ["pad"])
        }
        let conv = Conv2dAttributes(stride: stride, padding: layout == .convPads ? 1 : 0)
        g.markOutput(g.add(.conv2d(conv), name: "conv", inputs: [input, "w", "b"]))
        return Model(graph: g, form: form, x: x, xShape: xShape, w: w, wShape: wShape, bias: bias, layout: layout, stride: stride)
    }

    /// Float64 oracle: the grid's scalar definition, zero padding (quantized when it comes
    /// before the quantizer), a naive conv summed in Double.
    static func oracle(_ m: Model) -> [Float] {
        let (n, c, h, w) = (m.xShape[0], m.xShape[1], m.xShape[2], m.xShape[3])
        let cout = m.wShape[0]
        let border = m.layout == .padBefore ? Double(m.form.apply(0, channel: 0)) : 0
        let oh = (h + 2 - 3) / m.stride + 1, ow = (w + 2 - 3) / m.stride + 1
        var y = [Float]()
        for b in 0..<n {
            for o in 0..<cout {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum = Double(m.bias[o])
                        for ci in 0..<c {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let (iy, ix) = (oy * m.stride - 1 + ky, ox * m.stride - 1 + kx)
                                    let inside = iy >= 0 && iy < h && ix >= 0 && ix < w
                                    let v =
                                        inside ? Double(m.form.apply(m.x[((b * c + ci) * h + iy) * w + ix], channel: ci)) : border
                                    sum += v * Double(m.w[((o * c + ci) * 3 + ky) * 3 + kx])
                                }
                            }
                        }
                        y.append(Float(sum))
                    }
                }
            }
        }
        return y
    }

    static func run(_ g: Graph, _ m: Model) throws -> [Float] {
        try Executor(graph: g).run(["x": Tensor(floats: m.x, shape: m.xShape)])["conv"]!.floats()
    }

    @Test(arguments: [2, 3, 4, 8], Kind.allCases)
    func integerPathMatchesTheFloatPathAndTheOracle(bits: Int, kind: Kind) throws {
        for (i, layout) in Layout.allCases.enumerated() {
            try check(bits: bits, kind: kind, layout: layout, seed: UInt64(bits * 100 + i))
        }
    }

    func check(bits: Int, kind: Kind, layout: Layout, seed: UInt64) throws {
        let m = Self.model(bits: bits, kind: kind, layout: layout, seed: seed)
        let r = IntegerConvLowering.lower(m.graph)
        if kind == .centeredOdd && layout != .padBefore {
            // Zero lies between two levels: the padding of the quantized tensor is no index.
            #expect(r.lowered.isEmpty && r.kept.count == 1, "\(layout): \(r.kept)")
            #expect(r.kept.first?.reason.contains("pad value") == true, "\(layout): \(r.kept)")
            return
        }
        #expect(r.lowered == ["conv"] && r.kept.isEmpty, "\(layout): \(r.kept)")
        #expect(!r.graph.nodes.contains { $0.op.typeName == "conv2d" || $0.op.typeName == "pad" }, "\(layout)")
        let oracle = Self.oracle(m)
        let tolerance = 1e-5 * max(1, oracle.map(abs).max() ?? 0)
        let integer = try Self.run(r.graph, m)
        let float = try Self.run(m.graph, m)
        #expect(Difference(integer, float).maxAbs <= tolerance, "\(layout) vs float path: \(Difference(integer, float))")
        #expect(Difference(integer, oracle).maxAbs <= tolerance, "\(layout) vs oracle: \(Difference(integer, oracle))")
        #expect(Difference(float, oracle).maxAbs <= tolerance, "\(layout) float path vs oracle: \(Difference(float, oracle))")
        let reference = try ReferenceExecutor.run(r.graph, inputs: ["x": Tensor(floats: m.x, shape: m.xShape)])["conv"]!.floats()
        #expect(Difference(reference, oracle).maxAbs <= tolerance, "\(layout) reference interpreter: \(Difference(reference, oracle))")

        // Anti-test: the pad index one level off misses the oracle.
        var wrong = r.graph
        guard let node = wrong.nodes.first(where: { $0.name == "conv" }), case .integerConv(var a) = node.op else {
            Issue.record("\(layout): no integerConv")
            return
        }
        a.padIndex = a.padIndex == 0 ? 1 : a.padIndex - 1
        _ = wrong.replaceOp(ofNode: "conv", with: .integerConv(a))
        #expect(Difference(try Self.run(wrong, m), oracle).maxAbs > 10 * tolerance, "\(layout)")
    }

    /// Weights off any integer grid, and per-channel activation levels, keep the float conv.
    @Test func offGridWeightsAndPerChannelLevelsStayFloat() throws {
        var m = Self.model(bits: 2, kind: .unsigned, layout: .convPads, seed: 7)
        var g = m.graph
        g.removeConstant("w")
        var rng = SplitMix64(seed: 9)
        m.w = rng.floats(m.w.count)
        g.addConstant("w", Tensor(floats: m.w, shape: m.wShape))
        let r = IntegerConvLowering.lower(g)
        #expect(r.lowered.isEmpty && r.kept.first?.reason.contains("weight w") == true, "\(r.kept)")

        var perChannel = m.form
        perChannel.scale = [0.5, 0.5, 0.5, 0.5, 0.5, 0.25]
        perChannel.divisor = perChannel.scale
        _ = g.replaceOp(ofNode: "q", with: .quantize(QuantizeAttributes(Grid(form: perChannel))))
        let p = IntegerConvLowering.lower(g)
        #expect(p.lowered.isEmpty && p.kept.first?.reason.contains("per-channel") == true, "\(p.kept)")
    }
}
