/// Which 3x3 convs run as Winograd F(2x2) or F(4x4), within a memory budget.
///
/// Winograd trades memory for time: the transformed weights are 16/9 (F2) or 36/9 (F4) the
/// size of the 3x3 weights, and a ResNet-18 transformed everywhere would hold about 50 MB
/// more than its 45 MB of weights. The selection starts from direct convolution everywhere
/// and greedily takes the upgrade (direct -> F2, direct -> F4, F2 -> F4 of one conv) that
/// saves the most estimated work per extra byte, while the extra bytes stay within the
/// budget (``PlanOptions/winogradBudgetBytes``).
///
/// Work model, in multiply-accumulate units per image: direct `9 * O * Cin * Cout`
/// (`O` output pixels); F(m) `α² * T16 * Cin * Cout + 3 * α² * T * (Cin + Cout)` with `T`
/// tiles, `T16` tiles rounded up to the GEMM's 16-wide strips and `α = m + 2` (the second
/// term is the transforms). It ranks candidates; it does not predict milliseconds.
///
/// Measured limits (ResNet-18, 2 threads, 4 interleaved rounds): F(4x4) beats F(2x2) on
/// 56x56 maps (196 tiles; 0.70-0.77x the time) but loses on 28x28 (49 tiles; 1.27-1.37x: the
/// GEMMs are too narrow for 16-wide strips and the transforms cost more than the model
/// says), so F(4x4) needs at least 64 tiles and F(2x2) 16; below 64 input channels the
/// transforms outweigh the shortened GEMMs.
enum WinogradSelection {
    /// One candidate conv: a name to report the choice under and its geometry.
    struct Conv {
        var name: String
        var geometry: ConvGeometry
    }

    /// The tile side (2 or 4) chosen for each conv that should run as Winograd.
    static func choose(_ convs: [Conv], budgetBytes: Int) -> [String: Int] {
        struct Option { var tile: Int?, work: Double, extraBytes: Int }
        var options: [[Option]] = []
        for c in convs {
            let g = c.geometry
            var list = [Option(tile: nil, work: directWork(g), extraBytes: 0)]
            if Winograd.applies(g), g.inChannels >= 64 {  // fewer: the transforms dominate (measured)
                for tile in [2, 4] {
                    let (th, tw) = Winograd.tiles(g, tile: tile)
                    guard th * tw >= (tile == 2 ? 16 : 64) else { continue }
                    list.append(Option(tile: tile, work: work(g, tile: tile), extraBytes: extraBytes(g, tile: tile)))
                }
            }
            options.append(list)
        }
        var chosen = [Int](repeating: 0, count: convs.count)  // index into options[i]
        var spent = 0
        while true {
            var best: (conv: Int, option: Int, density: Double)? = nil
            for i in options.indices {
                let now = options[i][chosen[i]]
                for (j, o) in options[i].enumerated() where o.extraBytes > now.extraBytes && o.work < now.work {
                    let more = o.extraBytes - now.extraBytes
                    guard spent + more <= budgetBytes else { continue }
                    let density = (now.work - o.work) / Double(more)
                    if density > best?.density ?? 0 { best = (i, j, density) }
                }
            }
            guard let b = best else { break }
            spent += options[b.conv][b.option].extraBytes - options[b.conv][chosen[b.conv]].extraBytes
            chosen[b.conv] = b.option
        }
        var result: [String: Int] = [:]
        for (i, c) in convs.enumerated() { if let t = options[i][chosen[i]].tile { result[c.name] = t } }
        return result
    }

    static func directWork(_ g: ConvGeometry) -> Double {
        Double(g.batch * g.outPixels) * Double(g.patchSize) * Double(g.groupOutChannels * g.groups)
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
        4 * (Winograd.transformedWeightCount(outChannels: g.outChannels, inChannels: g.inChannels, tile: tile)
            - Conv2d.packedWeightCount(g))
    }
}
