import Engine

/// A bound QTool quantizer is what the engine's quantize op applies.
extension Quantizer: QuantizeFunction {
    /// The method's name (`dorefa`, `lsq`, ...; `none` when disabled).
    package var method: String { config.method?.rawValue ?? "none" }
    /// Output levels (2 for XNOR).
    package var levels: Int { config.method == .xnor ? 2 : config.levels }
    /// The eval-mode forward (seed-reference §11).
    package func apply(_ x: [Float], shape: [Int]) throws -> [Float] { try self(x, shape: shape) }
    /// The eval-mode forward on up to `threads` threads (the element-wise quantizers that run
    /// here, not as a grid kernel: FATNN's non-uniform one).
    package func apply(_ x: [Float], shape: [Int], threads: Int) throws -> [Float] {
        try self(x, shape: shape, threads: threads)
    }
}

/// Imported ONNX element-wise nodes run as a quantize op too.
extension ElementwiseProgram: QuantizeFunction {
    package var method: String { "onnx" }
    package var levels: Int { 0 }
    package func apply(_ x: [Float], shape: [Int]) throws -> [Float] { try run(x, shape: shape) }
}

extension QuantizeAttributes {
    /// Wraps an imported element-wise program.
    package init(program: ElementwiseProgram) { self.init(program) }

    /// The QTool quantizer the op applies (nil for an imported program).
    package var quantizer: Quantizer? { function as? Quantizer }
}
