import ArgumentParser
import Formats
import Foundation
import QToolConfig
import Tensors
import Train

/// `qtools train CONFIG [QTool options]`: QTool's training program (`train.sh` + `main.py`).
struct TrainRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train (or with -e evaluate) the model of a QTool config, as train.sh CONFIG does.",
        discussion: """
            Reads the config as train.sh does, loads --pretrained from <weights_dir>/<model>/ \
            (or resumes <weights_dir>/<model>/<case>-checkpoint.pth.tar with -r; without a \
            pretrained file it starts from QTool's default initialisation, seeded by --seed), trains \
            --epochs (+ --extra_epoch) epochs with QTool's SGD and lr schedule, evaluates after \
            each epoch (top-1, top-5, loss) and writes main.py's checkpoints atomically: \
            <case>-checkpoint.pth.tar every epoch, <case>-model_best.pth.tar on a new best in \
            the second half, <case>-epoch<E>-checkpoint.pth.tar at the reference's milestones. \
            They load in torch.load(weights_only=True); a PyTorch checkpoint resumes here.

            Ctrl-C or SIGTERM stops after the current training step (after its evaluation and \
            checkpoint when it was the epoch's last); the checkpoint then also records the step \
            (qtools_iteration), and -r continues at the next batch exactly as if never stopped. \
            main.py restarts that epoch from its first batch instead. A second signal stops at \
            once, keeping the last complete checkpoint.

            Datasets: --dataset npy (--root holds train_x.npy, train_y.npy, val_x.npy, \
            val_y.npy, read in order), --dataset synthetic (built in, seeded by --seed), \
            cifar10/cifar100 (--root holds cifar-10-batches-py or -bin, cifar-100-python or \
            -binary; shuffled per epoch, flip + reflect-pad-4 crop, seeded by --seed), \
            imagenet (ImageFolder --root/train, --root/val of JPEG/PNG images) and fake. \
            QTool options after CONFIG override it (-e evaluates only, -r resumes).

            Examples:
              qtools train config.txt --dataset synthetic --epochs 2
              qtools train run config.txt --dataset npy --root data/ --json | jq .top1
            """)

    @Argument(help: "The QTool config file (train.sh format).")
    var config: String

    @OptionGroup var out: OutputOptions

    @Option(name: .customLong("stop-after"), help: "Stop after this many epochs of this run (as an interrupted run; -r continues).")
    var stopAfter: Int?

    @Option(
        name: .customLong("stop-after-steps"),
        help: "Stop after this many training steps of this run (as an interrupted run; -r continues at the next step).")
    var stopAfterSteps: Int?

    @Option(help: "Threads of the training steps (fast path) and of evaluation.")
    var threads = 2

    @Flag(help: "Train on the exact path (double GEMMs, one thread; the golden steps' arithmetic) instead of the fast float32 one.")
    var exact = false

    @Argument(parsing: .allUnrecognized, help: "QTool options applied after the config.")
    var overrides: [String] = []

    func run() throws {
        try ExitCodes.reporting {
            let env = ProcessInfo.processInfo.environment
            let options = try QToolOptions(config: ConfigFile(contentsOf: config, environment: env))
                .applying(arguments: overrides)
            guard threads >= 1 else { throw UsageError("--threads must be at least 1") }
            if let n = stopAfterSteps, n < 1 { throw UsageError("--stop-after-steps must be at least 1 (got \(n))") }
            if let n = stopAfter, n < 1 { throw UsageError("--stop-after must be at least 1 (got \(n))") }
            try TrainProgram(
                options: options, quiet: out.quiet, json: out.json, stopAfter: stopAfter, stopAfterSteps: stopAfterSteps, threads: threads,
                exact: exact
            ).run()
        }
    }
}

/// The program behind `qtools train CONFIG`.
struct TrainProgram {
    var options: QToolOptions
    var quiet: Bool
    var json: Bool
    var stopAfter: Int? = nil
    var stopAfterSteps: Int? = nil
    var threads = 2
    var exact = false

    var weightsDir: String { (options.weightsDir as NSString).appendingPathComponent(options.model) }
    /// main.py's checkpoint of the latest epoch, `<case>-checkpoint.pth.tar` (what `-r` reads
    /// unless `--resume_file` names another).
    var latestCheckpoint: String { file("\(options.caseName)-checkpoint.pth.tar") }
    func file(_ name: String) -> String { (weightsDir as NSString).appendingPathComponent(name) }

    func data() throws -> (train: any BatchSource, val: any BatchSource) {
        switch options.dataset {
        case "npy":
            let (train, val) = try NpyDataset.load(root: options.root)
            return (train, val)
        case "synthetic":
            let (train, val) = SyntheticDataset.make(seed: UInt64(max(options.seed, 0)))
            return (train, val)
        case "cifar10", "cifar100", "imagenet", "dali", "fake": return try Datasets.open(options: options)
        default:
            throw UsageError(
                "--dataset \(options.dataset): not available yet in qtools train (use cifar10, cifar100, imagenet, fake, npy or synthetic)")
        }
    }

    func run() throws {
        MemoryPolicy.training()
        let (train, val) = try data()
        let batch = options.batchSize
        guard batch > 0 else { throw UsageError("--batch_size must be positive") }
        let trainLength = train.batchCount(batch)
        guard trainLength > 0 else { throw UsageError("the training set is empty") }
        for w in TrainOptionCheck.withoutEffect(options) { Terminal.warning(w, quiet: quiet) }
        var resumeName = "checkpoint.pth.tar"
        if case .string(let s) = options["resume_file"], !s.isEmpty { resumeName = s }
        let resumeFile = file("\(options.caseName)-\(resumeName)")
        let outputs = try TrainOutputs(options: options, quiet: quiet, trainCount: train.count, epochs: options.epochs)

        var loop: TrainLoop
        if options.resume && FileManager.default.fileExists(atPath: resumeFile) {
            let opened = try ModelFile.open(path: resumeFile, verifyCRC: true)
            let r = try TrainCheckpoint.restore(opened.checkpoint.root, path: resumeFile)
            loop = try TrainLoop.resuming(options: options, from: r, trainLength: trainLength, path: resumeFile)
            let at = loop.iteration > 0 ? " after step \(loop.iteration) of \(trainLength)" : ""
            note("resumed \(resumeFile) at epoch \(loop.epoch)\(at), best_acc \(r.bestAcc)")
        } else {
            if options.resume { Terminal.warning("no checkpoint to resume at \(resumeFile); starting anew", quiet: quiet) }
            loop = try TrainLoop(options: options, stateDict: try pretrained(), trainLength: trainLength)
        }
        loop.threads = threads
        loop.fast = !exact

        if options.evaluate {
            var vb = options.valBatchSize
            if batch / 100 * 100 > 0 { vb = batch / 100 * 100 }
            let ev = try loop.evaluate(val, batchSize: max(vb, 1), progress: outputs.evaluationStep)
            try outputs.evaluated(top1: ev.top1, top5: ev.top5)
            if json {
                Terminal.out(try JSONOutput.render(TrainEvaluationReport(top1: ev.top1, top5: ev.top5, loss: ev.loss)))
            } else {
                Terminal.out(String(format: "evaluate accuracy on dataset: top1(%f) top5(%f) loss(%f)", ev.top1, ev.top5, ev.loss))
            }
            return
        }
        try FileManager.default.createDirectory(atPath: weightsDir, withIntermediateDirectories: true)
        let valBatch = max(options.valBatchSize, 1)
        var trained = 0, steps = 0
        TrainInterrupt.install()
        let stopAfterSteps = self.stopAfterSteps
        while loop.epoch < loop.totalEpochs {
            if let stopAfter, trained >= stopAfter { break }
            trained += 1
            let e = loop.epoch
            try outputs.beginEpoch(e, lr: loop.schedule.epochRate(e), resumedAt: loop.iteration, partialLoss: loop.partialLoss)
            let progress = { (i: Int, n: Int, loss: Double, lr: Double) in
                steps += 1
                outputs.step(i, n, loss, lr)
            }
            let shouldStop = { TrainInterrupt.requested != nil || stopAfterSteps.map { steps >= $0 } ?? false }
            guard
                let record = try loop.runEpoch(
                    train: train, val: val, batchSize: batch, valBatchSize: valBatch, progress: progress, shouldStop: shouldStop,
                    evaluationProgress: outputs.evaluationStep)
            else {
                try write(TrainCheckpoint.midEpochValue(loop), to: latestCheckpoint)
                try outputs.stoppedMidEpoch(epoch: e, step: loop.iteration, of: trainLength, checkpoint: latestCheckpoint)
                return
            }
            try outputs.endEpoch(record)
            try save(loop, record: record)
            if json {
                Terminal.out(
                    try Self.jsonLine(EpochJSON(record: record, trainSeconds: outputs.trainSeconds, trainImages: outputs.trainImages)))
            }
            try outputs.stopIfInterrupted(epoch: e, checkpoint: latestCheckpoint)
            if let stopAfterSteps, steps >= stopAfterSteps { break }
        }
    }

    /// `--pretrained`: `<weights_dir>/<model>/<pretrained>` (or an absolute path), its
    /// `state_dict` (else `model`, else the root), a `module.` prefix dropped. Without one, or
    /// when the file does not exist, the model's default initialisation seeded by `--seed`
    /// (``DefaultInitialization``), as main.py does (seed-reference §12.3).
    func pretrained() throws -> [(name: String, tensor: Tensor)] {
        let name = options.pretrained
        let path = name.hasPrefix("/") ? name : file(name)
        guard !name.isEmpty, FileManager.default.fileExists(atPath: path) else {
            if !name.isEmpty {
                Terminal.warning("no pretrained file exists (\(path)); init model with the default initialiser", quiet: quiet)
            }
            return try DefaultInitialization.stateDict(options: options, seed: UInt64(bitPattern: Int64(options.seed)))
        }
        let opened = try ModelFile.open(path: path, verifyCRC: true)
        guard let sd = opened.checkpoint.stateDict() else {
            throw FormatError(.notACheckpoint("no state dict (no 'state_dict' or 'model' entry and no tensors at the root)"), file: path)
        }
        var entries = sd.entries.map { ($0.name, $0.tensor.materialize()) }
        if let first = entries.first?.0, first.contains("module.") {
            entries = entries.map { (String($0.0.split(separator: ".", maxSplits: 1).last ?? ""), $0.1) }
        }
        return entries
    }

    /// main.py's files (§12.2), each written atomically.
    func save(_ loop: TrainLoop, record: TrainLoop.EpochRecord) throws {
        let e = record.epoch
        let value = TrainCheckpoint.value(loop, epoch: e, learningRate: record.lr)
        let latest = latestCheckpoint
        try write(value, to: latest)
        if record.newBest && Double(e) > Double(options.epochs) / 2 {
            try write(value, to: file("\(options.caseName)-model_best.pth.tar"))
        }
        let n = e + 1
        var milestone = n == options.epochs
        let policy = options.lrPolicy
        if (policy == "sgdr" || policy == "custom_step") && options.lrCustomStep.contains(n) { milestone = true }
        if policy == "fix_step", case .int(let s) = options["lr_fix_step"], s > 0, n % s == 0 { milestone = true }
        if case .int(let f) = options["save_freq"], f >= 1, n % f == f - 1 { milestone = true }
        if milestone { try write(value, to: file("\(options.caseName)-epoch\(e)-checkpoint.pth.tar")) }
    }

    func write(_ value: CheckpointValue, to path: String) throws {
        let sink = try OutputFile(path: path, overwrite: true, reading: [])
        try TorchZipWriter.write(value, to: sink, archiveName: TorchZipWriter.archiveName(forOutputPath: path))
        try sink.commit()
    }

    /// One compact JSON record (sorted keys) per line.
    static func jsonLine(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    func note(_ s: String) {
        if !quiet { Terminal.writeErr(s + "\n") }
    }
}

/// One `--json` line per epoch: the loop's record plus the training throughput (data loading
/// and augmentation included, evaluation excluded).
struct EpochJSON: Encodable {
    var record: TrainLoop.EpochRecord
    var trainSeconds: Double
    var trainImages: Int

    enum CodingKeys: String, CodingKey {
        case trainSeconds = "train_seconds", trainImagesPerSecond = "train_images_per_second"
    }

    func encode(to encoder: any Encoder) throws {
        try record.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(trainSeconds, forKey: .trainSeconds)
        try c.encode(trainSeconds > 0 ? Double(trainImages) / trainSeconds : 0, forKey: .trainImagesPerSecond)
    }
}

/// `qtools train CONFIG -e --json`.
struct TrainEvaluationReport: Encodable {
    var top1: Double, top5: Double, loss: Double
}
