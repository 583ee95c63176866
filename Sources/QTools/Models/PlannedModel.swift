import Engine
import Models
import Tensors

/// A model loaded (as ``ModelLoader`` does) and planned for one input shape, without its graph.
///
/// `run` and `bench` keep only the plan, whose packed weights are all the engine reads. The
/// graph is handed to the planner, which frees each weight (seeded random ones, or a
/// checkpoint read into memory) once it is packed and releases a memory-mapped checkpoint's
/// pages; the file is unmapped when planning ends. So the process never holds the weights
/// twice, as ``MemoryAnchor`` budgets them.
struct PlannedModel {
    /// The model-zoo name (`--model`).
    var name: String
    /// Names of the graph's input and logits values.
    var input: String, output: String
    /// True when the weights are random (no checkpoint).
    var randomWeights: Bool
    /// The plan for ``inputShape``.
    var plan: Plan
    /// The peak-memory anchor of this model at ``inputShape``.
    var anchor: MemoryAnchor
    /// Files read besides the model and the config (ONNX external data).
    var externalFiles: [String]

    /// The input shape the plan was made for.
    var inputShape: [Int] { plan.inputShapes[input] ?? [] }

    /// Binary convs lowered to the engine's bit-packed conv (``BinaryConvLowering``).
    var binaryConvs: Int = 0
    /// Convs of uniform quantizers lowered to the engine's int8 conv (``IntegerConvLowering``).
    var integerConvs: Int = 0
    /// Convs behind a quantizer that the integer lowering kept float, with the reason.
    var integerKept: [(node: String, reason: String)] = []

    /// Loads `model` (see ``ModelLoader``) and plans it for the shape `shape` picks, its convs
    /// lowered as `engine` runs them (``RunEngine/lower(_:planes:)``); a packed file's binary
    /// convs then run on its planes directly (its binary weights are never unpacked to floats).
    init(model: String, config: String?, overrides: [String], engine: RunEngine = .fast, shape: (BuiltModel) throws -> [Int]) throws {
        MemoryPolicy.apply()  // planning (again, when a command plans a second model): see ``MemoryPolicy``
        var loaded = try ModelLoader(model: model, config: config, overrides: overrides, packedPlanes: engine.lowersBinary)
        name = loaded.model.model
        input = loaded.model.input
        output = loaded.model.output
        randomWeights = loaded.randomWeights
        externalFiles = loaded.externalFiles
        let inputShapes = [input: try shape(loaded.model)]
        try MemoryLimits.checkInput(inputShapes[input]!)
        let graph = loaded.model.graph
        let planes = loaded.model.packedWeights
        loaded.model.graph = Graph()  // the plan gets the only reference: weights freed as packed
        loaded.model.packedWeights = [:]
        // The weights as loaded (before any lowering): what the process has held. A packed
        // file's placeholders share one buffer of the largest layer's size, next to the planes.
        var weightBytes = graph.parameterBytes
        if !planes.isEmpty {
            let floats = planes.values.map { 4 * $0.shape.reduce(1, *) }
            weightBytes += (floats.max() ?? 0) - floats.reduce(0, +)
            weightBytes += planes.values.reduce(0) { $0 + $1.bits.count + ($1.mask?.count ?? 0) + 4 * $1.scales.count }
        }
        var lowered = engine.lower(consume graph, planes: planes)
        (binaryConvs, integerConvs, integerKept) = (lowered.binaryConvs, lowered.integerConvs, lowered.integerKept)
        plan = try Plan(graph: lowered.takeGraph(), inputShapes: inputShapes)
        try MemoryLimits.check(plan, model: model)  // before the executor allocates the arena
        anchor = MemoryAnchor(weightBytes: weightBytes, largestActivationBytes: plan.largestActivationBytes)
        MemoryPolicy.running()  // runs: function-path ops' arrays reused from the heap
    }

    /// The logits `[N, classes]` for `x` (float32, of ``inputShape``).
    func logits(_ x: Tensor, threads: Int) throws -> Tensor {
        try Executor(plan: plan, threads: threads).run([input: x])[output]!
    }
}
