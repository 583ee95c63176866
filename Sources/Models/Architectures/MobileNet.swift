import Engine
import Formats
import QToolConfig
import Tensors

/// QTool's MobileNets (models/mobilenet.py; seed-reference §9.1, §9.2): `mobilenetv1`
/// (`MobileNetV1` of `conv_dw` blocks) and `mobilenetv2` (`MobileNetV2` of
/// `InvertedResidual` blocks), with the state-dict names of the spec.
///
/// Layer orders: V1 `cbas`, `cbsa` (identical without skips) or `bacs`; V2 `cbas` or `bacs`.
/// `preBN`, `normal3x3`, `real_dp`, `real_pt` are supported; the Bi-Real / block skips
/// (`bireal`, `block_skip`, `react` without `origin`) are refused.
enum MobileNet {
    /// Model-zoo names.
    static let names = ["mobilenetv1", "mobilenetv2"]

    /// The layer order keyword: `true` for pre-activation `bacs`.
    private static func preActivation(_ o: QToolOptions, allowed: [String], model: String) throws(InferenceError) -> Bool {
        guard let word = allowed.first(where: { o.hasKeyword($0) }) else {
            throw InferenceError(
                .unsupportedModel("\(model) needs a layer-order keyword (\(allowed.joined(separator: ", ")))"))
        }
        return word == "bacs"
    }

    private static func width(_ c: Int, _ alpha: Double) throws(InferenceError) -> Int {
        let w = Int(Double(c) * alpha)
        guard w >= 1 else { throw InferenceError(.unsupportedModel("--width_alpha \(alpha) leaves no channels")) }
        return w
    }

    /// `conv_bn(in, out, stride)` at `path`: Sequential(conv 3×3, BN, actv), or the bare conv
    /// with `preBN` (key `path.weight`).
    private static func stem(
        _ a: inout ModelAssembler, _ path: String, _ x: String, out: Int, stride: Int
    )
        throws(InferenceError) -> String
    {
        if a.options.hasKeyword("preBN") {
            return try a.conv(path, x, in: 3, out: out, kernel: 3, stride: stride, padding: 1, quantized: false)
        }
        var v = try a.conv(path + ".0", x, in: 3, out: out, kernel: 3, stride: stride, padding: 1, quantized: false)
        v = try a.batchNorm(path + ".1", v, channels: out)
        return try a.activation(path + ".2", v)
    }

    // MARK: - V1

    /// Builds `mobilenetv1` into `a` from input value `x`; returns the logits value.
    static func buildV1(_ a: inout ModelAssembler, _ x: String, numClasses: Int) throws(InferenceError) -> String {
        let o = a.options
        let bacs = try preActivation(o, allowed: ["cbas", "cbsa", "bacs"], model: "mobilenetv1")
        if !o.hasKeyword("origin"), let w = ["bireal", "block_skip"].first(where: { o.hasKeyword($0) }) {
            throw InferenceError(.unsupportedModel("mobilenetv1 keyword '\(w)' (Bi-Real / block skips) is not supported"))
        }
        let cifar = o.hasKeyword("cifar10") || o.hasKeyword("cifar100")
        let alpha = o.widthAlpha
        var v = try stem(&a, "root", x, out: try width(32, alpha), stride: cifar ? 1 : 2)
        let blocks: [(Int, Int, Int)] =
            [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]
            + Array(repeating: (512, 512, 1), count: 5) + [(512, 1024, 2), (1024, 1024, 1)]
        let normal3x3 = o.hasKeyword("normal3x3")
        for (n, b) in blocks.enumerated() {
            let p = "model.\(n)"
            let cin = try width(b.0, alpha), cout = try width(b.1, alpha)
            // out = seq(x, depth_conv, relu1, bn1); y = seq(out, point_conv, relu2, bn2)
            let depth: (inout ModelAssembler, String) throws(InferenceError) -> String = { a, v in
                try a.conv(
                    p + ".depth_conv.0", v, in: cin, out: cin, kernel: 3, stride: b.2, padding: 1,
                    groups: normal3x3 ? 1 : cin, quantized: !o.hasKeyword("real_dp"))
            }
            let point: (inout ModelAssembler, String) throws(InferenceError) -> String = { a, v in
                try a.conv(p + ".point_conv.0", v, in: cin, out: cout, kernel: 1, quantized: !o.hasKeyword("real_pt"))
            }
            if bacs {
                v = try a.batchNorm(p + ".bn1.0", v, channels: cin)
                v = try a.activation(p + ".relu1.0", v)
                v = try depth(&a, v)
                v = try a.batchNorm(p + ".bn2.0", v, channels: cin)
                v = try a.activation(p + ".relu2.0", v)
                v = try point(&a, v)
            } else {
                v = try depth(&a, v)
                v = try a.batchNorm(p + ".bn1.0", v, channels: cin)
                v = try a.activation(p + ".relu1.0", v)
                v = try point(&a, v)
                v = try a.batchNorm(p + ".bn2.0", v, channels: cout)
                v = try a.activation(p + ".relu2.0", v)
            }
        }
        let last = try width(1024, alpha)
        if o.hasKeyword("preBN") {
            v = try a.batchNorm("pooling.0", v, channels: 1024)  // not width-scaled upstream
            v = try a.activation("pooling.1", v)
        }
        v = a.op(.adaptiveAvgPool2d(outputHeight: 1, outputWidth: 1), "pooling", v)
        v = a.op(.flatten(startDim: 1), "flatten", v)
        return try a.linear("classifier.0", v, in: last, out: numClasses, output: "logits")
    }

    // MARK: - V2

    /// Builds `mobilenetv2` into `a` from input value `x`; returns the logits value.
    static func buildV2(
        _ a: inout ModelAssembler, _ x: String, numClasses: Int, inputSize: Int
    )
        throws(InferenceError) -> String
    {
        let o = a.options
        let bacs = try preActivation(o, allowed: ["cbas", "bacs"], model: "mobilenetv2")
        guard inputSize % 32 == 0 else {
            throw InferenceError(.unsupportedModel("mobilenetv2 needs an input size divisible by 32 (got \(inputSize))"))
        }
        let cifar = o.hasKeyword("cifar10") || o.hasKeyword("cifar100")
        let alpha = o.widthAlpha
        var settings: [(t: Int, c: Int, n: Int, s: Int)] = [
            (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
        ]
        if cifar { settings[1].s = 1 }
        var cin = try width(32, alpha)
        var v = try stem(&a, "features.0", x, out: cin, stride: cifar ? 1 : 2)
        var index = 1
        for row in settings {
            let cout = try width(row.c, alpha)
            for i in 0..<row.n {
                v = try invertedResidual(
                    &a, "features.\(index)", v, in: cin, out: cout, stride: i == 0 ? row.s : 1, expand: row.t,
                    bacs: bacs)
                cin = cout
                index += 1
            }
        }
        let last = alpha > 1 ? Int(1280 * alpha) : 1280
        let p = "features.\(index)"
        v = try a.conv(p + ".0", v, in: cin, out: last, kernel: 1, quantized: true)
        v = try PyTorchResNet.norm(&a, p + ".1", v, last)  // norm(last, args=args): words effective
        v = try a.activation(p + ".2", v)
        v = a.op(.adaptiveAvgPool2d(outputHeight: 1, outputWidth: 1), "mean", v)
        v = a.op(.flatten(startDim: 1), "flatten", v)
        return try a.linear("classifier.0", v, in: last, out: numClasses, output: "logits")
    }

    /// `InvertedResidual(in, out, stride, expand_ratio)` at `p` (§9.2).
    private static func invertedResidual(
        _ a: inout ModelAssembler, _ p: String, _ x: String, in cin: Int, out cout: Int, stride: Int, expand t: Int,
        bacs: Bool
    ) throws(InferenceError) -> String {
        let hidden = Int((Double(cin) * Double(t)).rounded())
        // (conv, BN channels, activation?) per stage, in forward order.
        struct Stage {
            var conv: String, cin: Int, cout: Int, kernel: Int, stride: Int, groups: Int
            var bn: String, bnChannels: Int, relu: String, act: Bool
        }
        var stages: [Stage]
        if t == 1 {
            stages = [
                Stage(
                    conv: "conv1", cin: hidden, cout: hidden, kernel: 3, stride: stride, groups: hidden,
                    bn: "bn1", bnChannels: hidden, relu: "relu1", act: true),
                Stage(
                    conv: "conv2", cin: hidden, cout: cout, kernel: 1, stride: 1, groups: 1,
                    bn: "bn2", bnChannels: bacs ? hidden : cout, relu: "relu2", act: bacs),
            ]
        } else {
            stages = [
                Stage(
                    conv: "conv1", cin: cin, cout: hidden, kernel: 1, stride: 1, groups: 1,
                    bn: "bn1", bnChannels: bacs ? cin : hidden, relu: "relu1", act: true),
                Stage(
                    conv: "conv2", cin: hidden, cout: hidden, kernel: 3, stride: stride, groups: hidden,
                    bn: "bn2", bnChannels: hidden, relu: "relu2", act: true),
                Stage(
                    conv: "conv3", cin: hidden, cout: cout, kernel: 1, stride: 1, groups: 1,
                    bn: "bn3", bnChannels: bacs ? hidden : cout, relu: "relu3", act: bacs),
            ]
        }
        var v = x
        for s in stages {
            let conv: (inout ModelAssembler, String) throws(InferenceError) -> String = { a, v in
                try a.conv(
                    "\(p).\(s.conv)", v, in: s.cin, out: s.cout, kernel: s.kernel, stride: s.stride,
                    padding: s.kernel == 3 ? 1 : 0, groups: s.groups, quantized: true)
            }
            if bacs {
                v = try a.batchNorm("\(p).\(s.bn)", v, channels: s.bnChannels)
                if s.act { v = try a.activation("\(p).\(s.relu)", v) }
                v = try conv(&a, v)
            } else {
                v = try conv(&a, v)
                v = try a.batchNorm("\(p).\(s.bn)", v, channels: s.bnChannels)
                if s.act { v = try a.activation("\(p).\(s.relu)", v) }
            }
        }
        guard stride == 1 && cin == cout else { return v }
        if bacs {
            let skip = try a.batchNorm(p + ".skip_bn", x, channels: cin)
            let stem = try a.batchNorm(p + ".stem_bn", v, channels: cout)
            return a.add(p + ".add", skip, stem)
        }
        return a.add(p + ".add", x, v)
    }
}
