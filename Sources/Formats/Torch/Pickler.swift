import Tensors

/// Writes a ``CheckpointValue`` as a protocol-2 pickle that `torch.load(weights_only=True)`
/// accepts (formats.md §A.2.5 and Appendix 1 "Writer").
///
/// Only the weights_only-safe opcodes are emitted (no memo), and only allowlisted globals.
/// Tensors become `_rebuild_tensor_v2` (12 legacy-storage dtypes) or `_rebuild_tensor_v3` +
/// `UntypedStorage` + dtype global (the rest); Parameters wrap that in `_rebuild_parameter`.
/// Views that share a storage keep one storage (first-use key order "0", "1", ...) with their
/// own offsets and strides. `OrderedDict._metadata` is written back with BUILD.
/// Placeholders (``Opaque``) are written only for allowlisted globals (e.g. `torch.device`);
/// anything else is refused with an error naming its path.
struct Pickler {
    /// Persistent-id form: zip (5-tuple) or legacy (6-tuple with `None` view metadata).
    enum Flavor { case zip, legacy }

    /// A storage the pickle references, in first-use order.
    struct Storage {
        var key: String
        var dtype: DType
        var bytes: ByteSlice
        var typeName: String
        var numel: Int
    }

    let flavor: Flavor
    /// Deepest nesting written (the writer recurses).
    var maxDepth = 1000
    private(set) var out = ByteWriter()
    private(set) var storages: [Storage] = []
    private var storageIndex: [StorageIdentity: Int] = [:]
    /// Key for storage i (legacy writers may choose other keys).
    var keyForIndex: (Int) -> String = { String($0) }

    struct StorageIdentity: Hashable {
        let store: ObjectIdentifier
        let lower: Int
        let upper: Int
        let key: String
        let dtype: DType
    }

    init(flavor: Flavor) { self.flavor = flavor }

    typealias O = PickleOpcode

    /// Pickles `value` (PROTO 2 ... STOP) and returns the bytes; storages are in ``storages``.
    mutating func pickle(_ value: CheckpointValue) throws(FormatError) -> [UInt8] {
        out = ByteWriter()
        out.u8(O.proto)
        out.u8(2)
        try write(value, path: "", depth: 0)
        out.u8(O.stop)
        return out.bytes
    }

    func refuse(_ what: String, _ path: String) -> FormatError {
        FormatError(
            .unsupported("cannot write \(what) at \(path.isEmpty ? "<root>" : path) in a weights_only-safe checkpoint"),
            tensor: path.isEmpty ? nil : path)
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    // MARK: scalars

    mutating func int(_ v: Int64) {
        if v >= 0, v < 256 {
            out.u8(O.binint1)
            out.u8(UInt8(v))
        } else if v >= 256, v < 65536 {
            out.u8(O.binint2)
            out.u16(UInt16(v))
        } else if let i = Int32(exactly: v) {
            out.u8(O.binint)
            out.u32(UInt32(bitPattern: i))
        } else {
            var b: [UInt8] = []
            var x = v
            for _ in 0..<8 {
                b.append(UInt8(truncatingIfNeeded: x))
                x >>= 8
            }
            while b.count > 1, (b[b.count - 1] == 0 && b[b.count - 2] & 0x80 == 0) || (b[b.count - 1] == 0xff && b[b.count - 2] & 0x80 != 0)
            {
                b.removeLast()
            }
            out.u8(O.long1)
            out.u8(UInt8(b.count))
            out.append(b)
        }
    }

    mutating func string(_ s: String) {
        let b = Array(s.utf8)
        out.u8(O.binunicode)
        out.u32(UInt32(b.count))
        out.append(b)
    }

    mutating func global(_ full: String, _ path: String) throws(FormatError) {
        guard WeightsOnlyAllowlist.allows(full), let dot = full.lastIndex(of: ".") else {
            throw refuse("global \(full) (not in torch's weights_only allowlist)", path)
        }
        out.u8(O.global)
        out.append(String(full[..<dot]) + "\n" + String(full[full.index(after: dot)...]) + "\n")
    }

    /// Emits `items` as a tuple.
    mutating func tuple(_ count: Int, _ body: (inout Pickler) throws(FormatError) -> Void) throws(FormatError) {
        if count == 0 {
            out.u8(O.emptyTuple)
            return
        }
        if count > 3 { out.u8(O.mark) }
        try body(&self)
        out.u8(count > 3 ? O.tuple : O.tuple1 + UInt8(count - 1))
    }

    mutating func emptyOrderedDict() throws(FormatError) {
        try global("collections.OrderedDict", "")
        out.u8(O.emptyTuple)
        out.u8(O.reduce)
    }

    // MARK: values

    mutating func write(_ v: CheckpointValue, path: String, depth: Int) throws(FormatError) {
        guard depth < maxDepth else { throw refuse("a value nested deeper than \(maxDepth) levels", path) }
        switch v {
        case .none: out.u8(O.none)
        case .bool(let b): out.u8(b ? O.newtrue : O.newfalse)
        case .int(let i): int(i)
        case .bigInt(let b):
            guard b.count <= 255 else { throw refuse("an integer of \(b.count) bytes", path) }
            out.u8(O.long1)
            out.u8(UInt8(b.count))
            out.append(b)
        case .float(let d):
            out.u8(O.binfloat)
            let bits = d.bitPattern
            for k in stride(from: 56, through: 0, by: -8) { out.u8(UInt8(truncatingIfNeeded: bits >> UInt64(k))) }
        case .string(let s): string(s)
        case .bytes(let b):
            try global("_codecs.encode", path)
            var s = String.UnicodeScalarView()
            for x in b { s.append(Unicode.Scalar(x)) }
            string(String(s))
            string("latin1")
            out.u8(O.tuple2)
            out.u8(O.reduce)
        case .list(let items):
            out.u8(O.emptyList)
            try batched(items.count, single: O.append, multi: O.appends) { (p: inout Pickler, i: Int) throws(FormatError) in
                try p.write(items[i], path: Self.join(path, String(i)), depth: depth + 1)
            }
        case .tuple(let items):
            try tuple(items.count) { (p: inout Pickler) throws(FormatError) in
                for (i, x) in items.enumerated() { try p.write(x, path: Self.join(path, String(i)), depth: depth + 1) }
            }
        case .set(let items):
            try global("builtins.set", path)
            out.u8(O.emptyList)
            try batched(items.count, single: O.append, multi: O.appends) { (p: inout Pickler, i: Int) throws(FormatError) in
                try p.write(items[i], path: Self.join(path, String(i)), depth: depth + 1)
            }
            out.u8(O.tuple1)
            out.u8(O.reduce)
        case .dict(let d): try dict(d, path: path, depth: depth)
        case .tensor(let t): try tensor(t, path: path)
        case .global(let g): try global(g, path)
        case .object(let o): try object(o, path: path, depth: depth)
        }
    }

    /// `count` items in MARK ... `multi` batches of at most 1000 (a lone item uses `single`).
    mutating func batched(
        _ count: Int, single: UInt8, multi: UInt8, _ item: (inout Pickler, Int) throws(FormatError) -> Void
    ) throws(FormatError) {
        var i = 0
        while i < count {
            let n = min(1000, count - i)
            if n == 1 {
                try item(&self, i)
                out.u8(single)
            } else {
                out.u8(O.mark)
                for k in i..<(i + n) { try item(&self, k) }
                out.u8(multi)
            }
            i += n
        }
    }

    mutating func dict(_ d: CheckpointDict, path: String, depth: Int) throws(FormatError) {
        switch d.kind {
        case .dict: out.u8(O.emptyDict)
        case .orderedDict: try emptyOrderedDict()
        case .counter:
            try global("collections.Counter", path)
            out.u8(O.emptyTuple)
            out.u8(O.reduce)
        }
        let entries = d.entries
        try batched(entries.count, single: O.setitem, multi: O.setitems) { (p: inout Pickler, i: Int) throws(FormatError) in
            let sub = Self.join(path, CheckpointValue.keyText(entries[i].key))
            try p.write(entries[i].key, path: sub, depth: depth + 1)
            try p.write(entries[i].value, path: sub, depth: depth + 1)
        }
        if let m = d.metadata {
            guard d.kind == .orderedDict else { throw refuse("_metadata on a plain dict", path) }
            out.u8(O.emptyDict)
            string("_metadata")
            try write(m, path: Self.join(path, "_metadata"), depth: depth + 1)
            out.u8(O.setitem)
            out.u8(O.build)
        }
    }

    mutating func object(_ o: Opaque, path: String, depth: Int) throws(FormatError) {
        if o.global == "torch._utils._rebuild_qtensor" {
            throw refuse("a quantized tensor (not supported by the writer yet)", path)
        }
        if o.global.hasSuffix("Storage") || o.global.hasPrefix("torch._utils.") || !o.items.isEmpty {
            throw refuse("a \(o.global) object", path)
        }
        try global(o.global, path)
        try tuple(o.args.count) { (p: inout Pickler) throws(FormatError) in
            for (i, a) in o.args.enumerated() { try p.write(a, path: Self.join(path, "args.\(i)"), depth: depth + 1) }
        }
        out.u8(O.reduce)
        if let s = o.state {
            try write(s, path: Self.join(path, "state"), depth: depth + 1)
            out.u8(O.build)
        }
    }

    mutating func tensor(_ t: StoredTensor, path: String) throws(FormatError) {
        if t.isParameter { try global("torch._utils._rebuild_parameter", path) }
        let legacyClass = TorchTypeNames.legacyStorageClass(t.dtype)
        try global(legacyClass == nil ? "torch._utils._rebuild_tensor_v3" : "torch._utils._rebuild_tensor_v2", path)
        out.u8(O.mark)
        // storage persistent id
        let w = t.dtype.byteWidth
        let numel = t.storage.count / w
        let id = StorageIdentity(
            store: ObjectIdentifier(t.storage.store), lower: t.storage.range.lowerBound,
            upper: t.storage.range.upperBound, key: t.storageKey, dtype: t.dtype)
        let index: Int
        if let i = storageIndex[id] {
            index = i
        } else {
            index = storages.count
            storageIndex[id] = index
            let typeName = legacyClass.map { "torch." + $0 } ?? "torch.storage.UntypedStorage"
            storages.append(
                Storage(
                    key: keyForIndex(index), dtype: t.dtype, bytes: t.storage.slice(0..<(numel * w)), typeName: typeName,
                    numel: legacyClass == nil ? numel * w : numel))
        }
        let s = storages[index]
        out.u8(O.mark)
        string("storage")
        try global(s.typeName, path)
        string(s.key)
        string("cpu")
        int(Int64(s.numel))
        if flavor == .legacy { out.u8(O.none) }
        out.u8(O.tuple)
        out.u8(O.binpersid)
        int(Int64(t.storageOffset))
        try tuple(t.shape.count) { (p: inout Pickler) throws(FormatError) in for d in t.shape { p.int(Int64(d)) } }
        try tuple(t.strides.count) { (p: inout Pickler) throws(FormatError) in for d in t.strides { p.int(Int64(d)) } }
        out.u8(t.requiresGrad && !t.isParameter ? O.newtrue : O.newfalse)
        try emptyOrderedDict()
        if legacyClass == nil { try global(TorchTypeNames.dtypeGlobal(t.dtype), path) }
        out.u8(O.tuple)
        out.u8(O.reduce)
        if t.isParameter {
            out.u8(t.requiresGrad ? O.newtrue : O.newfalse)
            try emptyOrderedDict()
            out.u8(O.tuple3)
            out.u8(O.reduce)
        }
    }
}
