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
}
