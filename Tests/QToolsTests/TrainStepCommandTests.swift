import Foundation
import TestSupport
import Testing

/// `qtools train step`: the golden one-step case through the command line, the file it
/// writes read back by `torch.load(weights_only=True)`, and its refusals.
@Suite struct TrainStepCommandTests {
    static func path(_ f: String, case name: String = "pytorch_resnet18_fp") -> String { Fixtures.path("golden/\(name)/" + f) }
    /// The case as QTool ran it (torchvision's ResNet-18 at 1/8 width for `pytorch_resnet18_fp`).
    static func args(output: String, case name: String = "pytorch_resnet18_fp") -> [String] {
        [
            "train", "step", path("checkpoint.pth", case: name), "--config", path("config.txt", case: name),
            "--x", path("train_x.npy", case: name), "--y", path("train_y.npy", case: name), "-o", output,
        ] + (name == "pytorch_resnet18_fp" ? ["--width_alpha", "0.125"] : [])
    }

    /// A full-precision case and quantized ones (LSQ: clip values trained, `iteration` + 1;
    /// LQ-Nets: bases and `auxil` refitted, int32 `codec_index` written as it was; Bi-Real
    /// XNOR; XNOR++ with its learned gamma). (`resnet20_fixup` needs the ReLU boundary flip of
    /// TrainStepGoldenTests, which the command line cannot take.)
    @Test(
        .enabled(if: Python.interpreter != nil || Python.isRequired, "no Python with torch"),
        arguments: ["pytorch_resnet18_fp", "resnet20_lsq_a2w2", "resnet20_lq_a2w2", "resnet20_bireal_xnor", "resnet20_xnorpp"])
    func oneStepWritesWhatQToolWrote(name: String) throws {
        try withTemporaryDirectory { tmp in
            let out = tmp.appendingPathComponent("after.pth").path
            let r = try RunQTools.run(Self.args(output: out, case: name) + ["--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(doc["learning_rate"] as? Double == 0.1)
            // torch reads the file with weights_only; every entry has the golden key, dtype and
            // shape, and values within the tolerance of TrainStepGoldenTests.
            let script = #"""
                import sys, json, numpy as np, torch
                got = torch.load(sys.argv[1], weights_only=True)
                want = torch.load(sys.argv[2], weights_only=True)
                before = torch.load(sys.argv[3], weights_only=True)['state_dict']
                loss = float(np.load(sys.argv[4]))
                bad = []
                for k, w in want.items():
                    g = got[k]
                    if g.dtype != w.dtype or g.shape != w.shape:
                        bad.append(k); continue
                    g, w, b = g.double(), w.double(), before[k].double()
                    tol = torch.maximum(torch.full_like(w, 1e-6), 1e-5 * w.abs())
                    tol = torch.maximum(tol, torch.full_like(w, 1e-5 * float((w - b).abs().max())))
                    if bool(((g - w).abs() > tol).any()):
                        bad.append(k)
                print(json.dumps({"keys": list(got.keys()) == list(want.keys()), "bad": bad, "loss": loss}))
                """#
            let check = try #require(
                try Python.json(
                    script,
                    [
                        out, Self.path("after_step.pth", case: name), Self.path("checkpoint.pth", case: name),
                        Self.path("train_loss.npy", case: name),
                    ]) as? [String: Any])
            #expect(check["keys"] as? Bool == true)
            #expect(check["bad"] as? [String] == [])
            let loss = try #require(check["loss"] as? Double)
            let got = try #require(doc["loss"] as? Double)
            #expect(abs(got - loss) <= 1e-5 * abs(loss), "loss \(got) vs \(loss)")
        }
    }

    @Test func refusesLabelsOutsideTheClassesAndABatchThatDoesNotFit() throws {
        try withTemporaryDirectory { tmp in
            // Labels: 1000 classes, one label says 1000.
            let y = tmp.appendingPathComponent("y.npy").path
            try Self.npyInt64([3, 1000, 2, 1], to: y)
            var args = Self.args(output: tmp.appendingPathComponent("a.pth").path)
            args[args.firstIndex(of: "--y")! + 1] = y
            let r = try RunQTools.run(args)
            #expect(r.status == 65, "\(r.stderr)")
            #expect(r.stderr.contains("label 1000 of sample 1"), "\(r.stderr)")
            // Three labels for four images.
            try Self.npyInt64([3, 1, 2], to: y)
            let r2 = try RunQTools.run(args)
            #expect(r2.status == 65, "\(r2.stderr)")
            #expect(r2.stderr.contains("one label per image"), "\(r2.stderr)")
            #expect(!FileManager.default.fileExists(atPath: tmp.appendingPathComponent("a.pth").path))
        }
    }

    @Test func neverWritesOverAnInput() throws {
        try withTemporaryDirectory { tmp in
            let ckpt = tmp.appendingPathComponent("model.pth").path
            try FileManager.default.copyItem(atPath: Self.path("checkpoint.pth"), toPath: ckpt)
            let before = try Data(contentsOf: URL(fileURLWithPath: ckpt))
            var args = Self.args(output: ckpt)
            args[2] = ckpt
            let r = try RunQTools.run(args + ["--force"])
            #expect(r.status == 64, "\(r.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: ckpt)) == before)
        }
    }

    /// A 1-D int64 `.npy` file.
    static func npyInt64(_ values: [Int64], to path: String) throws {
        var header = "{'descr': '<i8', 'fortran_order': False, 'shape': (\(values.count),), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xff), UInt8(header.count >> 8)]
        bytes += Array(header.utf8)
        for v in values { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}
