import Tensors
import TestSupport
import Testing

@testable import Engine

/// The grid-quantize kernel (AVX2 and portable C) against ``GridQuantization/apply(_:channel:)``
/// element by element, and plans that fuse it with a pad against the reference interpreter,
/// which calls the quantize function itself.
@Suite struct GridQuantizeTests {
    /// A quantize function whose `apply` is the scalar grid definition.
    struct Grid: QuantizeFunction, Equatable {
        var form: GridQuantization
        var name: String { "grid" }
        var method: String { "grid" }
        var levels: Int { 4 }
        var gridForm: GridQuantization? { form }
        func apply(_ x: [Float], shape: [Int]) throws -> [Float] {
            let inner = shape.count > 2 ? shape[2...].reduce(1, *) : 1
            let channels = shape.count > 1 ? shape[1] : 1
            return x.indices.map { form.apply(x[$0], channel: ($0 / inner) % channels) }
        }
    }

    /// A random form: one-sided, centred or clip-style, per-tensor or per-channel parameters.
    static func randomForm(_ rng: inout SplitMix64, channels: Int) -> GridQuantization {
        func params(_ lo: Float, _ hi: Float) -> [Float] {
            rng.bool() ? rng.floats(channels, lo, hi) : [rng.floats(1, lo, hi)[0]]
        }
        let steps = Float(rng.int(1...255))
        switch rng.int(0...2) {
        case 0:
            let s = params(0.05, 2)
            return GridQuantization(divisor: s, lo: 0, hi: 1, steps: steps, scale: s, gain: rng.bool() ? params(0.5, 1.5) : [1])
        case 1:
            let s = params(0.05, 2)
            return GridQuantization(divisor: s, lo: -1, hi: 1, centered: true, steps: steps, scale: s)
        default:
            let alpha = rng.floats(1, 0.2, 3)[0]
            return GridQuantization(
                lo: 0, hi: alpha, nanValue: rng.bool() ? alpha : nil, lowerInclusive: rng.bool(), steps: steps / alpha)
        }
    }

    /// Inputs with the edge values: NaN, infinities, signed zeros, exact grid points and
    /// points half-way between them.
    static func inputs(_ rng: inout SplitMix64, _ n: Int, _ form: GridQuantization) -> [Float] {
        var x = rng.floats(n, -3, 3)
        let edges: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, form.lo, form.hi, 1e30, -1e30]
        for i in 0..<min(n, 24) {
            let k = rng.int(0...(n - 1))
            if i < edges.count {
                x[k] = edges[i]
            } else {
                // Half-way points of the grid (in the divided, uncentred domain for the
                // per-tensor divisor).
                let half = (Float(rng.int(0...Int(form.steps))) + 0.5) / form.steps
                x[k] = (form.centered ? half * 2 - 1 : half) * form.divisor[0]
            }
        }
        return x
    }

    /// Values and, with `indices`, level indices (``GridQuantization/indices``, what the
    /// integer conv reads): the kernel bit for bit as the scalar twin.
    @Test(arguments: Array(0..<48 as Range<UInt64>), [false, true])
    func kernelMatchesScalarTwin(seed: UInt64, indices: Bool) {
        var rng = SplitMix64(seed: seed)
        let (n, c, h, w) = (rng.int(1...3), rng.int(1...7), rng.int(1...9), rng.int(1...21))
        var form = Self.randomForm(&rng, channels: c)
        form.indices = indices
        let p = Padding2d(top: rng.int(0...2), left: rng.int(0...2), bottom: rng.int(0...2), right: rng.int(0...2))
        let x = Self.inputs(&rng, n * c * h * w, form)
        let padValue: Float = rng.bool() ? 0 : 0.25
        let quantizedBorder = rng.bool()
        let (oh, ow) = (h + p.top + p.bottom, w + p.left + p.right)
        var want = [Float](repeating: 0, count: n * c * oh * ow)
        for plane in 0..<(n * c) {
            let ch = plane % c
            let border = quantizedBorder ? form.apply(padValue, channel: ch) : padValue
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let (iy, ix) = (oy - p.top, ox - p.left)
                    let inside = iy >= 0 && iy < h && ix >= 0 && ix < w
                    want[(plane * oh + oy) * ow + ox] = inside ? form.apply(x[(plane * h + iy) * w + ix], channel: ch) : border
                }
            }
        }
        for portable in [false, true] {
            for threads in [1, 2] {
                let got = Fast.unary(x, outputCount: want.count) {
                    GridQuantizeKernel.forward(
                        form, batch: n, channels: c, height: h, width: w, padding: p,
                        border: quantizedBorder ? .quantized(padValue) : .value(padValue), input: $0, output: $1, threads: threads,
                        portable: portable)
                }
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "portable \(portable) threads \(threads) \(form)")
            }
        }
        guard indices else { return }
        // Each index is the level of the value the quantizer outputs: k in 0...steps, and
        // ((k / steps [* 2 - 1]) * scale) * gain is that value, bit for bit.
        var values = form
        values.indices = false
        for (i, v) in x.enumerated() where !v.isNaN || form.nanValue != nil {
            let ch = (i / (h * w)) % c
            let k = form.apply(v, channel: ch)
            var t = k / form.steps
            if form.centered { t = t * 2 - 1 }
            let level =
                (t * (form.scale.count == 1 ? form.scale[0] : form.scale[ch])) * (form.gain.count == 1 ? form.gain[0] : form.gain[ch])
            let top = ((form.centered ? (form.hi + 1) / 2 : form.hi) * form.steps).rounded()
            #expect(k == k.rounded() && k >= 0 && k <= top, "\(v) -> \(k)")
            #expect(level.bitPattern == values.apply(v, channel: ch).bitPattern, "\(v) -> \(k): \(level)")
        }
    }

    /// `pad -> quantize -> conv` and `quantize -> pad -> conv`: the plan fuses the pad into a
    /// grid-quantize step and computes the same quantized values as the reference interpreter
    /// (compared before the conv, bit for bit, and after it).
    @Test(arguments: Array(0..<12 as Range<UInt64>))
    func fusedPadMatchesReferenceInterpreter(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let (n, c, h, w) = (rng.int(1...2), rng.int(1...6), rng.int(2...9), rng.int(2...11))
        let form = Self.randomForm(&rng, channels: c)
        let padFirst = seed % 2 == 0
        var g = Graph()
        g.addInput("x")
        g.addConstant("w", Tensor(floats: rng.floats(3 * c * 9), shape: [3, c, 3, 3]))
        let pad = Op.pad(Pad2dAttributes(Padding2d(1)))
        let quant = Op.quantize(QuantizeAttributes(Grid(form: form)))
        let a = g.add(padFirst ? pad : quant, name: "a", inputs: ["x"])
        let b = g.add(padFirst ? quant : pad, name: "b", inputs: [a])
        let y = g.add(.conv2d(.init()), name: "conv", inputs: [b, "w"])
        g.markOutput(y)
        var probe = g
        probe.markOutput(b)
        let x = Tensor(floats: Self.inputs(&rng, n * c * h * w, form).map { $0.isFinite ? $0 : 0 }, shape: [n, c, h, w])

        let plan = try Executor(graph: g, threads: 2).plan(for: ["x": [n, c, h, w]])
        #expect(plan.stepDescriptions.contains { $0.hasPrefix("quantize [a + b]") }, "\(plan.stepDescriptions)")

        let fast = try Executor(graph: g, threads: 2).run(["x": x])[y]!
        let slow = try ReferenceExecutor.run(g, inputs: ["x": x])[y]!
        let scale = slow.floats().map { abs($0) }.max() ?? 1
        let d = Difference(fast.floats(), slow.floats())
        #expect(d.maxAbs <= 1e-5 * max(1, scale), "\(d)")
        // The fused step's output (`b`, marked as an output) matches bit for bit.
        let fastB = try Executor(graph: probe, threads: 2).run(["x": x])[b]!
        let slowB = try ReferenceExecutor.run(probe, inputs: ["x": x])[b]!
        #expect(fastB.floats().map(\.bitPattern) == slowB.floats().map(\.bitPattern))
    }
}
