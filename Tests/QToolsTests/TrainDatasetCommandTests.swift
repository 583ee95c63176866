import Foundation
import TestSupport
import Testing

/// `qtools train CONFIG --dataset cifar10`: the golden LSQ loop's config on a small binary
/// CIFAR-10 tree (shuffled, augmented batches from the loader threads); a resumed run sees
/// the data an uninterrupted run sees (same records, bit-identical checkpoint), the seed
/// changes the data order, and a malformed tree is reported by file.
@Suite struct TrainDatasetCommandTests {
    static let folder = Fixtures.path("golden-loop/loop_lsq_a2w2_sgdr")

    /// `cifar-10-batches-bin` with five 4-image batches and a 4-image test batch of noise.
    static func cifar(_ root: URL) throws -> String {
        let dir = root.appendingPathComponent("cifar-10-batches-bin")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var state: UInt64 = 99
        func records(_ n: Int) -> Data {
            var d = Data()
            for _ in 0..<n {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                d.append(UInt8(state >> 60 % 10))
                for _ in 0..<3072 {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    d.append(UInt8(truncatingIfNeeded: state >> 33))
                }
            }
            return d
        }
        for b in 1...5 { try records(4).write(to: dir.appendingPathComponent("data_batch_\(b).bin")) }
        try records(4).write(to: dir.appendingPathComponent("test_batch.bin"))
        return root.path
    }

    static func args(_ weights: String, _ root: String, _ extra: [String] = []) -> [String] {
        [
            "train", "\(folder)/config.txt", "--json", "--dataset", "cifar10", "--root", root, "--weights_dir", weights,
            "--epochs", "2", "--val_batch_size", "4", "--log_dir", (weights as NSString).deletingLastPathComponent + "/exp",
        ] + extra
    }

    @Test func resumeSeesTheSameShuffledAugmentedData() throws {
        try withTemporaryDirectory { tmp in
            let root = try Self.cifar(tmp.appendingPathComponent("data"))
            let a = try TrainProgramCommandTests.weights(tmp.appendingPathComponent("a"))
            let b = try TrainProgramCommandTests.weights(tmp.appendingPathComponent("b"))
            let c = try TrainProgramCommandTests.weights(tmp.appendingPathComponent("c"))
            let whole = try RunQTools.run(Self.args(a, root))
            #expect(whole.status == 0, "\(whole.stderr)")
            let first = try RunQTools.run(Self.args(b, root, ["--stop-after", "1"]))
            #expect(first.status == 0, "\(first.stderr)")
            let rest = try RunQTools.run(Self.args(b, root, ["-r"]))
            #expect(rest.status == 0, "\(rest.stderr)")
            let one = try TrainProgramCommandTests.records(whole.stdout)
            let two = try TrainProgramCommandTests.records(first.stdout) + TrainProgramCommandTests.records(rest.stdout)
            #expect(one.count == 2 && two.count == 2)
            for (x, y) in zip(one, two) {
                let loss = x["train_loss"] as? Double ?? .nan
                #expect(loss.isFinite && loss == y["train_loss"] as? Double, "epoch \(x["epoch"] ?? -1) train loss")
                #expect(x["eval_loss"] as? Double == y["eval_loss"] as? Double)
            }
            let name = "resnet20/golden-resnet20_lsq_a2w2-checkpoint.pth.tar"
            if Python.interpreter != nil {
                let script = #"""
                    import sys, json, torch
                    a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
                    sd = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
                    mb = [i for i in a['optimizer']['state'] if not torch.equal(a['optimizer']['state'][i]['momentum_buffer'], b['optimizer']['state'][i]['momentum_buffer'])]
                    other = [k for k in a if k not in ('state_dict', 'optimizer') and a[k] != b[k]]
                    print(json.dumps({"sd": sd, "mb": mb, "other": other, "epoch": [a['epoch'], b['epoch']]}))
                    """#
                let check = try #require(try Python.json(script, ["\(a)/\(name)", "\(b)/\(name)"]) as? [String: Any])
                #expect(check["sd"] as? [String] == [] && check["mb"] as? [Int] == [], "\(check)")
                #expect(check["other"] as? [String] == [] && check["epoch"] as? [Int] == [1, 1], "\(check)")
            }
            // Another seed: another order and other crops, so another training loss.
            let other = try RunQTools.run(Self.args(c, root, ["--seed", "15", "--epochs", "1"]))
            #expect(other.status == 0, "\(other.stderr)")
            let o = try #require(try TrainProgramCommandTests.records(other.stdout).first)
            #expect(o["train_loss"] as? Double != one[0]["train_loss"] as? Double)
        }
    }

    @Test func aMalformedTreeIsReportedByFile() throws {
        try withTemporaryDirectory { tmp in
            let root = try Self.cifar(tmp.appendingPathComponent("data"))
            let w = try TrainProgramCommandTests.weights(tmp.appendingPathComponent("w"))
            let file = root + "/cifar-10-batches-bin/data_batch_3.bin"
            try Data(repeating: 1, count: 5000).write(to: URL(fileURLWithPath: file))
            let r = try RunQTools.run(Self.args(w, root))
            #expect(r.status != 0 && r.stderr.contains(file) && r.stderr.contains("truncated"), "\(r.stderr)")
            let empty = tmp.appendingPathComponent("empty").path
            let e = try RunQTools.run(Self.args(w, empty))
            #expect(e.status != 0 && e.stderr.contains("cifar-10-batches-py"), "\(e.stderr)")
        }
    }

    /// `--dataset imagenet` end to end on a tiny ImageFolder tree Pillow writes (JPEG and PNG,
    /// `--input_size 32` for the CIFAR ResNet-20); an unreadable image stops the run by path.
    @Test func imagenetFolderTrainsAndNamesAnUnreadableImage() throws {
        guard Python.interpreter != nil || Python.isRequired else { return }
        guard (try? Python.run("import PIL"))?.status == 0 else {
            if Python.isRequired { Issue.record("Pillow is missing (scripts/setup.sh --python)") }
            return
        }
        try withTemporaryDirectory { tmp in
            let root = tmp.appendingPathComponent("imagenet").path
            let made = try Python.run(
                """
                import os, sys
                import numpy as np
                from PIL import Image
                rng = np.random.default_rng(2)
                for split, n in [('train', 3), ('val', 1)]:
                    for c in ['n01', 'n02']:
                        os.makedirs(f'{sys.argv[1]}/{split}/{c}', exist_ok=True)
                        for i in range(n):
                            im = Image.fromarray(rng.integers(0, 256, (30 + 7 * i, 41, 3), dtype=np.uint8))
                            im.save(f'{sys.argv[1]}/{split}/{c}/{i}.' + ('JPEG' if i % 2 == 0 else 'png'))
                """, [root])
            #expect(made.status == 0, "\(made.stderr)")
            let w = try TrainProgramCommandTests.weights(tmp.appendingPathComponent("w"))
            let args = Self.args(w, root, ["--dataset", "imagenet", "--input_size", "32", "--epochs", "1"])
            let r = try RunQTools.run(args)
            #expect(r.status == 0, "\(r.stderr)")
            let rec = try TrainProgramCommandTests.records(r.stdout)
            #expect(rec.count == 1 && (rec.first?["train_loss"] as? Double)?.isFinite == true, "\(r.stdout)")
            // The epoch's throughput (what Benchmarks/train_bench.py --epoch reads).
            let seconds = rec.first?["train_seconds"] as? Double ?? 0
            let rate = rec.first?["train_images_per_second"] as? Double ?? 0
            #expect(seconds > 0 && rate > 0, "\(r.stdout)")
            let bad = root + "/val/n02/0.JPEG"
            try Data([0xff, 0xd8, 0xff, 0xdb, 0, 3]).write(to: URL(fileURLWithPath: bad))
            let e = try RunQTools.run(args)
            #expect(e.status != 0 && e.stderr.contains(bad) && e.stderr.contains("unreadable image"), "\(e.stderr)")
        }
    }
}
