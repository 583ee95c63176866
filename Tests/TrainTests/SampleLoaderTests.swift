import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// ``SampleLoader``: per-epoch shuffling, deterministic under the seed whatever the loader
/// threads, the eval split in order; ``BatchPrefetcher`` hands batches out in order,
/// passes errors on, and stops when dropped; `fake` as the reference defines it.
@Suite struct SampleLoaderTests {
    /// Sample `i` is filled with `i` (+ a random draw when `noisy`), its label `i % 10`.
    struct Numbered: SampleSet {
        var count: Int
        var noisy = false
        var failAt: Int? = nil
        var sampleShape: [Int] { [1, 2, 2] }
        func label(_ index: Int) -> Int { index % 10 }
        func load(_ index: Int, rng: inout SplitMix64, into out: inout [Float], at offset: Int) throws(TrainError) {
            if index == failAt { throw TrainError(.invalidInput("sample \(index): unreadable")) }
            let extra = noisy ? Float(rng.next() % 1000) / 1000 : 0
            for k in 0..<4 { out[offset + k] = Float(index) + extra }
        }
    }

    static func epoch(_ l: SampleLoader, _ e: Int, size: Int) throws -> [Batch] {
        let it = l.batches(epoch: e, size: size)
        var out: [Batch] = []
        while let b = try it.next() { out.append(b) }
        return out
    }

    static func firsts(_ bs: [Batch]) -> [Int] {
        bs.flatMap { b in stride(from: 0, to: b.x.elementCount, by: 4).map { Int(b.x.floats()[$0]) } }
    }

    @Test func shufflesEveryEpochAsAPermutation() throws {
        let l = SampleLoader(Numbered(count: 103), shuffle: true, seed: 7, workers: 2, prefetch: 2)
        let e0 = try Self.epoch(l, 0, size: 10), e1 = try Self.epoch(l, 1, size: 10)
        #expect(e0.count == 11 && e0.last?.labels.count == 3 && e0.last?.x.shape == [3, 1, 2, 2])
        let o0 = Self.firsts(e0), o1 = Self.firsts(e1)
        #expect(o0.sorted() == Array(0..<103) && o1.sorted() == Array(0..<103))
        #expect(o0 != Array(0..<103) && o0 != o1)
        #expect(o0 == l.order(epoch: 0))
        #expect(e0.flatMap(\.labels) == o0.map { $0 % 10 }, "labels follow their images")
    }

    @Test func theSeedDecidesEverythingNotTheThreads() throws {
        let set = Numbered(count: 57, noisy: true)
        let a = SampleLoader(set, shuffle: true, seed: 3, workers: 1, prefetch: 1)
        let b = SampleLoader(set, shuffle: true, seed: 3, workers: 2, prefetch: 5)
        let c = SampleLoader(set, shuffle: true, seed: 4, workers: 2, prefetch: 2)
        for e in [0, 5] {
            let x = try Self.epoch(a, e, size: 8), y = try Self.epoch(b, e, size: 8)
            #expect(x.map { $0.x.floats() } == y.map { $0.x.floats() } && x.map(\.labels) == y.map(\.labels))
            #expect(x.map { $0.x.floats() } != (try Self.epoch(c, e, size: 8)).map { $0.x.floats() })
        }
    }

    @Test func withoutShuffleTheOrderIsTheFilesOrder() throws {
        let l = SampleLoader(Numbered(count: 20), shuffle: false, seed: 1)
        #expect(Self.firsts(try Self.epoch(l, 3, size: 6)) == Array(0..<20))
    }

    @Test func aFailingSampleFailsItsBatchInOrder() throws {
        let l = SampleLoader(Numbered(count: 40, failAt: 25), shuffle: false, seed: 1, workers: 2, prefetch: 3)
        let it = l.batches(epoch: 0, size: 10)
        _ = try it.next()
        _ = try it.next()
        #expect(throws: TrainError(.invalidInput("sample 25: unreadable"))) { _ = try it.next() }
    }

    @Test func droppingAnEpochEarlyStopsTheThreads() throws {
        let l = SampleLoader(Numbered(count: 10_000), shuffle: true, seed: 1, workers: 2, prefetch: 2)
        for e in 0..<20 {
            let it = l.batches(epoch: e, size: 4)
            _ = try it.next()
        }
        // Each dropped iterator cancelled its threads; a fresh epoch still reads to the end.
        #expect(try Self.epoch(SampleLoader(Numbered(count: 30), shuffle: true, seed: 1), 0, size: 4).count == 8)
    }

    /// Counts the samples loaded (from any thread).
    final class Counter: @unchecked Sendable {
        let lock = NSLock()
        var value = 0
        func add() { lock.withLock { value += 1 } }
        var current: Int { lock.withLock { value } }
    }

    struct Counted: SampleSet {
        let counter: Counter
        var count: Int { 1000 }
        var sampleShape: [Int] { [1, 1, 1] }
        func label(_ index: Int) -> Int { 0 }
        func load(_ index: Int, rng: inout SplitMix64, into out: inout [Float], at offset: Int) {
            counter.add()
            out[offset] = Float(index)
        }
    }

    @Test func theQueueIsBounded() throws {
        let counter = Counter()
        let l = SampleLoader(Counted(counter: counter), shuffle: false, seed: 0, workers: 2, prefetch: 3)
        let it = l.batches(epoch: 0, size: 10)
        let first = try #require(try it.next())
        #expect(first.x.floats() == (0..<10).map(Float.init))
        Thread.sleep(forTimeInterval: 0.3)
        // Taken: batch 0; built ahead at most `prefetch` more (however fast the threads are).
        #expect(counter.current <= 10 * (1 + 3), "\(counter.current) samples loaded")
        withExtendedLifetime(it) {}
    }

    @Test func imageSetBatchesStayInOrder() throws {
        let set = ImageSet(images: (0..<20).map(Float.init), imageShape: [1, 2, 2], labels: [0, 1, 2, 3, 4])
        let it = set.batches(epoch: 9, size: 2)
        var labels: [[Int]] = []
        while let b = try it.next() { labels.append(b.labels) }
        #expect(labels == [[0, 1], [2, 3], [4]])
    }

    @Test func fakeIsBlackImagesNormalisedWithLabelsModulo1000() throws {
        let f = FakeSamples(side: 8)
        #expect(f.count == 100_000 && f.label(1234) == 234)
        let l = SampleLoader(FakeSamples(count: 5, side: 8), shuffle: false, seed: 0)
        let b = try #require(try l.batches(epoch: 0, size: 5).next())
        #expect(b.x.shape == [5, 3, 8, 8] && b.labels == [0, 1, 2, 3, 4])
        let v = b.x.floats()
        for c in 0..<3 {
            let want = (0 - FakeSamples.mean[c]) / FakeSamples.std[c]
            #expect(v[(c * 64)..<((c + 1) * 64)].allSatisfy { $0 == want })
        }
    }
}
