import Engine
import Models
import Tensors
import TestSupport
import Testing

/// The fast executor against the reference interpreter on a real network: torchvision's
/// ResNet-18 (moved from PlanTests when the hand-written engine copy of ResNet-18 became the
/// model builder's).
@Suite struct ResNet18PlanTests {
    @Test(arguments: [(1, 16), (2, 24)])
    func resnet18MatchesReference(dims: (Int, Int)) throws {
        let (batch, size) = dims
        let g = ResNet18.randomGraph(classes: 10, seed: 7)
        var rng = SplitMix64(seed: 3)
        let x = Tensor(floats: rng.floats(batch * 3 * size * size), shape: [batch, 3, size, size])
        let slow = try #require(ReferenceExecutor.run(g, inputs: ["input": x])["logits"]).floats()
        let exec = try Executor(graph: g, threads: 2)
        let fast = try #require(exec.run(["input": x])["logits"]).floats()
        let d = Difference(fast, slow)
        #expect(d.maxAbs <= 1e-3 * max(1, slow.map(abs).max() ?? 1), "\(d)")
        // Activations need about two of the largest value (plus im2col scratch), far below
        // one buffer per value.
        let plan = try exec.plan(for: ["input": [batch, 3, size, size]])
        let noReuse = try Plan(
            graph: g, inputShapes: ["input": [batch, 3, size, size]], options: PlanOptions(reuseBuffers: false, inPlace: false))
        #expect(plan.arenaBytes - plan.scratchBytes <= 5 * plan.largestValueBytes / 2)
        #expect((plan.arenaBytes - plan.scratchBytes) * 2 < noReuse.arenaBytes - noReuse.scratchBytes)
    }

    /// `ResNet18.graph(weight:)` asks for exactly the torchvision state-dict names and shapes
    /// (what `Benchmarks/engine_bench.py` feeds it) and builds the same network as the random one.
    @Test func graphBindsTorchvisionNames() throws {
        let random = ResNet18.randomGraph(classes: 10, seed: 3)
        var asked: [String: [Int]] = [:]
        let bound = try ResNet18.graph(classes: 10) { name, shape in
            asked[name] = shape
            return try #require(random.constants[name])
        }
        #expect(asked.count == 102)  // 20 convs + 20 BNs x 4 + fc weight and bias
        #expect(asked["layer2.0.downsample.0.weight"] == [128, 64, 1, 1])
        #expect(asked["fc.weight"] == [10, 512])
        var rng = SplitMix64(seed: 1)
        let x = Tensor(floats: rng.floats(3 * 16 * 16), shape: [1, 3, 16, 16])
        let a = try #require(Executor(graph: random).run(["input": x])["logits"]).floats()
        let b = try #require(Executor(graph: bound).run(["input": x])["logits"]).floats()
        #expect(a == b)
    }
}
