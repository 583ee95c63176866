import Foundation
import QToolConfig
import Testing

@testable import Train

/// Every lr policy of seed-reference §14.5 (with restarts, the wake-up ramp, `lr_constant` and
/// custom-lr groups, extra epochs) against values computed independently from the reference's
/// formulas by `fixtures/schedule/schedule_table.py` (its output pasted below).
@Suite struct ScheduleTests {
    /// The schedules the table's case names stand for.
    static func schedule(_ name: String) throws -> Schedule {
        switch name {
        case "decay": return try Schedule(policy: "decay", lr0: 0.1, decay: 0.98, epochs: 5, trainLength: 1)
        case "fix": return try Schedule(policy: "fix", lr0: 0.1, decay: 0.98, epochs: 3, trainLength: 1)
        case "fix_step":
            return try Schedule(policy: "fix_step", lr0: 0.1, decay: 0.5, fixStep: 2, epochs: 6, trainLength: 1)
        case "custom_step":
            return try Schedule(policy: "custom_step", lr0: 0.1, decay: 0.1, milestones: [4, 2], epochs: 6, trainLength: 1)
        case "poly":
            return try Schedule(policy: "poly", lr0: 0.1, decay: 2, etaMin: 0.001, milestones: [3], epochs: 6, trainLength: 1)
        case "sgdr":
            return try Schedule(policy: "sgdr", lr0: 0.1, decay: 0.1, etaMin: 0.001, milestones: [2], epochs: 4, trainLength: 3)
        case "sgdr_step":
            return try Schedule(
                policy: "sgdr_step", lr0: 0.1, decay: 0.5, etaMin: 0.001, milestones: [2], epochs: 4, trainLength: 3)
        case "cos":
            return try Schedule(policy: "cos", lr0: 0.1, decay: 0.1, etaMin: 0.01, milestones: [2], epochs: 5, trainLength: 1)
        case "wakeup":
            return try Schedule(
                policy: "custom_step", lr0: 0.1, decay: 0.1, milestones: [2, 4], epochs: 6, trainLength: 3, wakeup: 4)
        default: throw TrainError(.invalidInput(name))
        }
    }

    static let table: [(String, Int, Int, Schedule.GroupKind, Double)] = [
        ("decay", 0, 0, .normal, 0.1),
        ("decay", 1, 0, .normal, 0.098),
        ("decay", 2, 0, .normal, 0.09604),
        ("decay", 3, 0, .normal, 0.0941192),
        ("decay", 4, 0, .normal, 0.092236816),
        ("fix", 0, 0, .normal, 0.1),
        ("fix", 1, 0, .normal, 0.1),
        ("fix", 2, 0, .normal, 0.1),
        ("fix_step", 0, 0, .normal, 0.1),
        ("fix_step", 1, 0, .normal, 0.1),
        ("fix_step", 2, 0, .normal, 0.05),
        ("fix_step", 3, 0, .normal, 0.05),
        ("fix_step", 4, 0, .normal, 0.025),
        ("fix_step", 5, 0, .normal, 0.025),
        ("custom_step", 0, 0, .normal, 0.1),
        ("custom_step", 1, 0, .normal, 0.1),
        ("custom_step", 2, 0, .normal, 0.010000000000000002),
        ("custom_step", 3, 0, .normal, 0.010000000000000002),
        ("custom_step", 4, 0, .normal, 0.0010000000000000002),
        ("custom_step", 5, 0, .normal, 0.0010000000000000002),
        ("custom_step", 0, 0, .constant(0.003), 0.003),
        ("custom_step", 1, 0, .constant(0.003), 0.003),
        ("custom_step", 2, 0, .constant(0.003), 0.003),
        ("custom_step", 3, 0, .constant(0.003), 0.003),
        ("custom_step", 4, 0, .constant(0.003), 0.003),
        ("custom_step", 5, 0, .constant(0.003), 0.003),
        ("custom_step", 0, 0, .customLR(0.003), 0.1),
        ("custom_step", 1, 0, .customLR(0.003), 0.1),
        ("custom_step", 2, 0, .customLR(0.003), 0.010000000000000002),
        ("custom_step", 3, 0, .customLR(0.003), 0.010000000000000002),
        ("custom_step", 4, 0, .customLR(0.003), 0.0010000000000000002),
        ("custom_step", 5, 0, .customLR(0.003), 0.0010000000000000002),
        ("poly", 0, 0, .normal, 0.1),
        ("poly", 1, 0, .normal, 0.04500000000000001),
        ("poly", 2, 0, .normal, 0.012000000000000004),
        ("poly", 3, 0, .normal, 0.1),
        ("poly", 4, 0, .normal, 0.04500000000000001),
        ("poly", 5, 0, .normal, 0.012000000000000004),
        ("sgdr", 0, 0, .normal, 0.1),
        ("sgdr", 0, 0, .customLR(0.02), 0.02),
        ("sgdr", 0, 0, .constant(0.003), 0.003),
        ("sgdr", 0, 1, .normal, 0.09336825748732973),
        ("sgdr", 0, 1, .customLR(0.02), 0.018727241335952168),
        ("sgdr", 0, 1, .constant(0.003), 0.003),
        ("sgdr", 0, 2, .normal, 0.07525000000000001),
        ("sgdr", 0, 2, .customLR(0.02), 0.01525),
        ("sgdr", 0, 2, .constant(0.003), 0.003),
        ("sgdr", 1, 0, .normal, 0.0505),
        ("sgdr", 1, 0, .customLR(0.02), 0.010499999999999999),
        ("sgdr", 1, 0, .constant(0.003), 0.003),
        ("sgdr", 1, 1, .normal, 0.025750000000000012),
        ("sgdr", 1, 1, .customLR(0.02), 0.005750000000000002),
        ("sgdr", 1, 1, .constant(0.003), 0.003),
        ("sgdr", 1, 2, .normal, 0.007631742512670284),
        ("sgdr", 1, 2, .customLR(0.02), 0.002272758664047832),
        ("sgdr", 1, 2, .constant(0.003), 0.003),
        ("sgdr", 2, 0, .normal, 0.1),
        ("sgdr", 2, 0, .customLR(0.02), 0.02),
        ("sgdr", 2, 0, .constant(0.003), 0.003),
        ("sgdr", 2, 1, .normal, 0.09336825748732973),
        ("sgdr", 2, 1, .customLR(0.02), 0.018727241335952168),
        ("sgdr", 2, 1, .constant(0.003), 0.003),
        ("sgdr", 2, 2, .normal, 0.07525000000000001),
        ("sgdr", 2, 2, .customLR(0.02), 0.01525),
        ("sgdr", 2, 2, .constant(0.003), 0.003),
        ("sgdr", 3, 0, .normal, 0.0505),
        ("sgdr", 3, 0, .customLR(0.02), 0.010499999999999999),
        ("sgdr", 3, 0, .constant(0.003), 0.003),
        ("sgdr", 3, 1, .normal, 0.025750000000000012),
        ("sgdr", 3, 1, .customLR(0.02), 0.005750000000000002),
        ("sgdr", 3, 1, .constant(0.003), 0.003),
        ("sgdr", 3, 2, .normal, 0.007631742512670284),
        ("sgdr", 3, 2, .customLR(0.02), 0.002272758664047832),
        ("sgdr", 3, 2, .constant(0.003), 0.003),
        ("sgdr_step", 0, 0, .normal, 0.1),
        ("sgdr_step", 0, 1, .normal, 0.09336825748732973),
        ("sgdr_step", 0, 2, .normal, 0.07525000000000001),
        ("sgdr_step", 1, 0, .normal, 0.0505),
        ("sgdr_step", 1, 1, .normal, 0.025750000000000012),
        ("sgdr_step", 1, 2, .normal, 0.007631742512670284),
        ("sgdr_step", 2, 0, .normal, 0.05),
        ("sgdr_step", 2, 1, .normal, 0.046717622392718754),
        ("sgdr_step", 2, 2, .normal, 0.037750000000000006),
        ("sgdr_step", 3, 0, .normal, 0.025500000000000002),
        ("sgdr_step", 3, 1, .normal, 0.013250000000000005),
        ("sgdr_step", 3, 2, .normal, 0.004282377607281252),
        ("cos", 0, 1, .normal, 0.1),
        ("cos", 0, 0, .constant(0.003), 0.003),
        ("cos", 1, 1, .normal, 0.05500000000000001),
        ("cos", 1, 0, .constant(0.003), 0.006500000000000001),
        ("cos", 2, 1, .normal, 0.0775),
        ("cos", 2, 0, .constant(0.003), 0.00475),
        ("cos", 3, 1, .normal, 0.032500000000000015),
        ("cos", 3, 0, .constant(0.003), 0.008249999999999999),
        ("cos", 4, 1, .normal, 0.01),
        ("cos", 4, 0, .constant(0.003), 0.01),
        ("custom_step", 7, 0, .normal, 0.0010000000000000002),
        ("sgdr", 5, 1, .normal, 0.001),
        ("wakeup", 0, 0, .normal, 0.0),
        ("wakeup", 0, 0, .constant(0.003), 0.003),
        ("wakeup", 0, 1, .normal, 0.025),
        ("wakeup", 0, 1, .constant(0.003), 0.003),
        ("wakeup", 0, 2, .normal, 0.05),
        ("wakeup", 0, 2, .constant(0.003), 0.003),
        ("wakeup", 1, 0, .normal, 0.07500000000000001),
        ("wakeup", 1, 0, .constant(0.003), 0.003),
        ("wakeup", 1, 1, .normal, 0.1),
        ("wakeup", 1, 1, .constant(0.003), 0.003),
        ("wakeup", 1, 2, .normal, 0.1),
        ("wakeup", 1, 2, .constant(0.003), 0.003),
        ("wakeup", 2, 0, .normal, 0.010000000000000002),
        ("wakeup", 2, 0, .constant(0.003), 0.003),
        ("wakeup", 2, 1, .normal, 0.010000000000000002),
        ("wakeup", 2, 1, .constant(0.003), 0.003),
        ("wakeup", 2, 2, .normal, 0.010000000000000002),
        ("wakeup", 2, 2, .constant(0.003), 0.003),
    ]

    @Test func everyPolicyMatchesTheReferenceFormulas() throws {
        for (name, e, i, kind, want) in Self.table {
            let got = try Self.schedule(name).rate(epoch: e, iteration: i, kind: kind)
            #expect(abs(got - want) <= 1e-12 * max(1, abs(want)), "\(name) epoch \(e) iteration \(i) \(kind): \(got) vs \(want)")
        }
    }

    /// The golden loop's sgdr run (`loop_lsq_a2w2_sgdr/loop.json`): the epoch lrs main.py logged.
    @Test func goldenSgdrEpochRates() throws {
        let s = try Schedule(policy: "sgdr", lr0: 0.05, decay: 0.1, etaMin: 0.001, milestones: [3], epochs: 3, trainLength: 3)
        let want = [0.05, 0.03775, 0.013250000000000005]
        for e in 0..<3 { #expect(abs(s.epochRate(e) - want[e]) <= 1e-15) }
        #expect(abs(s.rate(epoch: 3, iteration: 0) - 0.001) <= 1e-15, "lr_groups after the last epoch")
    }

    @Test func warmupSkipsOptimizerSteps() throws {
        var o = try QToolOptions().applying(arguments: ["--lr_policy", "fix", "--warmup_epoch", "2", "--epochs", "4"])
        var s = try Schedule(options: o, trainLength: 3)
        #expect(s.warmup == 6)
        #expect(!s.stepsOptimizer(epoch: 1, iteration: 2) && s.stepsOptimizer(epoch: 2, iteration: 0))
        o = try QToolOptions().applying(arguments: ["--lr_policy", "fix", "--warmup", "4", "--warmup_epoch", "2"])
        s = try Schedule(options: o, trainLength: 3)
        #expect(s.warmup == 4, "--warmup wins over --warmup_epoch")
    }

    @Test func unknownPolicyIsRefused() {
        #expect(throws: TrainError.self) { try Schedule(policy: "linear", lr0: 0.1, decay: 1, epochs: 1, trainLength: 1) }
    }
}
