import Formats
import Foundation
import Inference
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
    /// (fast; for `trace`).
    init(model name: String?, config: String?, overrides: [String], shapesOnly: Bool = false) throws {
        let fileExists = name.map { FileManager.default.fileExists(atPath: $0) } ?? false
        let env = ProcessInfo.processInfo.environment
        var options: QToolOptions
        if let name, fileExists, name.hasSuffix(".onnx") {
            // An ONNX graph (ModelLoader+ONNX.swift); QTool options do not apply.
            (self.model, options, externalFiles) = try Self.onnx(name)
            randomWeights = false
        } else if let name, fileExists {
            let opened = try ModelFile.open(path: name, verifyCRC: true)  // the weights are read whole
            if let config {
                options = try QToolOptions(config: ConfigFile(contentsOf: config, environment: env))
            } else if let record = (try? ConfigRecord.read(from: opened.checkpoint)) ?? nil {
                options = try record.options()  // written by `convert --config` (JSON record)
            } else if case .string(let text)? = opened.checkpoint.root.dict?[Self.configEntry] {
                options = try QToolOptions(
                    config: ConfigFile(text: text, path: "\(name):\(Self.configEntry)", environment: env))
            } else {
                throw UsageError("\(name) records no config; pass --config CFG (the QTool config the checkpoint was trained with)")
            }
            options = try options.applying(arguments: overrides)
            guard let sd = opened.checkpoint.stateDict() else {
                throw FormatError(.notACheckpoint("no state dict (no 'state_dict' or 'model' entry and no tensors at the root)"), file: name)
            }
            let entries = sd.entries.map { ($0.name, $0.tensor.materialize()) }
            do {
                self.model = try ModelBuilder.build(options: options, stateDict: entries)
            } catch { throw ModelLoadError(file: name, error: error) }
            randomWeights = false
        } else {
            if let name, name.contains("/") || name.hasSuffix(".pth") || name.hasSuffix(".pt") {
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

/// A model that does not fit its checkpoint (a missing, extra or mis-shaped tensor), with the file.
struct ModelLoadError: Error, CustomStringConvertible {
    var file: String
    var error: InferenceError
    var description: String { "\(file): \(error)" }
}

/// Seeded input and NumPy helpers shared by the model commands.
enum ModelIO {
    /// `[batch, 3, S, S]` values from N(0, 1) (Box-Muller over SplitMix64), seeded.
    static func randomInput(shape: [Int], seed: UInt64) -> Tensor {
        var state = seed
        func uniform() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return (Double(z >> 11) + 0.5) / Double(1 << 53)
        }
        let n = shape.reduce(1, *)
        var v: [Float] = []
        v.reserveCapacity(n)
        while v.count < n {
            let r = (-2 * log(uniform())).squareRoot(), t = 2 * Double.pi * uniform()
            v.append(Float(r * cos(t)))
            if v.count < n { v.append(Float(r * sin(t))) }
        }
        return Tensor(floats: v, shape: shape)
    }

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
        let batch = try imageBatch(x, channels: model.inputChannels)
        let plan = try Plan(graph: model.graph, inputShapes: [model.input: batch.shape])
        try MemoryLimits.check(plan, model: model.model)
        let out = try Executor(plan: plan, threads: threads).run([model.input: batch])
        return out[model.output]!
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
