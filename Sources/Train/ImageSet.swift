import Formats
import Foundation
import Tensors

/// A labelled image set in memory: `count` images of `imageShape` (`[C, H, W]`) as float32
/// NCHW, read in order in batches (no shuffling, no augmentation).
public struct ImageSet: Sendable {
    public var images: [Float]
    public var imageShape: [Int]
    public var labels: [Int]

    public var count: Int { labels.count }

    public init(images: [Float], imageShape: [Int], labels: [Int]) {
        self.images = images
        self.imageShape = imageShape
        self.labels = labels
    }

    /// The number of batches of `size` (the last one may be smaller, as torch's DataLoader).
    public func batchCount(_ size: Int) -> Int { (count + size - 1) / size }

    /// Batch `index` of `size` images.
    public func batch(_ index: Int, size: Int) -> (x: Tensor, labels: [Int]) {
        let image = imageShape.reduce(1, *)
        let first = index * size, last = min(count, first + size)
        let x = Tensor(floats: Array(images[(first * image)..<(last * image)]), shape: [last - first] + imageShape)
        return (x, Array(labels[first..<last]))
    }

    /// Checks the labels are classes of a `classes`-way model.
    public func checkLabels(classes: Int, name: String) throws(TrainError) {
        if let i = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw TrainError(.invalidInput("\(name): label \(labels[i]) of image \(i) is out of range for \(classes) classes"))
        }
    }
}

/// `--dataset npy`: `root` holds `train_x.npy`, `train_y.npy`, `val_x.npy`, `val_y.npy`
/// (NCHW float32 images, integer labels).
public enum NpyDataset {
    /// The train and validation sets under `root`.
    /// - Throws: ``TrainError`` `.invalidInput` naming the file that is missing or malformed.
    public static func load(root: String) throws(TrainError) -> (train: ImageSet, val: ImageSet) {
        (try split(root, "train"), try split(root, "val"))
    }

    static func split(_ root: String, _ name: String) throws(TrainError) -> ImageSet {
        let xPath = (root as NSString).appendingPathComponent("\(name)_x.npy")
        let yPath = (root as NSString).appendingPathComponent("\(name)_y.npy")
        let x = try array(xPath), y = try array(yPath)
        guard x.shape.count == 4, x.dtype.isFloatingPoint else {
            throw TrainError(.invalidInput("\(xPath): images must be a 4-D float array (N, C, H, W); got \(x.dtype.rawValue) \(x.shape)"))
        }
        guard y.shape.count == 1, !y.dtype.isFloatingPoint, !y.dtype.isComplex, y.dtype != .bool else {
            throw TrainError(.invalidInput("\(yPath): labels must be a 1-D integer array; got \(y.dtype.rawValue) \(y.shape)"))
        }
        guard y.shape[0] == x.shape[0] else {
            throw TrainError(.invalidInput("\(yPath): \(y.shape[0]) labels for \(x.shape[0]) images in \(xPath)"))
        }
        let images = x.floats()
        if let i = images.firstIndex(where: { !$0.isFinite }) {
            throw TrainError(.invalidInput("\(xPath): element \(i) is \(images[i])"))
        }
        return ImageSet(images: images, imageShape: Array(x.shape.dropFirst()), labels: y.doubles().map { Int($0) })
    }

    static func array(_ path: String) throws(TrainError) -> Tensor {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainError(
                .invalidInput("\(path): no such file (--dataset npy needs train_x.npy, train_y.npy, val_x.npy, val_y.npy in --root)"))
        }
        do {
            return try NpyReader.readArray(ByteStore.map(path: path).all)
        } catch {
            throw TrainError(.invalidInput("\(path): \(error)"))
        }
    }
}
