import Foundation
import Tensors

/// A dataset split sample by sample: what ``SampleLoader`` batches.
public protocol SampleSet: Sendable {
    /// The number of samples.
    var count: Int { get }
    /// The shape of one transformed sample, `[C, H, W]`.
    var sampleShape: [Int] { get }
    /// The class of sample `index`.
    func label(_ index: Int) -> Int
    /// Writes sample `index`, transformed with random draws from `rng`, as float32 CHW into
    /// `out[offset..<offset + sampleShape.product]`.
    /// - Throws: ``TrainError`` `.invalidInput` naming the file that cannot be read.
    func load(_ index: Int, rng: inout SplitMix64, into out: inout [Float], at offset: Int) throws(TrainError)
}

/// torch's `DataLoader(dataset, batch_size, shuffle=…, num_workers=…)` over a ``SampleSet``:
/// with `shuffle` a new permutation of the samples every epoch, each sample transformed with
/// its own random stream, batches prepared by loader threads ahead of the consumer.
///
/// Everything random is a function of (`seed`, epoch, position in the epoch): the same seed
/// gives the same batches whatever the thread count or timing, and a run resumed at epoch `e`
/// sees the batches an uninterrupted run sees (torch's own random streams are not reproduced).
public struct SampleLoader: BatchSource {
    public var samples: any SampleSet
    public var shuffle: Bool
    public var seed: UInt64
    /// Loader threads (at least 1).
    public var workers: Int
    /// Batches built ahead of the one the loop is using.
    public var prefetch: Int

    public init(_ samples: any SampleSet, shuffle: Bool, seed: UInt64, workers: Int = 2, prefetch: Int = 3) {
        self.samples = samples
        self.shuffle = shuffle
        self.seed = seed
        self.workers = max(workers, 1)
        self.prefetch = max(prefetch, 1)
    }

    public var count: Int { samples.count }

    /// The sample indices of epoch `epoch` in the order they are read.
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<samples.count)
        guard shuffle, order.count > 1 else { return order }
        var rng = SplitMix64(seed: Self.mix(seed, 0x5348_5546_464C_4521, UInt64(truncatingIfNeeded: epoch)))
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        return order
    }

    /// The random stream of the sample at `position` of epoch `epoch`.
    public func sampleRandom(epoch: Int, position: Int) -> SplitMix64 {
        SplitMix64(seed: Self.mix(seed, UInt64(truncatingIfNeeded: epoch), UInt64(truncatingIfNeeded: position)))
    }

    /// Batch `index` of `size` of an epoch read in `order`.
    public func batch(_ index: Int, size: Int, epoch: Int, order: [Int]) throws(TrainError) -> Batch {
        let shape = samples.sampleShape
        let per = shape.reduce(1, *)
        let first = index * size, last = min(order.count, first + size)
        var out = [Float](repeating: 0, count: (last - first) * per)
        var labels: [Int] = []
        labels.reserveCapacity(last - first)
        for p in first..<last {
            var rng = sampleRandom(epoch: epoch, position: p)
            try samples.load(order[p], rng: &rng, into: &out, at: (p - first) * per)
            labels.append(samples.label(order[p]))
        }
        return (Tensor(floats: out, shape: [last - first] + shape), labels)
    }

    public func batches(epoch: Int, size: Int) -> any BatchIterator {
        let size = max(size, 1)
        let order = order(epoch: epoch)
        let loader = self
        return BatchPrefetcher(total: batchCount(size), workers: workers, depth: prefetch) { (i: Int) throws(TrainError) -> Batch in
            try loader.batch(i, size: size, epoch: epoch, order: order)
        }
    }

    /// Three words hashed to one seed (SplitMix64's finaliser over a combination).
    static func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        var r = SplitMix64(seed: a ^ (b &* 0xD1B5_4A32_D192_ED03) ^ (c &* 0xAEF1_7502_108E_F2D9))
        _ = r.next()
        return r.next()
    }
}
