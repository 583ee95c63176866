import Tensors

/// A bounds-checked little-endian cursor over a ``ByteSlice`` that knows its offset.
///
/// Every read checks the bytes remaining first and throws ``FormatError`` with
/// `.truncated` and the offset, so a declared length is never trusted before it is checked.
public struct ByteReader {
    /// The bytes being read.
    public let bytes: ByteSlice
    /// Current offset relative to `bytes`.
    public var offset: Int
    /// Offset of `bytes` within the enclosing entry or file, for error messages.
    public let base: Int

    /// Starts at `offset` (relative), reporting positions as `base + offset`.
    public init(_ bytes: ByteSlice, offset: Int = 0, base: Int = 0) {
        self.bytes = bytes
        self.offset = offset
        self.base = base
    }

    /// Bytes left.
    public var remaining: Int { bytes.count - offset }

    /// True at the end.
    public var isAtEnd: Bool { offset >= bytes.count }

    /// Throws `.truncated` unless `n` bytes remain.
    public func need(_ n: Int) throws(FormatError) {
        guard n >= 0, n <= remaining else {
            throw FormatError(
                .truncated(needed: n, available: max(remaining, 0)), offset: base + offset)
        }
    }

    /// An error at the current offset.
    public func error(_ reason: FormatError.Reason) -> FormatError {
        FormatError(reason, offset: base + offset)
    }

    /// Reads one byte.
    public mutating func u8() throws(FormatError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads an unsigned little-endian integer of `width` bytes.
    public mutating func uintLE(_ width: Int) throws(FormatError) -> UInt64 {
        try need(width)
        let v = Elements.loadLE(bytes, offset, width)
        offset += width
        return v
    }

    /// Reads a u16.
    public mutating func u16() throws(FormatError) -> UInt16 { UInt16(try uintLE(2)) }
    /// Reads a u32.
    public mutating func u32() throws(FormatError) -> UInt32 { UInt32(try uintLE(4)) }
    /// Reads a u64.
    public mutating func u64() throws(FormatError) -> UInt64 { try uintLE(8) }
    /// Reads an i32.
    public mutating func i32() throws(FormatError) -> Int32 { Int32(truncatingIfNeeded: try uintLE(4)) }
    /// Reads an i64.
    public mutating func i64() throws(FormatError) -> Int64 { Int64(bitPattern: try uintLE(8)) }

    /// A window of `n` bytes (no copy).
    public mutating func slice(_ n: Int) throws(FormatError) -> ByteSlice {
        try need(n)
        defer { offset += n }
        return bytes.slice(offset..<(offset + n))
    }

    /// Copies `n` bytes.
    public mutating func bytes(_ n: Int) throws(FormatError) -> [UInt8] {
        try slice(n).toArray()
    }

    /// Reads up to (not including) `terminator`, consuming it; throws if absent.
    public mutating func line(terminator: UInt8 = 0x0a) throws(FormatError) -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let b = try u8()
            if b == terminator { return out }
            out.append(b)
        }
    }

    /// Skips `n` bytes.
    public mutating func skip(_ n: Int) throws(FormatError) {
        try need(n)
        offset += n
    }
}

/// Little-endian byte building for writers.
public struct ByteWriter {
    /// Bytes written so far.
    public private(set) var bytes: [UInt8] = []

    /// Empty writer.
    public init() {}

    /// Current length.
    public var count: Int { bytes.count }

    /// Appends an unsigned integer as `width` little-endian bytes.
    public mutating func uintLE(_ v: UInt64, _ width: Int) {
        for k in 0..<width { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
    }
    /// Appends a u8.
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    /// Appends a u16.
    public mutating func u16(_ v: UInt16) { uintLE(UInt64(v), 2) }
    /// Appends a u32.
    public mutating func u32(_ v: UInt32) { uintLE(UInt64(v), 4) }
    /// Appends a u64.
    public mutating func u64(_ v: UInt64) { uintLE(v, 8) }
    /// Appends raw bytes.
    public mutating func append<S: Sequence>(_ s: S) where S.Element == UInt8 { bytes.append(contentsOf: s) }
    /// Appends UTF-8 text.
    public mutating func append(_ s: String) { bytes.append(contentsOf: Array(s.utf8)) }
}
