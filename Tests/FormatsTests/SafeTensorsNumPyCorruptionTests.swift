import Tensors
import TestSupport
import Testing

@testable import Formats

/// Seeded corrupt-input sweep for the safetensors, npy and npz readers: truncations plus byte
/// flips (mostly in the headers, where the parsing is) must parse or throw ``FormatError``;
/// never crash, hang, or throw anything else. A failure names its seed.
@Suite struct SafeTensorsNumPyCorruptionTests {
    enum Kind: String, CaseIterable, Sendable {
        case safetensors, npy, npzStored, npzDeflated
    }

    /// A small valid file of each kind.
    static func sample(_ kind: Kind) throws -> [UInt8] {
        var rng = SplitMix64(seed: 99)
        let tensors: [(name: String, tensor: Tensor)] = [
            ("conv.weight", Tensor(floats: rng.floats(24), shape: [2, 3, 2, 2])),
            (
                "bn.count",
                try Tensor(dtype: .int64, shape: [], data: ByteSlice([5, 0, 0, 0, 0, 0, 0, 0]))
            ),
            ("mask", try Tensor(dtype: .bool, shape: [3], data: ByteSlice([1, 0, 1]))),
            ("empty", try Tensor(dtype: .float16, shape: [0], data: ByteSlice([]))),
        ]
        let sink = MemorySink()
        switch kind {
        case .safetensors: try SafeTensorsWriter.write(tensors, metadata: ["k": "v"], to: sink)
        case .npy: try NpyWriter.write(tensors[0].tensor, to: sink)
        case .npzStored: try NpzWriter.write(tensors, compression: .stored, to: sink)
        case .npzDeflated: try NpzWriter.write(tensors, compression: .deflated, to: sink)
        }
        return sink.bytes
    }

    static func read(_ kind: Kind, _ bytes: ByteSlice) throws -> Checkpoint {
        switch kind {
        case .safetensors: return try SafeTensorsReader.read(bytes)
        case .npy: return try NpyReader.read(bytes)
        case .npzStored, .npzDeflated: return try NpzReader.read(bytes, verifyCRC: true)
        }
    }

    /// Touches every tensor's bytes, so a view that escaped validation would trap here.
    static func touch(_ v: CheckpointValue) {
        switch v {
        case .tensor(let t): _ = t.materialize().data.toArray()
        case .dict(let d): d.entries.forEach { touch($0.value) }
        default: break
        }
    }

    @Test func samplesAreValid() throws {
        for kind in Kind.allCases {
            let bytes = try Self.sample(kind)
            #expect(!bytes.isEmpty)
            Self.touch(try Self.read(kind, ByteSlice(bytes)).root)
        }
    }

    @Test(arguments: 0..<48 as Range<UInt64>)
    func corruptInputParsesOrThrowsFormatError(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for kind in Kind.allCases {
            var bytes = try Self.sample(kind)
            if Bool.random(using: &rng) {
                bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
            }
            if !bytes.isEmpty {
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    // Three flips in four land in the first 160 bytes (headers, zip records).
                    let span =
                        Int.random(in: 0..<4, using: &rng) == 0
                        ? bytes.count : min(bytes.count, 160)
                    let i = Int.random(in: 0..<span, using: &rng)
                    if Bool.random(using: &rng) {
                        bytes[i] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                    } else {
                        bytes[i] = UInt8.random(in: 0...255, using: &rng)
                    }
                }
            }
            do {
                Self.touch(try Self.read(kind, ByteSlice(bytes)).root)
            } catch is FormatError {
                // expected for most mutations
            } catch {
                Issue.record(
                    "\(kind.rawValue), seed \(seed): non-FormatError \(type(of: error)): \(error)")
            }
        }
    }

    /// Every prefix of the safetensors and npy samples (cheap: they are small).
    @Test(arguments: [Kind.safetensors, .npy, .npzStored])
    func everyTruncationThrowsFormatError(kind: Kind) throws {
        let bytes = try Self.sample(kind)
        for n in 0..<bytes.count {
            #expect(throws: FormatError.self, "\(kind.rawValue) cut at \(n)") {
                try Self.read(kind, ByteSlice(Array(bytes.prefix(n))))
            }
        }
    }
}
