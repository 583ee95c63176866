import CZlib
import Tensors

/// zlib glue: CRC-32, raw-deflate inflate and deflate. The only unsafe code of the zip layer.
public enum Deflate {
    /// Standard CRC-32 (IEEE, as zip and torch use).
    public static func crc32(_ data: ByteSlice) -> UInt32 {
        unsafe data.withUnsafeBytes { raw in
            var crc: UInt = 0
            var p = raw.baseAddress
            var left = raw.count
            while left > 0, let base = unsafe p {
                let n = min(left, 1 << 30)
                crc = unsafe CZlib.crc32(crc, base.assumingMemoryBound(to: UInt8.self), uInt(n))
                unsafe p = base + n
                left -= n
            }
            return UInt32(truncatingIfNeeded: crc)
        }
    }

    /// CRC-32 of the concatenation of `parts`.
    public static func crc32(_ parts: [ByteSlice]) -> UInt32 {
        var crc: UInt = 0
        for p in parts { crc = crc32_combine(crc, UInt(crc32(p)), off_t(p.count)) }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// CRC-32 of an array.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 { crc32(ByteSlice(bytes)) }

    /// Inflates raw deflate data (zip method 8) to exactly `expectedSize` bytes.
    ///
    /// A declared size that `data` cannot inflate to (deflate expands at most 1032:1) is refused
    /// before anything is allocated, so a zip bomb's header cannot make the reader allocate
    /// what it declares; records over 4 GiB are inflated in chunks (zlib counts in 32 bits).
    public static func inflate(_ data: ByteSlice, expectedSize: Int) throws(FormatError) -> [UInt8] {
        let (bound, o) = data.count.multipliedReportingOverflow(by: maxRatio)
        guard expectedSize >= 0, o || expectedSize <= bound + 1024 else {
            throw FormatError(
                .tooLarge(what: "declared size of a \(data.count)-byte deflated record", size: expectedSize, limit: bound + 1024))
        }
        var out = [UInt8](repeating: 0, count: expectedSize)
        var stream = unsafe z_stream()
        let initStatus = unsafe inflateInit2_(
            &stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else { throw FormatError(.invalid("zlib inflateInit failed")) }
        defer { _ = unsafe inflateEnd(&stream) }
        let status: Int32 = unsafe data.withUnsafeBytes { src in
            unsafe out.withUnsafeMutableBytes { dst in
                unsafe stream.next_in = UnsafeMutablePointer(
                    mutating: src.baseAddress?.assumingMemoryBound(to: UInt8.self))
                unsafe stream.next_out = dst.baseAddress?.assumingMemoryBound(to: UInt8.self)
                var inLeft = src.count, outLeft = dst.count
                while true {
                    let ai = min(inLeft, 1 << 30), ao = min(outLeft, 1 << 30)
                    unsafe stream.avail_in = uInt(ai)
                    unsafe stream.avail_out = uInt(ao)
                    let s = unsafe CZlib.inflate(&stream, Z_NO_FLUSH)
                    let read = ai - Int(unsafe stream.avail_in), wrote = ao - Int(unsafe stream.avail_out)
                    inLeft -= read
                    outLeft -= wrote
                    if s != Z_OK { return s }
                    if read == 0 && wrote == 0 { return Z_BUF_ERROR }  // no progress: out of input or room
                }
            }
        }
        guard status == Z_STREAM_END else {
            if status == Z_BUF_ERROR || status == Z_OK {
                throw FormatError(
                    .sizeMismatch(expectedBytes: expectedSize, foundBytes: Int(unsafe stream.total_out)))
            }
            throw FormatError(.invalid("corrupt deflate stream (zlib status \(status))"))
        }
        guard Int(unsafe stream.total_out) == expectedSize else {
            throw FormatError(
                .sizeMismatch(expectedBytes: expectedSize, foundBytes: Int(unsafe stream.total_out)))
        }
        return out
    }

    /// The most deflate can expand (its longest match, 258 bytes, coded in 2 bits, is 1032:1).
    static let maxRatio = 1032

    /// Compresses to raw deflate (zip method 8) at the default level.
    public static func deflate(_ data: ByteSlice) -> [UInt8] {
        var stream = unsafe z_stream()
        let ok = unsafe deflateInit2_(
            &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(ok == Z_OK, "zlib deflateInit failed")
        defer { _ = unsafe deflateEnd(&stream) }
        let bound = Int(unsafe deflateBound(&stream, uLong(data.count)))
        var out = [UInt8](repeating: 0, count: bound)
        let status: Int32 = unsafe data.withUnsafeBytes { src in
            unsafe out.withUnsafeMutableBytes { dst in
                unsafe stream.next_in = UnsafeMutablePointer(
                    mutating: src.baseAddress?.assumingMemoryBound(to: UInt8.self))
                unsafe stream.avail_in = uInt(src.count)
                unsafe stream.next_out = dst.baseAddress?.assumingMemoryBound(to: UInt8.self)
                unsafe stream.avail_out = uInt(dst.count)
                return unsafe CZlib.deflate(&stream, Z_FINISH)
            }
        }
        precondition(status == Z_STREAM_END, "deflate into a deflateBound buffer must finish")
        out.removeSubrange(Int(unsafe stream.total_out)...)
        return out
    }
}
