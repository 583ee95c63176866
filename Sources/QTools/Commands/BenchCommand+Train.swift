import Foundation
import Models
import QToolConfig
import Tensors
import Train

/// `qtools bench MODEL --config CFG --train [--batch N] [--threads T] [--runs N] [--exact] [--json]`:
/// training-step throughput (``TrainBenchmark``).
///
/// MODEL is a checkpoint (its state dict, options from --config or the recorded config) or a
/// model-zoo name with --config: seeded random weights and quantizers past calibration
/// (``TrainBenchmark/randomStateDict(options:seed:)``).
extension BenchCommand {
    func runTrain() throws {
        try ExitCodes.reporting {
            if size != nil { throw UsageError("--size does not apply to --train (the model's input size is used)") }
            MemoryPolicy.training()
            let (options, stateDict, random) = try Self.trainingState(model: model ?? "", config: config, overrides: overrides)
            let step = try TrainStep(options: options, stateDict: stateDict)
            let r = try TrainBenchmark.measure(
                step, batch: batch, threads: threads, steps: runs, warmup: warmup, fast: !exact)
            let report = TrainBenchReport(
                model: options.model, inputShape: step.model.inputShape(batch: batch), result: r, randomWeights: random,
                exact: exact)
            Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        }
    }

    /// The options and state dict to train: a checkpoint's, or random ones for a zoo name.
    static func trainingState(
        model: String, config: String?, overrides: [String]
    ) throws
        -> (QToolOptions, [(name: String, tensor: Tensor)], Bool)
    {
        if FileManager.default.fileExists(atPath: model) {
            let (o, sd) = try ModelLoader.checkpoint(model, config: config, overrides: overrides)
            return (o, sd, false)
        }
        if model.contains("/") || model.hasSuffix(".pth") || model.hasSuffix(".pt") {
            throw UsageError("\(model): no such file")
        }
        var options = QToolOptions()
        if let config {
            options = try QToolOptions(config: ConfigFile(contentsOf: config, environment: ProcessInfo.processInfo.environment))
        }
        options = try options.applying(arguments: ["--model", model]).applying(arguments: overrides)
        return (options, try TrainBenchmark.randomStateDict(options: options), true)
    }
}

/// The report of `bench --train`.
struct TrainBenchReport: Encodable {
    var model: String
    var inputShape: [Int]
    var precision: String
    var threads: Int, batch: Int, steps: Int
    var imagesPerSecond: Double
    var medianMs: Double, minMs: Double, maxMs: Double
    var forwardMs: Double, backwardMs: Double, optimizerMs: Double
    var forwardOpShares: [String: Double], backwardOpShares: [String: Double]
    var forwardOpMs: [String: Double], backwardOpMs: [String: Double]
    var loss: Float
    var randomWeights: Bool
    var peakRSSBytes: Int?
    var weightBytes: Int, gradientBytes: Int, optimizerBytes: Int, activationBytes: Int, memoryBoundBytes: Int
    var memoryBoundMet: Bool?

    enum CodingKeys: String, CodingKey {
        case model, inputShape = "input_shape", precision, threads, batch, steps,
            imagesPerSecond = "images_per_second", medianMs = "median_ms", minMs = "min_ms", maxMs = "max_ms",
            forwardMs = "forward_ms", backwardMs = "backward_ms", optimizerMs = "optimizer_ms",
            forwardOpShares = "forward_op_shares", backwardOpShares = "backward_op_shares",
            forwardOpMs = "forward_op_ms", backwardOpMs = "backward_op_ms", loss, randomWeights = "random_weights",
            peakRSSBytes = "peak_rss_bytes", weightBytes = "weight_bytes", gradientBytes = "gradient_bytes",
            optimizerBytes = "optimizer_bytes", activationBytes = "activation_bytes",
            memoryBoundBytes = "memory_bound_bytes", memoryBoundMet = "memory_bound_met"
    }

    init(model: String, inputShape: [Int], result r: TrainBenchmark.Result, randomWeights: Bool, exact: Bool) {
        self.model = model
        self.inputShape = inputShape
        precision = exact ? "exact" : "fast"
        threads = r.threads
        batch = r.batch
        steps = r.stepsMs.count
        imagesPerSecond = r.imagesPerSecond
        medianMs = r.medianMs
        minMs = r.minMs
        maxMs = r.maxMs
        forwardMs = r.forwardMs
        backwardMs = r.backwardMs
        optimizerMs = r.optimizerMs
        forwardOpShares = r.forwardShares
        backwardOpShares = r.backwardShares
        forwardOpMs = r.forwardOpMs
        backwardOpMs = r.backwardOpMs
        loss = r.lastLoss
        self.randomWeights = randomWeights
        peakRSSBytes = r.peakResidentBytes
        weightBytes = r.weightBytes
        gradientBytes = r.gradientBytes
        optimizerBytes = r.optimizerBytes
        activationBytes = r.activationBytes
        memoryBoundBytes = r.memoryBoundBytes
        memoryBoundMet = r.peakResidentBytes.map { $0 <= r.memoryBoundBytes }
    }

    var text: String {
        func f(_ x: Double) -> String { String(format: "%.2f", x) }
        func mib(_ b: Int) -> String { String(format: "%.1f", Double(b) / 1_048_576) }
        var lines = [
            "\(model) \(inputShape) training (\(precision)), \(threads) thread\(threads == 1 ? "" : "s"), \(steps) steps"
                + (randomWeights ? " (random weights)" : ""),
            "\(f(imagesPerSecond)) images/s  median step \(f(medianMs)) ms  min \(f(minMs)) ms  max \(f(maxMs)) ms",
            "forward \(f(forwardMs)) ms  backward \(f(backwardMs)) ms  optimizer \(f(optimizerMs)) ms  loss \(loss)",
            "memory: peak RSS \(peakRSSBytes.map(mib) ?? "unknown") MiB, bound \(mib(memoryBoundBytes)) MiB = weights "
                + "\(mib(weightBytes)) + gradients \(mib(gradientBytes)) + optimizer \(mib(optimizerBytes)) + activations "
                + "\(mib(activationBytes)) + 64 MiB" + (memoryBoundMet.map { $0 ? ": met" : ": NOT met" } ?? ""),
        ]
        for (title, shares, ms) in [("forward", forwardOpShares, forwardOpMs), ("backward", backwardOpShares, backwardOpMs)] {
            lines.append("\(title) per op type:")
            for (op, share) in shares.sorted(by: { $0.value > $1.value }) {
                lines.append("  \(op.padding(toLength: 18, withPad: " ", startingAt: 0)) \(f(share * 100))%  \(f(ms[op] ?? 0)) ms")
            }
        }
        return lines.joined(separator: "\n")
    }
}
