import Tensors

extension Checkpoint {
    /// The model weights: see ``CheckpointValue/stateDict()``.
    public func stateDict() -> (path: String, entries: [(name: String, tensor: StoredTensor)])? {
        root.stateDict()
    }

    /// Every tensor in the tree: see ``CheckpointValue/allTensors()``.
    public func allTensors() -> [(path: String, tensor: StoredTensor)] { root.allTensors() }
}

extension CheckpointValue {
    /// The state dict, chosen as QTool's loader does (seed-reference §12.3): the `state_dict`
    /// entry if present, else `model`, else the root itself when it is a dict holding tensors.
    ///
    /// `path` is the key used (`""` for the root); `entries` are the mapping's tensor values in
    /// order (non-tensor values such as nested dicts are skipped).
    public func stateDict() -> (path: String, entries: [(name: String, tensor: StoredTensor)])? {
        guard let d = dict else { return nil }
        func tensors(_ d: CheckpointDict) -> [(name: String, tensor: StoredTensor)] {
            d.entries.compactMap { e in
                if case .tensor(let t) = e.value { return (Self.keyText(e.key), t) }
                return nil
            }
        }
        for key in ["state_dict", "model"] {
            if let inner = d[key]?.dict { return (key, tensors(inner)) }
        }
        let own = tensors(d)
        return own.isEmpty ? nil : ("", own)
    }

    /// Every tensor in the tree with a dotted path: dict keys and list/tuple indices
    /// (`optimizer.state.0.momentum_buffer`), `args.<i>` / `state` / `items.<i>` inside
    /// placeholders. A quantized tensor placeholder lists its integer tensor under its own path.
    public func allTensors() -> [(path: String, tensor: StoredTensor)] {
        var out: [(path: String, tensor: StoredTensor)] = []
        var work: [(String, CheckpointValue)] = [("", self)]
        func join(_ p: String, _ k: String) -> String { p.isEmpty ? k : p + "." + k }
        while let (path, v) = work.popLast() {
            var children: [(String, CheckpointValue)] = []
            switch v {
            case .tensor(let t): out.append((path, t))
            case .dict(let d):
                children = d.entries.filter { $0.value.mayHoldTensors }.map { (join(path, Self.keyText($0.key)), $0.value) }
            case .list(let a), .tuple(let a), .set(let a):
                // Scalars are skipped before their path is built (long lists of floats are common).
                children = a.enumerated().filter { $0.element.mayHoldTensors }.map { (join(path, String($0.offset)), $0.element) }
            case .object(let o):
                if o.global == "torch._utils._rebuild_qtensor", case .tensor(let t)? = o.args.first {
                    out.append((path, t))
                    children = o.args.enumerated().dropFirst().map { (join(path, "args.\($0.offset)"), $0.element) }
                } else {
                    children = o.args.enumerated().map { (join(path, "args.\($0.offset)"), $0.element) }
                }
                if let s = o.state { children.append((join(path, "state"), s)) }
                children += o.items.enumerated().map { (join(path, "items.\($0.offset)"), $0.element) }
            default: break
            }
            work.append(contentsOf: children.reversed())
        }
        return out
    }

    /// True for tensors and values that can contain them.
    var mayHoldTensors: Bool {
        switch self {
        case .tensor, .dict, .list, .tuple, .set, .object: return true
        default: return false
        }
    }

    /// A dict key as path text (`str` as is, numbers in decimal).
    static func keyText(_ k: CheckpointValue) -> String {
        switch k {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return b ? "True" : "False"
        case .float(let f): return String(f)
        case .none: return "None"
        default: return k.typeName
        }
    }
}
