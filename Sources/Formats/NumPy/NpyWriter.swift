import Tensors

/// Writes NumPy `.npy` files exactly as `np.save` does for a C-order array: format 1.0
/// (2.0 when the header exceeds 65,535 bytes), header padded with spaces and `'\n'` so the
/// data starts 64-byte aligned (see ``NpyHeader/encode(dtype:shape:)``).
public enum NpyWriter {
    /// Writes `tensor` (dense, C order, little-endian) to `sink`; the data is not copied.
    ///
    /// - Throws: ``FormatError`` `.unsupportedDType` for dtypes NumPy lacks (bfloat16, float8),
    ///   or the sink's write error.
    public static func write(_ tensor: Tensor, to sink: ByteSink) throws {
        try sink.write(try NpyHeader.encode(dtype: tensor.dtype, shape: tensor.shape))
        if tensor.data.count > 0 { try sink.write(tensor.data) }
    }
}
