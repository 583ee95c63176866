import Engine
import Formats
import Foundation
import Models
import Tensors

extension RunCommand {
    /// `run --dump DIR`, `run --engine unfused|reference` or `run --conditioning`: the model loaded with its graph
    /// (not planned once and freed, as a plain run does), every layer value captured.
    func runCapturing() throws {
        try ExitCodes.reporting {
            // The output is checked (and its temporary file created) before any work.
            let modelFile = FileManager.default.fileExists(atPath: model) ? model : nil
            let sink = try output.map { try OutputFile(path: $0, overwrite: force, reading: [modelFile, config, input]) }
            let loaded = try ModelLoader(model: model, config: config, overrides: overrides)
            if loaded.randomWeights { Terminal.warning("\(model): random weights (no checkpoint)", quiet: out.quiet) }
            let m = loaded.model
            let x =
                try input.map { try ModelIO.batch(ModelIO.read($0), for: m) }
                ?? SplitMix64.normalTensor(shape: m.inputShape(), seed: seed)
            let captured = try engine.capture(m, x, threads: threads)
            guard let last = captured.last(where: { $0.name == m.output }), let values = last.values else {
                throw InferenceError(.unknownValue(m.output), value: m.output)
            }
            let logits = Tensor(floats: values, shape: last.shape)
            var summary: RunReport.DumpSummary? = nil
            if let dump {
                let protected = [model, config, input, output].compactMap { $0 }
                let index = try LayerDump.write(
                    input: (m.input, x), captured, to: dump, force: force, protected: protected, model: m.model,
                    engine: engine.rawValue,
                    modules: m.modulesOfValues)
                summary = .init(
                    directory: dump, engine: engine.rawValue, values: index.values.count,
                    files: index.values.values.filter { $0.file != nil }.count)
            }
            if let sink { try ModelIO.write(logits, to: sink) }
            var report = RunReport(model: m.model, input: x.shape, logits: logits)
            report.dump = summary
            if conditioning { report.conditioning = try conditioningReport(m, x, logits: logits) }
            Terminal.out(out.json ? try JSONOutput.render(report) : report.text)
        }
    }
}
