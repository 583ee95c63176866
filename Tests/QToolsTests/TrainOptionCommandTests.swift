import Foundation
import TestSupport
import Testing

/// Every QTool option of a training run is honoured, refused by name, or reported as without
/// effect (issue 17): refusals name every offending option at once and write nothing; GPU-only
/// options warn and train; `--resume_file` picks the checkpoint `-r` reads.
@Suite struct TrainOptionCommandTests {
    typealias P = TrainProgramCommandTests

    @Test func refusalsNameEveryOptionAndWriteNothing() throws {
        try withTemporaryDirectory { tmp in
            let w = try P.weights(tmp)
            let r = try RunQTools.run(P.args(w, ["--mixup_enable", "--val_batch_size", "0", "--policy", "p.txt"]))
            #expect(r.status != 0)
            for name in ["--mixup_enable", "--val_batch_size 0", "--policy p.txt"] {
                #expect(r.stderr.contains(name), "\(name) not named: \(r.stderr)")
            }
            let written = try FileManager.default.contentsOfDirectory(atPath: w + "/resnet20")
            #expect(written == ["checkpoint.pth"], "\(written)")
            let keyword = try RunQTools.run(P.args(w, ["--keyword", "cifar10,origin,cbsa,fix_pooling,singleconv,fix,proxquant"]))
            #expect(keyword.status != 0 && keyword.stderr.contains("keyword proxquant"), "\(keyword.stderr)")
        }
    }

    @Test func gpuOptionsWarnAndTrain() throws {
        try withTemporaryDirectory { tmp in
            let w = try P.weights(tmp)
            let r = try RunQTools.run(P.args(w, ["--epochs", "1", "--fp16", "--opt_level", "O1", "--device-ids", "0", "--sync_bn"]))
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("--fp16/--opt_level have no effect"), "\(r.stderr)")
            #expect(r.stderr.contains("--device-ids has no effect") && r.stderr.contains("--sync_bn has no effect"))
            #expect(try P.records(r.stdout).count == 1)
        }
    }

    @Test func resumeFileChoosesTheCheckpoint() throws {
        try withTemporaryDirectory { tmp in
            let w = try P.weights(tmp)
            let first = try RunQTools.run(P.args(w, ["--epochs", "1"]))
            #expect(first.status == 0, "\(first.stderr)")
            let other = try RunQTools.run(P.args(w, ["--epochs", "2", "-r", "--resume_file", "nope.pth.tar"]))
            #expect(
                other.status == 0 && other.stderr.contains("no checkpoint to resume at") && other.stderr.contains("nope.pth.tar"),
                "\(other.stderr)")
            #expect(try P.records(other.stdout).map { $0["epoch"] as? Int } == [0, 1])  // started anew
        }
    }
}
