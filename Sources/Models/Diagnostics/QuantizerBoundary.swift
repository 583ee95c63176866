import Engine

/// Where a quantizer's output level changes between two inputs of one element: the float32
/// rounding boundary that per-layer `verify` reports for a quantize op whose input differs
/// by rounding and whose output differs by a whole level.
///
/// The search is method-agnostic: it applies the quantize op's own function to A's input
/// tensor with element `index` set to values between A's and B's input, bisecting over the
/// float32 values between them (about 32 applications). Functions with whole-tensor
/// statistics (XNOR's mean, LQ-Nets' adaptive scale) see the statistics move with the probed
/// element, as they would in the model.
package struct QuantizerBoundary: Sendable, Encodable, Equatable {
    /// The last float32 (towards B's input) that still gives A's level.
    package var lastOnASide: Float
    /// The first float32 that gives another level: the boundary lies between these two.
    package var firstOnBSide: Float
    /// |A's input - firstOnBSide| and the same in float32 steps (ulps).
    package var distanceA: Float
    package var ulpsA: Int
    /// |B's input - lastOnASide| and the same in float32 steps.
    package var distanceB: Float
    package var ulpsB: Int

    enum CodingKeys: String, CodingKey {
        case lastOnASide = "last_on_a_side", firstOnBSide = "first_on_b_side"
        case distanceA = "distance_a", ulpsA = "ulps_a", distanceB = "distance_b", ulpsB = "ulps_b"
    }

    /// The boundary between `x[index]` and `other`, or nil when the function gives element
    /// `index` the same output at both (the level change is not caused by this element's input).
    package static func locate(
        _ f: any QuantizeFunction, input x: [Float], shape: [Int], index: Int, other: Float
    ) throws -> QuantizerBoundary? {
        var probe = x
        func level(_ v: Float) throws -> Float {
            probe[index] = v
            return try f.apply(probe, shape: shape)[index]
        }
        let a = x[index]
        let ya = try level(a)
        guard a != other, try level(other) != ya else { return nil }
        var lo = FloatOrder.key(a), hi = FloatOrder.key(other)
        while abs(hi - lo) > 1 {
            let mid = lo + (hi - lo) / 2
            if try level(FloatOrder.float(mid)) == ya { lo = mid } else { hi = mid }
        }
        let last = FloatOrder.float(lo), first = FloatOrder.float(hi)
        return QuantizerBoundary(
            lastOnASide: last, firstOnBSide: first,
            distanceA: abs(a - first), ulpsA: FloatOrder.ulps(a, first),
            distanceB: abs(other - last), ulpsB: FloatOrder.ulps(other, last))
    }
}

/// float32 values as ordered integers (adjacent floats differ by 1; -0 and +0 are both 0).
package enum FloatOrder {
    package static func key(_ f: Float) -> Int64 {
        let m = Int64(f.bitPattern & 0x7fff_ffff)
        return f.sign == .minus ? -m : m
    }

    package static func float(_ k: Int64) -> Float {
        k >= 0 ? Float(bitPattern: UInt32(k)) : Float(bitPattern: UInt32(-k) | 0x8000_0000)
    }

    /// Float32 steps between `a` and `b` (saturating at Int.max for NaN).
    package static func ulps(_ a: Float, _ b: Float) -> Int {
        guard !a.isNaN, !b.isNaN else { return .max }
        return Int(abs(key(a) - key(b)))
    }
}
