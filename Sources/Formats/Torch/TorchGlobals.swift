import Tensors

/// REDUCE / NEWOBJ / BUILD: rebuilding the values torch checkpoints hold, without executing.
///
/// Modelled globals (formats.md §A.2.2-A.2.4): `collections.OrderedDict` (+ BUILD `_metadata`),
/// `collections.Counter`, `builtins.set/frozenset/bytearray`, `_codecs.encode`,
/// `torch._utils._rebuild_tensor{,_v2,_v3}`, `_rebuild_parameter{,_with_state}` and
/// `torch._tensor._rebuild_from_type_v2` with a plain Tensor/Parameter type. Everything else
/// (quantized and sparse tensors, `torch.Size` and `torch.device` (kept so they round-trip), numpy scalars, Namespaces, modules) becomes
/// an ``Opaque`` that keeps its arguments, so storages inside are still listed.
extension Unpickler {
    /// The arguments of a call as a list (a tuple's items, or the value itself).
    func argList(_ args: PickleValue) -> [PickleValue] {
        sequence(args) ?? [args]
    }

    mutating func opaque(_ global: String, _ args: [PickleValue]) -> PickleValue {
        var n = PickleNode(.object(global))
        n.args = args
        return newNode(n)
    }

    mutating func reduce(_ callable: PickleValue, _ argsValue: PickleValue) throws(FormatError) -> PickleValue {
        let args = argList(argsValue)
        guard let name = callable.globalName else {
            return opaque("<call of a non-global>", [callable] + args)
        }
        switch name {
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            if let t = try rebuildTensor(args, dtype: nil) { return t }
        case "torch._utils._rebuild_tensor_v3":
            if args.count >= 7, let g = args[6].globalName, let d = TorchTypeNames.dtype(global: g),
                let t = try rebuildTensor(args, dtype: d)
            {
                return t
            }
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            if args.count >= 2, case .value(.tensor(var t)) = args[0] {
                t.isParameter = true
                t.requiresGrad = boolValue(args[1]) ?? false
                return .value(.tensor(t))
            }
        case "torch._utils._rebuild_qtensor":
            // Keep the placeholder, but with the integer representation as a real view.
            if let t = try rebuildTensor(Array(args.prefix(4)), dtype: nil) {
                return opaque(name, [t] + args.dropFirst())
            }
        case "torch._tensor._rebuild_from_type_v2":
            // (func, type, args, state): rebuild with func, keep plain Tensor/Parameter types.
            if args.count >= 3 {
                let inner = try reduce(args[0], args[2])
                let type = args[1].globalName ?? ""
                if case .value(.tensor(var t)) = inner,
                    type == "torch.Tensor" || type == "torch.nn.parameter.Parameter"
                {
                    if type != "torch.Tensor" { t.isParameter = true }
                    return .value(.tensor(t))
                }
                return opaque(type.isEmpty ? name : type, [inner] + args.dropFirst(3))
            }
        case "collections.OrderedDict", "builtins.dict", "collections.Counter":
            var node = PickleNode(
                .dict(name == "collections.OrderedDict" ? .orderedDict : name == "collections.Counter" ? .counter : .dict))
            if let first = args.first {
                if case .node(let i) = first, case .dict = nodes[i].kind {
                    for k in 0..<nodes[i].keys.count { node.setItem(nodes[i].keys[k], nodes[i].values[k]) }
                } else if let pairs = sequence(first) {
                    for p in pairs {
                        guard let kv = sequence(p), kv.count == 2 else { return opaque(name, args) }
                        node.setItem(kv[0], kv[1])
                    }
                } else {
                    return opaque(name, args)
                }
            }
            return newNode(node)
        case "builtins.set", "builtins.frozenset":
            if args.isEmpty { return newNode(PickleNode(.set)) }
            if let items = sequence(args[0]) { return newNode(PickleNode(.set, items: items)) }
        case "builtins.list":
            if args.isEmpty { return newNode(PickleNode(.list)) }
            if let items = sequence(args[0]) { return newNode(PickleNode(.list, items: items)) }
        case "_codecs.encode":
            if args.count >= 1, case .value(.string(let s)) = args[0] {
                let enc = args.count > 1 ? (args[1].stringValue ?? "") : "utf-8"
                if let b = encode(s, enc) { return .value(.bytes(b)) }
            }
        case "builtins.bytearray":
            if args.isEmpty { return .value(.bytes([])) }
            if case .value(.bytes(let b)) = args[0] { return .value(.bytes(b)) }
            if case .value(.string(let s)) = args[0], let b = encode(s, args.count > 1 ? (args[1].stringValue ?? "") : "utf-8") {
                return .value(.bytes(b))
            }
        default: break
        }
        return opaque(name, args)
    }

    mutating func newObject(_ cls: PickleValue, _ argsValue: PickleValue, kwargs: PickleValue?) throws(FormatError) -> PickleValue {
        let name = cls.globalName ?? "<instance of a non-global>"
        switch name {
        case "collections.OrderedDict": return newNode(PickleNode(.dict(.orderedDict)))
        case "builtins.dict": return newNode(PickleNode(.dict(.dict)))
        case "collections.Counter": return newNode(PickleNode(.dict(.counter)))
        case "builtins.set": return newNode(PickleNode(.set))
        case "builtins.list": return newNode(PickleNode(.list))
        default:
            var args = argList(argsValue)
            if let kwargs { args.append(kwargs) }
            return opaque(name, args)
        }
    }

    mutating func build(_ state: PickleValue) throws(FormatError) {
        let target = try top()
        guard case .node(let i) = target else { return }  // tensors: Python attributes are dropped
        switch nodes[i].kind {
        case .dict:
            // OrderedDict.__dict__ update: keep `_metadata`. State may be (dict, slots).
            var s = state
            if let pair = sequence(s), pair.count == 2, case .node = pair[0] { s = pair[0] }
            if case .node(let j) = s, case .dict = nodes[j].kind {
                for k in 0..<nodes[j].keys.count where nodes[j].keys[k].stringValue == "_metadata" {
                    nodes[i].state = nodes[j].values[k]
                }
            }
        case .object: nodes[i].state = state
        default: break
        }
    }

    func boolValue(_ v: PickleValue) -> Bool? {
        switch v {
        case .value(.bool(let b)): return b
        case .value(.int(let i)): return i != 0
        default: return nil
        }
    }

    func intValue(_ v: PickleValue) -> Int? {
        if case .value(.int(let i)) = v { return Int(exactly: i) }
        if case .value(.bool(let b)) = v { return b ? 1 : 0 }
        return nil
    }

    func intList(_ v: PickleValue) -> [Int]? {
        guard let items = sequence(v) else { return nil }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for x in items {
            guard let i = intValue(x) else { return nil }
            out.append(i)
        }
        return out
    }

    func encode(_ s: String, _ encoding: String) -> [UInt8]? {
        switch encoding.lowercased() {
        case "latin1", "latin-1", "iso-8859-1", "iso8859-1":
            var out: [UInt8] = []
            out.reserveCapacity(s.unicodeScalars.count)
            for u in s.unicodeScalars {
                guard u.value < 256 else { return nil }
                out.append(UInt8(u.value))
            }
            return out
        case "utf-8", "utf8", "ascii": return Array(s.utf8)
        default: return nil
        }
    }

    /// `(storage, offset, size, stride, [requires_grad, hooks, ...])` to a tensor; nil when
    /// the arguments do not have that form (the caller keeps an ``Opaque``).
    mutating func rebuildTensor(_ args: [PickleValue], dtype override: DType?) throws(FormatError) -> PickleValue? {
        guard args.count >= 4, case .storage(let storage) = args[0], let offset = intValue(args[1]),
            let shape = intList(args[2]), let strides = intList(args[3])
        else { return nil }
        guard let dtype = override ?? storage.dtype else { return nil }
        var bytes = storage.bytes
        if storage.bigEndian { bytes = swappedBytes(storage, dtype) }
        var t: StoredTensor
        do {
            t = try StoredTensor(
                storage: bytes, storageKey: storage.key, dtype: dtype, shape: shape, strides: strides,
                storageOffset: offset)
        } catch {
            throw FormatError(
                .invalid(
                    "tensor view (offset \(offset), shape \(Shapes.describe(shape)), strides \(Shapes.describe(strides))) does not fit storage \(storage.entry): \(error)"
                ),
                entry: storage.entry, offset: reader.base + opOffset)
        }
        if args.count >= 5 { t.requiresGrad = boolValue(args[4]) ?? false }
        return .value(.tensor(t))
    }

    /// A little-endian copy of a big-endian storage (cached per key and dtype width).
    mutating func swappedBytes(_ s: TorchStorage, _ dtype: DType) -> ByteSlice {
        let width = dtype.isComplex ? dtype.byteWidth / 2 : dtype.byteWidth
        guard width > 1 else { return s.bytes }
        let cacheKey = s.key + "#\(width)"
        if let c = swapped[cacheKey] { return c }
        var out = s.bytes.toArray()
        var i = 0
        while i + width <= out.count {
            out[i..<(i + width)].reverse()
            i += width
        }
        let slice = ByteSlice(out)
        swapped[cacheKey] = slice
        return slice
    }
}

extension PickleValue {
    /// The string, if this is a string leaf.
    var stringValue: String? {
        if case .value(.string(let s)) = self { return s }
        return nil
    }
}
