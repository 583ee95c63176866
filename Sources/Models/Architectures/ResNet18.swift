import Engine
import QToolConfig
import Tensors

/// torchvision's float ResNet-18 (`pytorch-resnet18`, ``PyTorchResNet``) as a bare graph: the
/// network of the engine benchmarks (`Benchmarks/engine_bench.py`, `qtools bench`) and of the
/// planner tests. Input value `input` `[N, 3, S, S]`, output value `logits`, constants under
/// torchvision's state-dict names (`layer1.0.conv1.weight`, `fc.bias`).
package enum ResNet18 {
    /// The builder's options for float `pytorch-resnet18` with `classes` outputs.
    static func options(classes: Int) -> QToolOptions {
        do {
            return try QToolOptions().applying(arguments: [
                "--model", "pytorch-resnet18", "--num_classes", String(classes),
            ])
        } catch {
            preconditionFailure("pytorch-resnet18 options: \(error)")
        }
    }

    /// The graph with each constant supplied by `weight(name, shape)`.
    /// - Throws: what `weight` throws, or ``InferenceError`` when a tensor has the wrong shape.
    package static func graph(classes: Int = 1000, weight: (String, [Int]) throws -> Tensor) throws -> Graph {
        let o = options(classes: classes)
        let shapes = try ModelBuilder.buildRandom(options: o, seed: nil).graph.constants
            .map { ($0.key, $0.value.shape) }.sorted { $0.0 < $1.0 }
        let entries = try shapes.map { (name: $0.0, tensor: try weight($0.0, $0.1)) }
        return try ModelBuilder.build(options: o, stateDict: entries).graph
    }

    /// The graph with seeded random weights (``ModelBuilder/buildRandom(options:seed:)``:
    /// He-scaled convs, BN statistics near identity).
    package static func randomGraph(classes: Int = 1000, seed: UInt64 = 0) -> Graph {
        do {
            return try ModelBuilder.buildRandom(options: options(classes: classes), seed: seed).graph
        } catch {
            preconditionFailure("pytorch-resnet18: \(error)")
        }
    }
}

extension EngineBenchmark {
    /// ResNet-18 (torchvision layout, random weights) at `batch x 3 x size x size`.
    package static func resnet18(
        batch: Int = 1, size: Int = 224, iterations: Int = 20, warmup: Int = 3, threads: Int = 2
    ) throws(InferenceError) -> Result {
        try measure(
            graph: ResNet18.randomGraph(), inputShape: [batch, 3, size, size], iterations: iterations,
            warmup: warmup, threads: threads)
    }
}
