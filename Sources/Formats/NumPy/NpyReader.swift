import Tensors

/// Reads NumPy `.npy` files (format versions 1.0, 2.0, 3.0) into a ``Checkpoint``.
///
/// Little-endian data stays a zero-copy window into `bytes`. Big-endian data (`>f4`) is
/// byte-swapped into owned memory, element by element (per component for complex types).
/// Fortran-order arrays become a strided ``Tensors/StoredTensor`` view with column-major
/// strides (no copy); ``readArray(_:)`` materialises them to C order. Object arrays (`|O`)
/// and structured dtypes are refused: qtools never unpickles.
public enum NpyReader {
    /// Reads one array; the root is ``CheckpointValue/tensor(_:)``.
    ///
    /// Facts: `version`, `descr`, `fortran_order`, `header bytes`, and `trailing bytes` when
    /// data follows the array (NumPy ignores it too).
    ///
    /// - Throws: ``FormatError`` (see ``NpyHeader/parse(_:)``), `.truncated` when the data is
    ///   shorter than the shape needs.
    public static func read(_ bytes: ByteSlice) throws -> Checkpoint {
        let (stored, header, trailing) = try readStored(bytes, key: "data")
        var facts: [(key: String, value: String)] = [
            ("version", "\(header.version.major).\(header.version.minor)"),
            ("descr", header.descr),
            ("fortran_order", header.fortranOrder ? "True" : "False"),
            ("header bytes", String(header.dataOffset)),
        ]
        if trailing > 0 { facts.append(("trailing bytes", String(trailing))) }
        return Checkpoint(format: .npy, root: .tensor(stored), facts: facts)
    }

    /// Reads one array as a dense, C-order, little-endian ``Tensors/Tensor``.
    public static func readArray(_ bytes: ByteSlice) throws -> Tensor {
        try readStored(bytes, key: "data").tensor.materialize()
    }

    /// The array as a view, its header, and the count of bytes after the array data.
    static func readStored(
        _ bytes: ByteSlice, key: String
    ) throws(FormatError) -> (tensor: StoredTensor, header: NpyHeader, trailing: Int) {
        let h = try NpyHeader.parse(bytes)
        let need: Int
        do { need = try Shapes.byteCount(h.shape, h.dtype) } catch {
            throw FormatError(
                .invalid("npy shape \(h.shape): \(error.description)"), offset: h.dataOffset)
        }
        let available = bytes.count - h.dataOffset
        guard need <= available else {
            throw FormatError(.truncated(needed: need, available: available), offset: h.dataOffset)
        }
        var data = bytes.slice(h.dataOffset..<(h.dataOffset + need))
        if h.bigEndian { data = ByteSlice(swapped(data, dtype: h.dtype)) }
        let strides = h.fortranOrder ? fortranStrides(h.shape) : Shapes.contiguousStrides(h.shape)
        do {
            let t = try StoredTensor(
                storage: data, storageKey: key, dtype: h.dtype, shape: h.shape, strides: strides,
                storageOffset: 0)
            return (t, h, available - need)
        } catch {
            var e = FormatError(error, tensor: nil)
            e.offset = h.dataOffset
            throw e
        }
    }

    /// Column-major element strides: `strides[i] = shape[0] * … * shape[i-1]`.
    static func fortranStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in shape.indices {
            strides[i] = acc
            acc *= max(shape[i], 1)
        }
        return strides
    }

    /// Reverses the bytes of each scalar (each real and imaginary part for complex types).
    static func swapped(_ data: ByteSlice, dtype: DType) -> [UInt8] {
        var out = data.toArray()
        let w = dtype.isComplex ? dtype.byteWidth / 2 : dtype.byteWidth
        guard w > 1 else { return out }
        var i = 0
        while i + w <= out.count {
            out[i..<(i + w)].reverse()
            i += w
        }
        return out
    }
}
