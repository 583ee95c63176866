import Engine
import Models
import Tensors

/// Whether a failed `verify --expect` of a quantized model is a few rounding-boundary flips
/// (an ill-conditioned input) or a real difference: ``Conditioning/explain``, up to 3 flips of
/// quantizer inputs within 16 float32 ulps of a level boundary.
struct VerifyExplanation: Encodable {
    /// True when the flips bring the logits within tolerance of the expected ones.
    var explained: Bool
    /// Max |logits - expected| with the flips applied, and the tolerance it is held to
    /// (`atol + rtol * max |expected|`).
    var residual: Float
    var tolerance: Float
    var flips: [Conditioning.NearBoundary]

    /// Explains `want` (the expected logits of `x`) for `model`; nil for a model without
    /// quantizers (nothing to flip).
    static func explaining(_ model: BuiltModel, _ x: Tensor, want: Tensor, atol: Float, rtol: Float) throws -> VerifyExplanation? {
        guard model.graph.nodes.contains(where: { if case .quantize = $0.op { true } else { false } }) else { return nil }
        let batch = try ModelIO.imageBatch(x, channels: model.inputChannels)
        let w = want.floats()
        let tolerance = atol + rtol * (w.map { abs($0) }.max() ?? 0)
        let (flips, residual) = try Conditioning.explain(
            model.graph, inputs: [model.input: batch], output: model.output, target: w, tolerance: tolerance)
        return VerifyExplanation(explained: residual <= tolerance && !flips.isEmpty, residual: residual, tolerance: tolerance, flips: flips)
    }

    var text: String {
        guard explained else {
            return "not a rounding-boundary flip: no 3 quantizer inputs near a level boundary explain it "
                + "(best: max abs \(residual) with \(flips.count) flipped); locate it with --per-layer"
        }
        let n = flips.count
        var lines = [
            "ill-conditioned input: the logits match (max abs \(residual)) once \(n) quantizer input\(n == 1 ? "" : "s") "
                + "near a level boundary take\(n == 1 ? "s" : "") the other level:"
        ]
        for e in flips {
            lines.append("  \(e.value)\(e.index): input \(e.input), \(e.ulps) ulps from the boundary, level \(e.level) -> \(e.otherLevel)")
        }
        lines.append("(an engine summing in another order rounds these the other way; README, \"Ill-conditioned inputs\")")
        return lines.joined(separator: "\n")
    }
}
