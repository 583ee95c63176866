import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// Corrupt-input sweep: seeded truncations and byte flips of small ONNX models must either read
/// or throw `FormatError`, never crash, hang or over-allocate.
@Suite struct ONNXSweepTests {
    /// A small CNN exported by torch (nil without the reference Python), made once.
    static let exported: [UInt8]? = {
        guard ONNXPython.enabled else { return nil }
        return try? withTemporaryDirectory { dir -> [UInt8] in
            _ = try ONNXPython.run(ONNXPython.torchExport, [dir.path])
            return try ByteStore.read(path: dir.appendingPathComponent("dynamic.onnx").path).all.toArray()
        }
    }()

    static func model(_ index: Int) throws -> [UInt8] {
        if index == 0 { return try bytes(smallONNXModel()) }
        return try #require(exported, "the torch-exported model could not be made")
    }

    /// Reads through both entry points and touches every tensor byte.
    func readAll(_ b: [UInt8]) {
        for direct in [true, false] {
            do {
                let tensors: [StoredTensor]
                if direct {
                    tensors = try ONNXReader.model(ByteSlice(b)).initializers.map(\.tensor)
                } else {
                    tensors = try ModelFile.read(ByteSlice(b)).1.root.allTensors().map(\.1)
                }
                for t in tensors { _ = TensorStatistics.of(t.materialize()) }
            } catch is FormatError {
            } catch {
                Issue.record("non-FormatError thrown: \(error)")
            }
        }
    }

    @Test(arguments: [0, 1], 0..<4 as Range<UInt64>)
    func truncationsAndFlipsNeverCrash(model index: Int, seed: UInt64) throws {
        if index == 1, Self.exported == nil, !Python.isRequired { return }
        let original = try Self.model(index)
        var rng = SplitMix64(seed: seed)
        // A protobuf cut at a top-level field boundary is a valid message, but a cut inside the
        // graph (here: between its first and last initializer) never is.
        let offsets = try ONNXWireScan.scan(ByteSlice(original)).initializerOffsets
        let inside = try #require(offsets.first)..<(try #require(offsets.last))
        for _ in 0..<12 {
            let cut = Int(rng.next() % UInt64(original.count))
            let b = Array(original.prefix(cut))
            readAll(b)
            if inside.contains(cut) {
                #expect(throws: FormatError.self, "cut at \(cut) read as complete") {
                    _ = try ONNXReader.model(ByteSlice(b))
                }
            }
        }
        for _ in 0..<40 {
            var b = original
            for _ in 0..<Int(1 + rng.next() % 4) {
                let i = Int(rng.next() % UInt64(b.count))
                b[i] ^= UInt8(truncatingIfNeeded: 1 + rng.next() % 255)
            }
            readAll(b)
        }
    }
}
