import Tensors

/// Reads a `torch.save` zip archive (torch >= 1.6, formats.md §A.1).
///
/// The archive folder is everything before the first `/` of the first central-directory
/// entry (torch's rule); `<folder>/data.pkl` and `<folder>/version` (1...10) are required,
/// storages are `<folder>/data/<key>` and stay windows into the mapped file when stored.
/// A `constants.pkl` record marks a TorchScript archive: it is read as far as possible and
/// reported (torch refuses it with `weights_only=True`).
public enum TorchZipReader {
    /// Newest archive `version` torch (and qtools) reads.
    public static let newestVersion = 10

    /// Reads the archive's object tree and facts.
    /// - Parameter verifyCRC: check every record's CRC-32 (torch itself never does).
    /// - Throws: ``FormatError`` naming the record and offset.
    public static func read(_ bytes: ByteSlice, verifyCRC: Bool = false) throws(FormatError) -> Checkpoint {
        let zip = try ZipArchive(bytes)
        guard let first = zip.entries.first else { throw FormatError(.missing("records: the zip archive is empty")) }
        guard let slash = first.name.firstIndex(of: "/") else {
            throw FormatError(.invalid("file in archive is not in a subdirectory"), entry: first.name)
        }
        let folder = String(first.name[..<slash])
        func record(_ name: String) -> ZipEntry? { zip.entry(named: folder + "/" + name) }
        func text(_ e: ZipEntry) throws(FormatError) -> String {
            guard e.uncompressedSize <= 4096 else {
                throw FormatError(.tooLarge(what: "text record", size: e.uncompressedSize, limit: 4096), entry: e.name)
            }
            return String(decoding: try zip.wholeData(of: e).toArray(), as: UTF8.self).trimmingSpaces
                .trimmingCharacters(in: "\n")
        }

        // version (required), byteorder (optional)
        guard let versionEntry = record("version") ?? record(".data/version") else {
            throw FormatError(.missing("record \(folder)/version"), entry: folder + "/version")
        }
        let versionText = try text(versionEntry)
        guard let version = Int(versionText) else {
            throw FormatError(.invalid("version record holds \"\(versionText.prefix(20))\", not a number"), entry: versionEntry.name)
        }
        guard (1...newestVersion).contains(version) else {
            throw FormatError(.unsupportedVersion(found: version, newestSupported: newestVersion), entry: versionEntry.name)
        }
        var bigEndian = false
        var byteorder = "absent (little assumed)"
        if let b = record("byteorder") {
            byteorder = try text(b)
            guard byteorder == "little" || byteorder == "big" else {
                throw FormatError(.invalid("byteorder record holds \"\(byteorder.prefix(20))\""), entry: b.name)
            }
            bigEndian = byteorder == "big"
        }
        let isTorchScript = record("constants.pkl") != nil

        guard let pklEntry = record("data.pkl") else {
            throw FormatError(.missing("record \(folder)/data.pkl"), entry: folder + "/data.pkl")
        }
        let pkl = try zip.wholeData(of: pklEntry)

        // Storages: one per key, shared by all views.
        let cache = StorageCache()
        let load: Unpickler.PersistentLoad = { pid, u throws(FormatError) in
            guard let t = u.sequence(pid), t.count >= 5, t[0].stringValue == "storage" else {
                throw FormatError(.invalid("persistent id is not a ('storage', type, key, location, numel) tuple"))
            }
            guard let typeName = t[1].globalName, let kind = TorchTypeNames.storageKind(typeName) else {
                throw FormatError(.unsupportedDType(t[1].globalName ?? "storage type that is not a global"))
            }
            let key: String
            switch t[2] {
            case .value(.string(let s)): key = s
            case .value(.int(let i)): key = String(i)
            default: throw FormatError(.invalid("storage key is not a string"))
            }
            guard let numel = u.intValue(t[4]), numel >= 0 else {
                throw FormatError(.invalid("storage \(key): numel is not a non-negative integer"))
            }
            if let s = cache.storages[key] { return .storage(s) }
            let name = folder + "/data/" + key
            guard let e = zip.entry(named: name) else {
                throw FormatError(.missing("storage record \(name)"), entry: name)
            }
            let dtype: DType?
            if case .typed(let d) = kind { dtype = d } else { dtype = nil }
            let (need, o) = numel.multipliedReportingOverflow(by: dtype?.byteWidth ?? 1)
            guard !o, need <= e.uncompressedSize else {
                throw FormatError(
                    .sizeMismatch(expectedBytes: o ? Int.max : need, foundBytes: e.uncompressedSize), entry: name)
            }
            let data = try zip.data(of: e)
            let s = TorchStorage(key: key, typeName: typeName, dtype: dtype, bytes: data, entry: name, bigEndian: bigEndian)
            cache.storages[key] = s
            return .storage(s)
        }
        var u = Unpickler(pkl, persistentLoad: load)
        let root: CheckpointValue
        do { root = try u.load() } catch var e {
            if e.entry == nil { e.entry = pklEntry.name }
            throw e
        }
        if verifyCRC { for e in zip.entries { try zip.verifyCRC(of: e) } }

        // Facts.
        var facts: [(key: String, value: String)] = []
        facts.append(("records", String(zip.entries.count)))
        facts.append(("archive folder", folder))
        facts.append(("zip64", zip.hasZip64EndRecord || zip.entries.contains { $0.usesZip64 } ? "yes" : "no"))
        let dataRecords = zip.entries.filter { $0.uncompressedSize > 0 }
        facts.append(("alignment", dataRecords.allSatisfy { $0.dataOffset % 64 == 0 } ? "64" : "unaligned"))
        facts.append(("compressed records", String(zip.entries.filter { $0.method != 0 }.count)))
        let zeroCRCs = dataRecords.filter { $0.crc32 == 0 }.count
        let crc = zeroCRCs == 0 ? "present" : zeroCRCs == dataRecords.count ? "zero" : "partly zero"
        facts.append(("crc", verifyCRC ? crc + ", verified" : crc))
        facts.append(("version", String(version)))
        facts.append(("format_version", try record(".format_version").map(text) ?? "absent"))
        if let a = record(".storage_alignment") { facts.append(("storage_alignment", try text(a))) }
        facts.append(("byteorder", byteorder))
        facts.append(("storages", String(cache.storages.count)))
        facts.append(("torchscript", isTorchScript ? "yes (torch.load(weights_only=True) refuses TorchScript archives)" : "no"))
        var refused = u.unsafeGlobals
        if isTorchScript { refused.append("<TorchScript archive: constants.pkl>") }
        facts += PickleFacts.facts(u, extraReasons: isTorchScript ? ["TorchScript archive"] : [])
        return Checkpoint(format: .torchZip, root: root, facts: facts, globals: u.globals, unsafeGlobals: refused)
    }
}

/// Storages met so far while unpickling (shared between views).
final class StorageCache {
    var storages: [String: TorchStorage] = [:]
}

/// Facts every pickle-based reader reports.
enum PickleFacts {
    static func facts(_ u: Unpickler, extraReasons: [String] = []) -> [(key: String, value: String)] {
        var f: [(key: String, value: String)] = []
        f.append(("pickle protocol", u.proto.map(String.init) ?? "0 or 1 (no PROTO)"))
        if !u.rejectedOpcodes.isEmpty {
            f.append(("opcodes weights_only rejects", u.rejectedOpcodes.joined(separator: ", ")))
        }
        var reasons = extraReasons
        let g = u.unsafeGlobals
        if !g.isEmpty { reasons.append("globals " + g.joined(separator: ", ")) }
        if !u.rejectedOpcodes.isEmpty { reasons.append("opcodes " + u.rejectedOpcodes.joined(separator: ", ")) }
        f.append(("weights_only", reasons.isEmpty ? "yes" : "no (" + reasons.joined(separator: "; ") + ")"))
        return f
    }
}

extension String {
    /// Drops leading/trailing occurrences of `c`.
    func trimmingCharacters(in c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}
