import Engine
import Models
import Tensors
import Testing

@Suite struct ProfileTests {
    /// Built once: 11M random weights take seconds in a debug build.
    static let resnet = ResNet18.randomGraph(classes: 10, seed: 1)

    @Test func profileCoversEveryStepAndSharesSumToOne() throws {
        let g = Self.resnet
        let exec = try Executor(graph: g, threads: 2)
        let x = Tensor(floats: [Float](repeating: 0.25, count: 2 * 3 * 32 * 32), shape: [2, 3, 32, 32])
        var profile = Profile()
        for _ in 0..<2 { _ = try exec.run(["input": x], profile: &profile) }
        let plan = try exec.plan(for: ["input": [2, 3, 32, 32]])
        #expect(profile.runs == 2)
        #expect(profile.steps.count == plan.stepCount)
        // Every graph node is covered by exactly one step (fused or not), except views.
        let covered = profile.steps.flatMap(\.nodes)
        #expect(Set(covered).count == covered.count)
        #expect(Set(covered).union(["flatten"]) == Set(g.nodes.map(\.name)))
        let total = profile.shares.values.reduce(0, +)
        #expect(abs(total - 1) < 1e-9)
        #expect(Set(profile.shares.keys).isSubset(of: ["conv2d", "maxPool2d", "adaptiveAvgPool2d", "linear"]))
    }

    @Test func benchmarkReportsConsistentNumbers() throws {
        let g = Self.resnet
        let r = try EngineBenchmark.measure(graph: g, inputShape: [1, 3, 32, 32], iterations: 3, warmup: 1, threads: 1)
        #expect(r.runsMs.count == 3)
        #expect(r.minMs > 0 && r.minMs <= r.medianMs && r.medianMs <= r.maxMs)
        #expect(r.threads == 1)
        #expect(r.packedWeightBytes >= 4 * 11_000_000)  // ResNet-18 minus the 1000-class head
        #expect(r.anchor.weightBytes == g.parameterBytes && r.anchor.weightBytes >= 4 * 11_000_000)
        #expect(r.anchor.largestActivationBytes > 0)
        #expect((r.peakResidentBytes ?? 1) > 0)
        #expect(r.steps == 23)  // 20 convs (BN/ReLU/add fused), maxpool, avgpool, fc
    }

    @Test func graphValuesListInputsConstantsAndOutputs() {
        let g = Self.resnet
        let values = g.values
        #expect(values.first?.name == "input" && values.first?.constant == nil)
        #expect(values.contains { $0.name == "layer1.0.conv1.weight" && $0.constant?.shape == [64, 64, 3, 3] })
        #expect(values.last?.name == "logits")
        #expect(values.count == 1 + g.constants.count + g.nodes.count)
    }
}
