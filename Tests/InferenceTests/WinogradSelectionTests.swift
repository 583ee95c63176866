@testable import Inference
import Testing

/// The planner's choice of Winograd variants under a memory budget.
@Suite struct WinogradSelectionTests {
    static func conv(_ c: Int, _ s: Int, stride: Int = 1, kernel: Int = 3) -> ConvGeometry {
        let out = (s + 2 * (kernel / 2) - kernel) / stride + 1
        return ConvGeometry(
            batch: 1, inChannels: c, inHeight: s, inWidth: s, outChannels: c, outHeight: out, outWidth: out,
            kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride, padTop: kernel / 2,
            padLeft: kernel / 2, dilationH: 1, dilationW: 1, groups: 1)
    }

    /// ResNet-18's 3x3 stride-1 shapes at 224 plus convs Winograd never applies to.
    static let resnet18: [WinogradSelection.Conv] = [
        .init(name: "l1", geometry: conv(64, 56)), .init(name: "l2", geometry: conv(128, 28)),
        .init(name: "l3", geometry: conv(256, 14)), .init(name: "l4", geometry: conv(512, 7)),
        .init(name: "strided", geometry: conv(256, 14, stride: 2)), .init(name: "pointwise", geometry: conv(256, 14, kernel: 1)),
        .init(name: "narrow", geometry: conv(32, 56)),
    ]

    @Test func unlimitedBudgetTakesTheLeastWorkEverywhere() {
        let t = WinogradSelection.choose(Self.resnet18, budgetBytes: .max)
        // F(4x4) only where it has >= 64 tiles (56x56); F(2x2) down to 16 tiles (7x7).
        #expect(t == ["l1": 4, "l2": 2, "l3": 2, "l4": 2])
    }

    @Test func zeroBudgetKeepsDirectConvolution() {
        #expect(WinogradSelection.choose(Self.resnet18, budgetBytes: 0).isEmpty)
    }

    @Test(arguments: [1 << 20, 4 << 20, 16 << 20, 32 << 20, 64 << 20])
    func choicesStayWithinTheBudget(budget: Int) {
        let t = WinogradSelection.choose(Self.resnet18, budgetBytes: budget)
        let byName = Dictionary(uniqueKeysWithValues: Self.resnet18.map { ($0.name, $0.geometry) })
        let spent = t.reduce(0) { $0 + WinogradSelection.extraBytes(byName[$1.key]!, tile: $1.value) }
        #expect(spent <= budget)
        #expect(t["strided"] == nil && t["pointwise"] == nil && t["narrow"] == nil)
        // The cheapest large saving (56x56 maps: F(4x4) costs 0.44 MB) comes first.
        if budget >= 1 << 20 { #expect(t["l1"] == 4) }
    }

    @Test func extraBytesAreTheTransformedMinusPackedWeights() {
        // 512 x 512 x 3 x 3 weights: F(2x2) holds 16 floats per (oc, ic) instead of 9,
        // F(4x4) 36; rows are padded to whole 6-row panels (512 -> 516) either way.
        let g = Self.conv(512, 7)
        #expect(WinogradSelection.extraBytes(g, tile: 2) == 4 * 516 * 512 * (16 - 9))
        #expect(WinogradSelection.extraBytes(g, tile: 4) == 4 * 516 * 512 * (36 - 9))
    }
}
