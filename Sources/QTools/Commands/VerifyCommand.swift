import ArgumentParser
import Engine
import Formats
import Models
import Tensors

/// `qtools verify MODEL [--config CFG] --input x.npy --expect y.npy [--atol A] [--rtol R]`.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Run a checkpoint and compare its logits with reference logits (e.g. PyTorch's).",
        discussion: """
            Reports the max absolute and relative error, the cosine similarity and the top-1 \
            agreement per sample. Exit status 0 when every logit is within \
            atol + rtol*|expected|, 1 otherwise (65/66 for unreadable inputs).

            Examples:
              qtools verify checkpoint.pth --config config.txt --input input.npy --expect output.npy
              qtools verify ckpt.pth ckpt.pth --config config.txt --input x.npy --per-layer --engine-b reference
              qtools verify q.pth q.pth --config config.txt --engine-a int8 --engine-b float  # int8 vs fake-quant
              qtools verify --layers dump_a/ dump_b/ --json

            Per layer (--per-layer for two models, --layers for two dump directories): every \
            layer both runs hold, in A's execution order, with max |A-B|; a layer differs when \
            max |A-B| > tolerance x max(1, max |B|). The first differing layer is reported with \
            the element that differs most; for a quantize op also its input at that element on \
            both sides and (models only) the float32 rounding boundary between the two inputs.
            """)

    @Argument(
        help:
            "A checkpoint file. `verify A B`: a second model (checkpoint, folded or converted variant) right after it compares the two; then --expect is not used."
    )
    var model: String

    @OptionGroup var two: VerifyTwoOptions

    @OptionGroup var perLayer: VerifyLayerOptions

    @Option(name: .long, help: "Input images (float32 NCHW .npy); with two models, default seeded random inputs.")
    var input: String?

    @Option(name: .long, help: "Expected logits [N, classes] (.npy).")
    var expect: String?

    @Option(name: .long, parsing: .unconditional, help: "Absolute tolerance.")
    var atol: Float = 1e-4

    @Option(name: .long, parsing: .unconditional, help: "Relative tolerance.")
    var rtol: Float = 0

    func validate() throws {
        try OptionChecks.nonNegative("--atol", atol)
        try OptionChecks.nonNegative("--rtol", rtol)
    }

    @OptionGroup var out: OutputOptions

    @OptionGroup var modelOptions: ModelOptions
    var config: String? { modelOptions.config }
    var overrides: [String] { modelOptions.overrides }

    func run() throws {
        // `verify A B ...`: the second model is the first leftover argument that is not an option.
        var overrides = overrides
        var other: String? = nil
        if let first = overrides.first, !first.hasPrefix("-") {
            other = first
            overrides.removeFirst()
        }
        if perLayer.isRequested {
            try perLayer.run(a: model, b: other, two: two, config: config, input: input, overrides: overrides, out: out)
            return
        }
        if let other {
            try two.run(
                a: model, b: other, config: config, input: input, overrides: overrides, engines: (perLayer.engineA, perLayer.engineB),
                out: out)
            return
        }
        let report: VerifyReport = try ExitCodes.reporting {
            guard let input, let expect else { throw UsageError("give --input and --expect, or a second model to compare with") }
            if perLayer.engineB != nil { throw UsageError("--engine-b names the second model's engine: verify A B --engine-b ...") }
            let loaded = try ModelLoader(model: model, config: config, overrides: overrides)
            let x = try ModelIO.read(input)
            let want = try ModelIO.read(expect)
            let got = try perLayer.engineA.map { try $0.logits(loaded.model, x) } ?? ModelIO.logits(loaded.model, x)
            guard got.shape == want.shape else {
                throw UsageError("--expect has shape \(want.shape); the model returns \(got.shape)")
            }
            var report = VerifyReport(got: got.floats(), want: want.floats(), classes: got.shape.last ?? 1, atol: atol, rtol: rtol)
            if !report.pass {
                report.explanation = try VerifyExplanation.explaining(loaded.model, x, want: want, atol: atol, rtol: rtol)
            }
            return report
        }
        Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        if !report.pass { throw ExitCode(ExitCodes.checkFailed) }
    }
}

/// Comparison of logits with reference logits (the `--json` document of `verify`).
struct VerifyReport: Encodable {
    var maxAbs: Float, maxRel: Float, cosine: Double
    var top1Agree: Int, samples: Int
    var atol: Float, rtol: Float
    var pass: Bool
    /// For a failed check of a quantized model: whether near-boundary flips explain it.
    var explanation: VerifyExplanation? = nil

    enum CodingKeys: String, CodingKey {
        case maxAbs = "max_abs", maxRel = "max_rel", cosine, top1Agree = "top1_agree", samples, atol, rtol, pass, explanation
    }

    init(got: [Float], want: [Float], classes: Int, atol: Float, rtol: Float) {
        var maxAbs: Float = 0, maxRel: Float = 0, dot = 0.0, na = 0.0, nb = 0.0
        var pass = true
        for (a, b) in zip(got, want) {
            let d = abs(a - b)
            if d > maxAbs || d.isNaN { maxAbs = d }
            if b != 0 { maxRel = max(maxRel, d / abs(b)) }
            if !(d <= atol + rtol * abs(b)) { pass = false }
            dot += Double(a) * Double(b)
            na += Double(a) * Double(a)
            nb += Double(b) * Double(b)
        }
        func argmax(_ v: ArraySlice<Float>) -> Int { v.indices.max { v[$0] < v[$1] || (v[$0] == v[$1] && $0 > $1) }! }
        var agree = 0
        let n = got.count / max(classes, 1)
        for s in 0..<n where argmax(got[(s * classes)..<((s + 1) * classes)]) == argmax(want[(s * classes)..<((s + 1) * classes)]) {
            agree += 1
        }
        self.maxAbs = maxAbs
        self.maxRel = maxRel
        cosine = na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : (na == nb ? 1 : 0)
        top1Agree = agree
        samples = n
        self.atol = atol
        self.rtol = rtol
        self.pass = pass
    }

    var text: String {
        """
        max abs error  \(maxAbs)
        max rel error  \(maxRel)
        cosine         \(cosine)
        top-1 agree    \(top1Agree)/\(samples)
        \(pass ? "PASS" : "FAIL") (atol \(atol), rtol \(rtol))
        """ + (explanation.map { "\n" + $0.text } ?? "")
    }
}
