import Tensors

/// Writes a zip archive to a ``ByteSink``, one record at a time (streaming).
///
/// Two layouts:
/// * ``Layout/torch``: byte-for-byte what `torch.save` (miniz / PyTorchStreamWriter) writes
///   (formats.md §A.1.2): version-needed 0, flags 0x0808 with a data descriptor after each
///   non-empty record (0x0800 and no descriptor when empty), zero time/date/CRC/sizes in the
///   local header, an `FB` extra field padding every record's data to a multiple of the
///   alignment (present even when the padding is 0), zip64 extras per record only when its size
///   or header offset reaches 0xFFFFFFFF, and zip64 end records always.
/// * ``Layout/plain``: conventional local headers carrying CRC and sizes (Python `zipfile`
///   style), no padding, optional deflate; zip64 only where needed. Used for `.npz`.
public final class ZipWriter {
    /// Which header conventions to follow.
    public enum Layout: Sendable {
        /// torch's miniz layout; `alignment` is torch's `storage_alignment` (64).
        case torch(alignment: Int = 64)
        /// Standard headers; deflate records when `deflate` is true. `forceZip64` writes zip64
        /// fields even for small archives (as NumPy can), so tests cover them without 4 GiB files.
        case plain(deflate: Bool = false, forceZip64: Bool = false)
    }

    struct Record {
        let name: [UInt8]
        let flags: UInt16
        let method: UInt16
        let crc: UInt32
        let csize: Int
        let usize: Int
        let offset: Int
        let date: UInt16
    }

    private let sink: ByteSink
    private let base: Int
    /// The layout in use.
    public let layout: Layout
    private var records: [Record] = []
    private var names: Set<String> = []
    private var finished = false

    /// Starts an archive at the sink's current position.
    public init(sink: ByteSink, layout: Layout) {
        self.sink = sink
        self.base = sink.position
        self.layout = layout
    }

    private var cursor: Int { sink.position - base }
    static let limit32 = 0xFFFF_FFFF

    /// Names of the records written so far, in order.
    public var recordNames: [String] { records.map { String(decoding: $0.name, as: UTF8.self) } }

    /// Appends one record.
    /// - Throws: ``FormatError/Reason/duplicateName(_:)`` for a repeated name, or the sink's error.
    public func add(_ name: String, _ data: ByteSlice) throws { try add(name, parts: [data]) }

    /// Appends one record whose bytes are the concatenation of `parts`, streamed without
    /// joining them (stored records) — an npy header followed by a mapped tensor, say.
    public func add(_ name: String, parts: [ByteSlice]) throws {
        precondition(!finished, "ZipWriter.add after finish")
        guard names.insert(name).inserted else { throw FormatError(.duplicateName(name), entry: name) }
        switch layout {
        case .torch(let alignment):
            try addTorch(Array(name.utf8), parts.count == 1 ? parts[0] : Self.join(parts), alignment: max(alignment, 1))
        case .plain(let deflate, _): try addPlain(Array(name.utf8), parts, deflate: deflate)
        }
    }

    static func join(_ parts: [ByteSlice]) -> ByteSlice {
        var all: [UInt8] = []
        all.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for p in parts { all += p.toArray() }
        return ByteSlice(all)
    }

    private var forceZip64: Bool {
        if case .plain(_, let force) = layout { return force }
        return false
    }

    /// Appends one record from an array.
    public func add(_ name: String, _ bytes: [UInt8]) throws { try add(name, ByteSlice(bytes)) }

    private func addTorch(_ name: [UInt8], _ data: ByteSlice, alignment: Int) throws {
        let offset = cursor
        let size = data.count
        let bigSize = size >= Self.limit32
        let bigOffset = offset >= Self.limit32
        var start = offset + 30 + name.count + 4
        var extra = ByteWriter()
        if bigSize || bigOffset {
            start += 4 + (bigSize ? 16 : 0) + (bigOffset ? 8 : 0)
            extra.u16(1)
            extra.u16(UInt16((bigSize ? 16 : 0) + (bigOffset ? 8 : 0)))
            if bigSize {
                extra.u64(UInt64(size))
                extra.u64(0)
            }
            if bigOffset { extra.u64(UInt64(offset)) }
        }
        let pad = (alignment - start % alignment) % alignment
        extra.u16(0x4246)
        extra.u16(UInt16(pad))
        extra.append([UInt8](repeating: 0x5a, count: pad))
        let flags: UInt16 = size > 0 ? 0x0808 : 0x0800
        var h = ByteWriter()
        h.u32(0x0403_4b50)
        h.u16(0)
        h.u16(flags)
        h.u16(0)
        h.u32(0)  // time, date
        h.u32(0)  // crc
        h.u32(0)
        h.u32(0)  // sizes
        h.u16(UInt16(name.count))
        h.u16(UInt16(extra.count))
        h.append(name)
        h.append(extra.bytes)
        try sink.write(h.bytes)
        let crc = Deflate.crc32(data)
        if size > 0 {
            try sink.write(data)
            var d = ByteWriter()
            d.u32(0x0807_4b50)
            d.u32(crc)
            if bigSize || bigOffset {
                d.u64(UInt64(size))
                d.u64(UInt64(size))
            } else {
                d.u32(UInt32(size))
                d.u32(UInt32(size))
            }
            try sink.write(d.bytes)
        }
        records.append(Record(name: name, flags: flags, method: 0, crc: crc, csize: size, usize: size, offset: offset, date: 0))
    }

    private func addPlain(_ name: [UInt8], _ parts: [ByteSlice], deflate: Bool) throws {
        let offset = cursor
        let crc = Deflate.crc32(parts)
        let size = parts.reduce(0) { $0 + $1.count }
        var payload = parts
        var method: UInt16 = 0
        if deflate, size > 0 {
            payload = [ByteSlice(Deflate.deflate(parts.count == 1 ? parts[0] : Self.join(parts)))]
            method = 8
        }
        let csize = payload.reduce(0) { $0 + $1.count }
        let big = forceZip64 || size >= Self.limit32 || csize >= Self.limit32
        let flags: UInt16 = name.allSatisfy { $0 < 0x80 } ? 0 : 0x0800
        var extra = ByteWriter()
        if big {
            extra.u16(1)
            extra.u16(16)
            extra.u64(UInt64(size))
            extra.u64(UInt64(csize))
        }
        var h = ByteWriter()
        h.u32(0x0403_4b50)
        h.u16(big ? 45 : 20)
        h.u16(flags)
        h.u16(method)
        h.u16(0)
        h.u16(0x21)  // 1980-01-01 00:00
        h.u32(crc)
        h.u32(big ? UInt32(Self.limit32) : UInt32(csize))
        h.u32(big ? UInt32(Self.limit32) : UInt32(size))
        h.u16(UInt16(name.count))
        h.u16(UInt16(extra.count))
        h.append(name)
        h.append(extra.bytes)
        try sink.write(h.bytes)
        for p in payload where p.count > 0 { try sink.write(p) }
        records.append(
            Record(name: name, flags: flags, method: method, crc: crc, csize: csize, usize: size, offset: offset, date: 0x21))
    }

    /// Writes the central directory and end records. The writer cannot be used afterwards.
    public func finish() throws {
        precondition(!finished, "ZipWriter.finish twice")
        finished = true
        let isTorch: Bool
        if case .torch = layout { isTorch = true } else { isTorch = false }
        let cdOffset = cursor
        var cd = ByteWriter()
        for r in records {
            let bigSize = forceZip64 || r.usize >= Self.limit32 || r.csize >= Self.limit32
            let bigOffset = forceZip64 || r.offset >= Self.limit32
            var extra = ByteWriter()
            if bigSize || bigOffset {
                extra.u16(1)
                extra.u16(UInt16((bigSize ? 16 : 0) + (bigOffset ? 8 : 0)))
                if bigSize {
                    extra.u64(UInt64(r.usize))
                    extra.u64(UInt64(r.csize))
                }
                if bigOffset { extra.u64(UInt64(r.offset)) }
            }
            cd.u32(0x0201_4b50)
            cd.u16(isTorch ? 0 : 20)
            cd.u16(isTorch ? 0 : (bigSize || bigOffset ? 45 : 20))
            cd.u16(r.flags)
            cd.u16(r.method)
            cd.u16(0)
            cd.u16(r.date)
            cd.u32(r.crc)
            cd.u32(bigSize ? UInt32(Self.limit32) : UInt32(r.csize))
            cd.u32(bigSize ? UInt32(Self.limit32) : UInt32(r.usize))
            cd.u16(UInt16(r.name.count))
            cd.u16(UInt16(extra.count))
            cd.u16(0)
            cd.u16(0)
            cd.u16(0)
            cd.u32(isTorch ? 0 : 0o100644 << 16)
            cd.u32(bigOffset ? UInt32(Self.limit32) : UInt32(r.offset))
            cd.append(r.name)
            cd.append(extra.bytes)
            if cd.count >= 1 << 20 {
                try sink.write(cd.bytes)
                cd = ByteWriter()
            }
        }
        try sink.write(cd.bytes)
        let cdEnd = cursor
        let cdSize = cdEnd - cdOffset
        let n = records.count
        var e = ByteWriter()
        let needZip64 = isTorch || forceZip64 || n >= 0xFFFF || cdSize >= Self.limit32 || cdOffset >= Self.limit32
        if needZip64 {
            e.u32(0x0606_4b50)
            e.u64(44)
            e.u16(isTorch ? 0x031e : 45)
            e.u16(45)
            e.u32(0)
            e.u32(0)
            e.u64(UInt64(n))
            e.u64(UInt64(n))
            e.u64(UInt64(cdSize))
            e.u64(UInt64(cdOffset))
            e.u32(0x0706_4b50)
            e.u32(0)
            e.u64(UInt64(cdEnd))
            e.u32(1)
        }
        e.u32(0x0605_4b50)
        e.u16(0)
        e.u16(0)
        e.u16(UInt16(min(n, 0xFFFF)))
        e.u16(UInt16(min(n, 0xFFFF)))
        e.u32(UInt32(min(cdSize, Self.limit32)))
        e.u32(UInt32(min(cdOffset, Self.limit32)))
        e.u16(0)
        try sink.write(e.bytes)
    }
}
