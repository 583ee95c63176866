import Foundation
import QToolConfig

/// QTool's learning-rate schedule (seed-reference §14.5-14.6) as closed forms of the epoch and
/// the iteration.
///
/// `main.py` calls `setting_learning_rate` at the start of every epoch `e < epochs`; `sgdr`
/// steps its scheduler after every training iteration, `cos` once per epoch. This type gives
/// the learning rate each optimizer step uses, for each kind of parameter group.
///
/// Cosine restarts are the **closed form** the reference recommends (the 2020-era PyTorch
/// `CosineAnnealingLR`, computed from the cycle's base): inside a cycle of `T` steps, at step
/// `t` since its start, `lr = η + (base − η)(1 + cos(π t / T)) / 2`, and a restart jumps back
/// to `base`. PyTorch ≥ 1.4 computes it recursively from the *current* lr, so there a restart
/// continues from ≈η and `sgdr_step`'s new base has no effect; both agree on a single cycle
/// (the golden loops and most configs). `sgdr_step` restarts at `lr0·d^k(e)`.
///
/// `--wakeup W`: the intended ramp `lr = base · it / W` for `it < W` (groups without
/// `lr_constant`). The PyTorch code multiplies the *current* lr by `it / W`, which compounds and
/// leaves the lr at 0 from `it = 0` until the next epoch's reset (§16); we do not reproduce that.
///
/// `--warmup N` / `--warmup_epoch E` (`N = E · train_length` when `--warmup` ≤ 0): the
/// optimizer step is skipped while `it < N` (``stepsOptimizer(epoch:iteration:)``).
public struct Schedule: Sendable, Equatable {
    /// What a parameter group's learning rate follows (§14.3).
    public enum GroupKind: Sendable, Equatable {
        /// The schedule of `--lr`.
        case normal
        /// `--custom_lr` without `lr_constant` (a `--custom_lr_list` item in the name): step
        /// policies overwrite it; `sgdr`/`cos` use it as the group's cosine base.
        case customLR(Double)
        /// `lr_constant` (the conv weights of `quant_weight` in `--custom_lr_list`): constant
        /// under step policies, wake-up and `sgdr`; annealed from it under `cos`.
        case constant(Double)
    }

    public var policy: String
    /// `--lr`, `--lr_decay`, `--eta_min`.
    public var lr0: Double, decay: Double, etaMin: Double
    /// `--lr_custom_step` (sorted), `--lr_fix_step`.
    public var milestones: [Int], fixStep: Int
    /// `--epochs` and the number of training iterations per epoch.
    public var epochs: Int, trainLength: Int
    /// `--wakeup` and the effective `--warmup` (iterations).
    public var wakeup: Int, warmup: Int

    public static let policies = ["decay", "fix", "fix_step", "custom_step", "poly", "sgdr", "sgdr_step", "cos"]

    public init(
        policy: String, lr0: Double, decay: Double, etaMin: Double = 0, milestones: [Int] = [], fixStep: Int = 30,
        epochs: Int, trainLength: Int, wakeup: Int = 0, warmup: Int = 0
    ) throws(TrainError) {
        guard Self.policies.contains(policy) else {
            throw TrainError(.unsupported("--lr_policy \(policy) (QTool logs \"lr is invalid\" and stops)"))
        }
        guard trainLength > 0, epochs >= 0 else {
            throw TrainError(.invalidInput("a schedule needs at least one iteration per epoch"))
        }
        if policy == "fix_step" && fixStep <= 0 { throw TrainError(.invalidInput("--lr_fix_step must be positive")) }
        self.policy = policy
        self.lr0 = lr0
        self.decay = decay
        self.etaMin = etaMin
        self.milestones = milestones.sorted()
        self.fixStep = fixStep
        self.epochs = epochs
        self.trainLength = trainLength
        self.wakeup = wakeup
        self.warmup = warmup
    }

    /// The schedule of `options` for `trainLength` iterations per epoch.
    public init(options o: QToolOptions, trainLength: Int) throws(TrainError) {
        var wakeup = 0, warmup = 0, fixStep = 30, warmupEpoch = 0
        if case .int(let w) = o["wakeup"] { wakeup = w }
        if case .int(let w) = o["warmup"] { warmup = w }
        if case .int(let w) = o["warmup_epoch"] { warmupEpoch = w }
        if case .int(let s) = o["lr_fix_step"] { fixStep = s }
        if warmup <= 0 { warmup = trainLength * warmupEpoch }
        try self.init(
            policy: o.lrPolicy, lr0: o.lr, decay: o.lrDecay, etaMin: o.etaMin, milestones: o.lrCustomStep,
            fixStep: fixStep, epochs: o.epochs, trainLength: trainLength, wakeup: wakeup, warmup: warmup)
    }

    /// `k(e)`: the milestones at or before epoch `e`.
    func passed(_ e: Int) -> Int { milestones.filter { $0 <= e }.count }

    /// The cycle of epoch `e`: its first epoch and length in epochs (boundaries `0, M…, epochs`).
    func cycle(_ e: Int) -> (start: Int, length: Int) {
        let bounds = [0] + milestones.filter { $0 > 0 && $0 < epochs } + [epochs]
        var start = 0, end = max(epochs, 1)
        for (a, b) in zip(bounds, bounds.dropFirst()) where a <= e {
            start = a
            end = b
        }
        if e >= epochs, let last = bounds.dropLast().last { start = last; end = epochs }
        return (start, max(end - start, 1))
    }

    func cosine(base: Double, t: Double, period: Double) -> Double {
        etaMin + (base - etaMin) * (1 + cos(Double.pi * t / period)) / 2
    }

    /// The learning rate of a group of `kind` for the optimizer step at `iteration` of epoch
    /// `epoch` (before the wake-up ramp). Epochs at or past `epochs` (`--extra_epoch`) keep the
    /// last epoch's rate, as `main.py` leaves the lr alone there.
    public func scheduled(epoch e0: Int, iteration i0: Int, kind: GroupKind = .normal) -> Double {
        var e = e0, i = i0
        if epochs > 0 && e >= epochs {
            e = epochs - 1
            i = policy == "sgdr" || policy == "sgdr_step" ? trainLength : 0
        }
        switch policy {
        case "sgdr", "sgdr_step":
            if case .constant(let c) = kind { return c }
            var base: Double
            switch kind {
            case .customLR(let c): base = c
            default: base = lr0
            }
            if policy == "sgdr_step" { base *= Foundation.pow(decay, Double(passed(e))) }
            let (start, length) = cycle(e)
            let t = Double((e - start) * trainLength + i)
            return cosine(base: base, t: t, period: Double(length * trainLength))
        case "cos":
            var base: Double
            switch kind {
            case .customLR(let c), .constant(let c): base = c
            case .normal: base = lr0
            }
            let (start, length) = cycle(e)
            let t = e - start + (start > 0 ? 1 : 0)
            return cosine(base: base, t: Double(t), period: Double(length))
        default:
            if case .constant(let c) = kind { return c }
            return stepPolicy(e)
        }
    }

    /// The step-type policies' value at epoch `e` (§14.5 table).
    func stepPolicy(_ e: Int) -> Double {
        switch policy {
        case "decay": return lr0 * Foundation.pow(decay, Double(e))
        case "fix": return lr0
        case "fix_step": return lr0 * Foundation.pow(decay, Double(e / fixStep))
        case "custom_step": return lr0 * Foundation.pow(decay, Double(passed(e)))
        case "poly":
            let bounds = [0] + milestones.filter { $0 > 0 && $0 < epochs } + [max(epochs, 1)]
            var start = 0, end = bounds.last!
            for (a, b) in zip(bounds, bounds.dropFirst()) where a <= e {
                start = a
                end = b
            }
            let t = Double(e - start), period = Double(max(end - start, 1))
            return etaMin + (lr0 - etaMin) * Foundation.pow(max(0, 1 - t / period), decay)
        default: return lr0
        }
    }

    /// The learning rate the optimizer step at `iteration` of `epoch` uses: ``scheduled`` with
    /// the wake-up ramp `· it / W` while the global iteration `it < W` (not for `lr_constant`).
    public func rate(epoch: Int, iteration: Int, kind: GroupKind = .normal) -> Double {
        let lr = scheduled(epoch: epoch, iteration: iteration, kind: kind)
        let it = epoch * trainLength + iteration
        if wakeup > 0, it < wakeup {
            if case .constant = kind, policy != "cos" { return lr }
            return lr * Double(it) / Double(wakeup)
        }
        return lr
    }

    /// The lr `main.py` logs and passes to `train` for epoch `e` (the first group's value at
    /// the epoch start, before any wake-up).
    public func epochRate(_ e: Int) -> Double { scheduled(epoch: e, iteration: 0) }

    /// Whether the optimizer steps at `iteration` of `epoch` (`--warmup`: not while `it < N`).
    public func stepsOptimizer(epoch: Int, iteration: Int) -> Bool {
        epoch * trainLength + iteration >= warmup
    }
}
