/// How ``Op/binaryConv2d(_:)`` turns its float input into integer codes (the activation side
/// of a binary or ternary convolution). The conv computes with the codes; a per-layer scale
/// of the activations belongs in ``BinaryConv2dAttributes/multiplier``.
public enum BitActivationEncoding: Sendable, Equatable, Hashable {
    /// `a = x < 0 ? -1 : +1`: the sign quantizer (`x >= 0 -> +1`; +0, -0 and NaN give +1).
    case sign
    /// `a = clamp(round(x / step), -1, 1)` (round half to even; NaN gives -1).
    case ternary(step: Float)
    /// `a = clamp(round(x / step), 0, levels)` with `levels >= 1` (NaN gives 0). `levels: 2` is
    /// FATNN's {0, 1, 2}, computed as `1 + A` with `A` ternary (one ternary pass); larger
    /// `levels` run one pass per bit of the code.
    case unsigned(levels: Int, step: Float)

    /// The codes this encoding produces.
    public var codeRange: ClosedRange<Int> {
        switch self {
        case .sign, .ternary: return -1...1
        case .unsigned(let levels, _): return 0...max(levels, 0)
        }
    }

    /// True for a code the encoding can take as its padding value: every code in
    /// ``codeRange``; `0` for ``sign`` as well (true zero padding, by an exact correction).
    public func isValidPadCode(_ code: Int) -> Bool {
        switch self {
        case .sign: return code == -1 || code == 0 || code == 1
        default: return codeRange.contains(code)
        }
    }

    /// The code of one input value (the rule the kernels apply).
    public func code(_ x: Float) -> Int {
        switch self {
        case .sign:
            return x < 0 ? -1 : 1
        case .ternary(let step):
            return Self.clamped((x / step).rounded(.toNearestOrEven), -1, 1)
        case .unsigned(let levels, let step):
            return Self.clamped((x / step).rounded(.toNearestOrEven), 0, levels)
        }
    }

    /// `clamp(r, lo, hi)` with NaN giving `lo` (the C packers' `r >= lo ? (r <= hi ? r : hi) : lo`).
    private static func clamped(_ r: Float, _ lo: Int, _ hi: Int) -> Int {
        r >= Float(lo) ? (r <= Float(hi) ? Int(r) : hi) : lo
    }

    /// Bits per activation code: 1 (sign), 2 (ternary), `ceil(log2(levels + 1))` (unsigned).
    public var bits: Int {
        switch self {
        case .sign: return 1
        case .ternary: return 2
        case .unsigned(let levels, _):
            var b = 0
            while (1 << b) <= levels { b += 1 }
            return max(b, 1)
        }
    }
}

/// The weight codes of a ``PackedConvWeights``.
public enum BitWeightEncoding: String, Sendable, Equatable, Hashable {
    /// ±1: one sign plane.
    case binary
    /// -1, 0, +1: a sign plane and a mask plane, `sign & ~mask == 0`.
    case ternary
}

/// Bit-packed convolution weights: one code (±1, or -1/0/+1) per weight, packed along the
/// input channels of each output channel and tap (OHWI), the `bnnpack` version 1 layout of
/// `../shared/spec/bitpacking.md` §8.2 read as 64-bit little-endian words:
///
/// - row `o` (output channel), tap `(ky, kx)`, channel `c` (of the group) is word
///   `o * rowWords + (ky * kernelW + kx) * wordsPerTap + c / 64`, bit `c % 64`;
/// - `sign`: bit 1 means -1; `mask` (ternary only): bit 1 means nonzero; a binary weight has
///   no mask (every code is nonzero);
/// - the bits past `groupInChannels` in each tap's last word are 0 in both planes.
///
/// A per-output-channel scale of the weights (XNOR's mean |w|, a ternary alpha) is not part
/// of the codes: it goes into ``BinaryConv2dAttributes/multiplier``.
public struct PackedConvWeights: Sendable, Equatable, Hashable {
    /// Output channels (rows).
    public let outChannels: Int
    /// Input channels per group.
    public let groupInChannels: Int
    /// Kernel height and width.
    public let kernelH: Int, kernelW: Int
    /// Binary or ternary codes.
    public let encoding: BitWeightEncoding
    /// The sign plane, `outChannels * rowWords` words.
    public let sign: [UInt64]
    /// The mask plane (ternary), `outChannels * rowWords` words; empty for binary weights.
    public let mask: [UInt64]

    /// Words per tap: `ceil(groupInChannels / 64)`.
    public var wordsPerTap: Int { (groupInChannels + 63) / 64 }
    /// Words per output channel: `kernelH * kernelW * wordsPerTap`.
    public var rowWords: Int { kernelH * kernelW * wordsPerTap }
    /// Codes per output channel (the dot products' length K): `groupInChannels * kernelH * kernelW`.
    public var codesPerRow: Int { groupInChannels * kernelH * kernelW }
    /// Bytes of the planes.
    public var byteCount: Int { 8 * (sign.count + mask.count) }

    /// Planes as words (see the type's layout).
    /// - Throws: ``InferenceError`` (`invalidAttribute`) for wrong sizes, set padding bits, a
    ///   mask on binary weights, or `sign & ~mask != 0`.
    public init(
        outChannels: Int, groupInChannels: Int, kernelH: Int, kernelW: Int, encoding: BitWeightEncoding,
        sign: [UInt64], mask: [UInt64] = []
    ) throws(InferenceError) {
        guard outChannels >= 1, groupInChannels >= 1, kernelH >= 1, kernelW >= 1 else {
            throw InferenceError(
                .invalidAttribute("packed weights \(outChannels)x\(groupInChannels)x\(kernelH)x\(kernelW)"))
        }
        self.outChannels = outChannels
        self.groupInChannels = groupInChannels
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.encoding = encoding
        self.sign = sign
        self.mask = mask
        let words = outChannels * rowWords
        guard sign.count == words else {
            throw InferenceError(.invalidAttribute("sign plane has \(sign.count) words, expected \(words)"))
        }
        switch encoding {
        case .binary:
            guard mask.isEmpty else { throw InferenceError(.invalidAttribute("binary weights have no mask plane")) }
        case .ternary:
            guard mask.count == words else {
                throw InferenceError(.invalidAttribute("mask plane has \(mask.count) words, expected \(words)"))
            }
        }
        let tail = groupInChannels % 64
        let padBits: UInt64 = tail == 0 ? 0 : ~((1 << UInt64(tail)) - 1)
        let wpt = wordsPerTap
        for i in 0..<words {
            let last = i % wpt == wpt - 1
            if last && (sign[i] & padBits) != 0 || (!mask.isEmpty && last && (mask[i] & padBits) != 0) {
                throw InferenceError(
                    .invalidAttribute("padding bits set in word \(i) of row \(i / rowWords) (channels past \(groupInChannels))"))
            }
            if !mask.isEmpty && (sign[i] & ~mask[i]) != 0 {
                throw InferenceError(.invalidAttribute("sign bit set where the mask is 0 in word \(i) of row \(i / rowWords)"))
            }
        }
    }

    /// Planes as `bnnpack` bytes, `[outChannels, kernelH, kernelW, 8 * wordsPerTap]` (LSB-first,
    /// little-endian words): the `U8` tensors of a packed file, as they are stored.
    public init(
        outChannels: Int, groupInChannels: Int, kernelH: Int, kernelW: Int, encoding: BitWeightEncoding,
        signBytes: [UInt8], maskBytes: [UInt8]? = nil
    ) throws(InferenceError) {
        func words(_ b: [UInt8], _ what: String) throws(InferenceError) -> [UInt64] {
            guard b.count % 8 == 0 else { throw InferenceError(.invalidAttribute("\(what) plane has \(b.count) bytes, not whole words")) }
            return (0..<(b.count / 8)).map { i in
                var w: UInt64 = 0
                for j in 0..<8 { w |= UInt64(b[8 * i + j]) << UInt64(8 * j) }
                return w
            }
        }
        try self.init(
            outChannels: outChannels, groupInChannels: groupInChannels, kernelH: kernelH, kernelW: kernelW,
            encoding: encoding, sign: try words(signBytes, "sign"),
            mask: try maskBytes.map { b throws(InferenceError) in try words(b, "mask") } ?? [])
    }

    /// Packs codes given as floats in PyTorch's layout `[outChannels, groupInChannels, kernelH, kernelW]`:
    /// each exactly -1 or +1 (binary) or -1, 0, +1 (ternary).
    public init(codes: [Float], shape: [Int], encoding: BitWeightEncoding) throws(InferenceError) {
        guard shape.count == 4, shape.allSatisfy({ $0 >= 1 }), codes.count == shape.reduce(1, *) else {
            throw InferenceError(.shapeMismatch("weight codes \(codes.count) for shape \(shape)"))
        }
        let (o, c, kh, kw) = (shape[0], shape[1], shape[2], shape[3])
        let wpt = (c + 63) / 64, row = kh * kw * wpt
        var s = [UInt64](repeating: 0, count: o * row)
        var m = encoding == .ternary ? s : []
        for oc in 0..<o {
            for ic in 0..<c {
                for t in 0..<(kh * kw) {
                    let v = codes[(oc * c + ic) * kh * kw + t]
                    let word = oc * row + t * wpt + ic / 64, bit = UInt64(1) << UInt64(ic % 64)
                    switch (v, encoding) {
                    case (1, _): if encoding == .ternary { m[word] |= bit }
                    case (-1, _):
                        s[word] |= bit
                        if encoding == .ternary { m[word] |= bit }
                    case (0, .ternary): break
                    default:
                        throw InferenceError(
                            .invalidAttribute("weight code \(v) at [\(oc), \(ic), \(t / kw), \(t % kw)] is not \(encoding)"))
                    }
                }
            }
        }
        try self.init(outChannels: o, groupInChannels: c, kernelH: kh, kernelW: kw, encoding: encoding, sign: s, mask: m)
    }

    /// Splits quantized float weights `[outChannels, groupInChannels, kernelH, kernelW]` whose
    /// output channel `o` takes only the values `±alpha[o]` (binary) or `-alpha[o], 0, +alpha[o]`
    /// (ternary) into codes and the scales `alpha` (0 for a channel of zeros). The scales belong
    /// in ``BinaryConv2dAttributes/multiplier``.
    /// - Throws: ``InferenceError`` naming the first output channel with other values.
    public static func quantized(
        _ w: [Float], shape: [Int], encoding: BitWeightEncoding
    ) throws(InferenceError) -> (
        weights: PackedConvWeights, scale: [Float]
    ) {
        guard shape.count == 4, shape.allSatisfy({ $0 >= 1 }), w.count == shape.reduce(1, *) else {
            throw InferenceError(.shapeMismatch("weights \(w.count) for shape \(shape)"))
        }
        let per = shape[1] * shape[2] * shape[3]
        var codes = [Float](repeating: 0, count: w.count)
        var scale = [Float](repeating: 1, count: shape[0])
        for o in 0..<shape[0] {
            let row = w[(o * per)..<((o + 1) * per)]
            guard let alpha = row.first(where: { $0 != 0 }).map({ abs($0) }) else {
                // A channel of zeros: scale 0 (codes +1 for binary weights).
                scale[o] = 0
                if encoding == .binary { for i in 0..<per { codes[o * per + i] = 1 } }
                continue
            }
            scale[o] = alpha
            for (i, v) in row.enumerated() {
                if v == alpha {
                    codes[o * per + i] = 1
                } else if v == -alpha {
                    codes[o * per + i] = -1
                } else if v == 0 && encoding == .ternary {
                    codes[o * per + i] = 0
                } else {
                    let distinct = Array(Set(row.filter { !$0.isNaN })).sorted()
                    let shown = distinct.prefix(5).map { "\($0)" }.joined(separator: ", ")
                    throw InferenceError(
                        .invalidAttribute(
                            "output channel \(o) is not \(encoding) (±alpha\(encoding == .ternary ? " or 0" : "")): value \(v) next to alpha \(alpha) (values \(shown)\(distinct.count > 5 ? ", ..." : ""))"
                        ))
                }
            }
        }
        return (try PackedConvWeights(codes: codes, shape: shape, encoding: encoding), scale)
    }

    /// The codes as floats in PyTorch's layout `[outChannels, groupInChannels, kernelH, kernelW]`.
    public func codes() -> [Float] {
        let taps = kernelH * kernelW, wpt = wordsPerTap, row = rowWords
        var out = [Float](repeating: 0, count: outChannels * groupInChannels * taps)
        for o in 0..<outChannels {
            for c in 0..<groupInChannels {
                for t in 0..<taps {
                    let word = o * row + t * wpt + c / 64, bit = UInt64(1) << UInt64(c % 64)
                    let nonzero = mask.isEmpty || mask[word] & bit != 0
                    out[(o * groupInChannels + c) * taps + t] = nonzero ? (sign[word] & bit != 0 ? -1 : 1) : 0
                }
            }
        }
        return out
    }
}

/// Attributes of ``Op/binaryConv2d(_:)``: a convolution of integer codes, bit-packed.
///
/// For output channel `o` and output pixel `p`, with `a` the input's codes (``input``; the
/// code ``padCode`` at padded positions) and `w` the weight codes, the layer computes the
/// exact integer `acc = sum a * w` (PyTorch's cross-correlation over `Cin/groups` channels and
/// the taps, with ``conv``'s stride, padding, dilation and groups), then
///
///     y = Float(acc) * multiplier[o] + bias[o]
///
/// in float32, in that order (a product, then a sum: no fused multiply-add). The planner
/// folds a following batch norm or channel affine into `multiplier` and `bias`, and fuses a
/// following residual add and relu / hardtanh / clamp, as for ``Op/conv2d(_:)``
/// (`y = act(Float(acc) * multiplier + bias + residual)`). `acc` is exact while
/// `|acc| < 2^24` (K * largest |code| below 16.7M).
public struct BinaryConv2dAttributes: Sendable, Equatable {
    /// Stride, padding, dilation and groups (``Conv2dAttributes``); the padding is filled with ``padCode``.
    public var conv: Conv2dAttributes
    /// The packed weight codes.
    public var weights: PackedConvWeights
    /// How the float input becomes codes.
    public var input: BitActivationEncoding
    /// The input code at padded positions. For ``BitActivationEncoding/sign``: +1 (zero padding
    /// *before* the sign: `sign(0) = +1`), -1, or 0 (zero padding *after* the sign, which a ±1
    /// code cannot hold: computed exactly by subtracting the padded taps' weight sums).
    /// For the other encodings any code of ``BitActivationEncoding/codeRange`` (0 is zero padding).
    public var padCode: Int
    /// Per output channel: the factor of `acc` (weight scale x activation scale x BN scale).
    public var multiplier: [Float]
    /// Per output channel: the bias added after the product.
    public var bias: [Float]
    /// The input quantizer fused into the conv, as the inputs where its code steps up: when
    /// set (ascending, one per step of ``BitActivationEncoding/codeRange``, not for
    /// ``BitActivationEncoding/sign``), an input `x` has the code `lo + #{k : x >= thresholds[k]}`
    /// (NaN: `lo`; a NaN threshold is never reached) instead of the encoding's rounding, so
    /// the conv reads the quantizer's float input and the quantize op disappears.
    public var thresholds: [Float]?

    /// A binary/ternary conv; `multiplier` defaults to 1 and `bias` to 0 per output channel.
    public init(
        weights: PackedConvWeights, input: BitActivationEncoding = .sign, conv: Conv2dAttributes = Conv2dAttributes(),
        padCode: Int = 1, multiplier: [Float]? = nil, bias: [Float]? = nil, thresholds: [Float]? = nil
    ) {
        precondition(
            thresholds == nil || (input != .sign && thresholds!.count == input.codeRange.count - 1),
            "thresholds: one per step of the code range of a coded input")
        self.conv = conv
        self.weights = weights
        self.input = input
        self.padCode = padCode
        self.thresholds = thresholds
        self.multiplier = multiplier ?? [Float](repeating: 1, count: weights.outChannels)
        self.bias = bias ?? [Float](repeating: 0, count: weights.outChannels)
    }

    /// Weight shape in PyTorch's layout: `[outChannels, groupInChannels, kernelH, kernelW]`.
    public var weightShape: [Int] { [weights.outChannels, weights.groupInChannels, weights.kernelH, weights.kernelW] }

    /// The code of input `x` (the encoding's rule, or the fused ``thresholds``).
    public func code(_ x: Float) -> Int {
        guard let t = thresholds else { return input.code(x) }
        return Self.code(x, lowest: input.codeRange.lowerBound, thresholds: t)
    }

    /// `lowest` plus the number of `thresholds` that `x` reaches (`x >= t`; a NaN on either
    /// side never does): the code of a fused input quantizer.
    public static func code(_ x: Float, lowest: Int, thresholds: [Float]) -> Int {
        lowest + thresholds.reduce(0) { $0 + (x >= $1 ? 1 : 0) }
    }

    /// True when the padded positions are zeros of a sign input (the correction path).
    var needsZeroPadCorrection: Bool { input == .sign && padCode == 0 && !conv.padding.isZero }

    /// Bytes of the layer's parameters as held (planes, multiplier, bias).
    public var parameterBytes: Int { weights.byteCount + 4 * (multiplier.count + bias.count + (thresholds?.count ?? 0)) }
}
