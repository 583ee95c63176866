import Formats
import Foundation
import TestSupport
import Testing

@testable import QTools

#if canImport(Glibc)
    import Glibc
#endif

/// What `qtools train` writes besides checkpoints (issue 17, "Output"): the reference's log
/// file (appended on `-r`), the progress bar on a terminal and plain report lines on a pipe,
/// TensorBoard event files read by the real `tensorboard` package, the SVG curves; and
/// SIGTERM / a crash (SIGKILL mid-write) never leaving a partial checkpoint.
@Suite struct TrainOutputTests {
    typealias Program = TrainProgramCommandTests
    static let caseName = "golden-resnet20_lsq_a2w2"
    static let logName = "resnet20-golden-resnet20_lsq_a2w2.txt"

    static func logLines(_ dir: String) throws -> [String] {
        try String(contentsOfFile: "\(dir)/\(logName)", encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// Python logging's `%(asctime)s - %(levelname)s - %(message)s`, the message.
    static func message(_ line: String) -> String? {
        guard let r = line.range(of: #"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - INFO - "#, options: .regularExpression) else { return nil }
        return String(line[r.upperBound...])
    }

    static func testAcc(_ r: [String: Any]) -> String {
        String(
            format: "[epoch %d]: test_acc %f %f, best top1: %f, loss: %f", r["epoch"] as? Int ?? -1, r["top1"] as? Double ?? -1,
            r["top5"] as? Double ?? -1, r["best_acc"] as? Double ?? -1, r["eval_loss"] as? Double ?? -1)
    }

    static func temporaries(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".qtools-") }
    }

    /// Runs `qtools args` on a pseudo-terminal (`script`), stdout and stderr together.
    static func onTerminal(_ args: [String]) throws -> Python.Result? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { return nil }
        let command = ([RunQTools.binary] + args).map(TrainOutputs.shellQuoted).joined(separator: " ")
        return try Python.runProcess("/usr/bin/script", ["-qec", command, "/dev/null"])
    }

    /// One epoch on a pipe with `--tensorboard`, two more resumed on a terminal: one log
    /// (appended), the reference's lines, report lines on the pipe only, a bar on the
    /// terminal only, TensorBoard scalars for epochs 0-2 equal to the `--json` records, and
    /// the SVG with all three epochs.
    @Test func logTensorBoardAndCurvesAcrossResume() throws {
        try withTemporaryDirectory { tmp in
            let w = try Program.weights(tmp)
            let logDir = tmp.appendingPathComponent("exp").path
            let first = try RunQTools.run(Program.args(w, ["--tensorboard", "--stop-after", "1", "--report_freq", "1"]))
            #expect(first.status == 0, "\(first.stderr)")
            #expect(!first.stderr.contains("\r") && !first.stderr.contains("\u{1b}["), "no bar on a pipe")
            #expect(first.stderr.contains("train 0/3, loss:") && first.stderr.contains("train 2/3, loss:"), "\(first.stderr)")
            #expect(first.stderr.contains("[epoch 0]: lr 5.000000e-02"))
            var records = try Program.records(first.stdout)
            #expect(records.count == 1)

            var messages = try Self.logLines(logDir).map { try #require(Self.message($0), "\($0)") }
            #expect(messages.filter { $0.hasPrefix("config ") }.count > 100 && messages.contains("config tensorboard: True"))
            #expect(messages.contains("[epoch 0]: lr 5.000000e-02"))
            #expect(messages.contains(String(format: "[epoch 0]: train_loss %.3f", records[0]["train_loss"] as? Double ?? -1)))
            #expect(messages.contains(Self.testAcc(records[0])))
            #expect(messages.filter { $0.hasPrefix("train ") && $0.contains("/3, loss:") }.count == 3)
            // `test i/len top1 top5` per evaluation batch (report_freq 1); the last one's running
            // averages are the epoch's results.
            let tests = messages.filter { $0.hasPrefix("test ") }.map { $0.split(separator: " ").map(String.init) }
            let last = try #require(tests.last, "no test lines")
            #expect(tests.count >= 1 && tests.allSatisfy { $0.count == 4 })
            #expect(last[1] == "\(tests.count - 1)/\(tests.count)", "\(last)")
            #expect(last[2] == String(format: "%.3f", records[0]["top1"] as? Double ?? -1))
            #expect(last[3] == String(format: "%.3f", records[0]["top5"] as? Double ?? -1))

            let resumeArgs = Program.args(w, ["--tensorboard", "-r"])
            if let second = try Self.onTerminal(resumeArgs) {
                #expect(second.status == 0, "\(second.stdout)")
                #expect(second.stdout.contains("\u{1b}[2Kepoch 1/3 [") && second.stdout.contains("] 3/3 "), "a bar: \(second.stdout)")
                #expect(!second.stdout.contains("train 0/3, loss:"), "report lines go to the log only on a terminal")
                records += second.stdout.split(whereSeparator: \.isNewline).compactMap { line -> [String: Any]? in
                    guard let open = line.range(of: "{\"best_acc\""), let close = line.lastIndex(of: "}") else { return nil }
                    let json = line[open.lowerBound...close]
                    let record = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
                    #expect(record != nil, "\(json)")
                    return record
                }
            } else {
                let second = try RunQTools.run(resumeArgs)
                #expect(second.status == 0, "\(second.stderr)")
                records += try Program.records(second.stdout)
            }
            #expect(records.map { $0["epoch"] as? Int ?? -1 } == [0, 1, 2])

            messages = try Self.logLines(logDir).compactMap(Self.message)
            #expect(messages.filter { $0 == "config resume: True" }.count == 1, "the first run's lines kept, the second's appended")
            #expect(messages.filter { $0.hasPrefix("config lr: ") }.count == 2)
            for r in records { #expect(messages.contains(Self.testAcc(r)), "\(Self.testAcc(r))") }

            // The curves: three epochs (the first read back from the log), five series.
            let svg = try String(contentsOfFile: "\(logDir)/resnet20-\(Self.caseName)-curves.svg", encoding: .utf8)
            #expect(svg.hasPrefix("<?xml") && svg.hasSuffix("</svg>\n"))
            #expect(svg.components(separatedBy: "<circle").count - 1 == 15 && svg.components(separatedBy: "<polyline").count - 1 == 5)
            #expect(Self.temporaries(logDir) == [])

            let events = try FileManager.default.contentsOfDirectory(atPath: logDir).filter { $0.hasPrefix("events.out.tfevents.") }
            #expect(events.count == 2, "one event file per run")
            guard let py = Python.interpreter else { return }
            guard try Python.runProcess(py, ["-c", "import tensorboard"]).status == 0 else {
                #expect(!Python.isRequired, "tensorboard is not installed (scripts/setup.sh --python installs it)")
                return
            }
            let script = #"""
                import sys, json
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
                ea = EventAccumulator(sys.argv[1]); ea.Reload()
                print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()['scalars']}))
                """#
            let got = try #require(try Python.json(script, [logDir]) as? [String: [[Double]]])
            let p = "resnet20-\(Self.caseName)"
            #expect(Set(got.keys) == ["\(p)/train-loss", "\(p)/eval-top1", "\(p)/eval-top5", "\(p)/lr"])
            for (tag, key) in [("train-loss", "train_loss"), ("eval-top1", "top1"), ("eval-top5", "top5"), ("lr", "lr")] {
                let series = got["\(p)/\(tag)"] ?? []
                #expect(series.map { Int($0[0]) } == [0, 1, 2], "\(tag) steps")
                for (s, r) in zip(series, records) {
                    let want = Double(Float(r[key] as? Double ?? .nan))
                    // float32 values; Foundation's JSON parser may be off in the last bit of a double.
                    #expect(abs(s[1] - want) <= 1e-12 * max(1, abs(want)), "\(tag) at step \(s[0]): \(s[1]) vs \(want)")
                }
            }
        }
    }

    /// Starts `qtools args` with stdout and stderr in files.
    static func launch(_ args: [String], in dir: URL) throws -> (Process, out: URL, err: URL) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RunQTools.binary)
        p.arguments = args
        let out = dir.appendingPathComponent("stdout.txt"), err = dir.appendingPathComponent("stderr.txt")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, out, err)
    }

    /// Waits (polling) until `condition` holds or the process ends; false if it ended first.
    static func wait(for p: Process, until condition: () -> Bool) -> Bool {
        while p.isRunning {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }

    /// SIGTERM after the first epoch's checkpoint: the run stops after its current training
    /// step (or, when the signal came during the epoch's last step or its evaluation, after that
    /// epoch's checkpoint), writes the checkpoint, says how to resume with -r and exits 143; the
    /// checkpoint loads and -r continues where the run stopped.
    @Test func sigtermStopsWithACompleteCheckpoint() throws {
        try withTemporaryDirectory { tmp in
            let w = try Program.weights(tmp)
            let ckpt = "\(w)/resnet20/\(Self.caseName)-checkpoint.pth.tar"
            let (p, out, err) = try Self.launch(Program.args(w, ["--epochs", "20"]), in: tmp)
            let appeared = Self.wait(for: p) { FileManager.default.fileExists(atPath: ckpt) }
            #expect(appeared, "the run ended before its first checkpoint")
            p.terminate()  // SIGTERM
            p.waitUntilExit()
            let stderr = try String(contentsOf: err, encoding: .utf8)
            #expect(p.terminationReason == .exit && p.terminationStatus == 128 + SIGTERM, "\(p.terminationStatus): \(stderr)")
            #expect(stderr.contains("stopped by SIGTERM ") && stderr.contains(" -r"), "\(stderr)")
            let records = try Program.records(try String(contentsOf: out, encoding: .utf8))
            let last = try #require(records.last?["epoch"] as? Int)
            #expect(last < 19)
            // Inside epoch last + 1 after a step, or after epoch `last`.
            let inside = stderr.contains("stopped by SIGTERM in epoch \(last + 1) after step ")
            #expect(inside || stderr.contains("stopped by SIGTERM after epoch \(last);"), "the message names where it stopped: \(stderr)")
            let opened = try ModelFile.open(path: ckpt, verifyCRC: true)
            #expect(opened.checkpoint.stateDict() != nil)
            #expect(Self.temporaries("\(w)/resnet20") == [])
            let log = try String(contentsOfFile: "\(tmp.path)/exp/\(Self.logName)", encoding: .utf8)
            #expect(log.contains("stopped by SIGTERM"))

            let resumed = try RunQTools.run(Program.args(w, ["--epochs", "20", "-r", "--stop-after", "1"]))
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try Program.records(resumed.stdout).map { $0["epoch"] as? Int } == [last + 1])
            if inside { #expect(resumed.stderr.contains("at epoch \(last + 1) after step "), "\(resumed.stderr)") }
        }
    }

    /// Ctrl-C twice (SIGINT, SIGINT) under `--quiet`: the second stops at once (or, when
    /// both arrive together, as one, after the epoch); either way exit 130 and the checkpoint
    /// in place loads. `--quiet` kept the reference's lines off stderr (they are in the log).
    @Test func secondInterruptStopsAtOnce() throws {
        try withTemporaryDirectory { tmp in
            let w = try Program.weights(tmp)
            let ckpt = "\(w)/resnet20/\(Self.caseName)-checkpoint.pth.tar"
            let (p, _, err) = try Self.launch(Program.args(w, ["--epochs", "20", "--quiet"]), in: tmp)
            #expect(Self.wait(for: p) { FileManager.default.fileExists(atPath: ckpt) })
            kill(p.processIdentifier, SIGINT)
            usleep(100_000)
            kill(p.processIdentifier, SIGINT)
            p.waitUntilExit()
            let stderr = try String(contentsOf: err, encoding: .utf8)
            #expect(p.terminationReason == .exit && p.terminationStatus == 128 + SIGINT, "\(p.terminationStatus): \(stderr)")
            #expect(stderr.contains("qtools: interrupt: stopping after this step, once its checkpoint is written"), "\(stderr)")
            #expect(!stderr.contains("[epoch 0]: lr"), "--quiet")
            #expect(try ModelFile.open(path: ckpt, verifyCRC: true).checkpoint.stateDict() != nil)
            let log = try String(contentsOfFile: "\(tmp.path)/exp/\(Self.logName)", encoding: .utf8)
            #expect(log.contains("[epoch 0]: test_acc"))
        }
    }

    /// SIGKILL while a checkpoint is being written (its temporary file exists): the
    /// checkpoint in place is still a complete one, and -r resumes from it and clears the
    /// dead run's temporary.
    @Test func killedMidWriteKeepsTheLastCheckpoint() throws {
        try withTemporaryDirectory { tmp in
            let w = try Program.weights(tmp)
            let dir = "\(w)/resnet20"
            let ckpt = "\(dir)/\(Self.caseName)-checkpoint.pth.tar"
            let (p, _, err) = try Self.launch(Program.args(w, ["--epochs", "20"]), in: tmp)
            #expect(Self.wait(for: p) { FileManager.default.fileExists(atPath: ckpt) })
            _ = Self.wait(for: p) { Self.temporaries(dir).contains { $0.hasPrefix(".\(Self.caseName)-checkpoint") } }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal, "\(String(decoding: (try? Data(contentsOf: err)) ?? Data(), as: UTF8.self))")
            // Whether or not the kill landed mid-write, what is in place is complete.
            let opened = try ModelFile.open(path: ckpt, verifyCRC: true)
            #expect(opened.checkpoint.stateDict() != nil)

            let resumed = try RunQTools.run(Program.args(w, ["--epochs", "20", "-r", "--stop-after", "1"]))
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try Program.records(resumed.stdout).count == 1)
            #expect(Self.temporaries(dir) == [], "the dead run's temporary is removed by the next writer")
        }
    }

    @Test func progressBarLine() {
        let bar = TrainProgressBar(epoch: 1, epochs: 3, batchSize: 8)
        #expect(
            bar.line(done: 2, total: 4, elapsed: 2, loss: 1.5, lr: 0.1)
                == "epoch 1/3 [############------------] 2/4  8 img/s  ETA 0:02  loss 1.500  lr 1.000e-01")
        #expect(bar.line(done: 10, total: 100, elapsed: 0, loss: 0, lr: 0).contains(" 10/100  0 img/s  ETA 0:00"))
        #expect(bar.line(done: 0, total: 100, elapsed: 0, loss: 0, lr: 0).contains("[------------------------]   0/100"))
        #expect(TrainProgressBar.duration(3725) == "1:02:05" && TrainProgressBar.duration(59.6) == "1:00")
        #expect(TrainProgressBar.duration(.nan) == "?")
        #expect(TrainOutputs.shellQuoted("a b'c") == "'a b'\\''c'" && TrainOutputs.shellQuoted("--lr=0.1") == "--lr=0.1")
    }
}
