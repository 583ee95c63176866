import Tensors

/// CIFAR's transforms (seed-reference §14.9): train = RandomHorizontalFlip,
/// Pad(4, reflect), RandomCrop(32), ToTensor, Normalize; eval = ToTensor, Normalize, with the
/// CIFAR mean and std (the same for CIFAR-10 and CIFAR-100).
public struct CIFARAugment: Sendable, Equatable {
    public static let mean: [Float] = [0.4914, 0.4822, 0.4465]
    public static let std: [Float] = [0.2023, 0.1994, 0.2010]
    public static let padding = 4

    /// One image's random choices: mirror, then the crop's top-left corner in the padded image
    /// (`0...2 * padding` each).
    public struct Draw: Sendable, Equatable {
        public var flip: Bool
        public var top: Int, left: Int
        public init(flip: Bool, top: Int, left: Int) {
            self.flip = flip
            self.top = top
            self.left = left
        }
    }

    /// The draws in torchvision's order: the flip (p = 0.5), then RandomCrop's `i`, `j`.
    public static func draw(_ rng: inout SplitMix64) -> Draw {
        let flip = rng.next() >> 63 == 1
        let span = UInt64(2 * padding + 1)
        let top = Int(rng.next() % span), left = Int(rng.next() % span)
        return Draw(flip: flip, top: top, left: left)
    }

    /// `ToTensor` then `Normalize` of byte value `v` in channel `c`, in float32 as torch does.
    public static let table: [[Float]] = (0..<3).map { c in
        (0..<256).map { v in (Float(v) / 255 - mean[c]) / std[c] }
    }

    /// Index `i` of a row of `n` padded with `padding` reflected pixels on each side, back in
    /// the row (numpy's and torch's `reflect`: the edge pixel is not repeated).
    @inline(__always) static func reflect(_ i: Int, _ n: Int) -> Int {
        i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i
    }

    /// Writes the `h` x `w` CHW byte image `pixels[base...]` (3 channels) into `out[offset...]`,
    /// flipped, padded and cropped per `draw` (nil: unchanged, the eval transform), normalised.
    public static func apply(
        _ pixels: [UInt8], base: Int, height h: Int, width w: Int, draw: Draw?, into out: inout [Float], at offset: Int
    ) {
        let plane = h * w
        for c in 0..<3 {
            let lut = table[c]
            let src = base + c * plane, dst = offset + c * plane
            guard let d = draw else {
                for k in 0..<plane { out[dst + k] = lut[Int(pixels[src + k])] }
                continue
            }
            for y in 0..<h {
                let row = src + reflect(d.top + y - padding, h) * w
                let o = dst + y * w
                for x in 0..<w {
                    let col = reflect(d.left + x - padding, w)
                    out[o + x] = lut[Int(pixels[row + (d.flip ? w - 1 - col : col)])]
                }
            }
        }
    }
}

/// CIFAR images in memory (uint8 CHW 3 x 32 x 32, as the batch files store them) with their
/// labels, transformed for training (augmented) or evaluation.
public struct CIFARSamples: SampleSet {
    public static let side = 32
    public static let imageBytes = 3 * side * side
    public var pixels: [UInt8]
    public var labels: [Int]
    /// Augment (the train split) or only normalise (the test split).
    public var augment: Bool

    public init(pixels: [UInt8], labels: [Int], augment: Bool) {
        self.pixels = pixels
        self.labels = labels
        self.augment = augment
    }

    public var count: Int { labels.count }
    public var sampleShape: [Int] { [3, Self.side, Self.side] }
    public func label(_ index: Int) -> Int { labels[index] }

    public func load(_ index: Int, rng: inout SplitMix64, into out: inout [Float], at offset: Int) {
        let draw = augment ? CIFARAugment.draw(&rng) : nil
        CIFARAugment.apply(
            pixels, base: index * Self.imageBytes, height: Self.side, width: Self.side, draw: draw, into: &out, at: offset)
    }
}
