import Foundation
import Formats
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Engine
@testable import Models

/// Shipped configs and zoo networks at their real width (issue 18): random trained-looking
/// weights (`TrainedLookingModel`: quantizers active, BN statistics and activation clip values
/// calibrated on a batch), the engine on the model built from that state dict (what `qtools run`
/// does) against onnxruntime on qtools' own export of it, `--onnx-format float` and `qcdq`.
///
/// Conditioning: a low-bit network is a step function of its input. A quantizer input within
/// a few float32 ulps of a rounding boundary lands on either side depending on the summation
/// order, and the logits then differ by O(1) between any two correct float32 engines
/// (onnxruntime disagrees with itself between its optimisation levels on such inputs; this is
/// what issue 18's two full-width cases are). So each input is first
/// checked to be well conditioned: every activation quantizer's input shifted by `± 2e-6` of its peak
/// (about twice the engine's accumulated rounding there) must leave the logits unchanged. Only
/// well-conditioned inputs are compared (1e-4 of the peak logit); an ill-conditioned input is
/// replaced by the next seed, and a config with no well-conditioned input among
/// `maxInputSeeds` fails. A real fault (a kernel, a fusion, an export) shows on every input.
@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (onnx, onnxruntime)"))
struct FullWidthDifferentialTests {
    /// A subset of the 52 shipped configs, for the suite's time (10-20 s each in a debug
    /// build): two of issue 18's three (flexible ResNet-18 preBN/bacs DoReFa with var-mean
    /// weights; PACT on pytorch-resnet18) and LQ-Nets. `QTOOLS_FULLWIDTH_ALL=1` adds DoReFa
    /// with plain weights (the third), LSQ, XNOR++ (NReLU, real_skip), Group-Net (`--base`)
    /// and MobileNet v2, which passed when run by hand (README).
    static let configs =
        [
            "config.dorefa.finetune.dali.2bit.resnet18-4",
            "config.pact.finetune.imagenet.2bit.torch-resnet18-ep40-baseline",
            "config.lq-net.eval.dali.2bit.resnet18",
        ]
        + (ProcessInfo.processInfo.environment["QTOOLS_FULLWIDTH_ALL"] == nil
            ? []
            : [
                "config.dorefa.finetune.dali.2bit.resnet18",
                "config.lsq.eval.imagenet.2bit.torch-resnet18",
                "config.xnor.train-scratch.dali.bin.resnet18-xnor++",
                "config.group-net.eval.imagenet.bin.resnet18.base5.cabs",
                "config.baseline.eval.imagenet.fp.mobilenet-v2",
            ])

    static let maxInputSeeds = 6

    @Test(arguments: configs)
    func shippedConfig(_ name: String) throws {
        let o = try QToolOptions(config: ConfigFile(contentsOf: Fixtures.path("seed-configs/" + name)))
        try Self.check(o, label: name)
    }

    static func check(_ options: QToolOptions, label: String) throws {
        let size = 32
        let calibration = TrainedLookingModel.gaussian([4, 3, size, size], seed: 11)
        let model = try TrainedLookingModel.build(options: options, seed: 7, calibration: calibration)
        let exec = try Executor(graph: model.graph, threads: 2)
        try withTemporaryDirectory { dir in
            var files: [String] = []
            for format in [ONNXExportOptions.Format.float, .qcdq] {
                var eo = ONNXExportOptions()
                eo.format = format
                let proto = try ONNXExport.model(model, options: eo)
                let path = dir.appendingPathComponent("\(format).onnx").path
                try Data(ONNXWriter.serialize(proto)).write(to: URL(fileURLWithPath: path))
                files.append(path)
            }
            var compared = 0
            for seed in 0..<UInt64(maxInputSeeds) where compared == 0 {
                let x = TrainedLookingModel.gaussian([1, 3, size, size], seed: 100 + seed)
                let got = try #require(try exec.run([model.input: x])[model.output]).floats()
                let peak = got.map { abs($0) }.max() ?? 1
                if try !TrainedLookingModel.wellConditioned(model, x, logits: got) { continue }
                compared += 1
                let input = dir.appendingPathComponent("x.npy").path
                try TrainedLookingModel.writeNpy(x, input)
                let ort = try ORT.run(files, input: input)
                for (file, y) in zip(files, ort) {
                    let err = zip(got, y).map { abs($0 - $1) }.max() ?? .infinity
                    #expect(err <= 1e-4 * max(peak, 1), "\(label) \(file): engine vs onnxruntime max |diff| \(err), peak \(peak), input seed \(seed)")
                }
            }
            #expect(compared == 1, "\(label): no well-conditioned input among \(maxInputSeeds) seeds")
        }
    }

    /// onnxruntime (default session) on each file for one `.npy` input: the outputs.
    enum ORT {
        static let script = """
            import sys, json, numpy as np, onnxruntime as ort
            x = np.load(sys.argv[1]); out = []
            for p in sys.argv[2:]:
                s = ort.InferenceSession(p, providers=['CPUExecutionProvider'])
                out.append(s.run(None, {s.get_inputs()[0].name: x})[0].astype(np.float64).ravel().tolist())
            print(json.dumps(out))
            """
        static func run(_ files: [String], input: String) throws -> [[Float]] {
            let doc = try Python.json(script, [input] + files)
            let rows = try #require(doc as? [[Double]], "onnxruntime output: \(doc)")
            return rows.map { $0.map { Float($0) } }
        }
    }
}

/// A model built by ``ModelBuilder/build(options:stateDict:)`` from a generated state dict that
/// looks trained: seeded random weights, every quantizer active (`iteration` 1), batch-norm
/// running statistics from the batch statistics of a calibration input and activation
/// `clip_val` from the 0.99 quantile of the quantizer's input (as the issue-18 and golden cases
/// were made), calibrated in one pass in graph order so each layer sees calibrated inputs.
enum TrainedLookingModel {
    static func build(options: QToolOptions, seed: UInt64, calibration x: Tensor) throws -> BuiltModel {
        let fresh = try ModelBuilder.buildRandom(options: options, seed: seed)
        var shapes: [String: [Int]] = [:]
        for d in fresh.declaredTensors { shapes[d.key] = d.shape }
        var sd: [String: Tensor] = [:]
        var order: [String] = []
        for d in fresh.declaredTensors where sd[d.key] == nil {
            if let (layer, part) = VariantConversion.quantizerPrefix(d.key) {
                if d.key.hasSuffix(".times") { continue }
                var t = try VariantConversion.initialValue(d.key, d.shape, layer: layer, part: part, target: options, shapes: shapes)
                if d.key.hasSuffix(".iteration") { t = Tensor(floats: [Float](repeating: 1, count: d.shape.reduce(1, *)), shape: d.shape) }
                sd[d.key] = t
            } else if let t = fresh.graph.constants[d.key] {
                sd[d.key] = t
            } else if d.required {
                // Tensors the random build keeps out of the graph (Fixup biases/scales, Group-Net scales).
                let v: Float = d.key.contains("bias") ? 0.05 : 1
                sd[d.key] = Tensor(floats: [Float](repeating: v, count: d.shape.reduce(1, *)), shape: d.shape)
            } else {
                continue
            }
            order.append(d.key)
        }
        var model = try ModelBuilder.build(options: options, stateDict: order.map { ($0, sd[$0]!) })
        // One calibration pass, node by node, with the calibrated values written back.
        let g = model.graph
        var values: [String: Tensor] = [model.input: x]
        for i in try g.validate() {
            var node = g.nodes[i]
            let input = values[node.inputs[0]]
            if case .batchNorm = node.op, let v = input, node.inputs.count == 5, sd[node.inputs[3]] != nil {
                let (mean, variance) = channelMoments(v)
                sd[node.inputs[3]] = Tensor(floats: mean, shape: sd[node.inputs[3]]!.shape)
                sd[node.inputs[4]] = Tensor(floats: variance, shape: sd[node.inputs[4]]!.shape)
            }
            if case .quantize(let a) = node.op, var q = a.quantizer, let v = input,
               let old = sd[q.name + ".clip_val"], !q.state.clipVal.isEmpty
            {
                let clip = quantile(v.floats(), 0.99)
                sd[q.name + ".clip_val"] = Tensor(floats: [Float](repeating: clip, count: old.shape.reduce(1, *)), shape: old.shape)
                q.state.clipVal = [Float](repeating: clip, count: q.state.clipVal.count)
                node.op = .quantize(QuantizeAttributes(q))
            }
            var mini = Graph()
            for name in node.inputs {
                if let c = g.constants[name] {
                    mini.addConstant(name, sd[name] ?? c)
                } else if !mini.inputs.contains(name) {
                    mini.addInput(name)
                }
            }
            mini.add(node)
            mini.markOutput(node.outputs[0])
            let feed = Dictionary(uniqueKeysWithValues: mini.inputs.map { ($0, values[$0]!) })
            values[node.outputs[0]] = try Executor(graph: mini, threads: 2).run(feed)[node.outputs[0]]!
        }
        model = try ModelBuilder.build(options: options, stateDict: order.map { ($0, sd[$0]!) })
        return model
    }

    /// Per-channel mean and (biased) variance over batch and pixels of `[N, C, ...]`.
    static func channelMoments(_ t: Tensor) -> ([Float], [Float]) {
        let v = t.floats(), n = t.shape[0], c = t.shape[1], inner = v.count / max(n * c, 1)
        var mean = [Float](repeating: 0, count: c), variance = [Float](repeating: 1, count: c)
        for ch in 0..<c {
            var s = 0.0, s2 = 0.0
            for b in 0..<n { for k in 0..<inner { let e = Double(v[(b * c + ch) * inner + k]); s += e; s2 += e * e } }
            let m = s / Double(n * inner)
            mean[ch] = Float(m)
            variance[ch] = Float(max(s2 / Double(n * inner) - m * m, 1e-3))
        }
        return (mean, variance)
    }

    /// The `q` quantile of the positive values (1 when there are none).
    static func quantile(_ v: [Float], _ q: Double) -> Float {
        let p = v.filter { $0 > 0 }.sorted()
        guard !p.isEmpty else { return 1 }
        return p[min(p.count - 1, Int(q * Double(p.count)))]
    }

    /// Seeded N(0, 1) values (qtools' one random source).
    static func gaussian(_ shape: [Int], seed: UInt64) -> Tensor {
        SplitMix64.normalTensor(shape: shape, seed: seed)
    }

    /// True when shifting every activation quantizer's input by `± epsilon · max|input|`
    /// leaves the logits within `1e-6` of the peak: no quantizer input lies within that band
    /// of a rounding boundary, so float32 rounding (about 1e-6 of a layer's peak after a
    /// conv and a BN) cannot decide a level.
    static func wellConditioned(_ model: BuiltModel, _ x: Tensor, logits: [Float], epsilon: Float = 2e-6) throws -> Bool {
        let peak = logits.map { abs($0) }.max() ?? 1
        let quantized = model.graph.nodes.filter {
            if case .quantize = $0.op { return model.graph.constants[$0.inputs[0]] == nil } else { return false }
        }
        var probe = model.graph
        for n in quantized where !probe.outputs.contains(n.inputs[0]) { probe.markOutput(n.inputs[0]) }
        let seen = try Executor(graph: probe, threads: 2).run([model.input: x])
        for sign: Float in [1, -1] {
            var g = Graph()
            for name in model.graph.inputs { g.addInput(name) }
            for (k, t) in model.graph.constants { g.addConstant(k, t) }
            var done = Set<String>()
            for var n in model.graph.nodes {
                if case .quantize = n.op, model.graph.constants[n.inputs[0]] == nil, let v = seen[n.inputs[0]] {
                    let c = v.shape[1], shift = sign * epsilon * (v.floats().map { abs($0) }.max() ?? 0)
                    let nudged = n.inputs[0] + ".__nudged"
                    if done.insert(nudged).inserted {
                        g.addConstant(nudged + ".scale", Tensor(floats: [Float](repeating: 1, count: c), shape: [c]))
                        g.addConstant(nudged + ".bias", Tensor(floats: [Float](repeating: shift, count: c), shape: [c]))
                        g.add(Graph.Node(name: nudged, op: .channelAffine, inputs: [n.inputs[0], nudged + ".scale", nudged + ".bias"], outputs: [nudged]))
                    }
                    n.inputs[0] = nudged
                }
                g.add(n)
            }
            for o in model.graph.outputs { g.markOutput(o) }
            let y = try Executor(graph: g, threads: 2).run([model.input: x])[model.output]!.floats()
            if zip(y, logits).contains(where: { abs($0 - $1) > 1e-6 * max(peak, 1) }) { return false }
        }
        return true
    }

    static func writeNpy(_ t: Tensor, _ path: String) throws {
        let f = try OutputFile(path: path, overwrite: true)
        try NpyWriter.write(t, to: f)
        try f.commit()
    }
}
