import Tensors

/// The header of a NumPy `.npy` file (format versions 1.0, 2.0 and 3.0).
///
/// ```
/// bytes 0..<6    "\x93NUMPY"
/// byte  6, 7     major, minor version (1.0, 2.0 or 3.0)
/// next 2 or 4    header length H, u16 LE (1.0) or u32 LE (2.0, 3.0)
/// next H bytes   Python dict literal, ASCII (UTF-8 in 3.0), space-padded, '\n'-terminated:
///                {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
/// rest           the array data; NumPy pads the header so data starts 64-byte aligned
/// ```
public struct NpyHeader: Sendable {
    /// Element type.
    public var dtype: DType
    /// True when the data is big-endian (`>` in `descr`) and must be byte-swapped.
    public var bigEndian: Bool
    /// True when the data is column-major.
    public var fortranOrder: Bool
    /// Dimensions; `()` is a 0-d array.
    public var shape: [Int]
    /// `(major, minor)`.
    public var version: (major: UInt8, minor: UInt8)
    /// The `descr` text as written (`<f4`).
    public var descr: String
    /// Offset of the first data byte.
    public var dataOffset: Int

    /// The six magic bytes.
    public static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// Largest header accepted. NumPy's own reader stops at 10,000 bytes by default; a header
    /// with the three required keys and 64 dimensions stays far below this.
    public static let maxHeaderBytes = 100_000

    /// Parses the header at the start of `bytes`.
    ///
    /// - Throws: ``FormatError`` `.badMagic`, `.unsupportedVersion`, `.truncated`,
    ///   `.tooLarge`, `.invalid` (dict syntax, keys, shape), `.unsupported` (object or
    ///   structured arrays), `.unsupportedDType`.
    public static func parse(_ bytes: ByteSlice) throws(FormatError) -> NpyHeader {
        var r = ByteReader(bytes)
        let found = try r.bytes(min(6, r.remaining))
        guard found == magic else {
            throw FormatError(.badMagic(expected: "\\x93NUMPY", found: found), offset: 0)
        }
        let major = try r.u8()
        let minor = try r.u8()
        guard (1...3).contains(major), minor == 0 else {
            throw FormatError(.unsupportedVersion(found: Int(major), newestSupported: 3), offset: 6)
        }
        let length = major == 1 ? Int(try r.u16()) : Int(try r.u32())
        guard length <= maxHeaderBytes else {
            throw FormatError(
                .tooLarge(what: "npy header", size: length, limit: maxHeaderBytes), offset: 8)
        }
        let start = r.offset
        let text = try r.bytes(length)
        guard major == 3 || text.allSatisfy({ $0 < 0x80 }) else {
            throw FormatError(.invalid("npy \(major).0 header is not ASCII"), offset: start)
        }
        guard String(validating: text, as: UTF8.self) != nil else {
            throw FormatError(.invalid("npy header is not valid UTF-8"), offset: start)
        }
        let dict = try PythonLiteral.parseDict(text, base: start)
        let keys = Set(dict.map { $0.key })
        guard keys == ["descr", "fortran_order", "shape"], dict.count == 3 else {
            throw FormatError(
                .invalid(
                    "npy header keys are \(dict.map { $0.key }); expected exactly descr, fortran_order, shape"
                ),
                offset: start)
        }
        var fields: [String: PythonLiteral] = [:]
        for m in dict { fields[m.key] = m.value }
        guard case .string(let descr) = fields["descr"] else {
            if case .list = fields["descr"] {
                throw FormatError(.unsupported("structured (record) arrays"), offset: start)
            }
            throw FormatError(.invalid("npy header: descr is not a string"), offset: start)
        }
        guard case .bool(let fortran) = fields["fortran_order"] else {
            throw FormatError(
                .invalid("npy header: fortran_order is not True or False"), offset: start)
        }
        guard case .tuple(let dims) = fields["shape"] else {
            throw FormatError(.invalid("npy header: shape is not a tuple"), offset: start)
        }
        var shape: [Int] = []
        for d in dims {
            guard case .int(let v) = d, v >= 0 else {
                throw FormatError(
                    .invalid("npy header: shape must hold non-negative integers"), offset: start)
            }
            shape.append(v)
        }
        let (dtype, big) = try decodeDescr(descr, offset: start)
        return NpyHeader(
            dtype: dtype, bigEndian: big, fortranOrder: fortran, shape: shape,
            version: (major, minor), descr: descr, dataOffset: r.offset)
    }

    /// Maps a `descr` such as `<f4`, `|b1` or `>i8` to a dtype and byte order.
    static func decodeDescr(_ descr: String, offset: Int) throws(FormatError) -> (DType, Bool) {
        let u = Array(descr.utf8)
        guard u.count >= 3, let order = u.first, [0x3c, 0x3e, 0x7c, 0x3d].contains(order) else {
            if descr.hasPrefix("|O") || descr == "O" {
                throw FormatError(
                    .unsupported(
                        "object arrays (descr '\(descr)') hold pickled Python objects; qtools never unpickles them"
                    ),
                    offset: offset)
            }
            throw FormatError(.unsupportedDType(descr), offset: offset)
        }
        let code = String(decoding: u.dropFirst(), as: UTF8.self)
        let dtype: DType
        switch code {
        case "b1": dtype = .bool
        case "i1": dtype = .int8
        case "u1": dtype = .uint8
        case "i2": dtype = .int16
        case "u2": dtype = .uint16
        case "i4": dtype = .int32
        case "u4": dtype = .uint32
        case "i8": dtype = .int64
        case "u8": dtype = .uint64
        case "f2": dtype = .float16
        case "f4": dtype = .float32
        case "f8": dtype = .float64
        case "c8": dtype = .complex64
        case "c16": dtype = .complex128
        default:
            if code.hasPrefix("O") {
                throw FormatError(
                    .unsupported(
                        "object arrays (descr '\(descr)') hold pickled Python objects; qtools never unpickles them"
                    ),
                    offset: offset)
            }
            throw FormatError(.unsupportedDType(descr), offset: offset)
        }
        return (dtype, order == 0x3e && dtype.byteWidth > 1)
    }

    /// NumPy's `descr` for a dtype (`<f4`, `|b1`); nil for types NumPy lacks (bfloat16, float8).
    public static func descr(for dtype: DType) -> String? {
        switch dtype {
        case .bool: return "|b1"
        case .int8: return "|i1"
        case .uint8: return "|u1"
        case .int16: return "<i2"
        case .uint16: return "<u2"
        case .int32: return "<i4"
        case .uint32: return "<u4"
        case .int64: return "<i8"
        case .uint64: return "<u8"
        case .float16: return "<f2"
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .complex64: return "<c8"
        case .complex128: return "<c16"
        case .bfloat16, .float8e4m3fn, .float8e5m2, .float8e4m3fnuz, .float8e5m2fnuz,
            .float8e8m0fnu:
            return nil
        }
    }

    /// The complete header bytes NumPy's `np.save` writes for a C-order array (byte-identical).
    ///
    /// Keys sorted, `repr` values, then room for the first axis to grow to 21 digits, then
    /// spaces and `'\n'` so that magic + length field + header is a multiple of 64 (NumPy adds
    /// 1 to 64 spaces). Version 1.0 unless the header exceeds 65,535 bytes, then 2.0.
    public static func encode(dtype: DType, shape: [Int]) throws(FormatError) -> [UInt8] {
        guard let descr = descr(for: dtype) else {
            throw FormatError(
                .unsupportedDType(
                    "\(dtype.rawValue) (NumPy has no such dtype; convert it to float32 first)"))
        }
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        if let first = shape.first {
            dict += String(repeating: " ", count: max(0, 21 - String(first).count))
        }
        let body = Array(dict.utf8)
        for (major, lengthBytes) in [(UInt8(1), 2), (UInt8(2), 4)] {
            let hlen = body.count + 1
            let padlen = 64 - (8 + lengthBytes + hlen) % 64
            let total = hlen + padlen
            guard major == 2 || total <= 0xffff else { continue }
            var w = ByteWriter()
            w.append(magic)
            w.u8(major)
            w.u8(0)
            w.uintLE(UInt64(total), lengthBytes)
            w.append(body)
            w.append([UInt8](repeating: 0x20, count: padlen))
            w.u8(0x0a)
            return w.bytes
        }
        preconditionFailure("unreachable: version 2.0 always fits")
    }
}
