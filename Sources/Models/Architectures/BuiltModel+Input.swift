/// The input a model takes: `[N, C, H, W]` images for the QTool networks, whatever an imported
/// ONNX graph declares otherwise (an MLP's `[N, 12]`).
extension BuiltModel {
    /// `declared` with the batch `batch` and any other open dimension 1.
    func declaredShape(_ declared: [Int], batch: Int) -> [Int] {
        declared.enumerated().map { $0.offset == 0 ? batch : max($0.element, 1) }
    }

    /// The accepted input shapes in words: `[N, 12]`, `[N, 3, H, W]`.
    package var inputDescription: String {
        guard let d = declaredInputShape, d.count != 4 else { return "[N, \(inputChannels), H, W]" }
        let names = ["N"] + (1..<max(d.count, 1)).map { "d\($0)" }
        return "[" + d.indices.map { $0 == 0 ? "N" : d[$0] > 0 ? String(d[$0]) : names[$0] }.joined(separator: ", ") + "]"
    }

    /// True when the model runs on an input of `shape`: the declared rank with the declared
    /// sizes (the batch may differ), or `[N, inputChannels, H, W]` for image models.
    package func accepts(_ shape: [Int]) -> Bool {
        if let d = declaredInputShape, d.count != 4 {
            return shape.count == d.count && zip(shape, d).dropFirst().allSatisfy { $1 <= 0 || $0 == $1 } && shape.allSatisfy { $0 >= 1 }
        }
        return shape.count == 4 && shape[1] == inputChannels
    }
}
