#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The resolved configuration as one document: the JSON contract of `qtools config show --json`
/// and the source of its text listing.
///
/// JSON shape (keys sorted):
/// ```
/// { "argv": ["--dataset", ...], "config": "path or null",
///   "keywords": ["cifar10", ...],
///   "options": { "<dest>": { "changed": bool, "default": v, "flags": [..], "group": "data",
///                            "line": n|null, "source": "default|train.sh|config|command-line",
///                            "value": v }, ... },
///   "resolved": { "fm_bit": 2, "fm_levels": 4, "input_size": 32, "num_classes": 10,
///                 "wt_bit": 2, "wt_levels": 4 },
///   "warnings": ["unknown keyword 'mean' (ignored by QTool)", ...] }
/// ```
public struct ConfigReport: Encodable, Sendable {
    /// One option's value and provenance.
    public struct Entry: Encodable, Sendable {
        /// The value after post-processing.
        public var value: OptionValue
        /// The argparse default.
        public var defaultValue: OptionValue
        /// True when `value != default`.
        public var changed: Bool
        /// `default`, `train.sh`, `config` or `command-line`.
        public var source: String
        /// The config line for `source == "config"`.
        public var line: Int?
        /// Option strings, primary first.
        public var flags: [String]
        /// Display group.
        public var group: OptionCategory

        enum CodingKeys: String, CodingKey {
            case value, changed, source, line, flags, group
            case defaultValue = "default"
        }

        /// Encodes every key, `line` as `null` when absent, so the document shape never varies.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(value, forKey: .value)
            try c.encode(defaultValue, forKey: .defaultValue)
            try c.encode(changed, forKey: .changed)
            try c.encode(source, forKey: .source)
            try c.encode(line, forKey: .line)
            try c.encode(flags, forKey: .flags)
            try c.encode(group, forKey: .group)
        }
    }

    /// The config file, if any.
    public var config: String?
    /// The full argument vector (config words, then overrides).
    public var argv: [String]
    /// The keyword list.
    public var keywords: [String]
    /// Every option by dest.
    public var options: [String: Entry]
    /// Values `get_model` derives (§6): num_classes, input_size, fm/wt bit and levels.
    public var resolved: [String: Double]
    /// Unknown keywords and similar non-fatal findings.
    public var warnings: [String]

    enum CodingKeys: String, CodingKey { case config, argv, keywords, options, resolved, warnings }

    /// Encodes every key (`config` as `null` when absent).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(config, forKey: .config)
        try c.encode(argv, forKey: .argv)
        try c.encode(keywords, forKey: .keywords)
        try c.encode(options, forKey: .options)
        try c.encode(resolved, forKey: .resolved)
        try c.encode(warnings, forKey: .warnings)
    }

    /// Builds the report for `options`, read from `config` (nil for a bare argument vector).
    public init(_ options: QToolOptions, config: String? = nil) {
        self.config = config
        argv = options.arguments.map(\.text)
        keywords = options.keywords
        var entries: [String: Entry] = [:]
        for spec in QToolOptions.table {
            var source = "default"
            var line: Int?
            switch options.origins[spec.dest] {
            case nil: break
            case .trainScript: source = "train.sh"
            case .commandLine: source = "command-line"
            case .configFile(_, let l):
                source = "config"
                line = l
            }
            entries[spec.dest] = Entry(
                value: options[spec.dest], defaultValue: spec.defaultValue,
                changed: options.differsFromDefault(spec.dest), source: source, line: line,
                flags: spec.flags, group: spec.group)
        }
        self.options = entries
        let fm = options.quantizer(.fm)
        let wt = options.quantizer(.wt)
        resolved = [
            "num_classes": Double(options.resolvedNumClasses),
            "input_size": Double(options.resolvedInputSize),
            "fm_bit": fm.resolvedBit, "wt_bit": wt.resolvedBit,
            "fm_levels": Double(fm.resolvedLevels), "wt_levels": Double(wt.resolvedLevels),
        ]
        warnings = options.keywordWarnings.map(\.description)
    }

    /// The report as one pretty-printed JSON document with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Human-readable listing grouped like §3, one option per line: every option that was set
    /// or differs from its default (all of them with `showAll`). Values that differ from the
    /// default are marked `*` and show the default; set values show where they were set.
    /// `includeWarnings: false` leaves the warnings out (the CLI prints them on stderr).
    public func text(showAll: Bool = false, includeWarnings: Bool = true) -> String {
        var lines: [String] = []
        if let config { lines.append("config: \(config)") }
        lines.append("keywords: " + keywords.joined(separator: ","))
        lines.append(
            "resolved: num_classes \(Int(resolved["num_classes"] ?? 0)), input_size "
                + "\(Int(resolved["input_size"] ?? 0)), fm_bit \(Self.number(resolved["fm_bit"] ?? 32)), "
                + "wt_bit \(Self.number(resolved["wt_bit"] ?? 32))")
        let width = QToolOptions.table.map { $0.flags[0].count }.max() ?? 20
        for group in OptionCategory.allCases {
            let specs = QToolOptions.table.filter { $0.group == group }
            let shown = specs.filter {
                guard let entry = options[$0.dest] else { return false }
                return showAll || entry.changed || entry.source != "default"
            }
            guard !shown.isEmpty else { continue }
            lines.append("")
            lines.append("\(group.title):")
            for spec in shown {
                guard let entry = options[spec.dest] else { continue }
                let mark = entry.changed ? "*" : " "
                let flag = spec.flags[0].padding(toLength: width)
                var text = "  \(mark) \(flag)  \(entry.value)"
                if entry.changed {
                    text += "  (default \(entry.defaultValue); " + place(of: entry) + ")"
                } else if entry.source != "default" {
                    text += "  (" + place(of: entry) + ")"
                }
                lines.append(text)
            }
        }
        if !showAll {
            lines.append("")
            lines.append("(options never set are hidden; --all lists them)")
        }
        if includeWarnings, !warnings.isEmpty {
            lines.append("")
            lines.append("warnings:")
            lines += warnings.map { "  \($0)" }
        }
        return lines.joined(separator: "\n")
    }

    private func place(of entry: Entry) -> String {
        switch entry.source {
        case "config": return "config line \(entry.line ?? 0)"
        case "train.sh": return "train.sh"
        case "command-line": return "command line"
        default: return "default"
        }
    }

    private static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)"
    }
}

extension String {
    fileprivate func padding(toLength n: Int) -> String {
        count >= n ? self : self + String(repeating: " ", count: n - count)
    }
}
