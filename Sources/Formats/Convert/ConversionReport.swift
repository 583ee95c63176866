/// What a ``Conversion`` did: the `--json` document of `qtools convert` (keys sorted by the
/// encoder, arrays in checkpoint order).
public struct ConversionReport: Codable, Sendable {
    /// Input path.
    public var input: String
    /// Output path.
    public var output: String
    /// Input container (``CheckpointFormat`` raw value).
    public var inputFormat: String
    /// Output format (``OutputFormat`` raw value).
    public var outputFormat: String
    /// Where the state dict was in the input (`state_dict`, `model`, `""` = root).
    public var stateDictPath: String
    /// Where it is in the output.
    public var outputStateDictPath: String = ""
    /// The steps run, in order.
    public var steps: [String] = []
    /// Tensors written (all of the output, including optimizer state).
    public var tensorsWritten: Int = 0
    /// Bytes of the output file.
    public var bytesWritten: Int = 0
    /// Keys whose name changed.
    public var renamed: [KeyRename] = []
    /// State-dict keys no renaming step changed.
    public var unchanged: [String] = []
    /// Renaming steps that matched no key (`mapping bn9.weight`, `strip-prefix module.`).
    public var unusedRules: [String] = []
    /// `--dtype` results, when casting.
    public var cast: CastReport?
    /// Entries not written: the format cannot hold them (consented with `--drop-extra`) or
    /// `--unwrap` removed them.
    public var dropped: [DroppedEntry] = []
    /// safetensors metadata written (scalars of the tree, the config record, ...).
    public var metadata: [String: String] = [:]
    /// The recorded config, when `--config` was given.
    public var config: ConfigSummary?
    /// Results of the attached verifiers, in order (empty with `--no-verify`).
    public var verification: [VerificationResult] = []
    /// What engine steps (`--fold-bn`, `--to-config`) did, one line each (folded, kept,
    /// created and dropped tensors).
    public var notes: [String] = []

    /// An empty report for an input.
    public init(input: String, output: String, inputFormat: String, outputFormat: String, stateDictPath: String) {
        self.input = input
        self.output = output
        self.inputFormat = inputFormat
        self.outputFormat = outputFormat
        self.stateDictPath = stateDictPath
    }
}

/// `--dtype` results.
public struct CastReport: Codable, Sendable, Equatable {
    /// The target dtype.
    public var dtype: String
    /// The largest error over all cast tensors.
    public var maxAbsError: Double
    /// Elements that overflowed to ±inf, over all tensors.
    public var overflows: Int
    /// Each cast tensor.
    public var tensors: [Tensor]
    /// Tensors kept as they were (integer, bool, complex, or already of the target type).
    public var kept: [Kept]

    /// One cast tensor.
    public struct Tensor: Codable, Sendable, Equatable {
        /// State-dict key (after renaming).
        public var name: String
        /// The dtype before.
        public var from: String
        /// max |cast − original|.
        public var maxAbsError: Double
        /// Elements that overflowed to ±inf.
        public var overflows: Int
    }

    /// One tensor left alone.
    public struct Kept: Codable, Sendable, Equatable {
        /// State-dict key.
        public var name: String
        /// Its dtype.
        public var dtype: String
    }
}

/// An entry of the input that is not in the output.
public struct DroppedEntry: Codable, Sendable, Equatable {
    /// Dotted path (`optimizer`, `metadata.arch`).
    public var path: String
    /// Its type (`dict`, `None`, `str`, ...).
    public var type: String
    /// Why.
    public var reason: String
}

/// The config recorded with `--config`.
public struct ConfigSummary: Codable, Sendable, Equatable {
    /// The config path as given.
    public var file: String
    /// `--model`.
    public var model: String
    /// `--keyword` words.
    public var keywords: [String]
    /// Overrides after `--`.
    public var overrides: [String]

    /// Describes a recorded config.
    public init(file: String, model: String, keywords: [String], overrides: [String]) {
        self.file = file
        self.model = model
        self.keywords = keywords
        self.overrides = overrides
    }
}

/// What one verifier found.
public struct VerificationResult: Codable, Sendable, Equatable {
    /// The verifier's name.
    public var verifier: String
    /// True when the check passed.
    public var passed: Bool
    /// One line of detail (what was compared, the first mismatch).
    public var detail: String
    /// The largest difference found, when the verifier measures one.
    public var maxAbsError: Double?

    /// Creates a result.
    public init(verifier: String, passed: Bool, detail: String, maxAbsError: Double? = nil) {
        self.verifier = verifier
        self.passed = passed
        self.detail = detail
        self.maxAbsError = maxAbsError
    }
}
