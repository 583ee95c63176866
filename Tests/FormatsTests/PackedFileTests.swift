import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// The bnnpack 1 container (`.qpack`): a valid file reads back as `.bnnpack` with its manifest,
/// and every malformed variant is refused with a `FormatError` that names the tensor or
/// metadata key and what is wrong.
@Suite struct PackedFileTests {
    /// A binary conv `a` (Cin 5: rows of 5 bits padded to 64) and a ternary conv `b`.
    static let manifest = PackedManifest(
        model: "resnet20", padding: "before_quant",
        layers: [
            .init(
                name: "a", op: "bconv2d", inChannels: 5, outChannels: 2, kernel: [3, 3], stride: [1, 1],
                dilation: [1, 1], groups: 1, pads: [1, 1, 1, 1], padValue: "+1", inputEncoding: "binary",
                inputQuantizer: "xnor(scale=none)", weightEncoding: "binary", weightQuantizer: "xnor"),
            .init(
                name: "b", op: "tconv2d", inChannels: 70, outChannels: 3, kernel: [1, 1], stride: [2, 2],
                dilation: [1, 1], groups: 1, pads: [0, 0, 0, 0], padValue: "none", inputEncoding: "unipolar:3",
                inputQuantizer: "non-uniform", weightEncoding: "ternary", weightQuantizer: "non-uniform"),
        ])

    static func u8(_ bytes: [UInt8], _ shape: [Int]) -> Tensor {
        (try? Tensor(dtype: .uint8, shape: shape, data: ByteSlice(bytes))) ?? Tensor(floats: [], shape: [0])
    }

    /// The tensors of a valid file, each replaceable by name.
    static func tensors() -> [(name: String, tensor: Tensor)] {
        let a = manifest.layers[0], b = manifest.layers[1]
        let bits = BitPlanes.pack(rows: a.rows, count: 5) { r, i in (r + i) % 3 == 0 }
        let mask = BitPlanes.pack(rows: b.rows, count: 70) { r, i in (r * 7 + i) % 4 != 0 }
        let sign = BitPlanes.pack(rows: b.rows, count: 70) { r, i in (r * 7 + i) % 4 != 0 && i % 2 == 0 }
        return [
            ("a.w.bits", u8(bits, a.planeShape)), ("a.w.scale", Tensor(floats: [0.5, 0.25], shape: [2])),
            ("b.w.sign", u8(sign, b.planeShape)), ("b.w.mask", u8(mask, b.planeShape)),
            ("b.w.scale", Tensor(floats: [1, 1, 1], shape: [3])),
            ("conv1.weight", Tensor(floats: [Float](repeating: 0.5, count: 27), shape: [1, 3, 3, 3])),
        ]
    }

    /// A packed file's bytes; `metadata` replaces the layout keys (to corrupt them).
    static func file(
        _ tensors: [(name: String, tensor: Tensor)] = tensors(), manifest: PackedManifest = manifest,
        metadata: [String: String] = [:]
    ) throws -> [UInt8] {
        var meta = PackedFile.layoutMetadata
        meta[PackedFile.versionKey] = "1"
        meta[PackedFile.manifestKey] = try manifest.encoded()
        meta.merge(metadata) { _, given in given }
        let sink = MemorySink()
        try SafeTensorsWriter.write(tensors, metadata: meta, to: sink)
        return sink.bytes
    }

    static func replacing(_ name: String, with t: Tensor?) -> [(name: String, tensor: Tensor)] {
        tensors().compactMap { $0.name == name ? t.map { (name, $0) } : $0 }
    }

    static func readError(_ bytes: [UInt8]) throws -> FormatError {
        try #require(throws: FormatError.self) { try ModelFile.read(ByteSlice(bytes)) }
    }

    @Test func validFileReadsBackWithItsManifest() throws {
        let sink = MemorySink()
        try PackedFile.write(
            manifest: Self.manifest, packed: Array(Self.tensors().prefix(5)), others: [Self.tensors()[5]],
            metadata: ["qtools_config": "{}"], to: sink)
        let (kind, c) = try ModelFile.read(ByteSlice(sink.bytes))
        #expect(kind == .safetensors)
        #expect(c.format == .bnnpack)
        #expect(try PackedFile.validate(c) == Self.manifest)
        #expect(c.facts.contains { $0.key == "packed layers" && $0.value == "2" })
        let s = try #require(PackedSummary.of(c, fileBytes: sink.bytes.count))
        #expect(s.layers.map(\.k) == [45, 70])
        #expect(s.layers[0].paddingWaste == 59.0 / 64)
        // a: 2*9 rows of 8 bytes + 2 scales; b: 2 planes of 3 rows of 16 bytes + 3 scales.
        #expect(s.packedBytes == 144 + 8 + 96 + 12)
        #expect(s.packedLayersFloat32Bytes == (2 * 45 + 3 * 70) * 4)
        // A plain safetensors file is not a packed one.
        let plain = MemorySink()
        try SafeTensorsWriter.write([Self.tensors()[5]], to: plain)
        #expect(try ModelFile.read(ByteSlice(plain.bytes)).1.format == .safetensors)
    }

    @Test func truncatedFileIsRefused() throws {
        let bytes = try Self.file()
        let e = try Self.readError(Array(bytes.dropLast(7)))
        #expect("\(e)".contains("truncated (needed"), "\(e)")
    }

    /// The header JSON rewritten so that one tensor's `data_offsets` are shifted.
    static func withOffsets(
        _ bytes: [UInt8], shift name: String, begin: Int, end: Int, dataCount: Int
    ) throws -> [UInt8] {
        let n = Int(Elements.loadLE(ByteSlice(bytes), 0, 8))
        var header = try #require(
            try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        var entry = try #require(header[name] as? [String: Any])
        entry["data_offsets"] = [begin, end]
        header[name] = entry
        var json = Array(try JSONSerialization.data(withJSONObject: header))
        json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
        var w = ByteWriter()
        w.u64(UInt64(json.count))
        w.append(json)
        let data = Array(bytes[(8 + n)...])
        w.append(Array(data.prefix(dataCount)) + [UInt8](repeating: 0, count: max(0, dataCount - data.count)))
        return w.bytes
    }

    @Test func gappedAndOverlappingOffsetsAreRefused() throws {
        let bytes = try Self.file()
        let header = try SafeTensorsHeader.parse(ByteSlice(bytes))
        let last = try #require(header.entries.last)
        let r = last.dataOffsets
        // The last tensor moved 4 bytes later (4 bytes added at the end): a hole before it.
        let gap = try Self.readError(
            try Self.withOffsets(
                bytes, shift: last.name, begin: r.lowerBound + 4, end: r.upperBound + 4, dataCount: r.upperBound + 4))
        #expect(gap.tensor == last.name && "\(gap)".contains("hole in the data buffer"), "\(gap)")
        // Moved 4 bytes earlier (the file 4 bytes shorter): it overlaps the one before.
        let overlap = try Self.readError(
            try Self.withOffsets(
                bytes, shift: last.name, begin: r.lowerBound - 4, end: r.upperBound - 4, dataCount: r.upperBound - 4))
        #expect(overlap.tensor == last.name && "\(overlap)".contains("overlap"), "\(overlap)")
    }

    @Test func paddingBitSetIsRefused() throws {
        var bits = Self.tensors()[0].tensor.data.toArray()
        bits[8 * 4] |= 0x40  // row 4, bit 6: Cin is 5, bits 5..<64 are padding
        let e = try Self.readError(try Self.file(Self.replacing("a.w.bits", with: Self.u8(bits, [2, 3, 3, 8]))))
        #expect(e.tensor == "a.w.bits")
        #expect("\(e)".contains("padding bit set: row 4, bit 6"), "\(e)")
        // The same in the last byte of a 70-element row (bits 70..<128 are padding).
        var mask = Self.tensors()[3].tensor.data.toArray()
        mask[15] |= 0x80
        let m = try Self.readError(try Self.file(Self.replacing("b.w.mask", with: Self.u8(mask, [3, 1, 1, 16]))))
        #expect(m.tensor == "b.w.mask" && "\(m)".contains("row 0, bit 127"), "\(m)")
    }

    @Test func signOutsideMaskIsRefused() throws {
        let mask = Self.tensors()[3].tensor.data.toArray()
        var sign = Self.tensors()[2].tensor.data.toArray()
        // Element 4 of row 1 has mask 0 ((7 + 4) % 4 != 0 is true, so take element 1: (7+1)%4 == 0).
        #expect(mask[16] & 0x02 == 0)
        sign[16] |= 0x02
        let e = try Self.readError(try Self.file(Self.replacing("b.w.sign", with: Self.u8(sign, [3, 1, 1, 16]))))
        #expect(e.tensor == "b.w.sign")
        #expect("\(e)".contains("sign & ~mask = 0") && "\(e)".contains("row 1, element 1"), "\(e)")
    }

    @Test func unknownVersionIsRefused() throws {
        let e = try Self.readError(try Self.file(metadata: [PackedFile.versionKey: "2"]))
        #expect(e.reason == .unsupportedVersion(found: 2, newestSupported: 1))
        let order = try Self.readError(try Self.file(metadata: ["bnnpack.bit_order": "msb0"]))
        #expect("\(order)".contains("bnnpack.bit_order") && "\(order)".contains("lsb0"), "\(order)")
        let polarity = try Self.readError(try Self.file(metadata: ["bnnpack.one_bit_means": "+1"]))
        #expect("\(polarity)".contains("one_bit_means"), "\(polarity)")
    }

    @Test func manifestAndTensorsMustAgree() throws {
        let shape = try Self.readError(
            try Self.file(Self.replacing("a.w.bits", with: Self.u8([UInt8](repeating: 0, count: 18 * 16), [2, 3, 3, 16]))))
        #expect(shape.tensor == "a.w.bits" && "\(shape)".contains("shape [2,3,3,16], the manifest implies [2,3,3,8]"), "\(shape)")
        let dtype = try Self.readError(try Self.file(Self.replacing("a.w.scale", with: Self.u8([0, 0], [2]))))
        #expect(dtype.tensor == "a.w.scale" && "\(dtype)".contains("dtype U8, the manifest implies F32"), "\(dtype)")
        let missing = try Self.readError(try Self.file(Self.replacing("b.w.mask", with: nil)))
        #expect(missing.tensor == "b.w.mask" && "\(missing)".contains("missing"), "\(missing)")
        let orphan = try Self.readError(
            try Self.file(Self.tensors() + [("c.w.bits", Self.u8([UInt8](repeating: 0, count: 8), [1, 8]))]))
        #expect(orphan.tensor == "c.w.bits" && "\(orphan)".contains("no manifest layer lists"), "\(orphan)")
        let badJSON = try Self.readError(try Self.file(metadata: [PackedFile.manifestKey: "{\"format\":\"bnnpack\""]))
        #expect("\(badJSON)".contains("manifest is not valid"), "\(badJSON)")
        var geometry = Self.manifest
        geometry.layers[0].k = 44
        let k = try Self.readError(try Self.file(manifest: geometry))
        #expect("\(k)".contains("inconsistent geometry"), "\(k)")
    }

    @Test func truncationsAreRefused() throws {
        let bytes = try Self.file()
        var rng = SplitMix64(seed: 3)
        var cuts = Set([0, 1, 7, 8, 9, 64, bytes.count - 1, bytes.count - 8])
        for _ in 0..<24 { cuts.insert(Int(rng.next() % UInt64(bytes.count))) }
        for cut in cuts.sorted() {
            #expect(throws: FormatError.self, "cut at \(cut)") { try ModelFile.read(ByteSlice(Array(bytes.prefix(cut)))) }
        }
    }

    @Test func hugeGeometryIsRefusedWithoutOverflow() throws {
        var m = Self.manifest
        m.layers[0].kernel = [1 << 40, 1 << 40]
        m.layers[0].k = 0
        let e = try Self.readError(try Self.file(manifest: m))
        #expect("\(e)".contains("inconsistent geometry"), "\(e)")
    }

    @Test(arguments: 0..<16 as Range<UInt64>)
    func corruptedBytesNeverCrash(seed: UInt64) throws {
        var bytes = try Self.file()
        var rng = SplitMix64(seed: seed)
        for _ in 0..<4 {
            let i = Int(rng.next() % UInt64(bytes.count))
            bytes[i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
        }
        do { _ = try ModelFile.read(ByteSlice(bytes)) } catch is FormatError {}
    }
}
