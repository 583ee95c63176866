import Engine
import Formats
import Tensors

/// QTool's flexible ResNet `resnetXX` (models/resnet_.py; seed-reference §7): stem, stages of
/// BasicBlocks or BottleNecks, head, with every structure word of §5.3 that changes the eval
/// forward, and the state-dict names of §7.11.
package enum ResNetFlexible {
    /// Block counts per stage and whether the blocks are BottleNecks.
    package static let depths: [String: (layers: [Int], bottleneck: Bool)] = [
        "resnet18": ([2, 2, 2, 2], false), "resnet34": ([3, 4, 6, 3], false),
        "resnet50": ([3, 4, 6, 3], true), "resnet101": ([3, 4, 23, 3], true),
        "resnet20": ([3, 3, 3], false), "resnet20_": ([2, 2, 3, 2], false),
        "resnet32": ([5, 5, 5], false), "resnet44": ([7, 7, 7], false),
        "resnet56": ([9, 9, 9], false),
    ]

    /// Builds the network into `a` from input value `x`; returns the logits value.
    static func build(
        _ a: inout ModelAssembler, _ x: String, model: String, numClasses: Int
    )
        throws(InferenceError) -> String
    {
        guard let (layers, bottleneck) = depths[model] else {
            throw InferenceError(.unsupportedModel("unknown flexible ResNet '\(model)'"))
        }
        let s = try ResNetStyle(a.options, bottleneck: bottleneck)
        let c0 = Int(64 * a.options.widthAlpha)
        guard c0 >= 1 else { throw InferenceError(.unsupportedModel("--width_alpha \(a.options.widthAlpha) leaves no channels")) }

        // Stem: conv1 (full precision), maxpool, bn1 (§7.1, §7.2).
        var v: String
        if let factor = s.stem.spaceToDepth {
            v = try a.spaceToDepthConv("conv1", x, in: 3, out: c0, factor: factor, kernel: s.stemKernel, quantized: false)
        } else {
            v = try a.conv(
                "conv1", x, in: 3, out: c0, kernel: s.cifar ? 3 : 7, stride: s.cifar ? 1 : 2,
                padding: s.cifar ? 1 : 3, quantized: false)
        }
        if s.fixup {
            if s.fixupBias { v = try a.scalarAffine("fixup_bias1", v, channels: c0, shift: "fixup_bias1") }
            v = try a.activation("stem_relu", v)
        }
        func maxpool(_ a: inout ModelAssembler, _ v: String) -> String {
            s.stem.hasMaxPool ? a.op(.maxPool2d(.init(kernel: 3, stride: 2, padding: 1)), "maxpool", v) : v
        }
        func bn1(_ a: inout ModelAssembler, _ v: String) throws(InferenceError) -> String {
            if s.fixup { return v }
            if s.preBN && !(s.patchPreBNStem && s.fixPooling) { return v }
            let y = try a.batchNorm("bn1.0", v, channels: c0)
            return s.groupNet ? y : try a.activation("bn1.1", y)
        }
        v = s.fixPooling ? maxpool(&a, try bn1(&a, v)) : try bn1(&a, maxpool(&a, v))

        var inplanes = c0
        for (i, count) in layers.enumerated() {
            let planes = c0 << i
            for k in 0..<count {
                let block = ResNetBlocks.Block(
                    prefix: "layer\(i + 1).\(k)", inplanes: inplanes, planes: planes,
                    stride: k == 0 && i > 0 ? 2 : 1, bottleneck: bottleneck)
                v = try ResNetBlocks.block(&a, v, block, s)
                inplanes = block.outplanes
            }
            if count == 0 { continue }
        }
        let last = (c0 << (layers.count - 1)) * (bottleneck ? 4 : 1)
        if s.preBN && !s.fixup {
            v = try a.batchNorm("bn2.0", v, channels: last)
            if s.patchPreBNStem { v = try a.activation("bn2.1", v) }
        }
        v = a.op(.adaptiveAvgPool2d(outputHeight: 1, outputWidth: 1), "avgpool", v)
        v = a.op(.flatten(startDim: 1), "flatten", v)
        if s.fixupBias { v = try a.scalarAffine("fixup_bias2", v, channels: last, shift: "fixup_bias2") }
        return try a.linear("fc", v, in: last, out: numClasses, output: "logits")
    }
}
