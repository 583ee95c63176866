import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// ``Datasets/open(options:)``: `--dataset`, `--root`, `--seed`, `--workers`, `--input_size`
/// and `--aa` reach the loaders.
@Suite struct DatasetsTests {
    @Test func fakeFollowsTheInputSize() throws {
        let o = try QToolOptions().applying(arguments: ["--dataset", "fake", "--input_size", "40", "--seed", "9", "-j", "1"])
        let (train, val) = try Datasets.open(options: o)
        let t = try #require(train as? SampleLoader), v = try #require(val as? SampleLoader)
        #expect(t.count == 100_000 && v.count == 100_000 && t.samples.sampleShape == [3, 40, 40])
        #expect(t.shuffle && !v.shuffle && t.seed == 9 && t.workers == 1)
    }

    @Test func imagenetReadsTrainAndValWithAA() throws {
        try withTemporaryDirectory { dir in
            for p in ["train/a/1.jpg", "train/b/2.png", "val/a/3.JPEG", "val/b/4.png"] {
                try ImageFolderTests.touch(dir.path + "/" + p)
            }
            let o = try QToolOptions().applying(arguments: ["--dataset", "imagenet", "--root", dir.path, "--aa"])
            let (train, val) = try Datasets.open(options: o)
            let t = try #require((train as? SampleLoader)?.samples as? ImageFolderSamples)
            let v = try #require((val as? SampleLoader)?.samples as? ImageFolderSamples)
            #expect(t.augment && t.colorAugment && t.side == 224 && t.labels == [0, 1])
            #expect(!v.augment && !v.colorAugment && v.count == 2)
        }
    }

    @Test func cifarRootAndUnknownDatasets() throws {
        try withTemporaryDirectory { dir in
            let root = try CIFARDatasetTests.cifar10Binary(dir)
            let o = try QToolOptions().applying(arguments: ["--dataset", "cifar10", "--root", root])
            let (train, val) = try Datasets.open(options: o)
            #expect(train.count == 10 && val.count == 3)
            let bad = try QToolOptions().applying(arguments: ["--dataset", "mnist"])
            #expect(throws: TrainError.self) { _ = try Datasets.open(options: bad) }
        }
    }
}
