import ArgumentParser
import Formats
import Tensors

/// `qtools inspect FILE`: format, entries, tensors, quantizer parameters, statistics.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors, quantizer parameters and entries of a checkpoint or ONNX model.",
        discussion: """
            Reads PyTorch checkpoints (zip format, legacy pre-1.6 format, old tar format),
            safetensors, NumPy .npy/.npz, without Python and without running any pickled code.
            A packed model (.qpack, bnnpack) is validated (planes, padding bits, manifest) and
            its manifest listed: each layer's weight and input encoding, K = KH*KW*Cin/groups,
            the padding waste of its 64-bit rows, and the size against float32 weights.

            The state dict is found where QTool looks for it: the 'state_dict' key, then
            'model', then the file's root. Quantizer tensors (<layer>.quant_activation.*,
            .quant_weight.*) are grouped under their layer with their values.

            Examples:
              qtools inspect checkpoint.pth
              qtools inspect checkpoint.pth --stats --filter 'layer1\\..*weight'
              qtools inspect model.safetensors --json | jq '.tensors[0]'
              qtools inspect old.pth --strict     # fail if weights_only would refuse it
              qtools inspect model.qpack          # packed layers, K, padding waste, size ratio
            """)

    @Argument(help: "The file: a PyTorch checkpoint (zip, legacy, tar), safetensors, .npy, .npz or ONNX model.")
    var file: String

    @Flag(name: .long, help: "Compute min, max, mean, std, zero fraction and the levels of each tensor (reads every byte).")
    var stats = false

    @Option(name: .long, help: "Only list tensors whose name matches this regular expression.")
    var filter: String?

    @Flag(name: .long, help: "Fail (exit 65) if torch.load(weights_only=True) would refuse the file.")
    var strict = false

    @Flag(name: .customLong("verify-crc"), help: "Check the CRC-32 of every zip record.")
    var verifyCRC = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        try ExitCodes.reporting {
            let matcher = try NameFilter(filter)
            let opened = try ModelFile.open(path: file, verifyCRC: verifyCRC)
            let report = Inspector.inspect(
                opened.checkpoint, file: file, fileBytes: opened.fileBytes,
                options: .init(stats: stats, filter: matcher.test))
            if strict, let s = report.safety, !s.weightsOnlyLoadable {
                throw FormatError(
                    .unsafeGlobals(s.unsafeGlobals.isEmpty ? ["(rejected opcodes or container)"] : s.unsafeGlobals),
                    file: file)
            }
            Terminal.out(output.json ? try JSONOutput.render(report) : InspectRenderer.render(report, stats: stats))
        }
    }
}
