#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A QTool config file evaluated the way `train.sh` sources it, and the argument vector
/// `train.sh` then passes to `main.py`.
///
/// The file is a bash fragment (see ``ShellEvaluator`` for the supported subset). Evaluation
/// follows train.sh: environment variables first, `FASTDIR` defaulting to `/workspace`, then
/// train.sh's built-in defaults (``trainScriptDefaults``), then the file. The result is
///
/// ```
/// --dataset $dataset --root $root --model $model --base $base --epochs $epochs
/// -b $train_batch -v $val_batch --case $case --keyword $keyword --delay $DELAY-or-0 $options
/// ```
///
/// with every expansion unquoted, i.e. word-split on blanks (so an empty variable drops out,
/// and `pretrained='x.pth '` loses its trailing space), exactly as bash does. Each word keeps
/// the config line it came from.
public struct ConfigFile: Sendable {
    /// train.sh's `FASTDIR` fallback.
    public static let defaultFastDir = "/workspace"

    /// The variables train.sh sets before sourcing the config (train.sh lines 20-32).
    /// `$FASTDIR` in `root` is expanded when the defaults are set.
    public static let trainScriptDefaults: [(name: String, value: String)] = [
        ("script", "main.py"), ("dataset", "imagenet"), ("root", "$FASTDIR/data/imagenet"),
        ("model", "unknow"), ("base", "1"), ("epochs", "0"), ("train_batch", "20"),
        ("val_batch", "20"), ("case", "fake"), ("keyword", ","), ("options", ""),
        ("keybase", ""), ("pretrain", "none"),
    ]

    /// The path given (used in messages).
    public let path: String
    /// Every shell variable after evaluation, environment included.
    public let variables: [String: String]
    /// The config line of each variable's last assignment in the file.
    public let assignedLines: [String: Int]
    /// The program train.sh would run (`script`, default `main.py`).
    public var script: String { variables["script"] ?? "main.py" }
    /// The words train.sh passes to the program, with their origins.
    public let arguments: [SourcedArgument]
    /// The words train.sh passes to the program.
    public var argumentVector: [String] { arguments.map(\.text) }

    /// Reads and evaluates the file at `path`.
    ///
    /// - Parameter environment: the process environment train.sh would inherit (`FASTDIR`,
    ///   `DELAY`, `HOME`, ...). Defaults to none, which gives `FASTDIR=/workspace`.
    /// - Throws: ``ConfigError`` `.unreadable` if the file cannot be read; other kinds, with the
    ///   line, for shell the evaluator refuses.
    public init(contentsOf path: String, environment: [String: String] = [:]) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError(
                .unreadable, exists ? "cannot read config file" : "no such config file",
                file: path)
        }
        try self.init(
            text: String(decoding: data, as: UTF8.self), path: path, environment: environment)
    }

    /// Evaluates config text; `path` only names it in messages and origins.
    public init(text: String, path: String, environment: [String: String] = [:]) throws {
        if text.unicodeScalars.first == "\u{FEFF}" {
            // Invisible in messages, and a shell reads it as part of the first command.
            throw ConfigError(
                .syntax, "the file starts with a UTF-8 byte-order mark (U+FEFF), which a shell reads as part of the first line",
                file: path, line: 1, hint: "save it without the mark (e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' \(path))")
        }
        var shellVariables: [String: ShellText] = [:]
        for (name, value) in environment { shellVariables[name] = ShellText(value, line: 0) }
        if shellVariables["FASTDIR"]?.isEmpty ?? true {
            shellVariables["FASTDIR"] = ShellText(Self.defaultFastDir, line: 0)
        }
        for (name, value) in Self.trainScriptDefaults {
            let fastDir = shellVariables["FASTDIR"]?.string ?? Self.defaultFastDir
            let expanded = value.replacing("$FASTDIR", with: fastDir)
            shellVariables[name] = ShellText(expanded, line: 0)
        }
        var evaluator = ShellEvaluator(text: text, file: path, variables: shellVariables)
        try evaluator.run()

        self.path = path
        self.variables = evaluator.variables.mapValues(\.string)
        self.assignedLines = evaluator.assignedLine
        self.arguments = Self.trainScriptArguments(
            evaluator.variables, assignedLines: evaluator.assignedLine, path: path)
    }

    private static func trainScriptArguments(
        _ variables: [String: ShellText], assignedLines: [String: Int], path: String
    ) -> [SourcedArgument] {
        func origin(_ name: String) -> ArgumentOrigin {
            assignedLines[name].map { .configFile(file: path, line: $0) } ?? .trainScript
        }
        func words(_ name: String) -> [SourcedArgument] {
            (variables[name] ?? ShellText()).fields().map {
                SourcedArgument($0.text, origin: origin(name))
            }
        }
        var result: [SourcedArgument] = []
        let fixed: [(flag: String, variable: String)] = [
            ("--dataset", "dataset"), ("--root", "root"), ("--model", "model"), ("--base", "base"),
            ("--epochs", "epochs"), ("-b", "train_batch"), ("-v", "val_batch"), ("--case", "case"),
            ("--keyword", "keyword"),
        ]
        for (flag, variable) in fixed {
            result.append(SourcedArgument(flag, origin: origin(variable)))
            result += words(variable)
        }
        // delay = $DELAY if set (non-empty), else 0.
        result.append(SourcedArgument("--delay", origin: origin("DELAY")))
        if let delay = variables["DELAY"], !delay.fields().isEmpty {
            result += words("DELAY")
        } else {
            result.append(SourcedArgument("0", origin: .trainScript))
        }
        for field in (variables["options"] ?? ShellText()).fields() {
            let origin: ArgumentOrigin =
                field.line > 0 ? .configFile(file: path, line: field.line) : .trainScript
            result.append(SourcedArgument(field.text, origin: origin))
        }
        return result
    }
}
