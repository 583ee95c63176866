import Inference
import TestSupport
import Testing

@Suite struct PoolingTests {
    static func randomPool(_ rng: inout SplitMix64, isMax: Bool) -> PoolGeometry {
        while true {
            let (kh, kw) = (rng.int(1...4), rng.int(1...4))
            let (sh, sw) = (rng.int(1...3), rng.int(1...3))
            let (dh, dw) = isMax ? (rng.int(1...2), rng.int(1...2)) : (1, 1)
            let p = Padding2d(top: rng.int(0...kh / 2), left: rng.int(0...kw / 2), bottom: rng.int(0...kh / 2), right: rng.int(0...kw / 2))
            let (h, w) = (rng.int(1...12), rng.int(1...14))
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
            Pooling.adaptiveAvgPool(planes: planes, height: h, width: w, outHeight: oh, outWidth: ow, input: $0, output: $1, threads: threads)
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
}
