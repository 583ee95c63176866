import Dispatch

/// Time spent per op type in the forward and the backward of ``TrainingGraph`` (for
/// `qtools bench --train`): pass one to `forward`/`backward` and read the sums.
package final class TrainProfile {
    /// Seconds per op type (`Op.typeName`), summed over the profiled passes.
    package private(set) var forward: [String: Double] = [:], backward: [String: Double] = [:]

    package init() {}

    /// A timestamp for ``add(forward:since:)`` / ``add(backward:since:)``.
    package func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    package func add(forward op: String, since start: UInt64) { forward[op, default: 0] += seconds(since: start) }

    package func add(backward op: String, since start: UInt64) { backward[op, default: 0] += seconds(since: start) }

    private func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Each op type's share of the total of `times`.
    package static func shares(_ times: [String: Double]) -> [String: Double] {
        let total = times.values.reduce(0, +)
        return total > 0 ? times.mapValues { $0 / total } : [:]
    }
}
