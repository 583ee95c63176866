import Tensors
import TestSupport
import Testing

@testable import Engine

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
        // F(4x4) only where it has >= 49 tiles (56x56, 28x28); F(2x2) likewise (14x14, not 7x7).
        #expect(t == ["l1": 4, "l2": 4, "l3": 2])
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

    /// ResNet-18's thirteen 3x3 stride-1 convs at 224, as the planner sees them.
    static let resnet18Full: [WinogradSelection.Conv] = (0..<13).map { i in
        let (c, s) = [(64, 56), (128, 28), (256, 14), (512, 7)][i < 4 ? 0 : (i - 4) / 3 + 1]
        return .init(name: "c\(i)", geometry: conv(c, s))
    }

    @Test func resnet18AtTheDefaultBudgetTakesF4OnTheLargeMaps() {
        // The 7x7 convs stay direct (16 tiles); 32 MiB then holds F(4x4) for the 56x56 and
        // 28x28 convs and F(2x2) for the 14x14 ones.
        let t = WinogradSelection.choose(Self.resnet18Full, budgetBytes: PlanOptions().winogradBudgetBytes)
        #expect((0..<7).allSatisfy { t["c\($0)"] == 4 } && (7..<10).allSatisfy { t["c\($0)"] == 2 }, "\(t)")
        #expect((10..<13).allSatisfy { t["c\($0)"] == nil }, "\(t)")
    }

    /// 12 MiB cannot hold F(4x4) for every 28x28 conv; the 56x56 convs, whose F(4x4) costs
    /// the fewest bytes for its saving, keep it.
    @Test func aTightBudgetLeavesSomeLargeMapsAtF2() {
        let t = WinogradSelection.choose(Self.resnet18Full, budgetBytes: 12 << 20)
        #expect((0..<4).allSatisfy { t["c\($0)"] == 4 }, "\(t)")
        #expect((4..<7).contains { t["c\($0)"] != 4 }, "\(t)")
    }

    /// The knapsack against brute force over every combination, with the same byte units.
    @Test(arguments: Array(0..<24 as Range<UInt64>))
    func choiceIsOptimal(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let convs: [WinogradSelection.Conv] = (0..<rng.int(1...6)).map { i in
            let s = [7, 14, 28, 56][rng.int(0...3)]
            return .init(name: "c\(i)", geometry: Self.conv(16 * rng.int(4...20), s))
        }
        let unit = 4096, budget = rng.int(0...(6 << 20))
        func units(_ g: ConvGeometry, _ tile: Int) -> Int { (WinogradSelection.extraBytes(g, tile: tile) + unit - 1) / unit }
        func saved(_ t: [String: Int]) -> Double {
            convs.reduce(0) { sum, c in
                guard let tile = t[c.name] else { return sum }
                return sum + WinogradSelection.directWork(c.geometry) - WinogradSelection.work(c.geometry, tile: tile)
            }
        }
        let chosen = WinogradSelection.choose(convs, budgetBytes: budget, unit: unit)
        let byName = Dictionary(uniqueKeysWithValues: convs.map { ($0.name, $0.geometry) })
        #expect(chosen.reduce(0) { sum, kv in sum + units(byName[kv.key]!, kv.value) } <= budget / unit)
        // Brute force: every assignment of direct / F2 / F4 (where allowed) within the budget.
        var best = 0.0
        var assignment = [Int](repeating: 0, count: convs.count)
        func allowed(_ c: WinogradSelection.Conv, _ tile: Int) -> Bool {
            let (th, tw) = Winograd.tiles(c.geometry, tile: tile)
            return th * tw >= 49
                && WinogradSelection.work(c.geometry, tile: tile) < WinogradSelection.directWork(c.geometry)
        }
        func search(_ i: Int, _ used: Int) {
            if i == convs.count {
                var t: [String: Int] = [:]
                for (k, a) in assignment.enumerated() where a > 0 { t[convs[k].name] = a }
                best = max(best, saved(t))
                return
            }
            for tile in [0, 2, 4] where tile == 0 || allowed(convs[i], tile) {
                let cost = tile == 0 ? 0 : units(convs[i].geometry, tile)
                guard used + cost <= budget / unit else { continue }
                assignment[i] = tile
                search(i + 1, used + cost)
            }
            assignment[i] = 0
        }
        search(0, 0)
        #expect(abs(saved(chosen) - best) <= 1e-9 * max(best, 1), "\(chosen) saves \(saved(chosen)), best \(best)")
    }

    @Test func extraBytesAreTheTransformedMinusPackedWeights() {
        // 512 x 512 x 3 x 3 weights: F(2x2) holds 16 floats per (oc, ic) instead of 9,
        // F(4x4) 36; rows are padded to whole 6-row panels (512 -> 516) either way.
        let g = Self.conv(512, 7)
        #expect(WinogradSelection.extraBytes(g, tile: 2) == 4 * 516 * 512 * (16 - 9))
        #expect(WinogradSelection.extraBytes(g, tile: 4) == 4 * 516 * 512 * (36 - 9))
    }
}
