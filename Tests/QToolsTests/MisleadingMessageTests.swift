import Foundation
import TestSupport
import Testing

/// Messages that misled (issue 16), each run as reported and then as advised.
@Suite struct MisleadingMessageTests {
    static let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")
    static let config = Fixtures.path("golden/resnet20_fp/config.txt")

    /// `--rename 'weight$=weight'` matched about 100 keys but was reported as matching none.
    @Test func anIdentityRenameIsNotAnUnusedRule() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("r.pth").path
            let r = try RunQTools.run(["convert", Self.ckpt, "-o", out, "--rename", "weight$=weight", "--rename", "nosuchkey=x"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(!r.stderr.contains("weight$=weight") && r.stderr.contains("nosuchkey=x"), "\(r.stderr)")
        }
    }

    /// An empty config blamed the checkpoint ("model 'unknow'"); a BOM was invisible.
    @Test func emptyAndBOMConfigsNameTheConfig() throws {
        try withTemporaryDirectory { dir in
            let empty = dir.appendingPathComponent("empty.txt").path
            FileManager.default.createFile(atPath: empty, contents: Data())
            let r = try RunQTools.run(["run", Self.ckpt, "--config", empty])
            #expect(
                r.status == 64 && r.stderr.contains(empty) && r.stderr.contains("sets no model") && !r.stderr.contains("unknow"),
                "\(r.stderr)")
            let text = try String(contentsOfFile: Self.config, encoding: .utf8)
            let bom = dir.appendingPathComponent("bom.txt").path
            FileManager.default.createFile(atPath: bom, contents: Data([0xEF, 0xBB, 0xBF]) + Data(text.utf8))
            let b = try RunQTools.run(["config", "show", bom])
            #expect(b.status == 65 && b.stderr.contains("byte-order mark"), "\(b.stderr)")
            // As advised: without the mark it reads.
            FileManager.default.createFile(atPath: bom, contents: Data(text.utf8))
            #expect(try RunQTools.run(["config", "show", bom]).status == 0)
        }
    }

    /// A float32 `.npy` of zeros of `shape` (format 1.0).
    static func npy(_ shape: [Int]) -> Data {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        d += Data(header.utf8)
        d += Data(count: 4 * shape.reduce(1, *))
        return d
    }

    /// An NHWC input was only "must be [N, 3, H, W]"; a truncated safetensors file showed its
    /// `{"__meta` bytes as an unrecognised format; counts read "1 tensors".
    @Test func layoutTruncationAndCounts() throws {
        try withTemporaryDirectory { dir in
            let nhwc = dir.appendingPathComponent("nhwc.npy").path
            FileManager.default.createFile(atPath: nhwc, contents: Self.npy([2, 32, 32, 3]))
            let r = try RunQTools.run(["run", Self.ckpt, "--config", Self.config, "--input", nhwc])
            #expect(r.status == 64 && r.stderr.contains("NHWC") && r.stderr.contains("transpose"), "\(r.stderr)")
            let nchw = dir.appendingPathComponent("nchw.npy").path
            FileManager.default.createFile(atPath: nchw, contents: Self.npy([2, 3, 32, 32]))
            #expect(try RunQTools.run(["run", Self.ckpt, "--config", Self.config, "--input", nchw]).status == 0)

            let st = dir.appendingPathComponent("a.safetensors").path
            try #require(try RunQTools.run(["convert", Self.ckpt, "-o", st, "--drop-extra"]).status == 0)
            let cut = dir.appendingPathComponent("cut.safetensors").path
            FileManager.default.createFile(atPath: cut, contents: try Data(contentsOf: URL(fileURLWithPath: st)).prefix(300))
            let t = try RunQTools.run(["inspect", cut])
            #expect(t.status == 65 && t.stderr.contains("truncated safetensors") && !t.stderr.contains("unrecognised"), "\(t.stderr)")

            let one = dir.appendingPathComponent("one.npy").path
            FileManager.default.createFile(atPath: one, contents: Self.npy([3]))
            let i = try RunQTools.run(["inspect", one])
            #expect(
                i.status == 0 && i.stdout.contains("1 tensor ") && !i.stdout.contains("1 tensors") && !i.stdout.contains("1 storages"),
                "\(i.stdout)")
        }
    }

    /// bfloat16 -> npz was refused with exit 65 (malformed input) though the input is fine and
    /// the choice is the user's: 64, naming the way out, which works.
    @Test func bfloat16ToNpzIsAUsageErrorWithItsWayOut() throws {
        try withTemporaryDirectory { dir in
            let bf = dir.appendingPathComponent("bf.pth").path, npz = dir.appendingPathComponent("bf.npz").path
            try #require(try RunQTools.run(["convert", Self.ckpt, "-o", bf, "--dtype", "bfloat16"]).status == 0)
            let r = try RunQTools.run(["convert", bf, "-o", npz, "--drop-extra"])
            #expect(r.status == 64 && r.stderr.contains("bfloat16") && r.stderr.contains("--dtype float32"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: npz))
            let ok = try RunQTools.run(["convert", bf, "-o", npz, "--drop-extra", "--dtype", "float32"])
            #expect(ok.status == 0, "\(ok.stderr)")
        }
    }

    /// A width mismatch in --to-config was a 9.7 KB one-line list; now a summary naming the
    /// cause, and the advice (the source's width) converts.
    @Test func widthMismatchIsSummarisedWithTheCause() throws {
        try withTemporaryDirectory { dir in
            let text = try String(contentsOfFile: Self.config, encoding: .utf8)
            try #require(text.contains("--width_alpha 0.25"))
            let wide = dir.appendingPathComponent("wide.txt").path
            try text.replacingOccurrences(of: "--width_alpha 0.25", with: "--width_alpha 0.5").write(
                toFile: wide, atomically: true, encoding: .utf8)
            let out = dir.appendingPathComponent("w.pth").path
            let r = try RunQTools.run(["convert", Self.ckpt, "--config", Self.config, "-o", out, "--to-config", wide])
            #expect(r.status == 65 && r.stderr.utf8.count < 1500, "\(r.stderr.utf8.count) bytes")
            #expect(r.stderr.contains("and 102 more") && r.stderr.contains("--width_alpha (source 0.25, target 0.5)"), "\(r.stderr)")
            let same = dir.appendingPathComponent("same.txt").path
            try text.write(toFile: same, atomically: true, encoding: .utf8)
            #expect(try RunQTools.run(["convert", Self.ckpt, "--config", Self.config, "-o", out, "--to-config", same]).status == 0)
        }
    }
}
