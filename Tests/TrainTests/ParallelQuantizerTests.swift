import Models
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// The multi-threaded LSQ activation pass (`forwardTrain(_:shape:parameters:threads:)`)
/// against the single-threaded training pass it replaces, its naive twin: the output and
/// the input gradient bit for bit, the `clip_val` gradient within double rounding. Inputs
/// include values exactly on the clamp bounds and rounding midpoints, NaN-free, at odd sizes
/// spanning several gradient blocks; one-sided and two-sided grids, gradient scales on and
/// off, negative clip.
@Suite struct ParallelQuantizerTests {
    static let cases: [(label: String, arguments: [String], clip: Float, count: Int)] = [
        ("one-sided 2 bit", ["--fm_bit", "2"], 1.1, 100_003),
        ("one-sided 3 bit, element-scale", ["--fm_bit", "3", "--fm_grad_scale", "element-scale"], 0.8, 70_001),
        ("two-sided 2 bit", ["--fm_bit", "2", "--fm_half_range"], 1.3, 33_333),
        ("one-sided 4 bit, negative clip", ["--fm_bit", "4"], -0.9, 5),
    ]

    @Test(arguments: 0..<4)
    func parallelLSQMatchesTheSequentialPass(index: Int) throws {
        let c = Self.cases[index]
        let options = try QToolOptions().applying(
            arguments: ["--keyword", "dorefa,lsq", "--fm_enable", "--fm_quant_group", "1"] + c.arguments)
        let config = try QuantizerConfig(options: options, tag: .fm, shape: [1, 1, 1, 1])
        #expect(config.halfRange == !c.label.hasPrefix("two-sided"))
        var state = QuantizerState(iteration: 1, levelNum: Float(config.levels))
        state.clipVal = [c.clip]
        let q = Quantizer(name: "q", config: config, state: state)
        var rng = SplitMix64(seed: UInt64(index) + 40)
        var x = rng.floats(c.count, -1, 2.5)
        let s = abs(c.clip), n = Float(config.levels - 1)
        for i in stride(from: 0, to: x.count, by: 7) {  // bounds and midpoints, exactly
            x[i] = [0, s, -s, s * 0.5 / n, s * 1.5 / n, -0.0][i / 7 % 6]
        }
        let dy = rng.floats(x.count, -1, 1)
        let shape = [1, 1, 1, x.count]
        let seq = try q.forwardTrain(x, shape: shape, parameters: [[c.clip]])
        for threads in [2, 3] {
            let par = try q.forwardTrain(x, shape: shape, parameters: [[c.clip]], threads: threads)
            #expect(par.y.map(\.bitPattern) == seq.y.map(\.bitPattern), "\(c.label): y")
            let (a, b) = (seq.backward(dy), par.backward(dy))
            #expect(b.dx.map(\.bitPattern) == a.dx.map(\.bitPattern), "\(c.label): dx")
            let (ga, gb) = (Double(a.parameters[0][0]), Double(b.parameters[0][0]))
            #expect(abs(ga - gb) <= 1e-6 * max(abs(ga), 1), "\(c.label): clip gradient \(gb) vs \(ga)")
        }
    }
}
