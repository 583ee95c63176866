import Engine
import Models
import QToolConfig
import Testing

/// What a built model marks as graph variables (the state a trainer updates): the module
/// tensors as the checkpoint stores them, never a quantized weight or a derived constant.
@Suite struct GraphVariablesTests {
    static func build(_ args: [String]) throws -> Graph {
        try ModelBuilder.buildRandom(options: QToolOptions(arguments: .commandLine(args)), seed: 1).graph
    }

    @Test func everyTensorOfAFloatNetworkIsAVariable() throws {
        let g = try Self.build(["--model", "pytorch-resnet18", "--keyword", "imagenet"])
        #expect(!g.variables.isEmpty)
        #expect(g.variables == Set(g.constants.keys))
        #expect(g.values.filter(\.isVariable).count == g.variables.count)
    }

    @Test func quantizedWeightsAreConstantsAndTheRestVariables() throws {
        // The golden LSQ case's config (fixtures/golden/resnet18_lsq_a2w2), at width 1/8.
        let g = try Self.build([
            "--model", "resnet18", "--keyword", "imagenet,origin,cbsa,fix_pooling,singleconv,fix,dorefa,lsq",
            "--fm_enable", "--wt_enable", "--fm_bit", "2", "--wt_bit", "2", "--width_alpha", "0.125",
        ])
        // The block convs are quantized (their weights hold quantized values); the stem and fc are not.
        let quantized = g.constants.keys.filter { $0.hasPrefix("layer1.0.conv1") && $0.hasSuffix(".weight") }
        #expect(quantized.count == 1, "\(quantized)")
        #expect(quantized.allSatisfy { !g.variables.contains($0) })
        #expect(g.variables.contains("conv1.weight"))
        #expect(g.variables.contains("fc.weight") && g.variables.contains("fc.bias"))
        let bn = g.constants.keys.filter { $0.hasPrefix("layer1.0.bn1") }
        #expect(bn.count == 4, "\(bn)")
        #expect(bn.allSatisfy { g.variables.contains($0) })
        #expect(g.variables.isSubset(of: Set(g.constants.keys)))
    }

    @Test func addConstantOverAVariableMakesItConstant() {
        var g = Graph()
        g.addVariable("w", .init(floats: [1], shape: [1]))
        #expect(g.variables == ["w"])
        g.addConstant("w", .init(floats: [2], shape: [1]))
        #expect(g.variables.isEmpty)
        #expect(g.constants["w"]?.floats() == [2])
    }
}
