/// Evaluates the subset of bash that config files use, without running a shell.
///
/// Supported: `name=value` and `name+=value` assignments (several per line, left to right),
/// `export`/`readonly`/`declare`/`local` before assignments, single and double quotes
/// (both may span lines), backslash escapes and line continuations, `$name`, `${name}`,
/// `${name-word}`, `${name:-word}`, a leading `~` in a value, `;` separators, comments
/// (`#` at the start of a word) and blank lines. Unset variables expand to the empty string,
/// as in bash without `set -u`.
///
/// Refused with a ``ConfigError`` naming the line: commands (`echo`, `source`), control flow
/// (`if`, `for`, ...), command substitution (`$(...)`, backquotes), arithmetic, special
/// parameters (`$1`, `$@`, ...), pipes and redirections, arrays.
struct ShellEvaluator {
    private let bytes: [UInt8]
    private let file: String
    private var pos = 0
    private var line = 1
    /// Shell variables, with per-byte line provenance.
    private(set) var variables: [String: ShellText]
    /// The config line of each variable's last assignment.
    private(set) var assignedLine: [String: Int] = [:]

    init(text: String, file: String, variables: [String: ShellText]) {
        self.bytes = Array(text.utf8)
        self.file = file
        self.variables = variables
    }

    private struct Word {
        var raw: String
        var assignment: (name: String, append: Bool)?
        var value: ShellText
        var line: Int
        var quoted: Bool
    }

    private static let keywords: Set<String> = [
        "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
        "function", "select", "{", "}", "[[", "]]", "!", "time", "coproc",
    ]
    private static let declarationBuiltins: Set<String> = [
        "export", "readonly", "declare", "local", "typeset",
    ]

    /// Runs the whole fragment.
    mutating func run() throws {
        while pos < bytes.count {
            skipBlanks()
            guard pos < bytes.count else { break }
            switch bytes[pos] {
            case UInt8(ascii: "\n"):
                line += 1
                pos += 1
            case UInt8(ascii: ";"):
                pos += 1
            case UInt8(ascii: "#"):
                skipComment()
            default:
                try runSimpleCommand()
            }
        }
    }

    // MARK: - Commands

    private mutating func runSimpleCommand() throws {
        var words: [Word] = []
        scan: while pos < bytes.count {
            skipBlanks()
            guard pos < bytes.count else { break }
            switch bytes[pos] {
            case UInt8(ascii: "\n"), UInt8(ascii: ";"): break scan
            case UInt8(ascii: "#"):
                skipComment()
                break scan
            default: words.append(try parseWord())
            }
        }
        var index = 0
        while index < words.count, let target = words[index].assignment {
            assign(target, words[index])
            index += 1
        }
        guard index < words.count else { return }
        let command = words[index]
        if !command.quoted, Self.keywords.contains(command.raw) {
            throw ConfigError(
                .unsupportedShell, "shell keyword '\(command.raw)' is not supported",
                file: file, line: command.line,
                hint: "config files may only assign variables (name=value)")
        }
        if !command.quoted, Self.declarationBuiltins.contains(command.raw) {
            for word in words[(index + 1)...] {
                if let target = word.assignment {
                    assign(target, word)
                } else if !Self.isName(word.raw) {
                    throw ConfigError(
                        .unsupportedShell, "'\(command.raw) \(word.raw)' is not supported",
                        file: file, line: word.line)
                }
            }
            return
        }
        throw ConfigError(
            .unsupportedShell, "command '\(command.value.string)' is not supported",
            file: file, line: command.line,
            hint:
                "config files may only assign variables (name=value); a config is evaluated, not run"
        )
    }

    private mutating func assign(_ target: (name: String, append: Bool), _ word: Word) {
        if target.append {
            variables[target.name, default: ShellText()].append(word.value)
        } else {
            variables[target.name] = word.value
        }
        assignedLine[target.name] = word.line
    }

    // MARK: - Words

    private mutating func parseWord() throws -> Word {
        let start = pos
        let wordLine = line
        var value = ShellText()
        var quoted = false
        var assignment: (name: String, append: Bool)?
        if Self.isNameStart(bytes[pos]) {
            var end = pos + 1
            while end < bytes.count, Self.isNameChar(bytes[end]) { end += 1 }
            let name = String(decoding: bytes[pos..<end], as: UTF8.self)
            if end < bytes.count, bytes[end] == UInt8(ascii: "=") {
                assignment = (name, false)
                pos = end + 1
            } else if end + 1 < bytes.count, bytes[end] == UInt8(ascii: "+"),
                bytes[end + 1] == UInt8(ascii: "=")
            {
                assignment = (name, true)
                pos = end + 2
            }
        }
        expandTilde(into: &value)
        scan: while pos < bytes.count {
            let c = bytes[pos]
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: ";"),
                UInt8(ascii: "\r"):
                break scan  // CR is treated as a blank so CRLF files work (bash would keep it)
            case UInt8(ascii: "|"), UInt8(ascii: "&"), UInt8(ascii: "<"), UInt8(ascii: ">"),
                UInt8(ascii: "("), UInt8(ascii: ")"):
                throw ConfigError(
                    .unsupportedShell,
                    "shell operator '\(Character(Unicode.Scalar(c)))' is not supported",
                    file: file, line: line,
                    hint: "quote the value if the character is meant literally")
            case UInt8(ascii: "\\"):
                if pos + 1 < bytes.count {
                    if bytes[pos + 1] == UInt8(ascii: "\n") {
                        line += 1
                    } else {
                        value.append(bytes[pos + 1], line: line)
                    }
                    pos += 2
                } else {
                    pos += 1
                }
            case UInt8(ascii: "'"):
                quoted = true
                try parseSingleQuoted(into: &value)
            case UInt8(ascii: "\""):
                quoted = true
                try parseDoubleQuoted(into: &value)
            case UInt8(ascii: "$"):
                try expandDollar(into: &value)
            case UInt8(ascii: "`"):
                throw commandSubstitutionError()
            default:
                value.append(c, line: line)
                pos += 1
            }
        }
        let raw = String(decoding: bytes[start..<pos], as: UTF8.self)
        return Word(raw: raw, assignment: assignment, value: value, line: wordLine, quoted: quoted)
    }

    private mutating func expandTilde(into value: inout ShellText) {
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "~") else { return }
        let next = pos + 1 < bytes.count ? bytes[pos + 1] : UInt8(ascii: " ")
        guard
            next == UInt8(ascii: "/") || next == UInt8(ascii: " ") || next == UInt8(ascii: "\n")
                || next == UInt8(ascii: "\t") || next == UInt8(ascii: ";")
        else { return }
        value.append(variables["HOME"] ?? ShellText("~", line: line))
        pos += 1
    }

    private mutating func parseSingleQuoted(into value: inout ShellText) throws {
        let openLine = line
        pos += 1
        while pos < bytes.count, bytes[pos] != UInt8(ascii: "'") {
            value.append(bytes[pos], line: line)
            if bytes[pos] == UInt8(ascii: "\n") { line += 1 }
            pos += 1
        }
        guard pos < bytes.count else {
            throw ConfigError(
                .syntax, "unterminated single quote", file: file, line: openLine,
                hint: "the quote opened on this line is never closed")
        }
        pos += 1
    }

    private mutating func parseDoubleQuoted(into value: inout ShellText) throws {
        let openLine = line
        pos += 1
        while true {
            guard pos < bytes.count else {
                throw ConfigError(
                    .syntax, "unterminated double quote", file: file, line: openLine,
                    hint: "the quote opened on this line is never closed")
            }
            let c = bytes[pos]
            switch c {
            case UInt8(ascii: "\""):
                pos += 1
                return
            case UInt8(ascii: "\\"):
                let next = pos + 1 < bytes.count ? bytes[pos + 1] : 0
                if next == UInt8(ascii: "\n") {
                    line += 1
                    pos += 2
                } else if next == UInt8(ascii: "$") || next == UInt8(ascii: "`")
                    || next == UInt8(ascii: "\"") || next == UInt8(ascii: "\\")
                {
                    value.append(next, line: line)
                    pos += 2
                } else {
                    value.append(c, line: line)
                    pos += 1
                }
            case UInt8(ascii: "$"):
                try expandDollar(into: &value)
            case UInt8(ascii: "`"):
                throw commandSubstitutionError()
            default:
                value.append(c, line: line)
                if c == UInt8(ascii: "\n") { line += 1 }
                pos += 1
            }
        }
    }

    /// Expands the `$...` at `pos`. A `$` not followed by a name or `{` stays literal.
    private mutating func expandDollar(into value: inout ShellText) throws {
        let dollarLine = line
        pos += 1
        guard pos < bytes.count else {
            value.append(UInt8(ascii: "$"), line: dollarLine)
            return
        }
        let c = bytes[pos]
        if Self.isNameStart(c) {
            let name = readName()
            try append(variables[name], of: name, to: &value, line: dollarLine)
        } else if c == UInt8(ascii: "{") {
            try expandBraced(into: &value)
        } else if c == UInt8(ascii: "(") {
            throw ConfigError(
                .unsupportedShell, "command substitution or arithmetic '$(' is not supported",
                file: file, line: dollarLine)
        } else if (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
            || "@*#?$!-".utf8.contains(c)
        {
            throw ConfigError(
                .unsupportedShell,
                "special parameter '$\(Character(Unicode.Scalar(c)))' is not supported",
                file: file, line: dollarLine)
        } else if c == UInt8(ascii: "'") {
            throw ConfigError(
                .unsupportedShell, "ANSI-C quoting $'...' is not supported",
                file: file, line: dollarLine)
        } else {
            value.append(UInt8(ascii: "$"), line: dollarLine)
        }
    }

    /// `${name}`, `${name-word}`, `${name:-word}`; `pos` is at `{`.
    private mutating func expandBraced(into value: inout ShellText) throws {
        let openLine = line
        pos += 1
        guard pos < bytes.count, Self.isNameStart(bytes[pos]) else {
            throw ConfigError(.syntax, "bad substitution '${'", file: file, line: openLine)
        }
        let name = readName()
        guard pos < bytes.count else {
            throw ConfigError(.syntax, "unterminated '${\(name)'", file: file, line: openLine)
        }
        if bytes[pos] == UInt8(ascii: "}") {
            pos += 1
            try append(variables[name], of: name, to: &value, line: openLine)
            return
        }
        var useDefaultIfEmpty = false
        if bytes[pos] == UInt8(ascii: ":"), pos + 1 < bytes.count,
            bytes[pos + 1] == UInt8(ascii: "-")
        {
            useDefaultIfEmpty = true
            pos += 2
        } else if bytes[pos] == UInt8(ascii: "-") {
            pos += 1
        } else {
            throw ConfigError(
                .unsupportedShell,
                "parameter expansion '${\(name)\(Character(Unicode.Scalar(bytes[pos])))...}' is not supported",
                file: file, line: openLine, hint: "only ${name}, ${name-word} and ${name:-word} are"
            )
        }
        var word = ShellText()
        while true {
            guard pos < bytes.count else {
                throw ConfigError(.syntax, "unterminated '${\(name)'", file: file, line: openLine)
            }
            let c = bytes[pos]
            if c == UInt8(ascii: "}") {
                pos += 1
                break
            } else if c == UInt8(ascii: "$") {
                try expandDollar(into: &word)
            } else if c == UInt8(ascii: "'") {
                try parseSingleQuoted(into: &word)
            } else if c == UInt8(ascii: "\"") {
                try parseDoubleQuoted(into: &word)
            } else if c == UInt8(ascii: "\\"), pos + 1 < bytes.count {
                word.append(bytes[pos + 1], line: line)
                pos += 2
            } else {
                word.append(c, line: line)
                if c == UInt8(ascii: "\n") { line += 1 }
                pos += 1
            }
        }
        if let current = variables[name], !(useDefaultIfEmpty && current.isEmpty) {
            try append(current, of: name, to: &value, line: openLine)
        } else {
            try append(word, of: name, to: &value, line: openLine)
        }
    }

    /// The most bytes one word may grow to. Real configs stay under a few KB; a file that
    /// doubles `$options` on each line (`options="$options $options"`) would otherwise grow
    /// exponentially, in time and memory, where bash merely grows.
    static let maxWordBytes = 1 << 20

    /// Appends the expansion of `$name` to `value`.
    /// - Throws: ``ConfigError`` `.badValue` naming the line when the word would exceed
    ///   ``maxWordBytes``.
    private func append(_ text: ShellText?, of name: String, to value: inout ShellText, line: Int) throws {
        guard let text else { return }
        guard value.count + text.count <= Self.maxWordBytes else {
            throw ConfigError(
                .badValue, "expanding $\(name) makes a word of more than \(Self.maxWordBytes >> 20) MiB",
                file: file, line: line,
                hint: "a variable that includes itself more than once doubles with every such line")
        }
        value.append(text)
    }

    // MARK: - Lexing helpers

    private mutating func readName() -> String {
        let start = pos
        while pos < bytes.count, Self.isNameChar(bytes[pos]) { pos += 1 }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    private mutating func skipBlanks() {
        while pos < bytes.count {
            if bytes[pos] == UInt8(ascii: " ") || bytes[pos] == UInt8(ascii: "\t")
                || bytes[pos] == UInt8(ascii: "\r")
            {
                pos += 1
            } else if bytes[pos] == UInt8(ascii: "\\"), pos + 1 < bytes.count,
                bytes[pos + 1] == UInt8(ascii: "\n")
            {
                pos += 2
                line += 1
            } else {
                return
            }
        }
    }

    private mutating func skipComment() {
        while pos < bytes.count, bytes[pos] != UInt8(ascii: "\n") { pos += 1 }
    }

    static func isNameStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
            || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || c == UInt8(ascii: "_")
    }

    static func isNameChar(_ c: UInt8) -> Bool {
        isNameStart(c) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    static func isName(_ s: String) -> Bool {
        guard let first = s.utf8.first, isNameStart(first) else { return false }
        return s.utf8.allSatisfy(isNameChar)
    }

    /// Backquotes would run a command; a config file evaluated without a shell cannot.
    private func commandSubstitutionError() -> ConfigError {
        ConfigError(
            .unsupportedShell, "command substitution (`...`) is not supported", file: file, line: line)
    }
}
