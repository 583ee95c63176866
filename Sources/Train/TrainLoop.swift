import Engine
import Foundation
import Models
import QToolConfig
import Tensors

/// QTool's training program for classification (seed-reference §14.1, §14.4, §14.8): the
/// epoch loop over ``TrainStep``s with the ``Schedule``'s learning rates, evaluation, and the
/// state a checkpoint holds (``TrainCheckpoint``).
///
/// Each step builds its ``TrainStep`` from the previous step's state dict, so every tensor of
/// the state dict (weights, BatchNorm statistics, quantizer `iteration`, LQ-Nets bases) carries
/// over exactly as in `main.py`. Data comes from a ``BatchSource``: the batches of each epoch
/// in its order (``ImageSet``: in order; ``SampleLoader``: shuffled per epoch and augmented).
public struct TrainLoop: Sendable {
    /// What one epoch produced (the `--json` record and the reference's log lines).
    public struct EpochRecord: Sendable, Codable, Equatable {
        public var epoch: Int
        /// The lr `main.py` logs for the epoch (the schedule's value at its start).
        public var lr: Double
        /// The batch-size-weighted mean training loss.
        public var trainLoss: Double
        public var top1: Double, top5: Double, evalLoss: Double
        public var bestAcc: Double
        /// The first group's lr after the epoch's last step (torch's `param_groups[0]['lr']`).
        public var lrAfter: Double
        /// Whether top-1 beat the best of the earlier epochs.
        public var newBest: Bool

        enum CodingKeys: String, CodingKey {
            case epoch, lr, top1, top5, newBest = "new_best"
            case trainLoss = "train_loss", evalLoss = "eval_loss", bestAcc = "best_acc", lrAfter = "lr_after"
        }
    }

    /// Evaluation results (§14.8), percent and mean loss, weighted by batch size.
    public struct Evaluation: Sendable, Equatable {
        public var top1: Double, top5: Double, loss: Double
    }

    public var options: QToolOptions
    /// The model's state dict (file order).
    public var stateDict: [(name: String, tensor: Tensor)]
    /// The optimizer, nil before the first step.
    public var optimizer: SGD?
    /// The next epoch to train (0-based).
    public var epoch: Int
    /// Training steps of epoch ``epoch`` already done (a run stopped after a step and resumed:
    /// the epoch continues at this batch); 0 at an epoch's start.
    public var iteration = 0
    /// The loss sum (loss x batch size) and image count of those steps, so the epoch's mean
    /// loss is the one an uninterrupted run reports.
    public var partialLoss = PartialLoss()

    /// The running sums of ``trainEpoch(_:batchSize:progress:shouldStop:)``.
    public struct PartialLoss: Sendable, Equatable {
        public var sum = 0.0
        public var seen = 0
        public init(sum: Double = 0, seen: Int = 0) {
            self.sum = sum
            self.seen = seen
        }
        public var mean: Double { seen > 0 ? sum / Double(seen) : 0 }
    }
    /// Best top-1 so far (percent).
    public var bestAcc: Double = 0
    /// Iterations per epoch.
    public var trainLength: Int
    public var schedule: Schedule
    /// Threads for evaluation, and for the training steps on the fast path.
    public var threads: Int = 2
    /// Train on the fast path (float32 conv GEMMs through OpenBLAS, batch norm and activations
    /// on ``threads``; `TrainingGraph.Precision.fast`) instead of the exact one (double GEMMs,
    /// one thread, independent of OpenBLAS: the path the golden steps are checked with).
    public var fast = false

    /// A loop over `trainLength` batches per epoch starting at `epoch` from `stateDict`.
    public init(
        options: QToolOptions, stateDict: [(name: String, tensor: Tensor)], trainLength: Int, epoch: Int = 0,
        optimizer: SGD? = nil, bestAcc: Double = 0
    ) throws(TrainError) {
        guard options.optimizer == "SGD" else { throw TrainError(.unsupported("--optimizer \(options.optimizer)")) }
        try TrainOptionCheck.check(options)
        self.options = options
        self.stateDict = stateDict
        self.trainLength = trainLength
        self.epoch = epoch
        self.optimizer = optimizer
        self.bestAcc = bestAcc
        schedule = try Schedule(options: options, trainLength: trainLength)
    }

    /// The number of epochs `main.py` runs (`--epochs` + `--extra_epoch`).
    public var totalEpochs: Int {
        if case .int(let x) = options["extra_epoch"], x > 0 { return options.epochs + x }
        return options.epochs
    }

    /// Trains epoch ``epoch`` on `data` in batches of `batchSize` (`trainLength` of them), from
    /// step ``iteration`` on, and returns the weighted mean loss of the whole epoch.
    /// `progress(i, n, runningLoss, lr)` after each step. `shouldStop` is asked after each step
    /// that ends on an optimizer step (with `--iter-size K`, every K-th): when it says yes
    /// before the epoch's last step, the loop stops there and returns nil, with ``iteration``
    /// and ``partialLoss`` holding where it stands (what a checkpoint must keep to continue).
    public mutating func trainEpoch(
        _ data: some BatchSource, batchSize: Int, progress: ((Int, Int, Double, Double) -> Void)? = nil,
        shouldStop: () -> Bool = { false }
    ) throws(TrainError) -> Double? {
        var batches = data.batches(epoch: epoch, size: batchSize)
        // `--iter-size K`: gradients zeroed at i % K == 0, summed, the optimizer stepped (after
        // clipping) at i % K == K - 1 (§14.4); a partial group at the epoch's end never steps.
        var iterSize = 1
        if case .int(let k) = options["iter_size"], k > 1 { iterSize = k }
        var accumulated: [String: [Float]]?
        func nextBatch() throws(TrainError) -> Batch? {
            var next = try batches.next()
            if next == nil {  // more iterations than batches: the epoch's batches again
                batches = data.batches(epoch: epoch, size: batchSize)
                next = try batches.next()
            }
            guard let next else { throw TrainError(.invalidInput("the training set is empty")) }
            return next
        }
        // A resumed epoch: the batches already trained on are drawn (the same order and
        // augmentation as in the first run) and skipped.
        for _ in 0..<min(iteration, trainLength) { _ = try nextBatch() }
        for i in iteration..<trainLength {
            guard let (x, y) = try nextBatch() else { break }
            let lr = schedule.rate(epoch: epoch, iteration: i)
            let optimizerStep = i % iterSize == iterSize - 1
            let steps = optimizerStep && schedule.stepsOptimizer(epoch: epoch, iteration: i)
            var step = try TrainStep(options: options, stateDict: stateDict)
            if fast {
                step.training.precision = .fast
                step.training.threads = threads
            }
            let r = try step.run(
                x: x, labels: y, optimizer: optimizer.map(Optimizer.sgd), learningRate: lr, stepOptimizer: steps,
                accumulated: i % iterSize == 0 ? nil : accumulated)
            accumulated = iterSize > 1 ? r.gradients : nil
            stateDict = r.stateDict
            optimizer = r.optimizer.sgd
            partialLoss.sum += Double(r.loss) * Double(y.count)
            partialLoss.seen += y.count
            iteration = i + 1
            progress?(i + 1, trainLength, partialLoss.mean, lr)
            // `--delay S`: main.py sleeps S seconds after every training iteration.
            if case .float(let delay) = options["delay"], delay > 0 { Thread.sleep(forTimeInterval: delay) }
            if optimizerStep && i + 1 < trainLength && shouldStop() { return nil }
        }
        let mean = partialLoss.mean
        iteration = 0
        partialLoss = PartialLoss()
        return mean
    }

    /// Evaluates the model on `data` in batches of `batchSize` (eval mode, plain cross entropy)
    /// and applies the evaluation's state changes: the DoReFa family's `iteration` + 1 per batch.
    /// `progress(step, steps, top1, top5)` after each batch (1-based step, running averages in percent).
    public mutating func evaluate(
        _ data: some BatchSource, batchSize: Int, progress: ((Int, Int, Double, Double) -> Void)? = nil
    ) throws(TrainError) -> Evaluation {
        let built: BuiltModel
        let counters: [String]
        do {
            built = try ModelBuilder.build(options: options, stateDict: stateDict)
            let training = try ModelBuilder.build(options: options, stateDict: stateDict, forTraining: true)
            counters = Self.evaluationCounters(training)
        } catch {
            throw TrainError(.engine(error))
        }
        var top1 = 0.0, top5 = 0.0, loss = 0.0
        var n = 0, seen = 0
        do {
            let exec = try Executor(graph: built.graph, threads: threads)
            let batches = data.batches(epoch: epoch, size: batchSize)
            while let (x, y) = try batches.next() {
                if let j = y.firstIndex(where: { $0 < 0 || $0 >= built.numClasses }) {
                    throw TrainError(
                        .invalidInput(
                            "validation set: label \(y[j]) of image \(seen + j) is out of range for \(built.numClasses) classes"))
                }
                n += 1
                seen += y.count
                guard let logits = try exec.run([built.input: x])[built.output] else {
                    throw TrainError(.invalidInput("the model has no output \(built.output)"))
                }
                let classes = logits.shape.last ?? 1
                let values = logits.floats()
                let (l, _) = try CrossEntropy(labelSmoothing: 0)(logits: values, classes: classes, labels: y)
                loss += Double(l) * Double(y.count)
                for (i, label) in y.enumerated() {
                    let row = values[(i * classes)..<((i + 1) * classes)]
                    let rank = Self.rank(Array(row), label)
                    if rank < 1 { top1 += 1 }
                    if rank < 5 { top5 += 1 }
                }
                progress?(n, data.batchCount(batchSize), 100 * top1 / Double(seen), 100 * top5 / Double(seen))
            }
        } catch let e as TrainError {
            throw e
        } catch let e as InferenceError {
            throw TrainError(.engine(e))
        } catch {
            throw TrainError(.invalidInput("\(error)"))
        }
        if n > 0 { stateDict = Self.incrementing(stateDict, counters, by: n) }
        let count = Double(max(data.count, 1))
        return Evaluation(top1: 100 * top1 / count, top5: 100 * top5 / count, loss: loss / count)
    }

    /// One epoch of `main.py`: train, evaluate, update the best top-1. Nil when `shouldStop`
    /// stopped the training part after a step (see ``trainEpoch(_:batchSize:progress:shouldStop:)``).
    public mutating func runEpoch(
        train: some BatchSource, val: some BatchSource, batchSize: Int, valBatchSize: Int,
        progress: ((Int, Int, Double, Double) -> Void)? = nil, shouldStop: () -> Bool = { false },
        evaluationProgress: ((Int, Int, Double, Double) -> Void)? = nil
    ) throws(TrainError) -> EpochRecord? {
        let lr = schedule.epochRate(epoch)
        guard let loss = try trainEpoch(train, batchSize: batchSize, progress: progress, shouldStop: shouldStop) else {
            return nil
        }
        let ev = try evaluate(val, batchSize: valBatchSize, progress: evaluationProgress)
        let newBest = ev.top1 > bestAcc
        bestAcc = max(bestAcc, ev.top1)
        let after = optimizer?.groups.first?.lr ?? lr
        let record = EpochRecord(
            epoch: epoch, lr: lr, trainLoss: loss, top1: ev.top1, top5: ev.top5, evalLoss: ev.loss, bestAcc: bestAcc,
            lrAfter: schedule.policy.hasPrefix("sgdr") ? schedule.rate(epoch: epoch, iteration: trainLength) : after,
            newBest: newBest)
        epoch += 1
        return record
    }

    /// The trainable parameters (name, shape) in state-dict order: the optimizer's groups.
    public func trainableParameters() throws(TrainError) -> [(name: String, shape: [Int])] {
        let model: BuiltModel
        do { model = try ModelBuilder.build(options: options, stateDict: stateDict, forTraining: true) } catch {
            throw TrainError(.engine(error))
        }
        var statistics = Set<String>()
        for n in model.graph.nodes {
            if case .batchNorm = n.op { statistics.formUnion([n.inputs[3], n.inputs[4]]) }
        }
        return stateDict.compactMap { e in
            model.graph.variables.contains(e.name) && !statistics.contains(e.name) ? (e.name, e.tensor.shape) : nil
        }
    }

    /// A loop resumed from a training checkpoint (`-r`): the next epoch, best top-1, state dict
    /// and SGD momentum buffers (by group position, one group per trainable parameter).
    /// - Throws: ``TrainError`` when the checkpoint's optimizer has a different number of
    ///   parameter groups or a buffer of the wrong size (torch raises there too).
    public static func resuming(
        options: QToolOptions, from r: TrainCheckpoint.Restored, trainLength: Int, path: String
    ) throws(TrainError) -> TrainLoop {
        var loop = try TrainLoop(
            options: options, stateDict: r.stateDict, trainLength: trainLength, epoch: r.epoch + 1, bestAcc: r.bestAcc)
        if r.iteration > 0 {
            guard r.iteration < trainLength else {
                throw TrainError(
                    .invalidInput(
                        "\(path): stopped after step \(r.iteration) of epoch \(r.epoch + 1), but an epoch now has \(trainLength) steps (another batch size or dataset?)"
                    ))
            }
            loop.iteration = r.iteration
            loop.partialLoss = r.partialLoss
        }
        guard let count = r.groupCount else { return loop }
        let parameters = try loop.trainableParameters()
        guard count == parameters.count else {
            throw TrainError(
                .invalidInput(
                    "\(path): the optimizer has \(count) parameter groups; the model has \(parameters.count) trainable parameters"))
        }
        var sgd = try SGD(
            options: options, parameters: parameters, allNames: loop.stateDict.map(\.name),
            lr: loop.schedule.epochRate(loop.epoch))
        for (i, p) in parameters.enumerated() {
            guard let b = r.buffers[i] else { continue }
            guard b.count == p.shape.reduce(1, *) else {
                throw TrainError(.invalidInput("\(path): momentum buffer \(i) has \(b.count) values; \(p.name) has shape \(p.shape)"))
            }
            sgd.buffers[p.name] = b
        }
        loop.optimizer = sgd
        return loop
    }

    /// The position of `label` among the logits: how many are larger, plus equal ones at a
    /// lower index (ties broken towards the lower index).
    static func rank(_ row: [Float], _ label: Int) -> Int {
        let t = row[label]
        var r = 0
        for (j, v) in row.enumerated() where v > t || (v == t && j < label) { r += 1 }
        return r
    }

    /// The `iteration` counters an eval forward increments: the DoReFa family's (§11.12).
    static func evaluationCounters(_ model: BuiltModel) -> [String] {
        model.graph.nodes.compactMap { n -> String? in
            guard case .quantize(let q) = n.op, let f = q.function as? Quantizer,
                let m = f.config.method, m.isDoReFaFamily
            else { return nil }
            return f.name
        }.flatMap { [$0 + ".iteration", $0 + ".times"] }
    }

    static func incrementing(
        _ entries: [(name: String, tensor: Tensor)], _ keys: [String], by n: Int
    ) -> [(name: String, tensor: Tensor)] {
        let set = Set(keys)
        return entries.map { e in
            guard set.contains(e.name), e.tensor.elementCount == 1 else { return e }
            return (e.name, Tensor(floats: [e.tensor.floats()[0] + Float(n)], shape: e.tensor.shape))
        }
    }
}
