import Engine
import Formats
import QToolConfig
import Tensors

/// Builds a runnable model from a QTool config and a state dict (seed-reference §6): the
/// model-zoo name selects the architecture, keywords and options select its variant, and
/// every tensor is bound by its state-dict name.
///
/// ```swift
/// let options = try QToolOptions(config: ConfigFile(contentsOf: "config.txt"))
/// let model = try ModelBuilder.build(options: options, stateDict: entries)
/// let exec = try Executor(graph: model.graph)
/// let logits = try exec.run([model.input: x])[model.output]!
/// ```
package enum ModelBuilder {
    /// Model-zoo names this builder accepts.
    package static var supportedModels: [String] {
        ResNetFlexible.depths.keys.sorted() + PyTorchResNet.depths.keys.sorted().map { "pytorch-" + $0 }
            + MobileNet.names + ["vgg_small", "nin"]
    }

    /// Builds `options.model` bound to `stateDict` (name, tensor) entries.
    /// - Throws: ``InferenceError`` naming a missing, mis-shaped or unexpected tensor, or
    ///   `.unsupportedModel` for an architecture or keyword this builder does not implement.
    ///
    /// With `forTraining` the graph is the one a trainer differentiates: quantized weights stay
    /// raw weight variables under a weight-quantize op, and quantizer parameters (`clip_val`)
    /// are variables (``ModelAssembler/forTraining``); without it (inference) quantized weights
    /// are baked into constants.
    ///
    /// `prequantized` names modules whose `.weight` in `stateDict` is already the quantized
    /// weight (unpacked from a packed file): their weight quantizer is not applied again.
    package static func build(
        options: QToolOptions, stateDict: [(name: String, tensor: Tensor)], forTraining: Bool = false,
        prequantized: Set<String> = []
    ) throws(InferenceError) -> BuiltModel {
        try build(options: options, binder: StateDictBinder(stateDict), forTraining: forTraining, prequantized: prequantized)
    }

    /// Builds `options.model` with seeded random weights, for traces, benchmarks and smoke
    /// runs without a checkpoint. Quantizers get their construction state (`iteration` 0), so
    /// they pass values through as QTool's untrained quantizers do (§11.12), but their ops
    /// stay in the graph. With `seed` nil every weight is zero (a fast shape-only build).
    package static func buildRandom(options: QToolOptions, seed: UInt64? = 0) throws(InferenceError) -> BuiltModel {
        return try build(options: options, binder: StateDictBinder(random: seed))
    }

    private static func build(
        options: QToolOptions, binder: StateDictBinder, forTraining: Bool = false, prequantized: Set<String> = []
    )
        throws(InferenceError) -> BuiltModel
    {
        var a = ModelAssembler(options: options, binder: binder)
        a.forTraining = forTraining
        a.prequantized = prequantized
        a.graph.addInput("input")
        let model = options.model
        let classes = options.resolvedNumClasses
        let logits: String
        if ResNetFlexible.depths[model] != nil {
            logits = try ResNetFlexible.build(&a, "input", model: model, numClasses: classes)
        } else if model.hasPrefix("pytorch-"), PyTorchResNet.depths[String(model.dropFirst(8))] != nil {
            logits = try PyTorchResNet.build(&a, "input", depth: String(model.dropFirst(8)), numClasses: classes)
        } else if model == "mobilenetv1" {
            logits = try MobileNet.buildV1(&a, "input", numClasses: classes)
        } else if model == "mobilenetv2" {
            logits = try MobileNet.buildV2(&a, "input", numClasses: classes, inputSize: options.resolvedInputSize)
        } else if model == "vgg_small" {
            logits = try VGGSmall.build(&a, "input", numClasses: classes)
        } else if model == "nin" {
            logits = try NIN.build(&a, "input", numClasses: classes)
        } else {
            throw InferenceError(
                .unsupportedModel(
                    "model '\(model)' is not supported; supported: \(supportedModels.joined(separator: ", "))"))
        }
        return try a.finish(model: model, output: logits, inputSize: options.resolvedInputSize, numClasses: classes)
    }
}
