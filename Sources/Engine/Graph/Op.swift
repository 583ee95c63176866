/// The operations a ``Graph`` node can run. All tensors are float32, NCHW, batch >= 1.
///
/// Weights are ordinary inputs (constant values of the graph), as in ONNX, so importers
/// keep ONNX initializer names and state-dict names (`layer1.0.conv1.weight`) as value names.
///
/// Adding an op: add a case here (with an attributes struct if it has any), give it an
/// ``typeName`` and ``inputArity``, a shape rule in `Planning/ShapeInference.swift`, a fast
/// kernel in `Kernels/` plus its naive twin in `Kernels/Reference/`, a `PlannedStep` case in
/// `Planning/Plan.swift` (lowering) with its dispatch in `Kernels/StepRunner.swift`, and an
/// interpreter case in `Runtime/ReferenceExecutor.swift`. The compiler's exhaustiveness
/// checks find every switch that needs a new case.
public enum Op: Sendable, Equatable {
    /// `y = conv2d(x, w) + b`. Inputs: `x [N, Cin, H, W]`, `w [Cout, Cin/groups, kH, kW]`
    /// (constant), optional `b [Cout]` (constant). Cross-correlation, as PyTorch.
    case conv2d(Conv2dAttributes)
    /// Inference batch norm: `y = (x - mean) / sqrt(var + eps) * gamma + beta` per channel.
    /// Inputs (ONNX order): `x [N, C, ...]`, `gamma [C]`, `beta [C]`, `mean [C]`, `var [C]`, all constant but x.
    case batchNorm(epsilon: Float)
    /// `y = max(x, 0)`.
    case relu
    /// `y = x > 0 ? x : a * x`. Inputs: `x [N, C, ...]`, `a` of shape `[1]` or `[C]` (constant).
    case prelu
    /// `y = min(max(x, min), max)` (torch.nn.Hardtanh; default -1, 1).
    case hardtanh(min: Float, max: Float)
    /// `y = clamp(x, min, max)`; a `nil` bound is absent (torch.clamp).
    case clamp(min: Float?, max: Float?)
    /// Max pooling over `[N, C, H, W]`; padded positions never win (PyTorch's -inf padding).
    case maxPool2d(Pool2dAttributes)
    /// Average pooling over `[N, C, H, W]` with PyTorch's divisor rule (see ``Pool2dAttributes``).
    case avgPool2d(Pool2dAttributes)
    /// Adaptive average pooling to `[N, C, outH, outW]`; bins `[floor(i*H/oh), ceil((i+1)*H/oh))`.
    case adaptiveAvgPool2d(outputHeight: Int, outputWidth: Int)
    /// `y = x w^T + b`. Inputs: `x [N, in]`, `w [out, in]` (constant), optional `b [out]` (constant).
    case linear
    /// `y = a + b`, same shapes.
    case add
    /// `y = a * b` with NumPy (ONNX multidirectional) broadcasting, e.g.
    /// `[N, C, H, W] * [N, 1, H, W]`.
    case mul
    /// Mean over `axes` (negative counts from the end; empty = every axis), which must be
    /// adjacent; `keepDims` keeps them as size 1 (ONNX ReduceMean). See ``ReduceMeanKernel``
    /// for the summation order.
    case reduceMean(axes: [Int], keepDims: Bool)
    /// `y = x * scale[c] + bias[c]` (a folded batch norm). Inputs: `x [N, C, ...]`, `scale [C]`, `bias [C]` (constant).
    case channelAffine
    /// torch.flatten(x, startDim): dims `startDim...` merged into one. A view: no copy.
    case flatten(startDim: Int)
    /// ONNX Reshape (`allowzero` 0): each entry of `shape` is a size, `0` (copy the input's
    /// dimension at that position) or `-1` (the one size inferred from the element count). A
    /// view: no copy. `x.view(x.size(0), -1)` with a dynamic batch imports as `[0, -1]`.
    case reshape(shape: [Int])
    /// Softmax along `axis` (negative counts from the end).
    case softmax(axis: Int)
    /// Constant padding of the last two dims of `[N, C, H, W]` (zero by default).
    case pad(Pad2dAttributes)
    /// Concatenation along the channel axis (1) of `[N, Ci, H, W]` inputs.
    case concat
    /// `y = x` (an alias; importers map Identity / Dropout here).
    case identity
    /// A quantization function (an activation or output quantizer in eval mode, or an
    /// imported element-wise program) applied to the whole `[N, C, H, W]` tensor:
    /// `y = f(x)`, same shape. See ``QuantizeFunction``.
    case quantize(QuantizeAttributes)
    /// Space-to-depth by `blockSize` s (torch.nn.functional.pixel_unshuffle; the layout of
    /// space-to-depth stems): `[N, C, H, W] -> [N, C*s*s, H/s, W/s]`, output channel
    /// `c*s*s + dy*s + dx` at `(i, j)` is input channel `c` at `(i*s + dy, j*s + dx)`.
    case spaceToDepth(blockSize: Int)
    /// Depth-to-space by `blockSize` s (torch.nn.functional.pixel_shuffle): the inverse of
    /// ``spaceToDepth(blockSize:)``: `[N, C*s*s, H, W] -> [N, C, H*s, W*s]`.
    case depthToSpace(blockSize: Int)
    /// Integer convolution: `y = (Float(Σ index(x) · w) * scale[m] + bias[m])` per output
    /// channel `m`, the sum exact in int32. Inputs: `x [N, Cin, H, W]` holding level indices
    /// (integers `0...maxIndex`; others are clamped and truncated, NaN reads 0), `w [Cout,
    /// Cin/groups, kH, kW]` (constant, integers in `-128...127`), `scale [Cout]`, `bias [Cout]`
    /// (constants). Padding reads `padIndex`. See ``IntegerConvAttributes``.
    case integerConv(IntegerConvAttributes)
    /// A binary or ternary convolution on bit-packed codes (XOR/AND + popcount): the input
    /// `x [N, Cin, H, W]` becomes codes (sign, ternary or unsigned levels), the weights are
    /// packed codes in the attributes, and `y = Float(sum codes) * multiplier[o] + bias[o]`,
    /// `[N, Cout, oH, oW]`. See ``BinaryConv2dAttributes``. One input, no constants.
    case binaryConv2d(BinaryConv2dAttributes)

    /// The op's name in profiles and error messages (`conv2d`, `batchNorm`, ...).
    public var typeName: String {
        switch self {
        case .conv2d: return "conv2d"
        case .batchNorm: return "batchNorm"
        case .relu: return "relu"
        case .prelu: return "prelu"
        case .hardtanh: return "hardtanh"
        case .clamp: return "clamp"
        case .maxPool2d: return "maxPool2d"
        case .avgPool2d: return "avgPool2d"
        case .adaptiveAvgPool2d: return "adaptiveAvgPool2d"
        case .linear: return "linear"
        case .add: return "add"
        case .mul: return "mul"
        case .reduceMean: return "reduceMean"
        case .channelAffine: return "channelAffine"
        case .flatten: return "flatten"
        case .reshape: return "reshape"
        case .softmax: return "softmax"
        case .pad: return "pad"
        case .concat: return "concat"
        case .identity: return "identity"
        case .quantize: return "quantize"
        case .spaceToDepth: return "spaceToDepth"
        case .depthToSpace: return "depthToSpace"
        case .integerConv: return "integerConv"
        case .binaryConv2d: return "binaryConv2d"
        }
    }

    /// Allowed input counts.
    public var inputArity: ClosedRange<Int> {
        switch self {
        case .conv2d, .linear: return 2...3
        case .batchNorm: return 5...5
        case .prelu, .add, .mul: return 2...2
        case .channelAffine: return 3...3
        case .integerConv: return 4...4
        case .concat: return 1...Int.max
        case .relu, .hardtanh, .clamp, .maxPool2d, .avgPool2d, .adaptiveAvgPool2d, .flatten, .reshape,
            .softmax, .pad, .identity, .quantize, .spaceToDepth, .depthToSpace, .reduceMean, .binaryConv2d:
            return 1...1
        }
    }

    /// Indices of inputs that must be constants (weights).
    var constantInputs: [Int] {
        switch self {
        case .conv2d, .linear: return [1, 2]
        case .batchNorm: return [1, 2, 3, 4]
        case .prelu: return [1]
        case .channelAffine: return [1, 2]
        case .integerConv: return [1, 2, 3]
        default: return []
        }
    }
}

/// Attributes of ``Op/conv2d(_:)``.
public struct Conv2dAttributes: Sendable, Equatable {
    /// Vertical and horizontal stride.
    public var stride: (h: Int, w: Int)
    /// Zero padding of the input: top, left, bottom, right (ONNX `pads` order is top, left, bottom, right).
    public var padding: Padding2d
    /// Vertical and horizontal dilation.
    public var dilation: (h: Int, w: Int)
    /// Groups; `Cin` and `Cout` must be multiples. `groups == Cin` with `Cin/groups == 1` is depthwise.
    public var groups: Int

    /// PyTorch-style attributes with symmetric padding.
    public init(
        stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1
    ) {
        self.init(
            stride: (stride, stride), padding: Padding2d(padding), dilation: (dilation, dilation),
            groups: groups)
    }

    /// Fully general attributes.
    public init(stride: (h: Int, w: Int), padding: Padding2d, dilation: (h: Int, w: Int), groups: Int) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation
            && a.groups == b.groups
    }
}

/// Padding of the two spatial dims, possibly asymmetric.
public struct Padding2d: Sendable, Equatable, Hashable {
    /// Rows added above.
    public var top: Int
    /// Columns added on the left.
    public var left: Int
    /// Rows added below.
    public var bottom: Int
    /// Columns added on the right.
    public var right: Int

    /// Explicit pads.
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top
        self.left = left
        self.bottom = bottom
        self.right = right
    }

    /// The same pad on all four sides.
    public init(_ all: Int) { self.init(top: all, left: all, bottom: all, right: all) }

    /// True when all four pads are zero.
    public var isZero: Bool { top == 0 && left == 0 && bottom == 0 && right == 0 }
}

/// Attributes of ``Op/maxPool2d(_:)`` and ``Op/avgPool2d(_:)``, with PyTorch's defaults.
///
/// Output size per dim: `floor((H + padT + padB - dil*(k-1) - 1 + (ceil ? s-1 : 0)) / s) + 1`,
/// and with `ceilMode` the last window must start inside the input or the top padding
/// (`(out-1)*s < H + padT`), as PyTorch. Average pooling divides by the window clipped to
/// the padded input (`countIncludePad`) or to the input (otherwise); a window starting in
/// the right/bottom padding counts only the part inside `H + padB`.
public struct Pool2dAttributes: Sendable, Equatable {
    /// Window height and width.
    public var kernel: (h: Int, w: Int)
    /// Stride (PyTorch's default is the kernel size).
    public var stride: (h: Int, w: Int)
    /// Padding (PyTorch pads symmetrically; ONNX may not).
    public var padding: Padding2d
    /// Dilation (max pooling only; average pooling requires 1).
    public var dilation: (h: Int, w: Int)
    /// Round the output size up.
    public var ceilMode: Bool
    /// Average pooling: count padded zeros in the divisor (PyTorch default true).
    public var countIncludePad: Bool

    /// PyTorch-style square attributes; `stride` defaults to `kernel`.
    public init(
        kernel: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1,
        ceilMode: Bool = false, countIncludePad: Bool = true
    ) {
        self.init(
            kernel: (kernel, kernel), stride: (stride ?? kernel, stride ?? kernel),
            padding: Padding2d(padding), dilation: (dilation, dilation), ceilMode: ceilMode,
            countIncludePad: countIncludePad)
    }

    /// Fully general attributes.
    public init(
        kernel: (h: Int, w: Int), stride: (h: Int, w: Int), padding: Padding2d,
        dilation: (h: Int, w: Int) = (1, 1), ceilMode: Bool = false, countIncludePad: Bool = true
    ) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding
            && a.dilation == b.dilation && a.ceilMode == b.ceilMode
            && a.countIncludePad == b.countIncludePad
    }
}

/// Attributes of ``Op/pad(_:)``.
public struct Pad2dAttributes: Sendable, Equatable {
    /// Pads of the last two dims (non-negative).
    public var padding: Padding2d
    /// The fill value (0 for the zero padding of quantized convs).
    public var value: Float

    /// Constant padding with `value`.
    public init(_ padding: Padding2d, value: Float = 0) {
        self.padding = padding
        self.value = value
    }
}
