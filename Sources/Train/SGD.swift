import QToolConfig

/// QTool's optimizer (seed-reference §14.2-14.3): one `torch.optim.SGD` parameter group per
/// trainable tensor, each with the weight decay QTool's rules give its name and shape.
///
/// The update is torch's, in float32: `d = g + wd p`; `buf = d` on the first step, else
/// `buf = momentum buf + d` (dampening 0); `d = d + momentum buf` with Nesterov, else
/// `d = buf`; `p = p - lr d`. A parameter without a gradient is skipped entirely.
public struct SGD: Sendable {
    /// One parameter group.
    public typealias Group = ParameterGroup

    /// The groups, in the order given.
    public private(set) var groups: [Group]
    /// Momentum and Nesterov (`--momentum`, `--nesterov`).
    public var momentum: Double, nesterov: Bool
    /// Momentum buffers by parameter name (absent before a parameter's first step).
    public var buffers: [String: [Float]] = [:]

    /// The optimizer `main.py` builds for `options` over `parameters` (name, shape), its groups
    /// as the first step of epoch 0 sees them (``ParameterGroup/atFirstStep(_:options:scheduled:)``
    /// with the schedule's `lr`); `allNames` are all parameter names of the model (for
    /// `--custom_lr_list quant_weight`).
    /// - Throws: ``TrainError`` `.unsupported` unless `--optimizer SGD`.
    public init(
        options: QToolOptions, parameters: [(name: String, shape: [Int])], allNames: [String] = [], lr: Double
    ) throws(TrainError) {
        guard options.optimizer == "SGD" else { throw TrainError(.unsupported("--optimizer \(options.optimizer) in SGD")) }
        self.init(
            groups: ParameterGroup.atFirstStep(
                ParameterGroup.qtool(options: options, parameters: parameters, allNames: allNames), options: options,
                scheduled: lr),
            momentum: options.momentum, nesterov: options.nesterov)
    }

    /// SGD over `groups` (dampening 0).
    public init(groups: [Group], momentum: Double, nesterov: Bool) {
        self.groups = groups
        self.momentum = momentum
        self.nesterov = nesterov
    }

    /// §14.3: `--custom_decay` when a non-empty `--custom_decay_list` item is a substring of
    /// the name; else 0 for "small" tensors (1-D, or 4-D with `shape[1] == 1`) unless
    /// `--decay_small`; else `--wd`.
    public static func weightDecay(name: String, shape: [Int], options: QToolOptions) -> Double {
        if options.customDecayList.contains(where: { !$0.isEmpty && name.contains($0) }) { return options.customDecay }
        let small = shape.count == 1 || (shape.count == 4 && shape[1] == 1)
        if small && !options.decaySmall { return 0 }
        return options.weightDecay
    }

    /// Sets the learning rate of every group without `lr_constant` (the schedule's value for
    /// the next step; §14.3: schedules never touch constant groups); momentum buffers are kept.
    public mutating func setLearningRate(_ lr: Double) {
        for i in groups.indices where groups[i].lrConstant == nil { groups[i].lr = lr }
    }

    /// One step: updates `parameters` in place from `gradients` (both by name).
    public mutating func step(_ parameters: inout [String: [Float]], gradients: [String: [Float]]) {
        let m = Float(momentum)
        for group in groups {
            guard let g = gradients[group.name], var p = parameters[group.name] else { continue }
            let wd = Float(group.weightDecay), lr = Float(group.lr)
            var d = g
            if wd != 0 { for i in d.indices { d[i] += wd * p[i] } }
            if m != 0 {
                var buf: [Float]
                if let old = buffers[group.name] {
                    buf = old
                    for i in buf.indices { buf[i] = buf[i] * m + d[i] }
                } else {
                    buf = d
                }
                buffers[group.name] = buf
                if nesterov {
                    for i in d.indices { d[i] += m * buf[i] }
                } else {
                    d = buf
                }
            }
            for i in p.indices { p[i] -= lr * d[i] }
            parameters[group.name] = p
        }
    }
}

/// The learning rate of QTool's schedule (§14.5-14.6) for the first step of epoch 0.
public enum LearningRate {
    /// `--lr` through the policy at epoch 0, iteration 0; 0 under `--wakeup` (which multiplies
    /// the lr by `it / W = 0` at iteration 0, as the QTool code does; groups with `lr_constant`
    /// keep theirs, see ``ParameterGroup/atFirstStep(_:options:scheduled:)``).
    /// - Throws: ``TrainError`` `.unsupported` for an unknown policy (QTool stops there too).
    public static func firstStep(_ o: QToolOptions) throws(TrainError) -> Double {
        try Schedule(options: o, trainLength: 1).rate(epoch: 0, iteration: 0)
    }

    /// The schedule's value for epoch 0, before the wake-up ramp.
    /// - Throws: as ``firstStep(_:)``.
    public static func scheduled(_ o: QToolOptions) throws(TrainError) -> Double {
        let passed = o.lrCustomStep.filter { $0 <= 0 }.count
        switch o.lrPolicy {
        case "decay", "fix", "fix_step", "poly", "sgdr", "cos": return o.lr
        case "custom_step", "sgdr_step": return o.lr * pow(o.lrDecay, passed)
        default: throw TrainError(.unsupported("--lr_policy \(o.lrPolicy) (QTool logs \"lr is invalid\" and stops)"))
        }
    }

    /// `--wakeup W > 0`: iteration 0 multiplies the lr of every group without `lr_constant` by 0.
    public static func wakesUp(_ o: QToolOptions) -> Bool {
        if case .int(let wakeup) = o["wakeup"], wakeup > 0 { return true }
        return false
    }

    private static func pow(_ x: Double, _ n: Int) -> Double { (0..<n).reduce(1) { r, _ in r * x } }
}
