import Engine
import Models
import Testing

/// The QONNX `Quant` forms of QTool's uniform level sets. Expected ranges are the QONNX
/// `min_int`/`max_int` table (quant_op.md): signed [−2^(b−1) (+1 narrow), 2^(b−1) − 1],
/// unsigned [0, 2^b − 1 (−1 narrow)]; expected levels are seed-reference §11.15.
@Suite struct QONNXGridTests {
    /// (levels − 1, two-sided) → "signed narrow bits zeropt minInt maxInt exact".
    @Test(arguments: [
        (1, false, "0 0 1 0.0 0 1 true"),  // {0, c}
        (2, false, "0 1 2 0.0 0 2 true"),  // {0, c/2, c}: unsigned narrow
        (3, false, "0 0 2 0.0 0 3 true"),
        (4, false, "0 0 3 0.0 0 7 false"),  // 5 levels in 3 bits
        (15, false, "0 0 4 0.0 0 15 true"),
        (1, true, "0 0 1 0.5 0 1 true"),  // {−s, s}
        (2, true, "1 1 2 0.0 -1 1 true"),  // ternary
        (3, true, "0 0 2 1.5 0 3 true"),  // {−s, −s/3, s/3, s}
        (4, true, "1 1 3 0.0 -3 3 false"),  // 5 levels: [−2, 2] in [−3, 3]
        (6, true, "1 1 3 0.0 -3 3 true"),
        (15, true, "0 0 4 7.5 0 15 true"),
    ])
    func formsOfUniformLevels(_ n: Int, _ twoSided: Bool, _ want: String) {
        let g = QONNXGrid(levels: n, twoSided: twoSided)
        let got = "\(g.signed ? 1 : 0) \(g.narrow ? 1 : 0) \(g.bits) \(g.zeroPoint) \(g.minInt) \(g.maxInt) \(g.exact)"
        #expect(got == want)
        #expect(g.highCode - g.lowCode == n)
    }

    @Test func levelsAreQToolsTwoSidedGrid() {
        // LSQ 2-bit two-sided with step s = 0.9: levels s·{−1, −1/3, 1/3, 1}, scale 2s/3.
        let s: Float = 0.9
        let g = QONNXGrid(levels: 3, twoSided: true)
        let scale = 2 * s / 3
        let levels = (0...3).map { g.level($0, scale: scale) }
        for (got, want) in zip(levels, [-s, -s / 3, s / 3, s]) { #expect(abs(got - want) <= 1e-6) }
        // On-grid values give their code; off-grid (0 is no level) and out-of-range give nil.
        #expect(levels.map { g.code(of: $0, scale: scale) } == [0, 1, 2, 3])
        #expect(g.code(of: 0, scale: scale) == nil)
        #expect(g.code(of: 3 * s, scale: scale) == nil)
        #expect(g.code(of: .nan, scale: scale) == nil)
    }
}
