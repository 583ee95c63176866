import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// `--grad_clip` and `--iter-size` as `main.py` runs them (§14.4), on the golden full-precision
/// ResNet-20 with weight decay 0 so that a first SGD step moves each parameter by exactly
/// `lr` times its gradient (times 1 + momentum with Nesterov; the buffer starts as the gradient): clipping must scale every update by
/// `max_norm / (total + 1e-6)` with the total norm over all gradients, and `--iter-size 2`
/// must step once with the sum (not the mean) of both batches' gradients, while the third
/// batch of a partial group does not step.
@Suite struct GradientAccumulationTests {
    static func golden(_ extra: [String]) throws -> TrainGolden {
        var g = try TrainGolden("resnet20_fp")
        g.options = try g.options.applying(arguments: ["--wd", "0", "--lr", "0.1", "--lr_policy", "fix"] + extra)
        return g
    }

    static func moves(_ before: [(name: String, tensor: Tensor)], _ after: [(name: String, tensor: Tensor)]) -> [String: [Double]] {
        let b = Dictionary(before.map { ($0.name, $0.tensor.doubles()) }, uniquingKeysWith: { a, _ in a })
        var out: [String: [Double]] = [:]
        for (name, t) in after where name.hasSuffix("weight") {
            guard let old = b[name] else { continue }
            out[name] = zip(old, t.doubles()).map { $0 - $1 }
        }
        return out
    }

    @Test func clippingScalesEveryUpdateByTheTotalNorm() throws {
        let plain = try Self.golden([])
        let x = try plain.npy("train_x.npy"), y = try plain.labels()
        let free = try TrainStep(options: plain.options, stateDict: plain.stateDict).run(x: x, labels: y)
        let names = free.optimizer.groups.map(\.name)
        let total = names.reduce(0.0) { s, n in s + (free.gradients[n] ?? []).reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
        #expect(total > 0)
        let maxNorm = total / 4
        let clippedGolden = try Self.golden(["--grad_clip", "\(maxNorm)"])
        let clipped = try TrainStep(options: clippedGolden.options, stateDict: clippedGolden.stateDict).run(x: x, labels: y)
        let coefficient = maxNorm / (total + 1e-6)
        let a = Self.moves(plain.stateDict, free.stateDict), b = Self.moves(plain.stateDict, clipped.stateDict)
        #expect(!a.isEmpty)
        for (name, d) in a {
            let e = try #require(b[name])
            let peak = d.map(abs).max() ?? 0
            let worst = zip(d, e).map { abs($0 * coefficient - $1) }.max() ?? 0
            // Up to 2 float32 ulps of a parameter near 1 from rounding p - lr d.
            #expect(worst <= 1e-5 * peak * coefficient + 2.4e-7, "\(name): \(worst) off (peak update \(peak))")
        }
        // Above the total norm nothing changes, bit for bit.
        let loose = try Self.golden(["--grad_clip", "\(total * 2)"])
        let same = try TrainStep(options: loose.options, stateDict: loose.stateDict).run(x: x, labels: y)
        #expect(zip(same.stateDict, free.stateDict).allSatisfy { $0.tensor.doubles() == $1.tensor.doubles() })
    }

    @Test func iterSizeStepsOnceWithTheSumOfTheGradients() throws {
        let plain = try Self.golden([])
        let x = try plain.npy("train_x.npy"), y = try plain.labels()
        let n = y.count / 2
        let image = x.elementCount / y.count
        let xs = x.floats()
        func half(_ k: Int) -> (Tensor, [Int]) {
            (
                Tensor(floats: Array(xs[(k * n * image)..<((k + 1) * n * image)]), shape: [n] + Array(x.shape.dropFirst())),
                Array(y[(k * n)..<((k + 1) * n)])
            )
        }
        // The reference: both halves' gradients at the starting weights, summed, one step.
        let (xa, ya) = half(0), (xb, yb) = half(1)
        let step = try TrainStep(options: plain.options, stateDict: plain.stateDict)
        let ga = try step.run(x: xa, labels: ya).gradients, gb = try step.run(x: xb, labels: yb).gradients

        let g = try Self.golden(["--iter-size", "2"])
        let data = ImageSet(images: xs, imageShape: Array(x.shape.dropFirst()), labels: y)
        var loop = try TrainLoop(options: g.options, stateDict: g.stateDict, trainLength: 2)
        _ = try loop.trainEpoch(data, batchSize: n)
        let moved = Self.moves(plain.stateDict, loop.stateDict)
        #expect(!moved.isEmpty)
        for (name, d) in moved {
            guard let a = ga[name], let b = gb[name] else { continue }
            // First SGD step: buf = d, then d + m buf with Nesterov.
            let factor = g.options.nesterov ? 1 + g.options.momentum : 1
            let expected = zip(a, b).map { factor * 0.1 * Double(Float($0 + $1)) }
            let peak = expected.map(abs).max() ?? 0
            let worst = zip(d, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5 * peak + 2.4e-7, "\(name): \(worst) off the summed-gradient step (peak \(peak))")
        }
        // A third batch starts a new group that the epoch ends before stepping.
        var three = try TrainLoop(options: g.options, stateDict: g.stateDict, trainLength: 3)
        _ = try three.trainEpoch(data, batchSize: n)
        let weightsOf = { (sd: [(name: String, tensor: Tensor)]) in sd.filter { $0.name.hasSuffix("weight") }.map { $0.tensor.doubles() } }
        #expect(weightsOf(three.stateDict) == weightsOf(loop.stateDict))
    }
}
