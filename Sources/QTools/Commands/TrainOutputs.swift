import ArgumentParser
import Formats
import Foundation
import QToolConfig
import Train

#if canImport(Glibc)
    import Glibc
#endif

/// What `qtools train` shows and writes as it runs, besides checkpoints and `--json`:
///
/// - the reference's log file `<log_dir>/<model>-<case>.txt` (``TrainLog``), every line as it
///   is logged, appended to with `-r`;
/// - on a terminal (stderr) a progress bar per epoch; on a pipe the reference's plain
///   `train i/len, loss:...` report lines instead; `--quiet` silences both;
/// - with `--tensorboard` an event file in `log_dir` with the scalars
///   `<model>-<case>/train-loss`, `/eval-top1`, `/eval-top5`, `/lr` per epoch;
/// - `<log_dir>/<model>-<case>-curves.svg`, rewritten atomically after each epoch (a resumed
///   run reads its earlier epochs back from the log file).
final class TrainOutputs {
    let options: QToolOptions
    let quiet: Bool
    let terminal: Bool
    let log: TrainLog
    var tensorboard: TensorBoardWriter?
    var points: [TrainCurves.Point] = []
    let svgPath: String
    let title: String

    // The current epoch.
    var bar: TrainProgressBar
    let trainCount: Int
    var epochStart = Date()
    var lastStep = Date()
    var lastDraw = Date.distantPast
    var previous = (average: 0.0, seen: 0)
    var batchTimeSum = 0.0
    /// Steps of the epoch done before this run (a resumed epoch).
    var firstStep = 0
    var barShown = false
    /// A log write that failed during the epoch (the step callback cannot throw).
    var pending: Error?

    /// Opens the log (writing the `config` lines), the TensorBoard file when asked, and reads
    /// a resumed run's earlier epochs from its log.
    init(options: QToolOptions, quiet: Bool, trainCount: Int = 0, epochs: Int = 0) throws {
        self.options = options
        self.quiet = quiet
        terminal = isatty(2) != 0
        self.trainCount = trainCount
        let suffix = TrainLog.suffix(options)
        var dir = "exp"
        if case .string(let s) = options["log_dir"] { dir = s }
        svgPath = (dir as NSString).appendingPathComponent("\(suffix)-curves.svg")
        title = "qtools train: \(suffix)"
        let logPath = (dir as NSString).appendingPathComponent(TrainLog.fileName(options: options))
        if options.resume, !options.evaluate, let text = try? String(contentsOfFile: logPath, encoding: .utf8) {
            points = TrainCurves.points(fromLog: text)
        }
        log = try TrainLog(options: options)
        bar = TrainProgressBar(epoch: 0, epochs: epochs, batchSize: max(options.batchSize, 1))
        for line in TrainLog.configLines(options) { try log.info(line) }
        if case .bool(true) = options["tensorboard"], !options.evaluate {
            tensorboard = try TensorBoardWriter(directory: dir, wallTime: Date().timeIntervalSince1970)
        }
    }

    /// A reference log line: to the log file, and to stderr unless `--quiet` (the console handler).
    func message(_ s: String) throws {
        try log.info(s)
        guard !quiet else { return }
        clearBar()
        Terminal.writeErr(s + "\n")
    }

    /// A detail line (the per-`report_freq` reports, evaluation time): to the log file, and to
    /// stderr only when it is not a terminal (there the progress bar stands for them).
    func detail(_ s: String) throws {
        try log.info(s)
        if !quiet && !terminal { Terminal.writeErr(s + "\n") }
    }

    /// Seconds from the epoch's start to its last training step (evaluation excluded).
    var trainSeconds: Double { lastStep.timeIntervalSince(epochStart) }
    /// Images the epoch's training steps saw.
    var trainImages: Int { previous.seen }

    /// `[epoch <e>]: lr <lr>`; resets the epoch's meters (a resumed epoch: its first
    /// `resumedAt` steps were trained by an earlier run, with `partialLoss`).
    func beginEpoch(_ epoch: Int, lr: Double, resumedAt: Int = 0, partialLoss: TrainLoop.PartialLoss = .init()) throws {
        try message(TrainLog.epochLR(epoch, lr))
        bar.epoch = epoch
        epochStart = Date()
        lastStep = epochStart
        previous = (partialLoss.mean, partialLoss.seen)
        firstStep = resumedAt
        batchTimeSum = 0
    }

    /// After training step `i` (1-based) of `n`: the bar, and every `report_freq` steps the
    /// reference's report line. The step's own loss is recovered from the running mean.
    func step(_ i: Int, _ n: Int, _ average: Double, _ lr: Double) {
        let now = Date()
        let batchTime = now.timeIntervalSince(lastStep)
        lastStep = now
        batchTimeSum += batchTime
        let size = stepSize(i - 1)
        let seen = previous.seen + size
        let loss = size > 0 ? (average * Double(seen) - previous.average * Double(previous.seen)) / Double(size) : average
        previous = (average, seen)
        if reports(at: i), pending == nil {
            do {
                try detail(
                    TrainLog.trainReport(
                        i - 1, n, loss: loss, averageLoss: average, batchTime: batchTime,
                        averageBatchTime: batchTimeSum / Double(max(i - firstStep, 1)),
                        dataTime: 0, averageDataTime: 0))
            } catch { pending = error }
        }
        guard !quiet, terminal, i == n || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        barShown = true
        Terminal.writeErr(
            "\r\u{1b}[2K" + bar.line(done: i, total: n, elapsed: now.timeIntervalSince(epochStart), loss: average, lr: lr)
                + (i == n ? "  evaluating" : ""))
    }

    /// After evaluation batch `i` (1-based) of `n`: every `report_freq` batches the
    /// reference's `test i/len top1 top5` line (a detail line: log file, and stderr on a pipe).
    func evaluationStep(_ i: Int, _ n: Int, _ top1: Double, _ top5: Double) {
        guard reports(at: i), pending == nil else { return }
        do { try detail(TrainLog.testReport(i - 1, n, top1: top1, top5: top5)) } catch { pending = error }
    }

    /// Whether step or batch `i` (1-based) gets a report line: every `--report_freq` (main.py's
    /// default 20), from the first.
    func reports(at i: Int) -> Bool {
        var freq = 20.0
        if case .float(let f) = options["report_freq"] { freq = f } else if case .int(let f) = options["report_freq"] { freq = Double(f) }
        return freq > 0 && Double(i - 1).truncatingRemainder(dividingBy: freq) == 0
    }

    /// Images in training step `i` (0-based) when the loop cycles over `trainCount` images.
    func stepSize(_ i: Int) -> Int {
        let b = max(options.batchSize, 1)
        guard trainCount > 0 else { return b }
        let count = (trainCount + b - 1) / b
        return min(b, trainCount - (i % count) * b)
    }

    /// After the epoch's evaluation: the reference's lines, the TensorBoard scalars and the SVG.
    func endEpoch(_ r: TrainLoop.EpochRecord) throws {
        clearBar()
        if let pending { throw pending }
        try detail(TrainLog.evaluationTime(Date().timeIntervalSince(lastStep)))
        try message(TrainLog.trainLoss(r.epoch, r.trainLoss))
        try message(TrainLog.testAccuracy(r))
        let suffix = TrainLog.suffix(options)
        try tensorboard?.addScalars(
            [
                ("\(suffix)/train-loss", r.trainLoss), ("\(suffix)/eval-top1", r.top1), ("\(suffix)/eval-top5", r.top5),
                ("\(suffix)/lr", r.lr),
            ],
            step: r.epoch, wallTime: Date().timeIntervalSince1970)
        points.removeAll { $0.epoch >= r.epoch }
        points.append(TrainCurves.Point(r))
        let sink = try OutputFile(path: svgPath, overwrite: true)
        try sink.write(Array(TrainCurves.svg(points, title: title).utf8))
        try sink.commit()
    }

    /// `-e`: `evaluate accuracy on dataset: top1(..) top5(..)` to the log file.
    func evaluated(top1: Double, top5: Double) throws {
        try log.info(TrainLog.evaluation(top1: top1, top5: top5))
    }

    func clearBar() {
        guard barShown else { return }
        Terminal.writeErr("\r\u{1b}[2K")
        barShown = false
    }

    /// After an epoch's checkpoint `checkpoint` is written: when SIGINT or SIGTERM asked the
    /// run to stop, says how to resume and exits with 128 + the signal.
    func stopIfInterrupted(epoch: Int, checkpoint: String) throws {
        guard let s = TrainInterrupt.requested else { return }
        let text =
            "stopped by \(TrainInterrupt.name(s)) after epoch \(epoch); its checkpoint \(checkpoint) is complete. Resume with -r: \(resumeCommand())"
        try? log.info(text)
        Terminal.error(text)
        throw ExitCode(128 + s)
    }

    /// After the checkpoint of a run stopped inside epoch `epoch` after `step` of `n` steps:
    /// says how to continue and exits with 128 + the signal (0 for `--stop-after-steps`).
    func stoppedMidEpoch(epoch: Int, step: Int, of n: Int, checkpoint: String) throws {
        clearBar()
        if let pending { throw pending }
        let s = TrainInterrupt.requested
        let by = s.map { "by \(TrainInterrupt.name($0)) " } ?? ""
        let text =
            "stopped \(by)in epoch \(epoch) after step \(step) of \(n); its checkpoint \(checkpoint) is complete. Resume with -r (continues at step \(step + 1)): \(resumeCommand())"
        try? log.info(text)
        if let s {
            Terminal.error(text)
            throw ExitCode(128 + s)
        }
        if !quiet { Terminal.writeErr(text + "\n") }
    }

    /// This command line with `-r` (added when missing).
    func resumeCommand() -> String {
        var args = CommandLine.arguments
        if let first = args.first { args[0] = (first as NSString).lastPathComponent }
        if !args.contains("-r") && !args.contains("--resume") { args.append("-r") }
        return args.map(Self.shellQuoted).joined(separator: " ")
    }

    static func shellQuoted(_ s: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !s.isEmpty && s.allSatisfy({ safe.contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
