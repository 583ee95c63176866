// libFuzzer target for every reader (ModelFile) and the torch pickle reader in particular. Built by
// Fuzz/run.sh into the Formats module itself, so internal types (Unpickler) are reachable.
// Any crash, sanitizer report, or leak is a bug; a thrown FormatError is fine.
import Tensors

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorchReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = unsafe Array(UnsafeBufferPointer(start: data, count: size))
    let slice = ByteSlice(bytes)
    // 0. The one entry point for every format (torch, safetensors, npy/npz, ONNX).
    if let (_, c) = try? ModelFile.read(slice, verifyCRC: size % 3 == 0) {
        for (_, t) in c.allTensors() where t.byteCount <= 16 * max(size, 1) { _ = t.materialize() }
    }
    // 1. The torch entry (sniffs zip / legacy / tar).
    if let c = try? TorchCheckpointReader.read(slice, verifyCRC: size % 2 == 0) {
        for (_, t) in c.allTensors() where t.byteCount <= 16 * max(size, 1) { _ = t.materialize() }
        _ = c.stateDict()
    }
    // 2. The bytes as a bare pickle, with a loader that hands out a small storage.
    let storage = ByteSlice([UInt8](repeating: 1, count: 64))
    var u = Unpickler(slice) { pid, u throws(FormatError) in
        guard let t = u.sequence(pid), t.count >= 2, let g = t[1].globalName,
            let kind = TorchTypeNames.storageKind(g)
        else { throw FormatError(.invalid("bad pid")) }
        var dtype: DType? = nil
        if case .typed(let d) = kind { dtype = d }
        return .storage(TorchStorage(key: "0", typeName: g, dtype: dtype, bytes: storage, entry: "fuzz"))
    }
    if let v = try? u.load() {
        for (_, t) in v.allTensors() { _ = t.materialize() }
    }
    // 3. The bytes as a plain pickle with NumPy arrays (PickleReader: the CIFAR batch files).
    if let v = try? PickleReader.read(slice) {
        for (_, t) in v.allTensors() where t.byteCount <= 16 * max(size, 1) { _ = t.materialize() }
    }
    return 0
}
