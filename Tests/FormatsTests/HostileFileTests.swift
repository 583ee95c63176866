import Foundation
import Tensors
import TestSupport
import Testing

@testable import Formats

/// Files built to make a reader allocate, recurse or loop without bound: each must be a
/// FormatError within a fraction of a second and without allocating what it declares.
@Suite struct HostileFileTests {
    /// A zip of the given records (name, method, payload, declared uncompressed size, CRC),
    /// written by hand so the header can lie.
    static func zip(_ records: [(name: String, method: UInt16, data: [UInt8], size: UInt32, crc: UInt32)]) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
        func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        var out: [UInt8] = [], central: [UInt8] = []
        for r in records {
            let name = Array(r.name.utf8)
            let offset = UInt32(out.count)
            let common =
                u16(20) + u16(0) + u16(r.method) + u16(0) + u16(0) + u32(r.crc) + u32(UInt32(r.data.count)) + u32(r.size)
                + u16(UInt16(name.count)) + u16(0)
            out += u32(0x0403_4b50) + common + name + r.data
            central += u32(0x0201_4b50) + u16(20) + common + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset) + name
        }
        let cdOffset = UInt32(out.count)
        out += central
        out +=
            u32(0x0605_4b50) + u16(0) + u16(0) + u16(UInt16(records.count)) + u16(UInt16(records.count))
            + u32(UInt32(central.count)) + u32(cdOffset) + u16(0)
        return out
    }

    /// A raw deflate stream of one final fixed-Huffman block holding nothing.
    static let emptyDeflate: [UInt8] = [0x03, 0x00]

    @Test func zipBombDeclaredSizesAreRefusedBeforeAllocating() throws {
        // 4 GiB declared for two bytes of deflate: as an npz member and as a torch pickle.
        for name in ["x.npy", "archive/data.pkl"] {
            let version = Array("3\n".utf8)
            var records = [(name: name, method: UInt16(8), data: Self.emptyDeflate, size: UInt32.max - 15, crc: UInt32(0))]
            if name.hasPrefix("archive/") {
                records.insert(("archive/version", 0, version, UInt32(version.count), Deflate.crc32(version)), at: 0)
            }
            let bytes = Self.zip(records)
            let start = Date()
            #expect {
                _ = try ModelFile.read(ByteSlice(bytes))
            } throws: { e in
                "\(e)".contains(name) && "\(e)".contains("4294967280 bytes exceeds the limit")
            }
            #expect(Date().timeIntervalSince(start) < 1)
        }
    }

    @Test func inflateChecksTheDeclaredSizeAgainstTheStream() throws {
        // A real record inflates; a declared size one byte off is a size mismatch, not garbage.
        let text = ByteSlice(Array(repeating: UInt8(ascii: "a"), count: 100_000))
        let packed = Deflate.deflate(text)
        #expect(try Deflate.inflate(ByteSlice(packed), expectedSize: 100_000) == text.toArray())
        #expect(throws: FormatError.self) { try Deflate.inflate(ByteSlice(packed), expectedSize: 100_001) }
        #expect(throws: FormatError.self) { try Deflate.inflate(ByteSlice(packed), expectedSize: 99_999) }
        #expect(throws: FormatError.self) { try Deflate.inflate(ByteSlice(packed), expectedSize: 200 * 1032 + 2000) }
    }

    @Test func shapesWhoseElementCountOverflowsAreErrors() throws {
        // .npy: (2^62, 4) float32.
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }".utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0a)
        let npy = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xff), UInt8(header.count >> 8)] + header + [0, 0, 0, 0]
        #expect(throws: FormatError.self) { _ = try ModelFile.read(ByteSlice(npy)) }
        // safetensors: [2^40, 2^40, 2^40] float32 with 4 bytes of data.
        var json = Array(#"{"w":{"dtype":"F32","shape":[1099511627776,1099511627776,1099511627776],"data_offsets":[0,4]}}"#.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        let st = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json + [0, 0, 0, 0]
        #expect(throws: FormatError.self) { _ = try ModelFile.read(ByteSlice(st)) }
    }
}
