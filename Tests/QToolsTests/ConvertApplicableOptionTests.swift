import Foundation
import TestSupport
import Testing

/// `qtools convert`: an option the chosen output does not use is refused by name (exit 64),
/// and following the advice succeeds (issue 16: `-o x.onnx` ignored --dtype, --fold-bn,
/// --to-config, --rename and even `--wrap foo --unwrap`; `-o y.pth` ignored --onnx-format,
/// --opset, --keep-bn and --softmax).
@Suite struct ConvertApplicableOptionTests {
    static let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")
    static let config = Fixtures.path("golden/resnet20_fp/config.txt")

    @Test func checkpointOptionsRefusedForAnONNXOutputAndTheAdviceWorks() throws {
        try withTemporaryDirectory { dir in
            let onnx = dir.appendingPathComponent("m.onnx").path
            let cases: [([String], [String])] = [
                (["--dtype", "float16"], ["--dtype"]), (["--fold-bn"], ["--fold-bn"]),
                (["--to-config", Self.config], ["--to-config"]), (["--rename", "weight$=weight"], ["--rename"]),
                (["--strip-prefix", "module."], ["--strip-prefix"]), (["--tolerance", "1e-3"], ["--tolerance"]),
                (["--wrap", "foo", "--unwrap"], ["--wrap", "--unwrap"]), (["--format", "pt"], ["--format"]),
                (["--drop-extra"], ["--drop-extra"]),
            ]
            for (flags, names) in cases {
                let r = try RunQTools.run(["convert", Self.ckpt, "--config", Self.config, "-o", onnx] + flags)
                #expect(r.status == 64, "\(flags): \(r.status) \(r.stderr)")
                for n in names { #expect(r.stderr.contains(n), "\(flags): \(r.stderr)") }
                #expect(!FileManager.default.fileExists(atPath: onnx), "\(flags) wrote \(onnx)")
            }
            // The advice: convert the checkpoint first, then export the result.
            for flags in [["--dtype", "float16"], ["--fold-bn"]] {
                let r = try RunQTools.run(["convert", Self.ckpt, "--config", Self.config, "-o", onnx, "--force"] + flags)
                #expect(
                    r.stderr.contains("qtools convert \(Self.ckpt) -o converted.pth \(flags[0]) ... --config \(Self.config)"), "\(r.stderr)"
                )
                let converted = dir.appendingPathComponent("converted.pth").path
                let first = try RunQTools.run(["convert", Self.ckpt, "-o", converted, "--force", "--config", Self.config] + flags)
                #expect(first.status == 0, "\(flags): \(first.stderr)")
                let export = try RunQTools.run(["convert", converted, "-o", onnx, "--force"])
                #expect(export.status == 0, "\(flags): \(export.stderr)")
                let run = try RunQTools.run(["run", onnx])
                #expect(run.status == 0, "\(flags): \(run.stderr)")
            }
        }
    }

    @Test func onnxOptionsRefusedForACheckpointOutputAndTheAdviceWorks() throws {
        try withTemporaryDirectory { dir in
            let pth = dir.appendingPathComponent("m.pth").path
            for (flags, name) in [
                (["--onnx-format", "float"], "--onnx-format"), (["--opset", "17"], "--opset"),
                (["--keep-bn"], "--keep-bn"), (["--softmax"], "--softmax"),
            ] {
                let r = try RunQTools.run(["convert", Self.ckpt, "-o", pth] + flags)
                #expect(
                    r.status == 64 && r.stderr.contains(name) && r.stderr.contains("-o MODEL.onnx or --to onnx"), "\(flags): \(r.stderr)")
                #expect(!FileManager.default.fileExists(atPath: pth))
                // The advice: an ONNX output.
                let onnx = dir.appendingPathComponent("m\(name).onnx").path
                let ok = try RunQTools.run(["convert", Self.ckpt, "--config", Self.config, "-o", onnx] + flags)
                #expect(ok.status == 0, "\(flags): \(ok.stderr)")
            }
            let tol = try RunQTools.run(["convert", Self.ckpt, "-o", pth, "--tolerance", "1e-3"])
            #expect(tol.status == 64 && tol.stderr.contains("--tolerance"), "\(tol.stderr)")
            let to = try RunQTools.run(["convert", Self.ckpt, "-o", pth, "--to", "tflite"])
            #expect(to.status == 64 && to.stderr.contains("--to must be onnx"), "\(to.stderr)")
        }
    }
}

/// Advice that names the option that helps (issue 16: a safetensors file with metadata
/// written as a bare pt state dict was told "or use --format pt" although --format pt was
/// given; the option that keeps the metadata is --wrap state_dict).
@Suite struct ConvertAdviceTests {
    @Test func metadataLostToABareStateDictNamesWrap() throws {
        try withTemporaryDirectory { dir in
            let st = dir.appendingPathComponent("a.safetensors").path
            let pth = dir.appendingPathComponent("y.pth").path
            let first = try RunQTools.run(["convert", ConvertApplicableOptionTests.ckpt, "-o", st, "--drop-extra"])
            try #require(first.status == 0, "\(first.stderr)")
            let r = try RunQTools.run(["convert", st, "-o", pth, "--format", "pt"])
            #expect(r.status == 64 && r.stderr.contains("--wrap state_dict") && !r.stderr.contains("use --format pt"), "\(r.stderr)")
            let advised = try RunQTools.run(["convert", st, "-o", pth, "--format", "pt", "--wrap", "state_dict"])
            #expect(advised.status == 0, "\(advised.stderr)")
            // A flat output losing non-tensors is told to write pt.
            let flat = try RunQTools.run([
                "convert", ConvertApplicableOptionTests.ckpt, "-o", dir.appendingPathComponent("b.safetensors").path,
            ])
            #expect(flat.status == 64 && flat.stderr.contains("--format pt, or a .pth output"), "\(flat.stderr)")
        }
    }
}
