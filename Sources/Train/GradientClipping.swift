/// `--grad_clip`: `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)` as `main.py`
/// calls it before `optimizer.step()` (seed-reference §14.4): the total norm is the 2-norm of
/// the per-tensor 2-norms of every gradient, and when `max_norm / (total + 1e-6)` is below 1
/// every gradient is multiplied by it (in float32, as torch). Weight decay is added later, by
/// the optimizer, so it is not clipped.
public enum GradientClipping {
    /// Clips `gradients` (those named in `names`, the optimizer's parameters) in place.
    /// - Returns: the total norm before clipping.
    @discardableResult
    public static func clip(_ gradients: inout [String: [Float]], names: [String], maxNorm: Double) -> Double {
        var squares = 0.0
        for name in names {
            guard let g = gradients[name] else { continue }
            var s = 0.0
            for v in g { s += Double(v) * Double(v) }
            squares += s
        }
        let total = squares.squareRoot()
        let coefficient = maxNorm / (total + 1e-6)
        guard coefficient < 1 else { return total }
        let c = Float(coefficient)
        for name in names where gradients[name] != nil {
            gradients[name] = gradients[name]!.map { $0 * c }
        }
        return total
    }
}
