import Tensors

/// Reads the legacy tar format (torch <= 0.1.9, formats.md §A.3.2), enough for inspection.
///
/// Members: `storages` = pickle(count), then per storage pickle((key, location, type)) +
/// 8-byte LE element count + data, then pickle([(view_key, root_key, offset, numel)]);
/// `tensors` = pickle(count), then per tensor pickle((key, storage_key, type)), i32 ndim,
/// 4 padding bytes, ndim i64 sizes, ndim i64 strides, i64 storage offset; `pickle` = the
/// object, whose persistent ids are those tensor/storage keys; `sys_info`.
/// torch refuses this format with `weights_only=True`.
public enum TarReader {
    /// A member of a tar archive.
    struct Member {
        let name: String
        let data: ByteSlice
        let offset: Int
    }

    /// The regular-file members of a ustar/PAX archive (headers bounds-checked).
    static func members(_ bytes: ByteSlice) throws(FormatError) -> [Member] {
        var out: [Member] = []
        var at = 0
        while at + 512 <= bytes.count {
            let h = bytes.slice(at..<(at + 512)).toArray()
            if h.allSatisfy({ $0 == 0 }) { break }
            let name = String(decoding: h[0..<100].prefix { $0 != 0 }, as: UTF8.self)
            let sizeText = String(decoding: h[124..<136].prefix { $0 != 0 }, as: UTF8.self).trimmingSpaces
            guard let size = Int(sizeText.isEmpty ? "0" : sizeText, radix: 8), size >= 0 else {
                throw FormatError(.invalid("tar header size \"\(sizeText)\" is not octal"), entry: name, offset: at + 124)
            }
            let start = at + 512
            guard size <= bytes.count - start else {
                throw FormatError(.truncated(needed: size, available: bytes.count - start), entry: name, offset: start)
            }
            let type = h[156]
            if type == 0 || type == 0x30 {
                out.append(Member(name: name, data: bytes.slice(start..<(start + size)), offset: start))
            }
            at = start + (size + 511) / 512 * 512
        }
        return out
    }

    /// Reads a legacy tar checkpoint.
    public static func read(_ bytes: ByteSlice) throws(FormatError) -> Checkpoint {
        let all = try members(bytes)
        func member(_ n: String) throws(FormatError) -> Member {
            guard let m = all.first(where: { $0.name == n }) else { throw FormatError(.missing("tar member \(n)"), entry: n) }
            return m
        }
        var objects: [String: PickleValue] = [:]
        // storages
        let sm = try member("storages")
        var r = ByteReader(sm.data, base: sm.offset)
        func pickle(_ r: inout ByteReader) throws(FormatError) -> (PickleValue, Unpickler) {
            var u = Unpickler(r.bytes.slice(r.offset..<r.bytes.count), base: r.base + r.offset)
            let v = try u.run()
            r.offset += u.endOffset
            return (v, u)
        }
        var storages: [String: TorchStorage] = [:]
        try withEntry("storages") { () throws(FormatError) in
            let (c, cu) = try pickle(&r)
            guard let count = cu.intValue(c), count >= 0, count <= r.remaining / 8 else {
                throw r.error(.invalid("bad storage count"))
            }
            for _ in 0..<count {
                let (t, tu) = try pickle(&r)
                guard let items = tu.sequence(t), items.count == 3, let key = LegacyReader.keyString(items[0]),
                    let g = items[2].globalName, case .typed(let dtype)? = TorchTypeNames.storageKind(g)
                else { throw r.error(.invalid("storage header is not (key, location, storage type)")) }
                let n = try r.i64()
                let (bytes, o) = Int(n).multipliedReportingOverflow(by: dtype.byteWidth)
                guard n >= 0, !o else { throw r.error(.invalid("storage \(key): bad element count \(n)")) }
                let s = TorchStorage(key: key, typeName: g, dtype: dtype, bytes: try r.slice(bytes), entry: "storages/\(key)")
                storages[key] = s
                objects[key] = .storage(s)
            }
            let (v, vu) = try pickle(&r)
            for view in vu.sequence(v) ?? [] {
                guard let f = vu.sequence(view), f.count == 4, let target = LegacyReader.keyString(f[0]),
                    let rootKey = LegacyReader.keyString(f[1]), let root = storages[rootKey], let dtype = root.dtype,
                    let off = vu.intValue(f[2]), let numel = vu.intValue(f[3]), off >= 0, numel >= 0,
                    off <= root.bytes.count / dtype.byteWidth, numel <= root.bytes.count / dtype.byteWidth - off
                else { throw r.error(.invalid("bad storage view")) }
                var s = root
                s.key = target
                s.bytes = root.bytes.slice((off * dtype.byteWidth)..<((off + numel) * dtype.byteWidth))
                storages[target] = s
                objects[target] = .storage(s)
            }
        }
        // tensors
        let tm = try member("tensors")
        var t = ByteReader(tm.data, base: tm.offset)
        try withEntry("tensors") { () throws(FormatError) in
            let (c, cu) = try pickle(&t)
            guard let count = cu.intValue(c), count >= 0, count <= t.remaining / 16 else {
                throw t.error(.invalid("bad tensor count"))
            }
            for _ in 0..<count {
                let (h, hu) = try pickle(&t)
                guard let items = hu.sequence(h), items.count == 3, let key = LegacyReader.keyString(items[0]),
                    let sk = LegacyReader.keyString(items[1])
                else { throw t.error(.invalid("tensor header is not (key, storage key, type)")) }
                guard let s = storages[sk], let dtype = s.dtype else { throw t.error(.missing("storage \(sk) of tensor \(key)")) }
                let ndim = Int(try t.i32())
                guard ndim >= 0, ndim <= 64 else { throw t.error(.invalid("tensor \(key): bad ndim \(ndim)")) }
                try t.skip(4)
                var shape: [Int] = []
                var strides: [Int] = []
                for _ in 0..<ndim { shape.append(Int(try t.i64())) }
                for _ in 0..<ndim { strides.append(Int(try t.i64())) }
                let off = Int(try t.i64())
                do throws(StoredTensor.ViewError) {
                    let st = try StoredTensor(
                        storage: s.bytes, storageKey: sk, dtype: dtype, shape: shape, strides: strides, storageOffset: off)
                    objects[key] = .value(.tensor(st))
                } catch { throw FormatError(error, tensor: key) }
            }
        }
        // pickle
        let pm = try member("pickle")
        let load: Unpickler.PersistentLoad = { pid, u throws(FormatError) in
            if let t = u.sequence(pid) { return t.first ?? .none }  // ('module', class, ...)
            guard let k = LegacyReader.keyString(pid), let o = objects[k] else {
                throw FormatError(.missing("tensor or storage \(LegacyReader.keyString(pid) ?? "?") of a persistent id"))
            }
            return o
        }
        var u = Unpickler(pm.data, base: pm.offset, persistentLoad: load)
        let root = try withEntry("pickle") { () throws(FormatError) in try u.load() }
        var facts: [(key: String, value: String)] = [
            ("members", all.map(\.name).joined(separator: ", ")), ("storages", String(storages.count)),
        ]
        facts += PickleFacts.facts(u, extraReasons: ["legacy tar format"])
        return Checkpoint(
            format: .torchTar, root: root, facts: facts, globals: u.globals,
            unsafeGlobals: u.unsafeGlobals + ["<legacy tar format>"])
    }

    static func withEntry<R>(_ name: String, _ body: () throws(FormatError) -> R) throws(FormatError) -> R {
        do { return try body() } catch var e {
            if e.entry == nil { e.entry = name }
            throw e
        }
    }
}
