import Formats
import Foundation
import Tensors

/// `--dataset cifar10` / `cifar100`: the batch files of the official archives under `root`
/// (torchvision's layout), in the Python format (pickles read with Formats' ``PickleReader``)
/// or the binary one.
///
/// | dataset | folder | train | test | record |
/// |---|---|---|---|---|
/// | cifar10 | `cifar-10-batches-py` | `data_batch_1` ... `_5` | `test_batch` | dict: `data` uint8 N x 3072, `labels` |
/// | cifar10 | `cifar-10-batches-bin` | `data_batch_1.bin` ... `_5.bin` | `test_batch.bin` | 1 label byte + 3072 |
/// | cifar100 | `cifar-100-python` | `train` | `test` | dict: `data`, `fine_labels` |
/// | cifar100 | `cifar-100-binary` | `train.bin` | `test.bin` | coarse + fine label bytes + 3072 |
///
/// The Python folder is used when both exist. Images are CHW (1024 red, green, blue bytes).
public enum CIFARDataset {
    /// The train and test splits of `cifar10` (`classes` 10) or `cifar100` (100).
    /// - Throws: ``TrainError`` `.invalidInput` naming the folder or file that is missing,
    ///   truncated or malformed, or holds a label out of range.
    public static func load(root: String, classes: Int) throws(TrainError) -> (train: CIFARSamples, val: CIFARSamples) {
        let ten = classes == 10
        let py = path(root, ten ? "cifar-10-batches-py" : "cifar-100-python")
        let bin = path(root, ten ? "cifar-10-batches-bin" : "cifar-100-binary")
        let trainNames = ten ? (1...5).map { "data_batch_\($0)" } : ["train"]
        let testName = ten ? "test_batch" : "test"
        var isDir: ObjCBool = false
        let read: (String) throws(TrainError) -> (pixels: [UInt8], labels: [Int])
        let folder: String, suffix: String
        if FileManager.default.fileExists(atPath: py, isDirectory: &isDir), isDir.boolValue {
            folder = py
            suffix = ""
            read = { (p: String) throws(TrainError) in try pickleBatch(p, classes: classes) }
        } else if FileManager.default.fileExists(atPath: bin, isDirectory: &isDir), isDir.boolValue {
            folder = bin
            suffix = ".bin"
            read = { (p: String) throws(TrainError) in try binaryBatch(p, classes: classes) }
        } else {
            throw TrainError(
                .invalidInput(
                    "\(root): no \((py as NSString).lastPathComponent) or \((bin as NSString).lastPathComponent) folder "
                        + "(--dataset cifar\(classes) reads the extracted archive from https://www.cs.toronto.edu/~kriz/cifar.html under --root)"
                ))
        }
        func split(_ names: [String], augment: Bool) throws(TrainError) -> CIFARSamples {
            var pixels: [UInt8] = [], labels: [Int] = []
            for n in names {
                let file = path(folder, n + suffix)
                guard FileManager.default.fileExists(atPath: file) else {
                    let all = (trainNames + [testName]).map { $0 + suffix }.joined(separator: ", ")
                    throw TrainError(.invalidInput("\(file): no such file (\((folder as NSString).lastPathComponent) holds \(all))"))
                }
                let b = try read(file)
                pixels += b.pixels
                labels += b.labels
            }
            return CIFARSamples(pixels: pixels, labels: labels, augment: augment)
        }
        return (try split(trainNames, augment: true), try split([testName], augment: false))
    }

    /// One pickled batch: a dict with `data` (uint8 N x 3072) and `labels` or `fine_labels`.
    public static func pickleBatch(_ file: String, classes: Int) throws(TrainError) -> (pixels: [UInt8], labels: [Int]) {
        let root: CheckpointValue
        do { root = try PickleReader.read(try bytes(file)) } catch {
            throw TrainError(.invalidInput("\(file): not a readable CIFAR batch pickle: \(error)"))
        }
        guard case .dict(let d) = root else {
            throw TrainError(.invalidInput("\(file): the pickle holds a \(root.typeName), not a CIFAR batch dict"))
        }
        func entry(_ key: String) -> CheckpointValue? {
            d.entries.first { e in
                switch e.key {
                case .string(let s): return s == key
                case .bytes(let b): return b == Array(key.utf8)
                default: return false
                }
            }?.value
        }
        guard case .tensor(let t)? = entry("data"), t.dtype == .uint8, t.shape.count == 2,
            t.shape[1] == CIFARSamples.imageBytes
        else {
            throw TrainError(
                .invalidInput(
                    "\(file): 'data' must be a uint8 numpy array N x \(CIFARSamples.imageBytes); got \(describe(entry("data")))"))
        }
        let key = entry("labels") != nil ? "labels" : "fine_labels"
        guard let list = entry(key), let labels = integers(list) else {
            throw TrainError(.invalidInput("\(file): no 'labels' or 'fine_labels' list of integers"))
        }
        guard labels.count == t.shape[0] else {
            throw TrainError(.invalidInput("\(file): \(labels.count) labels for \(t.shape[0]) images"))
        }
        try check(labels, classes: classes, file: file)
        return (t.materialize().data.toArray(), labels)
    }

    /// One binary batch: records of the label byte(s) and 3072 image bytes.
    public static func binaryBatch(_ file: String, classes: Int) throws(TrainError) -> (pixels: [UInt8], labels: [Int]) {
        let data: [UInt8]
        do { data = try bytes(file).toArray() } catch { throw TrainError(.invalidInput("\(file): \(error)")) }
        let head = classes == 10 ? 1 : 2
        let record = head + CIFARSamples.imageBytes
        guard !data.isEmpty, data.count % record == 0 else {
            throw TrainError(
                .invalidInput(
                    "\(file): truncated or malformed: \(data.count) bytes is not a whole number of \(record)-byte records"))
        }
        let n = data.count / record
        var pixels = [UInt8](repeating: 0, count: n * CIFARSamples.imageBytes)
        var labels = [Int](repeating: 0, count: n)
        for i in 0..<n {
            labels[i] = Int(data[i * record + head - 1])
            let s = i * record + head
            pixels.replaceSubrange(
                (i * CIFARSamples.imageBytes)..<((i + 1) * CIFARSamples.imageBytes), with: data[s..<(s + CIFARSamples.imageBytes)])
        }
        try check(labels, classes: classes, file: file)
        return (pixels, labels)
    }

    static func check(_ labels: [Int], classes: Int, file: String) throws(TrainError) {
        if let i = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw TrainError(.invalidInput("\(file): label \(labels[i]) of image \(i) is out of range for \(classes) classes"))
        }
    }

    static func integers(_ v: CheckpointValue) -> [Int]? {
        switch v {
        case .list(let items), .tuple(let items):
            var out: [Int] = []
            out.reserveCapacity(items.count)
            for x in items {
                guard case .int(let i) = x, let n = Int(exactly: i) else { return nil }
                out.append(n)
            }
            return out
        case .tensor(let t) where t.shape.count == 1 && !t.dtype.isFloatingPoint && !t.dtype.isComplex:
            return t.materialize().doubles().map { Int($0) }
        default: return nil
        }
    }

    static func describe(_ v: CheckpointValue?) -> String {
        guard let v else { return "nothing" }
        if case .tensor(let t) = v { return "\(t.dtype.rawValue) \(t.shape)" }
        return v.typeName
    }

    static func bytes(_ file: String) throws -> ByteSlice { try ByteStore.map(path: file).all }

    static func path(_ a: String, _ b: String) -> String { (a as NSString).appendingPathComponent(b) }
}
