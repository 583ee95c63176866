import Engine
import Models
import QToolConfig
import Tensors

/// One training step of QTool's `main.py` (seed-reference §14.4) on one batch: the model in
/// training mode (batch norm on batch statistics, running statistics updated with momentum
/// 0.1 and the unbiased batch variance, `num_batches_tracked` + 1), the cross-entropy loss,
/// the backward pass and the optimizer step with the learning rate of epoch 0.
public struct TrainStep: Sendable {
    /// What one step produced.
    public struct Result: Sendable {
        /// The loss before the step.
        public var loss: Float
        /// The train-mode logits `[N, classes]` before the step.
        public var logits: Tensor
        /// The learning rate the step used.
        public var learningRate: Double
        /// The state dict right after `optimizer.step()`: every entry of the input state dict,
        /// in its order, updated where the step changed it.
        public var stateDict: [(name: String, tensor: Tensor)]
        /// The optimizer (with its momentum buffers or moments) after the step.
        public var optimizer: Optimizer
        /// The parameter gradients of this step (plus those accumulated before it, under
        /// `--iter-size`), before clipping.
        public var gradients: [String: [Float]] = [:]
    }

    /// The options the model was built from.
    public var options: QToolOptions
    /// The model, built from `options` and the state dict.
    package var model: BuiltModel
    private var input: [(name: String, tensor: Tensor)]
    /// The train-mode graph the step differentiates.
    package var training: TrainingGraph

    /// Every graph variable of the input state dict (parameters and BN statistics), with its shape, in state-dict order.
    package var variableShapes: [(name: String, shape: [Int])] {
        input.compactMap { model.graph.variables.contains($0.name) ? ($0.name, $0.tensor.shape) : nil }
    }

    /// Builds the model of `options` on `stateDict` for training.
    /// - Throws: ``TrainError``: `.engine` when the model cannot be built, `.unsupported` for a
    ///   layer or quantizer the trainer cannot train yet.
    public init(options: QToolOptions, stateDict: [(name: String, tensor: Tensor)]) throws(TrainError) {
        self.options = options
        do {
            model = try ModelBuilder.build(options: options, stateDict: stateDict, forTraining: true)
        } catch {
            throw TrainError(.engine(error))
        }
        input = stateDict
        training = try TrainingGraph(model.graph)
    }

    /// Takes the step on images `x [N, C, S, S]` with class `labels` (N of them).
    /// - Throws: ``TrainError`` for a batch that does not fit the model, labels out of range,
    ///   non-finite values in the batch, or a non-finite loss or gradient.
    public func run(x: Tensor, labels: [Int]) throws(TrainError) -> Result {
        try finish(forward(x: x, labels: labels))
    }

    /// A later step of a loop: the optimizer of the previous step (its momentum buffers) at
    /// learning rate `learningRate`. Build each step's `TrainStep` from the previous result's
    /// state dict, so quantizer state (LQ-Nets bases, `iteration`) carries over too.
    public func run(
        x: Tensor, labels: [Int], continuing optimizer: Optimizer, learningRate: Double
    ) throws(TrainError)
        -> Result
    {
        try finish(forward(x: x, labels: labels), continuing: optimizer, learningRate: learningRate)
    }

    /// A step of the training loop (``TrainLoop``): `optimizer` nil on the first step (built
    /// from the options), the schedule's `learningRate` for every group, and `stepOptimizer`
    /// false while `--warmup` holds the optimizer or `--iter-size` accumulates; `accumulated`:
    /// the gradients of the earlier batches of an `--iter-size` group (added, not averaged, as
    /// `main.py` does).
    public func run(
        x: Tensor, labels: [Int], optimizer: Optimizer?, learningRate: Double, stepOptimizer: Bool,
        accumulated: [String: [Float]]? = nil
    )
        throws(TrainError) -> Result
    {
        try finish(
            forward(x: x, labels: labels), continuing: optimizer, learningRate: learningRate, stepOptimizer: stepOptimizer,
            accumulated: accumulated)
    }

    /// The forward half of a step: the train-mode pass, its loss and the loss's gradient.
    package struct Forward: Sendable {
        /// Every value of the train-mode pass (a test may nudge one to study a boundary).
        package var tape: TrainingGraph.Tape
        /// The constants' values the pass ran with (what the optimizer then updates).
        package var state: [String: [Float]]
        package var loss: Float
        package var logitsGradient: [Float]
    }

    /// Runs the model in training mode on the batch and evaluates the loss.
    package func forward(x: Tensor, labels: [Int]) throws(TrainError) -> Forward {
        guard x.shape.count == 4, x.shape[0] == labels.count, x.shape[1] == model.inputChannels else {
            throw TrainError(
                .invalidInput(
                    "the batch must be [N, \(model.inputChannels), H, W] with one label per image; got \(x.shape) and \(labels.count) labels"
                ))
        }
        let xs = x.floats()
        if let i = xs.firstIndex(where: { !$0.isFinite }) {
            throw TrainError(.nonFinite("input element \(i) is \(xs[i])"))
        }
        let state = training.initialState
        let tape = try training.forward(inputs: [model.input: Tensor(floats: xs, shape: x.shape)], state: state)
        let smoothing = options.hasKeyword("label-smooth") ? Self.labelSmooth(options) : 0
        let logits = tape.tensor(model.output)!
        let (loss, dlogits) = try CrossEntropy(labelSmoothing: smoothing)(
            logits: logits.floats(), classes: logits.shape.last ?? 1, labels: labels)
        guard loss.isFinite else { throw TrainError(.nonFinite("the loss is \(loss)")) }
        return Forward(tape: tape, state: state, loss: loss, logitsGradient: dlogits)
    }

    /// The backward half: gradients, running statistics, the optimizer step.
    package func finish(
        _ f: Forward, continuing previous: Optimizer? = nil, learningRate: Double? = nil, stepOptimizer: Bool? = nil,
        accumulated: [String: [Float]]? = nil
    )
        throws(TrainError)
        -> Result
    {
        let tape = f.tape
        var state = f.state
        var grads = try training.backward(tape, outputGradients: [model.output: f.logitsGradient])
        if let accumulated {  // p.grad += g, in float32
            for (name, old) in accumulated {
                guard let g = grads[name], g.count == old.count else {
                    grads[name] = old
                    continue
                }
                grads[name] = zip(old, g).map { $0 + $1 }
            }
        }

        // Running statistics of every train-mode batch norm.
        var statistics = Set<String>()
        for n in model.graph.nodes {
            guard case .batchNorm = n.op, let st = tape.batchStatistics[n.name] else { continue }
            let (mean, variance) = (n.inputs[3], n.inputs[4])
            statistics.formUnion([mean, variance])
            state[mean] = Self.momentumUpdate(state[mean]!, st.mean)
            state[variance] = Self.momentumUpdate(state[variance]!, st.unbiasedVariance)
        }

        let parameters = input.compactMap { e -> (name: String, shape: [Int])? in
            guard model.graph.variables.contains(e.name), !statistics.contains(e.name) else { return nil }
            return (e.name, e.tensor.shape)
        }
        let lr: Double
        if let learningRate { lr = learningRate } else { lr = try LearningRate.firstStep(options) }
        var optimizer: Optimizer
        if let previous {
            optimizer = previous
            optimizer.setLearningRate(lr)
        } else {
            // The groups as epoch 0 builds them (lr_constant groups keep theirs), then the
            // loop's rate for this step when one is given.
            optimizer = try Optimizer(
                options: options, parameters: parameters, allNames: input.map(\.name), lr: try LearningRate.scheduled(options))
            if learningRate != nil { optimizer.setLearningRate(lr) }
        }
        if stepOptimizer ?? !Self.warmingUp(options) {
            var clipped = grads
            if case .float(let maxNorm) = options["grad_clip"] {
                GradientClipping.clip(&clipped, names: optimizer.groups.map(\.name), maxNorm: maxNorm)
            }
            optimizer.step(&state, gradients: clipped)
        }

        let trackedModules = Set(
            model.graph.nodes.compactMap { n -> String? in
                if case .batchNorm = n.op, tape.batchStatistics[n.name] != nil { return Self.module(of: n.inputs[3]) }
                return nil
            })
        // Quantizer state a training forward changes (the DoReFa family's `iteration` + 1).
        let before = Dictionary(input.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        var quantizerState: [String: Tensor] = [:]
        for n in model.graph.nodes {
            guard case .quantize(let q) = n.op, let f = q.function as? any TrainableQuantizeFunction else { continue }
            quantizerState.merge(f.stateAfterTrainingForward(before)) { _, b in b }
        }
        // State a training forward computed from its input (LQ-Nets `basis`, `auxil`).
        for (_, pass) in tape.quantizers {
            for (key, values) in pass.state {
                guard let old = before[key], old.elementCount == values.count else { continue }
                quantizerState[key] = Tensor(floats: values, shape: old.shape)
            }
        }
        let after = input.map { e -> (name: String, tensor: Tensor) in
            if let t = quantizerState[e.name] { return (e.name, t) }
            if let v = state[e.name], model.graph.variables.contains(e.name) {
                return (e.name, Tensor(floats: v, shape: e.tensor.shape))
            }
            if e.name.hasSuffix(".num_batches_tracked"), trackedModules.contains(Self.module(of: e.name)) {
                return (e.name, Self.incremented(e.tensor))
            }
            return e
        }
        return Result(
            loss: f.loss, logits: tape.tensor(model.output)!, learningRate: lr, stateDict: after, optimizer: optimizer,
            gradients: grads)
    }

    /// `(1 - 0.1) running + 0.1 batch`, as `torch.nn.BatchNorm2d` (momentum 0.1).
    static func momentumUpdate(_ running: [Float], _ batch: [Double]) -> [Float] {
        zip(running, batch).map { Float(0.9 * Double($0) + 0.1 * $1) }
    }

    /// `--warmup N` (iterations): `optimizer.step()` is skipped while the iteration is below N.
    static func warmingUp(_ o: QToolOptions) -> Bool {
        if case .int(let n) = o["warmup"], n > 0 { return true }
        return false
    }

    /// `--label_smooth` (default 0.1), used with the `label-smooth` keyword.
    static func labelSmooth(_ o: QToolOptions) -> Double {
        if case .float(let e) = o["label_smooth"] { return e }
        return 0.1
    }

    /// The module path of a state-dict key (`layer1.0.bn1.running_mean` -> `layer1.0.bn1`).
    static func module(of key: String) -> String {
        key.split(separator: ".").dropLast().joined(separator: ".")
    }

    /// A one-element counter (int64 as PyTorch stores it, or float) plus one.
    static func incremented(_ t: Tensor) -> Tensor {
        guard t.elementCount == 1 else { return t }
        guard t.dtype == .int64 else { return Tensor(floats: [t.floats()[0] + 1], shape: t.shape) }
        var u = UInt64(bitPattern: Int64(t.element(0)) + 1)
        var bytes: [UInt8] = []
        for _ in 0..<8 {
            bytes.append(UInt8(u & 0xff))
            u >>= 8
        }
        return (try? Tensor(dtype: .int64, shape: t.shape, data: ByteSlice(bytes))) ?? t
    }
}
