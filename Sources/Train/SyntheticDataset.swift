import Foundation
import Tensors

/// `--dataset synthetic`: a built-in, seeded 10-class 32x32 colour image set, generated (no
/// download). Class `c` is a shape (`c % 5`: horizontal bars, vertical bars, a disc, a diagonal
/// band, a checkerboard) drawn in one of two colour pairs (`c / 5`), at a random offset and
/// scale, on a random-tinted background, plus per-pixel noise; values are roughly zero-mean,
/// unit-range. Train and test splits come from different streams of the same seed.
public enum SyntheticDataset {
    public static let classes = 10
    public static let size = 32

    /// `train` and `test` images (labels cycle through the classes in a seeded order).
    public static func make(seed: UInt64 = 14, train: Int = 2000, test: Int = 500) -> (train: ImageSet, val: ImageSet) {
        (split(seed: seed &* 2 &+ 1, count: train), split(seed: seed &* 2 &+ 2, count: test))
    }

    static let palette: [[(Float, Float, Float)]] = [
        [(0.9, 0.2, 0.2), (0.2, 0.3, 0.9)],
        [(0.2, 0.85, 0.3), (0.9, 0.8, 0.1)],
    ]

    static func split(seed: UInt64, count: Int) -> ImageSet {
        var rng = SplitMix64(seed: seed)
        let s = size, plane = s * s
        var images = [Float](repeating: 0, count: count * 3 * plane)
        var labels = [Int](repeating: 0, count: count)
        for n in 0..<count {
            let c = Int(rng.next() % UInt64(classes))
            labels[n] = c
            let shape = c % 5, colours = palette[c / 5]
            let fg = colours[0], bg = colours[1]
            let period = 4 + Int(rng.next() % 5)
            let phase = Int(rng.next() % 8)
            let cx = 10 + Float(rng.next() % 12), cy = 10 + Float(rng.next() % 12), r = 5 + Float(rng.next() % 6)
            let tint = uniform(&rng) * 0.3
            for y in 0..<s {
                for x in 0..<s {
                    let on: Bool
                    switch shape {
                    case 0: on = ((y + phase) / period) % 2 == 0
                    case 1: on = ((x + phase) / period) % 2 == 0
                    case 2: on = (Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy) < r * r
                    case 3: on = abs(x - y + phase - 4) < period
                    default: on = (((x + phase) / period) + ((y + phase) / period)) % 2 == 0
                    }
                    let col = on ? fg : bg
                    let base = n * 3 * plane + y * s + x
                    for (ch, v) in [col.0, col.1, col.2].enumerated() {
                        let noise = (uniform(&rng) - 0.5) * 0.5
                        images[base + ch * plane] = (v + tint + noise - 0.5) * 2
                    }
                }
            }
        }
        return ImageSet(images: images, imageShape: [3, s, s], labels: labels)
    }

    static func uniform(_ rng: inout SplitMix64) -> Float { Float(rng.next() >> 40) / Float(1 << 24) }
}
