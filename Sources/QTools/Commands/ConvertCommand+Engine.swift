import ArgumentParser
import Engine
import Formats
import Foundation
import Models
import QToolConfig
import Tensors

/// The options of `qtools convert` that need the inference engine: `--fold-bn` and the
/// keyword-variant conversion (`--to-config`, `--to-model`, `--to-keyword`).
struct EngineConvertOptions: ParsableArguments {
    @Flag(
        name: .customLong("fold-bn"),
        help:
            "Fold every BN that follows a conv/linear into it (recorded as keyword qtools_folded_bn); verified in the engine (1e-4 relative)."
    )
    var foldBN = false

    @Option(
        name: .customLong("to-config"),
        help:
            "Re-key the checkpoint for this QTool config (another variant of the same network); --config or the recorded config is the source."
    )
    var toConfig: String?

    @Option(name: .customLong("to-model"), help: "Target --model (with the source config's other options).")
    var toModel: String?

    @Option(name: .customLong("to-keyword"), help: "Target --keyword list (with the source config's other options).")
    var toKeyword: String?

    @Flag(
        name: .customLong("to-fp"),
        help:
            "Target: the same network in full precision (quantizers disabled, quantizer keywords removed, quantizer tensors dropped); no config to edit."
    )
    var toFullPrecision = false

    @Option(
        name: .customLong("tolerance"), parsing: .unconditional,
        help:
            "Engine check: largest relative logit difference (of the peak logit) accepted (default 1e-4 for --fold-bn, 1e-5 for full-precision targets)."
    )
    var tolerance: Double?

    func validate() throws {
        try OptionChecks.nonNegative("--tolerance", tolerance)
    }

    var active: Bool { foldBN || variant }

    /// A variant conversion is asked for (the target differs from the source config).
    var variant: Bool { toConfig != nil || toModel != nil || toKeyword != nil || toFullPrecision }

    /// The engine steps, the config record step and the engine verifier; nil when no engine
    /// option is given. `config`/`overrides` are convert's `--config` and `-- ...` options
    /// (the source; without `--config` the input's recorded `qtools_config`).
    /// `castTo`: convert's `--dtype` when it narrows floats (the check allows for the cast's own error).
    func plan(
        input: String, config: String?, overrides: [String], castTo: DType? = nil
    ) throws
        -> (steps: [any ConversionStep], verifier: any ConversionVerifier)?
    {
        guard active else { return nil }
        let env = ProcessInfo.processInfo.environment
        let source: ConfigRecord
        if let config {
            source = try ConfigRecord.load(path: config, overrides: overrides, environment: env).record
        } else {
            guard let recorded = try ConfigRecord.read(from: ModelFile.open(path: input).checkpoint) else {
                throw UsageError("\(input) records no config; pass --config CFG (the source model's QTool config)")
            }
            source = recorded
        }
        let sourceOptions = try source.options()
        var steps: [any ConversionStep] = []
        var options = sourceOptions
        var record = source
        var tolerance = self.tolerance
        if variant {
            if let toConfig {
                record = try ConfigRecord.load(path: toConfig, overrides: overrides, environment: env).record
            }
            if let toModel { record.overrides += ["--model", toModel] }
            if let toKeyword { record.overrides += ["--keyword", toKeyword] }
            if toFullPrecision { record.fullPrecision = true }
            let target = try record.options()
            let step = try VariantConversionStep(source: sourceOptions, target: target)
            steps.append(step)
            options = target
            if tolerance == nil && !step.targetQuantized && !step.sourceQuantized { tolerance = 1e-5 }
        }
        if foldBN {
            steps.append(FoldBatchNormStep(options: options))
            record.overrides += BatchNormFolding.foldedKeywordOverride(options)
            options = try record.options()
            if tolerance == nil { tolerance = 1e-4 }
        }
        steps.append(RecordConfig(record, options: options))
        let informational = variant && !foldBN && tolerance == nil
        let verifier = EngineVerifier(
            source: sourceOptions, target: options, tolerance: informational ? nil : tolerance, castTo: castTo)
        return (steps, verifier)
    }
}
