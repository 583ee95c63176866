import Foundation

/// The per-epoch progress bar of `qtools train` on a terminal:
/// `epoch 3/90 [########----------] 120/391  1234 img/s  ETA 0:42  loss 1.234  lr 1.000e-01`.
struct TrainProgressBar {
    var epoch: Int
    var epochs: Int
    var batchSize: Int
    var width = 24

    /// The bar after `done` of `total` batches, `elapsed` seconds into the epoch.
    func line(done: Int, total: Int, elapsed: Double, loss: Double, lr: Double) -> String {
        let fraction = total > 0 ? min(max(Double(done) / Double(total), 0), 1) : 0
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let rate = elapsed > 0 ? Double(done * batchSize) / elapsed : 0
        let eta = done > 0 ? elapsed / Double(done) * Double(max(total - done, 0)) : .nan
        let digits = String(total).count
        let count = String(repeating: " ", count: max(0, digits - String(done).count)) + "\(done)/\(total)"
        return "epoch \(epoch)/\(epochs) [\(bar)] \(count)  \(String(format: "%.0f", rate)) img/s  ETA \(Self.duration(eta))"
            + String(format: "  loss %.3f  lr %.3e", loss, lr)
    }

    /// `m:ss` or `h:mm:ss`; `?` when unknown.
    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        let t = Int(s.rounded())
        let (h, m, sec) = (t / 3600, t / 60 % 60, t % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, sec) : String(format: "%d:%02d", m, sec)
    }
}
