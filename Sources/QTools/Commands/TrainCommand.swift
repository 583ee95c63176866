import ArgumentParser
import Formats
import Foundation
import Tensors
import Train

/// `qtools train`: QTool training in the native engine. Today: one exact step.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train QTool models natively: `qtools train CONFIG` (the training program) or `qtools train step` (one step).",
        subcommands: [TrainRunCommand.self, TrainStepCommand.self],
        defaultSubcommand: TrainRunCommand.self)
}

/// `qtools train step CKPT --config CFG --x X.npy --y Y.npy -o OUT.pth`.
struct TrainStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Take one QTool training step on one batch and write the state dict after it.",
        discussion: """
            Builds the model of the QTool config (--config, or the one recorded in the \
            checkpoint) on the checkpoint's state dict and takes exactly the step QTool's \
            main.py takes at epoch 0 on this batch: the model in training mode (batch norm on \
            batch statistics, running statistics updated), cross entropy (label-smooth keyword \
            honoured), the backward pass, and SGD with QTool's per-parameter weight decay \
            (--wd, --decay_small, --custom_decay_list), momentum, Nesterov and the schedule's \
            first learning rate. The state dict right after optimizer.step() is written as a \
            torch zip file that torch.load(weights_only=True) reads. QTool options after the \
            arguments override the config.

            Full-precision layers train today; a quantized layer is refused naming it \
            (training-mode quantizers come next).

            Examples:
              qtools train step model.pth --config config.txt --x x.npy --y y.npy -o after.pth
              qtools train step model.pth --config config.txt --x x.npy --y y.npy -o after.pth --json | jq .loss
            """)

    @Argument(help: "The checkpoint to start from.")
    var checkpoint: String

    @Option(name: .customLong("x"), help: "The batch: float32 NCHW images as .npy.")
    var images: String

    @Option(name: .customLong("y"), help: "The labels: one integer class per image as .npy.")
    var labels: String

    @Option(name: [.short, .customLong("output")], help: "Write the state dict after the step here (.pth).")
    var output: String

    @Option(name: .long, help: "Also write the train-mode logits [N, classes] as .npy.")
    var logits: String?

    @Flag(name: .long, help: "Replace existing output files.")
    var force = false

    @OptionGroup var out: OutputOptions

    @OptionGroup var modelOptions: ModelOptions
    var config: String? { modelOptions.config }
    var overrides: [String] { modelOptions.overrides }

    func run() throws {
        MemoryPolicy.training()
        try ExitCodes.reporting {
            // The outputs are checked (and their temporary files created) before any work.
            let reads: [String?] = [checkpoint, images, labels, config]
            let stateSink = try OutputFile(path: output, overwrite: force, reading: reads)
            let logitsSink = try logits.map { try OutputFile(path: $0, overwrite: force, reading: reads + [output]) }
            let (options, stateDict) = try ModelLoader.checkpoint(checkpoint, config: config, overrides: overrides)
            let x = try ModelIO.imageBatch(ModelIO.read(images))
            let y = try ModelIO.read(labels)
            guard y.shape.count == 1, !y.dtype.isFloatingPoint, !y.dtype.isComplex, y.dtype != .bool else {
                throw UsageError("\(labels): labels must be a 1-D integer array; got \(y.dtype.rawValue) \(y.shape)")
            }
            let classes = y.doubles().map { Int($0) }
            let step = try TrainStep(options: options, stateDict: stateDict)
            let r = try step.run(x: x, labels: classes)
            try Self.writeStateDict(r.stateDict, to: stateSink)
            if let logitsSink { try ModelIO.write(r.logits, to: logitsSink) }
            let report = TrainStepReport(
                model: options.model, batch: x.shape, loss: r.loss, learningRate: r.learningRate, output: output)
            Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        }
    }

    /// Writes a bare state dict (an OrderedDict of tensors, as `model.state_dict()`) as torch zip.
    static func writeStateDict(_ entries: [(name: String, tensor: Tensor)], to file: OutputFile) throws {
        let dict = CheckpointDict(
            entries.enumerated().map { i, e in (.string(e.name), .tensor(StoredTensor(e.tensor, key: String(i)))) },
            kind: .orderedDict)
        try TorchZipWriter.write(Checkpoint(format: .torchZip, root: .dict(dict)), to: file)
        try file.commit()
    }
}

/// The result of `qtools train step` (the `--json` document).
struct TrainStepReport: Encodable {
    var model: String
    var batch: [Int]
    var loss: Float
    var learningRate: Double
    var output: String

    enum CodingKeys: String, CodingKey { case model, batch, loss, learningRate = "learning_rate", output }

    var text: String {
        "model \(model), batch \(batch): loss \(loss), learning rate \(learningRate); state dict after the step written to \(output)"
    }
}
