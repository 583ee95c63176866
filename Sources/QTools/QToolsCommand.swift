import ArgumentParser
import Foundation

/// The `qtools` root command: names the tool and lists its subcommands, nothing else.
@main
struct QToolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qtools",
        abstract: "Inspect, convert, verify and export low-bit quantized CNN checkpoints (QTool).",
        discussion: """
            qtools reads PyTorch checkpoints (zip, legacy and tar formats), safetensors, NumPy \
            and ONNX files without Python, runs QTool models in its own CPU engine, converts \
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
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `qtools help NAME` for a command that does not exist is an error, not the overview.
        if arguments.first == "help", arguments.count > 1 {
            let names = configuration.subcommands.map { $0.configuration.commandName ?? "" }
            if !names.contains(arguments[1]) {
                Terminal.writeErr("qtools: error: no command '\(arguments[1])'; commands: \(names.joined(separator: ", "))\n")
                Foundation.exit(ExitCodes.usage)
            }
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            // Parser and validation errors as every other error: `qtools: error: ...`.
            let message = fullMessage(for: error)
            if message.hasPrefix("Error: ") {
                Terminal.writeErr("qtools: error: " + message.dropFirst("Error: ".count) + "\n")
                Foundation.exit(exitCode(for: error).rawValue)
            }
            exit(withError: error)
        }
    }
}
