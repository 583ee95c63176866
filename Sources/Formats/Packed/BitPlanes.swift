import Tensors

/// The bit layout of a `bnnpack` version 1 plane (bitpacking.md §8.2), in one place.
///
/// ```
/// a plane is `rows` rows of `count` logical elements; each row takes rowBytes(count) bytes
/// element i of a row  ->  byte i >> 3, bit i & 7       (LSB-first, "lsb0"; = little-endian u64 words)
/// bit 1 = -1, bit 0 = +1                               (binary weights; the IEEE sign bit)
/// rowBytes(count) = 8 * ceil(count / 64)               (rows padded with 0 bits to 64 bits)
/// ternary: sign plane + mask plane, value = mask * (1 - 2 * sign), and sign & ~mask = 0
/// ```
///
/// A conv weight `[Cout, Cin_g, KH, KW]` is stored OHWI: row `(o * KH + kh) * KW + kw` holds
/// the `Cin_g` input channels of that tap. A dense weight `[Out, In]` has one row per output.
public enum BitPlanes {
    /// Bytes of one packed row of `count` elements (a multiple of 8, 0 for an empty row).
    public static func rowBytes(_ count: Int) -> Int { (count + 63) / 64 * 8 }

    /// Packs `rows` rows of `count` elements; `bit(row, i)` says whether element `i` of `row`
    /// is a 1. Padding bits are 0.
    public static func pack(rows: Int, count: Int, _ bit: (Int, Int) -> Bool) -> [UInt8] {
        let stride = rowBytes(count)
        var out = [UInt8](repeating: 0, count: rows * stride)
        for r in 0..<rows {
            for i in 0..<count where bit(r, i) {
                out[r * stride + i >> 3] |= UInt8(1) << UInt8(i & 7)
            }
        }
        return out
    }

    /// Bit `i` of row `row` of a plane of `count`-element rows.
    @inline(__always)
    public static func bit(_ plane: [UInt8], row: Int, _ i: Int, count: Int) -> Bool {
        (plane[row * rowBytes(count) + i >> 3] >> UInt8(i & 7)) & 1 == 1
    }

    /// The first padding bit that is set, as (row, bit index within the row), or nil.
    public static func firstSetPaddingBit(_ plane: [UInt8], rows: Int, count: Int) -> (row: Int, bit: Int)? {
        let stride = rowBytes(count)
        guard stride * 8 > count else { return nil }
        for r in 0..<rows {
            for b in (count >> 3)..<stride {
                var byte = plane[r * stride + b]
                if b == count >> 3 { byte &= ~UInt8(truncatingIfNeeded: (1 << (count & 7)) - 1) }
                if byte != 0 { return (r, b * 8 + byte.trailingZeroBitCount) }
            }
        }
        return nil
    }

    /// The first element whose sign bit is set while its mask bit is 0 (a non-canonical ternary
    /// value), as (row, element), or nil.
    public static func firstSignOutsideMask(
        sign: [UInt8], mask: [UInt8], rows: Int, count: Int
    ) -> (row: Int, element: Int)? {
        let stride = rowBytes(count)
        for r in 0..<rows {
            for b in 0..<stride {
                let bad = sign[r * stride + b] & ~mask[r * stride + b]
                if bad != 0 { return (r, b * 8 + bad.trailingZeroBitCount) }
            }
        }
        return nil
    }
}
