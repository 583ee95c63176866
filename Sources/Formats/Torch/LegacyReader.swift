import Tensors

/// Reads the legacy magic-number stream (torch 0.1.10 ... 1.5 default, formats.md §A.3.1).
///
/// Layout: pickle(magic 0x1950A86A20F9469CFC6C), pickle(1001), pickle(sys_info), pickle(object),
/// pickle(list of storage keys), then per key an 8-byte little-endian element count followed by
/// the storage's little-endian bytes. Element sizes come from the storage types the object
/// pickle names, so the object pickle is scanned once for them before it is rebuilt with
/// the storages in place. Persistent ids are 6-tuples
/// `('storage', type, root_key, location, numel, view_metadata)`.
public enum LegacyReader {
    /// The first 15 bytes of every legacy file (pickle of the magic number).
    public static let magic: [UInt8] = [
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
    ]
    /// The magic integer's little-endian bytes.
    static let magicInt: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    /// Reads a legacy checkpoint.
    /// - Throws: ``FormatError`` naming the storage key and offset.
    public static func read(_ bytes: ByteSlice) throws(FormatError) -> Checkpoint {
        var offset = 0
        func next(_ load: Unpickler.PersistentLoad? = nil, what: String) throws(FormatError) -> (PickleValue, Unpickler) {
            var u = Unpickler(bytes.slice(offset..<bytes.count), base: offset, persistentLoad: load)
            do {
                let v = try u.run()
                offset += u.endOffset
                return (v, u)
            } catch var e {
                if e.entry == nil { e.entry = what }
                throw e
            }
        }
        let (m, mu) = try next(what: "magic number pickle")
        guard case .bigInt(let mb) = mu.leaf(m), mb == magicInt else {
            throw FormatError(
                .badMagic(expected: "legacy torch magic number", found: bytes.slice(0..<min(16, bytes.count)).toArray()), offset: 0)
        }
        let (p, pu) = try next(what: "protocol version pickle")
        guard case .value(.int(let protocolVersion)) = p, protocolVersion == 1001 else {
            throw FormatError(.unsupportedVersion(found: pu.intValue(p) ?? -1, newestSupported: 1001), entry: "protocol version pickle")
        }
        let (si, siu) = try next(what: "sys_info pickle")
        let sysInfo = try siu.convert(si)
        var bigEndian = false
        var typeSizes = "absent"
        if let d = sysInfo.dict {
            if case .bool(let le)? = d["little_endian"] { bigEndian = !le }
            if let ts = d["type_sizes"]?.dict {
                typeSizes = ts.entries.map { "\(CheckpointValue.keyText($0.key))=\(describeInt($0.value))" }
                    .joined(separator: " ")
            }
        }

        // Pass 1: which storage type does each root key have?
        let objectStart = offset
        var types: [String: (String, DType)] = [:]
        let scan: Unpickler.PersistentLoad = { pid, u throws(FormatError) in
            guard let t = u.sequence(pid), t.count >= 5, t[0].stringValue == "storage" else { return .none }
            if let g = t[1].globalName, case .typed(let d)? = TorchTypeNames.storageKind(g), let k = keyString(t[2]) {
                if types[k] == nil { types[k] = (g, d) }
            }
            return .none
        }
        _ = try next(scan, what: "object pickle")
        let objectEnd = offset

        // Storage keys and data.
        let (kv, ku) = try next(what: "storage key list pickle")
        guard let keyValues = ku.sequence(kv) else {
            throw FormatError(.invalid("storage key list is not a list"), offset: objectEnd)
        }
        var data: [String: ByteSlice] = [:]
        for k in keyValues {
            guard let key = keyString(k) else { throw FormatError(.invalid("storage key is not a string"), offset: offset) }
            guard let (typeName, dtype) = types[key] else {
                throw FormatError(
                    .missing("storage type for key \(key) (not referenced by the object pickle)"), entry: "storage \(key)", offset: offset)
            }
            var r = ByteReader(bytes, offset: offset)
            let count = try withKey(key) { () throws(FormatError) in try r.i64() }
            let (n, o) = Int(count).multipliedReportingOverflow(by: dtype.byteWidth)
            guard count >= 0, !o, n <= r.remaining else {
                throw FormatError(
                    .truncated(needed: o || count < 0 ? Int.max : n, available: r.remaining),
                    entry: "storage \(key) (\(typeName))", offset: offset + 8)
            }
            data[key] = try r.slice(n)
            offset = r.offset
        }

        // Pass 2: rebuild with the storages.
        var views: [String: TorchStorage] = [:]
        let load: Unpickler.PersistentLoad = { pid, u throws(FormatError) in
            guard let t = u.sequence(pid), let kind = t.first?.stringValue else {
                throw FormatError(.invalid("persistent id is not a tuple"))
            }
            if kind == "module" { return t.count > 1 ? t[1] : .none }
            guard kind == "storage", t.count >= 6 else {
                throw FormatError(.invalid("unknown persistent id type \"\(kind.prefix(30))\""))
            }
            guard let typeName = t[1].globalName, case .typed(let dtype)? = TorchTypeNames.storageKind(typeName) else {
                throw FormatError(.unsupportedDType(t[1].globalName ?? "storage type that is not a global"))
            }
            guard let key = keyString(t[2]) else { throw FormatError(.invalid("storage key is not a string")) }
            guard let all = data[key] else {
                throw FormatError(.missing("storage \(key) in the data section"), entry: "storage \(key)")
            }
            guard let numel = u.intValue(t[4]), numel >= 0, numel <= all.count / dtype.byteWidth else {
                throw FormatError(
                    .sizeMismatch(expectedBytes: (u.intValue(t[4]) ?? -1) &* dtype.byteWidth, foundBytes: all.count),
                    entry: "storage \(key)")
            }
            let root = TorchStorage(key: key, typeName: typeName, dtype: dtype, bytes: all, entry: "storage \(key)", bigEndian: bigEndian)
            guard let vm = u.sequence(t[5]) else { return .storage(root) }
            guard vm.count == 3, let viewKey = keyString(vm[0]), let off = u.intValue(vm[1]), let size = u.intValue(vm[2]),
                off >= 0, size >= 0, off <= all.count / dtype.byteWidth, size <= all.count / dtype.byteWidth - off
            else {
                throw FormatError(
                    .invalid("storage view metadata of \(key) is not (key, offset, size) within the storage"), entry: "storage \(key)")
            }
            if let v = views[viewKey] { return .storage(v) }
            var v = root
            v.key = viewKey
            v.bytes = all.slice((off * dtype.byteWidth)..<((off + size) * dtype.byteWidth))
            views[viewKey] = v
            return .storage(v)
        }
        var u = Unpickler(bytes.slice(objectStart..<objectEnd), base: objectStart, persistentLoad: load)
        let root: CheckpointValue
        do { root = try u.load() } catch var e {
            if e.entry == nil { e.entry = "object pickle" }
            throw e
        }
        var facts: [(key: String, value: String)] = [
            ("protocol_version", "1001"), ("little_endian", bigEndian ? "no" : "yes"), ("type_sizes", typeSizes),
            ("storages", String(keyValues.count)), ("trailing bytes", String(bytes.count - offset)),
        ]
        facts += PickleFacts.facts(u)
        return Checkpoint(format: .torchLegacy, root: root, facts: facts, globals: u.globals, unsafeGlobals: u.unsafeGlobals)
    }

    static func keyString(_ v: PickleValue) -> String? {
        switch v {
        case .value(.string(let s)): return s
        case .value(.int(let i)): return String(i)
        case .value(.bytes(let b)): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    static func describeInt(_ v: CheckpointValue) -> String {
        if case .int(let i) = v { return String(i) }
        return v.typeName
    }

    static func withKey<R>(_ key: String, _ body: () throws(FormatError) -> R) throws(FormatError) -> R {
        do { return try body() } catch var e {
            if e.entry == nil { e.entry = "storage \(key)" }
            throw e
        }
    }
}
