/// Per-step and per-op-type wall time, accumulated over one or more runs.
///
/// Fused steps are attributed to their primary op (a conv with folded batch norm and ReLU
/// counts as `conv2d`).
public struct Profile: Sendable {
    /// Time of one step summed over runs.
    public struct StepTime: Sendable {
        /// Graph nodes the step covers (primary first).
        public var nodes: [String]
        /// The primary op type.
        public var opType: String
        /// Total nanoseconds over all recorded runs.
        public var nanoseconds: UInt64
    }

    /// Number of recorded runs.
    public private(set) var runs = 0
    /// One entry per plan step, in execution order.
    public private(set) var steps: [StepTime] = []

    /// An empty profile.
    public init() {}

    /// Total nanoseconds per op type over all runs.
    public var nanosecondsByOpType: [String: UInt64] {
        var d: [String: UInt64] = [:]
        for s in steps { d[s.opType, default: 0] += s.nanoseconds }
        return d
    }

    /// Each op type's fraction of the total kernel time (sums to 1 when anything ran).
    public var shares: [String: Double] {
        let by = nanosecondsByOpType
        let total = Double(by.values.reduce(0, +))
        guard total > 0 else { return [:] }
        return by.mapValues { Double($0) / total }
    }

    /// Mean milliseconds per run for each op type.
    public var millisecondsPerRunByOpType: [String: Double] {
        nanosecondsByOpType.mapValues { Double($0) / 1e6 / Double(max(runs, 1)) }
    }

    mutating func begin(_ plan: Plan) {
        if steps.count != plan.steps.count {
            steps = plan.steps.map { StepTime(nodes: $0.nodes, opType: $0.opType, nanoseconds: 0) }
            runs = 0
        }
        runs += 1
    }

    mutating func record(step: Int, nanoseconds: UInt64) {
        steps[step].nanoseconds += nanoseconds
    }
}
