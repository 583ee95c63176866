import CKernels

/// The popcount code path of the bit-packed kernels (`Sources/CKernels/include/bitconv.h`).
public enum BitKernelPath: Int, Sendable, CaseIterable, Equatable, Hashable, CustomStringConvertible {
    /// Portable C: a SWAR popcount, no popcount instruction.
    case portable = 0
    /// Scalar POPCNT.
    case popcnt = 1
    /// AVX2: nibble-table popcount (vpshufb) on 4 pixels per vector.
    case avx2 = 2
    /// AVX-512 VPOPCNTDQ (+ BW, VL): 8 pixels per vector.
    case avx512 = 3

    /// True when this CPU runs the path.
    public var isSupported: Bool { qk_bits_isa_supported(Int32(rawValue)) != 0 }

    /// The fastest path this CPU runs.
    public static var best: BitKernelPath { BitKernelPath(rawValue: Int(qk_bits_best_isa())) ?? .portable }

    /// Every path this CPU runs, slowest first.
    public static var supported: [BitKernelPath] { allCases.filter(\.isSupported) }

    public var description: String {
        switch self {
        case .portable: return "portable"
        case .popcnt: return "popcnt"
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        }
    }
}

/// Everything the fast binary conv needs besides buffers, resolved at plan time: geometry,
/// encodings, the code path, and where each table sits in the layer's packed weights.
///
/// The packed weights (one span of the plan's weight buffer, 64-bit words stored two floats
/// each, starting 8-byte aligned) hold, in order: the A panels of every group, the pad pixel
/// (the words a tap outside the image reads), then as 32-bit values the multiplier and bias
/// (float), the per-row base (codes per row for binary weights, nonzero codes for ternary),
/// the per-row weight sum (thermometer inputs) and, for the zero-padding correction, each
/// row's correction per padding class followed by the class of each output row and column
/// (``paddingClasses(_:)``).
package struct BinaryConvLayout: Sendable, Equatable {
    package var geometry: ConvGeometry
    package var path: BitKernelPath
    /// `QK_ACT_*`.
    package var encoding: Int32
    package var levels: Int
    package var step: Float
    /// Activation terms (bit planes of an unsigned input; else 1), planes per term.
    package var terms: Int, planes: Int
    package var actSign: Bool, actMask: Bool, weightMask: Bool
    /// Words per tap (per plane): `ceil(Cin/groups / 64)`.
    package var words: Int
    /// Coefficient of each term.
    package var coef: [Int]
    /// `acc += offset * sum_w[o]` (1 for thermometer inputs).
    package var offset: Int
    /// Zero padding of a sign input: subtract the padded taps' weight sums.
    package var correction: Bool
    /// The fused input quantizer's thresholds (``BinaryConv2dAttributes/thresholds``; 0: none).
    package var thresholdCount: Int
    /// Padding classes of the correction (``paddingClasses(_:)``): `yClasses * xClasses`.
    package var yClasses: Int, xClasses: Int
    /// Offsets (in floats) of the tables within the span.
    package var padPixelAt: Int, mulAt: Int, biasAt: Int, baseAt: Int, sumWAt: Int, correctionAt: Int
    package var yClassAt: Int, xClassAt: Int, thresholdAt: Int
    /// Floats of the span.
    package var floatCount: Int

    package var taps: Int { geometry.kernelH * geometry.kernelW }
    package var classes: Int { yClasses * xClasses }
    package var rowWords: Int { taps * words }
    package var weightPlanes: Int { weightMask ? 2 : 1 }
    package var panelsPerGroup: Int { (geometry.groupOutChannels + Int(QK_BPANEL) - 1) / Int(QK_BPANEL) }
    package var panelWords: Int { rowWords * weightPlanes * Int(QK_BPANEL) }
    package var groupPanelWords: Int { panelsPerGroup * panelWords }
    /// Words per pixel of the packed image.
    package var pixelWords: Int { geometry.groups * terms * planes * words }
    package var packedImageWords: Int { geometry.inHeight * geometry.inWidth * pixelWords }
    package var strips: Int { Int(qk_bconv_strips(geometry.outPixels)) }
    package var stripWords: Int { terms * rowWords * planes * Int(QK_BSTRIP) }
    /// Scratch floats of one call: the packed image and one group's B strips (+ alignment).
    package var scratchCount: Int { 2 * (packedImageWords + strips * stripWords) + 16 }
}

/// The bit-packed binary / ternary convolution (``Op/binaryConv2d(_:)``), NCHW float in and out.
///
/// Per image: the input is packed to codes along channels (`qk_bits_pack`: a sign-bit gather
/// for sign inputs), then per group the output pixels' taps are gathered into B strips of 8
/// pixels (`qk_bconv_im2col`; taps outside the image read the pad pixel), and the XOR/AND +
/// popcount GEMM (`qk_bconv_gemm`) runs tiles of 4 output channels x 16 pixels with the
/// output transform fused: `y = act(Float(acc) * mul[o] + bias[o] + residual)`. Threads split
/// the packing by pixels, the gather by strips, and the GEMM by strip pairs x panel blocks.
/// The naive twin is ``ReferenceKernels/binaryConv2d(_:_:input:)``.
package enum BinaryConv {
    /// The plan-time layout of `a` on geometry `g`, for code path `path`.
    package static func layout(_ g: ConvGeometry, _ a: BinaryConv2dAttributes, path: BitKernelPath) -> BinaryConvLayout {
        var encoding: Int32 = Int32(QK_ACT_SIGN)
        var levels: Int = 1
        var step: Float = 1
        var terms: Int = 1
        var planes: Int = 1
        var offset: Int = 0
        var actSign: Bool = true
        var actMask: Bool = false
        switch a.input {
        case .sign:
            break
        case .ternary(let s):
            encoding = Int32(QK_ACT_TERNARY)
            step = s
            planes = 2
            actMask = true
        case .unsigned(let l, let s) where l == 2:
            encoding = Int32(QK_ACT_THERMO)
            levels = 2
            step = s
            planes = 2
            actMask = true
            offset = 1
        case .unsigned(let l, let s):
            encoding = Int32(QK_ACT_UNIPOLAR)
            levels = l
            step = s
            actSign = false
            actMask = true
            terms = a.input.bits
        }
        var coef: [Int] = [1]
        if encoding == Int32(QK_ACT_UNIPOLAR) {
            coef = []
            for t in 0..<terms { coef.append(1 << t) }
        }
        let words = (g.groupInChannels + 63) / 64
        var l = BinaryConvLayout(
            geometry: g, path: path, encoding: encoding, levels: levels, step: step, terms: terms, planes: planes,
            actSign: actSign, actMask: actMask, weightMask: a.weights.encoding == .ternary, words: words, coef: coef,
            offset: offset, correction: a.needsZeroPadCorrection, thresholdCount: a.thresholds?.count ?? 0, yClasses: 1,
            xClasses: 1, padPixelAt: 0, mulAt: 0, biasAt: 0, baseAt: 0, sumWAt: 0, correctionAt: 0, yClassAt: 0,
            xClassAt: 0, thresholdAt: 0, floatCount: 0)
        if l.correction {
            let (y, x) = paddingClasses(g)
            l.yClasses = y.patterns.count
            l.xClasses = x.patterns.count
        }
        let cout = g.outChannels
        let at = 2 * g.groups * l.groupPanelWords
        l.padPixelAt = at
        l.mulAt = at + 2 * terms * planes * words
        l.biasAt = l.mulAt + cout
        l.baseAt = l.biasAt + cout
        l.sumWAt = l.baseAt + cout
        l.correctionAt = l.sumWAt + cout
        l.yClassAt = l.correctionAt + (l.correction ? cout * l.classes : 0)
        l.xClassAt = l.yClassAt + (l.correction ? g.outHeight : 0)
        l.thresholdAt = l.xClassAt + (l.correction ? g.outWidth : 0)
        l.floatCount = l.thresholdAt + l.thresholdCount
        return l
    }

    /// The padding classes of one axis: `patterns[c][k]` is true when kernel offset k of an
    /// output position of class c falls outside the image, `classOf[i]` is output position
    /// i's class, and class 0 is the position with every tap inside (listed even when no
    /// position has it), whose correction is 0.
    package struct AxisClasses: Equatable {
        package var patterns: [[Bool]]
        package var classOf: [Int]
    }

    /// The padding classes of `g`'s rows and columns: an output pixel's taps outside the image
    /// are those of its row class or its column class, so the correction of pixel (oy, ox) in
    /// row o is one table entry, `correction[o][yClass[oy] * xClasses + xClass[ox]]`.
    package static func paddingClasses(_ g: ConvGeometry) -> (y: AxisClasses, x: AxisClasses) {
        func axis(out: Int, size: Int, kernel: Int, stride: Int, pad: Int, dilation: Int) -> AxisClasses {
            var classes = AxisClasses(patterns: [[Bool](repeating: false, count: kernel)], classOf: [])
            for i in 0..<out {
                let pattern = (0..<kernel).map { k -> Bool in
                    let at = i * stride - pad + k * dilation
                    return at < 0 || at >= size
                }
                if let c = classes.patterns.firstIndex(of: pattern) {
                    classes.classOf.append(c)
                } else {
                    classes.classOf.append(classes.patterns.count)
                    classes.patterns.append(pattern)
                }
            }
            return classes
        }
        return (
            axis(
                out: g.outHeight, size: g.inHeight, kernel: g.kernelH, stride: g.strideH, pad: g.padTop,
                dilation: g.dilationH),
            axis(
                out: g.outWidth, size: g.inWidth, kernel: g.kernelW, stride: g.strideW, pad: g.padLeft,
                dilation: g.dilationW)
        )
    }

    /// One image `[groups * channels, pixels]` packed as the conv packs its input (`qk_bits_pack`
    /// with the code path `path`): pixel p, group g, term t, plane q, word w at
    /// `(((p * groups + g) * terms + t) * planes + q) * words + w` (tests compare it with
    /// ``ReferenceKernels/packBits(_:channels:pixels:bit:)``).
    package static func packImage(
        _ x: [Float], channels: Int, groups: Int = 1, pixels: Int, input: BitActivationEncoding, path: BitKernelPath
    ) -> [UInt64] {
        let g = ConvGeometry(
            batch: 1, inChannels: channels * groups, inHeight: 1, inWidth: pixels, outChannels: groups, outHeight: 1,
            outWidth: pixels, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padTop: 0, padLeft: 0, dilationH: 1,
            dilationW: 1, groups: groups)
        let w = try! PackedConvWeights(
            outChannels: groups, groupInChannels: channels, kernelH: 1, kernelW: 1, encoding: .binary,
            sign: [UInt64](repeating: 0, count: groups * ((channels + 63) / 64)))
        let l = layout(g, BinaryConv2dAttributes(weights: w, input: input, conv: Conv2dAttributes(groups: groups)), path: path)
        var out = [UInt64](repeating: 0xDEAD_BEEF, count: l.packedImageWords)
        let shape = unsafe qk_bits_pack_shape(
            encoding: l.encoding, levels: l.levels, step: l.step, channels: channels, groups: groups, words: l.words,
            terms: l.terms, planes: l.planes, plane_size: pixels, thresholds: nil)
        unsafe withUnsafePointer(to: shape) { ps in
            unsafe x.withUnsafeBufferPointer { px in
                unsafe out.withUnsafeMutableBufferPointer { po in
                    unsafe qk_bits_pack(Int32(path.rawValue), ps, px.baseAddress!, 0, pixels, po.baseAddress!)
                }
            }
        }
        return out
    }

    /// Writes the layer's packed weights and tables (``BinaryConvLayout``) into `dst`
    /// (`l.floatCount` floats, zeroed, 8-byte aligned), with `multiplier` and `bias` (folded).
    package static func pack(
        _ a: BinaryConv2dAttributes, _ l: BinaryConvLayout, multiplier: [Float], bias: [Float],
        into dst: UnsafeMutableBufferPointer<Float>
    ) {
        let g = l.geometry
        precondition(dst.count == l.floatCount && multiplier.count == g.outChannels && bias.count == g.outChannels)
        let raw = UnsafeMutableRawPointer(dst.baseAddress!)
        precondition(Int(bitPattern: raw) % 8 == 0, "packed binary weights must be 8-byte aligned")
        let words = unsafe UnsafeMutablePointer<UInt64>(OpaquePointer(raw))
        let w = a.weights
        let og = g.groupOutChannels
        let rw = l.rowWords
        // A panels, group by group.
        unsafe w.sign.withUnsafeBufferPointer { s in
            unsafe w.mask.withUnsafeBufferPointer { m in
                for grp in 0..<g.groups {
                    let sg = unsafe s.baseAddress! + grp * og * rw
                    let mg = unsafe l.weightMask ? m.baseAddress! + grp * og * rw : nil
                    unsafe qk_bconv_pack_a(og, rw, Int32(l.weightPlanes), sg, mg, words + grp * l.groupPanelWords)
                }
            }
        }
        // The pad pixel: every valid channel bit carries the pad code's planes (a sign input
        // padded with 0 reads +1 codes, corrected in the output transform).
        let padCode = l.correction ? 1 : a.padCode
        let pad = unsafe words + l.padPixelAt / 2
        for t in 0..<l.terms {
            var s = false
            var m = false
            switch l.encoding {
            case Int32(QK_ACT_SIGN):
                s = padCode < 0
            case Int32(QK_ACT_TERNARY):
                s = padCode < 0
                m = padCode != 0
            case Int32(QK_ACT_THERMO):
                s = padCode == 0
                m = padCode != 1
            default:
                m = (padCode >> t) & 1 == 1
            }
            for c in 0..<g.groupInChannels {
                let bit: UInt64 = 1 << UInt64(c % 64)
                let at = t * l.planes * l.words + c / 64
                if l.actSign && s { unsafe pad[at] |= bit }
                if l.actMask && m { unsafe pad[at + (l.actSign ? l.words : 0)] |= bit }
            }
        }
        // Per-row tables.
        let ints = unsafe UnsafeMutablePointer<Int32>(OpaquePointer(raw))
        let taps = l.taps
        let wpt = l.words
        let classes = l.correction ? Self.paddingClasses(g) : nil
        var tapSum = [Int](repeating: 0, count: taps)
        for o in 0..<g.outChannels {
            unsafe dst[l.mulAt + o] = multiplier[o]
            unsafe dst[l.biasAt + o] = bias[o]
            var nonzero = 0
            var negative = 0
            for t in 0..<taps {
                var tn = 0
                var tneg = 0
                for k in 0..<wpt {
                    let i = o * rw + t * wpt + k
                    if !w.mask.isEmpty { tn += w.mask[i].nonzeroBitCount }
                    tneg += w.sign[i].nonzeroBitCount
                }
                if w.mask.isEmpty { tn = g.groupInChannels }
                nonzero += tn
                negative += tneg
                tapSum[t] = tn - 2 * tneg
            }
            if let (y, x) = classes {
                // What the +1 codes read at the outside taps of each class contributed.
                for (yc, yp) in y.patterns.enumerated() {
                    for (xc, xp) in x.patterns.enumerated() {
                        var sum = 0
                        for ky in 0..<g.kernelH {
                            for kx in 0..<g.kernelW where yp[ky] || xp[kx] { sum += tapSum[ky * g.kernelW + kx] }
                        }
                        unsafe ints[l.correctionAt + o * l.classes + yc * l.xClasses + xc] = Int32(sum)
                    }
                }
            }
            unsafe ints[l.baseAt + o] = Int32(nonzero)
            unsafe ints[l.sumWAt + o] = Int32(nonzero - 2 * negative)
        }
        if let (y, x) = classes {
            for (i, c) in y.classOf.enumerated() { unsafe ints[l.yClassAt + i] = Int32(c) }
            for (i, c) in x.classOf.enumerated() { unsafe ints[l.xClassAt + i] = Int32(c) }
        }
        for (k, t) in (a.thresholds ?? []).enumerated() { unsafe dst[l.thresholdAt + k] = t }
    }

    /// `output = act(binaryConv(input) (+ residual))`: `input [N, Cin, H, W]`, `output` and
    /// `residual` `[N, Cout, oH, oW]` (`residual` may be `output` itself), `weights` the
    /// layer's span (``pack(_:_:multiplier:bias:into:)``), `scratch` at least
    /// ``BinaryConvLayout/scratchCount`` floats.
    package static func forward(
        _ l: BinaryConvLayout, input: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>,
        residual: UnsafeBufferPointer<Float>?, output: UnsafeMutableBufferPointer<Float>,
        scratch: UnsafeMutableBufferPointer<Float>, activation: Activation, threads: Int
    ) {
        let g = l.geometry
        precondition(input.count >= g.batch * g.inImage && output.count >= g.batch * g.outImage)
        precondition(weights.count >= l.floatCount && scratch.count >= l.scratchCount)
        unsafe precondition((residual?.count ?? output.count) >= g.batch * g.outImage)
        let isa = Int32(l.path.rawValue)
        let wraw = unsafe UnsafeRawPointer(weights.baseAddress!)
        precondition(Int(bitPattern: wraw) % 8 == 0, "packed binary weights must be 8-byte aligned")
        let wwords = unsafe UnsafePointer<UInt64>(OpaquePointer(wraw))
        let wints = unsafe UnsafePointer<Int32>(OpaquePointer(wraw))
        let wfloats = weights.baseAddress!
        // Scratch: the packed image, then one group's B strips, 8-byte aligned.
        let sbase = scratch.baseAddress!
        let misalignment = (8 - Int(bitPattern: sbase) % 8) % 8
        let sraw = unsafe UnsafeMutableRawPointer(sbase) + misalignment
        let image = unsafe UnsafeMutablePointer<UInt64>(OpaquePointer(sraw))
        let strips = unsafe image + l.packedImageWords
        let packShape = unsafe qk_bits_pack_shape(
            encoding: l.encoding, levels: l.levels, step: l.step, channels: g.groupInChannels, groups: g.groups,
            words: l.words, terms: l.terms, planes: l.planes, plane_size: g.inHeight * g.inWidth,
            thresholds: l.thresholdCount > 0 ? wfloats + l.thresholdAt : nil)
        let shape = unsafe qk_bconv_shape(
            height: g.inHeight, width: g.inWidth, out_height: g.outHeight, out_width: g.outWidth, kernel_h: g.kernelH,
            kernel_w: g.kernelW, stride_h: g.strideH, stride_w: g.strideW, pad_top: g.padTop, pad_left: g.padLeft,
            dilation_h: g.dilationH, dilation_w: g.dilationW, words: l.words, terms: l.terms, act_sign: l.actSign ? 1 : 0,
            act_mask: l.actMask ? 1 : 0, weight_mask: l.weightMask ? 1 : 0, pixel_words: l.pixelWords,
            pad_pixel: wwords + l.padPixelAt / 2)
        let (lo, hi) = activation.bounds
        let og = g.groupOutChannels
        let pixels = g.outPixels
        let plane = g.inHeight * g.inWidth
        let panels = l.panelsPerGroup
        let pairs = l.strips / 2
        // GEMM tasks: strip pairs x panel blocks, enough blocks for 4 tasks per thread.
        let panelBlocks = max(1, min(panels, (4 * threads + pairs - 1) / max(pairs, 1)))
        let groupWords = l.terms * l.planes * l.words
        unsafe withUnsafePointer(to: packShape) { ps in
            unsafe withUnsafePointer(to: shape) { sh in
                unsafe l.coef.withUnsafeBufferPointer { coef in
                    for n in 0..<g.batch {
                        let x = unsafe input.baseAddress! + n * g.inImage
                        Parallel.forRanges(plane, threads: threads, grain: 512) { r in
                            unsafe qk_bits_pack(isa, ps, x, r.lowerBound, r.upperBound, image)
                        }
                        for grp in 0..<g.groups {
                            Parallel.forRanges(l.strips, threads: threads, grain: 16) { r in
                                unsafe qk_bconv_im2col(sh, image + grp * groupWords, r.lowerBound, r.upperBound, strips)
                            }
                            let rowOffset = n * g.outImage + grp * og * pixels
                            let res: UnsafePointer<Float>? = unsafe residual.map { unsafe UnsafePointer($0.baseAddress! + rowOffset) }
                            let epilogue = unsafe qk_bconv_epilogue(
                                mul: wfloats + l.mulAt + grp * og, bias: wfloats + l.biasAt + grp * og,
                                base: wints + l.baseAt + grp * og, sum_w: l.offset != 0 ? wints + l.sumWAt + grp * og : nil,
                                offset: l.offset, correction: l.correction ? wints + l.correctionAt + grp * og * l.classes : nil,
                                classes: l.classes, x_classes: l.xClasses, y_class: wints + l.yClassAt,
                                x_class: wints + l.xClassAt,
                                coef: coef.baseAddress!, residual: res, lo: lo, hi: hi, out: output.baseAddress! + rowOffset)
                            let a = unsafe wwords + grp * l.groupPanelWords
                            unsafe withUnsafePointer(to: epilogue) { e in
                                Parallel.forRanges(pairs * panelBlocks, threads: threads) { r in
                                    // Task t = block * pairs + pair: runs of consecutive pairs in one block.
                                    var t = r.lowerBound
                                    while t < r.upperBound {
                                        let block = t / pairs
                                        let pair0 = t % pairs
                                        let pair1 = min(pairs, pair0 + (r.upperBound - t))
                                        let p0 = panels * block / panelBlocks
                                        let p1 = panels * (block + 1) / panelBlocks
                                        unsafe qk_bconv_gemm(isa, sh, og, a, strips, p0, p1, pair0, pair1, e)
                                        t += pair1 - pair0
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
