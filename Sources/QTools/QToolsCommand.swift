import ArgumentParser

/// The `qtools` root command: names the tool and lists its subcommands, nothing else.
@main
struct QToolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qtools",
        abstract: "Inspect, convert, verify and export low-bit quantized CNN checkpoints (QTool).",
        discussion: """
            qtools reads PyTorch checkpoints (zip and legacy formats), safetensors and NumPy
            files without Python. Run `qtools help <command>` for details of each command.
            """,
        version: "0.1.0",
        subcommands: [
            InspectCommand.self, ConfigCommand.self, RunCommand.self, TraceCommand.self,
            VerifyCommand.self, BenchCommand.self,
        ]
    )
}
