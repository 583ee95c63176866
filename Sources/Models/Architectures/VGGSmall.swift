import Engine
import Formats
import Tensors

/// QTool's `vgg_small` (models/vgg_small_.py; seed-reference §9.3), the LQ-Nets CIFAR net:
/// six 3×3 convs (the first a plain full-precision `nn.Conv2d`, the rest quantized wrappers),
/// max-pools after conv2, conv4 and conv6, `bn7` + ReLU, and a linear classifier over
/// `512·4·4` features (32×32 input). Stage k is `seq(x, bn_k, relu_k, conv_k)` in the order
/// `bac`, `cba` or `abc`; the ReLUs are plain `nn.ReLU`.
enum VGGSmall {
    /// Builds the network into `a` from input value `x`; returns the logits value.
    static func build(_ a: inout ModelAssembler, _ x: String, numClasses: Int) throws(InferenceError) -> String {
        let o = a.options
        guard let order = ["bac", "cba", "abc"].first(where: { o.hasKeyword($0) }) else {
            throw InferenceError(.unsupportedModel("vgg_small needs a layer-order keyword (bac, cba, abc)"))
        }
        guard o.resolvedInputSize == 32 else {
            throw InferenceError(.unsupportedModel("vgg_small needs a 32×32 input (got \(o.resolvedInputSize))"))
        }
        // (in, out, BN channels or nil for identity, max-pool after the stage)
        let convs = [(3, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
        let bnChannels: [Int?] =
            order == "cba"
            ? [128, 128, 256, 256, 512, 512]
            : [nil, 128, 128, 256, 256, 512]
        var v = x
        for (i, c) in convs.enumerated() {
            let k = i + 1
            let bn: (inout ModelAssembler, String) throws(InferenceError) -> String = { a, v in
                guard let ch = bnChannels[i] else { return v }
                return try a.batchNorm("bn\(k)", v, channels: ch)
            }
            let relu: (inout ModelAssembler, String) -> String = { a, v in
                order != "cba" && k == 1 ? v : a.op(.relu, "relu\(k)", v)
            }
            let conv: (inout ModelAssembler, String) throws(InferenceError) -> String = { a, v in
                try a.conv("conv\(k)", v, in: c.0, out: c.1, kernel: 3, padding: 1, quantized: k > 1)
            }
            switch order {
            case "bac": v = try conv(&a, relu(&a, try bn(&a, v)))
            case "abc": v = try conv(&a, try bn(&a, relu(&a, v)))
            default: v = relu(&a, try bn(&a, try conv(&a, v)))
            }
            if k % 2 == 0 { v = a.op(.maxPool2d(.init(kernel: 2, stride: 2)), "pool\(k)", v) }
        }
        v = try a.batchNorm("bn7", v, channels: 512)
        v = a.op(.relu, "relu7", v)
        v = a.op(.flatten(startDim: 1), "flatten", v)
        return try a.linear("classifier", v, in: 512 * 4 * 4, out: numClasses, output: "logits")
    }
}
