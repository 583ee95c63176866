import Tensors

/// The checkpoint being converted, as the ``ConversionStep``s transform it.
///
/// `root` is the whole object tree; ``location`` says where the state dict is in it, found as
/// QTool's loader does (`state_dict`, then `model`, then the root itself). ``metadata`` holds
/// text entries that belong to the checkpoint but are not in the tree: the `__metadata__` of a
/// safetensors input, and a config record when the root is a bare state dict.
public struct ConversionState: Sendable {
    /// Where the state dict lives.
    public enum Location: Sendable, Equatable {
        /// The root is the state dict (a bare state dict, safetensors, npz).
        case root
        /// The state dict is the root's entry of this key.
        case entry(String)
        /// The root is not a dict (a single tensor or list): there is no state dict.
        case none

        /// The path text used in reports (`""` for the root).
        public var path: String {
            switch self {
            case .root: return ""
            case .entry(let k): return k
            case .none: return "-"
            }
        }
    }

    /// The object tree.
    public var root: CheckpointValue
    /// Where the state dict is.
    public var location: Location
    /// Text entries outside the tree (safetensors metadata), in order.
    public var metadata: [(key: String, value: String)]
    /// True when a step added a config record that the output must keep.
    public var recordsConfig = false
    /// The entry / metadata key of a recorded config (`qtools_config`; QToolConfig's
    /// `ConfigRecord` is what it holds).
    public static let configRecordKey = "qtools_config"

    /// The state of an input checkpoint.
    public init(_ checkpoint: Checkpoint) {
        root = checkpoint.root
        metadata = checkpoint.safeTensorsMetadata
        if let d = root.dict {
            if d["state_dict"]?.dict != nil {
                location = .entry("state_dict")
            } else if d["model"]?.dict != nil {
                location = .entry("model")
            } else {
                location = .root
            }
        } else {
            location = .none
        }
    }

    /// The state dict (an empty dict when there is none).
    public var stateDict: CheckpointDict {
        get {
            switch location {
            case .root: return root.dict ?? CheckpointDict()
            case .entry(let k): return root.dict?[k]?.dict ?? CheckpointDict()
            case .none: return CheckpointDict()
            }
        }
        set {
            switch location {
            case .root: root = .dict(newValue)
            case .entry(let k):
                guard var d = root.dict else { return }
                d.set(.string(k), .dict(newValue))
                root = .dict(d)
            case .none: break
            }
        }
    }

    /// Sets (or replaces) a metadata pair, keeping the first position.
    public mutating func setMetadata(_ key: String, _ value: String) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
    }

    /// Throws unless there is a state dict.
    func requireStateDict(for what: String) throws(ConversionError) {
        guard location != .none else {
            throw ConversionError(
                .unsupported, "\(what) needs a state dict, but the checkpoint is a single \(root.typeName)")
        }
    }
}
