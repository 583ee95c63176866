/// Where one word of an argument vector came from.
public enum ArgumentOrigin: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Added by train.sh itself from one of its built-in defaults (e.g. `--base 1`).
    case trainScript
    /// Written on `line` (1-based) of config `file`.
    case configFile(file: String, line: Int)
    /// Given as an override after the config (`qtools config show X -- --lr 0.1`).
    case commandLine

    /// `train.sh`, `config.x:12` or `command line`.
    public var description: String {
        switch self {
        case .trainScript: return "train.sh"
        case .configFile(let file, let line): return "\(file):\(line)"
        case .commandLine: return "command line"
        }
    }
}

/// One word of the argument vector passed to main.py, with its origin.
public struct SourcedArgument: Equatable, Hashable, Sendable {
    /// The word, after shell expansion and word splitting.
    public var text: String
    /// Where it came from.
    public var origin: ArgumentOrigin

    /// Creates a word.
    public init(_ text: String, origin: ArgumentOrigin) {
        self.text = text
        self.origin = origin
    }
}

extension Array where Element == SourcedArgument {
    /// Plain command-line words, all marked `.commandLine`.
    public static func commandLine(_ words: [String]) -> [SourcedArgument] {
        words.map { SourcedArgument($0, origin: .commandLine) }
    }
}
