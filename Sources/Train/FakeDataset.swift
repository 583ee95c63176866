import Tensors

/// `--dataset fake` as the reference defines it (`datasets/fake.py`, seed-reference §14.9):
/// 100,000 items per split, label = index mod 1000, each image uniform random floats in
/// [0, 1) converted to uint8, which makes every pixel 0. ImageNet's transforms of a black
/// image are black, so every sample is ImageNet's normalisation of 0: `-mean / std` per
/// channel, `input_size` square. Only useful for throughput tests, as in the reference; the
/// class count still comes from the model (1000 unless the keyword says cifar).
public struct FakeSamples: SampleSet {
    public static let items = 100_000
    public static let mean: [Float] = [0.485, 0.456, 0.406]
    public static let std: [Float] = [0.229, 0.224, 0.225]

    public var count: Int
    public var side: Int

    public init(count: Int = FakeSamples.items, side: Int) {
        self.count = count
        self.side = side
    }

    public var sampleShape: [Int] { [3, side, side] }
    public func label(_ index: Int) -> Int { index % 1000 }

    public func load(_ index: Int, rng: inout SplitMix64, into out: inout [Float], at offset: Int) {
        let plane = side * side
        for c in 0..<3 {
            let v = (0 - Self.mean[c]) / Self.std[c]
            for k in 0..<plane { out[offset + c * plane + k] = v }
        }
    }
}
