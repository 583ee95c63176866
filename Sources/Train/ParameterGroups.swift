import QToolConfig

/// One `torch.optim` parameter group of QTool's `main.py` (seed-reference §14.2-14.3): one per
/// trainable tensor, with its own weight decay, learning rate and optional `lr_constant`.
public struct ParameterGroup: Sendable, Equatable {
    /// The parameter's state-dict name.
    public var name: String
    /// The learning rate the next step uses.
    public var lr: Double
    /// The (coupled, L2) weight decay.
    public var weightDecay: Double
    /// `lr_constant`: a learning rate no step-type schedule and no wake-up ramp touches.
    public var lrConstant: Double?

    public init(name: String, lr: Double, weightDecay: Double, lrConstant: Double? = nil) {
        self.name = name
        self.lr = lr
        self.weightDecay = weightDecay
        self.lrConstant = lrConstant
    }
}

extension ParameterGroup {
    /// The groups `main.py` builds before any schedule, in the order of `parameters`:
    ///
    /// - decay: `--custom_decay` when a non-empty `--custom_decay_list` item is a substring of the
    ///   name; else 0 for "small" tensors (1-D, or 4-D with `shape[1] == 1`) unless
    ///   `--decay_small`; else `--wd`.
    /// - lr: `--custom_lr` when a non-empty `--custom_lr_list` item is a substring of the name;
    ///   else, when `quant_weight` is an item of the list, `lr = lr_constant = --custom_lr` for
    ///   every conv weight `<prefix>.weight` that owns a `<prefix>.quant_weight.*` parameter
    ///   (`allNames`: every parameter name of the model, trainable or not, e.g. `iteration`);
    ///   else `--lr`.
    public static func qtool(
        options o: QToolOptions, parameters: [(name: String, shape: [Int])], allNames: [String]
    ) -> [ParameterGroup] {
        let customLR = o.customLRList.filter { !$0.isEmpty }
        var wrapped = Set<String>()
        if o.customLRList.contains("quant_weight") {
            for name in allNames {
                guard let r = name.range(of: ".quant_weight") else { continue }
                wrapped.insert(String(name[..<r.lowerBound]) + ".weight")
            }
        }
        return parameters.map { p in
            var g = ParameterGroup(name: p.name, lr: o.lr, weightDecay: SGD.weightDecay(name: p.name, shape: p.shape, options: o))
            if customLR.contains(where: { p.name.contains($0) }) {
                g.lr = o.customLR
            } else if wrapped.contains(p.name) {
                g.lr = o.customLR
                g.lrConstant = o.customLR
            }
            return g
        }
    }

    /// The groups as the first step of epoch 0 sees them (§14.5-14.6), given `scheduled`, the
    /// schedule's learning rate for epoch 0 (``LearningRate/firstStep(_:)`` before the wake-up).
    ///
    /// Step-type policies (`decay`, `fix`, `fix_step`, `custom_step`, `poly`) set every group
    /// without `lr_constant` to `scheduled` (so a custom lr without constant is overwritten);
    /// the cosine policies (`sgdr`, `sgdr_step`, `cos`) start every group from its own lr (a
    /// new `CosineAnnealingLR` at epoch 0 keeps the current values), then reset `lr_constant`
    /// groups. `--wakeup` multiplies every group without `lr_constant` by `0 / W` at iteration 0.
    public static func atFirstStep(_ groups: [ParameterGroup], options o: QToolOptions, scheduled: Double) -> [ParameterGroup] {
        let cosine = ["sgdr", "sgdr_step", "cos"].contains(o.lrPolicy)
        return groups.map { g in
            var g = g
            if let c = g.lrConstant {
                g.lr = c
                return g
            }
            if !cosine { g.lr = scheduled }
            if LearningRate.wakesUp(o) { g.lr = 0 }
            return g
        }
    }
}
