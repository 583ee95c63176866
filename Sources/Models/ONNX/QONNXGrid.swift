import Engine

/// The settings of one QONNX `Quant` node (domain `qonnx.custom_op.general`; newer qonnx calls
/// the op `IntQuant` and still reads `Quant`):
///
/// ```
/// y = (clamp(round(x / scale + zeropt), minInt, maxInt) − zeropt) · scale      (round: half to even)
/// signed:   minInt = −2^(b−1) (+1 if narrow),  maxInt = 2^(b−1) − 1
/// unsigned: minInt = 0,                        maxInt = 2^b − 1 (−1 if narrow)
/// ```
///
/// A QTool uniform quantizer with `L = n + 1` levels has the outputs `(k − z)·scale`,
/// k = 0…n: `z = 0` one-sided (DoReFa, PACT, LSQ activations) and `z = n/2` two-sided (LSQ
/// `{−s, −s/3, s/3, s}`, DoReFa weights `{−1, −1/3, 1/3, 1}`). ``init(levels:twoSided:)``
/// picks the Quant form with exactly those outputs:
/// - one-sided: unsigned, zeropt 0 (`narrow` when `n = 2^b − 2`, e.g. 3 levels in 2 bits);
/// - two-sided, odd L (n even): signed narrow, zeropt 0: integers `−n/2 … n/2` (ternary = 2 bits);
/// - two-sided, even L (n odd): unsigned with the half-integer zeropt `n/2`: QTool's grid has no
///   zero level, so no zero-zeropt integer grid of `b` bits holds it (this is LSQ's own
///   `u = (x/s + 1)/2` form).
/// When `[minInt, maxInt]` is wider than the `L` codes (5, 6, 7, 9 … levels), ``exact`` is false
/// and the caller bounds activations to the extreme levels first (weights are already on the grid).
package struct QONNXGrid: Equatable, Sendable {
    /// Output levels minus one (`L − 1`).
    package var n: Int
    package var bits: Int
    package var signed: Bool
    package var narrow: Bool
    /// Subtracted after rounding (added before).
    package var zeroPoint: Float
    /// The integer codes of the lowest and highest level (`−n/2 … n/2` signed, `0 … n` unsigned).
    package var lowCode: Int, highCode: Int

    package init(levels n: Int, twoSided: Bool) {
        self.n = n
        if twoSided && n % 2 == 0 {
            signed = true
            narrow = true
            zeroPoint = 0
            (lowCode, highCode) = (-n / 2, n / 2)
            var b = 2
            while (1 << (b - 1)) - 1 < n / 2 { b += 1 }
            bits = b
        } else {
            signed = false
            zeroPoint = twoSided ? Float(n) / 2 : 0
            (lowCode, highCode) = (0, n)
            var b = 1
            while (1 << b) - 1 < n { b += 1 }
            bits = b
            narrow = b > 1 && n == (1 << b) - 2
        }
    }

    package var minInt: Int { signed ? -(1 << (bits - 1)) + (narrow ? 1 : 0) : 0 }
    package var maxInt: Int { signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1 - (narrow ? 1 : 0) }

    /// True when Quant's integer range is exactly the quantizer's `L` codes.
    package var exact: Bool { minInt == lowCode && maxInt == highCode }

    /// The level of code `k` as Quant computes it in float32: `(k − zeropt) · scale`.
    package func level(_ k: Int, scale: Float) -> Float { (Float(k) - zeroPoint) * scale }

    /// The code of an on-grid value `w`, or nil when `w / scale + zeropt` is not within 1e-3 of
    /// an integer in `lowCode…highCode` (Quant would then move it).
    package func code(of w: Float, scale: Float) -> Int? {
        let t = w / scale + zeroPoint
        let k = t.rounded(.toNearestOrEven)
        guard t.isFinite, abs(t - k) <= 1e-3, k >= Float(lowCode), k <= Float(highCode) else { return nil }
        return Int(k)
    }

    /// What the metadata says, e.g. `unsigned 2-bit, zeropt 1.5`.
    package var summary: String {
        let z = zeroPoint == zeroPoint.rounded() ? String(Int(zeroPoint)) : String(zeroPoint)
        return "\(signed ? "signed" : "unsigned")\(narrow ? " narrow" : "") \(bits)-bit, zeropt \(z)"
    }
}
