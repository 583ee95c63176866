/// Parses argument vectors with Python 3.11 argparse semantics over ``QToolOptions/table``.
///
/// - Last occurrence wins.
/// - `--name=value` and, for one-letter options, `-j3` / `-j=3`; flags combine (`-er` = `-e -r`).
/// - Any unambiguous prefix of a long option is accepted (`--lr_custom` → `--lr_custom_step`);
///   an exact match always wins (`--lr` is not ambiguous with `--lr_policy`). A prefix matching
///   several option strings is an error listing them, as argparse counts aliases separately.
/// - Words that look like negative numbers (`-1`, `-.5`) are values, other words starting with
///   `-` are options, so `--wd -1e-4` fails like it does in argparse ("expected one argument").
/// - `--` ends option parsing; main.py has no positional arguments, so anything positional is
///   an error.
/// - Post-processing of §3.3 runs after the whole vector: comma lists are split and stripped,
///   `lr_custom_step` becomes ints.
enum OptionParser {
    enum Resolution {
        case positional
        case match(OptionSpec, flag: String, explicit: String?)
        case ambiguous([String])
        case unknown
    }

    /// argparse `_parse_optional`.
    static func resolve(_ text: String) -> Resolution {
        guard text.hasPrefix("-") else { return .positional }
        if let spec = QToolOptions.specsByFlag[text] {
            return .match(spec, flag: text, explicit: nil)
        }
        if text.count == 1 { return .positional }
        if let eq = text.firstIndex(of: "=") {
            let flag = String(text[..<eq])
            if let spec = QToolOptions.specsByFlag[flag] {
                return .match(spec, flag: flag, explicit: String(text[text.index(after: eq)...]))
            }
        }
        let tuples = optionTuples(text)
        if tuples.count > 1 { return .ambiguous(tuples.map(\.flag)) }
        if let only = tuples.first {
            return .match(only.spec, flag: only.flag, explicit: only.explicit)
        }
        if isNegativeNumber(text) || text.contains(" ") { return .positional }
        return .unknown
    }

    /// argparse `_get_option_tuples` (prefix matching).
    private static func optionTuples(
        _ text: String
    ) -> [(
        spec: OptionSpec, flag: String, explicit: String?
    )] {
        var result: [(spec: OptionSpec, flag: String, explicit: String?)] = []
        if text.hasPrefix("--") {
            var prefix = text
            var explicit: String?
            if let eq = text.firstIndex(of: "=") {
                prefix = String(text[..<eq])
                explicit = String(text[text.index(after: eq)...])
            }
            for (flag, spec) in QToolOptions.optionStrings where flag.hasPrefix(prefix) {
                result.append((spec, flag, explicit))
            }
        } else {
            let short = String(text.prefix(2))
            let shortExplicit = String(text.dropFirst(2))
            for (flag, spec) in QToolOptions.optionStrings {
                if flag == short {
                    result.append((spec, flag, shortExplicit))
                } else if flag.hasPrefix(text) {
                    result.append((spec, flag, nil))
                }
            }
        }
        return result
    }

    /// `^-\d+$|^-\d*\.\d+$`.
    static func isNegativeNumber(_ text: String) -> Bool {
        let body = text.utf8.dropFirst()
        guard text.hasPrefix("-"), !body.isEmpty else { return false }
        let isDigit = { (c: UInt8) in c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        if body.allSatisfy(isDigit) { return true }
        guard let dot = body.firstIndex(of: UInt8(ascii: ".")) else { return false }
        let after = body[body.index(after: dot)...]
        return body[..<dot].allSatisfy(isDigit) && !after.isEmpty && after.allSatisfy(isDigit)
    }

    /// Parses `arguments` on top of `values`, recording each option's origin.
    static func parse(
        _ arguments: [SourcedArgument], values: inout [String: OptionValue],
        origins: inout [String: ArgumentOrigin]
    ) throws {
        var resolutions: [Resolution] = []
        var seenDoubleDash = false
        for argument in arguments {
            if seenDoubleDash {
                resolutions.append(.positional)
            } else if argument.text == "--" {
                seenDoubleDash = true
                resolutions.append(.positional)
            } else {
                resolutions.append(resolve(argument.text))
            }
        }
        var pendingLists: [String: (raw: String, origin: ArgumentOrigin)] = [:]
        var index = 0
        var doubleDashSkipped = false
        while index < arguments.count {
            let argument = arguments[index]
            switch resolutions[index] {
            case .positional:
                if argument.text == "--" && !doubleDashSkipped {
                    doubleDashSkipped = true
                    index += 1
                    continue
                }
                throw ConfigError(
                    .unknownOption, "unrecognized argument '\(argument.text)'", at: argument.origin,
                    hint: strayHint(arguments, resolutions, before: index))
            case .unknown:
                throw ConfigError(
                    .unknownOption, "unrecognized option '\(argument.text)'", at: argument.origin,
                    hint: suggestion(for: argument.text).map { "did you mean '\($0)'?" })
            case .ambiguous(let flags):
                throw ConfigError(
                    .ambiguousOption,
                    "ambiguous option: \(argument.text) could match \(flags.joined(separator: ", "))",
                    at: argument.origin, hint: "spell the option out in full")
            case .match(var spec, var flag, var explicit):
                index += 1
                while spec.kind.isFlag {
                    guard case .flag(let stores) = spec.kind else { break }
                    values[spec.dest] = .bool(stores)
                    origins[spec.dest] = argument.origin
                    guard let rest = explicit else { break }
                    // `-er` = `-e -r`: only for one-letter options with a non-empty remainder.
                    guard !flag.hasPrefix("--"), let first = rest.first,
                        let next = QToolOptions.specsByFlag["-\(first)"]
                    else {
                        throw ConfigError(
                            .badValue,
                            "argument \(spec.displayName): ignored explicit argument '\(rest)'",
                            at: argument.origin, hint: "\(flag) is a flag and takes no value")
                    }
                    spec = next
                    flag = "-\(first)"
                    explicit = rest.count > 1 ? String(rest.dropFirst()) : nil
                }
                if spec.kind.isFlag { continue }
                var words: [SourcedArgument] = []
                if let explicit {
                    words = [SourcedArgument(explicit, origin: argument.origin)]
                } else {
                    while index < arguments.count, case .positional = resolutions[index],
                        arguments[index].text != "--" || doubleDashSkipped
                    {
                        words.append(arguments[index])
                        index += 1
                        if spec.kind != .intArray { break }
                    }
                }
                guard !words.isEmpty else {
                    let expected = spec.kind == .intArray ? "at least one argument" : "one argument"
                    throw ConfigError(
                        .missingValue, "argument \(spec.displayName): expected \(expected)",
                        at: argument.origin)
                }
                switch spec.kind {
                case .commaList, .commaIntList:
                    pendingLists[spec.dest] = (words[0].text, words[0].origin)
                default:
                    values[spec.dest] = try convert(words, for: spec)
                }
                origins[spec.dest] = argument.origin
            }
        }
        for (dest, pending) in pendingLists {
            guard let spec = QToolOptions.spec(dest) else { continue }
            values[dest] = try postProcess(pending.raw, for: spec, origin: pending.origin)
        }
    }

    // MARK: - Values

    private static func convert(
        _ words: [SourcedArgument], for spec: OptionSpec
    ) throws
        -> OptionValue
    {
        let word = words[0]
        func invalid(_ type: String, _ text: String, at origin: ArgumentOrigin) -> ConfigError {
            ConfigError(
                .badValue, "argument \(spec.displayName): invalid \(type) value: '\(text)'",
                at: origin)
        }
        switch spec.kind {
        case .int:
            guard let v = PythonNumber.int(word.text) else {
                throw invalid("int", word.text, at: word.origin)
            }
            return .int(v)
        case .float:
            guard let v = PythonNumber.float(word.text) else {
                throw invalid("float", word.text, at: word.origin)
            }
            return .float(v)
        case .string:
            return .string(word.text)
        case .choice(let choices):
            guard choices.contains(word.text) else {
                let listed = choices.map { "'\($0)'" }.joined(separator: ", ")
                throw ConfigError(
                    .badValue,
                    "argument \(spec.displayName): invalid choice: '\(word.text)' (choose from \(listed))",
                    at: word.origin,
                    hint: EditDistance.closest(to: word.text, in: choices).map {
                        "did you mean '\($0)'?"
                    })
            }
            return .string(word.text)
        case .intArray:
            return .ints(
                try words.map {
                    guard let v = PythonNumber.int($0.text) else {
                        throw invalid("int", $0.text, at: $0.origin)
                    }
                    return v
                })
        case .runtimeDictionary:
            throw ConfigError(
                .badValue,
                "argument \(spec.displayName): runtime scratch space, cannot be set from a config or command line",
                at: word.origin)
        case .flag, .commaList, .commaIntList:
            return .string(word.text)  // not reached: handled by the caller
        }
    }

    /// §3.3: `s.split(',')` with each item stripped; `lr_custom_step` items through `int()`.
    static func postProcess(
        _ raw: String, for spec: OptionSpec, origin: ArgumentOrigin
    ) throws
        -> OptionValue
    {
        let items = raw.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if spec.kind == .commaIntList {
            return .ints(
                try items.map { item in
                    guard let v = PythonNumber.int(item) else {
                        throw ConfigError(
                            .badValue,
                            "argument \(spec.displayName): invalid int '\(item)' in list '\(raw)'",
                            at: origin, hint: "expected comma-separated integers such as 30,40")
                    }
                    return v
                })
        }
        return .strings(items.map(PythonNumber.strip))
    }

    // MARK: - Hints

    /// The closest option string, if it is close enough to be a plausible typo.
    static func suggestion(for text: String) -> String? {
        let name = text.split(separator: "=", maxSplits: 1).first.map(String.init) ?? text
        return EditDistance.closest(to: name, in: QToolOptions.optionStrings.map(\.flag))
    }

    private static func strayHint(
        _ arguments: [SourcedArgument], _ resolutions: [Resolution], before index: Int
    ) -> String? {
        guard index > 0, case .match(let spec, let flag, _) = resolutions[index - 1],
            spec.kind.isFlag
        else { return "main.py takes no positional arguments" }
        return "\(flag) is a flag and takes no value"
    }
}
