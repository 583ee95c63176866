import Engine

/// The multi-threaded training pass of the commonest activation quantizer: LSQ with one clip
/// for the whole tensor (`--fm_quant_group 1`) and a plain clamp (no `STE-scale`). Every
/// other quantizer runs ``Quantizer/forwardTrain(_:shape:parameters:)`` unchanged.
///
/// One pass computes the output, element by element with the float32 operations of
/// ``LSQQuantizer/apply(_:clip:group:levelNum:halfRange:gradFactor:scaledClamp:)`` (so `y` is
/// bit-identical); the backward keeps only `x` (shared with the caller, not copied) and
/// recomputes each element's clamp test and step derivative as
/// ``QuantizerGradients/lsq(_:clip:group:levelNum:halfRange:gradFactor:scaledClamp:)`` does:
/// `dx` is bit-identical, and the `clip_val` gradient sums `dy * dStep` in double per fixed
/// block of ``ParallelLSQ/block`` elements (16 lanes, each summed in order, added at the end
/// of the block), the block sums added in order: within double rounding of the sequential
/// sum, and the same at any thread count. Both passes run 16 elements per step in SIMD.
extension Quantizer {
    package func forwardTrain(_ x: [Float], shape: [Int], parameters: [[Float]], threads: Int) throws -> QuantizerTrainPass {
        guard threads > 1, config.method == .lsq, config.tag != .wt, config.quantGroup == 1, !config.scaledClamp,
            parameters.count == 1, parameters[0].count == 1, !x.isEmpty, shape.reduce(1, *) == x.count
        else { return try forwardTrain(x, shape: shape, parameters: parameters) }
        try checkTrainable()
        if config.passesThrough(iteration: state.iteration) { return try forwardTrain(x, shape: shape, parameters: parameters) }
        let lsq = ParallelLSQ(
            clip: parameters[0][0], levelNum: state.levelNum, halfRange: config.halfRange, gradFactor: config.gradFactor)
        let y = lsq.forward(x, threads: threads)
        return QuantizerTrainPass(y: y) { dy in lsq.backward(x, dy: dy, threads: threads) }
    }
}

/// LSQ over a whole tensor with one step size, split over threads (see the extension above).
package struct ParallelLSQ: Sendable {
    /// Elements per partial sum of the `clip_val` gradient.
    package static let block = 1 << 15
    package let clip: Float, step: Float, n: Float, halfRange: Bool, gradFactor: Double

    package init(clip: Float, levelNum: Float, halfRange: Bool, gradFactor: Double) {
        self.clip = clip
        step = QuantMath.gradientScaled(abs(clip), factor: gradFactor)
        n = Float(Double(levelNum) - 1)
        self.halfRange = halfRange
        self.gradFactor = gradFactor
    }

    /// `(inside the clamp range, the level value v)` of element `x`, where `v = round(z n) / n`
    /// (one-sided) or `2 round((z + 1) / 2 n) / n - 1`, `z = clamp(x / step)`.
    @inline(__always)
    func level(_ x: Float) -> (z: Float, inside: Bool, v: Float) {
        let z = x / step
        let (lo, hi): (Float, Float) = halfRange ? (0, 1) : (-1, 1)
        let zc = QuantMath.clamp(z, lo, hi)
        if halfRange { return (z, z >= lo && z <= hi, QuantMath.round(zc * n) / n) }
        let q = QuantMath.round((zc + 1) / 2 * n) / n
        return (z, z >= lo && z <= hi, q * 2 - 1)
    }

    /// ``level(_:)`` of 16 elements at once: the same float operations lane by lane (the clamp
    /// keeps NaN, the rounding is to nearest even), so every lane equals the scalar result.
    @inline(__always)
    func levels(_ x: SIMD16<Float>) -> (z: SIMD16<Float>, inside: SIMDMask<SIMD16<Int32>>, v: SIMD16<Float>) {
        let z = x / step
        let (lo, hi): (Float, Float) = halfRange ? (0, 1) : (-1, 1)
        let zc = z.replacing(with: lo, where: z .< lo).replacing(with: hi, where: z .> hi)
        let inside = (z .>= lo) .& (z .<= hi)
        if halfRange { return (z, inside, Self.roundToEven(zc * n) / n) }
        let q = Self.roundToEven((zc + 1) / 2 * n) / n
        return (z, inside, q * 2 - 1)
    }

    /// `x.rounded(.toNearestOrEven)` for `|x| < 2^22` (and NaN), in vector instructions (SIMD's
    /// own `rounded` calls `rintf` per lane): adding and subtracting 1.5 * 2^23 leaves the
    /// integer nearest to x, ties to even, and the sign of x goes back on (rint(-0.3) = -0).
    /// Here x is a clamped value times the level count (at most 255).
    @inline(__always)
    static func roundToEven(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let magic = SIMD16<Float>(repeating: 12_582_912)
        let r = (x + magic) - magic
        let sign = SIMD16<UInt32>(repeating: 0x8000_0000)
        let bits = unsafe (unsafeBitCast(r, to: SIMD16<UInt32>.self) & ~sign) | (unsafeBitCast(x, to: SIMD16<UInt32>.self) & sign)
        return unsafe unsafeBitCast(bits, to: SIMD16<Float>.self)
    }

    /// `y = v * step` per element.
    package func forward(_ x: [Float], threads: Int) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe y.withUnsafeMutableBufferPointer { py in
                let (xs, ys) = (px.baseAddress!, py.baseAddress!)
                Parallel.forRanges(x.count, threads: threads, grain: 1 << 14) { range in
                    var i = range.lowerBound
                    while i + 16 <= range.upperBound {
                        let v = levels(unsafe UnsafeRawPointer(xs + i).loadUnaligned(as: SIMD16<Float>.self)).v * step
                        unsafe UnsafeMutableRawPointer(ys + i).storeBytes(of: v, as: SIMD16<Float>.self)
                        i += 16
                    }
                    for j in i..<range.upperBound { unsafe ys[j] = level(unsafe xs[j]).v * step }
                }
            }
        }
        return y
    }

    /// `dx = dy` inside the clamp range (else 0) and the `clip_val` gradient
    /// `sum dy * (inside ? v - z : v)` times the gradient scale and `sign(clip)`.
    package func backward(_ x: [Float], dy: [Float], threads: Int) -> (dx: [Float], parameters: [[Float]]) {
        var dx = [Float](repeating: 0, count: x.count)
        let blocks = (x.count + Self.block - 1) / Self.block
        var sums = [Double](repeating: 0, count: blocks)
        unsafe x.withUnsafeBufferPointer { px in
            unsafe dy.withUnsafeBufferPointer { pdy in
                unsafe dx.withUnsafeMutableBufferPointer { pdx in
                    unsafe sums.withUnsafeMutableBufferPointer { ps in
                        let (xs, dys, dxs, ss) = (px.baseAddress!, pdy.baseAddress!, pdx.baseAddress!, ps.baseAddress!)
                        let count = x.count
                        Parallel.forRanges(blocks, threads: threads) { range in
                            for b in range {
                                // 16 lanes at a time, each lane's products summed in double
                                // in order, the lanes added at the end of the block.
                                var lanes = (SIMD8<Double>(), SIMD8<Double>())
                                var i = b * Self.block
                                let end = min((b + 1) * Self.block, count)
                                while i + 16 <= end {
                                    let (z, inside, v) = levels(unsafe UnsafeRawPointer(xs + i).loadUnaligned(as: SIMD16<Float>.self))
                                    let d = unsafe UnsafeRawPointer(dys + i).loadUnaligned(as: SIMD16<Float>.self)
                                    let mask = SIMD16<Float>(repeating: 0).replacing(with: 1, where: inside)
                                    unsafe UnsafeMutableRawPointer(dxs + i).storeBytes(of: d * mask, as: SIMD16<Float>.self)
                                    let g = v.replacing(with: v - z, where: inside)
                                    lanes.0 += SIMD8<Double>(d.lowHalf) * SIMD8<Double>(g.lowHalf)
                                    lanes.1 += SIMD8<Double>(d.highHalf) * SIMD8<Double>(g.highHalf)
                                    i += 16
                                }
                                var s = (lanes.0 + lanes.1).sum()
                                for j in i..<end {
                                    let (z, inside, v) = level(unsafe xs[j])
                                    let d = unsafe dys[j]
                                    unsafe dxs[j] = d * (inside ? 1 : 0)  // as dy * mask: -0 and NaN kept
                                    s += Double(d) * Double(inside ? v - z : v)
                                }
                                unsafe ss[b] = s
                            }
                        }
                    }
                }
            }
        }
        let total = sums.reduce(0, +)
        let g = QuantMath.skipsScaling(gradFactor) ? 1 : gradFactor
        let sign: Double = clip > 0 ? 1 : (clip < 0 ? -1 : 0)
        return (dx, [[Float(total * g * sign)]])
    }
}
