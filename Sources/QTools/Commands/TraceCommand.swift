import ArgumentParser
import Engine
import Formats
import Foundation
import Models

/// `qtools trace [MODEL] --config CFG [--size S] [--batch N] [--json] [QTool options...]`.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "List each layer's shapes, parameters, FLOPs and binary operations.",
        discussion: """
            Builds the model (from a checkpoint, or from the config alone with placeholder \
            weights) and walks its graph for one input shape.

            Conventions: MACs = multiply-accumulates of conv and linear layers (ResNet-18 at \
            224: 1.81 G). FLOPs = MACs of full-precision layers + one per output element of \
            batch norm, activation, add, quantize and pooling ops (ResNet-18: 1.82 G). A layer \
            whose input and weight are quantized counts BOPs = MACs x a_bits x w_bits \
            (bits = ceil(log2 levels): binary 1, ternary 2) instead of FLOPs; OPs = FLOPs + \
            BOPs/64.

            Examples:
              qtools trace --config config.txt
              qtools trace checkpoint.pth --config config.txt --json | jq .ops
              qtools trace pytorch-resnet18 --size 224
            """)

    @Argument(help: "A checkpoint file or a model-zoo name (optional with --config).")
    var model: String?

    @Option(name: .long, parsing: .unconditional, help: "Input resolution (default: the model's input_size).")
    var size: Int?

    @Option(name: .long, parsing: .unconditional, help: "Batch size.")
    var batch: Int = 1

    func validate() throws {
        try OptionChecks.atLeast("--batch", batch, 1)
        try OptionChecks.atLeast("--size", size, 1)
    }

    @OptionGroup var out: OutputOptions

    @OptionGroup var modelOptions: ModelOptions
    var config: String? { modelOptions.config }
    var overrides: [String] { modelOptions.overrides }

    func run() throws {
        try ExitCodes.reporting {
            let loaded = try ModelLoader(model: model, config: config, overrides: overrides, shapesOnly: true)
            // Shapes only: nothing the size of an activation is allocated.
            let shape = loaded.model.inputShape(batch: batch, size: size)
            try MemoryLimits.checkInput(shape)
            let trace = try ModelTrace(model: loaded.model, inputShape: shape)
            Terminal.out(out.json ? try JSONOutput.render(trace) : Self.text(trace, model: loaded.model.model))
        }
    }

    static func text(_ t: ModelTrace, model: String) -> String {
        var table = TextTable(["node", "op", "input", "output", "params", "FLOPs", "BOPs", "quant"], rightAligned: [4, 5, 6])
        for r in t.rows where r.op != "flatten" && r.op != "identity" {
            table.add([
                r.name, r.op, dims(r.inputShape), dims(r.outputShape), Numbers.grouped(r.parameters),
                Numbers.grouped(r.flops), Numbers.grouped(r.bops), r.quantization ?? "",
            ])
        }
        func g(_ x: Double) -> String { String(format: "%.4f G", x / 1e9) }
        return """
            \(model), input \(dims(t.inputShape))
            \(table.render())

            params \(Numbers.grouped(t.parameters))
            MACs   \(Numbers.grouped(t.macs)) (\(g(Double(t.macs))), conv + linear)
            FLOPs  \(Numbers.grouped(t.flops)) (\(g(Double(t.flops))))
            BOPs   \(Numbers.grouped(t.bops)) (\(g(Double(t.bops))))
            OPs    \(g(t.ops)) (FLOPs + BOPs/64)
            """
    }

    static func dims(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ",") + "]" }
}
