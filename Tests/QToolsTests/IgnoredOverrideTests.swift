import Foundation
import TestSupport
import Testing

/// Overrides that cannot take effect are reported, and `trace` describes what `run` computes
/// (issue 16: `trace CKPT --fm_bit 4` reported a4w2 on a 2-bit LSQ checkpoint, whose
/// level_num wins as in QTool, while `run` computed 2 bits).
@Suite struct IgnoredOverrideTests {
    static let ckpt = Fixtures.path("golden/resnet20_lsq_a2w2/checkpoint.pth")
    static let config = Fixtures.path("golden/resnet20_lsq_a2w2/config.txt")

    @Test func lsqLevelNumWinsAndEveryCommandSaysSo() throws {
        let plain = try RunQTools.run(["trace", Self.ckpt, "--config", Self.config])
        #expect(plain.status == 0 && !plain.stderr.contains("warning"), "\(plain.stderr)")
        let traced = try RunQTools.run(["trace", Self.ckpt, "--config", Self.config, "--fm_bit", "4"])
        #expect(traced.status == 0)
        #expect(traced.stdout.contains("a2w2") && !traced.stdout.contains("a4w2"), "\(traced.stdout)")
        #expect(traced.stdout == plain.stdout)
        #expect(
            traced.stderr.contains("no effect") && traced.stderr.contains("level_num 4 (2 bits)")
                && traced.stderr.contains("config 16 levels (4 bits)"), "\(traced.stderr)")
        // What the warning claims: run computes the same logits with and without the override.
        try withTemporaryDirectory { dir in
            let a = dir.appendingPathComponent("a.npy").path, b = dir.appendingPathComponent("b.npy").path
            let ra = try RunQTools.run(["run", Self.ckpt, "--config", Self.config, "--output", a])
            let rb = try RunQTools.run(["run", Self.ckpt, "--config", Self.config, "--output", b, "--fm_bit", "4"])
            #expect(ra.status == 0 && rb.status == 0, "\(ra.stderr) \(rb.stderr)")
            #expect(rb.stderr.contains("no effect"), "\(rb.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)))
        }
    }

    @Test func onnxGraphsRefuseQToolOptionsAndAMissingOneIsNoSuchFile() throws {
        try withTemporaryDirectory { dir in
            let onnx = dir.appendingPathComponent("m.onnx").path
            let export = try RunQTools.run(["convert", Self.ckpt, "--config", Self.config, "-o", onnx])
            try #require(export.status == 0, "\(export.stderr)")
            let r = try RunQTools.run(["run", onnx, "--fm_bit", "4"])
            #expect(r.status == 64 && r.stderr.contains("--fm_bit 4") && r.stderr.contains("ONNX"), "\(r.stderr)")
            #expect(try RunQTools.run(["run", onnx]).status == 0)
            let missing = try RunQTools.run(["run", "nope.onnx"], cwd: dir.path)
            #expect(missing.status == 66 && missing.stderr.contains("No such file"), "\(missing.stderr)")
        }
    }
}
