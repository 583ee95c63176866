import QToolConfig

/// The optimizer `main.py` builds for `--optimizer` (seed-reference §14.2): SGD or Adam over
/// QTool's parameter groups (§14.3).
public enum Optimizer: Sendable {
    case sgd(SGD)
    case adam(Adam)

    /// The optimizer of `options` over `parameters` (name, shape), its groups as the first step
    /// of epoch 0 sees them (`lr`: the schedule's value for epoch 0 before the wake-up ramp);
    /// `allNames`: all parameter names of the model (for `--custom_lr_list quant_weight`).
    /// - Throws: ``TrainError`` `.unsupported` for an optimizer other than `SGD` / `ADAM`.
    public init(
        options: QToolOptions, parameters: [(name: String, shape: [Int])], allNames: [String], lr: Double
    ) throws(TrainError) {
        let groups = ParameterGroup.atFirstStep(
            ParameterGroup.qtool(options: options, parameters: parameters, allNames: allNames), options: options,
            scheduled: lr)
        switch options.optimizer {
        case "SGD": self = .sgd(SGD(groups: groups, momentum: options.momentum, nesterov: options.nesterov))
        case "ADAM": self = .adam(Adam(groups: groups))
        default: throw TrainError(.unsupported("--optimizer \(options.optimizer)"))
        }
    }

    /// The parameter groups.
    public var groups: [ParameterGroup] {
        switch self {
        case .sgd(let o): return o.groups
        case .adam(let o): return o.groups
        }
    }

    /// The SGD optimizer (with its momentum buffers), if this is one.
    public var sgd: SGD? {
        if case .sgd(let o) = self { return o }
        return nil
    }

    /// Sets the learning rate of every group without `lr_constant` (a later step of a loop).
    public mutating func setLearningRate(_ lr: Double) {
        switch self {
        case .sgd(var o):
            o.setLearningRate(lr)
            self = .sgd(o)
        case .adam(var o):
            o.setLearningRate(lr)
            self = .adam(o)
        }
    }

    /// One step: updates `parameters` in place from `gradients` (both by name).
    public mutating func step(_ parameters: inout [String: [Float]], gradients: [String: [Float]]) {
        switch self {
        case .sgd(var o):
            o.step(&parameters, gradients: gradients)
            self = .sgd(o)
        case .adam(var o):
            o.step(&parameters, gradients: gradients)
            self = .adam(o)
        }
    }
}
