import Engine
import Formats
import Foundation
import Models
import QToolConfig
import Tensors

/// Resolves the `MODEL [--config CFG] [QTool options...]` arguments of run, trace, verify and
/// bench into a built model.
///
/// `MODEL` is a checkpoint file (its state dict is bound by name), or a model-zoo name such as
/// `pytorch-resnet18` (seeded random weights; full-precision models only). The options come
/// from `--config`, else from a `qtools_config` string entry recorded in the checkpoint, else
/// (zoo names only) from the defaults; QTool options given on the command line are applied on
/// top, so `--width_alpha 0.125` overrides the config.
struct ModelLoader {
    /// The built model.
    var model: BuiltModel
    /// The options it was built from.
    var options: QToolOptions
    /// True when the weights are random (no checkpoint).
    var randomWeights: Bool
    /// Files read besides the model and the config (ONNX external data): no output may be one.
    var externalFiles: [String] = []

    /// The checkpoint entry a config may be recorded under.
    static let configEntry = "qtools_config"

    /// Loads and builds; see the type's summary. `shapesOnly` makes random weights zeros
    /// (fast; for `trace`). `packedPlanes` builds a packed file with its planes kept and zero
    /// placeholders for their weights (``BuiltModel/packedWeights``): only for a caller that
    /// runs ``BinaryConvLowering/lower(_:planes:)`` on the graph.
    init(
        model name: String?, config: String?, overrides given: [String], shapesOnly: Bool = false,
        packedPlanes: Bool = false
    ) throws {
        let overrides = QToolOverrides.normalized(given)
        let fileExists = name.map { FileManager.default.fileExists(atPath: $0) } ?? false
        let env = ProcessInfo.processInfo.environment
        var options: QToolOptions
        if let name, fileExists, name.hasSuffix(".onnx") {
            // An ONNX graph (ModelLoader+ONNX.swift); QTool options do not apply.
            guard overrides.isEmpty else {
                throw UsageError("QTool options (\(overrides.joined(separator: " "))) do not apply to the ONNX graph \(name)")
            }
            (self.model, options, externalFiles) = try Self.onnx(name)
            randomWeights = false
        } else if let name, fileExists {
            let entries: [(name: String, tensor: Tensor)]
            (options, entries) = try Self.checkpoint(name, config: config, overrides: given)
            // A packed file is a safetensors file (sniffed from its first bytes: no second parse of a .pth).
            let isSafeTensors = FileSniffer.sniff(try ByteStore.map(path: name).all) == .safetensors
            let manifest = isSafeTensors ? try PackedModelBuilder.manifest(ModelFile.open(path: name).checkpoint) : nil
            do {
                if let manifest {
                    // A packed file (.qpack): its planes (unpacked unless kept), its float tensors as a state dict.
                    self.model = try PackedModelBuilder.build(
                        options: options, manifest: manifest, tensors: entries, planes: packedPlanes)
                } else {
                    self.model = try ModelBuilder.build(options: options, stateDict: entries)
                }
            } catch { throw ModelLoadError(file: name, error: error) }
            randomWeights = false
            if let first = model.ignoredLevels.first {
                let n = model.ignoredLevels.count
                Terminal.warning(
                    "the config's bit width has no effect on \(n) LSQ quantizer\(n == 1 ? "" : "s"): as in QTool, "
                        + "they compute with the checkpoint's level_num (\(first)\(n > 1 ? "; ..." : ""))")
            }
        } else {
            let fileSuffixes = [".pth", ".pt", ".tar", ".ckpt", ".bin", ".onnx", ".safetensors", ".npz", ".qpack"]
            if let name, name.contains("/") || fileSuffixes.contains(where: { name.lowercased().hasSuffix($0) }) {
                _ = try ModelFile.open(path: name)  // reports the missing file (exit 66)
            }
            if let config {
                options = try QToolOptions(config: ConfigFile(contentsOf: config, environment: env))
            } else {
                options = QToolOptions()
            }
            if let name { options = try options.applying(arguments: ["--model", name]) }
            options = try options.applying(arguments: overrides)
            guard name != nil || config != nil else { throw UsageError("give a checkpoint, a model name or --config") }
            self.model = try ModelBuilder.buildRandom(options: options, seed: shapesOnly ? nil : 0)
            randomWeights = true
        }
        self.options = options
    }
}

extension ModelLoader {
    /// The options and the state dict (materialised, in file order) of checkpoint `path`:
    /// options from `config`, else the config recorded in the checkpoint, then `overrides`.
    static func checkpoint(
        _ path: String, config: String?, overrides given: [String]
    ) throws
        -> (options: QToolOptions, stateDict: [(name: String, tensor: Tensor)])
    {
        let overrides = QToolOverrides.normalized(given)
        let env = ProcessInfo.processInfo.environment
        let opened = try ModelFile.open(path: path, verifyCRC: true)  // the weights are read whole
        var options: QToolOptions
        if let config {
            options = try QToolOptions(config: ConfigFile(contentsOf: config, environment: env))
        } else if let record = (try? ConfigRecord.read(from: opened.checkpoint)) ?? nil {
            options = try record.options()  // written by `convert --config` (JSON record)
        } else if case .string(let text)? = opened.checkpoint.root.dict?[configEntry] {
            options = try QToolOptions(
                config: ConfigFile(text: text, path: "\(path):\(configEntry)", environment: env))
        } else {
            throw UsageError("\(path) records no config; pass --config CFG (the QTool config the checkpoint was trained with)")
        }
        options = try options.applying(arguments: overrides)
        if let config, options.model == "unknow" {
            // QTool's default model: the config set none (an empty file?); not the checkpoint's fault.
            throw UsageError("the config \(config) sets no model (no model=... line; is it empty or not a QTool config?)")
        }
        guard let sd = opened.checkpoint.stateDict() else {
            throw FormatError(.notACheckpoint("no state dict (no 'state_dict' or 'model' entry and no tensors at the root)"), file: path)
        }
        // Scalars beside the weights (`epoch`, `best_acc`, `learning_rate` of a flat npz or
        // safetensors file qtools wrote from a training checkpoint) are no parameters: every
        // parameter of a QTool model has a module path, so a 0-d tensor without one is skipped.
        var entries = sd.entries.filter { $0.name.contains(".") || !$0.tensor.shape.isEmpty }
            .map { (name: $0.name, tensor: $0.tensor.materialize()) }
        // A DataParallel checkpoint: every key under `module.`. QTool's load_state_dict drops
        // the first key component in that case; so do we, and say so.
        let prefix = "module."
        if !entries.isEmpty, entries.allSatisfy({ $0.name.hasPrefix(prefix) }) {
            entries = entries.map { (String($0.name.dropFirst(prefix.count)), $0.tensor) }
            Terminal.warning(
                "\(path): every key starts with '\(prefix)' (a DataParallel checkpoint); read without it, as QTool's "
                    + "load_state_dict does (qtools convert --strip-prefix \(prefix) writes it so)")
        }
        return (options, entries)
    }
}

/// A model that does not fit its checkpoint (a missing, extra or mis-shaped tensor), with the file.
struct ModelLoadError: Error, CustomStringConvertible {
    var file: String
    var error: InferenceError
    var description: String { "\(file): \(error)" }
}

/// Seeded input and NumPy helpers shared by the model commands.
enum ModelIO {
    /// Reads a float32 `.npy` array.
    static func read(_ path: String) throws -> Tensor {
        let store = try ByteStore.map(path: path)
        do {
            return try NpyReader.readArray(store.all)
        } catch var e as FormatError {
            if e.file == nil { e.file = path }
            throw e
        }
    }

    /// Writes `t` as `.npy` into `f` (created before the work, see ``OutputFile``) and commits.
    static func write(_ t: Tensor, to f: OutputFile) throws {
        try NpyWriter.write(t, to: f)
        try f.commit()
    }

    /// Runs `model` on `x` (`[N, C, H, W]`, C the model's input channels); returns the logits.
    static func logits(_ model: BuiltModel, _ x: Tensor, threads: Int = 2) throws -> Tensor {
        let batch = try Self.batch(x, for: model)
        let plan = try Plan(graph: model.graph, inputShapes: [model.input: batch.shape])
        try MemoryLimits.check(plan, model: model.model)
        let out = try Executor(plan: plan, threads: threads).run([model.input: batch])
        return out[model.output]!
    }

    /// `x` as float32, checked to be an input `model` takes (see ``BuiltModel/accepts(_:)``).
    static func batch(_ x: Tensor, for model: BuiltModel) throws -> Tensor {
        guard model.accepts(x.shape) else {
            let s = x.shape
            let nhwc = s.count == 4 && model.accepts([s[0], s[3], s[1], s[2]])
            throw UsageError(
                "the input must be \(model.inputDescription); got \(s)"
                    + (nhwc ? " (channels last: NHWC? transpose it to NCHW, e.g. numpy x.transpose(0, 3, 1, 2))" : ""))
        }
        return float32(x)
    }

    /// `x` as float32.
    static func float32(_ x: Tensor) -> Tensor {
        x.dtype == .float32 ? x : Tensor(floats: x.floats(), shape: x.shape)
    }

    /// `x` as float32, checked to be `[N, C, H, W]` (C = `channels` when given; the QTool
    /// networks take 3, an imported ONNX graph what its input declares).
    static func imageBatch(_ x: Tensor, channels: Int? = nil) throws -> Tensor {
        guard x.shape.count == 4, channels.map({ x.shape[1] == $0 }) ?? true else {
            throw UsageError("the input must be [N, \(channels.map(String.init) ?? "C"), H, W]; got \(x.shape)")
        }
        return x.dtype == .float32 ? x : Tensor(floats: x.floats(), shape: x.shape)
    }
}
