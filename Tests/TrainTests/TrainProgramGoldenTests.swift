import Formats
import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// ``TrainLoop`` (with ``Schedule``, ``NpyDataset`` and evaluation) against QTool's own
/// multi-epoch runs (`fixtures/golden-loop/`, from the project's golden-loop set): per epoch
/// the lr main.py logged, the weighted mean train loss, the state dict after the epoch's
/// training (`epoch<e>.pth`), evaluation top-1/top-5/loss (which also increments the DoReFa
/// family's `iteration`), the lr after the epoch, and for the LSQ case `final_checkpoint.pth`
/// (state dict after the last evaluation, SGD momentum buffers).
///
/// Tolerances are the golden-loop README's: tensors within 1e-4 relative or 1e-6 absolute,
/// losses within 1e-4 relative, lr to float rounding, counters and accuracies exactly.
@Suite struct TrainProgramGoldenTests {
    static let cases = ["loop_lsq_a2w2_sgdr": "resnet20_lsq_a2w2", "loop_lq_a2w2_step": "resnet20_lq_a2w2"]

    /// The first entry of `want` that `got` misses or differs in, described.
    static func firstDifference(
        _ got: [(name: String, tensor: Tensor)], _ want: [(name: String, tensor: Tensor)]
    ) -> String? {
        let have = Dictionary(got.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        if Set(have.keys) != Set(want.map(\.name)) { return "keys differ" }
        for (key, w) in want {
            let (h, x) = (have[key]!.doubles(), w.doubles())
            guard h.count == x.count else { return "\(key): \(h.count) vs \(x.count) values" }
            let exact = key.hasSuffix(".iteration") || key.hasSuffix(".num_batches_tracked")
            if let i = h.indices.first(where: { i in exact ? h[i] != x[i] : abs(h[i] - x[i]) > max(1e-6, 1e-4 * abs(x[i])) }) {
                return "\(key)[\(i)]: \(h[i]) vs \(x[i])"
            }
        }
        return nil
    }

    /// On the exact path, and the LSQ loop's first epoch also on the fast one (`qtools train`'s
    /// default, 2 threads). From epoch 1 on the fast LSQ loop leaves the tolerance through a ReLU
    /// mask flip, diagnosed by hand and asserted below: after epoch 0 the fast and exact states
    /// agree within the tolerance, and from either state the exact and fast kernels give the
    /// same levels and gradients within 4e-5, but the second step of epoch 1 feeds
    /// `layer1.1.fix_relu` an input within float32 rounding of zero, `layer1.1.add[5097]` =
    /// +1.2e-7 from the fast state and -3.6e-7 from the exact one (both on the exact kernels, on
    /// an AMD EPYC; the fast state's sign depends on the CPU):
    /// its gradient passes on one side only, and the gradients part by 0.2% in that step and
    /// 0.7% in the next (`conv1.weight` 8% apart after the epoch on its smallest entries).
    /// The LQ-Nets loop on the fast path leaves the tolerance from epoch 1 on, and that
    /// is a level flip at a rounding boundary, diagnosed by hand: after epoch 0 the fast and exact
    /// states agree within the tolerance and both paths give the same loss on the exact state,
    /// but on the fast state the first step of epoch 1 quantizes
    /// `layer1.2.conv1.0.quant_activation[73876]` across its threshold
    /// (`(1.5560744 + 2.305886) / 2 = 1.9309802`; input 1.9309803 in double GEMMs, 1.9309801 in
    /// float32 ones: one level apart, 2.306 vs 1.556), and the changed conv outputs flip further
    /// levels downstream (loss 2.2510 vs 2.2427). PyTorch lands on the double side, so the exact
    /// path (`--exact`) reproduces the whole loop.
    @Test(arguments: zip(["loop_lsq_a2w2_sgdr", "loop_lsq_a2w2_sgdr", "loop_lq_a2w2_step"], [false, true, false]))
    func everyEpochMatchesQTool(name: String, fast: Bool) throws {
        let folder = "golden-loop/\(name)"
        let options = try QToolOptions(config: ConfigFile(contentsOf: Fixtures.path("\(folder)/config.txt")))
        let loopJSON = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("\(folder)/loop.json"))) as? [String: Any])
        let epochs = try #require(loopJSON["epochs"] as? [[String: Any]])
        let batch = try #require(loopJSON["batch"] as? Int)
        let (train, val) = try NpyDataset.load(root: Fixtures.path(folder))
        #expect(train.batchCount(batch) == 3 && val.batchCount(batch) == 1)
        let start = try TrainGolden.entries(Fixtures.path("golden/\(Self.cases[name]!)/checkpoint.pth"))
        var loop = try TrainLoop(options: options, stateDict: start, trainLength: train.batchCount(batch))
        loop.fast = fast
        loop.threads = 2
        #expect(loop.totalEpochs == epochs.count)

        for (e, record) in epochs.enumerated() {
            let lr = try #require(record["lr"] as? Double)
            #expect(abs(loop.schedule.epochRate(e) - lr) <= 1e-15, "epoch \(e): lr")
            let loss = try #require(try loop.trainEpoch(train, batchSize: batch))
            let wantLoss = try #require(record["train_loss"] as? Double)
            #expect(abs(loss - wantLoss) <= 1e-4 * abs(wantLoss), "epoch \(e): train loss \(loss) vs \(wantLoss)")
            let after = try TrainGolden.entries(Fixtures.path("\(folder)/epoch\(e).pth"))
            let diff = Self.firstDifference(loop.stateDict, after)
            #expect(diff == nil, "epoch \(e), state after training: \(diff ?? "")")
            if diff != nil { return }

            let ev = try loop.evaluate(val, batchSize: batch)
            #expect(ev.top1 == record["top1"] as? Double, "epoch \(e): top1 \(ev.top1)")
            #expect(ev.top5 == record["top5"] as? Double, "epoch \(e): top5 \(ev.top5)")
            let evalLoss = try #require(record["eval_loss"] as? Double)
            #expect(abs(ev.loss - evalLoss) <= 1e-4 * abs(evalLoss), "epoch \(e): eval loss \(ev.loss) vs \(evalLoss)")
            let groups = try #require(record["lr_groups"] as? [Double])
            let lrAfter = loop.schedule.rate(epoch: e, iteration: loop.trainLength)
            #expect(abs(lrAfter - groups[0]) <= 1e-15, "epoch \(e): lr after the epoch \(lrAfter) vs \(groups[0])")
            loop.epoch += 1
            if fast { return try Self.checkReLUBoundary(loop, options: options, train: train, batch: batch) }
        }

        // main.py's own final checkpoint (kept for the LSQ case only, to keep fixtures small).
        let finalPath = Fixtures.path("\(folder)/final_checkpoint.pth")
        guard FileManager.default.fileExists(atPath: finalPath) else { return }
        let final = try TrainCheckpoint.restore(ModelFile.open(path: finalPath).checkpoint.root, path: finalPath)
        #expect(final.epoch == epochs.count - 1)
        let diff = Self.firstDifference(loop.stateDict, final.stateDict)
        #expect(diff == nil, "final state dict (after the last evaluation): \(diff ?? "")")
        let parameters = try loop.trainableParameters()
        #expect(final.groupCount == parameters.count)
        let optimizer = try #require(loop.optimizer)
        var bad: String? = nil
        for (i, p) in parameters.enumerated() {
            let (h, w) = (optimizer.buffers[p.name] ?? [], final.buffers[i] ?? [])
            if h.count != w.count || zip(h, w).contains(where: { abs($0 - $1) > max(1e-6, 1e-4 * abs($1)) }) {
                bad = bad ?? "momentum buffer \(i) (\(p.name))"
            }
        }
        #expect(bad == nil, "first differing \(bad ?? "")")
    }

    /// The boundary the fast LSQ loop's epoch 1 turns on (see ``everyEpochMatchesQTool(name:fast:)``):
    /// from the fast path's state after epoch 0, one step of epoch 1 on the exact kernels, then
    /// the second batch's value of `layer1.1.add[5097]`, within float32 rounding of zero (on
    /// either side: which one depends on the CPU's kernels).
    static func checkReLUBoundary(_ loop: TrainLoop, options: QToolOptions, train: some BatchSource, batch: Int) throws {
        var batches = train.batches(epoch: loop.epoch, size: batch)
        let (x0, y0) = try #require(try batches.next()), (x1, y1) = try #require(try batches.next())
        let step0 = try TrainStep(options: options, stateDict: loop.stateDict)
        let r0 = try step0.run(
            x: x0, labels: y0, optimizer: loop.optimizer.map(Optimizer.sgd),
            learningRate: loop.schedule.rate(epoch: loop.epoch, iteration: 0), stepOptimizer: true, accumulated: nil)
        let next = try TrainStep(options: options, stateDict: r0.stateDict).forward(x: x1, labels: y1)
        let v = try #require(next.tape.values["layer1.1.add"]?[5097])
        // Its sign is the fast kernels' rounding, so it depends on the CPU (+1.2e-7 on the AMD
        // EPYC of session 9); the boundary itself does not.
        #expect(abs(v) < 1e-6, "layer1.1.add[5097] = \(v)")
    }
}
