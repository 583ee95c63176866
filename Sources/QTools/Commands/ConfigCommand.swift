import ArgumentParser
import Formats
import Foundation
import QToolConfig

/// `qtools config`: work with QTool config files (the bash fragments train.sh sources).
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Read QTool config files the way train.sh does, without a shell.",
        subcommands: [ConfigShowCommand.self]
    )
}

/// `qtools config show CONFIG [--json] [--all] [-- overrides...]`.
///
/// Exit status: 0 on success; 65 when the config or an override is malformed (shell the
/// evaluator refuses, unknown or ambiguous option, bad value); 66 when the file is missing or
/// unreadable. The error is printed once, as `qtools: error: <file>:<line>: <message>`.
struct ConfigShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the options main.py would receive from a config file.",
        discussion: """
            The config is evaluated like `bash train.sh CONFIG` would source it: environment \
            variables first (FASTDIR defaults to /workspace; DELAY feeds --delay), then \
            train.sh's defaults (dataset=imagenet, model=unknow, epochs=0, train_batch=20, ...), \
            then the file. Only variable assignments, quoting and $var/${var} expansion are \
            evaluated; anything else (commands, if, $(...)) is an error naming the line. \
            The resulting argument vector is parsed with main.py's argparse rules: last \
            occurrence wins, unique prefixes of long options are accepted (--lr_custom), \
            and --keyword / --lr_custom_step are split on commas.

            Options after `--` are appended as if typed after the config's own:
              qtools config show config.x -- --width_alpha 0.5 --fm_bit 4

            The text listing shows every option that was set or differs from its default, \
            grouped (data, model, fm_/wt_/ot_ quantizers, optimizer, schedule, ...). Values that \
            differ from the default are marked '*' with the default and where they were set. \
            Unknown --keyword words are reported as warnings on stderr (QTool ignores them).
            """
    )

    @Argument(help: "The config file, e.g. config.lsq.eval.imagenet.2bit.torch-resnet18.")
    var config: String

    @Flag(
        help:
            "Print one JSON document (sorted keys): argv, every option with value, default, source and line, derived values, warnings."
    )
    var json = false

    @Flag(help: "List every option, including those never set.")
    var all = false

    @Argument(
        parsing: .allUnrecognized,
        help: "Options applied after the config, as main.py options (after `--` or not).")
    var givenOverrides: [String] = []

    /// The QTool overrides (see ``QToolOverrides``).
    var overrides: [String] { QToolOverrides.normalized(givenOverrides) }

    func run() throws {
        let report: ConfigReport
        do {
            let file = try ConfigFile(
                contentsOf: config, environment: ProcessInfo.processInfo.environment)
            let options = try QToolOptions(config: file).applying(arguments: overrides)
            report = ConfigReport(options, config: config)
        } catch let error as ConfigError {
            Self.printToStandardError("qtools: error: \(error)")
            throw ExitCode(error.kind == .unreadable ? 66 : 65)
        }
        for warning in report.warnings { Self.printToStandardError("qtools: warning: \(warning)") }
        print(json ? try report.json() : report.text(showAll: all, includeWarnings: false))
    }

    static func printToStandardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
