import Engine
import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// The backward of `channelAffine`, broadcast `mul` and `prelu` (``AffineGradients``) against
/// central differences in float64 of each op's definition (written here, in double), and the
/// Fixup-style `[1]` scalar (a `mul` with ones feeding a `channelAffine`) through
/// ``TrainingGraph``.
@Suite struct AffineGradientTests {
    static let h = 1e-6

    /// Central differences of `f` at every element of `v`.
    static func numeric(_ v: [Float], _ f: ([Double]) -> Double) -> [Double] {
        let base = v.map(Double.init)
        return base.indices.map { i in
            var p = base, m = base
            p[i] += h
            m[i] -= h
            return (f(p) - f(m)) / (2 * h)
        }
    }

    static func worst(_ ours: [Float], _ numeric: [Double]) -> Double {
        zip(ours, numeric).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func channelAffineMatchesFiniteDifferences(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let (n, c, inner) = (rng.int(1...3), rng.int(1...4), rng.int(1...6))
        let x = rng.floats(n * c * inner), s = rng.floats(c), b = rng.floats(c), r = rng.floats(n * c * inner).map(Double.init)
        func f(_ x: [Double], _ s: [Double], _ b: [Double]) -> Double {
            x.indices.reduce(0) { acc, k in acc + r[k] * (x[k] * s[(k / inner) % c] + b[(k / inner) % c]) }
        }
        let g = AffineGradients.channelAffineBackward(x, dy: r.map(Float.init), batch: n, channels: c, inner: inner, scale: s)
        let (xd, sd, bd) = (x.map(Double.init), s.map(Double.init), b.map(Double.init))
        #expect(Self.worst(g.dx, Self.numeric(x) { f($0, sd, bd) }) <= 1e-5)
        #expect(Self.worst(g.dscale, Self.numeric(s) { f(xd, $0, bd) }) <= 1e-5)
        #expect(Self.worst(g.dbias, Self.numeric(b) { f(xd, sd, $0) }) <= 1e-5)
    }

    /// NumPy broadcasting of both operands, including a `[1]` scalar and a leading-rank gap.
    @Test(
        arguments: [
            ([2, 3, 4], [1]), ([1], [2, 3, 4]), ([2, 3, 4], [3, 1]), ([4], [2, 3, 1]), ([3], [3]), ([2, 1, 4], [1, 3, 1]),
        ] as [([Int], [Int])])
    func broadcastMulMatchesFiniteDifferences(aShape: [Int], bShape: [Int]) throws {
        var rng = SplitMix64(seed: UInt64(aShape.count * 10 + bShape.count))
        let a = rng.floats(aShape.reduce(1, *)), b = rng.floats(bShape.reduce(1, *))
        let outShape = try ShapeInference.outputShape(.mul, [aShape, bShape])
        let r = rng.floats(outShape.reduce(1, *)).map(Double.init)
        let rank = outShape.count
        let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
        let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
        // The definition: y[i] = a[broadcast index] * b[broadcast index], by multi-index.
        func source(_ i: Int, _ p: [Int]) -> Int {
            var rest = i, index = [Int](repeating: 0, count: rank)
            for d in (0..<rank).reversed() { index[d] = rest % outShape[d]; rest /= outShape[d] }
            return (0..<rank).reduce(0) { $0 * p[$1] + (p[$1] == 1 ? 0 : index[$1]) }
        }
        func f(_ a: [Double], _ b: [Double]) -> Double {
            r.indices.reduce(0) { $0 + r[$1] * a[source($1, pa)] * b[source($1, pb)] }
        }
        let g = AffineGradients.mulBackward(a, aShape, b, bShape, dy: r.map(Float.init))
        let (ad, bd) = (a.map(Double.init), b.map(Double.init))
        #expect(Self.worst(g.da, Self.numeric(a) { f($0, bd) }) <= 1e-5, "da \(aShape) * \(bShape)")
        #expect(Self.worst(g.db, Self.numeric(b) { f(ad, $0) }) <= 1e-5, "db \(aShape) * \(bShape)")
    }

    /// Shared and per-channel slopes; inputs at least 1e-2 from the kink at 0.
    @Test(arguments: [true, false])
    func preluMatchesFiniteDifferences(shared: Bool) throws {
        var rng = SplitMix64(seed: shared ? 5 : 6)
        let (n, c, inner) = (2, 3, 5)
        let x = rng.floats(n * c * inner).map { $0 < 0 ? min($0, -0.01) : max($0, 0.01) }
        let a = rng.floats(shared ? 1 : c, 0, 0.5), r = rng.floats(x.count).map(Double.init)
        func f(_ x: [Double], _ a: [Double]) -> Double {
            x.indices.reduce(0) { acc, k in
                let slope = a.count == 1 ? a[0] : a[(k / inner) % c]
                return acc + r[k] * (x[k] > 0 ? x[k] : slope * x[k])
            }
        }
        let g = AffineGradients.preluBackward(x, dy: r.map(Float.init), batch: n, channels: c, inner: inner, slope: a)
        let (xd, ad) = (x.map(Double.init), a.map(Double.init))
        #expect(Self.worst(g.dx, Self.numeric(x) { f($0, ad) }) <= 1e-5)
        #expect(Self.worst(g.dslope, Self.numeric(a) { f(xd, $0) }) <= 1e-5)
        #expect(x.contains { $0 < 0 } && x.contains { $0 > 0 })
    }

    /// A Fixup scalar as the training build makes it (`[1]` variable -> `mul` with ones ->
    /// `channelAffine`), then a PReLU and a linear layer: every variable's gradient through
    /// ``TrainingGraph`` against central differences of its own float32 forward.
    @Test func fixupScalarsThroughTheGraph() throws {
        var rng = SplitMix64(seed: 9)
        var g = Graph()
        g.addInput("x")
        g.addConstant("ones", Tensor(floats: [1, 1, 1], shape: [3]))
        g.addVariable("scale", Tensor(floats: [1.3], shape: [1]))
        g.addVariable("bias", Tensor(floats: [0.2], shape: [1]))
        g.addVariable("slope", Tensor(floats: [0.25], shape: [1]))
        g.addVariable("fc.w", Tensor(floats: rng.floats(4 * 12), shape: [4, 12]))
        g.addVariable("fc.b", Tensor(floats: rng.floats(4), shape: [4]))
        g.add(.mul, name: "s3", inputs: ["ones", "scale"])
        g.add(.mul, name: "b3", inputs: ["ones", "bias"])
        g.add(.channelAffine, name: "affine", inputs: ["x", "s3", "b3"])
        g.add(.prelu, name: "act", inputs: ["affine", "slope"])
        g.add(.flatten(startDim: 1), name: "flat", inputs: ["act"])
        g.add(.linear, name: "fc", inputs: ["flat", "fc.w", "fc.b"], output: "logits")
        g.markOutput("logits")
        let t = try TrainingGraph(g)
        // Inputs whose affine output stays 0.05 from PReLU's kink under the perturbations.
        let x = Tensor(
            floats: rng.floats(2 * 12).map { v in
                let z = v * 1.3 + 0.2
                return abs(z) < 0.05 ? v + 0.2 : v
            }, shape: [2, 3, 2, 2])
        let state = t.initialState
        let tape = try t.forward(inputs: ["x": x], state: state)
        let r = rng.floats(tape.values["logits"]!.count)
        let grads = try t.backward(tape, outputGradients: ["logits": r])
        func objective(_ s: [String: [Float]]) throws -> Double {
            let y = try t.forward(inputs: ["x": x], state: s).values["logits"]!
            return zip(y, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        for name in ["scale", "bias", "slope", "fc.w", "fc.b"] {
            let grad = try #require(grads[name], "\(name)")
            #expect(grad.count == state[name]!.count)
            for i in stride(from: 0, to: grad.count, by: max(1, grad.count / 5)) {
                let h: Float = 1e-2
                var plus = state, minus = state
                plus[name]![i] += h
                minus[name]![i] -= h
                let numeric = (try objective(plus) - objective(minus)) / Double(2 * h)
                #expect(abs(numeric - Double(grad[i])) <= 2e-3 * max(1, abs(numeric)), "\(name)[\(i)]: \(grad[i]) vs \(numeric)")
            }
        }
    }
}
