/// Element decoding: every dtype to `Double` (real part for complex types).
///
/// Decoding is done on little-endian bytes, so results do not depend on the host.
extension Tensor {
    /// Element `i` as a `Double` (complex: real part; bool: 0/1).
    public func element(_ i: Int) -> Double {
        Elements.decode(data, dtype: dtype, index: i)
    }

    /// The imaginary part of element `i` of a complex tensor (0 for real dtypes).
    public func imaginaryPart(_ i: Int) -> Double {
        let w = dtype.byteWidth
        switch dtype {
        case .complex64: return Double(Float(bitPattern: UInt32(Elements.loadLE(data, i * w + 4, 4))))
        case .complex128: return Double(bitPattern: Elements.loadLE(data, i * w + 8, 8))
        default: return 0
        }
    }

    /// All elements as `Float`.
    public func floats() -> [Float] {
        if dtype == .float32 {
            let n = elementCount
            return unsafe data.withUnsafeBytes { raw in
                unsafe [Float](unsafeUninitializedCapacity: n) { dst, count in
                    unsafe UnsafeMutableRawBufferPointer(dst).copyMemory(from: raw)
                    count = n
                }
            }
        }
        return (0..<elementCount).map { Float(element($0)) }
    }

    /// Calls `body` with the elements as `Float`: float32 data that is 4-byte aligned is
    /// passed in place (no copy; a mapped checkpoint's pages), anything else as a converted
    /// copy. The pointer must not escape `body`.
    public func withFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let n = elementCount
        if dtype == .float32, n > 0 {
            let aligned = unsafe data.withUnsafeBytes { raw in
                unsafe raw.count >= 4 * n && Int(bitPattern: raw.baseAddress) % MemoryLayout<Float>.alignment == 0
            }
            if aligned {
                return try unsafe data.withUnsafeBytes { raw in
                    try unsafe UnsafeRawBufferPointer(rebasing: raw[0..<(4 * n)]).withMemoryRebound(to: Float.self) {
                        try unsafe body($0)
                    }
                }
            }
        }
        return try unsafe floats().withUnsafeBufferPointer { try unsafe body($0) }
    }

    /// Appends all elements as `Float` to `out`; float32 is one bulk copy, with no temporary
    /// array (packing a model's weights).
    public func appendFloats(to out: inout [Float]) {
        guard dtype == .float32 else {
            out += floats()
            return
        }
        let start = out.count * 4
        out.append(contentsOf: repeatElement(0, count: elementCount))
        unsafe data.withUnsafeBytes { raw in
            unsafe out.withUnsafeMutableBytes { dst in
                unsafe UnsafeMutableRawBufferPointer(rebasing: dst[start...]).copyMemory(from: raw)
            }
        }
    }

    /// All elements as `Double`.
    public func doubles() -> [Double] {
        (0..<elementCount).map { element($0) }
    }
}

/// Scalar decoders for each dtype (safe, bounds-checked byte access).
public enum Elements {
    /// Little-endian unsigned integer of `width` bytes at `offset`.
    @inline(__always)
    public static func loadLE(_ s: ByteSlice, _ offset: Int, _ width: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<width { v |= UInt64(s[offset + k]) << (8 * UInt64(k)) }
        return v
    }

    /// IEEE half to Float.
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = UInt32((h >> 10) & 0x1f)
        let man = UInt32(h & 0x3ff)
        if exp == 0 {
            if man == 0 { return Float(bitPattern: sign) }
            // subnormal: man * 2^-24
            let v = Float(man) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (man << 13)) }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (man << 13))
    }

    /// Float to IEEE half, round to nearest even (as torch's `.half()`).
    public static func floatToHalf(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xff)
        var man = x & 0x7f_ffff
        if exp == 0xff { return sign | 0x7c00 | (man != 0 ? 0x200 : 0) }
        var e = exp - 127 + 15
        if e >= 31 { return sign | 0x7c00 }
        if e <= 0 {
            if e < -10 { return sign }
            man |= 0x80_0000
            let shift = UInt32(14 - e)
            var half = man >> shift
            let rem = man & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && (half & 1) == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(e << 10) | (man >> 13)
        let rem = man & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && (half & 1) == 1) { half += 1 }
        e = Int(half >> 10)
        return sign | UInt16(truncatingIfNeeded: half)
    }

    /// bfloat16 to Float (upper 16 bits of a float32).
    public static func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// Float to bfloat16, round to nearest even (as torch's `.bfloat16()`); NaN stays NaN.
    public static func floatToBFloat16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if f.isNaN { return UInt16(x >> 16) | 0x40 }
        let lsb = (x >> 16) & 1
        return UInt16((x &+ 0x7fff &+ lsb) >> 16)
    }

    /// float8 e4m3fn to Float.
    static func e4m3fnToFloat(_ b: UInt8) -> Float {
        let sign: Float = (b & 0x80) != 0 ? -1 : 1
        let exp = Int((b >> 3) & 0xf)
        let man = Float(b & 0x7)
        if exp == 0xf && (b & 0x7) == 0x7 { return .nan }
        if exp == 0 { return sign * man / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + man / 8) * Float(sign: .plus, exponent: exp - 7, significand: 1)
    }

    /// float8 e5m2 to Float (the upper byte of a half).
    static func e5m2ToFloat(_ b: UInt8) -> Float { halfToFloat(UInt16(b) << 8) }

    /// Element `index` of `s`, interpreted as `dtype`, as a Double.
    public static func decode(_ s: ByteSlice, dtype: DType, index: Int) -> Double {
        let w = dtype.byteWidth
        let o = index * w
        switch dtype {
        case .float32: return Double(Float(bitPattern: UInt32(loadLE(s, o, 4))))
        case .float64: return Double(bitPattern: loadLE(s, o, 8))
        case .float16: return Double(halfToFloat(UInt16(loadLE(s, o, 2))))
        case .bfloat16: return Double(bfloat16ToFloat(UInt16(loadLE(s, o, 2))))
        case .int8: return Double(Int8(bitPattern: s[o]))
        case .uint8: return Double(s[o])
        case .bool: return s[o] != 0 ? 1 : 0
        case .int16: return Double(Int16(truncatingIfNeeded: loadLE(s, o, 2)))
        case .uint16: return Double(UInt16(truncatingIfNeeded: loadLE(s, o, 2)))
        case .int32: return Double(Int32(truncatingIfNeeded: loadLE(s, o, 4)))
        case .uint32: return Double(UInt32(truncatingIfNeeded: loadLE(s, o, 4)))
        case .int64: return Double(Int64(bitPattern: loadLE(s, o, 8)))
        case .uint64: return Double(loadLE(s, o, 8))
        case .complex64: return Double(Float(bitPattern: UInt32(loadLE(s, o, 4))))
        case .complex128: return Double(bitPattern: loadLE(s, o, 8))
        case .float8e4m3fn: return Double(e4m3fnToFloat(s[o]))
        case .float8e5m2: return Double(e5m2ToFloat(s[o]))
        case .float8e4m3fnuz, .float8e5m2fnuz, .float8e8m0fnu:
            return decodeFnuz(s[o], dtype)
        }
    }

    static func decodeFnuz(_ b: UInt8, _ dtype: DType) -> Double {
        switch dtype {
        case .float8e8m0fnu:
            return b == 0xff ? .nan : Double(sign: .plus, exponent: Int(b) - 127, significand: 1)
        case .float8e4m3fnuz, .float8e5m2fnuz:
            if b == 0x80 { return .nan }
            let (eBits, bias) = dtype == .float8e4m3fnuz ? (4, 8) : (5, 16)
            let mBits = 7 - eBits
            let sign: Double = (b & 0x80) != 0 ? -1 : 1
            let exp = Int(b >> mBits) & ((1 << eBits) - 1)
            let man = Double(Int(b) & ((1 << mBits) - 1)) / Double(1 << mBits)
            if exp == 0 { return sign * man * Double(sign: .plus, exponent: 1 - bias, significand: 1) }
            return sign * (1 + man) * Double(sign: .plus, exponent: exp - bias, significand: 1)
        default: return .nan
        }
    }
}
