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

    /// Loads `model` (see ``ModelLoader``) and plans it for the shape `shape` picks. With
    /// `lowerQuantized` (the default; `--engine float` turns it off) XNOR-style binary convs run
    /// as the engine's bit-packed conv, then the convs behind a uniform activation quantizer
    /// with integer-grid weights as its int8 conv.
    init(
        model: String, config: String?, overrides: [String], lowerQuantized: Bool = true, shape: (BuiltModel) throws -> [Int]
    ) throws {
        var loaded = try ModelLoader(model: model, config: config, overrides: overrides)
        name = loaded.model.model
        input = loaded.model.input
        output = loaded.model.output
        randomWeights = loaded.randomWeights
        externalFiles = loaded.externalFiles
        let inputShapes = [input: try shape(loaded.model)]
        try MemoryLimits.checkInput(inputShapes[input]!)
        var graph = loaded.model.graph
        loaded.model.graph = Graph()  // the plan gets the only reference: weights freed as packed
        // The weights as loaded (float, before any lowering): what the process has held.
        let weightBytes = graph.parameterBytes
        if lowerQuantized {
            let binary = BinaryConvLowering.lower(graph)
            binaryConvs = binary.lowered.count
            let integer = IntegerConvLowering.lower(binary.graph)
            integerConvs = integer.lowered.count
            graph = integer.graph
        }
        plan = try Plan(graph: consume graph, inputShapes: inputShapes)
        try MemoryLimits.check(plan, model: model)  // before the executor allocates the arena
        anchor = MemoryAnchor(weightBytes: weightBytes, largestActivationBytes: plan.largestActivationBytes)
    }

    /// The logits `[N, classes]` for `x` (float32, of ``inputShape``).
    func logits(_ x: Tensor, threads: Int) throws -> Tensor {
        try Executor(plan: plan, threads: threads).run([input: x])[output]!
    }
}
