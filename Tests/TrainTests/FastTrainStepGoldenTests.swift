import Formats
import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// The fast path (``TrainingGraph/Precision/fast``: float32 conv GEMMs, 2 threads) against
/// QTool's own step on the golden cases, at the tolerances of ``TrainStepGoldenTests`` (loss
/// 1e-5 relative, train logits 1e-4, every tensor after the step within 1e-6 absolute or
/// 1e-5 of its value or of the tensor's largest update; unchanged tensors bit-identical), with
/// the same documented exceptions: the ReLU inputs at the kink (``reluBoundaries``; our
/// float32 value is checked to be within 1e-5 of zero and put on QTool's side), QTool's float32 rounding in one channel
/// (``TrainStepGoldenTests/float32Rounding``) and one XNOR++ gamma whose gradient is rounding
/// noise (``TrainStepGoldenTests/zeroGradientNoise``), both known issues.
@Suite struct FastTrainStepGoldenTests {
    static let cases = TrainStepGoldenTests.cases

    /// ReLU inputs within float32 rounding of zero on this path, and the side QTool's value is
    /// on (`positive`): ``TrainStepGoldenTests/reluBoundaries`` (QTool's side positive; the
    /// exact path lands at -2.4e-7), and `layer2.2.add[58870]` of `resnet20_fp`, where the exact
    /// path computes -1.3e-6 (and matches QTool's step) while the float32 sums of the conv and
    /// BN before the add land at +3.0e-7. Each is far from any other ReLU input's scale; the
    /// value is checked to be within 1e-5 of zero and put on QTool's side.
    static let reluBoundaries: [String: [(value: String, index: Int, positive: Bool)]] = [
        "resnet20_fp": [("layer1.2.add", 108838, true), ("layer2.2.add", 58870, false)],
        "resnet20_fixup": [("layer3.2.fixup_bias1b#affine", 15080, true)],
    ]

    @Test(arguments: cases)
    func fastStepMatchesQTool(name: String) throws {
        var golden = try TrainGolden(name)
        if name == "pytorch_resnet18_fp" {
            golden.options = try golden.options.applying(arguments: ["--width_alpha", "0.125"])
        }
        var step = try TrainStep(options: golden.options, stateDict: golden.stateDict)
        step.training.precision = .fast
        step.training.threads = 2
        var forward = try step.forward(x: golden.npy("train_x.npy"), labels: golden.labels())
        for (value, i, positive) in Self.reluBoundaries[name] ?? [] {
            let v = try #require(forward.tape.values[value]?[i])
            #expect(abs(v) < 1e-5, "\(value)[\(i)] = \(v) is not at the ReLU boundary")
            if (v > 0) != positive { forward.tape.values[value]![i] = v == 0 ? (positive ? 1 : -1) * .leastNonzeroMagnitude : -v }
        }
        let r = try step.finish(forward)

        let loss = try golden.npy("train_loss.npy").floats()[0]
        #expect(abs(r.loss - loss) <= 1e-5 * abs(loss), "loss \(r.loss) vs \(loss)")
        let d = Difference(r.logits.floats(), try golden.npy("train_logits.npy").floats())
        #expect(d.maxAbs <= 1e-4, "train logits: \(d)")

        let before = Dictionary(golden.stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        let got = Dictionary(r.stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        var report: [String] = [], known: [String] = []
        for (key, want) in try golden.afterStep() {
            let have = try #require(got[key], "\(key) missing")
            let (h, w) = (have.doubles(), want.doubles())
            if w == before[key]?.doubles() {
                try TrainStepGoldenTests.expectUnchanged(key, h, w, case: name, result: r)
                continue
            }
            let old = before[key]?.doubles() ?? w
            let largestUpdate = w.indices.map { abs(w[$0] - old[$0]) }.max() ?? 0
            let excess = h.indices.map { i in abs(h[i] - w[i]) - max(1e-6, 1e-5 * abs(w[i]), 1e-5 * largestUpdate) }
            let knownChannel = TrainStepGoldenTests.float32Rounding[name]?[key]
            let perChannel = h.count / max(want.shape.first ?? 1, 1)
            for inKnown in [false, true] {
                let indices = excess.indices.filter { ($0 / perChannel == knownChannel) == inKnown }
                guard let at = indices.max(by: { excess[$0] < excess[$1] }), excess[at] > 0 else { continue }
                let line = "\(key)[\(at)]: \(h[at]) vs \(w[at]) (\(excess[at]) over)"
                if inKnown { known.append(line) } else { report.append(line) }
            }
        }
        #expect(report.isEmpty, "\(name): \(report.count) tensors over the tolerance: \(report.prefix(8).joined(separator: "; "))")
        if TrainStepGoldenTests.float32Rounding[name] != nil {
            withKnownIssue("QTool's float32 gradient rounding (see TrainStepGoldenTests.float32Rounding)") {
                #expect(known.isEmpty, "\(known)")
            }
        }
    }
}
