#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// QTool's training loss (seed-reference §14.7): `nn.CrossEntropyLoss()` (mean over the
/// batch), or with `label-smooth`
/// `loss = mean_b sum_c -[(1 - eps) onehot_c + eps / K] log_softmax_c`.
public struct CrossEntropy: Sendable, Equatable {
    /// The smoothing `eps` (0: plain cross entropy).
    public var labelSmoothing: Double

    /// Plain cross entropy, or label smoothing `eps`.
    public init(labelSmoothing: Double = 0) { self.labelSmoothing = labelSmoothing }

    /// The loss of `logits [N, K]` for `labels` (`N` class indices) and its gradient
    /// `dloss/dlogits = (softmax - target) / N`, in Double, rounded once.
    /// - Throws: ``TrainError`` `.invalidInput` for a label outside `0..<K` or a count
    ///   mismatch; `.nonFinite` when a logit is NaN or infinite.
    public func callAsFunction(
        logits: [Float], classes: Int, labels: [Int]
    ) throws(TrainError)
        -> (loss: Float, gradient: [Float])
    {
        let n = labels.count
        guard classes > 0, n > 0, logits.count == n * classes else {
            throw TrainError(.invalidInput("\(logits.count) logits for \(n) labels of \(classes) classes"))
        }
        if let i = logits.firstIndex(where: { !$0.isFinite }) {
            throw TrainError(.nonFinite("logit \(logits[i]) of sample \(i / classes)"))
        }
        if let (i, y) = labels.enumerated().first(where: { !(0..<classes).contains($0.element) }) {
            throw TrainError(.invalidInput("label \(y) of sample \(i) is outside 0..<\(classes)"))
        }
        var total = 0.0
        var grad = [Float](repeating: 0, count: logits.count)
        let eps = labelSmoothing, k = Double(classes)
        for b in 0..<n {
            let row = logits[(b * classes)..<((b + 1) * classes)].map(Double.init)
            let m = row.max()!
            let z = row.reduce(0) { $0 + exp($1 - m) }
            let logZ = m + log(z)
            for c in 0..<classes {
                let target = (c == labels[b] ? 1 - eps : 0) + eps / k
                total -= target * (row[c] - logZ)
                grad[b * classes + c] = Float((exp(row[c] - logZ) - target) / Double(n))
            }
        }
        return (Float(total / Double(n)), grad)
    }
}
