import ArgumentParser
import Engine
import Formats
import Foundation
import Models
import Tensors

/// `qtools run MODEL [--config CFG] [--input x.npy] [--output y.npy] [QTool options...]`.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a QTool checkpoint natively and print its logits and top-5 classes.",
        discussion: """
            The model is built from the QTool config (--config, or the one recorded in the \
            checkpoint) and the checkpoint's state dict, bound by name: a missing, extra or \
            mis-shaped tensor is an error naming it. QTool options after the arguments \
            (after `--` or not) override the config (e.g. --width_alpha 0.125 for a model-zoo \
            name). A bit width an LSQ checkpoint's level_num fixes has no effect, as in QTool, \
            and is reported. MODEL may also be a model-zoo name (pytorch-resnet18, resnet18 \
            --keyword ...) for random weights, or an ONNX graph (QTool options do not apply), \
            or a packed binary/ternary model (model.qpack from `qtools convert --to packed`, \
            which carries its config).

            Without --input the input is seeded N(0,1) noise of the model's size \
            ([1, 3, input_size, input_size]; an ONNX graph's declared input shape).

            --output is checked before any work: it must not be the checkpoint, the config or \
            the input (same file through any path or link; exit 64), and an existing regular \
            file needs --force (exit 73). A regular file is written to a temporary file beside \
            it and renamed over it; '-' (stdout), /dev/stdout, devices and FIFOs are written in \
            place, and the text report then goes to stderr.

            Examples:
              qtools run checkpoint.pth --config config.txt --input x.npy --output logits.npy
              qtools run checkpoint.pth --config config.txt --json | jq '.samples[0].top5'
              qtools run checkpoint.pth --config config.txt --input x.npy --dump layers/
              qtools run model.qpack --input x.npy --output logits.npy

            --dump DIR writes the input and every layer value the run computes as DIR/<name>.npy \
            (named by module path, e.g. layer1.0.conv1.0.quant_activation.npy; `/` becomes `_`) \
            and DIR/index.json (name -> file, shape, op, order, inputs). With the default \
            --engine fast the values are exactly those of a normal run; a value the engine fuses \
            into the next step (a conv whose batch norm and ReLU are folded in) has no file, and \
            index.json names the value it was fused into. --engine unfused (fast kernels, no \
            fusion) or reference (naive kernels) compute every value. Compare two dumps with \
            `qtools verify --layers DIR_A DIR_B`.

            --conditioning lists every quantizer input that lies within --ulps float32 steps             (default 16) of a level boundary, and reruns the model with each of them (the 16             closest) on its other level to measure how far the logits move. A low-bit network             is a step function: such an input lands on either level depending on the order in             which an engine sums, so PyTorch, onnxruntime and qtools can all be right and             disagree by a whole level there (README, "Ill-conditioned inputs").
            """)

    @Argument(help: "A checkpoint file (or a model-zoo name for random weights).")
    var model: String

    @Option(name: .long, help: "Input images as a float32 NCHW .npy file.")
    var input: String?

    @Option(name: .long, help: "Write the logits [N, classes] to this .npy file (atomically; '-' or a device/FIFO is written in place).")
    var output: String?

    @Flag(
        help:
            "Replace an existing --output file; with --dump, write into a directory that is not empty (files of the same names are replaced)."
    )
    var force = false

    @Option(name: .long, parsing: .unconditional, help: "Seed of the random input (without --input).")
    var seed: UInt64 = 0

    @Option(name: .long, parsing: .unconditional, help: "Threads.")
    var threads: Int = 2

    @Option(name: .long, help: "Write every layer value as DIR/<module path>.npy plus DIR/index.json.")
    var dump: String?

    @Option(
        name: .long,
        help:
            "Executor: fast (what run uses: binary and ternary convs on the bit-packed kernels, and with AVX-512 VNNI uniform quantized convs - LSQ, DoReFa, PACT - on the exact int8 kernels), float (every conv as a float conv: the fake-quant path), int8 (fast, with the int8 kernels on any CPU), unfused (fast kernels, no fusion) or reference (naive kernels)."
    )
    var engine: RunEngine = .fast

    @Flag(help: "List quantizer inputs within --ulps of a level boundary and how far flipping each moves the logits.")
    var conditioning = false

    @Option(name: .long, help: "With --conditioning: the band, in float32 steps of the value (>= 1).")
    var ulps: Int = 16

    @OptionGroup var out: OutputOptions

    @OptionGroup var modelOptions: ModelOptions
    var config: String? { modelOptions.config }
    var overrides: [String] { modelOptions.overrides }

    func validate() throws {
        try OptionChecks.atLeast("--threads", threads, 1)
        try OptionChecks.atLeast("--ulps", ulps, 1)
        if ulps != 16 && !conditioning { throw ValidationError("--ulps applies to --conditioning only") }
        if conditioning && ![.fast, .float, .int8].contains(engine) {
            throw ValidationError("--conditioning probes the fast engine's run (the one qtools run uses); drop --engine \(engine.rawValue)")
        }
    }

    func run() throws {
        if dump != nil || ![.fast, .float, .int8].contains(engine) || conditioning { return try runCapturing() }
        try ExitCodes.reporting {
            // The output is checked (and its temporary file created) before any work.
            let modelFile = FileManager.default.fileExists(atPath: model) ? model : nil
            let sink = try output.map { try OutputFile(path: $0, overwrite: force, reading: [modelFile, config, input]) }
            let given = try input.map { try ModelIO.float32(ModelIO.read($0)) }
            // Planned for the input's shape; the loaded graph and its weights are gone after this.
            let planned = try PlannedModel(
                model: model, config: config, overrides: overrides, engine: engine
            ) {
                if let given { return try ModelIO.batch(given, for: $0).shape }
                return $0.inputShape()
            }
            if planned.randomWeights { Terminal.warning("\(model): random weights (no checkpoint)", quiet: out.quiet) }
            let x = given ?? SplitMix64.normalTensor(shape: planned.inputShape, seed: seed)
            let logits = try planned.logits(x, threads: threads)
            if let sink {
                try sink.refuse(reading: planned.externalFiles)
                try ModelIO.write(logits, to: sink)
            }
            let report = RunReport(model: planned.name, input: x.shape, logits: logits)
            let text = out.json ? try JSONOutput.render(report) : report.text
            if let output, OutputSafety.isStandardOutput(output) {
                if !out.quiet { Terminal.writeErr(text + "\n") }  // stdout carries the .npy
            } else {
                Terminal.out(text)
            }
        }
    }
}

/// The result of `qtools run` (the `--json` document).
struct RunReport: Encodable {
    struct Entry: Encodable {
        var `class`: Int
        var logit: Float
    }
    struct Sample: Encodable {
        var top5: [Entry]
        var logits: [Float]
    }
    var model: String
    var inputShape: [Int]
    var samples: [Sample]
    /// `--dump`: the directory and how many values it holds as files.
    var dump: DumpSummary? = nil
    /// `--conditioning`: the quantizer inputs near a level boundary.
    var conditioning: ConditioningReport? = nil

    struct DumpSummary: Encodable {
        var directory: String
        var engine: String
        var values: Int
        var files: Int
    }

    enum CodingKeys: String, CodingKey { case model, inputShape = "input_shape", samples, dump, conditioning }

    init(model: String, input: [Int], logits: Tensor) {
        self.model = model
        inputShape = input
        let v = logits.floats()
        let classes = logits.shape.last ?? 1
        samples = stride(from: 0, to: v.count, by: classes).map { start in
            let row = Array(v[start..<(start + classes)])
            let top = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(5)
            return Sample(top5: top.map { Entry(class: $0, logit: row[$0]) }, logits: row)
        }
    }

    var text: String {
        var lines = ["model \(model), input \(inputShape)"]
        for (i, s) in samples.enumerated() {
            lines.append("sample \(i): top-5 " + s.top5.map { "\($0.class) (\($0.logit))" }.joined(separator: ", "))
        }
        if let d = dump {
            lines.append("dumped \(d.files) layer values (of \(d.values); the rest fused) to \(d.directory) (engine \(d.engine))")
        }
        if let c = conditioning { lines.append(c.text) }
        return lines.joined(separator: "\n")
    }
}
