import Tensors
import TestSupport
import Testing

@testable import Formats

@Suite struct ZipArchiveTests {
    func open(_ rel: String) throws -> ZipArchive {
        try ZipArchive(ByteStore.map(path: Fixtures.path(rel)).all)
    }

    @Test func readsTorchArchiveDirectory() throws {
        let zip = try open("golden/resnet20_fp/checkpoint.pth")
        #expect(zip.hasZip64EndRecord)
        let names = zip.entries.map(\.name)
        #expect(names.first == "checkpoint/data.pkl")
        #expect(names.contains("checkpoint/version"))
        let pkl = try zip.data(of: #require(zip.entry(named: "checkpoint/data.pkl")))
        #expect(pkl[0] == 0x80 && pkl[1] == 0x02)
        #expect(pkl[pkl.count - 1] == 0x2e)
        let version = try zip.data(of: #require(zip.entry(named: "checkpoint/version")))
        #expect(version.toArray() == Array("3\n".utf8))
        // torch aligns every record's data to 64 bytes.
        for e in zip.entries { #expect(e.dataOffset % 64 == 0, "\(e.name)") }
    }

    @Test func torchWritesRealCRCs() throws {
        let zip = try open("golden/resnet20_lsq_a2w2/checkpoint.pth")
        for e in zip.entries { try zip.verifyCRC(of: e) }
    }

    @Test func truncatedArchiveNamesTheProblem() throws {
        let full = try ByteStore.map(path: Fixtures.path("golden/resnet20_fixup/checkpoint.pth"))
        let cut = full.slice(0..<(full.count - 100))
        let e = try #require(throws: FormatError.self) { try ZipArchive(cut) }
        #expect(e.description.contains("truncated") || e.description.contains("end record"))
    }

    /// Found by the torch fuzzer (Fuzz/run.sh): a zip64 locator and an end record in a file
    /// shorter than a zip64 end record (42 bytes) trapped ("Negative value is not
    /// representable") instead of failing; every offset the locator can name is refused.
    @Test(arguments: [0, 1, 41, UInt64.max])
    func zip64LocatorInATinyFileIsRefused(offset: UInt64) throws {
        var b: [UInt8] = [0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0]  // zip64 locator: magic, disk
        b += withUnsafeBytes(of: offset.littleEndian, Array.init)  // the zip64 end record's offset
        b += [1, 0, 0, 0]  // disks
        b += [0x50, 0x4b, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)  // end record, no entries
        #expect(b.count == 42)
        let e = try #require(throws: FormatError.self) { try ZipArchive(ByteSlice(b)) }
        #expect(e.description.contains("zip64 end record offset \(offset) is outside the file"), "\(e)")
        // Through the one entry point every command uses, too.
        #expect(throws: FormatError.self) { try ModelFile.read(ByteSlice(b), verifyCRC: true) }
    }
}
