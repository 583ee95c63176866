import Dispatch
import Engine
import Models
import QToolConfig
import Tensors

/// Throughput of training steps, for `qtools bench --train` (returns numbers, never prints).
///
/// A step is what ``TrainStep`` takes, repeated on one fixed random batch: the train-mode
/// forward, cross entropy, the backward, the running statistics and the SGD step (with its
/// momentum buffers), the parameters carried from step to step. The loss and gradients are
/// checked finite every step, as the trainer does.
public enum TrainBenchmark {
    /// Timings and memory of one benchmark.
    public struct Result: Sendable {
        /// Median / min / max time of a whole step in milliseconds, and every timed step.
        public var medianMs: Double, minMs: Double, maxMs: Double
        public var stepsMs: [Double]
        /// `batch / median step`.
        public var imagesPerSecond: Double
        public var batch: Int, threads: Int
        /// Median ms per step of the phases: forward (with the loss), backward, optimizer
        /// (running statistics and SGD).
        public var forwardMs: Double, backwardMs: Double, optimizerMs: Double
        /// Mean ms per step of each op type, forward and backward (profiled steps, taken after
        /// the timed ones), and the shares of each within its pass.
        public var forwardOpMs: [String: Double], backwardOpMs: [String: Double]
        public var forwardShares: [String: Double], backwardShares: [String: Double]
        /// The loss of the last step (a sanity value).
        public var lastLoss: Float
        /// Memory: the step's parts in bytes, as float32: every graph constant (weights and
        /// BN statistics), the gradients of the trained parameters, the optimizer's momentum
        /// buffers and the activations the tape keeps for the backward (a lean tape:
        /// ``TrainingGraph/backwardReads``, counted right after the forward). Not counted: the
        /// state the quantizers' training passes hold for their backward (LSQ: a mask and a
        /// step-size derivative per activation element).
        public var weightBytes: Int, gradientBytes: Int, optimizerBytes: Int, activationBytes: Int
        /// The bound of issue 12: the four parts above + 64 MiB.
        public var memoryBoundBytes: Int { weightBytes + gradientBytes + optimizerBytes + activationBytes + (64 << 20) }
        /// The process's peak resident memory after the run (nil without `/proc`).
        public var peakResidentBytes: Int?
    }

    /// Times `steps` training steps of `step`'s model (after `warmup` untimed ones, then
    /// `profiled` steps with per-op timing) on a seeded random batch of `batch` images.
    /// - Throws: ``TrainError`` when a step fails (a non-finite loss or gradient, ...).
    public static func measure(
        _ step: TrainStep, batch: Int, threads: Int, steps: Int = 10, warmup: Int = 2, profiled: Int = 2,
        fast: Bool = true
    ) throws(TrainError) -> Result {
        var training = step.training
        training.precision = fast ? .fast : .exact
        training.threads = threads
        training.lean = true
        let model = step.model
        let shape = model.inputShape(batch: batch)
        let x = SplitMix64.normalTensor(shape: shape, seed: 12345)
        var g = SplitMix64(seed: 777)
        let labels = (0..<batch).map { _ in g.int(0...(model.numClasses - 1)) }
        let smoothing = step.options.hasKeyword("label-smooth") ? TrainStep.labelSmooth(step.options) : 0
        let loss = CrossEntropy(labelSmoothing: smoothing)

        var state = training.initialState
        let statistics = Set(
            model.graph.nodes.flatMap { n -> [String] in
                if case .batchNorm = n.op { return [n.inputs[3], n.inputs[4]] }
                return []
            })
        let parameters = step.variableShapes.filter { !statistics.contains($0.name) }
        var optimizer = try SGD(options: step.options, parameters: parameters, lr: try LearningRate.firstStep(step.options))

        var activationBytes = 0
        var lastLoss: Float = 0
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        func ms(_ a: UInt64, _ b: UInt64) -> Double { Double(b - a) / 1e6 }
        /// One step; returns (forward, backward, optimizer) ms.
        func run(profile: TrainProfile?) throws(TrainError) -> (Double, Double, Double) {
            let t0 = now()
            var tape = try training.forward(inputs: [model.input: x], state: state, profile: profile)
            let logits = tape.values[model.output]!
            let (l, dlogits) = try loss(logits: logits, classes: model.numClasses, labels: labels)
            guard l.isFinite else { throw TrainError(.nonFinite("the loss is \(l)")) }
            lastLoss = l
            if activationBytes == 0 {
                activationBytes = 4 * tape.values.filter { model.graph.constants[$0.key] == nil }.values.reduce(0) { $0 + $1.count }
            }
            let statisticsOfStep = tape.batchStatistics
            let t1 = now()
            let grads = try training.backward(releasing: &tape, outputGradients: [model.output: dlogits], profile: profile)
            let t2 = now()
            for n in model.graph.nodes {
                guard case .batchNorm = n.op, let st = statisticsOfStep[n.name] else { continue }
                state[n.inputs[3]] = TrainStep.momentumUpdate(state[n.inputs[3]]!, st.mean)
                state[n.inputs[4]] = TrainStep.momentumUpdate(state[n.inputs[4]]!, st.unbiasedVariance)
            }
            optimizer.step(&state, gradients: grads)
            return (ms(t0, t1), ms(t1, t2), ms(t2, now()))
        }

        for _ in 0..<max(warmup, 0) { _ = try run(profile: nil) }
        var phases: [(Double, Double, Double)] = []
        var total: [Double] = []
        for _ in 0..<max(steps, 1) {
            let t = now()
            phases.append(try run(profile: nil))
            total.append(ms(t, now()))
        }
        let profile = TrainProfile()
        for _ in 0..<max(profiled, 0) { _ = try run(profile: profile) }
        let p = Double(max(profiled, 1))

        func median(_ v: [Double]) -> Double {
            let s = v.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let med = median(total)
        let paramCount = parameters.reduce(0) { $0 + $1.shape.reduce(1, *) }
        return Result(
            medianMs: med, minMs: total.min()!, maxMs: total.max()!, stepsMs: total,
            imagesPerSecond: Double(batch) / (med / 1000), batch: batch, threads: threads,
            forwardMs: median(phases.map(\.0)), backwardMs: median(phases.map(\.1)), optimizerMs: median(phases.map(\.2)),
            forwardOpMs: profile.forward.mapValues { $0 * 1000 / p }, backwardOpMs: profile.backward.mapValues { $0 * 1000 / p },
            forwardShares: TrainProfile.shares(profile.forward), backwardShares: TrainProfile.shares(profile.backward),
            lastLoss: lastLoss,
            weightBytes: 4 * state.values.reduce(0) { $0 + $1.count }, gradientBytes: 4 * paramCount,
            optimizerBytes: 4 * optimizer.buffers.values.reduce(0) { $0 + $1.count }, activationBytes: activationBytes,
            peakResidentBytes: ProcessMemory.peakResidentBytes())
    }

    /// A state dict for `options`'s model with seeded random weights (as ``ModelBuilder``'s
    /// random builds make them: He-uniform convs and linears, BN statistics near identity)
    /// and quantizers past calibration: `iteration` 1 (as the golden checkpoints store it),
    /// `level_num` the configured level count, clip values and other quantizer parameters 1.
    /// - Throws: ``TrainError`` `.engine` when the model cannot be built.
    public static func randomStateDict(options: QToolOptions, seed: UInt64 = 0) throws(TrainError) -> [(name: String, tensor: Tensor)] {
        let m: BuiltModel
        do { m = try ModelBuilder.buildRandom(options: options, seed: seed) } catch { throw TrainError(.engine(error)) }
        var seen = Set<String>()
        var g = SplitMix64(seed: seed &+ 1)
        var out: [(name: String, tensor: Tensor)] = []
        for d in m.declaredTensors where seen.insert(d.key).inserted {
            let n = d.shape.reduce(1, *)
            func filled(_ v: Float) -> Tensor { Tensor(floats: [Float](repeating: v, count: n), shape: d.shape) }
            let parts = d.key.split(separator: ".")
            let leaf = String(parts.last ?? "")
            let quantizerPart = parts.dropLast().last.map(String.init) ?? ""
            if let t = m.graph.constants[d.key], !quantizerPart.hasPrefix("quant_") {
                out.append((d.key, t))
            } else if quantizerPart.hasPrefix("quant_") {
                switch leaf {
                case "iteration", "times": out.append((d.key, filled(1)))
                case "level_num":
                    let tag: QuantizerTag = quantizerPart == "quant_activation" ? .fm : quantizerPart == "quant_weight" ? .wt : .ot
                    let levels = (try? QuantizerConfig(options: options, tag: tag, shape: [1, 1, 1, 1]).levels) ?? 2
                    out.append((d.key, filled(Float(levels))))
                default: out.append((d.key, filled(1)))
                }
            } else if leaf == "num_batches_tracked" {
                out.append((d.key, filled(0)))
            } else if d.shape.count >= 2 {
                let scale = (6 / Float(max(d.shape.dropFirst().reduce(1, *), 1))).squareRoot()
                out.append((d.key, Tensor(floats: (0..<n).map { _ in scale * g.nextSignedUnit() }, shape: d.shape)))
            } else if leaf.hasSuffix("bias") || leaf == "running_mean" {
                out.append((d.key, filled(0)))
            } else {
                out.append((d.key, filled(1)))
            }
        }
        return out
    }
}
