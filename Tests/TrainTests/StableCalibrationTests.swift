import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Models
@testable import Train

/// `--stable N` calibration in training (§11.12, `init_based_on_warmup`): while `iteration <=
/// stable` every LSQ quantizer passes its input through unquantized, and its `clip_val`
/// becomes the running mean of the per-forward `max|x|` (the first forward overwrites the
/// initial value), gets no gradient and no optimizer update. Checked over two steps on the
/// golden LSQ ResNet-20 (weights without var-mean, which stays refused) against the maxima of
/// the quantizer inputs read from each step's tape.
@Suite struct StableCalibrationTests {
    @Test func clipValIsTheRunningMeanOfTheInputMaxima() throws {
        var golden = try TrainGolden("resnet20_lsq_a2w2")
        golden.options = try golden.options.applying(arguments: ["--stable", "2", "--wt_adaptive", "none"])
        var state = golden.stateDict.map { e in
            e.name.hasSuffix(".iteration") ? (name: e.name, tensor: Tensor(floats: [0], shape: e.tensor.shape)) : e
        }
        let x = try golden.npy("train_x.npy"), y = try golden.labels()
        var maxima: [String: [Float]] = [:]
        for _ in 0..<2 {
            let step = try TrainStep(options: golden.options, stateDict: state)
            let f = try step.forward(x: x, labels: y)
            var calibrated = 0
            for n in step.model.graph.nodes {
                guard case .quantize(let q) = n.op, let quantizer = q.function as? Quantizer,
                    quantizer.parameterKeys.contains(quantizer.name + ".clip_val")
                else { continue }
                let input = try #require(f.tape.values[n.inputs[0]])
                #expect(f.tape.values[n.outputs[0]] == input, "\(n.name) does not pass its input through")
                maxima[quantizer.name + ".clip_val", default: []].append(input.map(abs).max() ?? 0)
                calibrated += 1
            }
            #expect(calibrated > 10)
            let r = try step.finish(f)
            state = r.stateDict
            for key in maxima.keys { #expect(r.optimizer.sgd?.buffers[key] == nil, "\(key) was stepped") }
        }
        let after = Dictionary(state.map { ($0.name, $0.tensor.floats()) }, uniquingKeysWith: { a, _ in a })
        for (key, m) in maxima {
            let clip = try #require(after[key])
            let expected = (m[1] + 1 * m[0]) / 2
            #expect(clip.allSatisfy { abs($0 - expected) <= 1e-6 * expected }, "\(key): \(clip) vs \(expected)")
        }
        // The third forward is past --stable: quantized again, and the clip now learns.
        let third = try TrainStep(options: golden.options, stateDict: state)
        let f = try third.forward(x: x, labels: y)
        let quantized = third.model.graph.nodes.contains { n in
            guard case .quantize = n.op else { return false }
            return f.tape.values[n.outputs[0]] != f.tape.values[n.inputs[0]]
        }
        #expect(quantized)
    }
}
