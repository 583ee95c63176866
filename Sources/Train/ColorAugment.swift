import Foundation
import Tensors

/// `--aa` for ImageNet training (seed-reference §14.9): ColorJitter(0.4, 0.4, 0.4) after the
/// flip (Pillow's ImageEnhance Brightness, Contrast and Color in a random order, each a
/// float32 `Image.blend` with its degenerate image) and PCA Lighting(0.1) after ToTensor
/// (`img + eigvec · (alpha * eigval)` per channel, alpha ~ N(0, 0.1) per image).
public enum ColorAugment {
    public static let eigval: [Float] = [0.2175, 0.0188, 0.0045]
    public static let eigvec: [[Float]] = [
        [-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203],
    ]

    /// One image's jitter: the factors (each in 0.6-1.4) and the order of the three
    /// adjustments (0 brightness, 1 contrast, 2 saturation).
    public struct Jitter: Sendable, Equatable {
        public var brightness: Double, contrast: Double, saturation: Double
        public var order: [Int]
        public init(brightness: Double, contrast: Double, saturation: Double, order: [Int]) {
            self.brightness = brightness
            self.contrast = contrast
            self.saturation = saturation
            self.order = order
        }
    }

    public static func drawJitter(_ rng: inout SplitMix64) -> Jitter {
        var order = [0, 1, 2]
        for i in stride(from: 2, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let b = ImageNetTransform.uniform(&rng, 0.6, 1.4)
        let c = ImageNetTransform.uniform(&rng, 0.6, 1.4)
        let s = ImageNetTransform.uniform(&rng, 0.6, 1.4)
        return Jitter(brightness: b, contrast: c, saturation: s, order: order)
    }

    /// Lighting's alpha: three N(0, 0.1) draws (Box-Muller).
    public static func drawLighting(_ rng: inout SplitMix64) -> [Float] {
        (0..<3).map { _ in
            let u1 = max(Double(rng.next() >> 11) * 0x1p-53, 0x1p-60), u2 = Double(rng.next() >> 11) * 0x1p-53
            return Float(0.1 * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
    }

    /// The per-channel offsets Lighting adds, in torch's float32 order.
    public static func lightingOffsets(_ alpha: [Float]) -> [Float] {
        (0..<3).map { i in
            var s: Float = 0
            for j in 0..<3 { s += eigvec[i][j] * alpha[j] * eigval[j] }
            return s
        }
    }

    /// The jitter applied to `image` in its order.
    public static func jitter(_ image: RGBImage, _ j: Jitter) -> RGBImage {
        var img = image
        for step in j.order {
            switch step {
            case 0: img = brightness(img, j.brightness)
            case 1: img = contrast(img, j.contrast)
            default: img = saturation(img, j.saturation)
            }
        }
        return img
    }

    /// Pillow's `ImagingBlend(in1, in2, alpha)` of one byte pair.
    @inline(__always) static func blend(_ a: UInt8, _ b: UInt8, _ alpha: Float) -> UInt8 {
        let t = Float(Int(a)) + alpha * Float(Int(b) - Int(a))
        if alpha >= 0 && alpha <= 1 { return UInt8(t) }
        return t <= 0 ? 0 : t >= 255 ? 255 : UInt8(t)
    }

    /// Pillow's RGB to L (ITU-R 601-2 in 16-bit fixed point, rounded).
    @inline(__always) static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        let rr = Int(r) * 19595, gg = Int(g) * 38470, bb = Int(b) * 7471
        return UInt8((rr + gg + bb + 0x8000) >> 16)
    }

    /// `ImageEnhance.Brightness(img).enhance(f)`: a blend with black.
    static func brightness(_ img: RGBImage, _ f: Double) -> RGBImage {
        let a = Float(f)
        var out = img
        for i in 0..<out.pixels.count { out.pixels[i] = blend(0, img.pixels[i], a) }
        return out
    }

    /// `ImageEnhance.Contrast(img).enhance(f)`: a blend with the grey of the mean luma.
    static func contrast(_ img: RGBImage, _ f: Double) -> RGBImage {
        var sum = 0
        let n = img.width * img.height
        for p in 0..<n { sum += Int(luma(img.pixels[3 * p], img.pixels[3 * p + 1], img.pixels[3 * p + 2])) }
        let mean = UInt8(Int(Double(sum) / Double(max(n, 1)) + 0.5))
        let a = Float(f)
        var out = img
        for i in 0..<out.pixels.count { out.pixels[i] = blend(mean, img.pixels[i], a) }
        return out
    }

    /// `ImageEnhance.Color(img).enhance(f)`: a blend with the image's greyscale.
    static func saturation(_ img: RGBImage, _ f: Double) -> RGBImage {
        let a = Float(f)
        var out = img
        for p in 0..<(img.width * img.height) {
            let g = luma(img.pixels[3 * p], img.pixels[3 * p + 1], img.pixels[3 * p + 2])
            for c in 0..<3 { out.pixels[3 * p + c] = blend(g, img.pixels[3 * p + c], a) }
        }
        return out
    }
}
