import Tensors

/// Walks a checkpoint's object tree: where the state dict is, every tensor with its path,
/// and summaries of the other entries.
enum CheckpointTree {
    /// A located state dict (see ``CheckpointValue/stateDict()``) with its mapping type.
    struct Located {
        var path: String
        var kind: String
        var entries: [(name: String, tensor: StoredTensor)]
    }

    static func locate(_ root: CheckpointValue) -> Located? {
        guard let (path, entries) = root.stateDict() else { return nil }
        let mapping = path.isEmpty ? root.dict : root.dict?[path]?.dict
        return Located(path: path, kind: mapping?.kind.rawValue ?? "dict", entries: entries)
    }

    /// Top-level entries other than the state dict, summarised.
    static func entries(_ root: CheckpointValue, skipping: String?) -> [InspectReport.Entry] {
        guard let d = root.dict else {
            if case .tensor = root { return [] }
            return [InspectReport.Entry(path: "", type: root.typeName, value: summary(root))]
        }
        var out: [InspectReport.Entry] = []
        for (k, v) in d.entries {
            let name = keyText(k)
            if let skipping, !skipping.isEmpty, name == skipping { continue }
            if skipping == "", case .tensor = v { continue }
            out.append(InspectReport.Entry(path: name, type: v.typeName, value: summary(v)))
        }
        return out
    }

    /// A one-line rendering of a value.
    public static func summary(_ v: CheckpointValue, depth: Int = 0) -> String {
        switch v {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt(let b): return "<\(b.count * 8)-bit int>"
        case .float(let f): return pythonFloat(f)
        case .string(let s): return "'" + s + "'"
        case .bytes(let b): return "<\(b.count) bytes>"
        case .global(let g): return g
        case .tensor(let t): return "Tensor \(t.dtype.rawValue) \(Shapes.describe(t.shape))"
        case .list(let a), .tuple(let a), .set(let a):
            let (open, close) = v.typeName == "list" ? ("[", "]") : v.typeName == "tuple" ? ("(", ")") : ("{", "}")
            if depth >= 1 || a.count > 8 { return "\(v.typeName) of \(a.count)" }
            return open + a.map { summary($0, depth: depth + 1) }.joined(separator: ", ") + close
        case .dict(let d):
            if depth >= 1 { return "\(d.kind.rawValue) of \(d.entries.count)" }
            let shown = d.entries.prefix(6).map { keyText($0.key) + ": " + summary($0.value, depth: depth + 1) }
            return "{" + shown.joined(separator: ", ") + (d.entries.count > 6 ? ", ... (\(d.entries.count) keys)" : "") + "}"
        case .object(let o): return "<\(o.global) object, not loaded>"
        }
    }

    /// Python's repr of a float (`0.0`, `0.1`, `1e-05`), close enough for listings.
    static func pythonFloat(_ f: Double) -> String {
        if f.isNaN { return "nan" }
        if f.isInfinite { return f < 0 ? "-inf" : "inf" }
        let s = "\(f)"
        return s
    }

    /// A dict key as text.
    static func keyText(_ k: CheckpointValue) -> String { CheckpointValue.keyText(k) }

    /// A dotted prefix shared by every name that loaders strip (`module.`, `_orig_mod.`, `model.`).
    static func commonPrefix(_ names: [String]) -> String? {
        for p in ["module.", "_orig_mod.", "model."] where !names.isEmpty && names.allSatisfy({ $0.hasPrefix(p) }) {
            return p
        }
        return nil
    }
}
