/// The resolved option namespace of main.py / tools.py (`args`), with where each value was set.
///
/// Build it from a config file (``init(config:)``), from a bare argument vector
/// (``init(arguments:)``), or start from the defaults (``init()``); then layer overrides with
/// ``applying(arguments:)``. Values are stored by argparse `dest` name (``values``) and exposed
/// through typed accessors for what the model builder and trainer consume.
public struct QToolOptions: Equatable, Sendable {
    /// Every option by `dest`, post-processed (§3.3). Always holds every option of ``table``.
    public internal(set) var values: [String: OptionValue]
    /// Where each explicitly given option was last set; absent = the argparse default.
    public private(set) var origins: [String: ArgumentOrigin]
    /// The whole argument vector parsed so far (config words, then overrides).
    public private(set) var arguments: [SourcedArgument]

    /// All options at their defaults.
    public init() {
        values = Dictionary(uniqueKeysWithValues: Self.table.map { ($0.dest, $0.defaultValue) })
        origins = [:]
        arguments = []
    }

    /// Parses an argument vector as main.py would.
    /// - Throws: ``ConfigError`` naming the offending word's origin.
    public init(arguments: [SourcedArgument]) throws {
        self.init()
        try parse(arguments)
    }

    /// Parses the argument vector train.sh builds from `config`.
    public init(config: ConfigFile) throws {
        try self.init(arguments: config.arguments)
    }

    /// These options with command-line `arguments` parsed on top (last wins, as if appended to
    /// the config's vector).
    public func applying(arguments: [String]) throws -> QToolOptions {
        try applying(.commandLine(arguments))
    }

    /// These options with `arguments` parsed on top.
    public func applying(_ arguments: [SourcedArgument]) throws -> QToolOptions {
        var copy = self
        try copy.parse(arguments)
        return copy
    }

    private mutating func parse(_ new: [SourcedArgument]) throws {
        try OptionParser.parse(new, values: &values, origins: &origins)
        arguments += new
    }

    // MARK: - Generic access

    /// The value of option `dest` (`.none` for an unknown name).
    public subscript(dest: String) -> OptionValue { values[dest] ?? .none }

    /// True when `dest` holds a value other than its default.
    public func differsFromDefault(_ dest: String) -> Bool {
        Self.spec(dest).map { self[dest] != $0.defaultValue } ?? false
    }

    func int(_ dest: String) -> Int {
        if case .int(let v) = self[dest] { return v }
        preconditionFailure("option \(dest) is not an int")
    }

    func optionalInt(_ dest: String) -> Int? {
        if case .int(let v) = self[dest] { return v }
        return nil
    }

    func float(_ dest: String) -> Double {
        if case .float(let v) = self[dest] { return v }
        preconditionFailure("option \(dest) is not a float")
    }

    func optionalFloat(_ dest: String) -> Double? {
        if case .float(let v) = self[dest] { return v }
        return nil
    }

    func string(_ dest: String) -> String {
        if case .string(let v) = self[dest] { return v }
        preconditionFailure("option \(dest) is not a string")
    }

    func bool(_ dest: String) -> Bool {
        if case .bool(let v) = self[dest] { return v }
        preconditionFailure("option \(dest) is not a flag")
    }

    func strings(_ dest: String) -> [String] {
        if case .strings(let v) = self[dest] { return v }
        preconditionFailure("option \(dest) is not a string list")
    }

    func ints(_ dest: String) -> [Int] {
        if case .ints(let v) = self[dest] { return v }
        preconditionFailure("option \(dest) is not an int list")
    }
}

// MARK: - Typed accessors

extension QToolOptions {
    /// `--dataset`.
    public var dataset: String { string("dataset") }
    /// `--root`.
    public var root: String { string("root") }
    /// `--model` (`-m`, `--arch`): the model-zoo name.
    public var model: String { string("model") }
    /// `--keyword`, split on commas and stripped.
    public var keywords: [String] { strings("keyword") }
    /// Exact-word membership test on the keyword list, as QTool's `word in args.keyword`.
    public func hasKeyword(_ word: String) -> Bool { keywords.contains(word) }
    /// `--case`.
    public var caseName: String { string("case") }
    /// `--num_classes` as given (nil = derive, see ``resolvedNumClasses``).
    public var numClasses: Int? { optionalInt("num_classes") }
    /// `--input_size` as given (nil = derive, see ``resolvedInputSize``).
    public var inputSize: Int? { optionalInt("input_size") }
    /// `--base` (Group-Net branches).
    public var base: Int { int("base") }
    /// `--width_alpha`.
    public var widthAlpha: Double { float("width_alpha") }
    /// `--stem_kernel`.
    public var stemKernel: Int { int("stem_kernel") }
    /// `--order` (ReShapeResolution shrink path).
    public var order: String { string("order") }
    /// `--policy`.
    public var policy: String { string("policy") }
    /// `--padding_after_quant`.
    public var paddingAfterQuant: Bool { bool("padding_after_quant") }
    /// `--stable`.
    public var stable: Int { int("stable") }

    /// `--epochs`.
    public var epochs: Int { int("epochs") }
    /// `--batch_size` (`-b`).
    public var batchSize: Int { int("batch_size") }
    /// `--val_batch_size` (`-v`).
    public var valBatchSize: Int { int("val_batch_size") }
    /// `--lr`.
    public var lr: Double { float("lr") }
    /// `--lr_policy`.
    public var lrPolicy: String { string("lr_policy") }
    /// `--lr_decay`.
    public var lrDecay: Double { float("lr_decay") }
    /// `--lr_custom_step`, as ints.
    public var lrCustomStep: [Int] { ints("lr_custom_step") }
    /// `--eta_min`.
    public var etaMin: Double { float("eta_min") }
    /// `--momentum`.
    public var momentum: Double { float("momentum") }
    /// `--weight_decay` (`--wd`).
    public var weightDecay: Double { float("weight_decay") }
    /// `--nesterov`.
    public var nesterov: Bool { bool("nesterov") }
    /// `--decay_small`.
    public var decaySmall: Bool { bool("decay_small") }
    /// `--optimizer` (`SGD` or `ADAM`).
    public var optimizer: String { string("optimizer") }
    /// `--custom_decay_list`, split (`['']` when empty).
    public var customDecayList: [String] { strings("custom_decay_list") }
    /// `--custom_decay`.
    public var customDecay: Double { float("custom_decay") }
    /// `--custom_lr_list`, split (`['']` when empty).
    public var customLRList: [String] { strings("custom_lr_list") }
    /// `--custom_lr`.
    public var customLR: Double { float("custom_lr") }
    /// `--seed`.
    public var seed: Int { int("seed") }
    /// `--evaluate` (`-e`).
    public var evaluate: Bool { bool("evaluate") }
    /// `--pretrained`.
    public var pretrained: String { string("pretrained") }
    /// `--resume` (`-r`).
    public var resume: Bool { bool("resume") }
    /// `--weights_dir`.
    public var weightsDir: String { string("weights_dir") }
    /// `--device-ids` (`-g`).
    public var deviceIDs: [Int] { ints("device_ids") }

    /// The quantizer options of one family (`fm_`, `wt_`, `ot_`).
    public func quantizer(_ tag: QuantizerTag) -> QuantizerOptions {
        QuantizerOptions(tag, from: self)
    }

    /// `num_classes` as `models.get_model` resolves it (§6): explicit `--num_classes`, else
    /// keyword `cifar10` → 10, `cifar100` → 100, otherwise 1000.
    public var resolvedNumClasses: Int {
        if let numClasses { return numClasses }
        if hasKeyword("cifar10") { return 10 }
        if hasKeyword("cifar100") { return 100 }
        return 1000
    }

    /// `input_size` as `models.get_model` resolves it (§6): explicit `--input_size`, else 32 with
    /// keyword `cifar10`/`cifar100`, 227 for model `alexnet`, otherwise 224.
    public var resolvedInputSize: Int {
        if let inputSize { return inputSize }
        if hasKeyword("cifar10") || hasKeyword("cifar100") { return 32 }
        if model == "alexnet" { return 227 }
        return 224
    }

    /// Keyword words QTool never tests for (§5), in order, without duplicates or empty words.
    public var keywordWarnings: [KeywordWarning] {
        var seen: Set<String> = []
        var result: [KeywordWarning] = []
        for word in keywords where !word.isEmpty && KeywordVocabulary.category(of: word) == nil {
            guard seen.insert(word).inserted else { continue }
            result.append(
                KeywordWarning(word: word, suggestion: KeywordVocabulary.suggestion(for: word)))
        }
        return result
    }
}
