import Engine
import Formats
import Tensors

/// QTool's copy of torchvision's ResNet, `pytorch-resnetXX` (models/resnet.py;
/// seed-reference §8), with torchvision's state-dict names (`layer1.0.conv1.weight`,
/// `layer2.0.downsample.0.weight`, `fc.weight`).
///
/// Block convs and the downsample conv are quantized wrappers (downsample full precision with
/// `real_skip`); `first-last` also quantizes the stem conv and `fc`; `caffe-pooling` makes the
/// max-pool unpadded with ceil mode. Normalisation words are effective here (§5.4).
/// Extension: `--width_alpha` scales every width (`int(64·α)·2^i`), which upstream lacks.
enum PyTorchResNet {
    /// Block counts per stage and whether the blocks are (v1.5) Bottlenecks.
    static let depths: [String: (layers: [Int], bottleneck: Bool)] = [
        "resnet18": ([2, 2, 2, 2], false), "resnet34": ([3, 4, 6, 3], false),
        "resnet50": ([3, 4, 6, 3], true), "resnet101": ([3, 4, 23, 3], true),
        "resnet152": ([3, 8, 36, 3], true),
    ]

    /// Builds the network into `a` from input value `x`; returns the logits value.
    static func build(
        _ a: inout ModelAssembler, _ x: String, depth: String, numClasses: Int
    )
        throws(InferenceError) -> String
    {
        guard let (layers, bottleneck) = depths[depth] else {
            throw InferenceError(.unsupportedModel("unknown pytorch-\(depth)"))
        }
        let o = a.options
        let c0 = Int(64 * o.widthAlpha)
        guard c0 >= 1 else { throw InferenceError(.unsupportedModel("--width_alpha \(o.widthAlpha) leaves no channels")) }
        let firstLast = o.hasKeyword("first-last")
        let realSkip = o.hasKeyword("real_skip")
        let expansion = bottleneck ? 4 : 1

        var v = try a.conv("conv1", x, in: 3, out: c0, kernel: 7, stride: 2, padding: 3, quantized: firstLast)
        v = try norm(&a, "bn1", v, c0)
        v = try a.activation("relu", v)
        let pool =
            o.hasKeyword("caffe-pooling")
            ? Pool2dAttributes(kernel: 3, stride: 2, padding: 0, ceilMode: true)
            : Pool2dAttributes(kernel: 3, stride: 2, padding: 1)
        v = a.op(.maxPool2d(pool), "maxpool", v)

        var inplanes = c0
        for (i, count) in layers.enumerated() {
            let planes = c0 << i
            for k in 0..<count {
                let p = "layer\(i + 1).\(k)"
                let stride = k == 0 && i > 0 ? 2 : 1
                var identity = v
                if k == 0 && (stride != 1 || inplanes != planes * expansion) {
                    identity = try a.conv(
                        p + ".downsample.0", v, in: inplanes, out: planes * expansion, kernel: 1,
                        stride: stride, quantized: !realSkip)
                    identity = try norm(&a, p + ".downsample.1", identity, planes * expansion)
                }
                let convs: [(Int, Int, Int, Int, Int)] =
                    bottleneck
                    ? [(inplanes, planes, 1, 1, 0), (planes, planes, 3, stride, 1), (planes, planes * 4, 1, 1, 0)]
                    : [(inplanes, planes, 3, stride, 1), (planes, planes, 3, 1, 1)]
                var y = v
                for (j, c) in convs.enumerated() {
                    y = try a.conv("\(p).conv\(j + 1)", y, in: c.0, out: c.1, kernel: c.2, stride: c.3, padding: c.4, quantized: true)
                    y = try norm(&a, "\(p).bn\(j + 1)", y, c.1)
                    if j == convs.count - 1 { y = a.add(p + ".add", y, identity) }
                    y = try a.activation("\(p).relu\(j + 1)", y)
                }
                v = y
                inplanes = planes * expansion
            }
        }
        v = a.op(.adaptiveAvgPool2d(outputHeight: 1, outputWidth: 1), "avgpool", v)
        v = a.op(.flatten(startDim: 1), "flatten", v)
        let features = (c0 << (layers.count - 1)) * expansion
        if firstLast {
            return try a.quantizedLinear("fc", v, in: features, out: numClasses, output: "logits")
        }
        return try a.linear("fc", v, in: features, out: numClasses, output: "logits")
    }

    /// `norm(C, args=args)` (§5.4): BatchNorm2d, or with `static-bn` / `freeze-bn` the same
    /// math under the same names, or with `reverse-bn` the affine first and a non-affine BN.
    static func norm(_ a: inout ModelAssembler, _ path: String, _ x: String, _ c: Int) throws(InferenceError) -> String {
        for w in ["group-norm", "instance-norm"] where a.options.hasKeyword(w) {
            throw InferenceError(.unsupportedModel("normalisation keyword '\(w)' is not supported"))
        }
        if a.options.hasKeyword("reverse-bn") && !a.options.hasKeyword("static-bn") && !a.options.hasKeyword("freeze-bn") {
            return try a.reverseBatchNorm(path, x, channels: c)
        }
        return try a.batchNorm(path, x, channels: c)
    }
}
