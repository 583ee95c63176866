import Foundation
import Tensors
import TestSupport
import Testing

@testable import Train

/// CIFAR's train and eval transforms against a naive reference written here (explicit flip,
/// explicit 40 x 40 reflect-padded image, crop, ToTensor, Normalize), and (interop) against
/// numpy's `np.pad(mode='reflect')` and torch's float32 ToTensor/Normalize.
@Suite struct CIFARAugmentTests {
    static func randomImage(_ seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<CIFARSamples.imageBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// The naive pipeline on one CHW 3 x 32 x 32 image.
    static func naive(_ img: [UInt8], _ d: CIFARAugment.Draw?) -> [Float] {
        let n = 32
        func at(_ c: Int, _ y: Int, _ x: Int) -> UInt8 { img[c * n * n + y * n + x] }
        var out: [Float] = []
        for c in 0..<3 {
            // RandomHorizontalFlip
            var flipped = [[UInt8]](repeating: [UInt8](repeating: 0, count: n), count: n)
            for y in 0..<n { for x in 0..<n { flipped[y][x] = at(c, y, d?.flip == true ? n - 1 - x : x) } }
            // Pad(4, reflect): mirror around the edge pixel, one fold at a time.
            var padded = [[UInt8]](repeating: [UInt8](repeating: 0, count: n + 8), count: n + 8)
            func fold(_ i: Int) -> Int {
                var i = i
                while i < 0 || i >= n { i = i < 0 ? -i : 2 * n - 2 - i }
                return i
            }
            for py in 0..<(n + 8) { for px in 0..<(n + 8) { padded[py][px] = flipped[fold(py - 4)][fold(px - 4)] } }
            // RandomCrop(32) at (top, left); the eval transform takes the image as it is.
            for y in 0..<n {
                for x in 0..<n {
                    let v = d.map { padded[$0.top + y][$0.left + x] } ?? flipped[y][x]
                    let t = Float(v) / 255  // ToTensor
                    out.append((t - CIFARAugment.mean[c]) / CIFARAugment.std[c])  // Normalize
                }
            }
        }
        return out
    }

    static func apply(_ img: [UInt8], _ d: CIFARAugment.Draw?) -> [Float] {
        var out = [Float](repeating: .nan, count: 3 * 32 * 32 + 7)
        CIFARAugment.apply(img, base: 0, height: 32, width: 32, draw: d, into: &out, at: 7)
        return Array(out[7...])
    }

    @Test func everyFlipAndCropMatchesTheNaivePipeline() {
        let img = Self.randomImage(1)
        for flip in [false, true] {
            for top in 0...8 {
                for left in 0...8 {
                    let d = CIFARAugment.Draw(flip: flip, top: top, left: left)
                    let got = Self.apply(img, d), want = Self.naive(img, d)
                    #expect(got == want, "flip \(flip) top \(top) left \(left)")
                    if got != want { return }
                }
            }
        }
    }

    @Test func evalOnlyNormalises() {
        let img = Self.randomImage(2)
        #expect(Self.apply(img, nil) == Self.naive(img, nil))
        // Crop at the centre without a flip is also the identity.
        #expect(Self.apply(img, .init(flip: false, top: 4, left: 4)) == Self.naive(img, nil))
    }

    @Test func drawsCoverEveryOffsetAndBothFlips() {
        var rng = SplitMix64(seed: 5)
        var tops = Set<Int>(), lefts = Set<Int>(), flips = 0
        let n = 4000
        for _ in 0..<n {
            let d = CIFARAugment.draw(&rng)
            tops.insert(d.top)
            lefts.insert(d.left)
            if d.flip { flips += 1 }
        }
        #expect(tops == Set(0...8) && lefts == Set(0...8))
        #expect(flips > n / 2 - 200 && flips < n / 2 + 200, "\(flips) flips in \(n)")
    }

    @Test func samplesAugmentOnlyTheTrainSplit() {
        let img = Self.randomImage(3) + Self.randomImage(4)
        let train = CIFARSamples(pixels: img, labels: [3, 7], augment: true)
        let val = CIFARSamples(pixels: img, labels: [3, 7], augment: false)
        var out = [Float](repeating: 0, count: 3072)
        var rng = SplitMix64(seed: 9), copy = rng
        try? val.load(1, rng: &rng, into: &out, at: 0)
        #expect(out == Self.naive(Self.randomImage(4), nil))
        #expect(rng.state == copy.state, "the eval transform draws nothing")
        try? train.load(1, rng: &rng, into: &out, at: 0)
        #expect(out == Self.naive(Self.randomImage(4), CIFARAugment.draw(&copy)))
    }
}

@Suite(.enabled(if: Python.interpreter != nil || Python.isRequired, "needs the reference Python (torch, numpy)"))
struct CIFARAugmentTorchTests {
    /// torchvision's RandomHorizontalFlip / Pad(4, reflect) / RandomCrop(32) / ToTensor /
    /// Normalize on fixed draws, written with numpy and torch (torchvision is not needed:
    /// its Pad on PIL images is `np.pad(mode='reflect')`, its crop a slice, ToTensor a float
    /// division by 255, Normalize float32 `sub_(mean).div_(std)`).
    @Test func matchesNumpyPadAndTorchNormalise() throws {
        let img = CIFARAugmentTests.randomImage(11)
        let draws: [CIFARAugment.Draw] = [
            .init(flip: false, top: 0, left: 0), .init(flip: true, top: 8, left: 8), .init(flip: true, top: 1, left: 6),
            .init(flip: false, top: 7, left: 2), .init(flip: true, top: 4, left: 4),
        ]
        let spec = draws.map { "[\($0.flip ? 1 : 0),\($0.top),\($0.left)]" }.joined(separator: ",")
        let r = try Python.json(
            """
            import json, sys
            import numpy as np, torch
            img = np.frombuffer(bytes.fromhex(sys.argv[1]), dtype=np.uint8).reshape(3, 32, 32).transpose(1, 2, 0)  # HWC as PIL
            mean = torch.tensor([0.4914, 0.4822, 0.4465]); std = torch.tensor([0.2023, 0.1994, 0.2010])
            out = []
            for flip, top, left in json.loads(sys.argv[2]):
                a = img[:, ::-1] if flip else img
                a = np.pad(a, ((4, 4), (4, 4), (0, 0)), mode='reflect')[top:top + 32, left:left + 32]
                t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).contiguous().float().div(255)
                t = t.sub_(mean[:, None, None]).div_(std[:, None, None])
                out.append(t.numpy().astype('<f4').tobytes().hex())
            print(json.dumps(out))
            """, [Hex.string(img), "[\(spec)]"])
        let want = try #require(r as? [String])
        #expect(want.count == draws.count)
        for (d, w) in zip(draws, want) {
            let got = CIFARAugmentTests.apply(img, d)
            let hex = Hex.string(got.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
            #expect(hex == w, "\(d)")
        }
    }
}
