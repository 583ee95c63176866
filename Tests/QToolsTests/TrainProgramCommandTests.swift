import Foundation
import TestSupport
import Testing

/// `qtools train CONFIG`: the golden LSQ sgdr loop through the command line (`--dataset npy`),
/// the checkpoint it writes read by torch (state dict, and the optimizer entry loaded into a
/// `torch.optim.SGD`), resume bit-identical to an uninterrupted run, resume of PyTorch's own
/// checkpoint, and refusals.
@Suite struct TrainProgramCommandTests {
    static let folder = Fixtures.path("golden-loop/loop_lsq_a2w2_sgdr")

    /// A weights dir holding the golden starting checkpoint where main.py looks for it.
    static func weights(_ tmp: URL) throws -> String {
        let dir = tmp.appendingPathComponent("weights")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("resnet20"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Fixtures.path("golden/resnet20_lsq_a2w2/checkpoint.pth"),
            toPath: dir.appendingPathComponent("resnet20/checkpoint.pth").path)
        return dir.path
    }

    static func args(_ weights: String, _ extra: [String] = []) -> [String] {
        [
            "train", "\(folder)/config.txt", "--json", "--dataset", "npy", "--root", folder, "--weights_dir", weights,
            "--val_batch_size", "8", "--log_dir", (weights as NSString).deletingLastPathComponent + "/exp",
        ] + extra
    }

    static func records(_ stdout: String) throws -> [[String: Any]] {
        try stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// On the exact path (`--exact`): the fast path, `qtools train`'s default, parts from QTool's
    /// run from epoch 1 on through a ReLU input within float32 rounding of zero
    /// (`TrainProgramGoldenTests`, which checks its epoch 0 and names that boundary).
    @Test func goldenLoopThroughTheCommandLine() throws {
        let loop = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/loop.json")))
                as? [String: Any])
        let epochs = try #require(loop["epochs"] as? [[String: Any]])
        try withTemporaryDirectory { tmp in
            let w = try Self.weights(tmp)
            let r = try RunQTools.run(Self.args(w, ["--exact"]))
            #expect(r.status == 0, "\(r.stderr)")
            let got = try Self.records(r.stdout)
            #expect(got.count == 3)
            for (g, want) in zip(got, epochs) {
                let e = want["epoch"] as? Int ?? -1
                #expect(abs((g["lr"] as? Double ?? 0) - (want["lr"] as? Double ?? 1)) <= 1e-15, "epoch \(e) lr")
                let (l, wl) = (g["train_loss"] as? Double ?? 0, want["train_loss"] as? Double ?? 1)
                #expect(abs(l - wl) <= 1e-4 * abs(wl), "epoch \(e) train loss \(l) vs \(wl)")
                #expect(g["top1"] as? Double == want["top1"] as? Double && g["top5"] as? Double == want["top5"] as? Double)
                let (v, wv) = (g["eval_loss"] as? Double ?? 0, want["eval_loss"] as? Double ?? 1)
                #expect(abs(v - wv) <= 1e-4 * abs(wv), "epoch \(e) eval loss \(v) vs \(wv)")
            }
            let ckpt = "\(w)/resnet20/golden-resnet20_lsq_a2w2-checkpoint.pth.tar"
            #expect(FileManager.default.fileExists(atPath: "\(w)/resnet20/golden-resnet20_lsq_a2w2-epoch2-checkpoint.pth.tar"))
            guard Python.interpreter != nil else { return }
            // torch reads it with weights_only, its optimizer entry loads into torch.optim.SGD
            // over the same parameters, and it matches main.py's own final checkpoint.
            let script = #"""
                import sys, json, torch
                got = torch.load(sys.argv[1], weights_only=True)
                want = torch.load(sys.argv[2], weights_only=True)
                keys = sorted(got.keys()) == sorted(want.keys())
                n = len(want['optimizer']['param_groups'])
                ps = [torch.nn.Parameter(got['optimizer']['state'][i]['momentum_buffer'].clone()) for i in range(n)]
                opt = torch.optim.SGD([{'params': [p]} for p in ps], lr=0.1, momentum=0.9, nesterov=True)
                opt.load_state_dict(got['optimizer'])
                loaded = all(torch.equal(opt.state[p]['momentum_buffer'], got['optimizer']['state'][i]['momentum_buffer']) for i, p in enumerate(ps))
                bad = []
                for i in range(n):
                    g, w = got['optimizer']['state'][i]['momentum_buffer'], want['optimizer']['state'][i]['momentum_buffer']
                    if not torch.allclose(g, w, rtol=1e-4, atol=1e-6): bad.append(i)
                sd_bad = [k for k, v in want['state_dict'].items()
                          if not torch.allclose(got['state_dict'][k].double(), v.double(), rtol=1e-4, atol=1e-6)]
                print(json.dumps({"keys": keys, "loaded": loaded, "buffers": bad, "state": sd_bad,
                                  "epoch": got['epoch'], "lr": got['optimizer']['param_groups'][0]['lr'],
                                  "amp": got['amp'] is None, "best": got['best_acc']}))
                """#
            let check = try #require(try Python.json(script, [ckpt, "\(Self.folder)/final_checkpoint.pth"]) as? [String: Any])
            #expect(check["keys"] as? Bool == true && check["loaded"] as? Bool == true && check["amp"] as? Bool == true)
            #expect(check["buffers"] as? [Int] == [] && check["state"] as? [String] == [])
            #expect(check["epoch"] as? Int == 2)
            #expect(abs((check["lr"] as? Double ?? 0) - 0.001) <= 1e-12)
        }
    }

    /// 3 epochs in one run equal 1 epoch (`--stop-after 1`, as an interrupted run), resume
    /// (`-r`), 2 more: bit-identical state dict and momentum buffers, equal records.
    @Test func resumeContinuesExactly() throws {
        try withTemporaryDirectory { tmp in
            let a = try Self.weights(tmp.appendingPathComponent("a"))
            let b = try Self.weights(tmp.appendingPathComponent("b"))
            let whole = try RunQTools.run(Self.args(a))
            #expect(whole.status == 0, "\(whole.stderr)")
            let first = try RunQTools.run(Self.args(b, ["--stop-after", "1"]))
            #expect(first.status == 0, "\(first.stderr)")
            let rest = try RunQTools.run(Self.args(b, ["-r"]))
            #expect(rest.status == 0, "\(rest.stderr)")
            let one = try Self.records(whole.stdout), two = try Self.records(first.stdout) + Self.records(rest.stdout)
            #expect(one.count == 3 && two.count == 3)
            for (x, y) in zip(one, two) {
                #expect(x["train_loss"] as? Double == y["train_loss"] as? Double, "epoch \(x["epoch"] ?? -1) train loss")
                #expect(x["eval_loss"] as? Double == y["eval_loss"] as? Double && x["lr"] as? Double == y["lr"] as? Double)
            }
            let name = "resnet20/golden-resnet20_lsq_a2w2-checkpoint.pth.tar"
            let (ca, cb) = ("\(a)/\(name)", "\(b)/\(name)")
            guard Python.interpreter != nil else { return }
            let script = #"""
                import sys, json, torch
                a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
                sd = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
                mb = [i for i in a['optimizer']['state'] if not torch.equal(a['optimizer']['state'][i]['momentum_buffer'], b['optimizer']['state'][i]['momentum_buffer'])]
                print(json.dumps({"sd": sd, "mb": mb, "n": len(a['optimizer']['state']), "epoch": [a['epoch'], b['epoch']]}))
                """#
            let check = try #require(try Python.json(script, [ca, cb]) as? [String: Any])
            #expect(check["sd"] as? [String] == [] && check["mb"] as? [Int] == [])
            #expect(check["n"] as? Int == 101 && check["epoch"] as? [Int] == [2, 2])
        }
    }

    /// Stopped inside an epoch (`--stop-after-steps 4`: epoch 1 after its first of 3 steps), then
    /// `-r`: the run continues at the next batch and ends bit-identical to an uninterrupted one,
    /// with the same epoch records (epoch 1's loss includes the step of the first run). The
    /// mid-epoch checkpoint is main.py's (epoch = the last complete one) plus the step.
    @Test func resumeInsideAnEpochContinuesExactly() throws {
        try withTemporaryDirectory { tmp in
            let a = try Self.weights(tmp.appendingPathComponent("a"))
            let b = try Self.weights(tmp.appendingPathComponent("b"))
            let whole = try RunQTools.run(Self.args(a))
            #expect(whole.status == 0, "\(whole.stderr)")
            let first = try RunQTools.run(Self.args(b, ["--stop-after-steps", "4"]))
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stderr.contains("stopped in epoch 1 after step 1 of 3"), "\(first.stderr)")
            let name = "resnet20/golden-resnet20_lsq_a2w2-checkpoint.pth.tar"
            let middle = tmp.appendingPathComponent("middle.pth").path
            try FileManager.default.copyItem(atPath: "\(b)/\(name)", toPath: middle)
            let rest = try RunQTools.run(Self.args(b, ["-r"]))
            #expect(rest.status == 0, "\(rest.stderr)")
            #expect(rest.stderr.contains("at epoch 1 after step 1 of 3"), "\(rest.stderr)")
            let one = try Self.records(whole.stdout)
            let two = try Self.records(first.stdout) + Self.records(rest.stdout)
            #expect(two.map { $0["epoch"] as? Int } == [0, 1, 2])
            for (x, y) in zip(one, two) {
                #expect(x["train_loss"] as? Double == y["train_loss"] as? Double, "epoch \(x["epoch"] ?? -1) train loss")
                #expect(x["eval_loss"] as? Double == y["eval_loss"] as? Double && x["lr"] as? Double == y["lr"] as? Double)
            }
            guard Python.interpreter != nil else { return }
            let script = #"""
                import sys, json, torch
                a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
                m = torch.load(sys.argv[3], weights_only=True)
                sd = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
                mb = [i for i in a['optimizer']['state'] if not torch.equal(a['optimizer']['state'][i]['momentum_buffer'], b['optimizer']['state'][i]['momentum_buffer'])]
                moved = [k for k in m['state_dict'] if not torch.equal(m['state_dict'][k], b['state_dict'][k])]
                print(json.dumps({"sd": sd, "mb": mb, "epoch": m['epoch'], "step": m['qtools_iteration'],
                                  "seen": m['qtools_epoch_loss'][1], "moved": len(moved)}))
                """#
            let check = try #require(try Python.json(script, ["\(a)/\(name)", "\(b)/\(name)", middle]) as? [String: Any])
            #expect(check["sd"] as? [String] == [] && check["mb"] as? [Int] == [])
            #expect(check["epoch"] as? Int == 0 && check["step"] as? Int == 1)
            #expect((check["seen"] as? Int ?? 0) > 0 && (check["moved"] as? Int ?? 0) > 0)
        }
    }

    /// PyTorch's own checkpoint (main.py's `final_checkpoint.pth` after epoch 2) resumes with
    /// its optimizer state: a 4th epoch (a new sgdr cycle) from it trains as the 4th epoch of
    /// an uninterrupted qtools run does (same loss within the golden tolerance). Both on the
    /// exact path, whose epochs follow PyTorch's (TrainProgramGoldenTests): three epochs of a
    /// 2-bit LSQ net on the fast float32 path move some quantizer inputs across a level, and
    /// the trajectories part by more than the tolerance, which is not what this test is about.
    @Test func pytorchCheckpointResumes() throws {
        try withTemporaryDirectory { tmp in
            let a = try Self.weights(tmp.appendingPathComponent("a"))
            let b = try Self.weights(tmp.appendingPathComponent("b"))
            let whole = try RunQTools.run(Self.args(a, ["--epochs", "4", "--exact"]))
            #expect(whole.status == 0, "\(whole.stderr)")
            try FileManager.default.copyItem(
                atPath: "\(Self.folder)/final_checkpoint.pth",
                toPath: "\(b)/resnet20/golden-resnet20_lsq_a2w2-checkpoint.pth.tar")
            let resumed = try RunQTools.run(Self.args(b, ["--epochs", "4", "-r", "--exact"]))
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let x = try #require(try Self.records(whole.stdout).last), y = try #require(try Self.records(resumed.stdout).first)
            #expect(x["epoch"] as? Int == 3 && y["epoch"] as? Int == 3)
            #expect(y["lr"] as? Double == 0.05, "a restart of the closed-form cosine")
            let (l, wl) = (y["train_loss"] as? Double ?? 0, x["train_loss"] as? Double ?? 1)
            #expect(abs(l - wl) <= 1e-4 * abs(wl), "train loss \(l) vs \(wl)")
        }
    }

    @Test func refusals() throws {
        try withTemporaryDirectory { tmp in
            let w = try Self.weights(tmp)
            var r = try RunQTools.run(Self.args(w).map { $0 == Self.folder ? tmp.path : $0 })
            #expect(r.status != 0 && r.stderr.contains("train_x.npy"), "\(r.stderr)")
            r = try RunQTools.run(Self.args(w, ["--dataset", "imagenet"]))
            #expect(r.status != 0 && r.stderr.contains("imagenet"), "\(r.stderr)")
            r = try RunQTools.run(Self.args(w, ["--lr_policy", "linear"]))
            #expect(r.status != 0 && r.stderr.contains("linear"), "\(r.stderr)")
            for flag in ["--stop-after-steps", "--stop-after"] {
                r = try RunQTools.run(Self.args(w, [flag, "0"]))
                #expect(r.status == 64 && r.stderr.contains("\(flag) must be at least 1 (got 0)"), "\(r.stderr)")
            }
        }
    }
}
