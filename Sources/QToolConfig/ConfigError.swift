/// The one error type of config-file and option handling: what went wrong, and where.
///
/// `file` and `line` locate the offending text: a config file line, or `file == nil` with
/// ``origin`` `.commandLine` for an override. The description reads like a compiler diagnostic:
/// `config.x:12: unrecognized option '--wdd'; did you mean '--wd'?`
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The category of failure; the CLI maps `.unreadable` to exit status 66, the rest to 65.
    public enum Kind: String, Equatable, Sendable {
        /// The config file does not exist or cannot be read.
        case unreadable
        /// Shell syntax error (unterminated quote, bad `${...}`).
        case syntax
        /// Valid shell that this evaluator deliberately does not run (`if`, `$(...)`, commands).
        case unsupportedShell
        /// An option string that matches no option, or a stray positional argument.
        case unknownOption
        /// A prefix that matches more than one option.
        case ambiguousOption
        /// An option that needs a value got none.
        case missingValue
        /// A value of the wrong type or outside the option's choices.
        case badValue
    }

    /// The category of failure.
    public var kind: Kind
    /// The message, without location.
    public var message: String
    /// The config file path, when the problem is in a file.
    public var file: String?
    /// The 1-based line in `file`.
    public var line: Int?
    /// A suggestion (`did you mean '--wd'?`), when one is obvious.
    public var hint: String?
    /// True when the offending text came from command-line overrides.
    public var fromCommandLine: Bool

    /// Creates an error.
    public init(
        _ kind: Kind, _ message: String, file: String? = nil, line: Int? = nil,
        hint: String? = nil, fromCommandLine: Bool = false
    ) {
        self.kind = kind
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint
        self.fromCommandLine = fromCommandLine
    }

    /// Creates an error located where `origin` says the text came from.
    init(_ kind: Kind, _ message: String, at origin: ArgumentOrigin, hint: String? = nil) {
        switch origin {
        case .configFile(let file, let line):
            self.init(kind, message, file: file, line: line, hint: hint)
        case .commandLine:
            self.init(kind, message, hint: hint, fromCommandLine: true)
        case .trainScript:
            self.init(kind, message + " (in the arguments train.sh adds)", hint: hint)
        }
    }

    /// `file:line: message; hint`.
    public var description: String {
        var place = ""
        if let file {
            place = file
            if let line { place += ":\(line)" }
        } else if fromCommandLine {
            place = "command line"
        }
        var text = place.isEmpty ? message : "\(place): \(message)"
        if let hint { text += "; \(hint)" }
        return text
    }
}
