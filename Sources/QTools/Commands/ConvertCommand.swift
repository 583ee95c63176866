import ArgumentParser
import Formats
import Foundation
import QToolConfig
import Tensors

/// `qtools convert IN -o OUT`: rename keys, cast, change format, record the config.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Rename keys, cast dtypes and change the format of a checkpoint (written atomically).",
        discussion: """
            Steps run in this order: --strip-prefix, --map-from/--map-to, --rename, --add-prefix \
            (all on the state dict's keys), then --wrap/--unwrap, --dtype, --config. The state \
            dict is found where QTool looks for it: 'state_dict', then 'model', then the root.

            Renaming is exact: a mapping entry renames the one key equal to its source (tools.py \
            matched substrings and kept the old names beside the new ones; qtools does neither). \
            Two keys ending with one name are an error (exit 65) naming them. Entries that matched \
            no key are listed as unused rules (a warning, not an error).

            Mapping files are read as tools.py reads them: one name per line, surrounding blanks \
            and quotes removed, '#' lines and blank lines skipped; line i of --map-from maps to \
            line i of --map-to; 'p.{a, b}' on both sides expands to 'p.a', 'p.b'.

            --rename 'REGEX=REPLACEMENT' replaces every match like Python's re.sub; groups are \
            \\1 or \\g<name>. The first '=' separates the two parts.

            --dtype casts the state dict's floating tensors (round to nearest even, like torch's \
            .half()/.bfloat16()); integer tensors (num_batches_tracked, LQ codec_index) and \
            optimizer state are kept. The report gives the max abs error per tensor and overall.

            Formats (--format, else from the extension: .pth .pt .tar .ckpt .bin -> pt, \
            .safetensors, .npz): pt and pt-legacy keep the whole tree (epoch, best_acc, \
            optimizer, ...). safetensors keeps the state dict's tensors by name and scalars \
            (epoch, best_acc, None) as metadata strings, their types recorded in \
            'qtools.scalar_types'; npz keeps tensors and int/float/bool \
            scalars as 0-d arrays. Anything else (optimizer state, lists; for npz also str/None; \
            for a bare torch file, safetensors metadata) is refused (exit 64) unless \
            --drop-extra is given, and then listed as dropped. --wrap state_dict turns a bare \
            state dict (or safetensors file) into {'state_dict': ...} with its metadata as \
            entries (typed again as recorded: epoch an int, not '0'); --unwrap writes the state dict alone and drops the rest.

            --config CFG [-- OVERRIDES] validates the QTool config (as `qtools config show`) and \
            records it in the output as the string entry 'qtools_config' (JSON: the config's \
            text, overrides and FASTDIR/DELAY), read back by later commands. A bare torch state \
            dict has no place for it (add --wrap state_dict); npz cannot hold it.

            The output is written to a temporary file beside OUT, read back and checked (every \
            tensor bit-identical to what was meant to be written; --no-verify skips it), then \
            renamed onto OUT. A failure leaves nothing behind. The input is never modified: OUT \
            naming any file the command reads (the input, its ONNX external data, mapping files, \
            the config; same path or same file through any link) is refused with exit 64; an \
            existing OUT needs --force (else exit 73). '-' (stdout), devices and FIFOs are \
            written in place once the file is complete (the report then goes to stderr).

            ONNX (--to onnx, or an .onnx output; needs the config): writes the model the engine \
            builds. --onnx-format qcdq (default, opset 13: int8 weight levels + DequantizeLinear, \
            activations QuantizeLinear/Clip/DequantizeLinear), qdq-native (INT4/INT2 weights, \
            opset 21/25), float (exact quantized values, standard float ops) or qonnx: QONNX \
            Quant (newer qonnx calls it IntQuant) and BipolarQuant nodes of the domain \
            qonnx.custom_op.general, as FINN, hls4ml, Brevitas and qonnx read them; onnxruntime \
            cannot run them, `qtools run`/`verify` can. LQ-Nets quantizers and FATNN \
            activations (non-uniform) have no Quant form: qonnx refuses them naming the layer \
            (exit 65). \
            --opset 13...25, --keep-bn keeps every BatchNormalization, --softmax appends one.

            Packed (--to packed, or a .qpack output; needs the config): a binary or ternary \
            network in 1-2 bits per weight. Each conv whose quantized weight has exactly the \
            levels ±s per output channel (XNOR, XNOR++, wt_bin, 1-bit DoReFa/LSQ/LQ-Nets) \
            becomes one bit plane plus a scale per channel; {-s, 0, +s} (FATNN non-uniform, \
            --wt_level 3) becomes sign and mask planes. Bits are LSB-first along the input \
            channels of each tap (OHWI), 1 = -1, rows padded with 0 bits to 64. The stem, fc, \
            BN, real-valued skips and quantizer parameters stay float in the same file, with \
            the config, so `qtools run model.qpack --input x.npy` needs nothing else; \
            `qtools inspect model.qpack` lists each layer's encoding, K, padding waste and the \
            size against float32. The file is a safetensors file (Python: safetensors.numpy \
            load_file, then numpy.unpackbits(plane, bitorder="little")). A quantized layer \
            that is not really binary or ternary (an XNOR model with iteration <= --stable \
            passes floats through: train or run it with --stable -1; more than 3 levels) is \
            refused naming the layer and what was found (exit 65), unless --keep-float \
            stores it as float. The file is read back and each packed weight checked to \
            unpack to exactly the weight the float path uses (--no-verify skips it).

            Exit status: 0 done; 1 verification failed; 64 usage (bad options, missing \
            --drop-extra, OUT is the input); 65 malformed input, mapping or config, colliding \
            names; 66 input, mapping or config file missing; 73 output cannot be written.

            Examples:
              qtools convert torchvision.pth -o flexible.pth --map-from mf.txt --map-to mt.txt
              qtools convert ddp.pth -o model.safetensors --strip-prefix module. --drop-extra
              qtools convert fp.pth -o half.pth --dtype float16 --json
              qtools convert model.pth -o run.pth --config config.lsq.r18 -- --fm_bit 4
              qtools convert lsq.pth -o fp.pth --config config.lsq.r18 --to-fp
              qtools convert model.pth --config config.txt -o model.onnx --onnx-format qonnx
              qtools convert bireal.pth --config config.bireal -o bireal.qpack -- --stable -1
            """)

    @Argument(help: "The input: a PyTorch checkpoint (zip, legacy, tar), safetensors, .npy, .npz or ONNX file.")
    var input: String

    @Option(name: [.short, .customLong("output")], help: "The output file.")
    var output: String

    @Option(help: "Output format: pt, pt-legacy, safetensors or npz (default: from the output's extension).")
    var format: String?

    @Option(name: .customLong("map-from"), help: "Mapping file of source key names (tools.py --mapping_from).")
    var mapFrom: String?

    @Option(name: .customLong("map-to"), help: "Mapping file of target key names (tools.py --mapping_to).")
    var mapTo: String?

    @Option(help: "Regex rewrite of key names, REGEX=REPLACEMENT (repeatable, applied in order).")
    var rename: [String] = []

    @Option(name: .customLong("strip-prefix"), help: "Remove this prefix from the keys that start with it, e.g. module. (repeatable).")
    var stripPrefix: [String] = []

    @Option(name: .customLong("add-prefix"), help: "Add this prefix to every key.")
    var addPrefix: String?

    @Option(help: "Put the state dict under this key of the output root (e.g. state_dict).")
    var wrap: String?

    @Flag(help: "Write the state dict alone as the output root (tools.py's raw), dropping other entries.")
    var unwrap = false

    @Option(help: "Cast floating tensors of the state dict to float16, bfloat16 or float32.")
    var dtype: String?

    @Flag(name: .customLong("drop-extra"), help: "Allow dropping entries the output format cannot hold (listed in the report).")
    var dropExtra = false

    @Option(help: "Record this QTool config (validated) in the output as 'qtools_config'; main.py overrides follow (after `--` or not).")
    var config: String?

    @Flag(help: "Replace an existing output file.")
    var force = false

    @Flag(name: .customLong("no-verify"), help: "Do not read the written file back to check it.")
    var noVerify = false

    @OptionGroup var engine: EngineConvertOptions

    // ONNX export (ConvertCommand+ONNX.swift).
    @Option(
        name: .customLong("to"),
        help:
            "Target: onnx writes the model built from --config as an ONNX graph (also chosen by an .onnx output); packed writes binary/ternary layers as bit planes (bnnpack, also chosen by a .qpack output)."
    )
    var target: String?

    @Flag(
        name: .customLong("keep-float"),
        help: "--to packed: store a quantized layer that is not binary or ternary as float instead of refusing it.")
    var keepFloat = false

    @Option(
        name: .customLong("onnx-format"),
        help:
            "ONNX form of quantized layers: qcdq (default, opset 13), qdq-native (INT4/INT2 weights, opset 21/25), float, or qonnx (QONNX Quant/BipolarQuant nodes; not runnable by onnxruntime)."
    )
    var onnxFormat: String?

    @Option(parsing: .unconditional, help: "ONNX ai.onnx opset, 13...25 (default 13; qdq-native raises it to 21/25 when needed).")
    var opset: Int?

    @Flag(name: .customLong("keep-bn"), help: "ONNX: keep BatchNormalization nodes (default: fold them into float convs).")
    var keepBN = false

    @Flag(help: "ONNX: append a Softmax over the classes.")
    var softmax = false

    @OptionGroup var outputOptions: OutputOptions

    @Argument(parsing: .allUnrecognized, help: "main.py options applied after --config's (after `--` or not).")
    var givenOverrides: [String] = []

    /// The QTool overrides (see ``QToolOverrides``).
    var overrides: [String] { QToolOverrides.normalized(givenOverrides) }

    func run() throws {
        try ExitCodes.reporting { try refuseInapplicableOptions() }
        if writesONNX { return try runONNXExport() }
        if writesPacked { return try runPackedExport() }
        try ExitCodes.reporting {
            let conversion = try makeConversion()
            let big = ((try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0) > 64 << 20
            let quiet = outputOptions.quiet || !big
            defer { Terminal.endProgress(quiet: quiet) }
            let report = try conversion.run(
                inputPath: input, outputPath: output, overwrite: force, alsoReading: [mapFrom, mapTo, config],
                progress: { Terminal.progress("qtools convert: \($0)", quiet: quiet) })
            if !report.unusedRules.isEmpty {
                Terminal.warning(
                    "\(report.unusedRules.count) renaming rule(s) matched no key: "
                        + report.unusedRules.prefix(8).joined(separator: ", "), quiet: outputOptions.quiet)
            }
            let text = outputOptions.json ? try JSONOutput.render(report) : ConvertRenderer.render(report)
            if OutputSafety.isStandardOutput(output) {
                if !outputOptions.quiet { Terminal.writeErr(text + "\n") }  // stdout carries the file
            } else {
                Terminal.out(text)
            }
        }
    }

    /// The ``Conversion`` the options describe.
    func makeConversion() throws -> Conversion {
        guard let format = try format.map(Self.parseFormat) ?? OutputFormat.forPath(output) else {
            throw UsageError("cannot tell the output format from '\(output)'; add --format pt|pt-legacy|safetensors|npz")
        }
        guard (mapFrom == nil) == (mapTo == nil) else {
            throw UsageError("--map-from and --map-to go together")
        }
        if unwrap && wrap != nil { throw UsageError("--wrap and --unwrap exclude each other") }
        if !overrides.isEmpty && config == nil {
            throw UsageError(
                "'\(overrides.joined(separator: " "))' \(overrides.count == 1 ? "is" : "are") not convert options; "
                    + "as QTool options they need --config (see qtools convert --help)")
        }
        var renamer = KeyRenamer(stripPrefixes: stripPrefix, regexRules: [], addPrefix: addPrefix)
        if let mapFrom, let mapTo { renamer.mapping = try MappingFile.load(fromPath: mapFrom, toPath: mapTo) }
        renamer.regexRules = try rename.map { try RegexRename(parsing: $0) }
        var steps: [any ConversionStep] = []
        if !renamer.isIdentity { steps.append(RenameKeys(renamer)) }
        if let wrap { steps.append(Rewrap(.wrap(wrap))) }
        if unwrap { steps.append(Rewrap(.unwrap)) }
        var narrowing: DType?
        if let dtype {
            guard let t = DType(rawValue: dtype) else {
                throw UsageError("--dtype must be float16, bfloat16 or float32 (got '\(dtype)')")
            }
            steps.append(try CastFloatingTensors(to: t))
            if t.byteWidth < 4 { narrowing = t }
        }
        let engineSteps = try engine.plan(input: input, config: config, overrides: overrides, castTo: narrowing)
        if let engineSteps {
            steps = engineSteps.steps + steps  // on the input's keys; renaming etc. after
        } else if let config {
            let (record, options) = try ConfigRecord.load(
                path: config, overrides: overrides, environment: ProcessInfo.processInfo.environment)
            steps.append(RecordConfig(record, options: options))
        }
        return Conversion(
            format: format, steps: steps, dropExtra: dropExtra,
            verifiers: noVerify ? [] : [WrittenTensorsVerifier()] + (engineSteps.map { [$0.verifier] } ?? []))
    }

    static func parseFormat(_ s: String) throws -> OutputFormat {
        guard let f = OutputFormat(rawValue: s) else {
            throw UsageError("--format must be pt, pt-legacy, safetensors or npz (got '\(s)')")
        }
        return f
    }
}
