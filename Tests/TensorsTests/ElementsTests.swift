import TestSupport
import Testing

@testable import Tensors

@Suite struct ElementsTests {
    /// Every half bit pattern (except NaN payloads) survives half -> float -> half.
    @Test func halfRoundTripsAllPatterns() {
        for h in UInt16.min...UInt16.max {
            let f = Elements.halfToFloat(h)
            if f.isNaN { continue }
            #expect(Elements.floatToHalf(f) == h, "pattern 0x\(String(h, radix: 16))")
        }
    }

    @Test func halfKnownValues() {
        #expect(Elements.halfToFloat(0x3c00) == 1)
        #expect(Elements.halfToFloat(0xc000) == -2)
        #expect(Elements.halfToFloat(0x0001) == Float(sign: .plus, exponent: -24, significand: 1))
        #expect(Elements.halfToFloat(0x7bff) == 65504)
        // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1.0).
        #expect(Elements.floatToHalf(1 + Float(sign: .plus, exponent: -11, significand: 1)) == 0x3c00)
        #expect(Elements.floatToHalf(70000) == 0x7c00)
    }

    @Test func bfloat16RoundsToNearestEven() {
        #expect(Elements.floatToBFloat16(1) == 0x3f80)
        // 1 + 2^-8 is halfway: ties to even -> 1.0; 1 + 3*2^-8 -> rounds up.
        #expect(Elements.floatToBFloat16(1 + Float(sign: .plus, exponent: -8, significand: 1)) == 0x3f80)
        #expect(Elements.floatToBFloat16(1 + 3 * Float(sign: .plus, exponent: -8, significand: 1)) == 0x3f82)
        #expect(Elements.bfloat16ToFloat(0xc040) == -3)
    }
}
