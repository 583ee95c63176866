import Formats
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// The step a mid-epoch checkpoint records (`qtools_iteration`, `qtools_epoch_loss`): read
/// back, and refused with a message naming the file when malformed or when it no longer fits
/// the epoch.
@Suite struct MidEpochCheckpointTests {
    static func root(_ extra: [(key: CheckpointValue, value: CheckpointValue)]) -> CheckpointValue {
        let state = CheckpointDict(
            [(.string("w"), .tensor(StoredTensor(Tensor(floats: [1, 2], shape: [2]), key: "0")))], kind: .orderedDict)
        return .dict(CheckpointDict([(.string("epoch"), .int(0)), (.string("state_dict"), .dict(state))] + extra, kind: .dict))
    }

    @Test func stepAndPartialLossReadBack() throws {
        let r = try TrainCheckpoint.restore(
            Self.root([
                (.string(TrainCheckpoint.iterationKey), .int(2)),
                (.string(TrainCheckpoint.epochLossKey), .list([.float(4.5), .int(16)])),
            ]), path: "c.pth")
        #expect(r.epoch == 0 && r.iteration == 2 && r.partialLoss == TrainLoop.PartialLoss(sum: 4.5, seen: 16))
        #expect(try TrainCheckpoint.restore(Self.root([]), path: "c.pth").iteration == 0)
    }

    @Test func malformedStepIsRefusedNamingTheFile() {
        let bad: [[(key: CheckpointValue, value: CheckpointValue)]] = [
            [(.string(TrainCheckpoint.iterationKey), .int(2))],
            [(.string(TrainCheckpoint.iterationKey), .int(-1)), (.string(TrainCheckpoint.epochLossKey), .list([.float(1), .int(8)]))],
            [(.string(TrainCheckpoint.iterationKey), .float(2)), (.string(TrainCheckpoint.epochLossKey), .list([.float(1), .int(8)]))],
            [(.string(TrainCheckpoint.iterationKey), .int(2)), (.string(TrainCheckpoint.epochLossKey), .list([.float(1)]))],
        ]
        for extra in bad {
            do {
                _ = try TrainCheckpoint.restore(Self.root(extra), path: "c.pth")
                Issue.record("accepted \(extra)")
            } catch {
                #expect("\(error)".contains("c.pth") && "\(error)".contains(TrainCheckpoint.iterationKey), "\(error)")
            }
        }
    }

    @Test func stepBeyondTheEpochIsRefused() throws {
        let options = try QToolOptions(config: ConfigFile(contentsOf: Fixtures.path("golden-loop/loop_lsq_a2w2_sgdr/config.txt")))
        let start = try TrainGolden.entries(Fixtures.path("golden/resnet20_lsq_a2w2/checkpoint.pth"))
        let r = TrainCheckpoint.Restored(
            epoch: 0, bestAcc: 0, learningRate: 0.05, stateDict: start, buffers: [:], groupCount: nil, iteration: 3,
            partialLoss: .init(sum: 6, seen: 24))
        do {
            _ = try TrainLoop.resuming(options: options, from: r, trainLength: 3, path: "c.pth")
            Issue.record("a step beyond the epoch was accepted")
        } catch {
            #expect("\(error)".contains("c.pth: stopped after step 3 of epoch 1, but an epoch now has 3 steps"), "\(error)")
        }
    }
}
