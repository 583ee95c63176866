import ArgumentParser
import Engine
import Formats
import Foundation
import Models

/// `qtools bench MODEL [--config CFG] [--size S] [--batch N] [--threads T] [--runs N] [--json]`.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model's forward pass: median/min/max latency and per-op time shares.",
        discussion: """
            MODEL is a checkpoint (with --config) or a model-zoo name with random weights, e.g. \
            `qtools bench pytorch-resnet18` (torchvision layout, 224x224). Warm-up runs are not \
            timed; the per-op shares come from extra profiled runs. Compare numbers only on the \
            same machine.

            It also reports the process's peak resident memory (peak_rss_bytes, Linux) against \
            the memory anchor weights + 2 x largest activation set + 64 MiB: weight_bytes is the \
            model's parameters as float32, largest_activation_bytes the most activation bytes \
            live at one time for this input shape, memory_anchor_bytes their sum as above and \
            memory_anchor_met whether the peak is within it (packed_weight_bytes and \
            arena_bytes are the engine's own buffers).

            --binary-gemm (no MODEL) times the bit-packed binary convolution instead: its XOR + \
            popcount GEMM core, the whole layer and the engine's float conv of the same shape, on \
            one thread, for ResNet-18's four 3x3 stage shapes and every popcount code path this \
            CPU runs (or --path), in G bit-MAC/s.

            Examples:
              qtools bench pytorch-resnet18 --runs 20 --json | jq .median_ms
              qtools bench checkpoint.pth --config config.txt --batch 8
              qtools bench --binary-gemm --json | jq '.results[] | [.path, .gemm_gbitmacs_per_second]'
            """)

    @Argument(help: "A checkpoint file or a model-zoo name (random weights); none with --binary-gemm.")
    var model: String?

    @Option(
        name: .long,
        help:
            "fast (binary and ternary convs on the bit-packed kernels, and with AVX-512 VNNI uniform quantized convs - LSQ, DoReFa, PACT - on the exact int8 kernels), float (every conv as a float conv: the fake-quant path) or int8 (fast, with the int8 kernels on any CPU)."
    )
    var engine: RunEngine = .fast

    @Flag(name: .customLong("binary-gemm"), help: "Time the bit-packed binary conv kernels (see BenchCommand+BinaryGemm).")
    var binaryGemm = false

    @Option(name: .long, parsing: .unconditional, help: "With --binary-gemm: one popcount code path (portable, popcnt, avx2, avx512).")
    var path: String?

    @Option(name: .long, parsing: .unconditional, help: "Input resolution (default: the model's input_size).")
    var size: Int?

    @Option(name: .long, parsing: .unconditional, help: "Batch size.")
    var batch: Int = 1

    @Option(name: .long, parsing: .unconditional, help: "Threads.")
    var threads: Int = 2

    @Option(name: .long, parsing: .unconditional, help: "Timed runs.")
    var runs: Int = 20

    @Option(name: .long, parsing: .unconditional, help: "Untimed warm-up runs.")
    var warmup: Int = 3

    @Flag(name: .long, help: "Time training steps (forward, backward, SGD) instead of inference (see BenchCommand+Train).")
    var train = false

    @Flag(name: .long, help: "With --train: the exact path (double GEMMs, one thread) instead of the fast float32 one.")
    var exact = false

    @OptionGroup var out: OutputOptions

    @OptionGroup var modelOptions: ModelOptions
    var config: String? { modelOptions.config }
    var overrides: [String] { modelOptions.overrides }

    func validate() throws {
        if binaryGemm {
            if model != nil { throw ValidationError("--binary-gemm takes no MODEL") }
            if train { throw ValidationError("--binary-gemm and --train are separate benchmarks") }
        } else {
            if model == nil { throw ValidationError("missing MODEL (a checkpoint or a model-zoo name)") }
            if path != nil { throw ValidationError("--path applies to --binary-gemm") }
        }
        if ![.fast, .float, .int8].contains(engine) { throw ValidationError("bench --engine: fast, float or int8") }
        try OptionChecks.atLeast("--batch", batch, 1)
        try OptionChecks.atLeast("--threads", threads, 1)
        try OptionChecks.atLeast("--runs", runs, 1)
        try OptionChecks.atLeast("--warmup", warmup, 0)
        try OptionChecks.atLeast("--size", size, 1)
    }

    func run() throws {
        if binaryGemm { return try runBinaryGemm() }
        if train { return try runTrain() }
        guard let model else { throw ValidationError("missing MODEL") }
        try ExitCodes.reporting {
            // Only the plan is kept: the loaded graph and its weights are gone after this.
            let planned = try PlannedModel(
                model: model, config: config, overrides: overrides, engine: engine
            ) {
                $0.inputShape(batch: batch, size: size)
            }
            let r = try EngineBenchmark.measure(
                plan: planned.plan, anchor: planned.anchor, iterations: runs, warmup: warmup, threads: threads)
            var report = BenchReport(
                model: planned.name, inputShape: planned.inputShape, result: r, randomWeights: planned.randomWeights)
            report.binaryConvs = planned.binaryConvs
            report.integerConvs = planned.integerConvs
            report.integerKept = planned.integerKept.map { BenchReport.KeptConv(node: $0.node, reason: $0.reason) }
            Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        }
    }
}

/// The `--json` document of `bench`.
struct BenchReport: Encodable {
    /// One plan step: its primary graph node, op type and mean time per run.
    struct StepEntry: Encodable {
        var node: String, op: String, ms: Double
    }

    var model: String
    var inputShape: [Int]
    var threads: Int
    var runs: Int
    var medianMs: Double, minMs: Double, maxMs: Double
    var opShares: [String: Double]
    var opMs: [String: Double]
    var steps: Int
    var stepMs: [StepEntry]
    var arenaBytes: Int, packedWeightBytes: Int
    var randomWeights: Bool
    /// Peak resident memory of the process (nil without `/proc`).
    var peakRSSBytes: Int?
    /// The anchor's parts and total (``MemoryAnchor``).
    var weightBytes: Int, largestActivationBytes: Int, memoryAnchorBytes: Int
    /// `peakRSSBytes <= memoryAnchorBytes` (nil when the peak is unknown).
    var memoryAnchorMet: Bool?
    /// Convs running as bit-packed binary convs (0 with `--engine float`).
    var binaryConvs = 0
    /// Convs running as int8 integer convs (`--engine fast` with VNNI, or `int8`).
    var integerConvs = 0
    /// The int8 conv kernel this CPU runs: `direct-vnni` (without im2col; `--engine fast`
    /// lowers quantized convs to it), `gather-avx2` or `gather-portable` (exact, not faster
    /// than float: only `--engine int8` uses them).
    var integerKernel = IntegerConv.kernelName
    /// Quantized convs the int8 lowering kept float, and why (empty with `--engine float`).
    var integerKept: [KeptConv] = []

    struct KeptConv: Encodable {
        var node: String
        var reason: String
    }

    enum CodingKeys: String, CodingKey {
        case model, inputShape = "input_shape", threads, runs, medianMs = "median_ms", minMs = "min_ms",
            maxMs = "max_ms", opShares = "op_shares", opMs = "op_ms", steps, stepMs = "step_ms", arenaBytes = "arena_bytes",
            packedWeightBytes = "packed_weight_bytes", randomWeights = "random_weights",
            peakRSSBytes = "peak_rss_bytes", weightBytes = "weight_bytes",
            largestActivationBytes = "largest_activation_bytes", memoryAnchorBytes = "memory_anchor_bytes",
            memoryAnchorMet = "memory_anchor_met", binaryConvs = "binary_convs", integerConvs = "integer_convs",
            integerKernel = "integer_kernel", integerKept = "integer_kept"
    }

    init(model: String, inputShape: [Int], result r: EngineBenchmark.Result, randomWeights: Bool) {
        self.model = model
        self.inputShape = inputShape
        threads = r.threads
        runs = r.runsMs.count
        medianMs = r.medianMs
        minMs = r.minMs
        maxMs = r.maxMs
        opShares = r.shares
        opMs = r.opMilliseconds
        steps = r.steps
        stepMs = r.stepTimes.map { StepEntry(node: $0.nodes.first ?? "", op: $0.opType, ms: $0.milliseconds) }
        arenaBytes = r.arenaBytes
        packedWeightBytes = r.packedWeightBytes
        self.randomWeights = randomWeights
        peakRSSBytes = r.peakResidentBytes
        weightBytes = r.anchor.weightBytes
        largestActivationBytes = r.anchor.largestActivationBytes
        memoryAnchorBytes = r.anchor.totalBytes
        memoryAnchorMet = r.peakResidentBytes.map(r.anchor.isMet(byPeak:))
    }

    /// E.g. `memory: peak RSS 95.1 MiB, anchor 120.3 MiB = weights 44.6 + 2 x activations 3.8 + 64 MiB: met`.
    var memoryLine: String {
        func mib(_ b: Int) -> String { String(format: "%.1f", Double(b) / 1_048_576) }
        let peak = peakRSSBytes.map { "peak RSS \(mib($0)) MiB" } ?? "peak RSS unknown"
        let verdict = memoryAnchorMet.map { $0 ? ": met" : ": NOT met" } ?? ""
        return "memory: \(peak), anchor \(mib(memoryAnchorBytes)) MiB = weights \(mib(weightBytes)) + 2 x activations "
            + "\(mib(largestActivationBytes)) + \(MemoryAnchor.overheadBytes >> 20) MiB\(verdict)"
    }

    var text: String {
        func f(_ x: Double) -> String { String(format: "%.2f", x) }
        var lines = [
            "\(model) \(inputShape), \(threads) thread\(threads == 1 ? "" : "s"), \(runs) runs\(randomWeights ? " (random weights)" : "")",
            "median \(f(medianMs)) ms  min \(f(minMs)) ms  max \(f(maxMs)) ms",
            memoryLine,
        ]
        if binaryConvs > 0 {
            lines.append("\(binaryConvs) binary conv\(binaryConvs == 1 ? "" : "s") on the bit-packed kernels (--engine float: none)")
        }
        if integerConvs > 0 {
            lines.append(
                "\(integerConvs) integer conv\(integerConvs == 1 ? "" : "s") on the int8 kernels (\(integerKernel); --engine float: none)")
        }
        lines += [
            "per op type:"
        ]
        for (op, share) in opShares.sorted(by: { $0.value > $1.value }) {
            lines.append("  \(op.padding(toLength: 18, withPad: " ", startingAt: 0)) \(f(share * 100))%  \(f(opMs[op] ?? 0)) ms")
        }
        return lines.joined(separator: "\n")
    }
}
