import Engine
import Tensors
import TestSupport
import Testing

@Suite struct PoolingTests {
    static func randomPool(_ rng: inout SplitMix64, isMax: Bool, maxWidth: Int = 14) -> PoolGeometry {
        while true {
            let (kh, kw) = (rng.int(1...4), rng.int(1...4))
            let (sh, sw) = (rng.int(1...3), rng.int(1...3))
            let (dh, dw) = isMax ? (rng.int(1...2), rng.int(1...2)) : (1, 1)
            let p = Padding2d(top: rng.int(0...kh / 2), left: rng.int(0...kw / 2), bottom: rng.int(0...kh / 2), right: rng.int(0...kw / 2))
            let (h, w) = (rng.int(1...12), rng.int(1...maxWidth))
            let ceil = rng.bool()
            func out(_ size: Int, _ k: Int, _ s: Int, _ pb: Int, _ pa: Int, _ d: Int) -> Int {
                let span = size + pb + pa - d * (k - 1) - 1
                if span < 0 { return 0 }
                var o = (span + (ceil ? s - 1 : 0)) / s + 1
                if ceil && (o - 1) * s >= size + pb { o -= 1 }
                return o
            }
            let oh = out(h, kh, sh, p.top, p.bottom, dh), ow = out(w, kw, sw, p.left, p.right, dw)
            if oh < 1 || ow < 1 { continue }
            return PoolGeometry(
                batch: rng.int(1...2), channels: rng.int(1...5), inHeight: h, inWidth: w, outHeight: oh,
                outWidth: ow, kernelH: kh, kernelW: kw, strideH: sh, strideW: sw, padding: p,
                dilationH: dh, dilationW: dw, countIncludePad: rng.bool())
        }
    }

    @Test(arguments: Array(0..<40 as Range<UInt64>), [1, 2])
    func maxPoolMatchesReference(seed: UInt64, threads: Int) {
        var rng = SplitMix64(seed: seed)
        let g = Self.randomPool(&rng, isMax: true)
        var x = rng.floats(g.planes * g.inHeight * g.inWidth)
        if seed % 5 == 0 { x[rng.int(0...(x.count - 1))] = .nan }
        let slow = ReferenceKernels.maxPool2d(g, input: x)
        let fast = Fast.unary(x, outputCount: slow.count) { Pooling.maxPool(g, input: $0, output: $1, threads: threads) }
        #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern), "\(g)")
    }

    @Test(arguments: Array(0..<40 as Range<UInt64>), [1, 2])
    func avgPoolMatchesReference(seed: UInt64, threads: Int) {
        var rng = SplitMix64(seed: seed)
        let g = Self.randomPool(&rng, isMax: false)
        let x = rng.floats(g.planes * g.inHeight * g.inWidth)
        let slow = ReferenceKernels.avgPool2d(g, input: x)
        let fast = Fast.unary(x, outputCount: slow.count) { Pooling.avgPool(g, input: $0, output: $1, threads: threads) }
        let (ok, msg) = expectClose(fast, slow, atol: 1e-5, "\(g)")
        #expect(ok, "\(msg)")
    }

    @Test(arguments: [(7, 7, 1, 1), (7, 5, 3, 2), (10, 9, 4, 4), (5, 3, 5, 3), (1, 1, 1, 1), (13, 11, 6, 7)], [1, 2])
    func adaptiveAvgPoolMatchesReference(sizes: (Int, Int, Int, Int), threads: Int) {
        let (h, w, oh, ow) = sizes
        var rng = SplitMix64(seed: UInt64(h * 100 + w * 10 + oh))
        let planes = 6
        let x = rng.floats(planes * h * w)
        let slow = ReferenceKernels.adaptiveAvgPool2d(x, planes: planes, height: h, width: w, outHeight: oh, outWidth: ow)
        let fast = Fast.unary(x, outputCount: slow.count) {
            Pooling.adaptiveAvgPool(
                planes: planes, height: h, width: w, outHeight: oh, outWidth: ow, input: $0, output: $1, threads: threads)
        }
        let (ok, msg) = expectClose(fast, slow, atol: 1e-5)
        #expect(ok, "\(msg)")
    }

    /// The ResNet stem pool (3x3, stride 2, pad 1) and a stride-1 3x3: the unrolled interior path.
    @Test(arguments: [(2, 1), (1, 0), (2, 0), (1, 1)], [false, true])
    func threeByThreeInteriorPath(strideAndPad: (Int, Int), withNaN: Bool) {
        let (s, p) = strideAndPad
        let (h, w) = (13, 12)
        let g = PoolGeometry(
            batch: 2, channels: 3, inHeight: h, inWidth: w, outHeight: (h + 2 * p - 3) / s + 1,
            outWidth: (w + 2 * p - 3) / s + 1, kernelH: 3, kernelW: 3, strideH: s, strideW: s,
            padding: Padding2d(p), dilationH: 1, dilationW: 1, countIncludePad: true)
        var rng = SplitMix64(seed: UInt64(s * 10 + p))
        var x = rng.floats(g.planes * h * w)
        if withNaN { x[h * w + 5 * w + 6] = .nan }
        let slow = ReferenceKernels.maxPool2d(g, input: x)
        let fast = Fast.unary(x, outputCount: slow.count) { Pooling.maxPool(g, input: $0, output: $1, threads: 2) }
        #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern))
        #expect(slow.contains { $0.isNaN } == withNaN)
    }

    /// PyTorch's output size along one dim (`ceil` as `ceil_mode`).
    static func outSize(_ size: Int, kernel k: Int, stride s: Int, padBefore pb: Int, padAfter pa: Int, dilation d: Int, ceil: Bool) -> Int
    {
        let span = size + pb + pa - d * (k - 1) - 1
        if span < 0 { return 0 }
        var o = (span + (ceil ? s - 1 : 0)) / s + 1
        if ceil && (o - 1) * s >= size + pb { o -= 1 }
        return o
    }

    /// Mostly few distinct values (ties: +0 next to -0, repeated integers), some infinities.
    static func tieProneFloats(_ rng: inout SplitMix64, _ n: Int) -> [Float] {
        let pool: [Float] = [0, -0.0, 0, -0.0, 1, -1, 2, -.infinity, .infinity, -.greatestFiniteMagnitude]
        return (0..<n).map { _ in
            rng.int(0...2) == 0 ? Float.random(in: -2..<2, using: &rng) : pool[rng.int(0...(pool.count - 1))]
        }
    }

    /// Quiet NaNs with different payloads (the reference keeps the last NaN of a window).
    static func nan(_ rng: inout SplitMix64) -> Float {
        let v = Float(nan: Float.RawSignificand(rng.int(0...1000)), signaling: false)
        return rng.bool() ? v : -v
    }

    /// Shapes for the vector paths: wide rows (odd, exactly 8 or 9 interior outputs, very wide
    /// rows that need several row blocks or a heap buffer), strides 1 and 2, the 3x3 stride-2
    /// pool (ResNet's stem; its own streaming path) with and without padding, ceil mode,
    /// dilation, asymmetric padding; and a few the scalar path takes.
    struct WideCase: Sendable, CustomStringConvertible {
        var h: Int, w: Int, k: (Int, Int), s: (Int, Int), pad: Padding2d, d: (Int, Int), ceil: Bool, planes: Int

        var geometry: PoolGeometry {
            let oh = PoolingTests.outSize(h, kernel: k.0, stride: s.0, padBefore: pad.top, padAfter: pad.bottom, dilation: d.0, ceil: ceil)
            let ow = PoolingTests.outSize(w, kernel: k.1, stride: s.1, padBefore: pad.left, padAfter: pad.right, dilation: d.1, ceil: ceil)
            return PoolGeometry(
                batch: 1, channels: planes, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, kernelH: k.0,
                kernelW: k.1, strideH: s.0, strideW: s.1, padding: pad, dilationH: d.0, dilationW: d.1,
                countIncludePad: true)
        }

        var description: String { "\(h)x\(w) k\(k) s\(s) \(pad) d\(d) ceil \(ceil)" }

        static func sym(_ h: Int, _ w: Int, k: Int, s: Int, p: Int, d: Int = 1, ceil: Bool = false, planes: Int = 3) -> WideCase {
            WideCase(h: h, w: w, k: (k, k), s: (s, s), pad: Padding2d(p), d: (d, d), ceil: ceil, planes: planes)
        }
    }

    static let wideCases: [WideCase] = [
        .sym(112, 112, k: 3, s: 2, p: 1, planes: 4),  // ResNet's stem pool
        .sym(57, 57, k: 3, s: 2, p: 1, ceil: true),
        .sym(33, 33, k: 3, s: 2, p: 0, ceil: true),
        .sym(34, 33, k: 3, s: 2, p: 1, ceil: true),
        .sym(20, 57, k: 3, s: 1, p: 1),
        .sym(9, 10, k: 3, s: 1, p: 1),  // exactly 8 interior outputs
        .sym(11, 19, k: 3, s: 2, p: 1),  // 9 interior outputs: the last group overlaps
        .sym(9, 41, k: 2, s: 2, p: 0),
        .sym(9, 41, k: 2, s: 2, p: 1, ceil: true),
        .sym(15, 37, k: 3, s: 2, p: 1, d: 2),
        .sym(13, 75, k: 5, s: 2, p: 2, ceil: true),
        .sym(9, 33, k: 1, s: 2, p: 0),
        .sym(8, 31, k: 4, s: 1, p: 2, d: 2),
        .sym(5, 17, k: 3, s: 3, p: 1),  // stride 3: scalar path
        .sym(6, 300, k: 4, s: 2, p: 2, ceil: true),
        .sym(7, 2000, k: 3, s: 1, p: 1, planes: 2),  // several row blocks
        .sym(9, 1300, k: 4, s: 1, p: 2, d: 2, planes: 2),  // window rows exceed the stack buffer
        .sym(5, 4200, k: 3, s: 2, p: 1, planes: 2),  // a 3x3 stride-2 row past the stack buffer
        .sym(8, 40, k: 3, s: 2, p: 0),
        WideCase(
            h: 12, w: 45, k: (3, 2), s: (2, 1), pad: Padding2d(top: 1, left: 0, bottom: 0, right: 1), d: (1, 1), ceil: true, planes: 3),
        WideCase(
            h: 10, w: 50, k: (2, 3), s: (1, 2), pad: Padding2d(top: 0, left: 1, bottom: 1, right: 1), d: (2, 1), ceil: false, planes: 3),
    ]

    /// Bit-for-bit agreement on the vector path's shapes: signed-zero ties, infinities,
    /// planes of -inf, NaN (several payloads) in some planes only, threads 1 and 2, and the
    /// portable scalar path.
    @Test(arguments: wideCases, [1, 2])
    func maxPoolWideRowsMatchReference(c: WideCase, threads: Int) {
        let g = c.geometry
        let plane = g.inHeight * g.inWidth
        var rng = SplitMix64(seed: UInt64(c.h * 7919 + c.w * 31 + c.k.0 * 3 + c.s.1))
        for variant in 0..<3 {
            var x = Self.tieProneFloats(&rng, g.planes * plane)
            switch variant {
            case 1:
                // NaN in plane 1 only (one at a border, one inside); plane 0 all -inf but one row.
                x[plane + rng.int(0...(plane - 1))] = Self.nan(&rng)
                x[plane + plane / 2] = Self.nan(&rng)
                x[plane + plane / 2 + 1] = Self.nan(&rng)
                x[plane] = Self.nan(&rng)
                for i in 0..<plane where i / g.inWidth != g.inHeight / 2 { x[i] = -.infinity }
            case 2:
                // Only zeros of both signs and -inf: every window ties.
                x = x.map { $0.isNaN || $0 > 0 ? 0 : $0 < -1e30 ? -.infinity : rng.bool() ? -0.0 : 0 }
            default: break
            }
            let slow = ReferenceKernels.maxPool2d(g, input: x)
            for portable in [false, true] {
                let fast = Fast.unary(x, outputCount: slow.count) {
                    Pooling.maxPool(g, input: $0, output: $1, threads: threads, portable: portable)
                }
                let mismatch = fast.indices.first { fast[$0].bitPattern != slow[$0].bitPattern }
                #expect(
                    mismatch == nil,
                    "\(c) variant \(variant) portable \(portable): at \(mismatch ?? -1) \(mismatch.map { (fast[$0], slow[$0]) }.debugDescription)"
                )
            }
            if variant == 1 { #expect(slow.contains { $0.isNaN }) }
            if variant == 2 {
                #expect(slow.contains { $0.bitPattern == (-0.0 as Float).bitPattern } && slow.contains { $0.bitPattern == 0 })
            }
        }
    }

    /// Random geometries (as ``maxPoolMatchesReference``) with rows up to 80 wide and
    /// tie-prone values, on both paths.
    @Test(arguments: Array(0..<40 as Range<UInt64>), [false, true])
    func maxPoolRandomWideMatchesReference(seed: UInt64, portable: Bool) {
        var rng = SplitMix64(seed: seed &+ 1000)
        let g = Self.randomPool(&rng, isMax: true, maxWidth: 80)
        var x = Self.tieProneFloats(&rng, g.planes * g.inHeight * g.inWidth)
        if seed % 4 == 0 { x[rng.int(0...(x.count - 1))] = Self.nan(&rng) }
        let slow = ReferenceKernels.maxPool2d(g, input: x)
        let fast = Fast.unary(x, outputCount: slow.count) {
            Pooling.maxPool(g, input: $0, output: $1, threads: 2, portable: portable)
        }
        let mismatch = fast.indices.first { fast[$0].bitPattern != slow[$0].bitPattern }
        #expect(mismatch == nil, "\(g): at \(mismatch ?? -1) \(mismatch.map { (fast[$0], slow[$0]) }.debugDescription)")
    }
}
