import Tensors

/// Turning the unpickler's arena graph into a ``CheckpointValue`` tree.
///
/// Iterative post-order walk: shared nodes are converted once (the result shares storage
/// through copy-on-write), a reference back to a node still being built (a cycle) becomes an
/// `Opaque("<recursive reference>")`, and the result's depth and logical size are bounded
/// by ``Unpickler/Limits`` so no later tree walk can blow the stack or run for ever.
extension Unpickler {
    func convert(_ root: PickleValue) throws(FormatError) -> CheckpointValue {
        guard case .node(let rootIndex) = root else { return leaf(root) }
        var state = [UInt8](repeating: 0, count: nodes.count)  // 0 new, 1 open, 2 done
        var done = [CheckpointValue?](repeating: nil, count: nodes.count)
        var size = [Int](repeating: 0, count: nodes.count)
        var depth = [Int](repeating: 0, count: nodes.count)
        var work: [(Int, Bool)] = [(rootIndex, false)]
        while let (n, expanded) = work.popLast() {
            if expanded {
                let (v, s, d) = try build(n, done: done, size: size, depth: depth)
                done[n] = v
                size[n] = s
                depth[n] = d
                state[n] = 2
                continue
            }
            guard state[n] == 0 else { continue }
            state[n] = 1
            work.append((n, true))
            forEachChild(n) { c in if state[c] == 0 { work.append((c, false)) } }
        }
        return done[rootIndex] ?? .none
    }

    private func forEachChild(_ n: Int, _ body: (Int) -> Void) {
        let node = nodes[n]
        for group in [node.items, node.keys, node.values, node.args] {
            for case .node(let c) in group { body(c) }
        }
        if case .node(let c)? = node.state { body(c) }
    }

    private func build(
        _ n: Int, done: [CheckpointValue?], size: [Int], depth: [Int]
    ) throws(FormatError) -> (CheckpointValue, Int, Int) {
        var total = 1
        var deepest = 0
        func child(_ v: PickleValue) -> CheckpointValue {
            guard case .node(let c) = v else {
                total = total &+ 1
                return leaf(v)
            }
            guard let value = done[c] else { return .object(Opaque(global: "<recursive reference>")) }
            total = total &+ size[c]
            deepest = max(deepest, depth[c])
            return value
        }
        let node = nodes[n]
        let value: CheckpointValue
        switch node.kind {
        case .list: value = .list(node.items.map(child))
        case .tuple: value = .tuple(node.items.map(child))
        case .set, .frozenset: value = .set(node.items.map(child))
        case .dict(let kind):
            var entries: [(key: CheckpointValue, value: CheckpointValue)] = []
            entries.reserveCapacity(node.keys.count)
            for i in 0..<node.keys.count { entries.append((child(node.keys[i]), child(node.values[i]))) }
            value = .dict(CheckpointDict(entries, kind: kind, metadata: node.state.map(child)))
        case .object(let global):
            var items = node.items.map(child)
            for i in 0..<node.keys.count { items.append(.tuple([child(node.keys[i]), child(node.values[i])])) }
            let o = Opaque(global: global, args: node.args.map(child), state: node.state.map(child), items: items)
            if decodesNumPy, let t = try numpyArray(o, n) {
                value = .tensor(t)
            } else {
                value = .object(o)
            }
        }
        guard deepest + 1 <= limits.maxDepth else {
            throw fail(.tooLarge(what: "pickle nesting depth", size: deepest + 1, limit: limits.maxDepth))
        }
        guard total >= 0, total <= limits.maxValues else {
            throw fail(.tooLarge(what: "pickle object tree (values)", size: total < 0 ? Int.max : total, limit: limits.maxValues))
        }
        return (value, total, deepest + 1)
    }

    /// The NumPy array `o` (arena node `n`) stands for, errors placed at the pickle's end.
    private func numpyArray(_ o: Opaque, _ n: Int) throws(FormatError) -> StoredTensor? {
        do { return try NumPyPickle.array(o, key: "numpy/\(n)") } catch var e {
            if e.offset == nil { e.offset = reader.base + opOffset }
            throw e
        }
    }

    /// A non-container stack value as a tree value.
    func leaf(_ v: PickleValue) -> CheckpointValue {
        switch v {
        case .value(let c): return c
        case .node: return .none
        case .storage(let s):
            // A bare storage (not wrapped in a tensor): list it as a flat tensor of its dtype.
            let dtype = s.dtype ?? .uint8
            let n = s.bytes.count / dtype.byteWidth
            let t = try? StoredTensor(
                storage: s.bytes, storageKey: s.key, dtype: dtype, shape: [n], strides: [1], storageOffset: 0)
            return .object(Opaque(global: s.typeName, args: t.map { [.tensor($0)] } ?? []))
        }
    }
}
