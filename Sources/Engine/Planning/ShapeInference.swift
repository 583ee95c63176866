/// Output shapes of each op, and the resolved geometry the kernels use.
///
/// Every rule follows PyTorch; errors carry no node name here (the planner adds it).
package enum ShapeInference {
    /// The output shape of `op` for the given input shapes.
    package static func outputShape(_ op: Op, _ s: [[Int]]) throws(InferenceError) -> [Int] {
        switch op {
        case .conv2d(let a):
            let g = try conv(a, input: s[0], weight: s[1], bias: s.count > 2 ? s[2] : nil)
            return [g.batch, g.outChannels, g.outHeight, g.outWidth]
        case .binaryConv2d(let a):
            let g = try binaryConv(a, input: s[0])
            return [g.batch, g.outChannels, g.outHeight, g.outWidth]
        case .integerConv(let a):
            let g = try integerConv(a, s)
            return [g.batch, g.outChannels, g.outHeight, g.outWidth]
        case .batchNorm:
            try requireRank(s[0], atLeast: 2, "batchNorm input")
            for k in 1..<5 { try requireVector(s[k], s[0][1], "batchNorm parameter \(k)") }
            return s[0]
        case .relu, .hardtanh, .clamp, .identity:
            return s[0]
        case .quantize(let q):
            try q.check(shape: s[0])
            return s[0]
        case .prelu:
            try requireRank(s[0], atLeast: 1, "prelu input")
            let n = s[1].reduce(1, *)
            let c = s[0].count >= 2 ? s[0][1] : 1
            guard n == 1 || n == c else {
                throw InferenceError(.shapeMismatch("prelu slope has \(n) elements; input has \(c) channels"))
            }
            return s[0]
        case .maxPool2d(let a):
            return try pool(a, input: s[0], isMax: true).outputShape
        case .avgPool2d(let a):
            return try pool(a, input: s[0], isMax: false).outputShape
        case .adaptiveAvgPool2d(let oh, let ow):
            try requireRank(s[0], exactly: 4, "adaptiveAvgPool2d input")
            guard oh >= 1, ow >= 1 else { throw InferenceError(.invalidAttribute("output size \(oh)x\(ow)")) }
            guard s[0][2] >= 1, s[0][3] >= 1 else { throw InferenceError(.shapeMismatch("empty spatial input \(s[0])")) }
            return [s[0][0], s[0][1], oh, ow]
        case .linear:
            try requireRank(s[0], exactly: 2, "linear input")
            try requireRank(s[1], exactly: 2, "linear weight")
            guard s[0][1] == s[1][1] else {
                throw InferenceError(.shapeMismatch("linear input \(s[0]) vs weight \(s[1])"))
            }
            if s.count > 2 { try requireVector(s[2], s[1][0], "linear bias") }
            return [s[0][0], s[1][0]]
        case .add:
            guard s[0] == s[1] else { throw InferenceError(.shapeMismatch("add \(s[0]) + \(s[1])")) }
            return s[0]
        case .mul:
            return try broadcast(s[0], s[1])
        case .reduceMean(let axes, let keep):
            let (lo, hi) = try reducedAxes(axes, input: s[0])
            return keep ? s[0].indices.map { $0 >= lo && $0 <= hi ? 1 : s[0][$0] } : Array(s[0][..<lo] + s[0][(hi + 1)...])
        case .channelAffine:
            try requireRank(s[0], atLeast: 2, "channelAffine input")
            try requireVector(s[1], s[0][1], "channelAffine scale")
            try requireVector(s[2], s[0][1], "channelAffine bias")
            return s[0]
        case .flatten(let d):
            let r = s[0].count
            let start = d < 0 ? d + r : d
            guard start >= 0, start < max(r, 1) else { throw InferenceError(.invalidAttribute("flatten start \(d) for rank \(r)")) }
            return Array(s[0][..<start]) + [s[0][start...].reduce(1, *)]
        case .reshape(let shape):
            return try reshaped(s[0], shape)
        case .softmax(let axis):
            let r = s[0].count
            guard (axis < 0 ? axis + r : axis) >= 0, (axis < 0 ? axis + r : axis) < r else {
                throw InferenceError(.invalidAttribute("softmax axis \(axis) for rank \(r)"))
            }
            return s[0]
        case .pad(let a):
            try requireRank(s[0], exactly: 4, "pad input")
            let p = a.padding
            guard p.top >= 0, p.left >= 0, p.bottom >= 0, p.right >= 0 else {
                throw InferenceError(.invalidAttribute("negative padding \(p)"))
            }
            return [s[0][0], s[0][1], s[0][2] + p.top + p.bottom, s[0][3] + p.left + p.right]
        case .spaceToDepth(let b):
            try requireRank(s[0], exactly: 4, "spaceToDepth input")
            guard b >= 1, s[0][2] % b == 0, s[0][3] % b == 0 else {
                throw InferenceError(.shapeMismatch("spaceToDepth block \(b) does not divide \(s[0])"))
            }
            return [s[0][0], s[0][1] * b * b, s[0][2] / b, s[0][3] / b]
        case .depthToSpace(let b):
            try requireRank(s[0], exactly: 4, "depthToSpace input")
            guard b >= 1, s[0][1] % (b * b) == 0 else {
                throw InferenceError(.shapeMismatch("depthToSpace block \(b) does not divide the channels of \(s[0])"))
            }
            return [s[0][0], s[0][1] / (b * b), s[0][2] * b, s[0][3] * b]
        case .concat:
            for x in s { try requireRank(x, exactly: 4, "concat input") }
            var c = 0
            for x in s {
                guard x[0] == s[0][0], x[2] == s[0][2], x[3] == s[0][3] else {
                    throw InferenceError(.shapeMismatch("concat \(s[0]) with \(x)"))
                }
                c += x[1]
            }
            return [s[0][0], c, s[0][2], s[0][3]]
        }
    }

    /// NumPy broadcast of two shapes (right-aligned; each dim pair equal or one of them 1).
    package static func broadcast(_ a: [Int], _ b: [Int]) throws(InferenceError) -> [Int] {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else { throw InferenceError(.shapeMismatch("mul \(a) * \(b) does not broadcast")) }
            out.append(max(x, y))
        }
        return out
    }

    /// The first and last reduced axis of a mean over `axes` (negative from the end, empty =
    /// all) of `input`: the axes must be in range, distinct and adjacent.
    package static func reducedAxes(_ axes: [Int], input s: [Int]) throws(InferenceError) -> (lo: Int, hi: Int) {
        let r = s.count
        let normal = axes.isEmpty ? Array(0..<r) : axes.map { $0 < 0 ? $0 + r : $0 }
        guard r >= 1, normal.allSatisfy({ $0 >= 0 && $0 < r }), Set(normal).count == normal.count else {
            throw InferenceError(.invalidAttribute("reduceMean axes \(axes) for rank \(r)"))
        }
        let (lo, hi) = (normal.min()!, normal.max()!)
        guard hi - lo + 1 == normal.count else {
            throw InferenceError(.unsupported("reduceMean over axes \(axes) that are not adjacent"))
        }
        return (lo, hi)
    }

    /// The `[outer, reduced, inner]` view of a mean over `axes` of `input`.
    package static func reduce(_ axes: [Int], input s: [Int]) throws(InferenceError) -> ReduceGeometry {
        let (lo, hi) = try reducedAxes(axes, input: s)
        return ReduceGeometry(
            outer: s[..<lo].reduce(1, *), reduced: s[lo...hi].reduce(1, *), inner: s[(hi + 1)...].reduce(1, *))
    }

    /// The conv geometry for input `[N, Cin, H, W]` and weight `[Cout, Cin/g, kH, kW]`.
    package static func conv(
        _ a: Conv2dAttributes, input x: [Int], weight w: [Int], bias: [Int]?
    )
        throws(InferenceError) -> ConvGeometry
    {
        try requireRank(x, exactly: 4, "conv2d input")
        try requireRank(w, exactly: 4, "conv2d weight")
        let p = a.padding
        guard a.stride.h >= 1, a.stride.w >= 1, a.dilation.h >= 1, a.dilation.w >= 1, a.groups >= 1,
            p.top >= 0, p.left >= 0, p.bottom >= 0, p.right >= 0
        else { throw InferenceError(.invalidAttribute("stride \(a.stride), dilation \(a.dilation), groups \(a.groups), padding \(p)")) }
        let (cin, cout) = (x[1], w[0])
        guard cin % a.groups == 0, cout % a.groups == 0, w[1] == cin / a.groups else {
            throw InferenceError(.shapeMismatch("conv2d input \(x), weight \(w), groups \(a.groups)"))
        }
        if let b = bias { try requireVector(b, cout, "conv2d bias") }
        let oh = (x[2] + p.top + p.bottom - a.dilation.h * (w[2] - 1) - 1) / a.stride.h + 1
        let ow = (x[3] + p.left + p.right - a.dilation.w * (w[3] - 1) - 1) / a.stride.w + 1
        guard x[2] + p.top + p.bottom >= a.dilation.h * (w[2] - 1) + 1,
            x[3] + p.left + p.right >= a.dilation.w * (w[3] - 1) + 1, oh >= 1, ow >= 1
        else { throw InferenceError(.shapeMismatch("conv2d kernel \(w[2])x\(w[3]) larger than padded input \(x)")) }
        return ConvGeometry(
            batch: x[0], inChannels: cin, inHeight: x[2], inWidth: x[3], outChannels: cout,
            outHeight: oh, outWidth: ow, kernelH: w[2], kernelW: w[3], strideH: a.stride.h,
            strideW: a.stride.w, padTop: p.top, padLeft: p.left, dilationH: a.dilation.h,
            dilationW: a.dilation.w, groups: a.groups)
    }

    /// The conv geometry of a binary conv on input `[N, Cin, H, W]`, after checking its
    /// attributes: encoding parameters, pad code, multiplier and bias sizes.
    package static func binaryConv(_ a: BinaryConv2dAttributes, input x: [Int]) throws(InferenceError) -> ConvGeometry {
        let g = try conv(a.conv, input: x, weight: a.weightShape, bias: nil)
        switch a.input {
        case .sign: break
        case .ternary(let step):
            guard step > 0, step.isFinite else { throw InferenceError(.invalidAttribute("ternary step \(step)")) }
        case .unsigned(let levels, let step):
            guard step > 0, step.isFinite, levels >= 1, levels < 1 << 16 else {
                throw InferenceError(.invalidAttribute("unsigned levels \(levels), step \(step)"))
            }
        }
        guard a.input.isValidPadCode(a.padCode) else {
            throw InferenceError(.invalidAttribute("pad code \(a.padCode) for \(a.input) input (codes \(a.input.codeRange))"))
        }
        try requireVector([a.multiplier.count], g.outChannels, "binaryConv2d multiplier")
        try requireVector([a.bias.count], g.outChannels, "binaryConv2d bias")
        // |acc| <= K * max|code| must stay exact in Float and in the kernels' int32 counters.
        let largest = max(abs(a.input.codeRange.lowerBound), a.input.codeRange.upperBound)
        guard a.weights.codesPerRow.multipliedReportingOverflow(by: largest).partialValue < 1 << 24 else {
            throw InferenceError(.unsupported("binaryConv2d dot products of \(a.weights.codesPerRow) codes up to \(largest) exceed 2^24"))
        }
        return g
    }

    /// ``Op/integerConv(_:)``'s geometry: the conv rule, `scale` and `bias` of `[Cout]`, and
    /// `0 <= padIndex <= maxIndex <= 255`.
    package static func integerConv(_ a: IntegerConvAttributes, _ s: [[Int]]) throws(InferenceError) -> ConvGeometry {
        guard (0...255).contains(a.maxIndex), (0...a.maxIndex).contains(a.padIndex) else {
            throw InferenceError(
                .invalidAttribute("integerConv padIndex \(a.padIndex), maxIndex \(a.maxIndex) (need 0 <= pad <= max <= 255)"))
        }
        let g = try conv(a.conv, input: s[0], weight: s[1], bias: s[2])
        try requireVector(s[3], g.outChannels, "integerConv bias")
        return g
    }

    /// Pool geometry with PyTorch's output-size rule (including ceil mode).
    package static func pool(_ a: Pool2dAttributes, input x: [Int], isMax: Bool) throws(InferenceError) -> PoolGeometry {
        try requireRank(x, exactly: 4, "pool input")
        let p = a.padding
        guard a.kernel.h >= 1, a.kernel.w >= 1, a.stride.h >= 1, a.stride.w >= 1,
            a.dilation.h >= 1, a.dilation.w >= 1, p.top >= 0, p.left >= 0, p.bottom >= 0, p.right >= 0
        else { throw InferenceError(.invalidAttribute("pool kernel \(a.kernel), stride \(a.stride), padding \(p)")) }
        guard isMax || (a.dilation.h == 1 && a.dilation.w == 1) else {
            throw InferenceError(.invalidAttribute("average pooling has no dilation"))
        }
        // PyTorch requires pad <= kernel/2; asymmetric ONNX pads are checked per side.
        guard p.top <= a.kernel.h / 2, p.bottom <= a.kernel.h / 2, p.left <= a.kernel.w / 2,
            p.right <= a.kernel.w / 2
        else { throw InferenceError(.invalidAttribute("pad \(p) exceeds half the kernel \(a.kernel)")) }
        func outSize(_ size: Int, _ k: Int, _ s: Int, _ pb: Int, _ pa: Int, _ d: Int) -> Int {
            let span = size + pb + pa - d * (k - 1) - 1
            var o = (span + (a.ceilMode ? s - 1 : 0)) / s + 1
            if a.ceilMode && (o - 1) * s >= size + pb { o -= 1 }
            return span < 0 ? 0 : o
        }
        let oh = outSize(x[2], a.kernel.h, a.stride.h, p.top, p.bottom, a.dilation.h)
        let ow = outSize(x[3], a.kernel.w, a.stride.w, p.left, p.right, a.dilation.w)
        guard oh >= 1, ow >= 1 else {
            throw InferenceError(.shapeMismatch("pool kernel \(a.kernel) larger than padded input \(x)"))
        }
        return PoolGeometry(
            batch: x[0], channels: x[1], inHeight: x[2], inWidth: x[3], outHeight: oh,
            outWidth: ow, kernelH: a.kernel.h, kernelW: a.kernel.w, strideH: a.stride.h,
            strideW: a.stride.w, padding: p, dilationH: a.dilation.h, dilationW: a.dilation.w,
            countIncludePad: a.countIncludePad)
    }

    package static func requireRank(_ s: [Int], exactly r: Int, _ what: String) throws(InferenceError) {
        guard s.count == r else { throw InferenceError(.shapeMismatch("\(what) must have rank \(r), has shape \(s)")) }
    }

    package static func requireRank(_ s: [Int], atLeast r: Int, _ what: String) throws(InferenceError) {
        guard s.count >= r else { throw InferenceError(.shapeMismatch("\(what) must have rank >= \(r), has shape \(s)")) }
    }

    package static func requireVector(_ s: [Int], _ n: Int, _ what: String) throws(InferenceError) {
        guard s.reduce(1, *) == n, s.count >= 1 else {
            throw InferenceError(.shapeMismatch("\(what) must have \(n) elements, has shape \(s)"))
        }
    }
}

extension PoolGeometry {
    var outputShape: [Int] { [batch, channels, outHeight, outWidth] }
}

extension ShapeInference {
    /// The shape ONNX Reshape (`allowzero` 0) gives `input` for `shape` (see ``Op/reshape(shape:)``).
    package static func reshaped(_ input: [Int], _ shape: [Int]) throws(InferenceError) -> [Int] {
        var out: [Int] = []
        var inferred: Int?
        for (i, d) in shape.enumerated() {
            switch d {
            case 0:
                guard i < input.count else {
                    throw InferenceError(.shapeMismatch("reshape \(shape): entry \(i) copies a dimension \(input) does not have"))
                }
                out.append(input[i])
            case -1:
                guard inferred == nil else { throw InferenceError(.invalidAttribute("reshape \(shape): more than one -1")) }
                inferred = i
                out.append(1)
            case 1...:
                out.append(d)
            default:
                throw InferenceError(.invalidAttribute("reshape \(shape): size \(d)"))
            }
        }
        let total = input.reduce(1, *)
        let known = out.reduce(1, *)
        if let i = inferred {
            guard known > 0, total % known == 0 else {
                throw InferenceError(.shapeMismatch("reshape \(input) to \(shape): \(total) elements do not divide by \(known)"))
            }
            out[i] = total / known
        } else if known != total {
            throw InferenceError(.shapeMismatch("reshape \(input) (\(total) elements) to \(out) (\(known))"))
        }
        return out
    }
}
