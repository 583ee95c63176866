import Tensors

/// NumPy arrays in plain pickles (``PickleReader``): the two ways `ndarray.__reduce_ex__`
/// pickles an array, rebuilt as ``Tensors/StoredTensor``s without executing anything.
///
/// - protocols 0-4: `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` then BUILD with
///   `(version, shape, dtype, is_fortran, rawdata)`; `rawdata` is bytes, a Python 2 `str`, or
///   (protocol 2 from Python 3) `_codecs.encode(text, 'latin1')`;
/// - protocol 5: `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)`.
///
/// `numpy` is `numpy.core` (NumPy 1) or `numpy._core` (NumPy 2). The dtype is
/// `numpy.dtype(code, False, True)` with BUILD state `(3, byteorder, ...)`. Big-endian data is
/// byte-swapped; Fortran order becomes column-major strides. Object and structured dtypes
/// are refused.
enum NumPyPickle {
    static let reconstruct: Set<String> = [
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    ]
    static let fromBuffer: Set<String> = ["numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer"]

    /// The array an opaque numpy call stands for; nil when `o` is no numpy array.
    /// - Throws: ``FormatError`` when it is one but malformed (data shorter than its shape).
    static func array(_ o: Opaque, key: String) throws(FormatError) -> StoredTensor? {
        if reconstruct.contains(o.global) {
            guard case .tuple(let s)? = o.state, s.count == 5 else { return nil }
            guard let shape = ints(s[1]), let (dtype, big) = try self.dtype(s[2]), let fortran = flag(s[3])
            else { return nil }
            guard let raw = bytes(s[4]) else { return nil }
            return try tensor(raw, dtype: dtype, bigEndian: big, shape: shape, fortran: fortran, key: key)
        }
        if fromBuffer.contains(o.global) {
            guard o.args.count >= 4, let raw = bytes(o.args[0]), let (dtype, big) = try self.dtype(o.args[1]),
                let shape = ints(o.args[2]), case .string(let order) = o.args[3]
            else { return nil }
            return try tensor(raw, dtype: dtype, bigEndian: big, shape: shape, fortran: order == "F", key: key)
        }
        return nil
    }

    static func tensor(
        _ raw: [UInt8], dtype: DType, bigEndian: Bool, shape: [Int], fortran: Bool, key: String
    ) throws(FormatError) -> StoredTensor {
        let need: Int
        do { need = try Shapes.byteCount(shape, dtype) } catch {
            throw FormatError(.invalid("numpy array of shape \(shape): \(error.description)"))
        }
        guard raw.count == need else {
            throw FormatError(
                .invalid(
                    "numpy array \(dtype.rawValue) \(Shapes.describe(shape)) needs \(need) bytes of data; the pickle holds \(raw.count)"))
        }
        var data = ByteSlice(raw)
        if bigEndian { data = ByteSlice(NpyReader.swapped(data, dtype: dtype)) }
        let strides = fortran ? NpyReader.fortranStrides(shape) : Shapes.contiguousStrides(shape)
        do {
            return try StoredTensor(storage: data, storageKey: key, dtype: dtype, shape: shape, strides: strides, storageOffset: 0)
        } catch {
            throw FormatError(error, tensor: key)
        }
    }

    /// `numpy.dtype(code, False, True)` + BUILD `(3, order, ...)` to a dtype and byte order.
    static func dtype(_ v: CheckpointValue) throws(FormatError) -> (DType, Bool)? {
        guard case .object(let d) = v, d.global == "numpy.dtype", case .string(let code)? = d.args.first else {
            return nil
        }
        var order = "|"
        if case .tuple(let s)? = d.state, s.count >= 2, case .string(let o) = s[1] { order = o }
        let (dtype, big) = try NpyHeader.decodeDescr(order + code, offset: 0)
        return (dtype, big)
    }

    /// A Python bool, or an int as Python 2 protocol 0 writes one (`I01`).
    static func flag(_ v: CheckpointValue) -> Bool? {
        switch v {
        case .bool(let b): return b
        case .int(let i): return i != 0
        default: return nil
        }
    }

    static func ints(_ v: CheckpointValue) -> [Int]? {
        guard case .tuple(let items) = v else { return nil }
        var out: [Int] = []
        for i in items {
            guard case .int(let x) = i, let n = Int(exactly: x), n >= 0 else { return nil }
            out.append(n)
        }
        return out
    }

    /// Raw array data: bytes, a Python 2 `str` the unpickler kept as (valid UTF-8) text, or
    /// `bytes()` (how protocols 0-2 pickle an empty `bytes`).
    static func bytes(_ v: CheckpointValue) -> [UInt8]? {
        switch v {
        case .bytes(let b): return b
        case .string(let s): return Array(s.utf8)
        case .object(let o) where o.global == "builtins.bytes" && o.args.isEmpty: return []
        default: return nil
        }
    }
}
