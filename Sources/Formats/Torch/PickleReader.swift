import Tensors

/// Plain Python pickles (`pickle.dump`), such as the CIFAR batch files: the object tree as a
/// ``CheckpointValue``, with NumPy arrays rebuilt as tensors (see `Unpickler+NumPy.swift`).
///
/// Nothing is executed: globals other than the containers and NumPy's array and dtype
/// constructors stay ``Opaque`` placeholders; persistent ids (torch storages) are refused.
/// Python 2 `str` values are decoded as UTF-8 when valid, else kept as bytes (the
/// `encoding='bytes'` view), so dict keys written by Python 2 read as strings.
public enum PickleReader {
    /// Reads the first pickle in `bytes` (bytes after its STOP are ignored, as `pickle.load`).
    /// - Throws: ``FormatError`` for a malformed or truncated stream, or a NumPy array whose
    ///   data does not fill its shape.
    public static func read(_ bytes: ByteSlice) throws(FormatError) -> CheckpointValue {
        var u = Unpickler(bytes)
        u.decodesNumPy = true
        return try u.load()
    }
}
