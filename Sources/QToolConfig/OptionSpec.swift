/// A parsed option value, after main.py's post-processing (§3.3): comma lists are already
/// split, `lr_custom_step` is already integers.
public enum OptionValue: Equatable, Hashable, Sendable, Encodable, CustomStringConvertible {
    /// Python `None`.
    case none
    /// A flag.
    case bool(Bool)
    /// An `int` option.
    case int(Int)
    /// A `float` option.
    case float(Double)
    /// A `str` option (including choices).
    case string(String)
    /// `nargs='+'` int options and `lr_custom_step`.
    case ints([Int])
    /// Comma-split string lists (`keyword`, `custom_decay_list`, ...).
    case strings([String])
    /// `global_buffer`, a runtime-only dictionary (always empty here).
    case dictionary([String: String])

    /// Encodes as the natural JSON value (`null`, `true`, `3`, `0.1`, `"x"`, `[..]`, `{}`).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .none: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .float(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .ints(let v): try c.encode(v)
        case .strings(let v): try c.encode(v)
        case .dictionary(let v): try c.encode(v)
        }
    }

    /// Python-like rendering: `None`, `True`, `0.0001`, `'x'`, `[30, 40]`, `['a', 'b']`.
    public var description: String {
        switch self {
        case .none: return "None"
        case .bool(let v): return v ? "True" : "False"
        case .int(let v): return String(v)
        case .float(let v): return "\(v)"  // Swift's shortest round-trip form matches Python repr
        case .string(let v): return "'\(v)'"
        case .ints(let v): return "[" + v.map(String.init).joined(separator: ", ") + "]"
        case .strings(let v): return "[" + v.map { "'\($0)'" }.joined(separator: ", ") + "]"
        case .dictionary(let v):
            return "{"
                + v.sorted { $0.key < $1.key }.map { "'\($0.key)': '\($0.value)'" }
                .joined(separator: ", ") + "}"
        }
    }
}

/// What kind of value an option takes, mirroring its argparse declaration.
public enum OptionKind: Equatable, Sendable {
    /// `type=int`.
    case int
    /// `type=float`.
    case float
    /// `type=str`.
    case string
    /// `choices=[...]` (strings).
    case choice([String])
    /// `action='store_true'` (`true`) or `'store_false'` (`false`): the value stored when given.
    case flag(stores: Bool)
    /// `type=int, nargs='+'`.
    case intArray
    /// A `str` that post-processing splits on commas and strips.
    case commaList
    /// A `str` that post-processing splits on commas into ints (`lr_custom_step`).
    case commaIntList
    /// Runtime scratch space, not settable from a command line.
    case runtimeDictionary

    /// True when the option consumes no value.
    var isFlag: Bool {
        if case .flag = self { return true }
        return false
    }
}

/// Where an option is shown in `qtools config show`.
public enum OptionCategory: String, CaseIterable, Sendable, Encodable {
    case data, model, quantization
    case fm, wt, ot
    case optimizer
    case lrPolicy = "lr-policy"
    case weightDecay = "weight-decay"
    case schedule, checkpoint, logging, hardware, misc, tools

    /// Heading for the human-readable listing.
    public var title: String {
        switch self {
        case .data: return "data"
        case .model: return "model"
        case .quantization: return "quantization (general)"
        case .fm: return "quantization: fm_ (input activations)"
        case .wt: return "quantization: wt_ (weights)"
        case .ot: return "quantization: ot_ (outputs)"
        case .optimizer: return "optimizer"
        case .lrPolicy: return "learning-rate policy"
        case .weightDecay: return "weight decay"
        case .schedule: return "schedule"
        case .checkpoint: return "checkpoint"
        case .logging: return "logging"
        case .hardware: return "hardware"
        case .misc: return "misc"
        case .tools: return "tools.py"
        }
    }
}

/// One option of main.py/tools.py: its destination name, option strings, kind and default.
public struct OptionSpec: Sendable {
    /// argparse `dest`, also the JSON key (`batch_size`, `fm_half_range`).
    public let dest: String
    /// Every option string, primary first (`--batch_size`, `-b`).
    public let flags: [String]
    /// How values are parsed.
    public let kind: OptionKind
    /// The default, already post-processed.
    public let defaultValue: OptionValue
    /// Display group.
    public let group: OptionCategory
    /// One line of help.
    public let help: String

    /// Creates a spec.
    public init(
        _ dest: String, _ flags: [String], _ kind: OptionKind, _ defaultValue: OptionValue,
        _ group: OptionCategory, _ help: String
    ) {
        self.dest = dest
        self.flags = flags
        self.kind = kind
        self.defaultValue = defaultValue
        self.group = group
        self.help = help
    }

    /// `--model/-m/--arch`, as argparse names an argument in its messages.
    public var displayName: String { flags.joined(separator: "/") }
}
