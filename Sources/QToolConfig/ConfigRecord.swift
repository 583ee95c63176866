import Formats

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The configuration a checkpoint belongs to, recorded inside the checkpoint by `qtools convert
/// --config CFG [-- overrides]` so that later commands (`run`, `verify`) can rebuild the model
/// without being told the config again.
///
/// Stored as **one string** under ``key`` (`qtools_config`): a top-level `str` entry of a torch
/// checkpoint (which `torch.load(weights_only=True)` accepts) or a safetensors `__metadata__`
/// value. The string is compact JSON with sorted keys:
///
/// ```
/// {"environment":{"FASTDIR":"/data"},"file":"config.lsq...","overrides":["--fm_bit","4"],
///  "schema":"qtools-config/1","text":"<the config file's text>"}
/// ```
///
/// `text` is the whole config file (a train.sh fragment), `overrides` are main.py options
/// applied after it, `environment` holds the variables of the evaluation that the file may use
/// (`FASTDIR`, `DELAY`; only those that were set). ``options()`` re-evaluates it exactly as
/// `qtools config show` would. `"fullPrecision":true` (only present when set) asks for the
/// network with its quantizers removed (`convert --to-fp`).
public struct ConfigRecord: Codable, Sendable, Equatable {
    /// The entry / metadata key.
    public static let key = ConversionState.configRecordKey
    /// The schema tag of this layout.
    public static let currentSchema = "qtools-config/1"
    /// Environment variables recorded when present.
    public static let recordedEnvironment = ["FASTDIR", "DELAY"]

    /// Schema tag (``currentSchema``).
    public var schema: String
    /// The config path as given on the command line (for messages only).
    public var file: String
    /// The config file's text.
    public var text: String
    /// main.py options applied after the config.
    public var overrides: [String]
    /// Recorded environment variables (see ``recordedEnvironment``).
    public var environment: [String: String]
    /// The model is the config's network in full precision (``QToolOptions/fullPrecision()``,
    /// written by `qtools convert --to-fp`); stored only when true.
    public var fullPrecision: Bool = false

    /// Creates a record.
    public init(file: String, text: String, overrides: [String] = [], environment: [String: String] = [:]) {
        self.schema = Self.currentSchema
        self.file = file
        self.text = text
        self.overrides = overrides
        self.environment = environment.filter { Self.recordedEnvironment.contains($0.key) }
    }

    /// Reads the config at `path` and validates it (with `overrides`) as `qtools config show`
    /// does.
    /// - Throws: ``ConfigError`` (`.unreadable` when missing; others when malformed).
    public static func load(
        path: String, overrides: [String] = [], environment: [String: String] = [:]
    ) throws -> (record: ConfigRecord, options: QToolOptions) {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError(
                .unreadable, exists ? "cannot read config file" : "no such config file", file: path)
        }
        let record = ConfigRecord(
            file: path, text: String(decoding: data, as: UTF8.self), overrides: overrides,
            environment: environment)
        return (record, try record.options())
    }

    /// The options the record describes (config evaluated, then the overrides).
    /// - Throws: ``ConfigError``.
    public func options() throws -> QToolOptions {
        let config = try ConfigFile(text: text, path: file, environment: environment)
        let options = try QToolOptions(config: config).applying(arguments: overrides)
        return fullPrecision ? options.fullPrecision() : options
    }

    enum CodingKeys: String, CodingKey {
        case schema, file, text, overrides, environment, fullPrecision
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.decode(String.self, forKey: .schema)
        file = try c.decode(String.self, forKey: .file)
        text = try c.decode(String.self, forKey: .text)
        overrides = try c.decode([String].self, forKey: .overrides)
        environment = try c.decode([String: String].self, forKey: .environment)
        fullPrecision = try c.decodeIfPresent(Bool.self, forKey: .fullPrecision) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(file, forKey: .file)
        try c.encode(text, forKey: .text)
        try c.encode(overrides, forKey: .overrides)
        try c.encode(environment, forKey: .environment)
        if fullPrecision { try c.encode(true, forKey: .fullPrecision) }
    }

    /// The stored string (compact JSON, sorted keys).
    public func encoded() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }

    /// Parses a stored string.
    /// - Throws: ``ConversionError`` `.unsupported` when it is not a record this build reads.
    public static func decode(_ string: String) throws(ConversionError) -> ConfigRecord {
        let record: ConfigRecord
        do {
            record = try JSONDecoder().decode(ConfigRecord.self, from: Data(string.utf8))
        } catch {
            throw ConversionError(.unsupported, "\(key) is not a qtools config record: \(error)")
        }
        guard record.schema == currentSchema else {
            throw ConversionError(
                .unsupported,
                "\(key) has schema '\(record.schema)'; this build reads '\(currentSchema)'")
        }
        return record
    }

    /// The record stored in a checkpoint: the root's `qtools_config` string entry, or the
    /// safetensors metadata value. Nil when there is none.
    /// - Throws: ``ConversionError`` when an entry exists but cannot be read.
    public static func read(from checkpoint: Checkpoint) throws(ConversionError) -> ConfigRecord? {
        if let s = checkpoint.root.dict?[key] {
            guard let text = s.string else {
                throw ConversionError(.unsupported, "\(key) is a \(s.typeName), not a string")
            }
            return try decode(text)
        }
        if let text = checkpoint.safeTensorsMetadata.first(where: { $0.key == key })?.value {
            return try decode(text)
        }
        return nil
    }
}

/// `--config CFG`: stores a ``ConfigRecord`` under `qtools_config` (a root entry when the state
/// dict is wrapped, else a metadata entry, which only safetensors can hold).
public struct RecordConfig: ConversionStep {
    /// The record.
    public var record: ConfigRecord
    public var summary: String { "record config \(record.file)" }
    /// The report's description of the config.
    public var configSummary: ConfigSummary

    /// Creates the step from a validated record and its options.
    public init(_ record: ConfigRecord, options: QToolOptions) {
        self.record = record
        self.configSummary = ConfigSummary(
            file: record.file, model: options.model, keywords: options.keywords,
            overrides: record.overrides)
    }

    public func apply(to state: inout ConversionState, report: inout ConversionReport) throws {
        let text = try record.encoded()
        switch state.location {
        case .entry:
            guard var d = state.root.dict else { return }
            d.set(.string(ConfigRecord.key), .string(text))
            state.root = .dict(d)
        case .root, .none:
            state.setMetadata(ConfigRecord.key, text)
        }
        state.recordsConfig = true
        report.config = configSummary
    }
}
