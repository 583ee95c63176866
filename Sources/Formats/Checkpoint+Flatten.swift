import Tensors

/// A checkpoint tree flattened to dotted names, for flat formats (safetensors, npz).
public struct FlatCheckpoint: Sendable {
    /// Tensors in tree order, named by their dotted path (`layer1.0.conv1.weight`).
    public var tensors: [(name: String, tensor: StoredTensor)]
    /// Scalar leaves (`None`, bool, int, float, str) in tree order, by dotted path.
    public var scalars: [(name: String, value: CheckpointValue)]
}

extension Checkpoint {
    /// Flattens the object tree: dict keys (strings, or integers written in decimal) and
    /// list/tuple indices are joined with `.`; a bare tensor root is named `rootName`.
    ///
    /// Empty containers vanish. Values a flat format cannot hold (bytes, sets, integers wider
    /// than 64 bits, globals, opaque objects, non-string/int keys) throw.
    ///
    /// - Throws: ``FormatError`` `.unsupported` naming the path, or `.duplicateName` when two
    ///   paths flatten to one name (`{"a.b": x, "a": {"b": y}}`).
    public func flattened(rootName: String = "tensor") throws -> FlatCheckpoint {
        var out = FlatCheckpoint(tensors: [], scalars: [])
        var seen = Set<String>()
        try Self.flatten(root, path: nil, rootName: rootName, into: &out, seen: &seen)
        return out
    }

    private static func flatten(
        _ v: CheckpointValue, path: String?, rootName: String, into out: inout FlatCheckpoint,
        seen: inout Set<String>
    ) throws(FormatError) {
        func join(_ component: String) -> String { path.map { "\($0).\(component)" } ?? component }
        func claim(_ name: String) throws(FormatError) {
            guard seen.insert(name).inserted else {
                throw FormatError(.duplicateName(name), tensor: name)
            }
        }
        switch v {
        case .tensor(let t):
            let name = path ?? rootName
            try claim(name)
            out.tensors.append((name, t))
        case .none, .bool, .int, .float, .string:
            guard let name = path else {
                throw FormatError(
                    .unsupported("the checkpoint is a single \(v.typeName), not tensors"))
            }
            try claim(name)
            out.scalars.append((name, v))
        case .dict(let d):
            for (k, value) in d.entries {
                let component: String
                switch k {
                case .string(let s): component = s
                case .int(let i): component = String(i)
                default:
                    throw FormatError(
                        .unsupported(
                            "dict key of type \(k.typeName) under \"\(path ?? "")\" has no flat name"
                        ),
                        tensor: path)
                }
                try flatten(
                    value, path: join(component), rootName: rootName, into: &out, seen: &seen)
            }
        case .list(let items), .tuple(let items):
            for (i, item) in items.enumerated() {
                try flatten(
                    item, path: join(String(i)), rootName: rootName, into: &out, seen: &seen)
            }
        case .bigInt, .bytes, .set, .global, .object:
            throw FormatError(
                .unsupported(
                    "\"\(path ?? rootName)\" holds a \(v.typeName), which a flat tensor file cannot represent"
                ),
                tensor: path ?? rootName)
        }
    }
}

extension CheckpointValue {
    /// Python's `str()` of a scalar leaf (`True`, `None`, `5`, `0.1`), nil for other values.
    var pythonText: String? {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let d):
            if d.isNaN { return "nan" }
            if d.isInfinite { return d < 0 ? "-inf" : "inf" }
            return d.description
        case .string(let s): return s
        default: return nil
        }
    }
}
