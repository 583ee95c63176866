import Tensors

/// Walks a checkpoint's object tree: where the state dict is, every tensor with its path,
/// and summaries of the other entries.
public enum CheckpointTree {
    /// A located state dict.
    public struct Located: Sendable {
        /// Key path of the mapping (`state_dict`, `model`, or `` for the root).
        public var path: String
        /// Mapping type name.
        public var kind: String
        /// Tensor entries in file order (non-tensor values skipped).
        public var entries: [(name: String, tensor: StoredTensor)]
    }

    /// Finds the state dict where QTool looks for it (seed-reference §12.3): the `state_dict`
    /// key, else `model`, else the root itself; a level is accepted when it maps strings to tensors.
    public static func stateDict(_ root: CheckpointValue) -> Located? {
        guard let top = root.dict else { return nil }
        for key in ["state_dict", "model"] {
            if let v = top[key], let d = v.dict, let found = tensorsOf(d, path: key) { return found }
        }
        return tensorsOf(top, path: "")
    }

    private static func tensorsOf(_ d: CheckpointDict, path: String) -> Located? {
        var out: [(name: String, tensor: StoredTensor)] = []
        for (k, v) in d.entries {
            guard case .string(let name) = k, case .tensor(let t) = v else { continue }
            out.append((name, t))
        }
        guard !out.isEmpty else { return nil }
        return Located(path: path, kind: d.kind.rawValue, entries: out)
    }

    /// Every tensor in the tree with a dotted path (`optimizer.state.0.momentum_buffer`).
    public static func allTensors(_ root: CheckpointValue) -> [(path: String, tensor: StoredTensor)] {
        var out: [(path: String, tensor: StoredTensor)] = []
        // Iterative walk: deeply nested input cannot overflow the stack.
        var stack: [(String, CheckpointValue)] = [("", root)]
        var visited = 0
        while let (path, v) = stack.popLast() {
            visited += 1
            func child(_ k: String) -> String { path.isEmpty ? k : path + "." + k }
            switch v {
            case .tensor(let t): out.append((path, t))
            case .dict(let d):
                for (k, x) in d.entries.reversed() { stack.append((child(keyText(k)), x)) }
            case .list(let a), .tuple(let a), .set(let a):
                for (i, x) in a.enumerated().reversed() { stack.append((child(String(i)), x)) }
            case .object(let o):
                let parts = o.args + (o.state.map { [$0] } ?? []) + o.items
                for (i, x) in parts.enumerated().reversed() { stack.append((child("<\(o.global)>\(i)"), x)) }
            default: break
            }
        }
        return out
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
    static func keyText(_ k: CheckpointValue) -> String {
        if case .string(let s) = k { return s }
        return summary(k, depth: 1)
    }

    /// A dotted prefix shared by every name that loaders strip (`module.`, `_orig_mod.`, `model.`).
    static func commonPrefix(_ names: [String]) -> String? {
        for p in ["module.", "_orig_mod.", "model."] where !names.isEmpty && names.allSatisfy({ $0.hasPrefix(p) }) {
            return p
        }
        return nil
    }
}
