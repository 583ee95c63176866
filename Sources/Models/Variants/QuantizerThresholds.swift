import Engine

/// The inputs where an integer-code activation quantizer steps up, found exactly, so that a
/// bit-packed conv can quantize its input itself (``Engine/BinaryConv2dAttributes/thresholds``)
/// and the float quantize op, and the tensor it writes, disappear.
///
/// The quantizer must be an element-wise, non-decreasing step function of its input with the
/// codes `lo ... hi` as outputs: FATNN's non-uniform quantizer with one group and no
/// `STE-scale` (each term `round(clamp((x - o) * a, 0, 1))` with `a = |alpha| >= 0` is
/// non-decreasing in `x`, and so is their sum). Threshold `k` is the smallest float `x` whose
/// code is at least `lo + k`, found by bisection over the floats in their order (32 steps),
/// asking the quantizer itself, so it is the quantizer's own float arithmetic that decides and
/// no formula is re-derived. The result is checked at each threshold and just below it, at the
/// zeros and the infinities; any disagreement refuses the fusion (the conv then reads the
/// quantizer's output as before).
enum QuantizerThresholds {
    /// The thresholds of `q` for codes `range`, or nil when `q` is not one such quantizer.
    static func of(_ q: Quantizer, codes range: ClosedRange<Int>) -> [Float]? {
        let c = q.config
        guard c.quantGroup == 1, !c.scaledClamp else { return nil }
        func code(_ x: Float) -> Int? {
            guard let y = try? q.apply([x], shape: [1, 1, 1, 1]), let v = y.first, v.rounded() == v,
                range.contains(Int(v))
            else { return nil }
            return Int(v)
        }
        var thresholds: [Float] = []
        for level in (range.lowerBound + 1)...range.upperBound {
            guard let top = code(.infinity), let bottom = code(-.infinity) else { return nil }
            if top < level {
                thresholds.append(.nan)  // never reached
                continue
            }
            if bottom >= level {
                thresholds.append(-.infinity)
                continue
            }
            // code(key lo) < level <= code(key hi); keys order the floats from -inf to +inf.
            var lo = key(-.infinity)
            var hi = key(.infinity)
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2
                guard let m = code(float(mid)) else { return nil }
                if m >= level { hi = mid } else { lo = mid }
            }
            thresholds.append(float(hi))
        }
        // The count of thresholds reached must be the quantizer's code wherever it can differ.
        var probes: [Float] = [0, -0.0, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        for t in thresholds where t.isFinite { probes += [t, t.nextDown, t.nextUp] }
        for x in probes {
            guard code(x) == BinaryConv2dAttributes.code(x, lowest: range.lowerBound, thresholds: thresholds) else {
                return nil
            }
        }
        return thresholds
    }

    /// The float's place in the order of the floats (-inf first); NaNs are never asked for.
    private static func key(_ x: Float) -> UInt32 {
        x.sign == .minus ? ~x.bitPattern : x.bitPattern | 0x8000_0000
    }

    private static func float(_ k: UInt32) -> Float {
        Float(bitPattern: k & 0x8000_0000 != 0 ? k & 0x7fff_ffff : ~k)
    }
}
