import Tensors

/// torchvision's ResNet-18 layout as a ``Graph``, with torchvision's state-dict names.
///
/// conv1 7x7/2 (pad 3) -> bn1 -> relu -> maxpool 3/2 (pad 1) -> layer1...layer4 (two
/// BasicBlocks each; the first block of layers 2-4 has stride 2 and a 1x1 `downsample`
/// conv + BN) -> adaptive avgpool 1x1 -> flatten -> fc. BasicBlock:
/// `relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x))`. Batch norms have eps 1e-5.
/// Input value `input` `[N, 3, H, W]`; output value `logits` `[N, classes]`.
public enum ResNet18 {
    /// Every weight name and shape the graph needs, in state-dict order.
    public static func parameterShapes(classes: Int = 1000) -> [(name: String, shape: [Int])] {
        var p: [(String, [Int])] = []
        func bn(_ prefix: String, _ c: Int) {
            for t in ["weight", "bias", "running_mean", "running_var"] { p.append(("\(prefix).\(t)", [c])) }
        }
        p.append(("conv1.weight", [64, 3, 7, 7]))
        bn("bn1", 64)
        var inp = 64
        for (s, planes) in [64, 128, 256, 512].enumerated() {
            for k in 0..<2 {
                let pre = "layer\(s + 1).\(k)"
                let cin = k == 0 ? inp : planes
                p.append(("\(pre).conv1.weight", [planes, cin, 3, 3]))
                bn("\(pre).bn1", planes)
                p.append(("\(pre).conv2.weight", [planes, planes, 3, 3]))
                bn("\(pre).bn2", planes)
                if k == 0 && (s > 0 || inp != planes) {
                    p.append(("\(pre).downsample.0.weight", [planes, cin, 1, 1]))
                    bn("\(pre).downsample.1", planes)
                }
            }
            inp = planes
        }
        p.append(("fc.weight", [classes, 512]))
        p.append(("fc.bias", [classes]))
        return p
    }

    /// Builds the graph; `weight(name, shape)` supplies each constant (see ``parameterShapes(classes:)``).
    public static func graph(classes: Int = 1000, weight: (String, [Int]) throws -> Tensor) rethrows -> Graph {
        var g = Graph()
        for (name, shape) in parameterShapes(classes: classes) { g.addConstant(name, try weight(name, shape)) }
        g.addInput("input")
        func bn(_ prefix: String, _ x: String) -> String {
            g.add(.batchNorm(epsilon: 1e-5), name: prefix, inputs: [x] + ["weight", "bias", "running_mean", "running_var"].map { "\(prefix).\($0)" })
        }
        func conv(_ name: String, _ x: String, stride: Int, padding: Int) -> String {
            g.add(.conv2d(.init(stride: stride, padding: padding)), name: name, inputs: [x, "\(name).weight"])
        }
        var x = conv("conv1", "input", stride: 2, padding: 3)
        x = g.add(.relu, name: "relu", inputs: [bn("bn1", x)])
        x = g.add(.maxPool2d(.init(kernel: 3, stride: 2, padding: 1)), name: "maxpool", inputs: [x])
        var inp = 64
        for (s, planes) in [64, 128, 256, 512].enumerated() {
            for k in 0..<2 {
                let pre = "layer\(s + 1).\(k)"
                let stride = (k == 0 && s > 0) ? 2 : 1
                var shortcut = x
                if k == 0 && (s > 0 || inp != planes) {
                    shortcut = bn("\(pre).downsample.1", conv("\(pre).downsample.0", x, stride: stride, padding: 0))
                }
                var y = conv("\(pre).conv1", x, stride: stride, padding: 1)
                y = g.add(.relu, name: "\(pre).relu1", inputs: [bn("\(pre).bn1", y)])
                y = bn("\(pre).bn2", conv("\(pre).conv2", y, stride: 1, padding: 1))
                y = g.add(.add, name: "\(pre).add", inputs: [y, shortcut])
                x = g.add(.relu, name: "\(pre).relu2", inputs: [y])
            }
            inp = planes
        }
        x = g.add(.adaptiveAvgPool2d(outputHeight: 1, outputWidth: 1), name: "avgpool", inputs: [x])
        x = g.add(.flatten(startDim: 1), name: "flatten", inputs: [x])
        g.add(.linear, name: "fc", inputs: [x, "fc.weight", "fc.bias"], output: "logits")
        g.markOutput("logits")
        return g
    }

    /// The graph with seeded random weights (He-scaled convs, BN statistics near identity).
    public static func randomGraph(classes: Int = 1000, seed: UInt64 = 0) -> Graph {
        var rng = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> Float {  // SplitMix64 -> uniform [-1, 1)
            rng &+= 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 23) - 1
        }
        return graph(classes: classes) { name, shape in
            let n = shape.reduce(1, *)
            let values: [Float]
            if name.hasSuffix("running_var") {
                values = (0..<n).map { _ in 1 + 0.25 * next() }
            } else if name.hasSuffix("running_mean") || (shape.count == 1 && name.hasSuffix("bias")) {
                values = (0..<n).map { _ in 0.1 * next() }
            } else if shape.count == 1 {
                values = (0..<n).map { _ in 1 + 0.25 * next() }
            } else {
                let fanIn = Float(shape.dropFirst().reduce(1, *))
                let scale = (6 / fanIn).squareRoot()  // uniform He init
                values = (0..<n).map { _ in scale * next() }
            }
            return Tensor(floats: values, shape: shape)
        }
    }
}
