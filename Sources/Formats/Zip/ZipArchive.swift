import Tensors

/// One record of a zip archive, as its central directory describes it.
public struct ZipEntry: Sendable {
    /// Record name (UTF-8), e.g. `archive/data.pkl`.
    public let name: String
    /// 0 = stored, 8 = deflated.
    public let method: UInt16
    /// General-purpose flags.
    public let flags: UInt16
    /// CRC-32 from the central directory.
    public let crc32: UInt32
    /// Compressed size (from the central directory or its zip64 extra).
    public let compressedSize: Int
    /// Uncompressed size.
    public let uncompressedSize: Int
    /// Offset of the local file header.
    public let localHeaderOffset: Int
    /// Offset of the record's first data byte (from the local header's own lengths).
    public let dataOffset: Int
    /// True when any field of this record needed zip64.
    public let usesZip64: Bool
}

/// A read-only zip archive over a (memory-mapped) byte slice.
///
/// Follows formats.md §A.1.5: find the end record by scanning back, follow the zip64 locator,
/// take sizes and offsets from the central directory (torch's local headers hold zeros), and
/// compute each data offset from the local header's name and extra lengths. Stored records
/// are returned without copying; deflated ones are inflated through zlib.
public struct ZipArchive: Sendable {
    /// The whole archive.
    public let bytes: ByteSlice
    /// Records in central-directory order.
    public let entries: [ZipEntry]
    /// True when the archive has zip64 end records.
    public let hasZip64EndRecord: Bool
    /// Offset of the central directory.
    public let centralDirectoryOffset: Int

    private let index: [String: Int]

    /// Largest uncompressed/compressed ratio deflate can produce; a declared size above it is corrupt.
    static let maxDeflateRatio = 1032

    /// Parses the directory; every offset and size is checked against the file size.
    public init(_ bytes: ByteSlice) throws(FormatError) {
        self.bytes = bytes
        let n = bytes.count
        guard n >= 22 else {
            throw FormatError(.truncated(needed: 22, available: n))
        }
        // 1. End of central directory: scan back over at most 64 KiB of comment.
        var eocd = -1
        var p = n - 22
        let stop = max(0, n - 22 - 65_535)
        while p >= stop {
            if bytes[p] == 0x50, bytes[p + 1] == 0x4b, bytes[p + 2] == 0x05, bytes[p + 3] == 0x06 {
                eocd = p
                break
            }
            p -= 1
        }
        guard eocd >= 0 else {
            throw FormatError(
                .invalid(
                    "zip end record not found; the file is truncated or not a zip archive (size \(n) bytes)"
                ))
        }
        var r = ByteReader(bytes, offset: eocd + 4)
        let disk = try r.u16()
        _ = try r.u16()
        _ = try r.u16()
        var count = Int(try r.u16())
        var cdSize = Int(try r.u32())
        var cdOffset = Int(try r.u32())
        guard disk == 0 || disk == 0xffff else {
            throw FormatError(.unsupported("multi-disk zip archives"), offset: eocd)
        }
        // 2. Zip64 locator just before the EOCD.
        var zip64 = false
        if eocd >= 20, bytes[eocd - 20] == 0x50, bytes[eocd - 19] == 0x4b, bytes[eocd - 18] == 0x06,
            bytes[eocd - 17] == 0x07
        {
            var l = ByteReader(bytes, offset: eocd - 12)
            let z64 = try l.u64()
            // (A file too short to hold a 56-byte zip64 end record has no room for one.)
            guard n >= 56, z64 <= UInt64(n - 56) else {
                throw FormatError(
                    .invalid("zip64 end record offset \(z64) is outside the file"), offset: eocd - 20)
            }
            var z = ByteReader(bytes, offset: Int(z64))
            guard try z.u32() == 0x0606_4b50 else {
                throw FormatError(
                    .badMagic(expected: "PK\\6\\6 (zip64 end record)", found: bytes.slice(Int(z64)..<Int(z64) + 4).toArray()),
                    offset: Int(z64))
            }
            try z.skip(8 + 2 + 2 + 4 + 4 + 8)
            let c64 = try z.u64()
            let size64 = try z.u64()
            let off64 = try z.u64()
            guard c64 <= UInt64(n), size64 <= UInt64(n), off64 <= UInt64(n) else {
                throw FormatError(.invalid("zip64 end record values exceed the file size"), offset: Int(z64))
            }
            count = Int(c64)
            cdSize = Int(size64)
            cdOffset = Int(off64)
            zip64 = true
        }
        guard cdOffset <= n, cdSize <= n - cdOffset else {
            throw FormatError(
                .invalid(
                    "central directory (offset \(cdOffset), \(cdSize) bytes) lies outside the file (\(n) bytes); truncated?"
                ), offset: eocd)
        }
        guard count <= cdSize / 46 + 1 else {
            throw FormatError(
                .invalid("central directory claims \(count) records in \(cdSize) bytes"), offset: eocd)
        }
        // 3. Central directory.
        var list: [ZipEntry] = []
        list.reserveCapacity(count)
        var idx: [String: Int] = [:]
        var c = ByteReader(bytes.slice(cdOffset..<(cdOffset + cdSize)), base: cdOffset)
        for i in 0..<count {
            let at = cdOffset + c.offset
            let sig = try c.u32()
            guard sig == 0x0201_4b50 else {
                throw FormatError(
                    .badMagic(expected: "PK\\1\\2 (central directory record \(i))", found: Self.le(sig)),
                    offset: at)
            }
            try c.skip(4)
            let flags = try c.u16()
            let method = try c.u16()
            try c.skip(4)
            let crc = try c.u32()
            var csize = UInt64(try c.u32())
            var usize = UInt64(try c.u32())
            let nameLen = Int(try c.u16())
            let extraLen = Int(try c.u16())
            let commentLen = Int(try c.u16())
            try c.skip(8)
            var lho = UInt64(try c.u32())
            let nameBytes = try c.bytes(nameLen)
            let extra = try c.slice(extraLen)
            try c.skip(commentLen)
            var usedZip64 = false
            if usize == 0xffff_ffff || csize == 0xffff_ffff || lho == 0xffff_ffff {
                var e = ByteReader(extra)
                var found = false
                while e.remaining >= 4 {
                    let id = try e.u16()
                    let len = Int(try e.u16())
                    var body = ByteReader(try e.slice(len))
                    if id == 0x0001 {
                        if usize == 0xffff_ffff { usize = try body.u64() }
                        if csize == 0xffff_ffff { csize = try body.u64() }
                        if lho == 0xffff_ffff { lho = try body.u64() }
                        found = true
                    }
                }
                guard found else {
                    throw FormatError(.invalid("record needs a zip64 extra field but has none"), offset: at)
                }
                usedZip64 = true
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard lho <= UInt64(n), csize <= UInt64(n), usize <= UInt64(Int.max) else {
                throw FormatError(
                    .invalid("record offset \(lho) or size \(csize) exceeds the file size \(n)"),
                    entry: name, offset: at)
            }
            // Local header: its own name/extra lengths decide where data starts.
            let lh = Int(lho)
            var l = ByteReader(bytes, offset: lh)
            let lsig = try l.u32()
            guard lsig == 0x0403_4b50 else {
                throw FormatError(
                    .badMagic(expected: "PK\\3\\4 (local header)", found: Self.le(lsig)), entry: name,
                    offset: lh)
            }
            try l.skip(22)
            let ln = Int(try l.u16())
            let le = Int(try l.u16())
            let dataOffset = lh + 30 + ln + le
            guard dataOffset <= n, Int(csize) <= n - dataOffset else {
                throw FormatError(
                    .truncated(needed: Int(csize), available: max(0, n - dataOffset)), entry: name,
                    offset: dataOffset)
            }
            if method == 0, csize != usize {
                throw FormatError(
                    .sizeMismatch(expectedBytes: Int(usize), foundBytes: Int(csize)), entry: name, offset: at)
            }
            if method == 8, usize > csize * UInt64(Self.maxDeflateRatio) + 1024 {
                throw FormatError(
                    .tooLarge(what: "declared inflated size", size: Int(usize), limit: Int(csize) * Self.maxDeflateRatio),
                    entry: name, offset: at)
            }
            if idx[name] != nil {
                throw FormatError(.duplicateName(name), entry: name, offset: at)
            }
            idx[name] = i
            list.append(
                ZipEntry(
                    name: name, method: method, flags: flags, crc32: crc, compressedSize: Int(csize),
                    uncompressedSize: Int(usize), localHeaderOffset: lh, dataOffset: dataOffset,
                    usesZip64: usedZip64))
        }
        entries = list
        index = idx
        hasZip64EndRecord = zip64
        centralDirectoryOffset = cdOffset
    }

    /// The record with this exact name.
    public func entry(named name: String) -> ZipEntry? {
        index[name].map { entries[$0] }
    }

    /// The record's bytes: a window into the archive when stored, inflated when deflated (a
    /// deflated record is read whole, so its CRC-32 is checked).
    public func data(of entry: ZipEntry) throws(FormatError) -> ByteSlice {
        let raw = bytes.slice(entry.dataOffset..<(entry.dataOffset + entry.compressedSize))
        switch entry.method {
        case 0: return raw
        case 8:
            let inflated: ByteSlice
            do {
                inflated = ByteSlice(try Deflate.inflate(raw, expectedSize: entry.uncompressedSize))
            } catch var e {
                e.entry = entry.name
                throw e
            }
            try Self.checkCRC(inflated, entry)
            return inflated
        default:
            throw FormatError(
                .unsupported("compression method \(entry.method) (qtools reads stored and deflated records)"),
                entry: entry.name)
        }
    }

    /// The record's bytes for a reader that reads all of them (a pickle, a text record):
    /// its CRC-32 is checked whatever the method.
    public func wholeData(of entry: ZipEntry) throws(FormatError) -> ByteSlice {
        let d = try data(of: entry)
        if entry.method == 0 { try Self.checkCRC(d, entry) }
        return d
    }

    /// Checks the record's CRC-32 against the central directory.
    public func verifyCRC(of entry: ZipEntry) throws(FormatError) {
        _ = try wholeData(of: entry)
    }

    static func checkCRC(_ d: ByteSlice, _ entry: ZipEntry) throws(FormatError) {
        let found = Deflate.crc32(d)
        guard found == entry.crc32 else {
            throw FormatError(.checksum(expected: entry.crc32, found: found), entry: entry.name)
        }
    }

    static func le(_ v: UInt32) -> [UInt8] {
        [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)]
    }
}
