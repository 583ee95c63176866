import ArgumentParser

/// The `qtools` root command: names the tool and lists its subcommands, nothing else.
@main
struct QToolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qtools",
        abstract: "Inspect, convert, verify and export low-bit quantized CNN checkpoints (QTool).",
        discussion: """
            qtools reads PyTorch checkpoints (zip, legacy and tar formats), safetensors, NumPy
            and ONNX files without Python, runs QTool models in its own CPU engine, converts
            checkpoints and takes QTool training steps. Run `qtools help <command>` for details of each command.
            """,
        version: "0.1.0",
        subcommands: [
            InspectCommand.self, ConfigCommand.self, ConvertCommand.self, MappingCommand.self,
            RunCommand.self, TraceCommand.self, VerifyCommand.self, BenchCommand.self, TrainCommand.self,
        ]
    )

    static func main() {
        MemoryPolicy.apply()
        main(nil)
    }
}
