import Tensors

/// The result of inspecting a checkpoint: the `--json` contract of `qtools inspect`.
///
/// Field names are stable; new fields may be added, none removed or renamed without a
/// schema bump (`schema`).
public struct InspectReport: Codable, Sendable {
    /// Schema identifier.
    public var schema = "qtools.inspect/1"
    /// The file path as given.
    public var file: String
    /// File size in bytes.
    public var fileBytes: Int
    /// Container format.
    public var format: String
    /// Human name of the format.
    public var formatDescription: String
    /// Container facts (zip64, records, alignment, byteorder, pickle protocol, ...).
    public var facts: [Fact]
    /// Pickle safety (torch formats only).
    public var safety: Safety?
    /// Top-level non-tensor entries (epoch, best_acc, optimizer summary, ...).
    public var entries: [Entry]
    /// Where the state dict was found.
    public var stateDict: StateDictInfo?
    /// State-dict tensors (after `--filter`), in file order.
    public var tensors: [TensorRow]
    /// Tensors outside the state dict (optimizer buffers, ...), after `--filter`.
    public var otherTensors: [TensorRow]
    /// Quantizer parameters grouped by layer.
    public var quantizers: [QuantizerGroup]
    /// Totals over `tensors` + `otherTensors` as listed.
    public var totals: Totals
    /// A bit-packed model's manifest, layers and size ratios (bnnpack files only).
    public var packed: PackedSummary? = nil

    /// One container fact.
    public struct Fact: Codable, Sendable, Equatable {
        public var key: String
        public var value: String
    }

    /// What `torch.load(weights_only=True)` would say.
    public struct Safety: Codable, Sendable {
        /// True when every global is allowlisted and no rejected opcode is used.
        public var weightsOnlyLoadable: Bool
        /// Every global referenced (`module.name`).
        public var globals: [String]
        /// Globals outside the allowlist.
        public var unsafeGlobals: [String]
    }

    /// A non-tensor entry.
    public struct Entry: Codable, Sendable, Equatable {
        /// Dotted path (`epoch`, `optimizer`).
        public var path: String
        /// Python type name.
        public var type: String
        /// Value (scalars) or a summary (containers).
        public var value: String
    }

    /// Where the state dict lives.
    public struct StateDictInfo: Codable, Sendable {
        /// Key path (`state_dict`, `model`, or empty for the root).
        public var path: String
        /// Mapping type.
        public var kind: String
        /// A prefix that every key shares and that tools usually strip (`module.`), if any.
        public var commonPrefix: String?
    }

    /// One tensor.
    public struct TensorRow: Codable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var elements: Int
        public var bytes: Int
        /// Storage key in the file; tensors sharing it share memory.
        public var storage: String
        /// False for strided views (transposes, slices).
        public var contiguous: Bool
        /// Saved as `nn.Parameter`.
        public var parameter: Bool
        public var requiresGrad: Bool
        /// With `--stats`.
        public var stats: TensorStatistics?
    }

    /// The quantizer tensors of one layer and role.
    public struct QuantizerGroup: Codable, Sendable {
        /// Layer (module path before `.quant_*`).
        public var layer: String
        /// `activation`, `weight` or `output`.
        public var role: String
        /// `level_num`, when present.
        public var levels: Int?
        /// Bits implied by `levels` (log2, rounded up), when present.
        public var bits: Double?
        /// Likely method from the parameter names (LQ-Nets, non-uniform, LSQ/PACT, XNOR++, DoReFa).
        public var method: String
        /// Each parameter with its values (up to 64 shown).
        public var parameters: [Parameter]
    }

    /// One quantizer parameter.
    public struct Parameter: Codable, Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Double]
        /// True when `values` holds only the first elements.
        public var truncated: Bool
    }

    /// Totals.
    public struct Totals: Codable, Sendable {
        public var tensors: Int
        public var elements: Int
        public var bytes: Int
        /// Bytes per dtype.
        public var bytesByDType: [String: Int]
        /// Distinct storages (shared storages counted once).
        public var storages: Int
    }
}
