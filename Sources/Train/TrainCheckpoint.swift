import Formats
import Foundation
import Tensors

/// `main.py`'s training checkpoint (seed-reference §12.1-12.3): `epoch`, `state_dict`,
/// `optimizer` (torch's `optimizer.state_dict()`: one group per trainable parameter, momentum
/// buffers under their integer position), `scheduler` (the cosine scheduler's state under
/// `sgdr`/`cos`, else None), `best_acc`, `learning_rate`, `amp` (None).
public enum TrainCheckpoint {
    /// The object `torch.save` is given after epoch `epoch` (the loop's ``TrainLoop/epoch``
    /// is then `epoch + 1`), with `learningRate` the epoch's reported lr.
    public static func value(_ loop: TrainLoop, epoch: Int, learningRate: Double) -> CheckpointValue {
        let state = CheckpointDict(
            loop.stateDict.enumerated().map { i, e in (.string(e.name), .tensor(StoredTensor(e.tensor, key: String(i)))) },
            kind: .orderedDict)
        var top: [(key: CheckpointValue, value: CheckpointValue)] = [
            (.string("epoch"), .int(Int64(epoch))),
            (.string("state_dict"), .dict(state)),
        ]
        // Under sgdr torch's scheduler has stepped after the epoch's last iteration: the groups
        // hold the next iteration's rate.
        let groupLR: Double? =
            loop.schedule.policy.hasPrefix("sgdr") && epoch >= 0
            ? loop.schedule.rate(epoch: epoch, iteration: loop.trainLength) : nil
        top.append((.string("optimizer"), optimizerValue(loop, tensorOffset: loop.stateDict.count, groupLR: groupLR)))
        top.append((.string("scheduler"), schedulerValue(loop)))
        top.append((.string("best_acc"), .float(loop.bestAcc)))
        top.append((.string("learning_rate"), .float(learningRate)))
        top.append((.string("amp"), .none))
        if loop.iteration > 0 {
            top.append((.string(iterationKey), .int(Int64(loop.iteration))))
            top.append((.string(epochLossKey), .list([.float(loop.partialLoss.sum), .int(Int64(loop.partialLoss.seen))])))
        }
        return .dict(CheckpointDict(top, kind: .dict))
    }

    /// A run stopped after a training step (Ctrl-C, SIGTERM, `--stop-after-steps`): the steps of
    /// epoch `epoch + 1` already done. main.py ignores it (and restarts that epoch at its first
    /// batch from these weights); `qtools train -r` continues at the next batch.
    public static let iterationKey = "qtools_iteration"
    /// With ``iterationKey``: `[loss sum, images]` of those steps.
    public static let epochLossKey = "qtools_epoch_loss"

    /// The checkpoint of a run stopped inside epoch ``TrainLoop/epoch`` after step
    /// ``TrainLoop/iteration``: `epoch` is the last complete epoch (-1 for none), as main.py
    /// expects, plus the step and the partial loss.
    public static func midEpochValue(_ loop: TrainLoop) -> CheckpointValue {
        value(loop, epoch: loop.epoch - 1, learningRate: loop.schedule.epochRate(loop.epoch))
    }

    static func cosine(_ s: Schedule) -> Bool { ["sgdr", "sgdr_step", "cos"].contains(s.policy) }

    static func optimizerValue(_ loop: TrainLoop, tensorOffset: Int, groupLR: Double?) -> CheckpointValue {
        let groups = loop.optimizer?.groups ?? []
        var states: [(key: CheckpointValue, value: CheckpointValue)] = []
        var params: [CheckpointValue] = []
        for (i, g) in groups.enumerated() {
            if let buf = loop.optimizer?.buffers[g.name] {
                let shape = loop.stateDict.first { $0.name == g.name }?.tensor.shape ?? [buf.count]
                let t = StoredTensor(Tensor(floats: buf, shape: shape), key: String(tensorOffset + i))
                states.append((.int(Int64(i)), .dict(CheckpointDict([(.string("momentum_buffer"), .tensor(t))], kind: .dict))))
            }
            var entries: [(key: CheckpointValue, value: CheckpointValue)] = [
                (.string("lr"), .float(groupLR ?? g.lr)),
                (.string("momentum"), .float(loop.optimizer?.momentum ?? loop.options.momentum)),
                (.string("dampening"), .int(0)),
                (.string("weight_decay"), .float(g.weightDecay)),
                (.string("nesterov"), .bool(loop.optimizer?.nesterov ?? loop.options.nesterov)),
                (.string("maximize"), .bool(false)),
                (.string("foreach"), .none),
                (.string("differentiable"), .bool(false)),
                (.string("fused"), .none),
            ]
            if cosine(loop.schedule) { entries.append((.string("initial_lr"), .float(loop.schedule.lr0))) }
            entries.append((.string("params"), .list([.int(Int64(i))])))
            params.append(.dict(CheckpointDict(entries, kind: .dict)))
        }
        return .dict(
            CheckpointDict(
                [(.string("state"), .dict(CheckpointDict(states, kind: .dict))), (.string("param_groups"), .list(params))],
                kind: .dict))
    }

    /// `CosineAnnealingLR.state_dict()` at the end of the epoch just trained (closed form:
    /// `last_epoch` counts the steps since the cycle start).
    static func schedulerValue(_ loop: TrainLoop) -> CheckpointValue {
        let s = loop.schedule
        guard cosine(s), loop.epoch > 0 else { return .none }
        let e = min(loop.epoch - 1, max(s.epochs - 1, 0))
        let (start, length) = s.cycle(e)
        let perEpoch = s.policy == "cos" ? 1 : s.trainLength
        let last = s.policy == "cos" ? e - start + (start > 0 ? 1 : 0) : (e - start + 1) * s.trainLength
        let n = loop.optimizer?.groups.count ?? 0
        let lastLR = s.policy == "cos" ? (loop.optimizer?.groups.first?.lr ?? s.lr0) : s.rate(epoch: e, iteration: s.trainLength)
        return .dict(
            CheckpointDict(
                [
                    (.string("T_max"), .int(Int64(length * perEpoch))),
                    (.string("eta_min"), .float(s.etaMin)),
                    (.string("base_lrs"), .list(Array(repeating: .float(s.lr0), count: n))),
                    (.string("last_epoch"), .int(Int64(last))),
                    (.string("_step_count"), .int(Int64(last + 1))),
                    (.string("_is_initial"), .bool(false)),
                    (.string("_get_lr_called_within_step"), .bool(false)),
                    (.string("_last_lr"), .list(Array(repeating: .float(lastLR), count: n))),
                ], kind: .dict))
    }

    /// What a resume restores from a training checkpoint.
    public struct Restored: Sendable {
        public var epoch: Int
        public var bestAcc: Double
        public var learningRate: Double
        public var stateDict: [(name: String, tensor: Tensor)]
        /// Momentum buffers by integer position of the parameter groups, and the group count.
        public var buffers: [Int: [Float]]
        public var groupCount: Int?
        /// Steps of epoch `epoch + 1` already done (``iterationKey``; 0 when absent).
        public var iteration = 0
        public var partialLoss = TrainLoop.PartialLoss()
    }

    /// Reads `epoch`, `best_acc`, `learning_rate`, `state_dict` (a `module.` prefix dropped as
    /// QTool's loader does) and the optimizer's momentum buffers of the checkpoint at `path`.
    public static func restore(_ root: CheckpointValue, path: String) throws(TrainError) -> Restored {
        guard let d = root.dict, let sd = d["state_dict"]?.dict else {
            throw TrainError(.invalidInput("\(path): not a training checkpoint (no state_dict entry)"))
        }
        func number(_ v: CheckpointValue?) -> Double? {
            switch v {
            case .int(let i): return Double(i)
            case .float(let f): return f
            default: return nil
            }
        }
        guard let epoch = number(d["epoch"]) else { throw TrainError(.invalidInput("\(path): no integer epoch entry")) }
        var entries: [(name: String, tensor: Tensor)] = sd.entries.compactMap { e in
            guard case .string(let k) = e.key, case .tensor(let t) = e.value else { return nil }
            return (k, t.materialize())
        }
        if let first = entries.first?.name, first.contains("module.") {
            entries = entries.map { (String($0.name.split(separator: ".", maxSplits: 1).last ?? ""), $0.tensor) }
        }
        var buffers: [Int: [Float]] = [:]
        var groups: Int? = nil
        if let opt = d["optimizer"]?.dict {
            if case .list(let g) = opt["param_groups"] { groups = g.count }
            for e in opt["state"]?.dict?.entries ?? [] {
                guard case .int(let i) = e.key, case .tensor(let t) = e.value.dict?["momentum_buffer"] else { continue }
                buffers[Int(i)] = t.materialize().floats()
            }
        }
        var restored = Restored(
            epoch: Int(epoch), bestAcc: number(d["best_acc"]) ?? 0, learningRate: number(d["learning_rate"]) ?? 0,
            stateDict: entries, buffers: buffers, groupCount: groups)
        if let it = d[iterationKey] {
            guard case .int(let i) = it, i >= 0, case .list(let l) = d[epochLossKey], l.count == 2,
                let sum = number(l[0]), case .int(let seen) = l[1], seen >= 0
            else {
                throw TrainError(.invalidInput("\(path): \(iterationKey) must be a non-negative int with \(epochLossKey) [sum, count]"))
            }
            restored.iteration = Int(i)
            restored.partialLoss = TrainLoop.PartialLoss(sum: sum, seen: Int(seen))
        }
        return restored
    }
}
