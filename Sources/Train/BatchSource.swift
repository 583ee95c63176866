import Tensors

/// One batch: images `(N, C, H, W)` float32 and their class labels.
public typealias Batch = (x: Tensor, labels: [Int])

/// A dataset split as the training loop reads it: the batches of one epoch, in order.
///
/// ``ImageSet`` (`--dataset npy`, `synthetic`) gives its batches in order, unchanged every
/// epoch; ``SampleLoader`` (CIFAR, `fake`) shuffles per epoch and augments, with loader
/// threads preparing the next batches while the step computes.
public protocol BatchSource: Sendable {
    /// The number of images in the split.
    var count: Int { get }
    /// The batches of epoch `epoch` (0-based), `size` images each, the last one possibly
    /// smaller (torch's DataLoader with `drop_last=False`).
    func batches(epoch: Int, size: Int) -> any BatchIterator
}

extension BatchSource {
    /// The number of batches of `size` (the last one may be smaller, as torch's DataLoader).
    public func batchCount(_ size: Int) -> Int { size > 0 ? (count + size - 1) / size : 0 }
}

/// The batches of one epoch, one at a time.
public protocol BatchIterator: AnyObject {
    /// The next batch; nil after the last one.
    /// - Throws: ``TrainError`` `.invalidInput` naming the file a sample could not be read from.
    func next() throws(TrainError) -> Batch?
}

extension ImageSet: BatchSource {
    /// The batches in order (no shuffling, no augmentation), the same every epoch.
    public func batches(epoch: Int, size: Int) -> any BatchIterator { InOrderBatches(set: self, size: size) }
}

/// ``ImageSet``'s batches in order.
final class InOrderBatches: BatchIterator {
    let set: ImageSet
    let size: Int
    var index = 0

    init(set: ImageSet, size: Int) {
        self.set = set
        self.size = max(size, 1)
    }

    func next() throws(TrainError) -> Batch? {
        guard index < set.batchCount(size) else { return nil }
        defer { index += 1 }
        return set.batch(index, size: size)
    }
}
