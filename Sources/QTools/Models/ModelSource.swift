import Engine
import Formats
import Models
import Tensors

/// Any representation of a model that `verify A B` can run: a checkpoint built by the engine
/// with its config (given, or recorded as `qtools_config`; a folded checkpoint records
/// `qtools_folded_bn`), or an ONNX file (through ``ModelLoader``). Packed models plug in here: add a case to
/// ``open(_:config:overrides:)`` that returns a ``RunnableModel`` running them.
struct RunnableModel {
    /// What was loaded (for reports): the path and the model it holds.
    var description: String
    /// Input resolution S of `[N, C, S, S]`.
    var inputSize: Int
    /// Input channels C (3 for the QTool networks; what an ONNX graph declares).
    var inputChannels: Int
    /// The default input shape for a batch (`[N, C, S, S]`, or what an ONNX graph declares).
    var inputShape: (Int) -> [Int]
    /// The logits `[N, classes]` for an input `[N, C, S, S]`.
    var run: (Tensor) throws -> Tensor
    /// Every layer value for an input, computed by the given executor (per-layer `verify`).
    var layers: (Tensor, RunEngine) throws -> [LayerValue]
}

enum ModelSource {
    /// The overrides for the second model of `verify A B`: none for an ONNX graph (they are
    /// meant for the checkpoint; an ONNX graph takes no QTool options).
    static func overrides(_ overrides: [String], forSecond path: String) -> [String] {
        path.lowercased().hasSuffix(".onnx") ? [] : overrides
    }

    /// Loads `path` (see ``RunnableModel``); `config` and `overrides` as for `run`. Its logits
    /// come from the float graph, or with `engine` as `run --engine` computes them.
    static func open(_ path: String, config: String?, overrides: [String], engine: RunEngine? = nil) throws -> RunnableModel {
        let loaded = try ModelLoader(model: path, config: config, overrides: overrides)
        let model = loaded.model
        let words = loaded.options.keywords.joined(separator: ",")
        let what =
            path.lowercased().hasSuffix(".onnx")
            ? "ONNX graph" : "\(loaded.options.model) [\(words)]"
        return RunnableModel(
            description: "\(path) (\(what))", inputSize: model.inputSize, inputChannels: model.inputChannels,
            inputShape: { model.inputShape(batch: $0) },
            run: { x in try engine.map { try $0.logits(model, x) } ?? ModelIO.logits(model, x) },
            layers: { x, engine in try engine.layers(model, x, source: path) })
    }
}
