import ArgumentParser
import Engine
import Formats
import Foundation
import Models
import QToolConfig
import Tensors

/// `qtools verify A B`: the options of the two-model form.
struct VerifyTwoOptions: ParsableArguments {
    @Option(name: .customLong("config-b"), help: "The QTool config of the second model (default: its recorded config, else --config).")
    var configB: String?

    @Option(
        name: .long, parsing: .unconditional,
        help: "With two models and no --input: seeded random inputs (N(0,1)) of the config's input size.")
    var samples: Int = 4

    @Option(name: .long, parsing: .unconditional, help: "Seed of the random inputs.")
    var seed: UInt64 = 0

    @Option(
        name: .long, parsing: .unconditional, help: "With two models: largest accepted max |A−B| / max |B| (relative to B's peak logit).")
    var tolerance: Double = 1e-4

    func validate() throws {
        try OptionChecks.atLeast("--samples", samples, 1)
        try OptionChecks.nonNegative("--tolerance", tolerance)
    }

    /// Runs both models on the same input and reports their difference; exit 1 above tolerance.
    func run(
        a: String, b: String, config: String?, input: String?, overrides: [String], engines: (RunEngine?, RunEngine?) = (nil, nil),
        out: OutputOptions
    ) throws {
        let report: VerifyTwoReport = try ExitCodes.reporting {
            guard samples >= 1 else { throw UsageError("--samples must be at least 1") }
            let ma = try ModelSource.open(a, config: config, overrides: overrides, engine: engines.0)
            let mb = try ModelSource.open(
                b, config: configB ?? Self.recordedOr(b, config), overrides: ModelSource.overrides(overrides, forSecond: b),
                engine: engines.1)
            let (x, what) = try sharedInput(ma, mb, input: input)
            let la = try ma.run(x), lb = try mb.run(x)
            guard la.shape == lb.shape else {
                throw UsageError("the models return logits of shapes \(la.shape) and \(lb.shape)")
            }
            let d = ModelDifference(la.floats(), lb.floats(), classes: lb.shape.last ?? 1)
            func named(_ m: RunnableModel, _ e: RunEngine?) -> String { m.description + (e.map { ", engine \($0.rawValue)" } ?? "") }
            return VerifyTwoReport(
                a: named(ma, engines.0), b: named(mb, engines.1), input: what, difference: d, tolerance: tolerance,
                pass: d.within(tolerance))
        }
        Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        if !report.pass { throw ExitCode(ExitCodes.checkFailed) }
    }

    /// The input both models run on: `--input`, else `samples` seeded N(0, 1) images of the
    /// size both models take; with a description for the report.
    func sharedInput(_ ma: RunnableModel, _ mb: RunnableModel, input: String?) throws -> (Tensor, String) {
        if let input { return (try ModelIO.read(input), input) }
        let shape = ma.inputShape(samples)
        guard shape == mb.inputShape(samples) else {
            throw UsageError(
                "the models take inputs of \(shape.dropFirst().map(String.init).joined(separator: " x ")) and "
                    + "\(mb.inputShape(samples).dropFirst().map(String.init).joined(separator: " x ")); give --input")
        }
        return (SplitMix64.normalTensor(shape: shape, seed: seed), "\(samples) seeded random inputs (seed \(seed)) \(shape)")
    }

    /// B's config: nil when B records one (ModelLoader reads it), else A's `--config`.
    static func recordedOr(_ path: String, _ config: String?) -> String? {
        guard FileManager.default.fileExists(atPath: path),
            let opened = try? ModelFile.open(path: path),
            (try? ConfigRecord.read(from: opened.checkpoint)) != nil
        else { return config }
        return nil
    }
}

/// The `--json` document of `verify A B`.
struct VerifyTwoReport: Encodable {
    var a: String
    var b: String
    var input: String
    var difference: ModelDifference
    var tolerance: Double
    var pass: Bool

    enum CodingKeys: String, CodingKey { case a, b, input, tolerance, pass }

    func encode(to encoder: any Encoder) throws {
        try difference.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(a, forKey: .a)
        try c.encode(b, forKey: .b)
        try c.encode(input, forKey: .input)
        try c.encode(tolerance, forKey: .tolerance)
        try c.encode(pass, forKey: .pass)
    }

    var text: String {
        """
        A              \(a)
        B              \(b)
        input          \(input)
        max abs error  \(difference.maxAbs)
        max rel error  \(difference.relative) (of B's peak logit \(difference.peak))
        cosine         \(difference.cosine)
        top-1 agree    \(difference.top1Agree)/\(difference.samples)
        \(pass ? "PASS" : "FAIL") (tolerance \(tolerance))
        """
    }
}
