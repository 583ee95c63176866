import Dispatch
import Tensors

/// Latency measurement of the engine, for `qtools bench` (returns numbers, never prints).
public enum EngineBenchmark {
    /// Timings of one benchmark.
    public struct Result: Sendable {
        /// Median / min / max latency per run in milliseconds.
        public var medianMs: Double, minMs: Double, maxMs: Double
        /// Every timed run, in order (ms).
        public var runsMs: [Double]
        /// Threads used.
        public var threads: Int
        /// Each op type's share of kernel time, from one extra profiled pass over the runs.
        public var shares: [String: Double]
        /// Mean ms per run for each op type (profiled runs).
        public var opMilliseconds: [String: Double]
        /// Plan sizes: arena and packed weights, in bytes; number of kernel steps.
        public var arenaBytes: Int, packedWeightBytes: Int, steps: Int
        /// The peak-memory anchor of this graph at this input shape.
        public var anchor: MemoryAnchor
        /// The process's peak resident memory at the end of the measurement (nil without `/proc`).
        public var peakResidentBytes: Int?
        /// Mean ms per run of every plan step, in execution order (profiled runs).
        public var stepTimes: [StepTime] = []
    }

    /// One plan step's mean time per run.
    public struct StepTime: Sendable {
        /// Graph nodes the step covers (primary first) and the primary op type.
        public var nodes: [String], opType: String
        /// Mean milliseconds per profiled run.
        public var milliseconds: Double
    }

    /// Times `graph` on a seeded random input of `inputShape`: `warmup` untimed runs, then
    /// `iterations` timed runs, then `iterations` profiled runs (per-op shares).
    public static func measure(
        graph: Graph, inputShape: [Int], iterations: Int = 20, warmup: Int = 3, threads: Int = 2
    ) throws(InferenceError) -> Result {
        guard graph.inputs.count == 1 else { throw InferenceError(.unsupported("benchmark needs a single-input graph")) }
        let plan = try Plan(graph: graph, inputShapes: [graph.inputs[0]: inputShape])
        return try measure(
            plan: plan, anchor: MemoryAnchor(graph: graph, plan: plan), iterations: iterations, warmup: warmup,
            threads: threads)
    }

    /// Times a single-input `plan` (as ``measure(graph:inputShape:iterations:warmup:threads:)``);
    /// `anchor` is the model's (``MemoryAnchor/init(graph:plan:)``). Without the graph, a
    /// caller that has let go of its model measures the memory of the plan alone.
    public static func measure(
        plan: Plan, anchor: MemoryAnchor, iterations: Int = 20, warmup: Int = 3, threads: Int = 2
    ) throws(InferenceError) -> Result {
        guard plan.inputSpans.count == 1, let (name, _) = plan.inputSpans.first, let inputShape = plan.inputShapes[name]
        else { throw InferenceError(.unsupported("benchmark needs a single-input graph")) }
        let exec = Executor(plan: plan, threads: threads)
        let input = [name: SplitMix64.normalTensor(shape: inputShape, seed: 12345)]
        for _ in 0..<max(warmup, 0) { _ = try exec.run(input) }
        var times: [Double] = []
        for _ in 0..<max(iterations, 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try exec.run(input)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        var profile = Profile()
        for _ in 0..<max(iterations, 1) { _ = try exec.run(input, profile: &profile) }
        let sorted = times.sorted()
        let mid = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        return Result(
            medianMs: median, minMs: sorted.first!, maxMs: sorted.last!, runsMs: times,
            threads: threads, shares: profile.shares, opMilliseconds: profile.millisecondsPerRunByOpType,
            arenaBytes: plan.arenaBytes, packedWeightBytes: plan.weightBytes, steps: plan.stepCount,
            anchor: anchor, peakResidentBytes: ProcessMemory.peakResidentBytes(),
            stepTimes: profile.steps.map {
                StepTime(nodes: $0.nodes, opType: $0.opType, milliseconds: Double($0.nanoseconds) / 1e6 / Double(max(profile.runs, 1)))
            })
    }
}
