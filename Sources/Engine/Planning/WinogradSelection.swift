/// Which 3x3 convs run as Winograd F(2x2) or F(4x4), within a memory budget.
///
/// Winograd trades memory for time: the transformed weights are 16/9 (F2) or 36/9 (F4) the
/// size of the 3x3 weights, and a ResNet-18 transformed everywhere would hold about 50 MB
/// more than its 45 MB of weights. Each conv has up to three options (direct, F2, F4), each
/// with an estimated work and extra bytes; the selection takes the combination that saves
/// the most estimated work with the extra bytes within the budget
/// (``PlanOptions/winogradBudgetBytes``): a multiple-choice knapsack, solved exactly by
/// dynamic programming over the budget in units of ``unitBytes(budget:)`` (each option's
/// bytes rounded up to whole units, so the real total never exceeds the budget). A greedy
/// choice by work saved per byte is not enough: at ResNet-18's 32 MiB it upgraded the
/// 28x28 convs to F(4x4) first and then had no room left for one 7x7 conv's F(2x2), which
/// direct convolution runs much slower.
///
/// Work model, in multiply-accumulate units per image: direct `9 * O16 * Cin * Cout`
/// (`O16` output pixels rounded up to the GEMM's 16-wide strips); F(m)
/// `α² * T16 * Cin * Cout + 3 * α² * T * (Cin + Cout)` with `T` tiles, `T16` rounded up
/// likewise and `α = m + 2` (the second term is the transforms). It ranks candidates; it
/// does not predict milliseconds.
///
/// Measured limits (ResNet-18, 2 threads): since the transforms are vectorized C,
/// F(4x4) beats F(2x2) on 28x28 maps as well as 56x56 (49 and 196 tiles), so F(4x4) needs
/// at least 49 tiles; below 64 input channels the transforms outweigh the shortened GEMMs.
/// F(2x2) needs 49 tiles too: on the 7x7 maps (16 tiles, 512 channels) it saved 13% of
/// the direct conv's time (1.04 against 1.19 ms), once the GEMM prefetched its weights,
/// not the 55% this model gives it (the image streams 1.8x the weight bytes, and 16
/// columns run on the slower lone-strip tiles), and the budget it took kept the 28x28
/// convs at F(2x2) (0.47 ms against 0.32 ms at F(4x4)): the whole net ran 3% faster and
/// held 19 MB less without it.
enum WinogradSelection {
    /// One candidate conv: a name to report the choice under and its geometry.
    struct Conv {
        var name: String
        var geometry: ConvGeometry
    }

    /// The knapsack's byte unit: at least 64 KiB, and at most 4096 units in any budget.
    static func unitBytes(budget: Int) -> Int { max(64 << 10, budget / 4096) }

    /// The tile side (2 or 4) chosen for each conv that should run as Winograd.
    static func choose(_ convs: [Conv], budgetBytes: Int) -> [String: Int] {
        choose(convs, budgetBytes: budgetBytes, unit: unitBytes(budget: budgetBytes))
    }

    /// ``choose(_:budgetBytes:)`` with an explicit byte unit (tests).
    static func choose(_ convs: [Conv], budgetBytes: Int, unit: Int) -> [String: Int] {
        struct Option { var tile: Int?, work: Double, extraBytes: Int }
        var options: [[Option]] = []
        for c in convs {
            let g = c.geometry
            var list = [Option(tile: nil, work: directWork(g), extraBytes: 0)]
            if Winograd.applies(g), g.inChannels >= 64 {  // fewer: the transforms dominate (measured)
                for tile in [2, 4] {
                    let (th, tw) = Winograd.tiles(g, tile: tile)
                    guard th * tw >= 49 else { continue }
                    let o = Option(tile: tile, work: work(g, tile: tile), extraBytes: extraBytes(g, tile: tile))
                    if o.work < list[0].work { list.append(o) }
                }
            }
            options.append(list)
        }
        func units(_ o: Option) -> Int { (max(o.extraBytes, 0) + unit - 1) / unit }
        // Everything fits: the least work everywhere (also keeps an unlimited budget cheap).
        let most = options.reduce(0) { sum, list in sum + list.map { max($0.extraBytes, 0) }.max()! }
        if most <= budgetBytes {
            var result: [String: Int] = [:]
            for (i, c) in convs.enumerated() {
                if let t = options[i].min(by: { $0.work < $1.work })!.tile { result[c.name] = t }
            }
            return result
        }
        // saved[u]: the most work saved by the convs so far within u units; pick[i][u]: the
        // option conv i takes in that optimum.
        let capacity = max(0, budgetBytes / unit)
        var saved = [Double](repeating: 0, count: capacity + 1)
        var pick: [[UInt8]] = []
        for list in options {
            var next = saved
            var choice = [UInt8](repeating: 0, count: capacity + 1)
            for (j, o) in list.enumerated() where j > 0 {
                let cost = units(o), gain = list[0].work - o.work
                guard cost <= capacity else { continue }
                for u in cost...capacity where saved[u - cost] + gain > next[u] {
                    next[u] = saved[u - cost] + gain
                    choice[u] = UInt8(j)
                }
            }
            saved = next
            pick.append(choice)
        }
        var result: [String: Int] = [:]
        var u = capacity
        for i in convs.indices.reversed() {
            let j = Int(pick[i][u])
            guard j > 0 else { continue }
            result[convs[i].name] = options[i][j].tile
            u -= units(options[i][j])
        }
        return result
    }

    static func directWork(_ g: ConvGeometry) -> Double {
        let o16 = (g.outPixels + 15) / 16 * 16
        return Double(g.batch * o16) * Double(g.patchSize) * Double(g.groupOutChannels * g.groups)
    }

    static func work(_ g: ConvGeometry, tile: Int) -> Double {
        let (th, tw) = Winograd.tiles(g, tile: tile)
        let t = th * tw, t16 = (t + 15) / 16 * 16, points = Double((tile + 2) * (tile + 2))
        let gemm = points * Double(t16) * Double(g.inChannels * g.outChannels)
        let transforms = 3 * points * Double(t) * Double(g.inChannels + g.outChannels)
        return Double(g.batch) * (gemm + transforms)
    }

    /// Bytes the transformed weights take beyond the direct (packed) weights.
    static func extraBytes(_ g: ConvGeometry, tile: Int) -> Int {
        4
            * (Winograd.transformedWeightCount(outChannels: g.outChannels, inChannels: g.inChannels, tile: tile)
                - Conv2d.packedWeightCount(g))
    }
}
