import Engine
import Formats
import QToolConfig
import Tensors

/// The three quantizers of a QTool `custom_conv` (seed-reference §10.1), bound to a state dict.
///
/// ```swift
/// let q = try ConvQuantizers(
///     options: options, layer: "layer1.0.conv1.0", inChannels: 8, outChannels: 8, kernel: 3,
///     padding: 1, tensors: stateDict)
/// let wq = try q.quantizeWeight(weight, shape: [8, 8, 3, 3])
/// let (xq, xqShape) = try q.quantizeInput(x, shape: [2, 8, 32, 32])   // padded, then conv with padding 0
/// let out = try q.quantizeOutput(conv, shape: outShape)
/// ```
/// `quantizeInput` applies the zero padding and the activation quantizer in QTool's order:
/// pad first (the padded zeros are quantized like real values, e.g. to `+1` for XNOR), or with
/// `--padding_after_quant` quantize first and pad with zeros. The returned tensor is already
/// padded, so the convolution that follows uses padding 0. The quantizers are built with the
/// constructor shapes `[1, in, 1, 1]`, `[out, in, k, k]` (the full `in`, also for grouped convs)
/// and `[1, out, 1, 1]`.
package struct ConvQuantizers: Sendable {
    /// `quant_activation` (fm).
    package var activation: Quantizer
    /// `quant_weight` (wt).
    package var weight: Quantizer
    /// `quant_output` (ot).
    package var output: Quantizer
    /// The conv's padding (`pads`), applied by ``quantizeInput(_:shape:)``.
    package var padding: Int
    /// `--padding_after_quant`.
    package var paddingAfterQuant: Bool

    /// Resolves and binds the quantizers of conv module `layer` (e.g. `layer1.0.conv1.0`).
    /// - Throws: ``QuantizerError`` for unsupported settings or missing/mis-shaped tensors.
    package init(
        options: QToolOptions, layer: String, inChannels: Int, outChannels: Int, kernel: Int,
        padding: Int, featureStride: Int = 1, tensors: [String: Tensor]
    ) throws {
        func bind(
            _ tag: QuantizerTag, _ module: String, _ shape: [Int], _ stride: Int?
        ) throws
            -> Quantizer
        {
            let name = layer + "." + module
            do {
                let config = try QuantizerConfig(
                    options: options, tag: tag, shape: shape, featureStride: stride)
                return try Quantizer(name: name, config: config, tensors: tensors)
            } catch let e as QuantizerError {
                throw e.located(name)
            }
        }
        activation = try bind(.fm, "quant_activation", [1, inChannels, 1, 1], featureStride)
        weight = try bind(.wt, "quant_weight", [outChannels, inChannels, kernel, kernel], nil)
        output = try bind(.ot, "quant_output", [1, outChannels, 1, 1], nil)
        self.padding = padding
        paddingAfterQuant = options.paddingAfterQuant
    }

    /// The weight the convolution uses.
    package func quantizeWeight(_ w: [Float], shape: [Int]) throws -> [Float] {
        try weight(w, shape: shape)
    }

    /// The convolution's input: padded and quantized in QTool's order (see the type's summary).
    package func quantizeInput(_ x: [Float], shape: [Int]) throws -> (values: [Float], shape: [Int]) {
        if paddingAfterQuant {
            let q = try activation(x, shape: shape)
            return try ZeroPadding.pad(q, shape: shape, by: padding)
        }
        let (p, pShape) = try ZeroPadding.pad(x, shape: shape, by: padding)
        return (try activation(p, shape: pShape), pShape)
    }

    /// The convolution's output after `quant_output`.
    package func quantizeOutput(_ y: [Float], shape: [Int]) throws -> [Float] {
        try output(y, shape: shape)
    }
}

/// The two quantizers of a QTool `custom_linear` (§10.2): `[1, in, 1, 1]` and `[1, 1, out, in]`
/// (so the default weight group is 1, one scale per tensor).
package struct LinearQuantizers: Sendable {
    /// `quant_activation` (fm).
    package var activation: Quantizer
    /// `quant_weight` (wt).
    package var weight: Quantizer

    /// Resolves and binds the quantizers of linear module `layer` (e.g. `fc`).
    package init(
        options: QToolOptions, layer: String, inFeatures: Int, outFeatures: Int,
        tensors: [String: Tensor]
    ) throws {
        let fm = try QuantizerConfig(options: options, tag: .fm, shape: [1, inFeatures, 1, 1])
        let wt = try QuantizerConfig(
            options: options, tag: .wt, shape: [1, 1, outFeatures, inFeatures])
        activation = try Quantizer(name: layer + ".quant_activation", config: fm, tensors: tensors)
        weight = try Quantizer(name: layer + ".quant_weight", config: wt, tensors: tensors)
    }
}

/// Zero padding of NCHW tensors (`F.pad(x, (p, p, p, p))`).
package enum ZeroPadding {
    /// `x` with `p` zero pixels on all four sides of every plane.
    package static func pad(
        _ x: [Float], shape: [Int], by p: Int
    ) throws -> (
        values: [Float], shape: [Int]
    ) {
        guard p > 0 else { return (x, shape) }
        guard shape.count == 4, shape.reduce(1, *) == x.count else {
            throw QuantizerError(
                .inputShape("padding needs an NCHW tensor, got \(QuantizerError.dims(shape))"))
        }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (ph, pw) = (h + 2 * p, w + 2 * p)
        var out = [Float](repeating: 0, count: n * c * ph * pw)
        for plane in 0..<(n * c) {
            for r in 0..<h {
                let src = (plane * h + r) * w
                let dst = (plane * ph + r + p) * pw + p
                out.replaceSubrange(dst..<(dst + w), with: x[src..<(src + w)])
            }
        }
        return (out, [n, c, ph, pw])
    }
}
