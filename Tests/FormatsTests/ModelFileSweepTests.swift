import Tensors
import TestSupport
import Testing

@testable import Formats

/// Corrupt-input sweep through the one entry point: truncations and seeded byte flips of
/// real files must either read or throw `FormatError`, never crash, hang or over-allocate.
@Suite struct ModelFileSweepTests {
    static let files = [
        "golden/resnet20_xnorpp/checkpoint.pth",
        "golden/resnet20_fixup/checkpoint-legacy.pth",
    ]

    /// Reads every tensor of whatever was parsed, so bad offsets cannot hide behind laziness.
    func readAll(_ bytes: ByteSlice) -> Bool {
        do {
            let (_, c) = try ModelFile.read(bytes, verifyCRC: false)
            for (_, t) in c.root.allTensors() { _ = TensorStatistics.of(t.materialize()) }
            return true
        } catch is FormatError {
            return false
        } catch {
            Issue.record("non-FormatError thrown: \(error)")
            return false
        }
    }

    @Test(arguments: files)
    func truncationsNeverCrash(file: String) throws {
        let store = try ByteStore.map(path: Fixtures.path(file))
        var cuts = Set([0, 1, 2, 7, 8, 15, 16, 64, 100, store.count - 1, store.count - 22, store.count - 23])
        var rng = SplitMix64(seed: 7)
        for _ in 0..<40 { cuts.insert(Int(rng.next() % UInt64(store.count))) }
        for cut in cuts.sorted() where cut >= 0 && cut < store.count {
            #expect(!readAll(store.slice(0..<cut)) || cut == store.count, "cut at \(cut) read as complete")
        }
    }

    @Test(arguments: [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] as [(Int, UInt64)])
    func byteFlipsNeverCrash(fileIndex: Int, seed: UInt64) throws {
        let original = try ByteStore.map(path: Fixtures.path(Self.files[fileIndex])).all.toArray()
        var rng = SplitMix64(seed: seed)
        for _ in 0..<25 {
            var bytes = original
            for _ in 0..<Int(1 + rng.next() % 4) {
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] ^= UInt8(truncatingIfNeeded: 1 + rng.next() % 255)
            }
            _ = readAll(ByteSlice(bytes))
        }
    }
}
