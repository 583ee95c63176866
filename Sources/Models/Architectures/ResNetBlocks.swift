import Engine

/// BasicBlock and BottleNeck of the flexible ResNet (seed-reference §7.3-§7.8), built into a
/// ``ModelAssembler`` with the upstream module paths (`layer2.0.conv1.0`, `layer2.0.skip.1`).
enum ResNetBlocks {
    /// One step of a per-conv sequence: takes the value, returns the new value.
    typealias Step = (inout ModelAssembler, String) throws(InferenceError) -> String

    /// `layers.py` seq functions: cbas `act(bn(conv x)) [+s]`; cbsa `act(bn(conv x) [+s])`;
    /// cabs `bn(act(conv x)) [+s]`; bacs `conv(act(bn x)) [+s]`; bcas `act(conv(bn x)) [+s]`.
    static func seq(
        _ a: inout ModelAssembler, _ x: String, _ order: ResNetStyle.Order, conv: Step, act: Step,
        bn: Step, skip: Step?
    ) throws(InferenceError) -> String {
        var y: String
        switch order {
        case .cbas: y = try act(&a, try bn(&a, try conv(&a, x)))
        case .cbsa:
            y = try bn(&a, try conv(&a, x))
            if let skip { y = try skip(&a, y) }
            return try act(&a, y)
        case .cabs: y = try bn(&a, try act(&a, try conv(&a, x)))
        case .bacs: y = try conv(&a, try act(&a, try bn(&a, x)))
        case .bcas: y = try act(&a, try conv(&a, try bn(&a, x)))
        }
        if let skip { y = try skip(&a, y) }
        return y
    }

    /// A block's description.
    struct Block {
        var prefix: String
        var inplanes: Int
        var planes: Int
        var stride: Int
        var bottleneck: Bool
        var outplanes: Int { bottleneck ? planes * 4 : planes }
    }

    /// The shortcut `skip` Sequential (§7.4) applied to `x`, or nil when unused.
    static func shortcut(
        _ a: inout ModelAssembler, _ x: String, _ b: Block, _ s: ResNetStyle
    )
        throws(InferenceError) -> String?
    {
        let (cin, cout) = (b.inplanes, b.outplanes)
        guard b.stride != 1 || cin != cout || s.identifyNorm else { return nil }
        let p = b.prefix + ".skip."
        let withConv = cin != cout
        var v = x
        if b.stride != 1 && !(s.singleConv) {
            v = a.op(.avgPool2d(.init(kernel: b.stride, stride: b.stride)), p + "0", v)
        }
        let convStride = s.singleConv ? b.stride : 1
        func bn(_ a: inout ModelAssembler, _ i: Int, _ c: Int, _ x: String) throws(InferenceError) -> String {
            s.fixup ? x : try a.batchNorm(p + "\(i)", x, channels: c)
        }
        func conv(_ a: inout ModelAssembler, _ i: Int, _ x: String) throws(InferenceError) -> String {
            try a.conv(p + "\(i)", x, in: cin, out: cout, kernel: 1, stride: convStride, quantized: !s.realSkip)
        }
        if withConv {
            if s.order == .bacs {
                v = try bn(&a, 1, cin, v)
                v = try a.activation(p + "2", v)
                v = try conv(&a, 3, v)
                if s.fix { v = try bn(&a, 4, cout, v) }
            } else if s.order == .bcas && !b.bottleneck {
                v = try bn(&a, 1, cin, v)
                v = try conv(&a, 2, v)
                v = try a.activation(p + "3", v)
                if s.fix { v = try bn(&a, 4, cout, v) }
            } else {
                v = try conv(&a, 1, v)
                v = try bn(&a, 2, cout, v)
                if !s.fix { v = try a.activation(p + "3", v) }
            }
        } else if s.identifyNorm {
            v = try bn(&a, 1, cin, v)
        }
        return v
    }

    /// A BasicBlock or BottleNeck applied to `x` (§7.5, §7.8); returns the block output.
    static func block(
        _ a: inout ModelAssembler, _ x: String, _ b: Block, _ s: ResNetStyle
    )
        throws(InferenceError) -> String
    {
        let p = b.prefix
        var x = x, b = b, s = s
        // ReShapeResolution (§7.6): the shrink path, then a stride-1 planes -> planes block.
        let secondKernel = s.lossless?.secondKernel(b) ?? 3
        var firstConv = true
        if let l = s.lossless, l.shrinks(b) {
            x = try l.shrink(&a, x, b, s)
            if l.ldn3x3 {
                try l.claimUnused(&a, b, s)
                return x
            }
            b.inplanes = b.planes
            b.stride = 1
            if l.f0x0 {
                firstConv = false
                s.origin = true
            }
        }
        var xin = x
        if s.fixupBias { xin = try a.scalarAffine(p + ".fixup_bias1a", x, channels: b.inplanes, shift: p + ".fixup_bias1a") }
        let residual = try shortcut(&a, xin, b, s) ?? x
        let addition = !s.origin
        // Convs: (module, in, out, kernel, stride, padding); BN sizes per order.
        let convs: [(String, Int, Int, Int, Int, Int)] =
            b.bottleneck
            ? [
                ("conv1", b.inplanes, b.planes, 1, 1, 0), ("conv2", b.planes, b.planes, 3, b.stride, 1),
                ("conv3", b.planes, b.outplanes, 1, 1, 0),
            ]
            : [
                ("conv1", b.inplanes, b.planes, 3, b.stride, 1),
                ("conv2", b.planes, b.planes, secondKernel, 1, secondKernel == 1 ? 0 : 1),
            ]
        let bnSizes: [Int] =
            b.bottleneck
            ? (s.order == .bacs ? [b.inplanes, b.planes, b.planes] : [b.planes, b.planes, b.outplanes])
            : (s.order.preActivation ? [b.inplanes, b.planes] : [b.planes, b.planes])
        let last = convs.count - 1
        var result: String? = nil
        for branch in 0..<(s.fixup ? 1 : s.branches) {
            var out = xin
            // f0x0: the first conv, BN and activation are empty (and there is no per-conv skip).
            for (i, c) in convs.enumerated() where i > 0 || firstConv {
                let n = i + 1
                let conv: Step = { a, v throws(InferenceError) in
                    try a.conv("\(p).\(c.0).\(branch)", v, in: c.1, out: c.2, kernel: c.3, stride: c.4, padding: c.5, quantized: true)
                }
                let identityAct = i == last && s.fixRelu
                let act: Step = { a, v throws(InferenceError) in
                    identityAct ? v : try a.activation("\(p).relu\(n).\(branch)", v)
                }
                let bn: Step = { a, v throws(InferenceError) in
                    s.fixup ? v : try a.batchNorm("\(p).bn\(n).\(branch)", v, channels: bnSizes[i])
                }
                if s.fixupBias && i < last {
                    let key = "\(p).fixup_bias\(n)b"
                    let bias: Step = { a, v throws(InferenceError) in
                        try a.scalarAffine(key, v, channels: c.2, shift: key)
                    }
                    out = try seq(&a, out, s.order, conv: conv, act: act, bn: bn, skip: bias)
                    let next = "\(p).fixup_bias\(n + 1)a"
                    out = try a.scalarAffine(next, out, channels: c.2, shift: next)
                } else {
                    let skipValue = i == 0 ? residual : out
                    let skip: Step? =
                        addition
                        ? { a, v in a.add("\(p).\(c.0).\(branch).add", v, skipValue) } : nil
                    out = try seq(&a, out, s.order, conv: conv, act: act, bn: bn, skip: skip)
                }
            }
            if s.branches > 1 && !s.fixup {
                out = try a.scalarAffine("\(p).scales.\(branch)", out, channels: b.outplanes, scale: "\(p).scales.\(branch)")
            }
            result = result.map { a.add("\(p).sum", $0, out) } ?? out
        }
        var output = result!
        if s.fixup {
            let bias = s.fixupBias ? "\(p).fixup_bias\(convs.count)b" : nil
            output = try a.scalarAffine(p + ".fixup_scale", output, channels: b.outplanes, scale: p + ".fixup_scale", shift: bias)
        }
        if s.origin {
            if s.fixBN { output = try a.batchNorm(p + ".fix_bn", output, channels: b.outplanes) }
            output = a.add(p + ".add", output, residual)
            if s.fixRelu { output = try a.activation(p + ".fix_relu", output) }
        }
        return output
    }
}
