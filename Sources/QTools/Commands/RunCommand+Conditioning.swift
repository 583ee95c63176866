import ArgumentParser
import Engine
import Models
import Tensors

extension RunCommand {
    /// `run --conditioning`: the quantizer inputs of the fast engine's run within `ulps` of a
    /// level boundary, each (up to 16) measured by a rerun with it on its other level.
    func conditioningReport(_ m: BuiltModel, _ x: Tensor, logits: Tensor) throws -> ConditioningReport {
        let inputs = [m.input: try ModelIO.imageBatch(x, channels: m.inputChannels)]
        let near = try Conditioning.probe(m.graph, inputs: inputs, ulps: ulps, threads: threads)
        let measured = try Conditioning.measure(
            m.graph, inputs: inputs, near: near, outputs: [m.output: logits], limit: ConditioningReport.measuredLimit,
            threads: threads)
        return ConditioningReport(ulps: ulps, count: near.count, elements: measured)
    }
}

/// The `--conditioning` part of `qtools run`'s report.
struct ConditioningReport: Encodable {
    /// How many elements are rerun with their other level.
    static let measuredLimit = 16

    var ulps: Int
    /// All near-boundary elements found.
    var count: Int
    /// The closest (at most ``measuredLimit``), each with its measured logit change.
    var elements: [Conditioning.NearBoundary]

    var text: String {
        guard count > 0 else {
            return "conditioning: no quantizer input lies within \(ulps) float32 ulps of a level boundary"
        }
        var lines = [
            "conditioning: \(count) quantizer input\(count == 1 ? "" : "s") within \(ulps) float32 ulps of a level boundary"
                + (count > elements.count ? " (the \(elements.count) closest measured)" : "") + ":"
        ]
        var table = TextTable(["quantizer value [element]", "input", "level", "other level", "ulps", "logits move by"], rightAligned: [4])
        for e in elements {
            table.add([
                e.value + "\(e.index)", "\(e.input)", "\(e.level)", "\(e.otherLevel)", "\(e.ulps)",
                e.outputChange.map { "\($0)" } ?? "?",
            ])
        }
        lines.append(table.render())
        lines.append(
            "An engine that sums in another order (PyTorch, onnxruntime) may put these on the other level; "
                + "logits that differ by the amounts above are then both right.")
        return lines.joined(separator: "\n")
    }
}
