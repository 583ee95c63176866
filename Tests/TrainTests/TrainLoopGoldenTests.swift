import Formats
import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// Nine consecutive ``TrainStep``s against QTool's own 3-epoch run `loop_lq_a2w2_step`
/// (`fixtures/golden-loop/`, from the project's golden-loop set): LQ-Nets 2-bit with the
/// `custom-update` basis, 3 batches of 8 per epoch in order, Nesterov momentum carried over
/// the steps, the learning rate of each epoch as `loop.json` records it (0.05, 0.05, 0.005).
/// Each step is built from the previous step's state dict, so LQ bases, `auxil`, `iteration`
/// and BatchNorm statistics carry over as in `main.py`; LQ-Nets evaluation changes nothing,
/// so `epoch<e>.pth` is the state after step `3(e + 1)`.
///
/// Tolerances are the golden-loop README's: every tensor within 1e-4 relative or 1e-6
/// absolute (float32 drift over 9 steps), the epoch's mean train loss within 1e-4 relative,
/// `iteration` exactly. A failure names the first epoch and tensor that differ.
@Suite struct TrainLoopGoldenTests {
    static let folder = "golden-loop/loop_lq_a2w2_step"

    static func npy(_ file: String) throws -> Tensor {
        try NpyReader.readArray(ByteStore.map(path: Fixtures.path("\(folder)/\(file)")).all)
    }

    @Test func nineStepsMatchQTool() throws {
        let options = try QToolOptions(config: ConfigFile(contentsOf: Fixtures.path("\(Self.folder)/config.txt")))
        let data = try Data(contentsOf: Fixtures.url("\(Self.folder)/loop.json"))
        let loop = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let epochs = try #require(loop["epochs"] as? [[String: Any]])
        let batch = try #require(loop["batch"] as? Int)
        let perEpoch = try #require(loop["batches_per_epoch"] as? Int)
        #expect(epochs.count == 3 && batch == 8 && perEpoch == 3)

        let x = try Self.npy("train_x.npy")
        let xs = x.floats()
        let labels = try Self.npy("train_y.npy").doubles().map { Int($0) }
        let image = x.shape.dropFirst().reduce(1, *)
        var stateDict = try TrainGolden.entries(Fixtures.path("golden/resnet20_lq_a2w2/checkpoint.pth"))
        var optimizer: Optimizer? = nil

        for (e, record) in epochs.enumerated() {
            let lr = try #require(record["lr"] as? Double)
            var losses: [Double] = []
            for b in 0..<perEpoch {
                let first = b * batch
                let values = Array(xs[(first * image)..<((first + batch) * image)])
                let xb = Tensor(floats: values, shape: [batch] + Array(x.shape.dropFirst()))
                let yb = Array(labels[first..<(first + batch)])
                let step = try TrainStep(options: options, stateDict: stateDict)
                let r: TrainStep.Result
                if let optimizer {
                    r = try step.run(x: xb, labels: yb, continuing: optimizer, learningRate: lr)
                } else {
                    r = try step.run(x: xb, labels: yb)
                }
                if optimizer == nil { #expect(r.learningRate == lr, "epoch 0 lr from the schedule") }
                losses.append(Double(r.loss))
                stateDict = r.stateDict
                optimizer = r.optimizer
            }
            let meanLoss = losses.reduce(0, +) / Double(losses.count)
            let wantLoss = try #require(record["train_loss"] as? Double)
            #expect(abs(meanLoss - wantLoss) <= 1e-4 * abs(wantLoss), "epoch \(e): train loss \(meanLoss) vs \(wantLoss)")

            let got = Dictionary(stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
            let expected = try TrainGolden.entries(Fixtures.path("\(Self.folder)/epoch\(e).pth"))
            #expect(Set(got.keys) == Set(expected.map(\.name)), "epoch \(e): keys")
            var first: String? = nil
            for (key, want) in expected {
                let have = try #require(got[key], "epoch \(e): \(key) missing")
                let (h, w) = (have.doubles(), want.doubles())
                let exact = key.hasSuffix(".iteration") || key.hasSuffix(".num_batches_tracked")
                let bad = h.indices.first { i in exact ? h[i] != w[i] : abs(h[i] - w[i]) > max(1e-6, 1e-4 * abs(w[i])) }
                if let i = bad, first == nil {
                    first = "epoch \(e), \(key)[\(i)]: \(h[i]) vs \(w[i])"
                }
            }
            #expect(first == nil, "first difference: \(first ?? "")")
            if first != nil { return }
        }
    }
}
