import Tensors

/// A value on the unpickler's stack or in its memo.
///
/// Containers live in the unpickler's node arena and are referred to by index, so the
/// object graph is never a chain of reference-counted objects: no recursive `deinit`, no
/// leaked cycles, and sharing through the memo keeps Python's identity semantics
/// (`BINGET` of a list that is later appended to sees the appended items).
enum PickleValue {
    /// An immutable leaf (None, numbers, strings, tensors, globals, ...).
    case value(CheckpointValue)
    /// A container or placeholder in the arena.
    case node(Int)
    /// A storage returned by the persistent loader.
    indirect case storage(TorchStorage)

    static let none = PickleValue.value(.none)

    /// The global's `module.name`, if this is a bare global reference.
    var globalName: String? {
        if case .value(.global(let g)) = self { return g }
        return nil
    }
}

/// A storage as the persistent loader hands it out: the raw little-endian bytes of the
/// whole storage (a window into the file when possible) and what the pickle says it holds.
struct TorchStorage {
    /// Storage key (zip record name under `data/`, or the legacy root key).
    var key: String
    /// Storage class as pickled, e.g. `torch.FloatStorage`, `torch.storage.UntypedStorage`.
    var typeName: String
    /// Element type, nil for `UntypedStorage` (bytes) until a v3 rebuild names it.
    var dtype: DType?
    /// The storage's bytes.
    var bytes: ByteSlice
    /// Where the bytes came from (for error messages), e.g. `archive/data/3`.
    var entry: String
    /// True when the container says the bytes are big-endian (`byteorder` = `big`).
    var bigEndian: Bool = false
}

/// A mutable container or placeholder object in the unpickler's arena.
struct PickleNode {
    enum Kind {
        case list, tuple, set, frozenset
        case dict(CheckpointDict.Kind)
        /// A placeholder for a global the reader does not model.
        case object(String)
    }
    var kind: Kind
    /// Elements (list, tuple, set) or APPENDed items (object).
    var items: [PickleValue] = []
    /// Dict keys / values (parallel arrays), or SETITEM pairs on an object.
    var keys: [PickleValue] = []
    var values: [PickleValue] = []
    /// Position of each hashable key, for Python's "re-set keeps position" rule.
    var keyIndex: [DictKey: Int] = [:]
    /// Call arguments of an object.
    var args: [PickleValue] = []
    /// BUILD state (object) or `_metadata` (OrderedDict).
    var state: PickleValue? = nil

    init(_ kind: Kind, items: [PickleValue] = []) {
        self.kind = kind
        self.items = items
    }

    /// Sets `key` to `value` with dict semantics.
    mutating func setItem(_ key: PickleValue, _ value: PickleValue) {
        if let k = DictKey(key) {
            if let i = keyIndex[k] {
                values[i] = value
                return
            }
            keyIndex[k] = keys.count
        }
        keys.append(key)
        values.append(value)
    }
}

/// A dict key the reader can compare (Python equality: `True == 1`).
enum DictKey: Hashable {
    case string(String)
    case int(Int64)
    case float(Double)
    case none

    init?(_ v: PickleValue) {
        guard case .value(let c) = v else { return nil }
        switch c {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .float(let f):
            if let i = Int64(exactly: f) { self = .int(i) } else { self = .float(f) }
        case .none: self = .none
        default: return nil
        }
    }
}
