import Formats
import Foundation
import QToolConfig

/// The log file of QTool's `main.py` (seed-reference §14.1 step 2, §14.10):
/// `<log_dir>/<model>-<case>.txt` (`eval-<model>-<case>.txt` with `-e`), one line per message
/// in Python logging's format `%(asctime)s - %(levelname)s - %(message)s` with the date as
/// `%Y-%m-%d %H:%M:%S` (local time), appended to when resuming, else overwritten.
///
/// Every line is written with one `write(2)` as it is logged, so `tail -f` follows the run and
/// a killed run keeps every line up to the kill.
public final class TrainLog {
    /// The log file.
    public let path: String
    private let file: AppendFile
    private let formatter: DateFormatter

    /// `<model>-<case>.txt`, or `eval-<model>-<case>.txt` when evaluating (main.py's `log_suffix`).
    public static func fileName(options: QToolOptions) -> String {
        (options.evaluate ? "eval-" : "") + suffix(options) + ".txt"
    }

    /// main.py's `log_suffix`, `<model>-<case>`: the log file's stem and the TensorBoard tag prefix.
    public static func suffix(_ options: QToolOptions) -> String { "\(options.model)-\(options.caseName)" }

    /// Creates `log_dir` (and parents) and opens the log file: appended when `options.resume`
    /// (Python's `mode='a'`), else truncated (`'w'`).
    ///
    /// - Throws: ``OutputFile/WriteError`` when the folder or the file cannot be created.
    public init(options: QToolOptions) throws(OutputFile.WriteError) {
        var dir = "exp"
        if case .string(let s) = options["log_dir"] { dir = s }
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw OutputFile.WriteError(path: dir, reason: "cannot create the log folder: \(error.localizedDescription)")
        }
        path = (dir as NSString).appendingPathComponent(Self.fileName(options: options))
        file = try AppendFile(path: path, append: options.resume)
        formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .current
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    }

    /// Logs `message` at INFO.
    ///
    /// - Throws: ``OutputFile/WriteError`` when the line cannot be written.
    public func info(_ message: String, date: Date = Date()) throws(OutputFile.WriteError) {
        try file.write(Self.line(message, level: "INFO", time: formatter.string(from: date)))
    }

    /// One line as Python's logging formats it.
    public static func line(_ message: String, level: String, time: String) -> String {
        "\(time) - \(level) - \(message)\n"
    }

    /// Closes the file.
    public func close() { file.close() }

    // MARK: The reference's messages

    /// `config <name>: <repr>` for every argument, in the parser's order (§14.1 step 2).
    public static func configLines(_ options: QToolOptions) -> [String] {
        QToolOptions.table.map { "config \($0.dest): \(options[$0.dest])" }
    }

    /// `[epoch <e>]: lr <%e>`.
    public static func epochLR(_ epoch: Int, _ lr: Double) -> String { String(format: "[epoch %d]: lr %e", epoch, lr) }

    /// `[epoch <e>]: train_loss <%.3f>`.
    public static func trainLoss(_ epoch: Int, _ loss: Double) -> String {
        String(format: "[epoch %d]: train_loss %.3f", epoch, loss)
    }

    /// `[epoch <e>]: test_acc <top1> <top5>, best top1: <best>, loss: <loss>` (`%f`).
    public static func testAccuracy(_ r: TrainLoop.EpochRecord) -> String {
        String(format: "[epoch %d]: test_acc %f %f, best top1: %f, loss: %f", r.epoch, r.top1, r.top5, r.bestAcc, r.evalLoss)
    }

    /// `train <i>/<len>, loss:<val>(<avg>), batch time:<t>(<avg>), data load time: <t>(<avg>)` (§14.4 step 8).
    public static func trainReport(
        _ i: Int, _ length: Int, loss: Double, averageLoss: Double, batchTime: Double, averageBatchTime: Double,
        dataTime: Double, averageDataTime: Double
    ) -> String {
        String(
            format: "train %d/%d, loss:%.3f(%.3f), batch time:%.2f(%.2f), data load time: %.2f(%.2f)",
            i, length, loss, averageLoss, batchTime, averageBatchTime, dataTime, averageDataTime)
    }

    /// `evaluation time: <%.3f> s` (§14.8).
    /// `test <step>/<len> <top1 %.3f> <top5 %.3f>` (§14.8): every `report_freq` evaluation
    /// batches, `step` 0-based, the running weighted top-1/top-5 averages in percent.
    public static func testReport(_ step: Int, _ length: Int, top1: Double, top5: Double) -> String {
        String(format: "test %d/%d %.3f %.3f", step, length, top1, top5)
    }

    public static func evaluationTime(_ seconds: Double) -> String { String(format: "evaluation time: %.3f s", seconds) }

    /// `evaluate accuracy on dataset: top1(<f>) top5(<f>)` (§14.1 step 9).
    public static func evaluation(top1: Double, top5: Double) -> String {
        String(format: "evaluate accuracy on dataset: top1(%f) top5(%f)", top1, top5)
    }
}
