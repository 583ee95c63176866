/// A region of the executor's arena or of the plan's packed weights.
package struct Span: Sendable, Equatable {
    /// Which buffer the span indexes.
    package enum Pool: Sendable, Equatable { case arena, weights }
    package var pool: Pool
    /// Offset in floats.
    package var offset: Int
    /// Length in floats.
    package var count: Int

    package init(_ pool: Pool, offset: Int, count: Int) {
        self.pool = pool
        self.offset = offset
        self.count = count
    }
}

/// One kernel invocation with fully resolved sizes; `B` names its buffers.
///
/// The planner builds `KernelCall<Operand>` (buffers named by value) and resolves it to
/// `KernelCall<Span>` after buffer assignment. Each case maps to one fast kernel (in
/// `Kernels/`) and, through the reference executor, to its naive twin.
package enum KernelCall<B: Sendable>: Sendable {
    /// ``Conv2d/forward(_:input:weight:bias:residual:output:scratch:activation:threads:)``:
    /// `y = act(conv(x) + b + residual)`.
    case conv(ConvGeometry, input: B, weight: B, bias: B?, residual: B?, output: B, activation: Activation)
    /// ``Winograd/forward(_:input:transformedWeight:bias:residual:output:scratch:activation:threads:)``:
    /// a 3x3 stride-1 conv with output tiles `tile x tile` and weights pre-transformed.
    case winograd(ConvGeometry, tile: Int, input: B, weight: B, bias: B?, residual: B?, output: B, activation: Activation)
    /// ``BinaryConv/forward(_:input:weights:residual:output:scratch:activation:threads:)``: a
    /// bit-packed binary/ternary conv, `y = act(Float(acc) * mul + bias + residual)`; `weights`
    /// is the layer's packed span (planes and tables, ``BinaryConvLayout``).
    case binaryConv(BinaryConvLayout, input: B, weights: B, residual: B?, output: B, activation: Activation)
    /// ``Linear/forward(batch:inFeatures:outFeatures:input:weight:bias:output:activation:threads:)``.
    case linear(batch: Int, inFeatures: Int, outFeatures: Int, input: B, weight: B, bias: B?, output: B, activation: Activation)
    /// `y = act(x * scale[c] + bias[c])` (also lowered batch norm).
    case channelAffine(batch: Int, channels: Int, inner: Int, input: B, scale: B, bias: B, output: B, activation: Activation)
    /// `y = act(x)`.
    case activation(Activation, input: B, output: B)
    /// PReLU.
    case prelu(batch: Int, channels: Int, inner: Int, input: B, slope: B, output: B)
    /// Max pooling.
    case maxPool(PoolGeometry, input: B, output: B)
    /// Average pooling.
    case avgPool(PoolGeometry, input: B, output: B)
    /// Adaptive average pooling.
    case adaptiveAvgPool(planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int, input: B, output: B)
    /// `y = act(a + b)`.
    case add(B, B, output: B, activation: Activation)
    /// `y = a * b` with broadcasting (``BroadcastMul``).
    case mul(BroadcastGeometry, B, B, output: B)
    /// Mean over the middle axis of `[outer, reduced, inner]` (``ReduceMean``).
    case reduceMean(ReduceGeometry, input: B, output: B)
    /// Softmax over the middle axis of `[outer, axis, inner]`.
    case softmax(outer: Int, axis: Int, inner: Int, input: B, output: B)
    /// Constant padding of `[planes, H, W]`.
    case pad(planes: Int, height: Int, width: Int, padding: Padding2d, value: Float, input: B, output: B)
    /// Channel concatenation: `parts[i]` has `channels[i]` channels of `spatial` pixels each.
    case concat(batch: Int, spatial: Int, parts: [B], channels: [Int], output: B)
    /// Space-to-depth / depth-to-space; sizes are the space side `[N, C, H, W]`.
    case spaceDepth(batch: Int, channels: Int, height: Int, width: Int, block: Int, toDepth: Bool, input: B, output: B)
    /// Plain copy.
    case copy(input: B, output: B)
    /// A quantize function over a tensor of `shape` (``QuantizeKernel``).
    case quantize(QuantizeAttributes, shape: [Int], input: B, output: B)
    /// ``IntegerConv/forward(_:padIndex:maxIndex:maddubsSafe:input:weight:scale:bias:residual:output:activation:grid:threads:path:sums:)``;
    /// with `grid`, the input is the value its quantize step (fused in) turns into indices;
    /// with `output quantizer`, the quantize step after it (and a pad before that) is fused into
    /// its output transform.
    case integerConv(
        ConvGeometry, padIndex: Int, maxIndex: Int, maddubsSafe: Bool, input: B, weight: B, scale: B, bias: B, residual: B?, output: B,
        activation: Activation, grid: GridQuantization?, outputQuantizer: IntegerConv.OutputQuantizer?)
    /// An element-wise grid quantizer over `[batch, channels, height, width]`, written padded
    /// (``GridQuantizeKernel``; a `pad` before or after the quantize op fused in).
    case gridQuantize(
        GridQuantization, batch: Int, channels: Int, height: Int, width: Int, padding: Padding2d, border: GridQuantizeKernel.Border,
        input: B, output: B)

    /// The same call with every buffer mapped through `f`.
    package func map<T: Sendable>(_ f: (B) throws(InferenceError) -> T) throws(InferenceError) -> KernelCall<T> {
        switch self {
        case .conv(let g, let x, let w, let b, let r, let y, let a):
            return .conv(g, input: try f(x), weight: try f(w), bias: try b.map(f), residual: try r.map(f), output: try f(y), activation: a)
        case .winograd(let g, let tile, let x, let w, let b, let r, let y, let a):
            return .winograd(
                g, tile: tile, input: try f(x), weight: try f(w), bias: try b.map(f), residual: try r.map(f), output: try f(y),
                activation: a)
        case .binaryConv(let l, let x, let w, let r, let y, let a):
            return .binaryConv(l, input: try f(x), weights: try f(w), residual: try r.map(f), output: try f(y), activation: a)
        case .linear(let n, let i, let o, let x, let w, let b, let y, let a):
            return .linear(
                batch: n, inFeatures: i, outFeatures: o, input: try f(x), weight: try f(w), bias: try b.map(f), output: try f(y),
                activation: a)
        case .channelAffine(let n, let c, let i, let x, let s, let b, let y, let a):
            return .channelAffine(
                batch: n, channels: c, inner: i, input: try f(x), scale: try f(s), bias: try f(b), output: try f(y), activation: a)
        case .activation(let a, let x, let y):
            return .activation(a, input: try f(x), output: try f(y))
        case .prelu(let n, let c, let i, let x, let s, let y):
            return .prelu(batch: n, channels: c, inner: i, input: try f(x), slope: try f(s), output: try f(y))
        case .maxPool(let g, let x, let y):
            return .maxPool(g, input: try f(x), output: try f(y))
        case .avgPool(let g, let x, let y):
            return .avgPool(g, input: try f(x), output: try f(y))
        case .adaptiveAvgPool(let p, let h, let w, let oh, let ow, let x, let y):
            return .adaptiveAvgPool(planes: p, height: h, width: w, outHeight: oh, outWidth: ow, input: try f(x), output: try f(y))
        case .add(let a, let b, let y, let act):
            return .add(try f(a), try f(b), output: try f(y), activation: act)
        case .mul(let g, let a, let b, let y):
            return .mul(g, try f(a), try f(b), output: try f(y))
        case .reduceMean(let g, let x, let y):
            return .reduceMean(g, input: try f(x), output: try f(y))
        case .softmax(let o, let a, let i, let x, let y):
            return .softmax(outer: o, axis: a, inner: i, input: try f(x), output: try f(y))
        case .pad(let p, let h, let w, let pad, let v, let x, let y):
            return .pad(planes: p, height: h, width: w, padding: pad, value: v, input: try f(x), output: try f(y))
        case .concat(let n, let s, let parts, let ch, let y):
            var mapped: [T] = []
            for p in parts { mapped.append(try f(p)) }
            return .concat(batch: n, spatial: s, parts: mapped, channels: ch, output: try f(y))
        case .spaceDepth(let n, let c, let h, let w, let s, let d, let x, let y):
            return .spaceDepth(batch: n, channels: c, height: h, width: w, block: s, toDepth: d, input: try f(x), output: try f(y))
        case .copy(let x, let y):
            return .copy(input: try f(x), output: try f(y))
        case .quantize(let q, let s, let x, let y):
            return .quantize(q, shape: s, input: try f(x), output: try f(y))
        case .integerConv(let g, let pi, let mi, let safe, let x, let w, let s, let b, let r, let y, let a, let q, let oq):
            return .integerConv(
                g, padIndex: pi, maxIndex: mi, maddubsSafe: safe, input: try f(x), weight: try f(w), scale: try f(s), bias: try f(b),
                residual: try r.map(f), output: try f(y), activation: a, grid: q, outputQuantizer: oq)
        case .gridQuantize(let q, let n, let c, let h, let w, let p, let b, let x, let y):
            return .gridQuantize(q, batch: n, channels: c, height: h, width: w, padding: p, border: b, input: try f(x), output: try f(y))
        }
    }

    /// Every buffer the call reads, in operand order.
    package var reads: [B] {
        switch self {
        case .conv(_, let x, let w, let b, let r, _, _), .winograd(_, _, let x, let w, let b, let r, _, _):
            return [x, w] + (b.map { [$0] } ?? []) + (r.map { [$0] } ?? [])
        case .binaryConv(_, let x, let w, let r, _, _): return [x, w] + (r.map { [$0] } ?? [])
        case .linear(_, _, _, let x, let w, let b, _, _): return [x, w] + (b.map { [$0] } ?? [])
        case .channelAffine(_, _, _, let x, let s, let b, _, _): return [x, s, b]
        case .activation(_, let x, _), .maxPool(_, let x, _), .avgPool(_, let x, _),
            .adaptiveAvgPool(_, _, _, _, _, let x, _), .softmax(_, _, _, let x, _),
            .pad(_, _, _, _, _, let x, _), .copy(let x, _), .quantize(_, _, let x, _),
            .gridQuantize(_, _, _, _, _, _, _, let x, _),
            .spaceDepth(_, _, _, _, _, _, let x, _), .reduceMean(_, let x, _):
            return [x]
        case .mul(_, let a, let b, _): return [a, b]
        case .integerConv(_, _, _, _, let x, let w, let s, let b, let r, _, _, _, _): return [x, w, s, b] + (r.map { [$0] } ?? [])
        case .prelu(_, _, _, let x, let s, _): return [x, s]
        case .add(let a, let b, _, _): return [a, b]
        case .concat(_, _, let parts, _, _): return parts
        }
    }

    /// The buffer the call writes.
    package var output: B {
        switch self {
        case .conv(_, _, _, _, _, let y, _), .winograd(_, _, _, _, _, _, let y, _), .linear(_, _, _, _, _, _, let y, _),
            .channelAffine(_, _, _, _, _, _, let y, _), .activation(_, _, let y),
            .prelu(_, _, _, _, _, let y), .maxPool(_, _, let y), .avgPool(_, _, let y),
            .adaptiveAvgPool(_, _, _, _, _, _, let y), .add(_, _, let y, _),
            .softmax(_, _, _, _, let y), .pad(_, _, _, _, _, _, let y), .concat(_, _, _, _, let y),
            .copy(_, let y), .quantize(_, _, _, let y), .spaceDepth(_, _, _, _, _, _, _, let y),
            .mul(_, _, _, let y), .reduceMean(_, _, let y), .binaryConv(_, _, _, _, let y, _),
            .gridQuantize(_, _, _, _, _, _, _, _, let y), .integerConv(_, _, _, _, _, _, _, _, _, let y, _, _, _):
            return y
        }
    }

    /// Inputs that may share the output's memory (elementwise reads at the written index),
    /// as values of `reads` equal to them.
    package var inPlaceCandidates: [B] {
        switch self {
        case .conv(_, _, _, _, let r, _, _), .winograd(_, _, _, _, _, let r, _, _), .binaryConv(_, _, _, let r, _, _),
            .integerConv(_, _, _, _, _, _, _, _, let r, _, _, _, _):
            return r.map { [$0] } ?? []
        case .channelAffine(_, _, _, let x, _, _, _, _), .activation(_, let x, _),
            .prelu(_, _, _, let x, _, _), .softmax(_, _, _, let x, _):
            return [x]
        case .add(let a, let b, _, _): return [a, b]
        case .mul(let g, let a, let b, _): return (g.aIsFull ? [a] : []) + (g.bIsFull ? [b] : [])
        default: return []
        }
    }
}

/// A kernel operand before buffer assignment: a graph value (in the arena) or packed weights.
package enum Operand: Sendable, Equatable {
    case value(String)
    case weights(Span)
}
