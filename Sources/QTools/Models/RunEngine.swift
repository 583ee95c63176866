import ArgumentParser
import Engine
import Models
import Tensors

/// Which executor computes a model's layer values (`run --engine`, `verify --engine-a/-b`).
///
/// `fast` is the engine and plan `qtools run` uses (fusion on): its values are exactly a
/// normal run's, and a value fused into another step (a conv whose BN and ReLU are folded in)
/// is not materialised. `unfused` runs the fast kernels with fusion off, so every node's value
/// exists (BN no longer folded: results move by rounding). `reference` is the naive
/// interpreter (`ReferenceExecutor`: Double accumulation, no fusion), the executable
/// specification; slow at ImageNet sizes. `run` and `bench` lower XNOR-style binary convs to
/// the bit-packed kernels (``BinaryConvLowering``) and, on CPUs with AVX-512 VNNI, uniform
/// quantized convs (LSQ, DoReFa, PACT) to the exact int8 kernels (``IntegerConvLowering``);
/// `float` keeps every conv a float conv (the fake-quant path), and `int8` lowers the
/// quantized convs on any CPU (elsewhere their gathering kernels are exact but not faster
/// than float). Captured values (`--dump`, per-layer `verify`) always come from the float
/// graph, so there `float`, `int8` and `fast` are the same.
enum RunEngine: String, ExpressibleByArgument, CaseIterable {
    case fast, float, int8, unfused, reference

    /// Whether `run`/`bench` lower quantized convs to the int8 kernels.
    var lowersInteger: Bool { self == .int8 || (self == .fast && IntegerConv.isFasterThanFloat) }

    /// Whether `run`/`bench` lower XNOR-style binary convs to the bit-packed kernels.
    var lowersBinary: Bool { self != .float }

    /// A graph with its convs lowered as this engine runs them.
    struct Lowered {
        var graph: Graph
        /// Convs on the bit-packed kernels (``BinaryConvLowering``) and on the int8 ones
        /// (``IntegerConvLowering``), and the quantized convs kept float with the reason.
        var binaryConvs = 0, integerConvs = 0
        var integerKept: [(node: String, reason: String)] = []

        /// The graph, leaving an empty one behind (the planner frees weights it alone holds).
        mutating func takeGraph() -> Graph {
            defer { graph = Graph() }
            return graph
        }
    }

    /// `graph` with binary convs lowered (``lowersBinary``; `planes` are a packed file's) and
    /// quantized convs lowered to the int8 kernels (``lowersInteger``).
    func lower(_ graph: Graph, planes: [String: WeightPlanes] = [:]) -> Lowered {
        var out = Lowered(graph: graph)
        if lowersBinary {
            let lowered = BinaryConvLowering.lower(out.takeGraph(), planes: planes)
            (out.graph, out.binaryConvs) = (lowered.graph, lowered.lowered.count)
        }
        if lowersInteger {
            let lowered = IntegerConvLowering.lower(out.takeGraph())
            (out.graph, out.integerConvs, out.integerKept) = (lowered.graph, lowered.lowered.count, lowered.kept)
        }
        return out
    }

    /// The logits of `model` on `x` as `run --engine` computes them (`verify --engine-a/-b`):
    /// `fast` and `int8` lower binary and (``lowersInteger``) integer convs first, `float` runs
    /// the float graph. `unfused` and `reference` are per-layer executors only.
    func logits(_ model: BuiltModel, _ x: Tensor) throws -> Tensor {
        guard [.fast, .float, .int8].contains(self) else {
            throw UsageError("--engine \(rawValue) runs per-layer comparisons (--per-layer); logits take fast, float or int8")
        }
        var m = model
        m.graph = lower(m.graph, planes: m.packedWeights).graph
        return try ModelIO.logits(m, x)
    }

    /// Every node value of `model` on `x` (an image batch), in execution order.
    func capture(_ model: BuiltModel, _ x: Tensor, threads: Int = 2) throws -> [CapturedValue] {
        let inputs = [model.input: try ModelIO.batch(x, for: model)]
        switch self {
        case .fast, .float, .int8: return try ValueCapture.fast(model.graph, inputs: inputs, threads: threads)
        case .unfused: return try ValueCapture.fast(model.graph, inputs: inputs, threads: threads, options: PlanOptions(fuse: false))
        case .reference: return try ValueCapture.reference(model.graph, inputs: inputs)
        }
    }

    /// The layer values of `model` on `x` for a per-layer comparison: the input, then
    /// ``capture(_:_:threads:)``; `source` names the side in errors.
    func layers(_ model: BuiltModel, _ x: Tensor, source: String) throws -> [LayerValue] {
        let batch = try ModelIO.batch(x, for: model)
        let input = LayerValue(name: model.input, op: "input", shape: batch.shape, source: source) {
            (batch.shape, batch.floats())
        }
        let modules = model.modulesOfValues
        return [input]
            + (try capture(model, batch)).map {
                var v = LayerValue($0, source: source)
                v.module = modules[$0.name]
                return v
            }
    }
}

extension BuiltModel {
    /// Value name -> module path, for the module outputs named otherwise (`logits` -> `fc`).
    var modulesOfValues: [String: String] {
        Dictionary(layers.filter { $0.output != $0.name }.map { ($0.output, $0.name) }, uniquingKeysWith: { a, _ in a })
    }
}
