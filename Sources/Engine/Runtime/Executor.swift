import Tensors

/// Runs a ``Graph`` with the fast kernels: plans once per input shape, then reuses one arena.
///
/// ```swift
/// let exec = try Executor(graph: g, threads: 2)
/// let out = try exec.run(["input": x])        // [String: Tensor]
/// var prof = Profile()
/// _ = try exec.run(["input": x], profile: &prof)
/// ```
/// A run allocates nothing besides the returned tensors (the arena is sized at the first
/// run with a new input shape). Not thread-safe: use one executor per thread.
///
/// An executor made from one ``Plan`` (``init(plan:threads:)``) runs that plan's input shapes
/// only and keeps no graph: the model's constants can be freed once packed into the plan.
public final class Executor {
    /// The graph being run (nil for an executor made from one plan).
    public let graph: Graph?
    /// Names of the graph inputs, in order.
    private let inputNames: [String]
    /// Planner options.
    public let options: PlanOptions
    /// Threads for the parallel kernels (>= 1); OpenBLAS is set to one thread per call.
    public var threads: Int
    /// Clock for profiles (`.threadCPU` for kernel work measurements with `threads == 1`).
    package var profileClock: StepClock = .wall
    private var plans: [[[Int]]: Plan] = [:]
    private var arena: [Float] = []

    /// Validates `graph`.
    /// - Throws: ``InferenceError`` for an invalid graph.
    public init(graph: Graph, threads: Int = 2, options: PlanOptions = PlanOptions()) throws(InferenceError) {
        precondition(threads >= 1, "threads must be >= 1")
        _ = try graph.validate()
        self.graph = graph
        self.inputNames = graph.inputs
        self.threads = max(threads, 1)
        self.options = options
    }

    /// An executor that runs `plan` (for its input shapes only) and holds no graph.
    public init(plan: Plan, threads: Int = 2) {
        precondition(threads >= 1, "threads must be >= 1")
        graph = nil
        inputNames = plan.inputSpans.map(\.name)
        self.threads = max(threads, 1)
        options = plan.options
        plans[inputNames.map { plan.inputShapes[$0]! }] = plan
        arena = [Float](repeating: 0, count: plan.arenaCount)
    }

    /// The plan for these input shapes (made and cached on first use).
    /// - Throws: ``InferenceError`` for shapes the graph cannot take, or new shapes for an
    ///   executor made from one plan.
    public func plan(for shapes: [String: [Int]]) throws(InferenceError) -> Plan {
        let key = inputNames.map { shapes[$0] ?? [] }
        if let p = plans[key] { return p }
        guard let graph else {
            let planned = plans.keys.first.map { "\($0)" } ?? "[]"
            throw InferenceError(.shapeMismatch("this executor runs one plan, for input shapes \(planned); got \(key)"))
        }
        let p = try Plan(graph: graph, inputShapes: shapes, options: options)
        plans[key] = p
        if arena.count < p.arenaCount { arena = [Float](repeating: 0, count: p.arenaCount) }
        return p
    }

    /// Runs the graph on named float32 inputs and returns every graph output by name.
    /// - Throws: ``InferenceError`` for missing or non-float32 inputs, or shapes the graph cannot take.
    public func run(_ inputs: [String: Tensor]) throws(InferenceError) -> [String: Tensor] {
        try run(inputs, onStep: nil)
    }

    /// Runs once and adds per-step timings to `profile`.
    public func run(_ inputs: [String: Tensor], profile: inout Profile) throws(InferenceError) -> [String: Tensor] {
        let plan = try plan(for: try shapes(of: inputs))
        profile.begin(plan)
        var p = profile
        let out = try run(inputs, onStep: { i, ns in p.record(step: i, nanoseconds: ns) })
        profile = p
        return out
    }

    /// Runs once and hands `observe(i, values)` a copy of the value each step `i` of `plan`
    /// writes (``ValueCapture`` names them).
    package func run(
        _ inputs: [String: Tensor], observe: @escaping (_ plan: Plan, _ step: Int, _ values: [Float]) -> Void
    ) throws(InferenceError) -> [String: Tensor] {
        let plan = try plan(for: try shapes(of: inputs))
        return try run(inputs, onStep: nil, observe: { observe(plan, $0, $1) })
    }

    /// Runs a single-input graph on `values` of `shape`.
    public func run(floats values: [Float], shape: [Int]) throws(InferenceError) -> [String: Tensor] {
        guard inputNames.count == 1 else {
            throw InferenceError(.missingInput("graph has \(inputNames.count) inputs; pass them by name"))
        }
        guard (try? Shapes.elementCount(shape)) == values.count else {
            throw InferenceError(.missingInput("\(values.count) values for shape \(shape)"), value: inputNames[0])
        }
        return try run([inputNames[0]: Tensor(floats: values, shape: shape)])
    }

    private func shapes(of inputs: [String: Tensor]) throws(InferenceError) -> [String: [Int]] {
        var s: [String: [Int]] = [:]
        for name in inputNames {
            guard let t = inputs[name] else { throw InferenceError(.missingInput("input \"\(name)\" not supplied"), value: name) }
            guard t.dtype == .float32 else { throw InferenceError(.unsupportedDType(t.dtype.rawValue), value: name) }
            s[name] = t.shape
        }
        return s
    }

    private func run(
        _ inputs: [String: Tensor], onStep: ((Int, UInt64) -> Void)?, observe: ((Int, [Float]) -> Void)? = nil
    ) throws(InferenceError) -> [String: Tensor] {
        let plan = try plan(for: try shapes(of: inputs))
        for (name, span) in plan.inputSpans {
            StepRunner.load(inputs[name]!, into: span, arena: &arena)
        }
        // The conv kernels split their GEMMs over `threads` themselves (tiles per core), so
        // OpenBLAS runs each call single-threaded: no nested pools, no spinning workers
        // competing with ours.
        Gemm.setThreads(1)
        StepRunner.run(plan, arena: &arena, threads: threads, clock: profileClock, onStep: onStep, observe: observe)
        var out: [String: Tensor] = [:]
        for (k, o) in plan.outputs.enumerated() {
            out[o.name] = Tensor(floats: StepRunner.read(plan.outputSpans[k], arena: arena, weights: plan.weights), shape: o.shape)
        }
        return out
    }
}
