import Foundation
import TestSupport
import Testing

/// qtools runs the files it writes (issue 16: `convert CKPT -o a.npz --drop-extra` kept
/// `epoch`, `best_acc` and `learning_rate` as 0-d arrays beside the weights, and `verify a.npz`
/// then failed on 3 unexpected tensors).
@Suite struct WrittenFilesRunTests {
    @Test func flatFilesWithTrainingScalarsVerify() throws {
        let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")
        let config = Fixtures.path("golden/resnet20_fp/config.txt")
        try withTemporaryDirectory { dir in
            for name in ["a.npz", "a.safetensors"] {
                let out = dir.appendingPathComponent(name).path
                let c = try RunQTools.run(["convert", ckpt, "-o", out, "--drop-extra"])
                try #require(c.status == 0, "\(c.stderr)")
                let v = try RunQTools.run([
                    "verify", out, "--config", config, "--input", Fixtures.path("golden/resnet20_fp/input.npy"),
                    "--expect", Fixtures.path("golden/resnet20_fp/output.npy"),
                ])
                #expect(v.status == 0, "\(name): \(v.stdout) \(v.stderr)")
            }
        }
    }
}

/// `-o DIR` names the problem at once (issue 16: "file exists (use --force)", then with
/// --force "Is a directory"), and the advice (a file path inside it) works.
@Suite struct OutputDirectoryTests {
    @Test func aDirectoryOutputIsRefusedWithAFilePathHint() throws {
        let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")
        try withTemporaryDirectory { dir in
            for force in [[], ["--force"]] {
                let r = try RunQTools.run(["convert", ckpt, "-o", dir.path, "--format", "pt"] + force)
                #expect(
                    r.status == 73 && r.stderr.contains("is a directory; give a file path") && !r.stderr.contains("use --force"),
                    "\(r.stderr)")
            }
            let ok = try RunQTools.run(["convert", ckpt, "-o", dir.appendingPathComponent("FILE.pth").path])
            #expect(ok.status == 0, "\(ok.stderr)")
        }
    }
}

/// pt -> safetensors -> pt keeps the Python types of the scalars beside the weights (issue 16:
/// `epoch` came back as the string '0'); checked by torch.load.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch)"))
struct ScalarRoundTripTests {
    @Test func scalarsKeepTheirTypesThroughSafetensors() throws {
        let ckpt = Fixtures.path("golden/resnet20_fp/checkpoint.pth")
        try withTemporaryDirectory { dir in
            let st = dir.appendingPathComponent("s.safetensors").path, back = dir.appendingPathComponent("back.pth").path
            #expect(try RunQTools.run(["convert", ckpt, "-o", st, "--drop-extra"]).status == 0)
            let r = try RunQTools.run(["convert", st, "-o", back, "--wrap", "state_dict"])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try #require(
                try Python.json(
                    """
                    import sys, json, torch
                    a = torch.load(sys.argv[1], weights_only=False); b = torch.load(sys.argv[2], weights_only=False)
                    keys = [k for k in a if k != 'state_dict' and (a[k] is None or isinstance(a[k], (int, float, bool, str)))]
                    print(json.dumps({k: [type(a[k]).__name__, type(b.get(k)).__name__, a[k] == b.get(k)] for k in keys}))
                    """, [ckpt, back]) as? [String: [Any]])
            #expect(doc["epoch"] != nil && doc["best_acc"] != nil)
            for (k, v) in doc {
                #expect(v[0] as? String == v[1] as? String && v[2] as? Bool == true, "\(k): \(v)")
            }
        }
    }
}
