import Engine
import Formats
import Tensors

/// QTool's `nin` (models/nin_.py; seed-reference §9.4): Network-in-Network for CIFAR-10 as
/// one Sequential `body` (keys `body.<idx>.*`). The first and last convs are plain
/// `nn.Conv2d` with bias; the others are quantized wrappers. 10 classes and a 32×32 input are
/// hard-wired upstream.
enum NIN {
    /// Builds the network into `a` from input value `x`; returns the logits value.
    static func build(_ a: inout ModelAssembler, _ x: String, numClasses: Int) throws(InferenceError) -> String {
        guard numClasses == 10 else {
            throw InferenceError(.unsupportedModel("nin has 10 classes hard-wired (got --num_classes \(numClasses))"))
        }
        guard a.options.resolvedInputSize == 32 else {
            throw InferenceError(.unsupportedModel("nin needs a 32×32 input (got \(a.options.resolvedInputSize))"))
        }
        enum Item { case conv(Int, Int, Int, Bool), maxPool, avgPool }
        // conv(in, out, kernel, quantized); each conv is followed by norm and act.
        let items: [Item] = [
            .conv(3, 192, 5, false), .conv(192, 160, 1, true), .conv(160, 96, 1, true), .maxPool,
            .conv(96, 192, 5, true), .conv(192, 192, 1, true), .conv(192, 192, 1, true), .avgPool,
            .conv(192, 192, 3, true), .conv(192, 192, 1, true), .conv(192, 10, 1, false),
        ]
        var v = x
        var idx = 0
        for item in items {
            switch item {
            case .conv(let cin, let cout, let k, let quantized):
                v = try a.conv(
                    "body.\(idx)", v, in: cin, out: cout, kernel: k, padding: k / 2, bias: !quantized,
                    quantized: quantized)
                v = try a.batchNorm("body.\(idx + 1)", v, channels: cout)
                v = try a.activation("body.\(idx + 2)", v)
                idx += 3
            case .maxPool:
                v = a.op(.maxPool2d(.init(kernel: 3, stride: 2, padding: 1)), "body.\(idx)", v)
                idx += 1
            case .avgPool:
                v = a.op(.avgPool2d(.init(kernel: 3, stride: 2, padding: 1)), "body.\(idx)", v)
                idx += 1
            }
        }
        v = a.op(.avgPool2d(.init(kernel: 8)), "body.\(idx)", v)
        return a.op(.flatten(startDim: 1), "logits", v)
    }
}
