import Tensors

/// Interprets a graph node by node with the naive kernels: no fusion, no buffer reuse, one
/// fresh array per value. The executable specification the fast ``Executor`` is tested against.
package enum ReferenceExecutor {
    /// Runs `graph` on `inputs`; returns every graph output by name. `observe(node, shape,
    /// values)` gets every node's output as it is computed (``ValueCapture``).
    package static func run(
        _ graph: Graph, inputs: [String: Tensor],
        observe: ((_ node: Graph.Node, _ shape: [Int], _ values: [Float]) -> Void)? = nil
    ) throws(InferenceError) -> [String: Tensor] {
        let order = try graph.validate()
        var shapes: [String: [Int]] = [:]
        var values: [String: [Float]] = [:]
        for name in graph.inputs {
            guard let t = inputs[name] else { throw InferenceError(.missingInput("input \"\(name)\" not supplied"), value: name) }
            shapes[name] = t.shape
            values[name] = t.floats()
        }
        for (name, t) in graph.constants {
            shapes[name] = t.shape
            values[name] = t.floats()
        }
        for i in order {
            let n = graph.nodes[i]
            let s = n.inputs.map { shapes[$0]! }
            let x = n.inputs.map { values[$0]! }
            do {
                let outShape = try ShapeInference.outputShape(n.op, s)
                shapes[n.outputs[0]] = outShape
                values[n.outputs[0]] = try evaluate(n.op, x, s)
            } catch { throw error.at(node: n.name) }
            if let observe { observe(n, shapes[n.outputs[0]]!, values[n.outputs[0]]!) }
        }
        var out: [String: Tensor] = [:]
        for o in graph.outputs { out[o] = Tensor(floats: values[o]!, shape: shapes[o]!) }
        return out
    }

    private static func evaluate(_ op: Op, _ x: [[Float]], _ s: [[Int]]) throws(InferenceError) -> [Float] {
        let batch = s[0].first ?? 1
        let channels = s[0].count >= 2 ? s[0][1] : 1
        let inner = s[0].count >= 3 ? s[0][2...].reduce(1, *) : 1
        typealias R = ReferenceKernels
        switch op {
        case .conv2d(let a):
            let g = try ShapeInference.conv(a, input: s[0], weight: s[1], bias: s.count > 2 ? s[2] : nil)
            return R.conv2d(g, input: x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil)
        case .binaryConv2d(let a):
            return R.binaryConv2d(try ShapeInference.binaryConv(a, input: s[0]), a, input: x[0])
        case .batchNorm(let eps):
            return R.batchNorm(
                x[0], batch: batch, channels: channels, inner: inner, gamma: x[1], beta: x[2], mean: x[3], variance: x[4], epsilon: eps)
        case .relu:
            return R.activation(x[0], .relu)
        case .hardtanh(let lo, let hi):
            return R.activation(x[0], .clamp(lo: lo, hi: hi))
        case .clamp(let lo, let hi):
            return R.activation(x[0], .clamp(lo: lo ?? -.infinity, hi: hi ?? .infinity))
        case .prelu:
            return R.prelu(x[0], batch: batch, channels: channels, inner: inner, slope: x[1])
        case .maxPool2d(let a):
            return R.maxPool2d(try ShapeInference.pool(a, input: s[0], isMax: true), input: x[0])
        case .avgPool2d(let a):
            return R.avgPool2d(try ShapeInference.pool(a, input: s[0], isMax: false), input: x[0])
        case .adaptiveAvgPool2d(let oh, let ow):
            return R.adaptiveAvgPool2d(x[0], planes: batch * channels, height: s[0][2], width: s[0][3], outHeight: oh, outWidth: ow)
        case .linear:
            return R.linear(x[0], batch: s[0][0], inFeatures: s[0][1], weight: x[1], outFeatures: s[1][0], bias: x.count > 2 ? x[2] : nil)
        case .add:
            return R.add(x[0], x[1])
        case .mul:
            return R.mul(x[0], s[0], x[1], s[1])
        case .reduceMean(let axes, _):
            let (lo, hi) = try ShapeInference.reducedAxes(axes, input: s[0])
            return R.reduceMean(x[0], shape: s[0], axes: Array(lo...hi))
        case .channelAffine:
            return R.channelAffine(x[0], batch: batch, channels: channels, inner: inner, scale: x[1], bias: x[2])
        case .flatten, .reshape, .identity:
            return x[0]
        case .softmax(let axis):
            let ax = axis < 0 ? axis + s[0].count : axis
            return R.softmax(x[0], outer: s[0][..<ax].reduce(1, *), axis: s[0][ax], inner: s[0][(ax + 1)...].reduce(1, *))
        case .pad(let a):
            return R.pad(x[0], planes: batch * channels, height: s[0][2], width: s[0][3], padding: a.padding, value: a.value)
        case .quantize(let q):
            return try q.apply(x[0], shape: s[0])
        case .spaceToDepth(let b):
            return R.spaceDepth(x[0], batch: batch, channels: channels, height: s[0][2], width: s[0][3], block: b, toDepth: true)
        case .depthToSpace(let b):
            return R.spaceDepth(
                x[0], batch: batch, channels: channels / (b * b), height: s[0][2] * b, width: s[0][3] * b, block: b, toDepth: false)
        case .integerConv(let a):
            let g = try ShapeInference.integerConv(a, s)
            return R.integerConv(g, input: x[0], weight: x[1], scale: x[2], bias: x[3], padIndex: a.padIndex, maxIndex: a.maxIndex)
        case .concat:
            return R.concat(x, batch: batch, channels: s.map { $0[1] }, spatial: s[0][2] * s[0][3])
        }
    }
}
