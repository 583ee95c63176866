#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// SplitMix64 (Steele, Lea and Flood 2014): qtools' one seeded random source.
///
/// Random weights (`ModelBuilder.buildRandom`), random inputs (`run`, `verify`, conversion
/// checks) and the tests all draw from it, so a seed names the same numbers everywhere and a
/// failing test can be replayed from its seed. The value streams are part of the contract:
/// ``nextSignedUnit()`` and ``normalTensor(shape:seed:)`` must keep producing the same numbers.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state (the seed plus the number of draws times the golden gamma).
    public private(set) var state: UInt64

    /// Seeds the generator; the first draw mixes `seed + 0x9E3779B97F4A7C15`.
    public init(seed: UInt64) { state = seed }

    /// Next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1) on a grid of 2^-23: `Float(next() >> 40) / 2^23 - 1` (exact).
    public mutating func nextSignedUnit() -> Float {
        Float(next() >> 40) / Float(1 << 23) - 1
    }

    /// Uniform in (0, 1) with 53 random bits: `(Double(next() >> 11) + 0.5) / 2^53`.
    public mutating func nextOpenUnit() -> Double {
        (Double(next() >> 11) + 0.5) / Double(1 << 53)
    }

    /// A uniform integer in `r` (through the standard library's `Int.random`).
    public mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &self) }

    /// A fair coin.
    public mutating func bool() -> Bool { Bool.random(using: &self) }

    /// `n` uniform floats in [lo, hi) (through the standard library's `Float.random`).
    public mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in Float.random(in: lo..<hi, using: &self) }
    }

    /// A float32 tensor of N(0, 1) values, seeded: Box-Muller over ``nextOpenUnit()``, each
    /// pair of draws giving `r cos t` then `r sin t`. The random input of `run` and `verify`
    /// and of the conversion checks.
    public static func normalTensor(shape: [Int], seed: UInt64) -> Tensor {
        var g = SplitMix64(seed: seed)
        let n = shape.reduce(1, *)
        var v: [Float] = []
        v.reserveCapacity(n)
        while v.count < n {
            let r = (-2 * log(g.nextOpenUnit())).squareRoot(), t = 2 * Double.pi * g.nextOpenUnit()
            v.append(Float(r * cos(t)))
            if v.count < n { v.append(Float(r * sin(t))) }
        }
        return Tensor(floats: v, shape: shape)
    }
}
