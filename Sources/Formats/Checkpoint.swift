import Tensors

/// The container formats qtools reads and writes.
public enum CheckpointFormat: String, Sendable, Codable, CaseIterable {
    /// `torch.save` zip archive (torch >= 1.6).
    case torchZip = "pytorch-zip"
    /// `torch.save` legacy magic-number stream (torch 0.1.10 ... 1.5).
    case torchLegacy = "pytorch-legacy"
    /// `torch.save` tar archive (torch <= 0.1.9).
    case torchTar = "pytorch-tar"
    /// Hugging Face safetensors.
    case safetensors
    /// NumPy `.npy` (one array).
    case npy
    /// NumPy `.npz` (zip of `.npy` members).
    case npz
    /// ONNX model (protobuf `ModelProto`); the checkpoint holds its initializers.
    case onnx
    /// A bit-packed binary/ternary model (`.qpack`): safetensors with bnnpack metadata
    /// (``PackedFile``), validated on read.
    case bnnpack
}

/// A value of a checkpoint's object tree: what the pickle (or other container) holds.
///
/// Nothing is ever executed to build it: globals outside torch's `weights_only` allowlist
/// become ``Opaque`` placeholders that keep their arguments, so tensors inside them can still
/// be read. Only containers, tensors and placeholders are boxed (`indirect`), so scalars in
/// long lists cost no allocation each.
public enum CheckpointValue: Sendable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer wider than 64 bits: two's-complement little-endian bytes (pickle LONG).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    indirect case list([CheckpointValue])
    indirect case tuple([CheckpointValue])
    indirect case set([CheckpointValue])
    indirect case dict(CheckpointDict)
    indirect case tensor(StoredTensor)
    /// A reference to a global that is a value by itself (`torch.float16`, a class object).
    case global(String)
    /// The result of calling or building a global the reader does not model.
    indirect case object(Opaque)

    /// A short type name for listings (`int`, `float`, `str`, `OrderedDict`, `Tensor`, ...).
    public var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .list: return "list"
        case .tuple: return "tuple"
        case .set: return "set"
        case .dict(let d): return d.kind.rawValue
        case .tensor: return "Tensor"
        case .global(let g): return g
        case .object(let o): return o.global
        }
    }

    /// The dict, if this is one.
    public var dict: CheckpointDict? {
        if case .dict(let d) = self { return d }
        return nil
    }

    /// The string, if this is one.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

/// A Python dict, `OrderedDict` or `Counter`, in insertion order.
public struct CheckpointDict: Sendable {
    /// Which Python mapping type it was.
    public enum Kind: String, Sendable, Codable {
        case dict
        case orderedDict = "OrderedDict"
        case counter = "Counter"
    }
    /// Key/value pairs in insertion order (a re-set key keeps its first position).
    public var entries: [(key: CheckpointValue, value: CheckpointValue)]
    /// Mapping type.
    public var kind: Kind
    /// `OrderedDict._metadata` (per-module `{'version': n}`) set through BUILD, if any.
    public var metadata: CheckpointValue?

    /// Creates a mapping.
    public init(
        _ entries: [(key: CheckpointValue, value: CheckpointValue)] = [], kind: Kind = .dict,
        metadata: CheckpointValue? = nil
    ) {
        self.entries = entries
        self.kind = kind
        self.metadata = metadata
    }

    /// Value for a string key.
    public subscript(key: String) -> CheckpointValue? {
        entries.first { if case .string(let k) = $0.key { return k == key } else { return false } }?.value
    }

    /// Sets a value, keeping the first position of an existing key (Python semantics).
    public mutating func set(_ key: CheckpointValue, _ value: CheckpointValue) {
        if let i = entries.firstIndex(where: { Self.sameKey($0.key, key) }) {
            entries[i].value = value
        } else {
            entries.append((key, value))
        }
    }

    static func sameKey(_ a: CheckpointValue, _ b: CheckpointValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.float(let x), .float(let y)): return x == y
        case (.none, .none): return true
        default: return false
        }
    }
}

/// A placeholder for an object the reader does not rebuild (never executed).
public struct Opaque: Sendable {
    /// `module.name` of the global that made it.
    public var global: String
    /// Call arguments (REDUCE / NEWOBJ).
    public var args: [CheckpointValue]
    /// BUILD state, if any.
    public var state: CheckpointValue?
    /// Items added with APPEND(S) / SETITEM(S).
    public var items: [CheckpointValue]

    /// Creates a placeholder.
    public init(
        global: String, args: [CheckpointValue] = [], state: CheckpointValue? = nil,
        items: [CheckpointValue] = []
    ) {
        self.global = global
        self.args = args
        self.state = state
        self.items = items
    }
}

/// A checkpoint file as read: its object tree plus facts about the container.
public struct Checkpoint: Sendable {
    /// Container format.
    public var format: CheckpointFormat
    /// The saved object.
    public var root: CheckpointValue
    /// Ordered facts for `inspect` (`zip64`, `records`, `pickle protocol`, `byteorder`, ...).
    public var facts: [(key: String, value: String)]
    /// Every global the pickle references, in first-use order (`module.name`).
    public var globals: [String]
    /// Globals that `torch.load(weights_only=True)` would refuse.
    public var unsafeGlobals: [String]

    /// Creates a checkpoint value.
    public init(
        format: CheckpointFormat, root: CheckpointValue, facts: [(key: String, value: String)] = [],
        globals: [String] = [], unsafeGlobals: [String] = []
    ) {
        self.format = format
        self.root = root
        self.facts = facts
        self.globals = globals
        self.unsafeGlobals = unsafeGlobals
    }
}
