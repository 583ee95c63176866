import Foundation
import QToolConfig
import Tensors

/// The loaders of `--dataset` that read files or generate images with shuffling and
/// augmentation (seed-reference §14.9): `cifar10`, `cifar100`, `imagenet` (ImageFolder;
/// `dali` reads the same), `fake`. (`npy` and `synthetic` are in-order ``ImageSet``s.)
public enum Datasets {
    /// The train (shuffled per epoch, augmented) and validation loaders of `options.dataset`,
    /// seeded by `--seed`, with `--workers` loader threads (at most the processor count).
    /// - Throws: ``TrainError`` `.invalidInput` naming what is missing or malformed;
    ///   `.unsupported` for a dataset qtools does not read.
    public static func open(options: QToolOptions) throws(TrainError) -> (train: any BatchSource, val: any BatchSource) {
        let seed = UInt64(bitPattern: Int64(options.seed))
        var requested = 12
        if case .int(let w) = options["workers"] { requested = w }
        let workers = max(1, min(requested, ProcessInfo.processInfo.activeProcessorCount))
        func loaders(_ train: any SampleSet, _ val: any SampleSet) -> (any BatchSource, any BatchSource) {
            (
                SampleLoader(train, shuffle: true, seed: seed, workers: workers, prefetch: workers + 1),
                SampleLoader(val, shuffle: false, seed: seed, workers: workers, prefetch: workers + 1)
            )
        }
        switch options.dataset {
        case "cifar10", "cifar100":
            let (train, val) = try CIFARDataset.load(root: options.root, classes: options.dataset == "cifar10" ? 10 : 100)
            return loaders(train, val)
        case "imagenet", "dali":
            // `dali` falls back to the ImageNet loader, as main.py does without DALI.
            let side = options.resolvedInputSize
            var train = try ImageFolderSamples.scan(
                (options.root as NSString).appendingPathComponent("train"), augment: true, side: side)
            if case .bool(true) = options["addition_augment"] { train.colorAugment = true }
            let val = try ImageFolderSamples.scan(
                (options.root as NSString).appendingPathComponent("val"), augment: false, side: side)
            return loaders(train, val)
        case "fake":
            let side = options.resolvedInputSize
            return loaders(FakeSamples(side: side), FakeSamples(side: side))
        default:
            throw TrainError(
                .unsupported(
                    "--dataset \(options.dataset) (qtools train reads cifar10, cifar100, imagenet, fake, npy and synthetic)"))
        }
    }
}
