/// Renames state-dict keys exactly, in a fixed order of steps:
///
/// 1. ``stripPrefixes``, in order: a key starting with the prefix loses it (others are kept);
/// 2. ``mapping``: a key *equal* to a source name becomes its target (never a substring match);
/// 3. ``regexRules``, in order, each on the result of the previous one: every match is replaced,
///    as Python's `re.sub`;
/// 4. ``addPrefix``: prepended to every key.
///
/// Unlike QTool's `import_state_dict` (seed-reference §12.4), an old name is never kept beside
/// its new name, and a rule never touches a key it does not match exactly (`bn1.weight` does not
/// rename `layer1.0.bn1.weight`). Two keys that end with one name are an error.
public struct KeyRenamer: Sendable {
    /// Prefixes removed from the keys that start with them (e.g. `module.`).
    public var stripPrefixes: [String]
    /// Exact source → target names (mapping files).
    public var mapping: KeyMapping?
    /// Regular-expression rewrites.
    public var regexRules: [RegexRename]
    /// Prefix added to every key.
    public var addPrefix: String?

    /// Creates a renamer; with no arguments it renames nothing.
    public init(
        stripPrefixes: [String] = [], mapping: KeyMapping? = nil, regexRules: [RegexRename] = [],
        addPrefix: String? = nil
    ) {
        self.stripPrefixes = stripPrefixes
        self.mapping = mapping
        self.regexRules = regexRules
        self.addPrefix = addPrefix
    }

    /// True when no step is configured.
    public var isIdentity: Bool {
        stripPrefixes.isEmpty && mapping == nil && regexRules.isEmpty && (addPrefix ?? "").isEmpty
    }

    /// The outcome of renaming a key list.
    public struct Result: Sendable, Equatable {
        /// The new name of each key, in input order.
        public var names: [String]
        /// Keys whose name changed, in input order.
        public var renamed: [KeyRename]
        /// Keys no step changed.
        public var unchanged: [String]
        /// Steps that matched no key (`strip-prefix module.`, `map a.txt:3 bn1.x`, `rename /re/`).
        public var unusedRules: [String]
    }

    /// Renames `keys`.
    /// - Throws: ``ConversionError`` `.collision` naming every clash (each new name with all its
    ///   sources), or `.usage` for a replacement that names a group the regex lacks.
    public func rename(_ keys: [String]) throws(ConversionError) -> Result {
        var names = keys
        var rules = [[String]](repeating: [], count: keys.count)
        var unused: [String] = []
        for prefix in stripPrefixes where !prefix.isEmpty {
            var used = false
            for i in names.indices where names[i].hasPrefix(prefix) {
                names[i].removeFirst(prefix.count)
                rules[i].append("strip-prefix")
                used = true
            }
            if !used { unused.append("strip-prefix \(prefix)") }
        }
        if let mapping {
            var matched = Set<String>()
            for i in names.indices {
                if let t = mapping.target(of: names[i]) {
                    matched.insert(names[i])
                    if t != names[i] { rules[i].append("mapping") }
                    names[i] = t
                }
            }
            for (f, _) in mapping.pairs where !matched.contains(f) { unused.append("mapping \(f)") }
        }
        for rule in regexRules {
            let regex = try rule.compiled()
            var used = false
            for i in names.indices {
                let new = try rule.apply(regex, to: names[i])
                if new != names[i] {
                    names[i] = new
                    rules[i].append("rename \(rule.text)")
                    used = true
                } else if !used, (try? regex.firstMatch(in: names[i])) != nil {
                    used = true  // matched, replaced by the same text (`weight$=weight`): not unused
                }
            }
            if !used { unused.append("rename \(rule.text)") }
        }
        if let p = addPrefix, !p.isEmpty {
            for i in names.indices {
                names[i] = p + names[i]
                rules[i].append("add-prefix")
            }
        }
        try Self.checkCollisions(keys: keys, names: names)
        var result = Result(names: names, renamed: [], unchanged: [], unusedRules: unused)
        for i in keys.indices {
            if names[i] == keys[i] {
                result.unchanged.append(keys[i])
            } else {
                result.renamed.append(KeyRename(from: keys[i], to: names[i], rules: rules[i]))
            }
        }
        return result
    }

    /// Throws when two keys share a new name.
    static func checkCollisions(keys: [String], names: [String]) throws(ConversionError) {
        var sources: [String: [String]] = [:]
        var order: [String] = []
        for (k, n) in zip(keys, names) {
            if sources[n] == nil { order.append(n) }
            sources[n, default: []].append(k)
        }
        let clashes = order.filter { (sources[$0]?.count ?? 0) > 1 }
        guard !clashes.isEmpty else { return }
        let shown = clashes.prefix(20).map { n in
            "'\(n)' <- " + (sources[n] ?? []).map { "'\($0)'" }.joined(separator: ", ")
        }
        let more = clashes.count > 20 ? "; and \(clashes.count - 20) more" : ""
        throw ConversionError(
            .collision,
            "renaming makes \(clashes.count) name\(clashes.count == 1 ? "" : "s") collide: "
                + shown.joined(separator: "; ") + more)
    }
}

/// One renamed key.
public struct KeyRename: Sendable, Equatable, Codable {
    /// The name in the input.
    public var from: String
    /// The name written.
    public var to: String
    /// The steps that changed it (`strip-prefix`, `mapping`, `rename /re/`, `add-prefix`).
    public var rules: [String]
}

/// `--rename 'REGEX=REPLACEMENT'`: every match of REGEX in a key is replaced, as Python's
/// `re.sub(REGEX, REPLACEMENT, key)`.
///
/// The first `=` separates the two parts (write `[=]` or `\x3d` for a literal `=` in the regex).
/// REPLACEMENT may use `\1`…`\9`, `\g<n>` and `\g<name>` for groups and `\\` for a backslash;
/// everything else is literal.
public struct RegexRename: Sendable, Equatable {
    /// The regular expression (Swift `Regex` syntax, which accepts Python's usual forms).
    public var pattern: String
    /// The replacement template.
    public var replacement: String

    /// The rule as given (`REGEX=REPLACEMENT`).
    public var text: String { "\(pattern)=\(replacement)" }

    /// Parses `REGEX=REPLACEMENT` and checks the regex compiles.
    /// - Throws: ``ConversionError`` `.usage`.
    public init(parsing text: String) throws(ConversionError) {
        guard let eq = text.firstIndex(of: "=") else {
            throw ConversionError(.usage, "--rename '\(text)': expected REGEX=REPLACEMENT")
        }
        try self.init(pattern: String(text[..<eq]), replacement: String(text[text.index(after: eq)...]))
    }

    /// A rule from its parts; the regex must compile and must not be empty.
    /// - Throws: ``ConversionError`` `.usage`.
    public init(pattern: String, replacement: String) throws(ConversionError) {
        self.pattern = pattern
        self.replacement = replacement
        guard !pattern.isEmpty else {
            throw ConversionError(.usage, "--rename '\(text)': the regular expression is empty")
        }
        _ = try compiled()
        _ = try template()
    }

    func compiled() throws(ConversionError) -> Regex<AnyRegexOutput> {
        do { return try Regex(pattern) } catch {
            throw ConversionError(.usage, "--rename '\(text)': invalid regular expression: \(error)")
        }
    }

    /// A replacement template piece.
    enum Piece: Equatable {
        case literal(String)
        case group(Int)
        case named(String)
    }

    func template() throws(ConversionError) -> [Piece] {
        var pieces: [Piece] = []
        var lit = ""
        var s = Array(replacement)[...]
        func bad(_ why: String) -> ConversionError {
            ConversionError(.usage, "--rename '\(text)': \(why)")
        }
        while let c = s.popFirst() {
            guard c == "\\", let n = s.first else {
                lit.append(c)
                continue
            }
            if let d = n.wholeNumberValue, n.isASCII {
                s.removeFirst()
                if !lit.isEmpty { pieces.append(.literal(lit)); lit = "" }
                pieces.append(.group(d))
            } else if n == "g" {
                s.removeFirst()
                guard s.first == "<", let close = s.firstIndex(of: ">") else {
                    throw bad("'\\g' must be followed by <number> or <name>")
                }
                let name = String(s[s.index(after: s.startIndex)..<close])
                s = s[s.index(after: close)...]
                if !lit.isEmpty { pieces.append(.literal(lit)); lit = "" }
                if let d = Int(name) {
                    pieces.append(.group(d))
                } else {
                    guard !name.isEmpty else { throw bad("empty group name in \\g<>") }
                    pieces.append(.named(name))
                }
            } else if n == "\\" {
                s.removeFirst()
                lit.append("\\")
            } else {
                lit.append(c)
            }
        }
        if !lit.isEmpty { pieces.append(.literal(lit)) }
        return pieces
    }

    /// `re.sub` of this rule over `name`.
    func apply(_ regex: Regex<AnyRegexOutput>, to name: String) throws(ConversionError) -> String {
        let pieces = try template()
        var failure: ConversionError?
        let out = name.replacing(regex) { match -> String in
            var s = ""
            for p in pieces {
                switch p {
                case .literal(let l): s += l
                case .group(let g):
                    guard g < match.output.count else {
                        failure = ConversionError(.usage, "--rename '\(text)': the regex has no group \(g)")
                        return ""
                    }
                    s += match.output[g].substring.map(String.init) ?? ""
                case .named(let n):
                    guard let c = match.output[n] else {
                        failure = ConversionError(.usage, "--rename '\(text)': the regex has no group '\(n)'")
                        return ""
                    }
                    s += c.substring.map(String.init) ?? ""
                }
            }
            return s
        }
        if let failure { throw failure }
        return out
    }
}
