import Foundation
import Tensors

/// ImageNet's transforms (seed-reference §14.9) on PIL-like RGB images, as torchvision
/// applies them: train = RandomResizedCrop(size, scale 0.08-1, ratio 3/4-4/3) (Pillow
/// bilinear), RandomHorizontalFlip, ToTensor, Normalize; val = Resize(256) (shorter side,
/// bilinear), CenterCrop(size), ToTensor, Normalize. The random draws use the loader's
/// seeded streams, not torch's generator.
public enum ImageNetTransform {
    public static let mean: [Float] = [0.485, 0.456, 0.406]
    public static let std: [Float] = [0.229, 0.224, 0.225]
    public static let resizeTo = 256

    /// A crop box: top row, left column, height, width.
    public struct Box: Sendable, Equatable {
        public var top: Int, left: Int, height: Int, width: Int
        public init(top: Int, left: Int, height: Int, width: Int) {
            self.top = top
            self.left = left
            self.height = height
            self.width = width
        }
    }

    /// Python's `round()` (half to even) then `int()`.
    static func pyRound(_ x: Double) -> Int { Int(x.rounded(.toNearestOrEven)) }

    static func uniform(_ rng: inout SplitMix64, _ a: Double, _ b: Double) -> Double {
        a + (b - a) * (Double(rng.next() >> 11) * 0x1p-53)
    }

    /// `RandomResizedCrop.get_params`: ten tries at a box of a random area fraction (0.08-1)
    /// and log-uniform aspect ratio (3/4-4/3) that fits, else the centre crop clamped to
    /// the ratio range.
    public static func randomResizedCropBox(width: Int, height: Int, rng: inout SplitMix64) -> Box {
        let area = Double(height * width)
        let logRatio = (log(3.0 / 4.0), log(4.0 / 3.0))
        for _ in 0..<10 {
            let target = area * uniform(&rng, 0.08, 1.0)
            let aspect = exp(uniform(&rng, logRatio.0, logRatio.1))
            let w = pyRound((target * aspect).squareRoot()), h = pyRound((target / aspect).squareRoot())
            if 0 < w && w <= width && 0 < h && h <= height {
                let i = Int(rng.next() % UInt64(height - h + 1)), j = Int(rng.next() % UInt64(width - w + 1))
                return Box(top: i, left: j, height: h, width: w)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < 3.0 / 4.0 {
            h = pyRound(Double(w) / (3.0 / 4.0))
        } else if inRatio > 4.0 / 3.0 {
            w = pyRound(Double(h) * (4.0 / 3.0))
        }
        return Box(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }

    /// The train transform of `image` with the crop `box` and `flip`: `size` x `size`
    /// normalised float32 CHW into `out[offset...]`.
    /// With `jitter` and `lighting` (`--aa`): ColorJitter after the flip, PCA lighting (the
    /// alphas) after ToTensor.
    public static func train(
        _ image: RGBImage, box: Box, flip: Bool, size: Int, jitter: ColorAugment.Jitter? = nil,
        lighting: [Float]? = nil, into out: inout [Float], at offset: Int
    ) {
        let crop = PillowResize.crop(image, top: box.top, left: box.left, width: box.width, height: box.height)
        var img = PillowResize.resize(crop, width: size, height: size)
        if let jitter { img = ColorAugment.jitter(img, jitter) }
        normalise(img, flip: flip, lighting: lighting.map(ColorAugment.lightingOffsets), into: &out, at: offset)
    }

    /// The train transform with random draws from `rng`: the box, the flip, and with
    /// `augment` (`--aa`) the jitter and the lighting alphas.
    public static func train(
        _ image: RGBImage, size: Int, augment: Bool = false, rng: inout SplitMix64, into out: inout [Float], at offset: Int
    ) {
        let box = randomResizedCropBox(width: image.width, height: image.height, rng: &rng)
        let flip = rng.next() >> 63 == 1
        let jitter = augment ? ColorAugment.drawJitter(&rng) : nil
        let lighting = augment ? ColorAugment.drawLighting(&rng) : nil
        train(image, box: box, flip: flip, size: size, jitter: jitter, lighting: lighting, into: &out, at: offset)
    }

    /// The size Resize(256) gives: the shorter side 256, the longer `int(256 * long / short)`.
    public static func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let s = resizeTo
        if width <= height { return (s, Int(Double(s) * Double(height) / Double(width))) }
        return (Int(Double(s) * Double(width) / Double(height)), s)
    }

    /// The val transform: Resize(256), CenterCrop(size), ToTensor, Normalize.
    /// - Throws: ``TrainError`` when the resized image is smaller than `size` (torchvision
    ///   would pad; only for `--input_size` above 256).
    public static func val(_ image: RGBImage, size: Int, into out: inout [Float], at offset: Int) throws(TrainError) {
        let (w, h) = resizedSize(width: image.width, height: image.height)
        guard w >= size && h >= size else {
            throw TrainError(.unsupported("--input_size \(size) larger than the resized \(w) x \(h) image"))
        }
        let resized = PillowResize.resize(image, width: w, height: h)
        let top = pyRound(Double(h - size) / 2), left = pyRound(Double(w - size) / 2)
        let crop = PillowResize.crop(resized, top: top, left: left, width: size, height: size)
        normalise(crop, flip: false, into: &out, at: offset)
    }

    /// ToTensor + Normalize in float32 (torch's operations), optionally mirrored.
    static let table: [[Float]] = (0..<3).map { c in (0..<256).map { v in (Float(v) / 255 - mean[c]) / std[c] } }

    static func normalise(_ img: RGBImage, flip: Bool, lighting: [Float]? = nil, into out: inout [Float], at offset: Int) {
        let (w, h) = (img.width, img.height), plane = w * h
        for c in 0..<3 {
            let lut = lighting.map { l in (0..<256).map { v in ((Float(v) / 255 + l[c]) - mean[c]) / std[c] } } ?? table[c]
            for y in 0..<h {
                for x in 0..<w {
                    let sx = flip ? w - 1 - x : x
                    out[offset + c * plane + y * w + x] = lut[Int(img.pixels[(y * w + sx) * 3 + c])]
                }
            }
        }
    }
}
