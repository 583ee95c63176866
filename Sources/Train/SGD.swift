import QToolConfig

/// QTool's optimizer (seed-reference §14.2-14.3): one `torch.optim.SGD` parameter group per
/// trainable tensor, each with the weight decay QTool's rules give its name and shape.
///
/// The update is torch's, in float32: `d = g + wd p`; `buf = d` on the first step, else
/// `buf = momentum buf + d` (dampening 0); `d = d + momentum buf` with Nesterov, else
/// `d = buf`; `p = p - lr d`. A parameter without a gradient is skipped entirely.
public struct SGD: Sendable {
    /// One parameter group.
    public struct Group: Sendable, Equatable {
        /// The parameter's state-dict name.
        public var name: String
        /// Its learning rate and weight decay.
        public var lr: Double, weightDecay: Double
    }

    /// The groups, in the order given.
    public private(set) var groups: [Group]
    /// Momentum and Nesterov (`--momentum`, `--nesterov`).
    public var momentum: Double, nesterov: Bool
    /// Momentum buffers by parameter name (absent before a parameter's first step).
    public var buffers: [String: [Float]] = [:]

    /// The optimizer `main.py` builds for `options` over `parameters` (name, shape) at
    /// learning rate `lr`.
    /// - Throws: ``TrainError`` `.unsupported` for Adam and for `--custom_lr_list` entries that
    ///   name a parameter (not implemented yet).
    public init(options: QToolOptions, parameters: [(name: String, shape: [Int])], lr: Double) throws(TrainError) {
        guard options.optimizer == "SGD" else { throw TrainError(.unsupported("--optimizer \(options.optimizer)")) }
        let customLR = options.customLRList.filter { !$0.isEmpty }
        if let hit = parameters.first(where: { p in customLR.contains { p.name.contains($0) } }) {
            throw TrainError(.unsupported("--custom_lr_list (matches \(hit.name))"))
        }
        if customLR.contains("quant_weight") {
            throw TrainError(.unsupported("--custom_lr_list quant_weight"))
        }
        momentum = options.momentum
        nesterov = options.nesterov
        groups = parameters.map {
            Group(name: $0.name, lr: lr, weightDecay: Self.weightDecay(name: $0.name, shape: $0.shape, options: options))
        }
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

    /// Sets every group's learning rate (the schedule's value for the next step); momentum
    /// buffers are kept.
    public mutating func setLearningRate(_ lr: Double) {
        for i in groups.indices { groups[i].lr = lr }
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
    /// ``Schedule/rate(epoch:iteration:kind:)`` at epoch 0, iteration 0: `--lr` through the
    /// policy; 0 under `--wakeup` (the ramp `base · it / W` at `it = 0`).
    /// - Throws: ``TrainError`` `.unsupported` for an unknown policy (QTool stops there too).
    public static func firstStep(_ o: QToolOptions) throws(TrainError) -> Double {
        try Schedule(options: o, trainLength: 1).rate(epoch: 0, iteration: 0)
    }
}
